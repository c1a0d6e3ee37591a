"""Reading a runs root: one row per run (results.csv), with what could not be used listed.

A damaged run does not stop the aggregation; what could not be used is left out and listed:
- a run whose run.json is unreadable, not an object, or lacks method, dataset or seed, and a run
  whose model/results.json is unreadable, or missing though run.json says it is done, is left out
  whole (its record cannot be trusted);
- an unreadable metrics/<mode>/<metric>/results.json loses only that metric of that run (the
  other metrics are independent evaluations, and dlb_evaluate can recompute the one lost);
- a metric result of an earlier version of its metric (dlbench.metrics.VERSIONS) is left out, with
  the command that computes it again: its values meant otherwise, and no column mixes versions;
- a metric result counts only from the folder dlb_evaluate writes it to (metrics/<its mode>/<its
  metric><its protocol tag>; a result of the default protocol's folder written before protocols
  named folders too, where no result in its own folder has its columns): one anywhere else (a copy
  made by hand, metrics/mean/mig_backup) is left out and listed with where it belongs, so no two
  files ever fill one column;
- a copy of a run already counted (same dataset, method, hyperparameters, settings and seed, e.g.
  runs/a/... and runs/copy/...) is left out, so no seed is counted twice.
Runs of one dataset trained on different grids (run.json's dataset_shape: a reduced grid of
`dlb_data make --keep`, DLBENCH_DATA pointed elsewhere) are told apart by their dataset label,
which then names the grid (_label_grids): they are different settings, and never copies.
Failed and unfinished runs are rows like any other (their status says what they are); the
leaderboard counts them and keeps them out of its statistics.
"""

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from dlbench import rundir
from dlbench.aggregate.columns import parse_metric_column
from dlbench.data import is_dataset_shape
from dlbench.errors import CorruptFile, UserError, describe_os_error, shell_word
from dlbench.metrics import current_keys, protocol_tag, result_problem, value_keys, version_problem
from dlbench.selection import matching

REQUIRED_KEYS = ("method", "dataset", "seed")
# The parts of run.json that must be JSON objects where present.
SECTIONS = ("hyperparameters", "train", "model", "dataset_options")


@dataclass
class Collection:
    """The runs found under a root: results (one row per counted run), left_out (one line per file
    that could not be used, naming it and the fix), duplicates (a Duplicate per copy left out),
    found (how many run.json files there were), details ({run_dir: {'step', 'error'}} from
    run.json, for listing runs that did not finish) and damaged_results ({metric name as --rank_by
    gives it, 'mig[num_bins=10]': [a LeftOutResult for each of its results that could not be read, or
    was of an earlier version of the metric]})."""

    results: pd.DataFrame
    left_out: list
    duplicates: list
    found: int = 0
    details: dict = field(default_factory=dict)
    damaged_results: dict = field(default_factory=dict)


class LeftOutResult(NamedTuple):
    """A metric result left out of the tables: its left_out line, and whether it was left out as
    outdated (of an earlier version of its metric) rather than damaged."""

    line: str
    outdated: bool = False


class Duplicate(NamedTuple):
    """A copy of a run left out (copy), the run counted (kept), the metric columns both hold with
    different values (differing) and those only the copy holds (not_counted)."""

    copy: Path
    kept: Path
    differing: list
    not_counted: list


class _LeftOut(Exception):
    """A run that cannot be used; the message names the file, the problem and the fix."""


def check_runs_root(runs_root):
    runs_root = Path(runs_root)
    if runs_root.exists() and not runs_root.is_dir():
        raise UserError(f"RUNS_ROOT '{runs_root}' is a file, not a folder; give the folder that holds the run directories")
    if not runs_root.is_dir():
        raise UserError(f"RUNS_ROOT '{runs_root}' does not exist; give the folder that holds the run directories")


