"""Total correlation against MIG (beta-TCVAE Fig. 4): does penalising the total correlation of
q(z) buy disentanglement? One point per finished run that has both, coloured by method. One figure
per dataset and MIG column; a study that did not evaluate total_correlation gets none."""

import functools

from dlbench.aggregate import metric_columns, setting_columns
from dlbench.aggregate.columns import IDENTITY
from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.metric_columns import headline_columns
from dlbench.report.figures.settings import datasets, figure_name, finished_metric_runs, label_scatter, method_colours

MIG_METRICS = ("mig", "mig_chen")
TOTAL_CORRELATION = "total_correlation"


def tc_vs_mig_columns(columns):
    """([MIG MetricColumns], total correlation MetricColumn) among metric columns, or None when
    either is missing."""
    headline = headline_columns(columns)
    migs = [c for c in headline if c.metric in MIG_METRICS]
    tcs = [c for c in headline if c.metric == TOTAL_CORRELATION]
    return (migs, tcs[0]) if migs and tcs else None


def tc_vs_mig_data(results, dataset, mig, total_correlation):
    """One row per finished run of dataset holding both columns: run_dir, dataset, method, seed, the
    setting columns, `setting` and the two values (under their column names); None when no run
    holds both (total correlation not evaluated, or no MIG)."""
    if mig not in results.columns or total_correlation not in results.columns:
        return None
    runs = finished_metric_runs(results, dataset, [mig, total_correlation])
    if runs.empty:
        return None
    return runs[["run_dir", *IDENTITY, "seed", *setting_columns(results), "setting", mig,
                 total_correlation]].reset_index(drop=True)


def plot_tc_vs_mig(data, mig, total_correlation, dataset, study=None):
    """The figure of tc_vs_mig_data's rows (mig and total_correlation are MetricColumns)."""
    fig, ax = plt.subplots(figsize=(7.0, 5.0))
    colours = method_colours(data["method"].unique())
    for method, runs in data.groupby("method", sort=True):
        ax.plot(runs[mig.column], runs[total_correlation.column], "o", color=colours[method], alpha=0.75,
                markersize=5, label=method)
    label_scatter(ax, mig.label, total_correlation.label,
                  figure_title(f"total correlation against {mig.name}", dataset, study), "method (one point per run)")
    return fig


def planned(results, board):
    """A figure per dataset and MIG column where total correlation was computed: {name: a function
    of the study drawing it} (empty for a study without total correlation)."""
    del board  # one point per run: results holds them
    figures = {}
    found = tc_vs_mig_columns(metric_columns(results))
    if found is None:
        return figures
    migs, total_correlation = found
    for dataset in datasets(results):
        for mig in migs:
            data = tc_vs_mig_data(results, dataset, mig.column, total_correlation.column)
            if data is not None:
                figures[figure_name("tc_vs_mig", dataset, mig.column)] = functools.partial(
                    plot_tc_vs_mig, data, mig, total_correlation, dataset)
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
