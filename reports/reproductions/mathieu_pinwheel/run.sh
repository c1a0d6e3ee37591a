#!/usr/bin/env bash
# Regenerates this reproduction of Mathieu et al. (2019), Sec. 6.2 and Fig. 3 (pinwheel, Gaussian-
# mixture prior, a grid of alpha and beta): the study gin/studies/repro_mathieu_pinwheel.gin (72
# runs) trained, evaluated and reported into report/. A CPU reproduction: --cpu is its full scale.
# Usage, scales and exit status: ../common.sh.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
reproduction_args mathieu_pinwheel "$@"

if [[ $SCALE == smoke ]]; then
    # the study itself, shrunk through its macros
    study=$(smoke_study repro_mathieu_pinwheel <<'GIN'
STEPS = 5
SEEDS = [0]
ALPHAS = [0.0, 10.0]
BETAS = [0.1, 5.0]
GIN
)
    study_and_report "$study" "$OUT/runs" "$OUT/report" --workers 1 --device cpu  # a pool would cost more than 4 tiny runs
else
    # one single-threaded worker per core of the 2-core CPU it was measured on
    study_and_report repro_mathieu_pinwheel runs/repro_mathieu_pinwheel "${OUT:-$HERE/report}" --workers 2 --device cpu
fi
