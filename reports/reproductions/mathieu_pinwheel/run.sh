#!/usr/bin/env bash
# Regenerates this reproduction of Mathieu et al. (2019), Sec. 6.2 and Fig. 3 (pinwheel, Gaussian-
# mixture prior, a grid of alpha and beta), with dlbench's commands only:
#
#   run.sh [--smoke] [OUT]
#
# full:    the study gin/studies/repro_mathieu_pinwheel.gin (72 runs) trained, evaluated and
#          reported: runs into <repository>/runs/repro_mathieu_pinwheel (not committed), the report
#          (CSVs, figures/, index.html) into OUT, by default report/ beside this script. A second
#          call reuses the finished runs and redraws the report.
# --smoke: the same commands on a 2 x 2 grid, one seed, 5 steps, everything into OUT (by default a
#          new temporary folder): seconds, for the test suite; the committed files are left alone.
#
# The exit status is dlb_study's (0 only when every run finished); the report is written either way.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
STUDY=repro_mathieu_pinwheel  # gin/studies/repro_mathieu_pinwheel.gin, by name

SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=1
    shift
fi
if [[ $# -gt 1 || "${1:-}" == -* ]]; then
    echo "usage: run.sh [--smoke] [OUT]" >&2
    exit 2
fi

OUT=${1:+$(realpath -m "$1")}  # before the cd below, so that a relative OUT means where it was given
cd "$REPO"  # paths in the report relative to the repository, the same on every machine

if [[ $SMOKE == 1 ]]; then
    OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/repro_mathieu_pinwheel.XXXXXX")}
    mkdir -p "$OUT"
    # the study itself, shrunk through its macros
    cat > "$OUT/repro_mathieu_pinwheel_smoke.gin" <<GIN
include '$REPO/gin/studies/$STUDY.gin'
STEPS = 5
SEEDS = [0]
ALPHAS = [0.0, 10.0]
BETAS = [0.1, 5.0]
GIN
    STUDY="$OUT/repro_mathieu_pinwheel_smoke.gin"
    RUNS="$OUT/runs"
    REPORT="$OUT/report"
    WORKERS=1  # four tiny runs: a pool's start-up would cost more than it saves
else
    RUNS=runs/repro_mathieu_pinwheel
    REPORT=${OUT:-reports/reproductions/mathieu_pinwheel/report}
    WORKERS=2  # one single-threaded worker per core of the 2-core CPU it was measured on
fi

status=0
dlb_study "$STUDY" --runs_root "$RUNS" --workers "$WORKERS" --device cpu --no_progress || status=$?
dlb_report "$RUNS" --out "$REPORT"
echo "run.sh: report in $REPORT; wall time ${SECONDS} s"
exit $status
