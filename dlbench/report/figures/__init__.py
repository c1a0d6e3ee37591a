"""The study-level figures of a report, drawn from its aggregated tables: `results` (results.csv,
one row per run) and `board` (leaderboard.csv, one row per dataset, method and setting).

One module per figure kind, each with a function that returns the plotted data (a DataFrame),
one that draws a Figure from that data, planned(results, board), every figure of its kind the
data allows by name, not yet drawn, and draw_figures(results, board, folder, study), which saves
them:

- tradeoff: MIG (and the FactorVAE score) against reconstruction log-likelihood, per setting;
- distributions: each headline metric's spread over seeds, per setting;
- correlations: Spearman rank correlations between all scores, as a heatmap;
- strength: each headline metric against the method's regularisation strength;
- tc_vs_mig: total correlation against MIG, per run;
- rotation: the objective, MIG and FactorVAE under rotations of the latent space (rotation metric);
- elbo_terms: the beta-VAE objective, the ELBO and its terms against beta (Sikka et al. Figs. 1-2).

aggregate_posterior_density (the aggregate posterior q(z) of each setting's representative, for
models with two latents) needs the trained models, not only the tables: dlbench.report.build
draws it beside these, from representatives.csv and the runs root.

Only finished runs (status done) enter a figure. Points that summarise a setting are the
leaderboard's mean and standard error (its `.mean` and `.sem` columns); points per run come from
results. metric_columns says which metric columns are shown and how an axis names them.
"""

from dlbench.report.figure_files import save_planned
from dlbench.report.figures import (correlations, distributions, elbo_terms, rotation, strength, tc_vs_mig,
                                    tradeoff)

KINDS = (tradeoff, distributions, correlations, strength, tc_vs_mig, rotation, elbo_terms)


def planned_figures(results, board):
    """Every study-level figure the data allows, not yet drawn: {figure name: a function of study=
    that draws it}, grouped by kind in KINDS' order; a figure's name starts with its kind
    (tradeoff_, distribution_, correlations_, strength_, tc_vs_mig_, rotation_, elbo_terms_). Their
    names are known before any is drawn, so that what stands in their way is found before the
    report writes anything."""
    planned = {}
    for kind in KINDS:
        planned.update(kind.planned(results, board))
    return planned


def study_figures(results, board, folder, study=None, planned=None):
    """Draw every study-level figure the data allows (planned, where given: planned_figures' result)
    into folder (PNG and PDF, each written atomically) and return {figure name: [png path, pdf path]}.
    study names the study in the titles."""
    return save_planned(planned_figures(results, board) if planned is None else planned, folder, study)
