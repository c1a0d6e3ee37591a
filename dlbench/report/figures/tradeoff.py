"""Disentanglement against reconstruction (ISA-VAE Fig. 5, beta-TCVAE Fig. 2, Mathieu et al. Fig. 2):
one point per method and setting, the leaderboard's mean over seeds of the score (MIG, or the
FactorVAE score) against the mean reconstruction log-likelihood, with standard-error bars in both
directions, each point labelled by its setting (beta=4). A method whose settings also differ in
something that is not a number (its prior) is drawn as one series per value, each point labelled
by what varies within its series. One figure per dataset and score column."""

import functools

import pandas as pd

from dlbench.aggregate import setting_columns
from dlbench.aggregate.columns import IDENTITY
from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.metric_columns import board_columns, headline_columns, score_columns
from dlbench.report.figures.settings import datasets, figure_name, label_scatter, label_series, method_colours

SCORE_METRICS = ("mig", "mig_chen", "factor_vae")
# recon_ll's column, or else the ELBO's reconstruction term: the same quantity, E_q[log p(x|z)]
RECONSTRUCTION = (("recon_ll", "recon_ll"), ("elbo", "recon_ll"))


def reconstruction_column(columns):
    """The MetricColumn of the reconstruction log-likelihood among metric columns (the default
    protocol before others), or None."""
    scores = [c for c in score_columns(columns) if c.mode == "mean"]
    for metric, key in RECONSTRUCTION:
        found = [c for c in scores if (c.metric, c.key) == (metric, key)]
        if found:
            return found[0]
    return None


def tradeoff_scores(columns):
    """The disentanglement scores plotted against reconstruction: MIG, Chen et al.'s MIG and the
    FactorVAE score, every protocol evaluated."""
    return [c for c in headline_columns(columns) if c.metric in SCORE_METRICS]


def tradeoff_data(board, dataset, score, reconstruction):
    """One row per setting of dataset with both means: dataset, method, the setting columns,
    `series` and `setting` (label_series) and the board's `<column>.mean` and `<column>.sem` of the
    score and the reconstruction columns; ordered by method, series and setting."""
    numbers = [f"{c}.{stat}" for c in (score, reconstruction) for stat in ("mean", "sem")]
    rows = board[board["dataset"] == dataset].dropna(subset=[f"{score}.mean", f"{reconstruction}.mean"])
    if rows.empty:
        return pd.DataFrame(columns=[*IDENTITY, "series", "setting", *numbers])
    labelled = pd.concat([label_series(group) for _, group in rows.groupby("method", sort=True)])
    return labelled[[*IDENTITY, *setting_columns(board), "series", "setting", *numbers]].reset_index(drop=True)


def plot_tradeoff(data, score, reconstruction, dataset, study=None):
    """The figure of tradeoff_data's rows (score and reconstruction are MetricColumns)."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colours = method_colours(data["series"].unique())
    for series, points in data.groupby("series", sort=True):
        x, y = points[f"{reconstruction.column}.mean"], points[f"{score.column}.mean"]
        ax.errorbar(x, y, xerr=points[f"{reconstruction.column}.sem"], yerr=points[f"{score.column}.sem"],
                    fmt="o", capsize=3, color=colours[series], label=series)
        for label, xi, yi in zip(points["setting"], x, y):
            ax.annotate(label, (xi, yi), textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=colours[series])
    title = figure_title(f"{score.name} against reconstruction", dataset, study)
    label_scatter(ax, reconstruction.label, score.label, title, "mean ± s.e. over seeds")
    return fig


def planned(results, board):
    """Every tradeoff figure the board allows: {name: a function of the study drawing it}, empty
    when no reconstruction log-likelihood was evaluated. results is not needed: the points are the
    leaderboard's."""
    del results
    columns = board_columns(board)
    reconstruction = reconstruction_column(columns)
    figures = {}
    if reconstruction is None:
        return figures
    for dataset in datasets(board):
        for score in tradeoff_scores(columns):
            data = tradeoff_data(board, dataset, score.column, reconstruction.column)
            if not data.empty:
                figures[figure_name("tradeoff", dataset, score.column)] = functools.partial(
                    plot_tradeoff, data, score, reconstruction, dataset)
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
