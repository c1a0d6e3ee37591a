#!/usr/bin/env bash
# Regenerates this reproduction of Mathieu et al. (2019), Sec. 6.1 and Fig. 2 (the FactorVAE score
# against reconstruction for the isotropic Gaussian, anisotropic Gaussian and Student-t priors on
# dSprites): the study gin/studies/repro_mathieu_priors.gin (180 runs at the paper's protocol)
# trained, evaluated and reported into report/. A GPU reproduction: --cpu runs its CPU-scale
# sibling repro_mathieu_priors_cpu (18 runs of 38,400 images each: it shows that the commands work, not
# what the priors do) into report_cpu/. Usage, scales and exit status: ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args mathieu_priors "$@"

# best.csv ranks by the FactorVAE score of the protocol each scale evaluates (its tag: a bare
# factor_vae names the default protocol only, which the full scale alone evaluates)
case $SCALE in
    full)
        study_and_report repro_mathieu_priors runs/repro_mathieu_priors "${OUT:-$HERE/report}" -- --rank_by factor_vae ;;
    cpu)
        study_and_report repro_mathieu_priors_cpu runs/repro_mathieu_priors_cpu "${OUT:-$HERE/report_cpu}" --workers 2 \
            --device cpu -- --rank_by 'factor_vae[num_train=1000,num_eval=500,num_variance_estimate=5000]' ;;
    smoke)
        study=$(smoke_study repro_mathieu_priors_cpu <<'GIN'
STEPS_GAUSSIAN = 3
STEPS_STUDENT_T = 2
SEEDS = [0]
BETAS = [1.0]
NUS = [3.0]
FACTOR_VAE = {'num_train': 20, 'num_eval': 10, 'num_variance_estimate': 100}
RECON_LL = {'num_points': 50}
GIN
)
        study_and_report "$study" "$OUT/runs" "$OUT/report" --workers 1 --device cpu -- \
            --rank_by 'factor_vae[num_train=20,num_eval=10,num_variance_estimate=100]' ;;
esac
