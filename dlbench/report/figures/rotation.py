"""Rotations of the latent space (Mathieu et al. Theorem 2), from the rotation metric: per run, the
change of the beta-VAE objective under each rotation in units of the objective's Monte-Carlo
standard error, and MIG and the FactorVAE score of the rotated representation, rotation 0 being
the identity. One figure per dataset and rotation protocol; a study without the metric gets none.
"""

import functools
import re
import textwrap

import pandas as pd
from matplotlib.ticker import MaxNLocator

from dlbench.aggregate import metric_columns, parse_metric_column
from dlbench.report.figure_files import figure_title, plt, save_planned
from dlbench.report.figures.settings import datasets, figure_name, finished_metric_runs

METRIC = "rotation"
_PER_ROTATION = re.compile(r"^objective_change_r(\d+)$")
PANELS = (("objective_change_over_stderr", "objective change\n(Monte-Carlo standard errors of the objective)"),
          ("mig", "MIG"), ("factor_vae", "FactorVAE score"))


def rotation_protocols(columns):
    """{column prefix ('rotation[...]'): number of rotations} of the rotation metric's results on
    the mean representation, one per protocol."""
    found = {}
    for column in columns:
        parts = parse_metric_column(column)
        if parts and parts.metric == METRIC and parts.mode == "mean" and _PER_ROTATION.match(parts.key):
            prefix = column.rsplit(".", 1)[0]
            found[prefix] = max(found.get(prefix, 0), int(_PER_ROTATION.match(parts.key)[1]))
    return found


def rotation_data(results, dataset, prefix, num_rotations):
    """One row per finished run of dataset and rotation (0 = the identity, then 1 ..
    num_rotations): run_dir, method, seed, setting, rotation, objective_change (0 at the identity),
    objective_change_over_stderr and objective_change_stderr_over_stderr (the change and its
    paired standard error over the objective's standard error), mig and factor_vae; None when no
    run has the protocol's values."""
    needed = [f"{prefix}.objective_stderr", f"{prefix}.mig", f"{prefix}.factor_vae"]
    if not set(needed) <= set(results.columns):
        return None
    runs = finished_metric_runs(results, dataset, needed)
    if runs.empty:
        return None
    rows = []
    for _, run in runs.iterrows():
        for r in range(num_rotations + 1):
            suffix = f"_r{r}" if r else ""
            change = run[f"{prefix}.objective_change{suffix}"] if r else 0.0
            change_stderr = run[f"{prefix}.objective_change_stderr{suffix}"] if r else 0.0
            stderr = run[f"{prefix}.objective_stderr"]
            rows.append({"run_dir": run["run_dir"], "method": run["method"], "seed": run["seed"],
                         "setting": run["setting"], "rotation": r, "objective_change": change,
                         "objective_change_over_stderr": change / stderr,
                         "objective_change_stderr_over_stderr": change_stderr / stderr,
                         "mig": run[f"{prefix}.mig{suffix}"], "factor_vae": run[f"{prefix}.factor_vae{suffix}"]})
    return pd.DataFrame(rows)


def plot_rotation(data, dataset, study=None, protocol=""):
    """Three panels against the rotation index, one line per run: the objective's change in
    standard errors of the objective (with the change's own paired standard error as a bar), MIG,
    FactorVAE; the runs' legend beneath them."""
    fig, axes = plt.subplots(1, 3, figsize=(15.0, 4.5))
    for (_, method, setting, seed), run in data.groupby(["run_dir", "method", "setting", "seed"], sort=False):
        label = f"{method}, {setting}, seed {seed}" if setting else f"{method}, seed {seed}"
        axes[0].errorbar(run["rotation"], run["objective_change_over_stderr"],
                         yerr=run["objective_change_stderr_over_stderr"], fmt="o-", markersize=4, capsize=2,
                         label=label)
        for ax, (column, _) in zip(axes[1:], PANELS[1:]):
            ax.plot(run["rotation"], run[column], "o-", markersize=4, label=label)
    for ax, (_, name) in zip(axes, PANELS):
        ax.set_xlabel("rotation (0: identity; 1 and on: Haar-random)")
        ax.set_ylabel(name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8, ncol=1)
    title = figure_title("the objective, MIG and FactorVAE under rotations of the latent space", dataset, study)
    protocol = textwrap.fill(protocol.replace(",", ", "), 150)
    fig.suptitle(title + (f"\n{protocol}" if protocol else ""), fontsize=10)
    fig.tight_layout()
    return fig


def planned(results, board):
    """A figure per dataset and rotation protocol: {name: a function of the study drawing it}
    (empty without the metric)."""
    del board  # one line per run: results holds them
    figures = {}
    for prefix, num_rotations in rotation_protocols(metric_columns(results)).items():
        for dataset in datasets(results):
            data = rotation_data(results, dataset, prefix, num_rotations)
            if data is not None:
                figures[figure_name("rotation", dataset, prefix)] = functools.partial(
                    plot_rotation, data, dataset, protocol=prefix[len(METRIC):])
    return figures


def draw_figures(results, board, folder, study=None):
    """Draw every figure of planned(results, board) into folder: {name: [png, pdf]}."""
    return save_planned(planned(results, board), folder, study)
