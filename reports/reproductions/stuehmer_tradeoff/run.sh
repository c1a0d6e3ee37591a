#!/usr/bin/env bash
# Regenerates this reproduction of Stuehmer et al. (2020), Fig. 5b (MIG against reconstruction for
# the beta-VAE, beta-TCVAE and ISA-VAE over their beta grids on dSprites) and of Chen et al. (2018)
# (beta-TCVAE against the beta-VAE at equal beta): a slice of study_v1, its beta_vae, beta_tcvae
# and isa_vae runs (3 methods x 8 betas x 32 seeds), trained, evaluated and reported into report/.
# Runs go to runs/study_v1, shared with the whole study and its other slices. A GPU reproduction:
# --cpu takes the same slice of study_v1_cpu (2 seeds, 500 steps of batch 64: it shows that the
# commands work, not what the methods do) into report_cpu/. Usage, scales and exit status:
# ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args stuehmer_tradeoff "$@"

ONLY=(--only 'beta_vae/*' --only 'beta_tcvae/*' --only 'isa_vae/*')
case $SCALE in
    full)
        study_and_report study_v1 runs/study_v1 "${OUT:-$HERE/report}" "${ONLY[@]}" -- "${ONLY[@]}" --rank_by mig_chen ;;
    cpu)
        study_and_report study_v1_cpu runs/study_v1_cpu "${OUT:-$HERE/report_cpu}" "${ONLY[@]}" --workers 2 \
            --device cpu -- "${ONLY[@]}" ;;
    smoke)
        # one beta of each method, one seed
        study=$(smoke_study study_v1_cpu <<'GIN'
STEPS = 5
SEEDS = [0]
FACTOR_VAE = {'num_train': 20, 'num_eval': 10, 'num_variance_estimate': 100}
RECON_LL = {'num_points': 50}
GIN
)
        SMOKE_ONLY=(--only 'beta_vae/beta=4.0/*' --only 'beta_tcvae/beta=4.0/*' --only 'isa_vae/*beta=4.0/*')
        study_and_report "$study" "$OUT/runs" "$OUT/report" "${SMOKE_ONLY[@]}" --workers 1 --device cpu -- \
            "${SMOKE_ONLY[@]}" ;;
esac
