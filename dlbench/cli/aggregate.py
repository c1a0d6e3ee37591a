"""dlb_aggregate: results.csv and leaderboard.csv of a study."""

from dlbench.cli.common import make_parser, run_main


def _body(argv):
    parser = make_parser("dlb_aggregate", "Collect every run under RUNS_ROOT into results.csv (one row per run) "
                         "and leaderboard.csv (mean, std and standard error over seeds per setting).")
    parser.add_argument("runs_root", metavar="RUNS_ROOT")
    parser.add_argument("--out", help="output folder (default reports/<name of RUNS_ROOT>)")
    args = parser.parse_args(argv)

    from pathlib import Path

    from dlbench.aggregate import aggregate

    out = Path(args.out) if args.out else Path("reports") / Path(args.runs_root).resolve().name
    results, board = aggregate(args.runs_root, out)
    print(f"{len(results)} runs, {len(board)} settings -> {out}/results.csv, {out}/leaderboard.csv")


def main(argv=None):
    return run_main("dlb_aggregate", _body, argv)
