"""The study-level figures of a report, drawn from its aggregated tables: `results` (results.csv,
one row per run) and `board` (leaderboard.csv, one row per dataset, method and setting).

One module per figure kind, each with a function that returns the plotted data (a DataFrame),
one that draws a Figure from that data, and draw_figures(results, board, folder, study), which
saves every figure of its kind the data allows:

- tradeoff: MIG (and the FactorVAE score) against reconstruction log-likelihood, per setting;
- distributions: each headline metric's spread over seeds, per setting;
- correlations: Spearman rank correlations between all scores, as a heatmap;
- strength: each headline metric against the method's regularisation strength;
- tc_vs_mig: total correlation against MIG, per run.

Only finished runs (status done) enter a figure. Points that summarise a setting are the
leaderboard's mean and standard error (its `.mean` and `.sem` columns); points per run come from
results. metric_columns says which metric columns are shown and how an axis names them.
"""

from dlbench.report.figures import correlations, distributions, strength, tc_vs_mig, tradeoff

KINDS = (tradeoff, distributions, correlations, strength, tc_vs_mig)


def study_figures(results, board, folder, study=None):
    """Draw every study-level figure the data allows into folder (PNG and PDF, each written
    atomically) and return {figure name: [png path, pdf path]}, grouped by kind in KINDS' order;
    a figure's name starts with its kind (tradeoff_, distribution_, correlations_, strength_,
    tc_vs_mig_). study names the study in the titles."""
    written = {}
    for kind in KINDS:
        written.update(kind.draw_figures(results, board, folder, study))
    return written