def collect(runs_root, only=None):
    """The runs found under runs_root (every folder holding a run.json), or those of them whose
    names match one of the --only patterns: a Collection."""
    runs_root = Path(runs_root)
    check_runs_root(runs_root)
    run_jsons = _run_jsons(runs_root)
    if not run_jsons:
        raise UserError(f"no runs (run.json files) found under '{runs_root}'; train some with dlb_train or dlb_study")
    run_jsons, unreadable_names = _named_runs(run_jsons, runs_root)
    if only:  # the names the tables show, so a name copied from results.csv picks its run
        by_name = {readable(path.parent.relative_to(runs_root).as_posix()): path for path in run_jsons}
        run_jsons = [by_name[name] for name in matching(by_name, only, f"the {len(by_name)} runs under '{runs_root}'")]
    runs, left_out, unusable, damaged = [], [], [], {}
    for problem in unreadable_names:
        left_out.append(f"run left out: {problem}")
        unusable.append(problem)
    for path in run_jsons:
        try:
            runs.append(_read_run(path.parent, runs_root, left_out, damaged))
        except _LeftOut as problem:
            left_out.append(f"run left out: {problem}")
            unusable.append(problem)
    left_out[:] = map(readable, left_out)
    damaged = {name: [result._replace(line=readable(result.line)) for result in results]
               for name, results in damaged.items()}
    if not runs:  # nothing to report on: an error, not two empty tables
        raise UserError(readable(f"none of the {len(run_jsons) + len(unreadable_names)} runs under '{runs_root}' can "
                                 f"be used; the first: {unusable[0]}"))
    _label_grids(runs)  # before duplicates: the same seed on two grids is two runs
    counted, duplicates = _drop_duplicates(runs, _study_run_names(runs_root))
    results = typed_columns(_with_left_out_defaults(pd.DataFrame([run.row for run in counted])))
    if results["dataset_shape"].isna().all():  # runs older than dataset_shape: their tables, as before
        results = results.drop(columns="dataset_shape")
    details = {run.row["run_dir"]: run.details for run in counted}
    return Collection(results, left_out, duplicates, len(run_jsons), details, damaged)


