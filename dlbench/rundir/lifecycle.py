"""A run's lifecycle, as its trainer lives it and run.json records it:

    prepare ─> (clear) ─> running ─> checkpoint ... ─> done
                             │                      ├─> failed        (the loss diverged, a bug)
                             │                      └─> interrupted   (a signal, a full disk)
                             └── prepare again: resume from the newest checkpoint, or skip when ended

All of it happens while the process holds the run's claim (dlbench.rundir.claims): prepare()
decides, without writing, what training does with the folder; the mark_* functions record each
change of state in run.json. A session is one process's stretch of training: run.json's `sessions`
lists them, so a run's history shows that no two processes trained it at once.
"""

import enum
import json
import os
import shutil
import socket
import time
from pathlib import Path

import dlbench
from dlbench.errors import CorruptFile, UserError
from dlbench.rundir.layout import CLAIM_JSON, RUN_JSON, checkpoint_paths, config_gin_path, is_claim_file, run_json_path
from dlbench.rundir.record import (Status, enclosing_run, git_revision, is_run, read_run, resume_command, retrain_fix,
                                   update_run)

# train.* settings that change how a run is logged and saved, not what it computes: they are not
# part of a setting (runs differing only in them are pooled in a leaderboard), and may change
# between sessions of one run.
BOOKKEEPING_TRAIN_SETTINGS = ("checkpoint_every", "log_every", "checkpoint_minutes")
# train.* settings that run.json leaves out at their default, so that runs recorded before they
# existed keep their identity: a run without one has this value
TRAIN_DEFAULTS_LEFT_OUT = {"precision": "float32", "compile": False}


class Prepare(enum.Enum):
    """What training does with a run directory, as prepare() decides."""

    FRESH = "fresh"      # nothing there yet: train from step 0
    RESTART = "restart"  # clear() the old run, then train from step 0
    RESUME = "resume"    # continue from the newest readable checkpoint
    SKIP = "skip"        # training ended (done or failed) with this config: leave it alone


class ConfigMismatch(UserError):
    """The folder holds a run of another config: it is not this run's to train, mark or replace.
    differences: the bindings that differ, as config_differences gives them."""

    def __init__(self, message, differences=()):
        super().__init__(message)
        self.differences = list(differences)


def prepare(run_dir, identity, overwrite):
    """Decide, without writing, what to do with run_dir (which this process holds) to train
    `identity` in it; a UserError when the folder holds something else."""
    run_dir = Path(run_dir)
    _check_not_nested(run_dir)
    # another process trying to claim the run leaves its draft here for a moment: no reason to refuse
    others = [p.name for p in run_dir.iterdir() if not is_claim_file(p.name)]
    if others and not is_run(run_dir) and holds_only_a_starts_drafts(run_dir):
        return Prepare.RESTART  # a start cut short before run.json: the rerun had been refused for good
    if others and not is_run(run_dir):
        # said so that it fits a study's run too, whose folder is the study's to choose
        raise UserError(f"'{run_dir}' exists, is not empty and is not a run (it has no run.json); move its files "
                        f"away, or choose another folder")
    if not others:
        return Prepare.FRESH
    if overwrite:
        _check_holds_no_other_run(run_dir)
        return Prepare.RESTART  # run.json is not read: --overwrite is also the way out of a damaged one
    record = read_run(run_dir)
    if not records_config(record):
        raise CorruptFile(run_json_path(run_dir), "it records no run's config (method, train settings)",
                          retrain_fix(run_dir))
    differences = config_differences(record, identity)
    if differences:
        failed = record.get("status") == Status.FAILED  # it had been called finished; its own config trains nothing
        state = "a failed" if failed else "a finished" if record.get("status") in Status.ENDED else "an unfinished"
        own = "" if failed else f"`{resume_command(run_dir)}` alone uses its own config, "
        raise ConfigMismatch(f"'{run_dir}' holds {state} run with a different config ({', '.join(differences)}); "
                             f"{own}--overwrite replaces it, or choose another --run_dir", differences)
    if record.get("status") in Status.ENDED:
        return Prepare.SKIP
    if checkpoint_paths(run_dir):
        return Prepare.RESUME
    _check_holds_no_other_run(run_dir)
    return Prepare.RESTART


