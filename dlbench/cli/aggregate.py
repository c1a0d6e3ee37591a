"""dlb_aggregate: a study's results, leaderboard, best settings, representative runs and report."""

import argparse
from pathlib import Path

from dlbench.cli.common import make_parser, path, run_main
from dlbench.errors import UserError
from dlbench.selection import add_only_argument

# Where dlb_train and dlb_study write by default, so what a bare dlb_aggregate reads.
DEFAULT_RUNS_ROOT = Path("runs")


def _body(argv):
    parser = make_parser("dlb_aggregate", "Collect every run under RUNS_ROOT into results.csv and "
                         "results.parquet (one row per run), leaderboard.csv (per setting: runs finished, failed "
                         "and unfinished, and mean, std, standard error, median, quartiles and upper-half mean over "
                         "the finished seeds), best.csv (the best setting per dataset and method), "
                         "representatives.csv (a representative run per setting) and report.json (what was "
                         "aggregated, and the runs that failed or did not finish). Unreadable files and duplicate "
                         "copies of runs are left out and listed.")
    add_arguments(parser)
    parser.add_argument("--report", action="store_true",
                        help="also draw the figures and write index.html, the browsable report (as dlb_report)")
    args = parser.parse_args(argv)
    runs_root, out = paths(args)
    if args.report:
        from dlbench.cli.report import build_and_print

        return build_and_print(runs_root, out, args.rank_by, args.only)

    from dlbench.aggregate import aggregate_runs

    print_aggregation(aggregate_runs(runs_root, out, rank_by=args.rank_by, only=args.only))


def add_arguments(parser):
    """RUNS_ROOT, --out, --rank_by and --only, which dlb_aggregate and dlb_report share."""
    parser.add_argument("runs_root", metavar="RUNS_ROOT", nargs="?", type=path,
                        help="folder holding the run directories, searched recursively for run.json "
                             "(default: runs/ in the current folder, where dlb_train and dlb_study write)")
    parser.add_argument("--out", type=path, help="output folder (default reports/<name of RUNS_ROOT>)")
    parser.add_argument("--rank_by", metavar="METRIC", type=rank_by_name,
                        help="what best.csv ranks settings by: a metric (its headline value under the default "
                             "protocol, e.g. mig for mig.discrete_mig, factor_vae for its eval_accuracy; "
                             "sampled.mig for the sampled representation; 'mig[num_bins=10]' for another protocol) "
                             "or a column of results.csv holding measured values (a metric's, train_result.*; "
                             "for a metric of several values without a headline, one of them, e.g. "
                             "unsupervised.mutual_info_score; not a setting such as hp.beta) (default: mig)")
    add_only_argument(parser)


def rank_by_name(text):
    """An argparse type for --rank_by: an empty one is a mistake (it had ranked by mig without a word)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name; give a metric, e.g. mig, or leave --rank_by out to rank by "
                                         "mig")
    return text


def paths(args):
    """(runs root, output folder) of the parsed arguments, with their defaults."""
    runs_root = Path(args.runs_root) if args.runs_root else _default_runs_root()
    out = Path(args.out) if args.out else Path("reports") / runs_root.resolve().name
    if not args.runs_root:
        print(f"no RUNS_ROOT given: aggregating {runs_root}/ into {out}")
    return runs_root, out


def print_aggregation(aggregation):
    """What the aggregation counted and wrote, and what it did not count."""
    counts = aggregation.report["counts"]
    ranked = aggregation.report["rank_by"]
    print(f"{count(counts['runs'], 'run')} ({counts['done']} finished, {counts['failed']} failed, "
          f"{counts['unfinished']} unfinished), {count(counts['settings'], 'setting')}"
          + (f"; best.csv ranked by {ranked}" if ranked else ""))
    for written in aggregation.files:
        print(f"wrote {written}")
    for line in aggregation.notes():
        print(line)


def count(number, thing):
    """'1 run', '2 runs'."""
    return f"{number} {thing}" + ("" if number == 1 else "s")


def _default_runs_root():
    if not DEFAULT_RUNS_ROOT.exists():  # a runs file is reported as a file by the usual check
        raise UserError(f"no RUNS_ROOT given and no {DEFAULT_RUNS_ROOT}/ folder here (where dlb_train and dlb_study "
                        f"write by default); give RUNS_ROOT, the folder that holds the run directories")
    return DEFAULT_RUNS_ROOT


def main(argv=None):
    return run_main("dlb_aggregate", _body, argv)