def _run_jsons(runs_root):
    """Every run.json under runs_root, sorted, following links to folders (a root may gather runs
    kept elsewhere by links; they had been skipped without a word), each folder once."""
    found, seen = [], set()
    for folder, subfolders, files in os.walk(runs_root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up, or a second link to one folder
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()  # the same folder found by two paths is reported by the first, whatever the disk's order
        if rundir.RUN_JSON in files:
            found.append(Path(folder) / rundir.RUN_JSON)
    return sorted(found)


def readable(text):
    """text with each lone surrogate as a backslash escape. A file name that is not UTF-8 (copied
    from a latin-1 machine) comes from the disk with its bytes as surrogates, which no CSV, parquet
    file, page or terminal holds (pyarrow had ended the aggregation in a traceback): the byte 0xff
    reads as \\xff, in the tables, the lines and the page alike, so its run is counted and named."""
    return _SURROGATE.sub(_escaped, str(text))


def readable_values(value):
    """A JSON value with readable() applied to its every text and key: run.json may hold a lone
    surrogate as an escape ("\\udcff": a path that is not UTF-8, as json.dumps writes it), which
    had ended dlb_aggregate in pyarrow's traceback as a run's name did."""
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, dict):
        return {readable(key): readable_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [readable_values(item) for item in value]
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile(r"\\x([89a-f][0-9a-f])")  # what readable makes of a byte of a file name


def _escaped(match):
    code = ord(match[0])
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def run_folder(runs_root, run_dir):
    """The folder of the run that results.csv names run_dir (readable's text of its path under
    runs_root): a name with escaped bytes is the folder of those bytes, unless a run is named so
    (collect leaves out a run whose name reads as another's, so the two cannot both count)."""
    folder = Path(runs_root) / run_dir
    if rundir.is_run(folder) or not _ESCAPED_BYTE.search(run_dir):
        return folder
    return Path(runs_root) / _ESCAPED_BYTE.sub(lambda match: chr(0xDC00 + int(match[1], 16)), run_dir)


def _named_runs(run_jsons, runs_root):
    """(the run.json paths of the runs that the names the tables show lead back to, the problems of
    the others): a name that is not UTF-8 whose escaped text names another folder (a run named
    'bad\\xffname' beside one holding the byte 0xff) is left out rather than give two runs one name."""
    kept, problems = [], []
    for path in run_jsons:
        name = path.parent.relative_to(runs_root).as_posix()
        if readable(name) != name and run_folder(runs_root, readable(name)) != path.parent:
            problems.append(f"'{readable(path.parent)}' has a name that is not UTF-8, and '{readable(name)}', as the "
                            f"tables would show it, names another folder under '{readable(runs_root)}'; rename it")
        else:
            kept.append(path)
    return kept, problems


def read_study(runs_root):
    """(study.json of runs_root or None, a line saying why it was not read or None). One whose fields
    are of the wrong type is left out as unreadable, as one that is not JSON is: its users trust them."""
    from dlbench.study import STUDY_JSON

    path = Path(runs_root) / STUDY_JSON
    if not path.is_file():
        return None, None
    fix = "the study's name is left out of report.json"
    try:
        study = rundir.read_json(path, fix=fix)
        problem = _study_problem(study)
        if problem:
            raise CorruptFile(path, problem, fix)
        return study, None
    except (CorruptFile, OSError) as err:
        return None, f"study left out: {_problem(err)}"


# The fields of study.json that aggregation and the report read, other than runs: (field, what it
# must be, its test). Each may be absent but name (dlb_study's check of a root says "it names no study").
_STUDY_FIELDS = (("file", "a path", lambda value: isinstance(value, str)),
                 ("metrics", "a list of metric names", lambda value: isinstance(value, list)
                  and all(isinstance(name, str) for name in value)),
                 ("metric_params", "an object", lambda value: isinstance(value, dict)))


def _study_problem(study):
    """What makes a study.json that is JSON unusable (a field of the wrong type had ended
    dlb_aggregate in a traceback), or None."""
    if not isinstance(study.get("name"), str):
        return "it names no study" if "name" not in study else f"its name is {_shown(study['name'])}, not text"
    for name, expected, fits in _STUDY_FIELDS:
        if name in study and not fits(study[name]):
            return f"its {name} is {_shown(study[name])}, not {expected}"
    runs = study.get("runs", [])
    if not isinstance(runs, list):
        return f"its runs is {_shown(runs)}, not a list of the study's runs"
    for index, run in enumerate(runs):
        if not isinstance(run, dict):
            return f"its runs[{index}] is {_shown(run)}, not an object naming a run"
        if "name" not in run:
            return f"its runs[{index}] has no name"
        if not isinstance(run["name"], str):
            return f"its runs[{index}].name is {_shown(run['name'])}, not text"
    return None


def _shown(value):
    """A value of a JSON file as it is written there, cut short."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass
class _Run:
    path: Path      # the run directory, as the user names it (under RUNS_ROOT)
    record: dict    # its run.json
    row: dict       # its row of results.csv
    details: dict   # where training stopped and why, for runs that did not finish

    @property
    def identity(self):
        """What makes two run directories the same run (see _identity)."""
        return _identity(self.record, self.row["dataset"])


def _read_run(run_dir, runs_root, left_out, damaged):
    """One run as a _Run; raises _LeftOut when it cannot be used, and appends to left_out a line
    for each metric result that cannot (the damaged ones also to damaged, under their name)."""
    record = _read_record(run_dir)
    row = {"run_dir": readable(run_dir.relative_to(runs_root)),
           "dataset": dataset_label(record["dataset"], record.get("dataset_options")),
           "method": record["method"], "seed": record["seed"], "status": record.get("status"),
           "dataset_shape": shape_text(record.get("dataset_shape"))}
    row.update({f"hp.{k}": _cell(v) for k, v in _section(record, "hyperparameters").items()})
    row.update({f"train.{k}": _cell(v) for k, v in _section(record, "train").items() if k != "seed"})
    row.update({f"model.{k}": _cell(v) for k, v in rundir.flat_settings(_section(record, "model")).items()})
    row.update(_train_results(run_dir, record, runs_root, left_out))
    row.update(_metric_row(run_dir, left_out, damaged))
    # a failed run's step is where it failed: run.json's step stays at its last checkpoint (0 for a run
    # that diverged before its first)
    failed_at = record.get("failed_step") if record.get("status") == rundir.Status.FAILED else None
    details = {"step": record.get("step") if failed_at is None else failed_at, "error": record.get("error")}
    return _Run(run_dir, record, row, details)


def _with_left_out_defaults(results):
    """A train.* setting that run.json leaves out at its default (train.precision, train.compile) at
    that default in the runs without it, where another run set it: float32, not a missing value."""
    for name, default in rundir.TRAIN_DEFAULTS_LEFT_OUT.items():
        column = f"train.{name}"
        if column in results:
            results[column] = results[column].astype(object).where(results[column].notna(), default)
    return results


def _read_record(run_dir):
    """run.json of run_dir, checked to hold what aggregation needs."""
    path = rundir.run_json_path(run_dir)
    try:
        record = readable_values(rundir.read_run(run_dir))
    except (CorruptFile, OSError) as err:
        raise _LeftOut(_problem(err)) from None
    fix = rundir.retrain_fix(run_dir)
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise _LeftOut(f"'{path}' lacks {', '.join(missing)} (every run.json that dlb_train writes has "
                       f"{', '.join(REQUIRED_KEYS)}); {fix}")
    for name in ("method", "dataset"):
        if not isinstance(record[name], str):
            raise _LeftOut(f"'{path}' holds a {type(record[name]).__name__} as {name}, not a name; {fix}")
    for name in SECTIONS:
        if not isinstance(record.get(name) or {}, dict):
            raise _LeftOut(f"'{path}' holds a {type(record[name]).__name__} as {name}, not an object; {fix}")
    shape = record.get("dataset_shape")
    if shape is not None and not is_dataset_shape(shape):  # a grid tells settings apart: a damaged one cannot
        raise _LeftOut(f"'{path}' holds a damaged dataset_shape ({json.dumps(shape)[:80]}), not a count of "
                       f"observations and a list of factor sizes; {fix}")
    return record


def _section(record, name):
    return record.get(name) or {}


def _train_results(run_dir, record, runs_root, left_out):
    """The final training scalars of model/results.json (none before training finished). A run
    said done without them is damaged (it had been counted finished, with fewer values). Those that
    are not finite numbers are left out, with a line in left_out, as a metric's are."""
    path = rundir.train_results_path(run_dir)
    if record.get("status") == rundir.Status.DONE and not path.is_file():
        raise _LeftOut(f"'{path}' is missing, though '{rundir.run_json_path(run_dir)}' says the run is done, so "
                       f"its training cannot be trusted; train it again with dlb_study STUDY --runs_root "
                       f"{shell_word(runs_root)} --retry_failed, or {rundir.retrain_command(run_dir)}")
    try:
        results = rundir.read_train_results(run_dir)
    except (CorruptFile, OSError) as err:
        raise _LeftOut(_problem(err)) from None
    measured = {k: v for k, v in results.items() if k != "dlbench_version"}  # every other value is a number
    unusable = {k: v for k, v in measured.items()
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)}
    if unusable:
        held = ", ".join(f"{key} = {json.dumps(value)}" for key, value in unusable.items())
        left_out.append(f"value left out: '{path}' holds {held}, not a finite number; its other values count")
    return {f"train_result.{k}": v for k, v in measured.items() if k not in unusable}


