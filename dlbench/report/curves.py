"""Training curves of one method and setting across its seeds: the median and the inter-quartile
band (25% to 75%) over runs of the loss, the reconstruction term and the KL at each logged step,
read from each run's model/train_log.csv (one row per log step, written by LogWriter in
dlbench/train/run.py: `step`, `images_per_second`, then the method's scalars).

Runs are aligned on the steps that every one of them logged: a run trained to fewer steps, or
logged at other steps, shortens the curve to the steps all share (pass finished runs of one
setting). Quantiles are numpy's default (linear interpolation between order statistics).
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dlbench import rundir
from dlbench.errors import UserError
from dlbench.report.figure_files import figure_title, save_figure

# what the curves show, in the order of the panels; every method logs these three (vae_scalars)
QUANTITIES = ("loss", "reconstruction", "kl")
AXIS_LABELS = {"loss": "loss (nats per observation)",
               "reconstruction": "-log p(x|z) (nats per observation)",
               "kl": "KL (nats per observation)"}


@dataclass
class Band:
    """One quantity over the shared steps: the median and the quartiles over the runs."""

    steps: np.ndarray
    median: np.ndarray
    q25: np.ndarray
    q75: np.ndarray


@dataclass
class CurveData:
    """What training_curves plots: a Band per quantity that every counted run logged, the runs
    counted, and the runs left out (run directory, why: no log, an unreadable log)."""

    bands: dict
    runs: list
    left_out: list = field(default_factory=list)


def read_train_log(run_dir):
    """A run's train_log.csv as a DataFrame of numbers, one row per logged step (sorted; a step
    logged twice keeps its last row)."""
    path = rundir.train_log_path(run_dir)
    table = pd.read_csv(path)
    if "step" not in table.columns:
        raise ValueError("it has no step column")
    table = table.apply(pd.to_numeric, errors="coerce")
    if table.empty or table["step"].isna().any():
        raise ValueError("its step column is empty or holds values that are not numbers")
    return table.drop_duplicates("step", keep="last").sort_values("step").set_index("step")


def curve_data(run_dirs, quantities=QUANTITIES):
    """The median and quartiles over runs of each quantity at the steps every run logged. A run
    whose log is missing or unreadable is left out (and listed); a UserError when no run is left
    or the runs share no logged step."""
    tables, runs, left_out = [], [], []
    for run_dir in run_dirs:
        try:
            tables.append(read_train_log(run_dir))
            runs.append(Path(run_dir))
        except FileNotFoundError:
            left_out.append((Path(run_dir), "it has no model/train_log.csv"))
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
            left_out.append((Path(run_dir), f"its model/train_log.csv does not read: {err}"))
    if not tables:
        first = f" (first: {left_out[0][0]}: {left_out[0][1]})" if left_out else ""
        raise UserError(f"no training log to draw curves from among {len(left_out)} run(s){first}; "
                        f"pass run directories that dlb_train wrote")
    steps = shared_steps(tables)
    if len(steps) == 0:
        raise UserError(f"the training logs of {len(runs)} runs share no logged step (from {runs[0]}); "
                        f"pass runs of one setting, trained with the same train.log_every")
    bands = {}
    for quantity in quantities:
        if all(quantity in table.columns for table in tables):
            values = np.stack([table.loc[steps, quantity].to_numpy(dtype=float) for table in tables])
            bands[quantity] = Band(steps, np.median(values, axis=0), np.quantile(values, 0.25, axis=0),
                                   np.quantile(values, 0.75, axis=0))
    return CurveData(bands, runs, left_out)


def shared_steps(tables):
    """The steps logged by every table, ascending."""
    steps = tables[0].index
    for table in tables[1:]:
        steps = steps.intersection(table.index)
    return np.sort(steps.to_numpy())


def training_curves(run_dirs, folder, name, label, dataset, study=None):
    """Draw the curves of the runs of one setting (run_dirs: its seeds' run directories) as
    folder/name.png and folder/name.pdf, one panel per quantity; label names the setting (e.g.
    'beta_vae, beta=4'). Returns the two paths. A UserError when no run has a usable log."""
    import matplotlib.pyplot as plt

    data = curve_data(run_dirs)
    if not data.bands:
        raise UserError(f"the training logs of {data.runs[0]} and the other runs have none of the columns "
                        f"{', '.join(QUANTITIES)}; they were not written by dlb_train")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(data.bands), figsize=(4.2 * len(data.bands), 3.6), squeeze=False)
    for ax, (quantity, band) in zip(axes[0], data.bands.items()):
        draw_band(ax, band, len(data.runs))
        ax.set_xlabel("training step")
        ax.set_ylabel(AXIS_LABELS.get(quantity, quantity))
        ax.set_title(quantity)
    fig.suptitle(figure_title(f"Training curves of {label}", dataset, study))
    fig.tight_layout()  # a few panels of lines: cheap to lay out
    return save_figure(fig, folder, name)


def draw_band(ax, band, num_runs):
    runs = f"{num_runs} run" + ("s" if num_runs != 1 else "")
    ax.fill_between(band.steps, band.q25, band.q75, alpha=0.3, color="tab:blue", linewidth=0,
                    label=f"25-75% of {runs}")
    ax.plot(band.steps, band.median, color="tab:blue", marker="." if len(band.steps) < 30 else None,
            label=f"median of {runs}")
    ax.legend(loc="best", fontsize="small")
