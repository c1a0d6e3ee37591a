"""The files dlb_aggregate writes: the output folder checked before any work, each table turned
into bytes, report.json's record, and every file written atomically."""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

import dlbench
from dlbench import rundir
from dlbench.aggregate.collect import readable
from dlbench.aggregate.leaderboard import DONE, FAILED, UNFINISHED, short_of_value, status_kind
from dlbench.config import shown_gin_path
from dlbench.errors import UserError, describe_os_error, shell_word
from dlbench.selection import picked

FILES = ("results.csv", "results.parquet", "leaderboard.csv", "best.csv", "representatives.csv", "report.json")


def check_output_folder(out_dir, runs_root=None):
    """Refuse an output folder that cannot be written, before any work: an existing file, a path
    under a file, or a place where no folder can be made (read-only, no permission, /proc); one in
    a run directory, whose files are its stages' (a report there would go with the run); and the
    runs root itself, where the tables would lie among the runs and beside a study's study.json."""
    out_dir = Path(out_dir)
    if runs_root is not None and out_dir.absolute() == Path(runs_root).absolute():
        raise UserError(f"--out '{out_dir}' is the runs root itself; choose a folder of its own for the tables, "
                        f"e.g. --out {shell_word(Path(runs_root).absolute().parent / 'report')}")
    run = rundir.enclosing_run(out_dir)
    if run is not None:
        raise UserError(f"--out '{out_dir}' is inside the run directory '{run}', whose files are its stages'; "
                        f"choose a folder outside the run")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out '{out_dir}' is a file, not a folder; choose a folder for the aggregation's "
                        f"files ({', '.join(FILES)})")
    held = _run_of_another_root(out_dir, runs_root)
    if held is not None:
        raise UserError(f"--out '{out_dir}' holds runs ('{held}') that are not those aggregated; choose a folder of "
                        f"its own for the tables, which would lie among them")
    existing = _nearest_existing(out_dir)
    if not existing.is_dir():
        raise UserError(f"--out '{out_dir}' is under '{existing}', which is a file, not a folder; choose another folder")
    try:
        # os.access is not enough (root may "write" to /proc, yet nothing can be made there): make
        # and remove an empty folder, the cheapest real proof that results can be written.
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".dlb_aggregate-check-"))
    except OSError as err:
        reason = err.strerror or os.strerror(err.errno)
        raise UserError(f"--out '{out_dir}' cannot be written: no folder can be made in '{existing}' "
                        f"({reason}); choose a folder you may write to") from None
    check_file_places(out_dir)


def _run_of_another_root(out_dir, runs_root):
    """A run directory under out_dir, where out_dir does not hold the runs root (whose runs a report
    beside them is about), else None."""
    if not out_dir.is_dir():
        return None
    if runs_root is not None and Path(runs_root).absolute().is_relative_to(out_dir.absolute()):
        return None
    return rundir.first_run_under(out_dir)


def check_file_places(out_dir):
    """Refuse a folder (or anything but a file) standing where one of FILES goes: met at its rename,
    it had stopped the set midway, with the files renamed before it already replaced."""
    for name in FILES:
        path = Path(out_dir) / name
        if path.exists() and not path.is_file():
            what = "a folder" if path.is_dir() else "not a file"
            raise UserError(f"'{path}' is {what}, where dlb_aggregate writes its {name}; move it away and run the "
                            f"command again")


def _nearest_existing(path):
    """path or its nearest ancestor that exists ('.' or '/' at worst), as the user wrote it."""
    return next(candidate for candidate in (path, *path.parents) if candidate.exists())


def check_parquet_writer():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise UserError("results.parquet needs pyarrow, which is not installed; pip install pyarrow "
                        "(or pip install -e . again)") from None


def csv_bytes(frame):
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")


def parquet_bytes(frame):
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def json_bytes(record):
    return (json.dumps(record, indent=2, sort_keys=True, default=_plain) + "\n").encode("utf-8")


def _plain(value):
    if hasattr(value, "item"):  # numpy scalars from the tables
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_files(out_dir, contents):
    """Write {file name: bytes} into out_dir as one set: each file to a temporary name first, all of
    them renamed into place only once every one is written, so a full disk midway leaves the
    earlier set whole (it had left a new results.csv beside the earlier tables). Should a rename fail
    after others (a fault of the disk), the earlier files not yet replaced are removed and the line
    says which files are this aggregation's; report.json is renamed last. Returns the paths."""
    paths = [Path(out_dir) / name for name in contents]
    new_files = {}  # path: the inode of its new contents, which a rename keeps: how a new file is told from an old
    # the exit stack renames in reverse: report.json, which describes the set, last, so that a rename
    # failing midway never leaves it vouching for tables that are not there (it had gone first)
    entered = sorted(paths, key=lambda path: path.name != "report.json")
    try:
        with contextlib.ExitStack() as renamed_at_exit:
            for path in entered:
                temporary = renamed_at_exit.enter_context(rundir.atomic_path(path))
                temporary.write_bytes(contents[path.name])
                new_files[path] = temporary.stat().st_ino
    except OSError as err:
        renamed = [path for path in paths if path in new_files and _inode(path) == new_files[path]]
        if renamed:  # a rename failed after others: never leave the new files beside the earlier ones
            raise UserError(f"{describe_os_error(err)} ({_unmixed(paths, renamed)})") from None
        raise
    return paths