@dataclass
class _MetricResult:
    path: Path
    prefix: str     # of its columns: '[<mode>.]<metric><protocol tag>'
    values: dict    # {column: value}
    canonical: bool  # in the folder dlb_evaluate writes it to (not a legacy one)
    unusable: str = None  # the line about its measured values that are not finite numbers, if any


class _Misplaced(Exception):
    """A metric result in a folder dlb_evaluate does not write it to; the message says where it belongs."""


class _Outdated(Exception):
    """A metric result of another version than its metric's (metrics.version_problem): its values
    meant otherwise, so counting it would mix two meanings in one column; the message names the fix."""


def _metric_row(run_dir, left_out, damaged):
    """{column: value} of the metric results of run_dir that count, and a line in left_out for each
    that does not: damaged, in a folder dlb_evaluate does not write it to (a copy made by hand had
    replaced the real value), or a second file of the same columns."""
    counted = {}
    for mode, folder, path in rundir.metric_results(run_dir):
        name = folder if mode == "mean" else f"{mode}.{folder}"  # as --rank_by gives it
        try:
            result = _read_metric_result(run_dir, mode, folder, path)
        except (CorruptFile, OSError) as err:
            left_out.append(f"metric left out: {_problem(err)}")
            damaged.setdefault(name, []).append(LeftOutResult(left_out[-1]))
            continue
        except _Outdated as problem:  # counted with the damaged: a --rank_by of it says why no run has it
            left_out.append(f"metric left out: {problem}")
            damaged.setdefault(name, []).append(LeftOutResult(left_out[-1], outdated=True))
            continue
        except _Misplaced as problem:
            left_out.append(f"metric left out: {problem}")
            continue
        other = counted.get(result.prefix)
        if other is not None:
            result, other = (result, other) if result.canonical else (other, result)
            left_out.append(f"metric left out: '{other.path}' holds the result of {result.prefix} that "
                            f"'{result.path}' holds, which counts; remove the folder of the one not wanted")
        counted[result.prefix] = result
    left_out += [result.unusable for result in counted.values() if result.unusable]
    return {column: value for result in counted.values() for column, value in result.values.items()}


