#!/usr/bin/env bash
# Regenerates this reproduction of Stuehmer et al. (2020), Fig. 5a (MIG of ISA-VAE against the
# beta-VAE at beta = 1 on dSprites, over seeds): a slice of study_v1, its beta_vae and isa_vae runs
# at beta = 1 (2 x 32 seeds), trained, evaluated and reported into report/. Runs go to runs/study_v1,
# so they are shared with the whole study and with the other slices of it. A GPU reproduction:
# --cpu takes the same slice of study_v1_cpu (2 seeds, 500 steps of batch 64: it shows that the
# commands work, not what the priors do) into report_cpu/. Usage, scales and exit status:
# ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args stuehmer_isa_vae_beta1 "$@"

ONLY=(--only 'beta_vae/beta=1.0/*' --only 'isa_vae/*beta=1.0/*')
case $SCALE in
    full)
        study_and_report study_v1 runs/study_v1 "${OUT:-$HERE/report}" "${ONLY[@]}" -- "${ONLY[@]}" --rank_by mig_chen ;;
    cpu)
        study_and_report study_v1_cpu runs/study_v1_cpu "${OUT:-$HERE/report_cpu}" "${ONLY[@]}" --workers 2 \
            --device cpu -- "${ONLY[@]}" ;;
    smoke)
        study=$(smoke_study study_v1_cpu <<'GIN'
STEPS = 5
SEEDS = [0, 1]
FACTOR_VAE = {'num_train': 20, 'num_eval': 10, 'num_variance_estimate': 100}
RECON_LL = {'num_points': 50}
GIN
)
        study_and_report "$study" "$OUT/runs" "$OUT/report" "${ONLY[@]}" --workers 1 --device cpu -- "${ONLY[@]}" ;;
esac