def _inode(path):
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _unmixed(paths, renamed):
    """Remove the earlier aggregation's files that a failed rename left beside the new ones; what
    the folder holds then, for the error's line."""
    kept = []
    for path in paths:
        if path not in renamed:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                kept.append(path.name)
    said = f"written: {', '.join(path.name for path in renamed)}; "
    if kept:
        return said + f"{', '.join(kept)} could not be removed and are the earlier aggregation's"
    return said + "the earlier aggregation's other files were removed, so that no two aggregations are mixed"


def report_record(runs_root, study, collection, board, representatives, rank_column, unranked, only=None):
    """report.json: what was aggregated (runs root, the --only patterns, study, dlbench version), the
    counts, and every run that did not count in the statistics with why (failed, unfinished, left
    out, duplicate)."""
    runs_root = Path(runs_root)
    results = collection.results
    kinds = results["status"].map(status_kind)
    not_started = _not_started(runs_root, study, only)
    not_in_study = _not_in_study(results, study)
    run_left_out = [line for line in collection.left_out if line.startswith("run left out")]
    metric_left_out = [line for line in collection.left_out if line.startswith("metric left out")]
    values_left_out = [line for line in collection.left_out if line.startswith("value left out")]
    return {
        "runs_root": readable(runs_root),  # as given: a committed report names no machine's folders
        "only": list(only) if only else None,
        "study": (study or {}).get("name"),
        "study_file": shown_gin_path((study or {}).get("file")) if (study or {}).get("file") else None,
        "dlbench_version": dlbench.__version__,
        "rank_by": rank_column,
        "files": list(FILES),
        "counts": {
            "run_json_found": collection.found, "runs": len(results), "done": int((kinds == DONE).sum()),
            "failed": int((kinds == FAILED).sum()), "unfinished": int((kinds == UNFINISHED).sum()),
            "not_started": len(not_started), "not_in_study": len(not_in_study),
            "runs_left_out": len(run_left_out), "metric_results_left_out": len(metric_left_out),
            "results_with_values_left_out": len(values_left_out),
            "duplicates": len(collection.duplicates), "settings": len(board),
            "representatives": len(representatives)},
        "failed": _listed(results[kinds == FAILED], collection.details),
        "unfinished": _listed(results[kinds == UNFINISHED], collection.details),
        "not_started": not_started,
        "not_in_study": not_in_study,
        "left_out": list(collection.left_out),
        "duplicates": [{"run_dir": readable(Path(copy).relative_to(runs_root)),
                        "same_as": readable(Path(kept).relative_to(runs_root)),
                        "results_differ": differing, "results_not_counted": not_counted}
                       for copy, kept, differing, not_counted in collection.duplicates],
        "unranked": [{"dataset": dataset, "method": method} for dataset, method in unranked],
        "rank_by_short": dict(zip(("settings_in_part", "settings_without"), short_of_value(board, rank_column))),
    }


def _not_started(runs_root, study, only):
    """The names of the runs study.json lists (those --only picks) that have no run.json under
    runs_root: a leaderboard of a study half run says what it lacks."""
    names = [run.get("name") for run in (study or {}).get("runs", []) if isinstance(run, dict)]
    return [name for name in picked([n for n in names if isinstance(n, str)], only)
            if not rundir.is_run(rundir.study_run_dir(runs_root, name))]


def _not_in_study(results, study):
    """The runs counted that the root's study.json does not list (none without one): another
    study's runs copied in, or runs trained there by hand, had been counted as the study's without
    a word."""
    names = {run.get("name") for run in (study or {}).get("runs", []) if isinstance(run, dict)}
    if not names or "run_dir" not in results:
        return []
    return sorted(name for name in results["run_dir"] if name not in names)


def _listed(runs, details):
    """The runs as [{run_dir, dataset, method, seed, status, step, error}], sorted by run_dir."""
    return [{"run_dir": run.run_dir, "dataset": run.dataset, "method": run.method, "seed": run.seed,
             "status": None if pd.isna(run.status) else run.status, **details.get(run.run_dir, {})}
            for run in runs.sort_values("run_dir").itertuples()]
