"""The beta-VAE objective and its terms against beta (Sikka et al., Figs. 1-2): one figure per
dataset and method whose objective weighs KL(q(z|x) || p(z)) by a hyperparameter (KL_WEIGHTED)
and whose runs were evaluated with the elbo metric. Each panel is a quantity's mean over a
setting's finished runs with its standard error (the leaderboard's statistics, `summarise`)
against that weight:

- the objective E_q[log p(x|z)] - beta KL, each run's own from its elbo result (Prop. 1: it does
  not increase with beta at the optimum);
- the ELBO (Prop. 3: largest at beta = 1), its reconstruction term and the KL (Prop. 2: neither
  increases with beta);
- where the study evaluated them: the IWAE bound on log p_theta(x), with the data's exact log p(x)
  (iwae's exact_log_px) as a dashed line, and the inference errors (TIE, TIE with the latents
  matched to the sources, MIE).

Settings that differ in anything besides beta are separate lines, named in the legend. A dotted
line marks beta = 1, the plain VAE.
"""

import functools
import textwrap

import pandas as pd

from dlbench.aggregate import parse_metric_column, resolve_metric_column, summarise
from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.metric_columns import parse
from dlbench.report.figures.settings import (dataset_method_pairs, figure_name, finished_runs, setting_label,
                                             short_name, varying_settings)

# method: the hyperparameter that weighs KL(q(z|x) || p(z)) in its whole objective
KL_WEIGHTED = {"beta_vae": "hp.beta", "isa_vae": "hp.beta"}
OBJECTIVE = "objective"
OBJECTIVE_LABEL = "objective E_q[log p(x|z)] - beta KL (nats per observation)"
# the panels after the objective, as (metric, key), in the order drawn
PANELS = (("elbo", "elbo"), ("elbo", "recon_ll"), ("elbo", "kl"), ("iwae", "iwae"),
          ("inference_error", "true_inference_error"), ("inference_error", "true_inference_error_aligned"),
          ("inference_error", "model_inference_error"))
# a dashed reference line in a panel: (metric, key) of the panel -> (key of the same metric, legend)
REFERENCES = {("iwae", "iwae"): ("exact_log_px", "exact log p(x) of the data")}
COLUMNS = ["beta", "series", "panel", "quantity", "mean", "sem", "count"]
PANEL_COLUMNS = 3
LOG_SCALE_RATIO = 10  # betas spanning a factor of ten or more are shown on a log axis


def metric_column(results, metric, key):
    """The column of metric's key in the protocol resolve_metric_column picks for the metric (the
    default one where present), or None when no run has it."""
    headline = resolve_metric_column(results, metric)
    if headline is None:
        return None
    column = f"{metric}{parse_metric_column(headline).tag}.{key}"
    return column if column in results.columns else None


def elbo_terms_data(results, dataset, method):
    """One row per setting of dataset and method and quantity: `beta` (the KL weight), `series`
    (the other settings that vary, '' when none), `panel` (the panel's quantity), `quantity`
    ('objective' or a results column; a reference line's quantity differs from its panel), and
    the mean, sem and count over the setting's finished runs. None when the method does not weigh
    the KL, its weight does not vary, or the runs have no elbo result."""
    beta = KL_WEIGHTED.get(method)
    runs = finished_runs(results)
    runs = runs[(runs["dataset"] == dataset) & (runs["method"] == method)]
    recon, kl = metric_column(results, "elbo", "recon_ll"), metric_column(results, "elbo", "kl")
    if beta not in runs.columns or recon is None or kl is None or runs[beta].nunique() < 2:
        return None
    runs = runs.assign(**{OBJECTIVE: runs[recon] - runs[beta] * runs[kl]})
    quantities = [(OBJECTIVE, OBJECTIVE)]
    for metric, key in PANELS:
        panel = metric_column(results, metric, key)
        if panel is None:
            continue
        quantities.append((panel, panel))
        if (metric, key) in REFERENCES:
            reference = metric_column(results, metric, REFERENCES[metric, key][0])
            quantities += [(panel, reference)] if reference else []
    others = [c for c in varying_settings(runs) if c != beta]
    rows = []
    for _, setting in runs.groupby([beta, *others], dropna=False, sort=True):
        first = setting.iloc[0]
        for panel, quantity in quantities:
            stats = summarise(setting[quantity].dropna().to_numpy(dtype=float))
            rows.append({"beta": float(first[beta]), "series": setting_label(first, others), "panel": panel,
                         "quantity": quantity, "mean": stats["mean"], "sem": stats["sem"], "count": stats["count"]})
    data = pd.DataFrame(rows, columns=COLUMNS)
    return data[data["count"] > 0].reset_index(drop=True)


def panel_label(panel):
    if panel == OBJECTIVE:
        return OBJECTIVE_LABEL
    column = parse(panel)
    return column.label if column else panel


def reference_legend(quantity):
    parts = parse_metric_column(quantity)
    return next(legend for (metric, _), (key, legend) in REFERENCES.items()
                if parts and parts.metric == metric and parts.key == key)


def plot_elbo_terms(data, method, dataset, hyperparameter="beta", study=None):
    """The figure of elbo_terms_data's rows: a panel per quantity, a line per series."""
    panels = list(dict.fromkeys(data["panel"]))
    rows = -(-len(panels) // PANEL_COLUMNS)
    cols = min(len(panels), PANEL_COLUMNS)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows + 0.6), squeeze=False)
    betas = sorted(set(data["beta"]))
    log_axis = betas[0] > 0 and betas[-1] / betas[0] >= LOG_SCALE_RATIO
    for ax, panel in zip(axes.flat, panels):
        shown = data[data["panel"] == panel]
        for (series, quantity), points in shown.groupby(["series", "quantity"], sort=False):
            reference = quantity != panel
            label = reference_legend(quantity) if reference else "mean ± s.e. over seeds"
            ax.errorbar(points["beta"], points["mean"], yerr=points["sem"], capsize=3,
                        marker="" if reference else "o", linestyle="--" if reference else "-",
                        color="grey" if reference else None, label=f"{series}: {label}" if series else label)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log" if log_axis else "linear")
        ax.minorticks_off()
        ax.set_xticks(betas, [f"{value:g}" for value in betas], fontsize=7, rotation=45)  # the values swept
        ax.set_xlabel(f"{hyperparameter} (weight of the KL; dotted: 1)")
        ax.set_ylabel(textwrap.fill(panel_label(panel), 45), fontsize=8)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(figure_title(f"{method}: the objective and its terms against {hyperparameter}", dataset, study),
                 fontsize=10)
    fig.tight_layout()
    return fig


def planned(results, board):
    """A figure per dataset and method the data allows (see elbo_terms_data): {name: a function of
    the study drawing it}. The points are computed from results (the objective is no column of the
    leaderboard)."""
    del board
    figures = {}
    for dataset, method, _ in dataset_method_pairs(results):
        data = elbo_terms_data(results, dataset, method)
        if data is not None and not data.empty:
            figures[figure_name("elbo_terms", dataset, method)] = functools.partial(
                plot_elbo_terms, data, method, dataset, short_name(KL_WEIGHTED[method]))
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