def _read_metric_result(run_dir, mode, folder, path):
    """The _MetricResult of one metrics/<mode>/<folder>/results.json."""
    metric, _, tag = folder.partition("[")  # folders carry the protocol tag
    fix = (f"compute it again with dlb_evaluate {shell_word(run_dir)} --metrics {metric} --mode {mode}"
           f"{_protocol_flags(metric, tag)} --overwrite")
    result = rundir.read_json(path, fix=fix)
    metric = result.get("metric") if isinstance(result.get("metric"), str) else metric
    result = current_keys(metric, result)
    canonical = _check_place(run_dir, mode, folder, path, metric, result)
    problem = result_problem(metric, result)
    if problem:
        raise CorruptFile(path, problem, fix, state="unusable")
    outdated = version_problem(metric, result)
    if outdated:
        raise _Outdated(f"'{path}' is outdated: {outdated}; {fix}")
    prefix = metric + protocol_tag(metric, result)
    prefix = prefix if mode == "mean" else f"{mode}.{prefix}"
    unusable = _unusable_values(metric, result)
    values = {f"{prefix}.{key}": result[key] for key in value_keys(metric, result) if key not in unusable}
    held = ", ".join(f"{key} = {json.dumps(value)}" for key, value in unusable.items())
    line = f"value left out: '{path}' holds {held}, not a finite number; its other values count; {fix}"
    return _MetricResult(path, prefix, values, canonical, line if unusable else None)


def _unusable_values(metric, result):
    """{key: value} of the measured values of a result that are not finite numbers: infinite, NaN,
    or a number written as text (an infinity had made a leaderboard mean infinite, with numpy's
    warning; NaN and text had gone without a word). A headline's is result_problem's."""
    measured = value_keys(metric, dict.fromkeys(result, 0.0))  # the keys a number would be a value of
    return {key: result[key] for key in measured if not key.endswith("_version") and _not_finite(result[key])}


def _not_finite(value):
    if value is None:  # a null where a number goes (written by hand: dlb_evaluate writes a _missing_reason)
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        try:
            float(value)  # '0.5', 'inf', 'NaN': a number written as text; other text describes
        except ValueError:
            return False
        return True
    return isinstance(value, (int, float)) and not math.isfinite(value)


