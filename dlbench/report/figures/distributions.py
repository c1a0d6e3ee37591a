"""The spread over seeds (Locatello et al.'s violin plots, beta-TCVAE Fig. 3): for each headline
metric, one violin per method and setting over its finished runs, with every run drawn as a point
on it. A setting with fewer than two distinct values has no spread to draw: only its points are.
One figure per dataset and headline metric."""

import functools

from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from dlbench.aggregate import metric_columns, setting_columns
from dlbench.aggregate.columns import IDENTITY
from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.metric_columns import headline_columns
from dlbench.report.figures.settings import datasets, figure_name, finished_metric_runs, method_colours

MIN_VIOLIN_VALUES = 2  # distinct values: fewer make no density


def distribution_data(results, dataset, column):
    """One row per finished run of dataset with a value of column: run_dir, dataset, method, seed,
    the setting columns, `setting` (its label) and the value (under the column's name); ordered by
    method and setting."""
    runs = finished_metric_runs(results, dataset, [column])
    return runs[["run_dir", *IDENTITY, "seed", *setting_columns(results), "setting", column]].reset_index(drop=True)


def plot_distribution(data, metric, dataset, study=None):
    """The figure of distribution_data's rows (metric is their MetricColumn)."""
    groups = list(data.groupby(["method", "setting"], sort=False))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(groups) + 2.5), 5.0))
    colours = method_colours(data["method"].unique())
    for position, ((method, _), runs) in enumerate(groups):
        values = runs[metric.column].to_numpy(dtype=float)
        if len(set(values)) >= MIN_VIOLIN_VALUES:
            body = ax.violinplot(values, positions=[position], widths=0.8, showextrema=False)["bodies"][0]
            body.set_facecolor(colours[method])
            body.set_alpha(0.35)
        ax.plot([position] * len(values), values, "o", color=colours[method], markersize=3.5, alpha=0.8)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{method}\n{setting}" if setting else method for (method, setting), _ in groups],
                       rotation=45 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center", fontsize=8)
    ax.set_xlabel("method and setting")
    ax.set_ylabel(metric.label)
    ax.set_title(figure_title(f"{metric.name} over seeds", dataset, study), fontsize=10)
    handles = [Patch(color=colours[m], alpha=0.5, label=m) for m in sorted(colours)]
    handles.append(Line2D([], [], marker="o", linestyle="", color="grey", markersize=4, label="one run (seed)"))
    ax.legend(handles=handles, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def planned(results, board):
    """A distribution figure per dataset and headline metric with finished runs: {name: a function
    of the study drawing it}."""
    del board  # the spread needs every seed's value, which only results holds
    figures = {}
    for dataset in datasets(results):
        for metric in headline_columns(metric_columns(results)):
            data = distribution_data(results, dataset, metric.column)
            if not data.empty:
                figures[figure_name("distribution", dataset, metric.column)] = functools.partial(
                    plot_distribution, data, metric, dataset)
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
