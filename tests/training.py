"""Helpers for tests that train a short run."""

import csv
import json


def read_log(run_dir):
    """The rows of a run's train_log.csv, as dicts of strings."""
    with open(run_dir / "model" / "train_log.csv") as f:
        return list(csv.DictReader(f))


def training_scalars(run_dir):
    """model/results.json without its timings."""
    results = json.loads((run_dir / "model" / "results.json").read_text())
    return {key: value for key, value in results.items()
            if key not in ("train_seconds_this_session", "images_per_second", "dlbench_version")}


def assert_loss_fell(run_dir, factor=0.7):
    """The last logged loss is below `factor` times the first; returns the log's rows."""
    rows = read_log(run_dir)
    assert float(rows[-1]["loss"]) < factor * float(rows[0]["loss"]), [row["loss"] for row in rows]
    return rows
