#!/usr/bin/env bash
# Regenerates this reproduction (Mathieu et al. 2019, Theorem 2): trains the three beta-VAEs of
# gin/studies/repro_mathieu_rotation.gin, evaluates the rotation metric on each, and writes the
# report (results.csv, leaderboard.csv, figures/, index.html) into OUT.
#
#   run.sh [--smoke] [OUT]
#
# OUT defaults to this folder (the committed files); the runs go to runs/repro_mathieu_rotation.
# --smoke runs the same commands with smoke.gin (a few steps, tiny metric protocols) into OUT,
# which it then needs (a temporary folder: the committed files are left alone), runs under OUT/runs.
set -euo pipefail
cd "$(dirname "$0")/../../.."  # the repository root: smoke.gin includes the study by its path from here
here=reports/reproductions/mathieu_rotation
if [[ "${1:-}" == "--smoke" ]]; then
    study="$here/smoke.gin"
    out="${2:?run.sh --smoke needs OUT, a folder outside the committed files}"
    runs="$out/runs"
else
    study=gin/studies/repro_mathieu_rotation.gin
    out="${1:-$here}"
    runs=runs/repro_mathieu_rotation
fi
dlb_study "$study" --runs_root "$runs" --workers 1 --device cpu --no_progress
dlb_report "$runs" --out "$out"
