"""Do the metrics agree? Spearman's rank correlation between every pair of score columns over the
finished runs of a dataset (Locatello et al., Fig. 2), as a heatmap with the coefficient written in
each cell. Each pair is ranked over the runs that hold both values; a pair with fewer than
MIN_RUNS such runs, or a constant column among them, has no coefficient (an empty cell, 'n/a').
One figure per dataset."""

import functools

import numpy as np

from dlbench.aggregate import metric_columns
from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.metric_columns import parse, score_columns
from dlbench.report.figures.settings import datasets, figure_name, finished_runs

MIN_RUNS = 3  # two runs are always ranked +1 or -1: no evidence of agreement


def correlation_data(results, dataset):
    """The Spearman rank correlation matrix of the score columns (index and columns named as in
    results) over dataset's finished runs, or None when fewer than two columns vary over at least
    MIN_RUNS runs."""
    runs = finished_runs(results)
    runs = runs[runs["dataset"] == dataset]
    columns = [c.column for c in score_columns(metric_columns(results))
               if runs[c.column].count() >= MIN_RUNS and runs[c.column].nunique() > 1]
    if len(columns) < 2:
        return None
    values = runs[columns].astype(float)
    return values.corr(method="spearman", min_periods=MIN_RUNS)


def plot_correlations(matrix, dataset, study=None, num_runs=None):
    """The heatmap of correlation_data's matrix; num_runs (finished runs) goes into the colour bar's label."""
    names = [parse(column).name for column in matrix.columns]
    size = max(5.0, 0.75 * len(names) + 3.0)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(matrix.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    for (i, j), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        ax.text(j, i, "n/a" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if abs(value) > 0.6 else "black")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("metric")
    ax.set_ylabel("metric")
    ax.set_title(figure_title("rank correlation between metrics", dataset, study), fontsize=10)
    over = f" over {num_runs} finished runs" if num_runs is not None else ""
    fig.colorbar(image, ax=ax, shrink=0.8).set_label(f"Spearman rank correlation{over} (-1 to 1)")
    return fig


def planned(results, board):
    """A heatmap per dataset whose finished runs allow one: {name: a function of the study drawing it}."""
    del board  # ranks need every run's value, which only results holds
    figures = {}
    done = finished_runs(results)
    for dataset in datasets(results):
        matrix = correlation_data(results, dataset)
        if matrix is not None:
            num_runs = int((done["dataset"] == dataset).sum())
            figures[figure_name("correlations", dataset)] = functools.partial(plot_correlations, matrix, dataset,
                                                                              num_runs=num_runs)
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