def _check_place(run_dir, mode, folder, path, metric, result):
    """Whether the result is in the folder dlb_evaluate writes it to (named after its metric and
    protocol, under its mode); a result of the default protocol's folder written before protocols
    named folders counts too (dlb_evaluate reuses it), but not as the canonical one. _Misplaced
    for a result in any other folder (a backup copy beside the real one had replaced its value)."""
    recorded_mode = result.get("mode") if isinstance(result.get("mode"), str) else mode
    place = f"{metric}{protocol_tag(metric, result)}"
    if recorded_mode == mode and folder == place:
        return True
    if recorded_mode == mode and folder == metric:
        return False
    belongs = rundir.metric_results_path(run_dir, recorded_mode, place)
    raise _Misplaced(f"'{path}' is not where dlb_evaluate writes a result (a copy?): it is a {metric} result of "
                     f"the {recorded_mode} representation that belongs in '{belongs}'; remove its folder "
                     f"'{path.parent}', or move it there if that holds no result")


def _protocol_flags(metric, tag):
    """The dlb_evaluate flags of a protocol tag's text ('num_train=200,seed=1]'): the command that
    computes that protocol again, not the default one."""
    flags = ""
    for item in filter(None, tag.rstrip("]").split(",")):
        key, _, value = item.partition("=")
        flags += f" --seed {value}" if key == "seed" else f" --metric_param {metric}.{key}={value}"
    return flags


def _problem(err):
    """One line for a file that could not be read (its message names the file)."""
    text = str(err) if isinstance(err, CorruptFile) else describe_os_error(err)
    return " ".join(text.splitlines())  # one summary line per file, whatever the message quotes


def _identity(record, label):
    """Two run directories with the same identity are the same run (a copy): same data (the dataset
    label, with its options and, where the root holds several, its grid), method, hyperparameters,
    model and train settings and seed. Bookkeeping settings (how often it checkpointed or logged)
    do not change the result, so they are not part of it."""
    train = {k: v for k, v in _section(record, "train").items() if k not in rundir.BOOKKEEPING_TRAIN_SETTINGS}
    parts = [label, record["method"], _section(record, "hyperparameters"), train, _section(record, "model"),
             record["seed"]]
    return json.dumps(parts, sort_keys=True, default=str)


def _label_grids(runs):
    """Name the grid in the dataset label of each run that recorded it, where the runs of that label
    trained on more than one (a label holding one grid stays as it is, so a root of one grid reads
    as before): runs on different grids are then different settings, never averaged together, and
    the same seed on two grids is not a copy. A run that recorded none (trained before runs did)
    keeps the bare label: its grid is unknown, so it is pooled with none of several."""
    grids = {}  # label -> {grid's shape_text: the same without what it kept}
    for run in runs:
        if run.row["dataset_shape"] is not None:
            grids.setdefault(run.row["dataset"], {})[run.row["dataset_shape"]] = shape_text(
                run.record["dataset_shape"], kept=False)
    for run in runs:
        label_grids = grids.get(run.row["dataset"], {})
        if run.row["dataset_shape"] is not None and len(label_grids) > 1:
            shape = run.record["dataset_shape"]
            # which values a grid kept is named (as a hash) only where two grids of one shape need it
            sized = label_grids[run.row["dataset_shape"]]
            if sum(other == sized for other in label_grids.values()) < 2:
                shape = {key: value for key, value in shape.items() if key != "kept"}
            run.row["dataset"] = dataset_label(run.record["dataset"], run.record.get("dataset_options"), shape)


def _study_run_names(runs_root):
    """The names of the runs study.json lists (their folders under runs_root), or none."""
    study, _ = read_study(runs_root)
    listed = (study or {}).get("runs")
    return {run.get("name") for run in listed if isinstance(run, dict)} if isinstance(listed, list) else set()


