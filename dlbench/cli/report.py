"""dlb_report: a study's aggregation (as dlb_aggregate), its figures and index.html, the page that
shows them."""

from dlbench.cli.aggregate import add_arguments, count, paths, print_aggregation
from dlbench.cli.common import make_parser, run_main


def _body(argv):
    parser = make_parser("dlb_report", "Aggregate every run under RUNS_ROOT as dlb_aggregate does (results.csv, "
                         "leaderboard.csv, best.csv, representatives.csv, report.json), draw the study's figures, "
                         "the training curves of each setting and the pictures of each representative model into "
                         "OUT/figures/ (PNG and PDF), and write OUT/index.html: one page, to open in a browser "
                         "from disk, with the study's configuration, the leaderboard as a sortable table, every "
                         "figure, the failed and unfinished runs and links to every file.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    runs_root, out = paths(args)
    build_and_print(runs_root, out, args.rank_by, args.only)


def build_and_print(runs_root, out, rank_by, only=None):
    """Build the report (dlbench.report.build), printing each stage as it starts, then what was
    written and where the page is."""
    from dlbench.report.build import build_report

    report = build_report(runs_root, out, rank_by, log=print, only=only)
    print_aggregation(report.aggregation)
    figures = report.figure_files
    drawn = sum(1 for entry in report.representatives if entry.pictures)
    print(f"wrote {count(len(figures), 'figure file')} under {out / 'figures'}: "
          f"{count(len(report.figures), 'study figure')}, {count(len(report.curves), 'training curve')}, "
          f"pictures of {count(drawn, 'representative model')} (PNG and PDF)")
    if report.problems:
        print(f"{count(len(report.problems), 'thing')} not drawn, listed above and on the page")
    print(f"wrote {report.index}: open it in a browser")


def main(argv=None):
    return run_main("dlb_report", _body, argv)
