#!/usr/bin/env bash
# Regenerates this reproduction of Sikka et al., "A Closer Look at Disentangling in beta-VAE"
# (Props. 1-3, Figs. 1-2: beta-VAEs on the linear-Gaussian model over a grid of beta): the study
# gin/studies/repro_sikka_linear_gaussian.gin (2 datasets x 9 betas x 10 seeds = 180 runs of 3,000
# steps) trained in stacks of 45 runs (one vmapped model per stack: about three times faster than
# one run at a time for these tiny networks on a CPU), evaluated and reported into report/. A CPU
# reproduction: --cpu is its full scale. Usage, scales and exit status: ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args sikka_linear_gaussian "$@"

# best.csv ranks by the ELBO of the protocol evaluated (its tag: a bare elbo names the default protocol only)
if [[ $SCALE == smoke ]]; then
    # 2 betas and 2 seeds (a correlation heatmap needs 3 runs), 5 steps, 50 points for elbo and iwae
    study=$(smoke_study repro_sikka_linear_gaussian <<'GIN'
STEPS = 5
SEEDS = [0, 1]
BETAS = [0.5, 2.0]
EVALUATION_POINTS = 50
GIN
)
    study_and_report "$study" "$OUT/runs" "$OUT/report" --workers 1 --stack 45 --device cpu -- \
        --rank_by 'elbo[num_points=50]'
else
    study_and_report repro_sikka_linear_gaussian runs/repro_sikka_linear_gaussian "${OUT:-$HERE/report}" \
        --workers 2 --stack 45 --device cpu -- --rank_by 'elbo[num_points=5000]'
fi