def _check_not_nested(run_dir):
    """A run inside another run's folder passed for part of it: an aggregation counted both, and
    the outer run's --overwrite removed it without a word."""
    outer = enclosing_run(Path(run_dir).absolute().parent)
    if outer:
        raise UserError(f"'{run_dir}' is inside the run directory '{outer}', where its files would pass for that "
                        f"run's (and its --overwrite would remove them); give a --run_dir outside it")


def _check_holds_no_other_run(run_dir):
    """Before the folder is cleared: a run copied into it by hand goes with it otherwise."""
    inner = next((path.parent for path in Path(run_dir).rglob(RUN_JSON) if path.parent != Path(run_dir)), None)
    if inner:
        raise UserError(f"'{run_dir}' holds another run, '{inner}', which training it again from step 0 would remove; "
                        f"move that run out first")


def holds_only_a_starts_drafts(run_dir):
    """Whether run_dir (without run.json) holds only what training writes before run.json is in
    place: model/config.gin and the temporary files of its and run.json's atomic writes cut short.
    Nothing of a user's, and no training, is lost by starting such a run again."""
    config = config_gin_path(run_dir)
    for path in Path(run_dir).iterdir():
        if is_claim_file(path.name) or _draft_of(path, RUN_JSON):
            continue
        if path != config.parent or not path.is_dir() or path.is_symlink():
            return False
        if not all(inner == config and inner.is_file() or _draft_of(inner, config.name) for inner in path.iterdir()):
            return False
    return True


def _draft_of(path, name):
    """Whether path is the temporary file of an atomic write of `name` (files.atomic_path's naming)."""
    return (path.name.startswith(f".{name}.") and path.name.endswith(".tmp") and path.is_file()
            and not path.is_symlink())


def records_config(record):
    """Whether a run.json records the config of its run, as every one dlb_train writes does."""
    return "method" in record and isinstance(record.get("train"), dict)


def clear(run_dir):
    """Remove everything in run_dir but the claim this process holds on it (Prepare.RESTART)."""
    for path in Path(run_dir).iterdir():
        if path.name == CLAIM_JSON:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _comparable(record):
    """The identity of a record or identity as flat 'section.key' entries; dataset_options is absent
    (None) in both where unset, and bookkeeping settings (how often to log and checkpoint) may change
    between sessions of one run."""
    flat = {}
    for key in ("method", "dataset", "dataset_options", "seed", "hyperparameters", "train", "model"):
        value = record.get(key)
        if key in ("hyperparameters", "train", "model") and isinstance(value, dict):
            section = "model" if key == "model" else ("train" if key == "train" else record.get("method"))
            flat.update({f"{section}.{k}": v for k, v in value.items()
                         if not (key == "train" and k in BOOKKEEPING_TRAIN_SETTINGS)})
        else:
            flat[key] = value
    for name, default in TRAIN_DEFAULTS_LEFT_OUT.items():
        flat.setdefault(f"train.{name}", default)
    return flat


# what a run is shown before its settings, so that the first three differences name it
_WHAT_THE_RUN_IS = ("method", "dataset", "dataset_options", "seed", "train.seed")


def _shown_first(key):
    return (_WHAT_THE_RUN_IS.index(key) if key in _WHAT_THE_RUN_IS else len(_WHAT_THE_RUN_IS), key)


def config_differences(record, identity):
    """The bindings in which a recorded run and an identity differ, e.g. ['beta_vae.beta: 4.0 -> 8.0']."""
    old, new = _comparable(record), _comparable(identity)
    keys = sorted((k for k in set(old) | set(new) if old.get(k) != new.get(k)), key=_shown_first)
    if "train.seed" in keys and "seed" in keys:  # the identity holds the seed twice: said once
        keys.remove("seed")
    shown = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3]]
    return shown + ([f"and {len(keys) - 3} more"] if len(keys) > 3 else [])


def identity_key(record):
    """A text equal for two records (or identities) exactly where config_differences finds none:
    whole numbers as floats (a sweep's beta 4 is the default's 4.0) and tuples as lists."""
    return json.dumps(_as_floats(_comparable(record)), sort_keys=True, default=str)


def same_setting(a, b):
    """Whether two recorded values are one setting: whole numbers as floats, tuples as lists (a
    JSON round trip turns the one into the other)."""
    return _as_floats(a) == _as_floats(b)


