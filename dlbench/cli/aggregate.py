"""dlb_aggregate: results.csv and leaderboard.csv of a study."""

from pathlib import Path

from dlbench.cli.common import make_parser, run_main
from dlbench.errors import UserError

# Where dlb_train and dlb_study write by default, so what a bare dlb_aggregate reads.
DEFAULT_RUNS_ROOT = Path("runs")


def _body(argv):
    parser = make_parser("dlb_aggregate", "Collect every run under RUNS_ROOT into results.csv (one row per run) "
                         "and leaderboard.csv (mean, std and standard error over seeds per setting). "
                         "Unreadable files and duplicate copies of runs are left out and listed.")
    parser.add_argument("runs_root", metavar="RUNS_ROOT", nargs="?",
                        help="folder holding the run directories, searched recursively for run.json "
                             "(default: runs/ in the current folder, where dlb_train and dlb_study write)")
    parser.add_argument("--out", help="output folder (default reports/<name of RUNS_ROOT>)")
    args = parser.parse_args(argv)

    from dlbench.aggregate import aggregate_runs

    runs_root = Path(args.runs_root) if args.runs_root else _default_runs_root()
    out = Path(args.out) if args.out else Path("reports") / runs_root.resolve().name
    if not args.runs_root:
        print(f"no RUNS_ROOT given: aggregating {runs_root}/ into {out}")
    aggregation = aggregate_runs(runs_root, out)
    print(f"{len(aggregation.results)} runs, {len(aggregation.board)} settings -> "
          f"{out}/results.csv, {out}/leaderboard.csv")
    for line in aggregation.notes():
        print(line)


def _default_runs_root():
    if not DEFAULT_RUNS_ROOT.exists():  # a runs file is reported as a file by the usual check
        raise UserError(f"no RUNS_ROOT given and no {DEFAULT_RUNS_ROOT}/ folder here (where dlb_train and dlb_study "
                        f"write by default); give RUNS_ROOT, the folder that holds the run directories")
    return DEFAULT_RUNS_ROOT


def main(argv=None):
    return run_main("dlb_aggregate", _body, argv)
