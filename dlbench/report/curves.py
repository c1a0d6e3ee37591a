"""Training curves of one method and setting across its seeds: the median and the inter-quartile
band (25% to 75%) over runs of the loss, the reconstruction term and the KL at each logged step,
read from each run's model/train_log.csv (one row per log step, written by LogWriter in
dlbench/train/run.py: `step`, `images_per_second`, then the method's scalars).

Runs are aligned on the steps that every one of them logged (runs that logged at other intervals
share fewer steps). Finished runs of one setting all log their last step, so a log that ends
earlier than the others' lost its end (a truncated or restored file): that run is left out, and
named, rather than cutting every run's curve down to its steps. Within a log, a last row without
its line end (a writer stopped mid-row) and rows whose step or drawn values are not numbers are
dropped, and said. Quantiles are numpy's default (linear interpolation between order statistics).
"""

import io
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
    counted, the runs left out (run directory, why: no log, an unreadable log, a log that ends
    before the others') and the counted runs drawn without some rows of their log (run directory,
    which rows)."""

    bands: dict
    runs: list
    left_out: list = field(default_factory=list)
    trimmed: list = field(default_factory=list)


def read_train_log(run_dir, quantities=QUANTITIES):
    """A run's train_log.csv as a DataFrame of numbers indexed by step, one row per logged step
    (sorted; a step logged twice keeps its last row), and a list saying which rows were dropped: a
    last row cut short, rows whose step is not a whole number or one of quantities not a number.
    A ValueError when no row is left."""
    text = rundir.train_log_path(run_dir).read_bytes()
    table = pd.read_csv(io.BytesIO(text))
    if "step" not in table.columns:
        raise ValueError("it has no step column")
    dropped = []
    if len(table) and not text.endswith(b"\n"):  # LogWriter ends every row it finishes with a line end
        table = table.iloc[:-1]
        dropped.append("a last row cut short, as a writer stopped mid-row leaves it")
    table = table.apply(pd.to_numeric, errors="coerce")
    checked = [q for q in quantities if q in table.columns]
    unusable = (table["step"] % 1 != 0) | table[["step", *checked]].isna().any(axis=1)
    if unusable.any():
        count = int(unusable.sum())
        values = f" or whose {one_of(checked)} is not a number" if checked else ""
        dropped.append(f"{count} row{'s' if count != 1 else ''} whose step is not a whole number{values}")
        table = table[~unusable]
    if table.empty:
        raise ValueError("it holds no row whose step and values are numbers"
                         + (f" (dropped: {'; '.join(dropped)})" if dropped else ""))
    table = table.astype({"step": "int64"})
    return table.drop_duplicates("step", keep="last").sort_values("step").set_index("step"), dropped


def one_of(names):
    """'loss', 'loss or kl', 'loss, reconstruction or kl'."""
    return " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))


def curve_data(run_dirs, quantities=QUANTITIES):
    """The median and quartiles over runs of each quantity at the steps every counted run logged.
    A run whose log is missing or unreadable, or ends before the last step another run logged, is
    left out (and listed); a UserError when no run is left."""
    logs, left_out, trimmed = {}, [], []
    for run_dir in run_dirs:
        try:
            logs[Path(run_dir)] = read_train_log(run_dir, quantities)
        except FileNotFoundError:
            left_out.append((Path(run_dir), "it has no model/train_log.csv"))
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
            left_out.append((Path(run_dir), f"its model/train_log.csv does not read: {err}"))
    if not logs:
        first = f" (first: {left_out[0][0]}: {left_out[0][1]})" if left_out else ""
        raise UserError(f"no training log to draw curves from among {len(left_out)} run(s){first}; "
                        f"pass run directories that dlb_train wrote")
    last_step = max(table.index[-1] for table, _ in logs.values())
    tables, runs = [], []
    for run, (table, dropped) in logs.items():
        rows = f" (dropped from it: {'; '.join(dropped)})" if dropped else ""
        if table.index[-1] < last_step:
            left_out.append((run, f"its model/train_log.csv ends at step {table.index[-1]}, before step "
                                  f"{last_step} that the setting's other runs logged{rows}"))
            continue
        if dropped:
            trimmed.append((run, f"dropped from its model/train_log.csv: {'; '.join(dropped)}"))
        tables.append(table)
        runs.append(run)
    # every table kept logged last_step, so the runs share at least that step
    steps = shared_steps(tables)
    bands = {}
    for quantity in quantities:
        if all(quantity in table.columns for table in tables):
            values = np.stack([table.loc[steps, quantity].to_numpy(dtype=float) for table in tables])
            bands[quantity] = Band(steps, np.median(values, axis=0), np.quantile(values, 0.25, axis=0),
                                   np.quantile(values, 0.75, axis=0))
    return CurveData(bands, runs, left_out, trimmed)


def shared_steps(tables):
    """The steps logged by every table, ascending."""
    steps = tables[0].index
    for table in tables[1:]:
        steps = steps.intersection(table.index)
    return np.sort(steps.to_numpy())


def training_curves(run_dirs, folder, name, label, dataset, study=None, note_run=None):
    """Draw the curves of the runs of one setting (run_dirs: its seeds' run directories) as
    folder/name.png and folder/name.pdf, one panel per quantity; label names the setting (e.g.
    'beta_vae, beta=4'). note_run(run_dir, line) hears of each run left out of the curves or drawn
    without some rows of its log. Returns the two paths. A UserError when no run has a usable log."""
    import matplotlib.pyplot as plt

    data = curve_data(run_dirs)
    if not data.bands:
        raise UserError(f"the training logs of {data.runs[0]} and the other runs have none of the columns "
                        f"{', '.join(QUANTITIES)}; they were not written by dlb_train")
    if note_run is not None:
        for run, why in data.left_out:
            note_run(run, f"left out: {why}")
        for run, why in data.trimmed:
            note_run(run, f"drawn, but {why}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(data.bands), figsize=(4.2 * len(data.bands), 3.6), squeeze=False)
    runs = runs_counted(len(data.runs), len(data.runs) + len(data.left_out))
    for ax, (quantity, band) in zip(axes[0], data.bands.items()):
        draw_band(ax, band, runs)
        ax.set_xlabel("training step")
        ax.set_ylabel(AXIS_LABELS.get(quantity, quantity))
        ax.set_title(quantity)
    fig.suptitle(figure_title(f"Training curves of {label}", dataset, study))
    fig.tight_layout()  # a few panels of lines: cheap to lay out
    return save_figure(fig, folder, name)


def runs_counted(counted, total):
    """'3 runs', or '1 of 2 runs' where some were left out: a figure seen alone says it is short."""
    return f"{counted}{f' of {total}' if total != counted else ''} run{'s' if total != 1 else ''}"


def draw_band(ax, band, runs):
    ax.fill_between(band.steps, band.q25, band.q75, alpha=0.3, color="tab:blue", linewidth=0,
                    label=f"25-75% of {runs}")
    ax.plot(band.steps, band.median, color="tab:blue", marker="." if len(band.steps) < 30 else None,
            label=f"median of {runs}")
    ax.legend(loc="best", fontsize="small")
