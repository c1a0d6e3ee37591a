#!/usr/bin/env bash
# Regenerates this reproduction of Sikka et al., "A Closer Look at Disentangling in beta-VAE"
# (Props. 1-3, Figs. 1-2: beta-VAEs on the linear-Gaussian model over a grid of beta), with
# dlbench's commands only:
#
#   run.sh [--smoke] [OUT]
#
# full:    the study gin/studies/repro_sikka_linear_gaussian.gin (2 datasets x 9 betas x 10 seeds =
#          180 runs of 3,000 steps), trained in stacks of 45 runs (one vmapped model per stack: about
#          three times faster than one run at a time for these tiny networks on a CPU), evaluated
#          and reported: runs into <repository>/runs/repro_sikka_linear_gaussian (not committed),
#          the report (CSVs, figures/, index.html) into OUT, by default report/ beside this script.
#          A second call reuses the finished runs and redraws the report.
# --smoke: the same commands on 2 betas, 2 seeds (a correlation heatmap needs 3 runs), 5 steps and
#          50 points for elbo and iwae, everything into OUT (by default a new temporary folder):
#          seconds, for the test suite; the committed files are left alone.
#
# The exit status is dlb_study's (0 only when every run finished); the report is written either way.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
STUDY="$REPO/gin/studies/repro_sikka_linear_gaussian.gin"

SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=1
    shift
fi
if [[ $# -gt 1 || "${1:-}" == -* ]]; then
    echo "usage: run.sh [--smoke] [OUT]" >&2
    exit 2
fi

if [[ $SMOKE == 1 ]]; then
    OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/repro_sikka_linear_gaussian.XXXXXX")}
    mkdir -p "$OUT"
    # the study itself, shrunk through its macros
    cat > "$OUT/repro_sikka_linear_gaussian_smoke.gin" <<GIN
include '$STUDY'
STEPS = 5
SEEDS = [0, 1]
BETAS = [0.5, 2.0]
EVALUATION_POINTS = 50
GIN
    STUDY="$OUT/repro_sikka_linear_gaussian_smoke.gin"
    RUNS="$OUT/runs"
    REPORT="$OUT/report"
    WORKERS=1  # eight tiny runs: a pool's start-up would cost more than it saves
else
    OUT=${1:-$HERE/report}
    RUNS="$REPO/runs/repro_sikka_linear_gaussian"
    REPORT="$OUT"
    WORKERS=2  # one single-threaded worker per core of the 2-core CPU it was measured on
fi

status=0
dlb_study "$STUDY" --runs_root "$RUNS" --workers "$WORKERS" --stack 45 --device cpu --no_progress || status=$?
dlb_report "$RUNS" --out "$REPORT" --rank_by elbo
echo "run.sh: report in $REPORT; wall time ${SECONDS} s"
exit $status