def flat_settings(settings, prefix=""):
    """{'prior': {'name': 'x', 'p0': 2}} -> {'prior.name': 'x', 'prior.p0': 2}."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(flat_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _as_floats(value):
    if isinstance(value, bool) or not isinstance(value, (int, dict, list, tuple)):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _as_floats(item) for key, item in value.items()}
    return [_as_floats(item) for item in value]


def new_session(from_step, stacked=False, cpu_threads=None):
    """This process's session of training, starting at from_step, alone (stacked False) or in a
    stack of `stacked` runs (a run's sessions may differ in it: run.json's own `stacked` is the
    last one's); mark_session_started lists it, mark_interrupted, mark_failed, mark_stopped or
    mark_done ends it. cpu_threads: the threads a CPU trains with, which decide the order of its
    float sums, so its weights, bit for bit."""
    session = {"host": socket.gethostname(), "pid": os.getpid(), "from_step": from_step, "stacked": stacked}
    return session | ({"cpu_threads": cpu_threads} if cpu_threads else {})


# how a session ended that did not record it: killed (SIGKILL, out of host memory) or its machine lost
LOST = "lost"


def mark_session_started(run_dir, session, **fields):
    """List the session in run.json's `sessions`, open (ended None) until a mark_* ends it (with
    `fields` recorded too). One left open by an earlier process ended without a word: it is closed
    as LOST at the run's last checkpoint (what it kept, where this session resumes), where it had
    left a gap in the list."""
    record = read_run(run_dir)
    earlier = list(record.get("sessions", []))
    if earlier and isinstance(earlier[-1], dict) and earlier[-1].get("ended") is None:
        earlier[-1] = {**earlier[-1], "to_step": record.get("step"), "ended": LOST}
    update_run(run_dir, sessions=[*earlier, _open(session)], **fields)


def _open(session):
    return {**session, "to_step": None, "ended": None}


def mark_running(run_dir, started, **fields):
    """Status running, with `fields` (the identity and settings), dlbench's version and git revision.
    A resumed run keeps the time it was first started (a fresh one has no run.json yet)."""
    started = read_run(run_dir).get("started", started) if is_run(run_dir) else started
    update_run(run_dir, **fields, status=Status.RUNNING, dlbench_version=dlbench.__version__,
               git_revision=git_revision(), started=started)


def mark_checkpoint(run_dir, step):
    """Record the step of the checkpoint just written (where a resume starts)."""
    update_run(run_dir, step=step)


def mark_interrupted(run_dir, session, step, signal_name):
    """Stopped by a signal at step, its checkpoint written: training resumes from it."""
    update_run(run_dir, status=Status.INTERRUPTED, step=step, interrupted_by=signal_name, error=None,
               **_ended(read_run(run_dir), session, step, f"interrupted by {signal_name}"))


def mark_failed(run_dir, session, step, error):
    """Training failed at step (its loss diverged): the run is left alone until --overwrite."""
    update_run(run_dir, status=Status.FAILED, error=error, failed_step=step,
               **_ended(read_run(run_dir), session, step, Status.FAILED))


def mark_done(run_dir, session, step, started):
    """Training finished at step (weights, config, results and samples written)."""
    update_run(run_dir, status=Status.DONE, step=step, finished=time.time(), elapsed_seconds=time.time() - started,
               error=None, **_ended(read_run(run_dir), session, step, Status.DONE))


def mark_stopped(run_dir, status, reason, session=None, ending=None):
    """Record why an exception stopped the run: Status.INTERRUPTED when it can resume once the
    cause is fixed (a full disk, a preemption), Status.FAILED when it cannot. A training session
    given ends at the run's last checkpoint (what it kept; a resume starts there), as `ending`
    says (by default the status)."""
    ended = {}
    if session:
        record = read_run(run_dir)
        ended = _ended(record, session, record.get("step", session["from_step"]), ending or status)
    update_run(run_dir, status=status, error=reason, **ended)


def _ended(record, session, step, ending):
    """run.json's `sessions` (from its record) with this one appended: which process trained which steps."""
    earlier = record.get("sessions", [])
    if earlier and earlier[-1] == _open(session):  # listed open as it started
        earlier = earlier[:-1]
    return {"sessions": [*earlier, {**session, "to_step": step, "ended": ending}]}
