# What every reproduction's run.sh shares; run.sh sources it. A run.sh regenerates its reproduction
# with dlbench's commands only:
#
#   run.sh [--cpu | --smoke] [OUT]
#
# (no option): the reproduction at the scale its README reports, runs into runs/<study> of the
#          repository (not committed), the report into OUT, by default report/ beside run.sh. A
#          second call reuses the finished runs and redraws the report.
# --cpu:   for the reproductions that need a GPU, the same slice at the reduced, labelled scale of a
#          2-core CPU; the report by default into report_cpu/ beside run.sh.
# --smoke: the same commands on a few runs of a few steps, everything into OUT (by default a new
#          temporary folder): seconds, for the test suite; the committed files are left alone.
#
# The exit status is dlb_study's (0 only when every run finished). The report is written when the
# study ran to its end (0, or 1 with failed runs), not when it was refused (2) or stopped by a
# signal (128 + it): the script then stops with that status.

# reproduction_args NAME ARGS...: sets SCALE (full, cpu or smoke) and OUT (absolute, or empty for
# the default), refusing anything else, then enters the repository root, so that the paths the
# report records are the same on every machine.
reproduction_args() {
    local name=$1
    shift
    SCALE=full
    case "${1:-}" in
        --smoke) SCALE=smoke; shift ;;
        --cpu) SCALE=cpu; shift ;;
    esac
    if [[ $# -gt 1 || "${1:-}" == -* ]]; then
        echo "usage: run.sh [--cpu | --smoke] [OUT]" >&2
        exit 2
    fi
    OUT=${1:+$(realpath -m "$1")}  # before the cd, so that a relative OUT means where it was given
    HERE=reports/reproductions/$name
    cd "$(dirname "${BASH_SOURCE[0]}")/../.."
    if [[ $SCALE == smoke ]]; then
        OUT=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/$name.XXXXXX")}
        writable_folder "$OUT"
    fi
}

# writable_folder DIR: makes DIR, or says in one line that it cannot be written and exits 2, before
# anything is trained (a report that cannot be written should not wait for hours of training).
writable_folder() {
    if ! mkdir -p "$1" 2>/dev/null || [[ ! -w $1 ]]; then
        echo "run.sh: cannot write to '$1'; give an OUT folder you may write to" >&2
        exit 2
    fi
}

# smoke_study INCLUDE: a study file in OUT that includes INCLUDE (a study's name or path) and then
# the macro bindings read from standard input, which shrink it; prints the file's path.
smoke_study() {
    local include=$1 file
    [[ $include == *.gin ]] || include="gin/studies/$include.gin"
    file="$OUT/$(basename "$include" .gin)_smoke.gin"
    { echo "include '$(realpath "$include")'"; cat; } > "$file"
    echo "$file"
}

# study_and_report STUDY RUNS REPORT [dlb_study options] -- [dlb_report options]: trains and
# evaluates the study's runs under RUNS, then, when the study ran to its end (some runs may have
# failed), draws the report of RUNS into REPORT; returns the study's exit status.
study_and_report() {
    local study=$1 runs=$2 report=$3 status=0 made=
    shift 3
    local study_options=() report_options=()
    while [[ $# -gt 0 && $1 != -- ]]; do study_options+=("$1"); shift; done
    [[ $# -gt 0 ]] && shift
    report_options=("$@")
    [[ -e $report ]] || made=yes
    writable_folder "$report"
    dlb_study "$study" --runs_root "$runs" --no_progress "${study_options[@]}" || status=$?
    if (( status > 1 )); then  # refused, or stopped: dlb_study said why; a report would be of other runs
        if [[ -n $made ]]; then rmdir "$report" 2>/dev/null || true; fi
        return $status
    fi
    dlb_report "$runs" --out "$report" "${report_options[@]}"
    echo "run.sh: report in $report; wall time ${SECONDS} s"
    return $status
}

# study_v1_slice: a reproduction that is the slice of study_v1 its run.sh names in the array ONLY
# (--only options; SMOKE_ONLY for the smoke run, by default the same): at full scale study_v1 into
# runs/study_v1, shared with the whole study and its other slices; at --cpu the same slice of
# study_v1_cpu into runs/study_v1_cpu; at --smoke study_v1_cpu at 5 steps, one seed, tiny metric
# protocols.
study_v1_slice() {
    case $SCALE in
        full)
            study_and_report study_v1 runs/study_v1 "${OUT:-$HERE/report}" "${ONLY[@]}" -- "${ONLY[@]}" \
                --rank_by mig_chen ;;
        cpu)
            study_and_report study_v1_cpu runs/study_v1_cpu "${OUT:-$HERE/report_cpu}" "${ONLY[@]}" --workers 2 \
                --device cpu -- "${ONLY[@]}" ;;
        smoke)
            local study only=("${SMOKE_ONLY[@]:-${ONLY[@]}}")
            study=$(smoke_study study_v1_cpu <<'GIN'
STEPS = 5
SEEDS = [0]
FACTOR_VAE = {'num_train': 20, 'num_eval': 10, 'num_variance_estimate': 100}
RECON_LL = {'num_points': 50}
GIN
)
            study_and_report "$study" "$OUT/runs" "$OUT/report" "${only[@]}" --workers 1 --device cpu -- "${only[@]}" ;;
    esac
}
