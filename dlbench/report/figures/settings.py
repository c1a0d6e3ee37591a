"""What the study figures have in common: which runs count, how settings are told apart and
named on a plot, and how figure files are named.

A setting is one row of the leaderboard: a dataset, a method and the values of its setting
columns (hyperparameters `hp.*`, `train.*` and `model.*` settings). Within a method most of those
columns are the same for every setting; a figure names a setting by the ones that vary
(`beta=4`), and a method's regularisation strength is the numeric hyperparameter that varies.
"""

import hashlib
import re

import numpy as np
import pandas as pd

from dlbench import rundir
from dlbench.aggregate import setting_columns
from dlbench.report.figure_files import plt

MAX_NAME_CHARS = 120  # figure file names stay well under file-system limits


def finished_runs(results):
    """The runs whose training finished (status done): failed and unfinished runs never enter a
    figure, whatever metric values they may hold."""
    return results[results["status"] == rundir.Status.DONE]


def datasets(frame):
    """The datasets of a table; none for an empty one (a leaderboard of a study without a finished
    run has no columns at all)."""
    return sorted(frame["dataset"].dropna().unique()) if "dataset" in frame.columns else []


def methods(frame):
    return sorted(frame["method"].dropna().unique())


def dataset_method_pairs(frame):
    """(dataset, method, their rows of frame) for each dataset and method of a table, sorted."""
    for dataset in datasets(frame):
        of_dataset = frame[frame["dataset"] == dataset]
        for method in methods(of_dataset):
            yield dataset, method, of_dataset[of_dataset["method"] == method]


def varying_settings(frame):
    """The setting columns that take more than one value in frame (a missing value counts as one),
    hyperparameters first."""
    varying = [c for c in setting_columns(frame) if frame[c].nunique(dropna=False) > 1]
    return sorted(varying, key=lambda c: (not c.startswith("hp."), c))


def strength_columns(frame):
    """The numeric hyperparameters that vary in frame (one method's settings), the one with the most
    values first (ties by name): a method's regularisation strength, and any other numeric
    hyperparameter swept with it."""
    numeric = [c for c in varying_settings(frame)
               if c.startswith("hp.") and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    return sorted(numeric, key=lambda c: (-frame[c].nunique(), c))


def short_name(column):
    """'hp.beta' -> 'beta', 'model.prior.name' -> 'prior.name'."""
    return column.split(".", 1)[1] if "." in column else column


def format_value(value):
    if isinstance(value, (float, np.floating)):
        return "none" if np.isnan(value) else f"{value:g}"
    return str(value)


def setting_label(row, columns):
    """'beta=4, lr=0.001' for a row (a mapping) and the columns that tell its settings apart, but
    those the row does not have (a Student-t prior's nu for a Gaussian prior: 'prior.name=
    isotropic_gaussian', not '..., prior.nu=none'); '' when nothing does."""
    return ", ".join(f"{short_name(c)}={format_value(row[c])}" for c in columns if not pd.isna(row[c]))


def label_settings(frame):
    """frame (the rows of one dataset and method) with a `setting` column naming each row's setting
    by the setting columns that vary among them, ordered by those columns (beta 2 before beta 10)."""
    varying = varying_settings(frame)
    try:
        frame = frame.sort_values(varying, kind="mergesort") if varying else frame
    except TypeError:  # a column mixing numbers and text has no order: keep the table's
        pass
    return frame.assign(setting=[setting_label(row, varying) for _, row in frame.iterrows()])


def series_columns(frame):
    """The varying setting columns that are not numbers (a prior's name, whether it is learned):
    they split a method's settings into series, drawn apart; numbers (beta, nu) vary along one."""
    return [c for c in varying_settings(frame)
            if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])]


def label_series(frame):
    """frame (the rows of one dataset and method) with a `series` column, the method and the values
    of its series_columns (those that are set: 'beta_vae: prior.name=student_t'), and each series'
    settings labelled by what varies within it (label_settings: 'nu=3', not the batch size that
    only differs between series); ordered by series, then setting."""
    columns = series_columns(frame)
    method = frame["method"].iloc[0]
    if not columns:
        return label_settings(frame).assign(series=method)
    parts = []
    for _, group in frame.groupby(columns, dropna=False, sort=False):
        values = group.iloc[0][columns]
        named = setting_label(values, columns)
        parts.append(label_settings(group).assign(series=f"{method}: {named}"))
    return pd.concat(parts).sort_values("series", kind="mergesort")


def method_colours(names):
    """{method: colour}, the same method in the same colour throughout a figure."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: cycle[i % len(cycle)] for i, name in enumerate(sorted(names))}


def label_scatter(ax, x_label, y_label, title, legend_title):
    """The axis labels, title, legend (of the artists' labels, under legend_title) and grid of a
    scatter of points per method."""
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.legend(title=legend_title, fontsize=8, title_fontsize=8)
    ax.grid(alpha=0.3)


def finished_metric_runs(results, dataset, columns):
    """The finished runs of dataset that hold a value of every column, each method's settings
    labelled (label_settings), ordered by method and setting."""
    runs = finished_runs(results)
    runs = runs[(runs["dataset"] == dataset) & runs[list(columns)].notna().all(axis=1)]
    return pd.concat([label_settings(group) for _, group in runs.groupby("method", sort=True)]
                     or [runs.assign(setting=[])])


def figure_name(*parts):
    """A file name (without extension) from the parts that identify a figure: kind, dataset, metric
    column, ...; characters other than letters, digits and _.,=+- become '-' (so the page links
    them without quoting), and a long name is cut and given a hash of the whole to stay unique."""
    name = "_".join(re.sub(r"[^A-Za-z0-9_.,=+-]+", "-", str(part)).strip("-") for part in parts)
    if len(name) > MAX_NAME_CHARS:
        digest = hashlib.sha1("_".join(map(str, parts)).encode()).hexdigest()[:8]
        name = f"{name[:MAX_NAME_CHARS - 9]}-{digest}"
    return name
