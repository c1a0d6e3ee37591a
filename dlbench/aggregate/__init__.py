"""Aggregation of a study: one row per run (results.csv) and one row per dataset, method and
hyperparameter setting over seeds (leaderboard.csv)."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dlbench import rundir
from dlbench.errors import UserError
from dlbench.metrics import METRICS, metric_params, value_keys

IDENTITY = ["dataset", "method"]


def collect(runs_root):
    """A DataFrame with one row per run directory found under runs_root."""
    runs_root = Path(runs_root)
    if not runs_root.is_dir():
        raise UserError(f"RUNS_ROOT '{runs_root}' does not exist; give the folder that holds the run directories")
    rows = [_run_row(path.parent, runs_root) for path in sorted(runs_root.rglob(rundir.RUN_JSON))]
    if not rows:
        raise UserError(f"no runs (run.json files) found under '{runs_root}'; train some with dlb_train or dlb_study")
    return pd.DataFrame(rows)


def _run_row(run_dir, runs_root):
    record = rundir.read_run(run_dir)
    row = {"run_dir": str(run_dir.relative_to(runs_root)),
           "dataset": dataset_label(record.get("dataset"), record.get("dataset_options")),
           "method": record.get("method"), "seed": record.get("seed"), "status": record.get("status")}
    row.update({f"hp.{k}": v for k, v in record.get("hyperparameters", {}).items()})
    row.update({f"train.{k}": _cell(v) for k, v in record.get("train", {}).items() if k != "seed"})
    row.update({f"model.{k}": _cell(v) for k, v in _flatten(record.get("model", {})).items()})
    results = run_dir / "model" / "results.json"
    if results.is_file():
        row.update({f"train_result.{k}": v for k, v in rundir.read_json(results).items()
                    if isinstance(v, (int, float)) and k != "dlbench_version"})
    for path in sorted(run_dir.glob("metrics/*/*/results.json")):
        mode, metric = path.parent.parent.name, path.parent.name
        result = rundir.read_json(path)
        prefix = metric + protocol_tag(metric, result)
        prefix = prefix if mode == "mean" else f"{mode}.{prefix}"
        row.update({f"{prefix}.{key}": result[key] for key in value_keys(metric, result)})
    return row


def dataset_label(name, options):
    """The dataset's name, with its options where a run set any, as 'linear_gaussian[observed_dim=20,seed=3]'
    (lists as a short hash): runs on differently built data are never pooled."""
    if not options:
        return name
    shown = [f"{key}={_short_value(value)}" for key, value in sorted(options.items())]
    return f"{name}[{','.join(shown)}]"


def _short_value(value):
    if isinstance(value, list):  # a mixing matrix would make the label unreadable
        return "#" + hashlib.sha1(json.dumps(value).encode()).hexdigest()[:8]
    return value


def protocol_tag(metric, result):
    """'' for a result computed with the metric's default protocol, else the recorded parameters
    that differ, as '[num_train=500,num_bins=10]': results of different protocols land in different
    columns, so they are never averaged or ranked together."""
    if metric not in METRICS:
        return ""
    changed = [f"{key}={result[key]}" for key, default in metric_params(metric).items()
               if default is not None and key in result and result[key] != default]
    return f"[{','.join(changed)}]" if changed else ""


def _flatten(settings, prefix=""):
    """{'prior': {'name': 'x', 'p0': 2}} -> {'prior.name': 'x', 'prior.p0': 2}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def metric_columns(results):
    return [c for c in results.columns if not c.startswith(("hp.", "train.", "model.", "train_result."))
            and c not in ("run_dir", "dataset", "method", "seed", "status")]


def leaderboard(results):
    """Mean, standard deviation and standard error of every metric per setting (over seeds)."""
    done = results[results["status"] == "done"]
    group = IDENTITY + [c for c in results.columns if c.startswith(("hp.", "train.", "model."))]
    metrics = metric_columns(results)
    rows = []
    for key, runs in done.groupby(group, dropna=False, sort=True):
        row = dict(zip(group, key))
        row["num_runs"] = len(runs)
        for metric in metrics:
            values = runs[metric].dropna().to_numpy(dtype=float)
            std = values.std(ddof=1) if len(values) > 1 else np.nan
            row[f"{metric}.mean"] = values.mean() if len(values) else np.nan
            row[f"{metric}.std"] = std
            row[f"{metric}.sem"] = std / np.sqrt(len(values)) if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def aggregate(runs_root, out_dir):
    """Write results.csv and leaderboard.csv to out_dir; returns the two DataFrames."""
    results = collect(runs_root)
    board = leaderboard(results)
    out_dir = Path(out_dir)
    for name, frame in (("results.csv", results), ("leaderboard.csv", board)):
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        rundir.atomic_write_text(out_dir / name, buffer.getvalue())
    return results, board


def _cell(value):
    """Lists (e.g. Adam betas) as one CSV cell that groups correctly."""
    return str(value) if isinstance(value, (list, tuple, dict)) else value
