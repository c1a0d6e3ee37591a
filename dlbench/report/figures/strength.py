"""Each headline metric against a method's regularisation strength: the leaderboard's mean over
seeds per setting with standard-error bars, one panel per metric, one figure per dataset and
method. The strength is the numeric hyperparameter that varies among the method's settings (the
one with the most values when several do); settings that differ in anything else besides are
drawn as separate lines, each in one colour in every panel, named in one legend below the panels."""

import functools
import textwrap

import pandas as pd

from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.metric_columns import board_columns, headline_columns, parse
from dlbench.report.figures.settings import (dataset_method_pairs, figure_name, method_colours, setting_label,
                                             short_name, strength_columns, varying_settings)

COLUMNS = ["hyperparameter", "strength", "series", "metric", "mean", "sem"]
PANEL_COLUMNS = 3
PANEL_LABEL_CHARS = 45  # a panel's axis label is wrapped to its width
LOG_SCALE_RATIO = 10  # strengths spanning a factor of ten or more are shown on a log axis


def strength_data(board, dataset, method):
    """One row per setting of dataset and method and headline metric with a mean: `strength` (the
    value of the strength hyperparameter, named in the `hyperparameter` column), `series` (the
    other varying settings, '' when none), `metric` (the column) and the board's `mean` and `sem`;
    None when no numeric hyperparameter varies."""
    rows = board[(board["dataset"] == dataset) & (board["method"] == method)]
    strengths = strength_columns(rows)
    if not strengths:
        return None
    strength = strengths[0]
    others = [c for c in varying_settings(rows) if c != strength]
    series = [setting_label(row, others) for _, row in rows.iterrows()]
    parts = [pd.DataFrame({"hyperparameter": strength, "strength": rows[strength].to_numpy(), "series": series,
                           "metric": metric.column, "mean": rows[f"{metric.column}.mean"].to_numpy(),
                           "sem": rows[f"{metric.column}.sem"].to_numpy()}).sort_values(["series", "strength"])
             for metric in headline_columns(board_columns(board))]
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True).dropna(subset=["mean"]).reset_index(drop=True)


def plot_strength(data, method, dataset, study=None):
    """The figure of strength_data's rows: a panel per metric, a line per series."""
    metrics = list(dict.fromkeys(data["metric"]))
    rows = -(-len(metrics) // PANEL_COLUMNS)
    cols = min(len(metrics), PANEL_COLUMNS)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows + 0.6), squeeze=False)
    hyperparameter = short_name(data["hyperparameter"].iloc[0])
    strengths = data["strength"].to_numpy(dtype=float)
    log_axis = strengths.min() > 0 and strengths.max() / strengths.min() >= LOG_SCALE_RATIO
    colour = method_colours(set(data["series"]))  # a series in one colour in every panel
    for ax, column in zip(axes.flat, metrics):
        for series, points in data[data["metric"] == column].groupby("series", sort=True):
            ax.errorbar(points["strength"], points["mean"], yerr=points["sem"], marker="o", capsize=3,
                        color=colour[series], label=f"{series}: mean ± s.e." if series else "mean ± s.e. over seeds")
        ax.set_xscale("log" if log_axis else "linear")
        ax.minorticks_off()
        grid = sorted(set(strengths))
        ax.set_xticks(grid, [f"{value:g}" for value in grid])  # ticks at the values swept
        ax.set_xlabel(f"{hyperparameter} ({method} regularisation strength)")
        ax.set_ylabel(textwrap.fill(parse(column).label, PANEL_LABEL_CHARS), fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    fig.suptitle(figure_title(f"{method}: metrics against {hyperparameter}", dataset, study), fontsize=10)
    fig.tight_layout()
    # one legend for all panels, below them: series named by several settings make long lines that,
    # in each panel, would cover its neighbours
    handles = {}
    for ax in axes.flat[:len(metrics)]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    labels = sorted(handles)
    fig.legend([handles[label] for label in labels], labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               fontsize=8, ncol=1 if max(map(len, labels)) > 60 else min(len(labels), 3), frameon=False)
    return fig


def planned(results, board):
    """A strength figure per dataset and method whose settings vary a numeric hyperparameter:
    {name: a function of the study drawing it}. results is not needed: the points are the
    leaderboard's."""
    del results
    figures = {}
    for dataset, method, _ in dataset_method_pairs(board):
        data = strength_data(board, dataset, method)
        if data is not None and not data.empty:
            figures[figure_name("strength", dataset, method)] = functools.partial(plot_strength, data, method, dataset)
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
