"""Helpers for tests that train a short run."""

import csv


def read_log(run_dir):
    """The rows of a run's train_log.csv, as dicts of strings."""
    with open(run_dir / "model" / "train_log.csv") as f:
        return list(csv.DictReader(f))


def assert_loss_fell(run_dir, factor=0.7):
    """The last logged loss is below `factor` times the first; returns the log's rows."""
    rows = read_log(run_dir)
    assert float(rows[-1]["loss"]) < factor * float(rows[0]["loss"]), [row["loss"] for row in rows]
    return rows