def _drop_duplicates(runs, study_runs=()):
    """(runs counted, [Duplicate]): of each set of copies of one run, one is counted: a finished one
    before others, then the one at its place in the study (study_runs: folder names study.json
    lists), then the one with the most metric values, then the first by path. The copies' results
    are not merged into the one counted: copies of one run may be two trainings (a rerun, a GPU's
    nondeterminism), and a row mixing their results would pair values of two models; the results
    only a copy holds are listed instead (Duplicate.not_counted)."""
    copies = {}
    for run in runs:
        copies.setdefault(run.identity, []).append(run)
    counted, duplicates = set(), []
    for group in copies.values():
        kept = sorted(group, key=lambda run: (run.row["status"] != rundir.Status.DONE,
                                              run.row["run_dir"] not in study_runs, -len(_metric_values_of(run)),
                                              run.path))[0]
        counted.add(id(kept))
        duplicates += [Duplicate(run.path, kept.path, _differing(run, kept), _only_in(run, kept))
                       for run in group if run is not kept]
    return [run for run in runs if id(run) in counted], sorted(duplicates)


def _metric_values_of(run):
    return {column: value for column, value in run.row.items() if parse_metric_column(column)}


def _differing(copy, kept):
    """The metric columns both copies hold with different values."""
    ours, theirs = _metric_values_of(copy), _metric_values_of(kept)
    return sorted(column for column in set(ours) & set(theirs) if not _same_value(ours[column], theirs[column]))


def _only_in(copy, kept):
    """The metric columns the copy holds a value of and the run counted does not: results that
    would otherwise go unsaid (a metric evaluated in the copy only)."""
    ours, theirs = _metric_values_of(copy), _metric_values_of(kept)
    return sorted(column for column in ours if theirs.get(column) is None and ours[column] is not None)


def _same_value(a, b):
    return a == b or (a != a and b != b)  # NaN in both: the same (missing) value


def dataset_label(name, options, shape=None):
    """The dataset's name, with its options where a run set any, as 'linear_gaussian[observed_dim=20,seed=3]'
    (lists as a short hash), and the shape when given (shape_text): runs on differently built data
    are never pooled."""
    shown = [f"{key}={_short_value(value)}" for key, value in sorted((options or {}).items())]
    shown += [shape_text(shape)] if shape else []
    return f"{name}[{','.join(shown)}]" if shown else name


def shape_text(shape, kept=True):
    """run.json's dataset_shape as one word, 'observations=184320,factor_sizes=3x6x10x32x32' (None
    for a run that recorded none), and where a reduced grid recorded which values it kept, with
    ',kept=#' and their hash (unless not `kept`): two reduced grids of one shape are told apart."""
    if shape is None:
        return None
    grid = shape.get("factor_sizes")
    text = f"observations={shape['observations']}" + (f",factor_sizes={'x'.join(map(str, grid))}" if grid else "")
    return text + (f",kept={_short_value(shape['kept'])}" if kept and shape.get("kept") else "")


def _short_value(value):
    if isinstance(value, (list, dict)):  # a mixing matrix would make the label unreadable
        return "#" + hashlib.sha1(json.dumps(value).encode()).hexdigest()[:8]
    return value


def _cell(value):
    """Lists (e.g. Adam betas) as one CSV cell that groups correctly."""
    return str(value) if isinstance(value, (list, tuple, dict)) else value


def typed_columns(frame):
    """frame with one type per column: numbers as numbers, flags as flags, and a column that mixes
    kinds (a hyperparameter given as 4 in one run and '4' in another) as text, so that it can be
    grouped, sorted and written to parquet. Missing values stay missing."""
    return frame.apply(_typed_column)


def _typed_column(column):
    if column.dtype != object:
        return column
    kinds = {_kind(value) for value in column.dropna()}
    if kinds == {"number"}:
        return pd.to_numeric(column)
    if len(kinds) <= 1:
        return column
    return column.map(lambda value: value if pd.isna(value) else str(value))


def _kind(value):
    if isinstance(value, bool):
        return "flag"
    return "number" if isinstance(value, (int, float)) else "text"
