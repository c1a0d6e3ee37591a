"""One training run into a run directory: fresh, resumed, or left alone when finished."""

import csv
import io
import os
import shutil
import signal
import socket
import threading
import time
from pathlib import Path

from tqdm import tqdm

import dlbench
from dlbench import rundir
import dlbench.data
from dlbench.errors import CorruptFile, Interrupted, UserError, describe_os_error
from dlbench.nn import build_vae
from dlbench.train import checkpoints
from dlbench.train.loop import NonFiniteLoss, Trainer
from dlbench.train.samples import write_samples

RESUMABLE = ("running", "interrupted")
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def train_run(run_dir, spec, device, config_text="", overwrite=False, progress=True, log=print):
    """Train spec into run_dir and return the final status ('done', 'failed' or 'skipped').
    The run directory is held (rundir.hold_run) throughout: a second writer gets RunHeld. A
    signal (SIGINT, SIGTERM, SIGHUP) ends the current step, writes a checkpoint, marks the run
    interrupted and raises Interrupted."""
    run_dir = Path(run_dir)
    identity = spec.identity()
    with _StopOnSignals() as stop, rundir.hold_run(run_dir, "trained") as claim:
        action = _prepare_run_dir(run_dir, identity, overwrite)
        if action == "skip":
            log(f"{run_dir}: training already finished; left alone (use --overwrite to train again)")
            return "skipped"
        data = dlbench.data.dataset_from_record(identity)  # a bad dataset stops us before anything is removed
        if action == "restart":
            if not overwrite:
                log(f"{run_dir}: the unfinished run has no checkpoint to resume from; training starts again from step 0")
            _clear_run_dir(run_dir)
        trainer = Trainer(spec, data, device)
        if action == "resume":
            _resume_from_newest_checkpoint(run_dir, trainer, device, log)
            _truncate_log(run_dir, trainer.step)
        else:
            rundir.atomic_write_text(run_dir / "model" / "config.gin", config_text)
        started = time.time()
        # Settings that follow from the identity, recorded but not compared on resume: those the prior
        # took from the data (PCA values), and everything the dataset resolved to (a drawn mixing matrix).
        prepared = {}
        if trainer.model.config["prior"] != spec.model["prior"]:
            prepared["prepared_prior"] = trainer.model.config["prior"]
        if hasattr(data, "settings"):
            prepared["dataset_settings"] = data.settings()
        claim.check()
        rundir.update_run(run_dir, **identity, **prepared, status="running", device=str(device), step=trainer.step,
                          checkpoint_minutes=spec.train["checkpoint_minutes"],
                          dlbench_version=dlbench.__version__, git_revision=rundir.git_revision(),
                          started=rundir.read_run(run_dir).get("started", started) if action == "resume" else started)
        session = {"host": socket.gethostname(), "pid": os.getpid(), "from_step": trainer.step}
        return _train_to_end(run_dir, trainer, spec, progress, started, claim, stop, log, session)


def _train_to_end(run_dir, trainer, spec, progress, started, claim, stop, log, session):
    t = spec.train
    log_file = _LogWriter(run_dir / "model" / "train_log.csv")
    # updated every step, so the rate and the ETA show from the first steps, not the first log step
    bar = tqdm(total=t["steps"], initial=trainer.step, disable=not progress, desc=run_dir.name, unit="step")
    schedule = _CheckpointSchedule(t["checkpoint_every"], t["checkpoint_minutes"])
    last = {}

    def on_log(step, means, images_per_second):
        last.clear()
        last.update(means)
        log_file.write({"step": step, "images_per_second": round(images_per_second, 1), **means})
        bar.set_postfix(loss=f"{means['loss']:.2f}", refresh=False)

    def save_checkpoint():
        claim.check()
        checkpoints.save_checkpoint(run_dir, trainer.state_dict())
        rundir.update_run(run_dir, step=trainer.step)
        schedule.saved()

    def after_step(step):
        bar.update(1)
        if claim.lost:
            claim.check()
        if stop.signum is not None:
            return True
        if step < t["steps"] and schedule.due(step):
            save_checkpoint()
        return False

    tick = time.perf_counter()
    first_step = trainer.step
    try:
        trainer.run(t["steps"], t["log_every"], on_log, after_step)
        if trainer.step < t["steps"]:
            bar.close()
            save_checkpoint()
            raise _interrupted(run_dir, trainer.step, stop.signum, session)
        _finish(run_dir, trainer, last, time.perf_counter() - tick, trainer.step - first_step, started, claim, session)
    except NonFiniteLoss as err:
        rundir.update_run(run_dir, status="failed", error=str(err), failed_step=err.step,
                          **_ended(run_dir, session, err.step, "failed"))
        log(f"{run_dir}: {err}; run marked failed")
        return "failed"
    except (Interrupted, rundir.ClaimLost):
        raise  # the first already marked the run; after the second the run is another process's
    except KeyboardInterrupt:  # a second Ctrl-C: stop now, the last checkpoint is kept
        _mark_stopped(run_dir, "interrupted", "stopped by a second interruption", log)
        raise
    except SystemExit:  # a scheduler's own handler exiting (submitit's requeue on preemption)
        _mark_stopped(run_dir, "interrupted", "the process exited mid-run (preempted or requeued)", log)
        raise
    except OSError as err:  # a full disk, a lost mount: the run can resume once that is fixed
        _mark_stopped(run_dir, "interrupted", describe_os_error(err), log)
        raise
    except BaseException as err:
        _mark_stopped(run_dir, "failed", f"{type(err).__name__}: {err}", log)
        raise
    finally:
        bar.close()
    return "done"


def _ended(run_dir, session, step, ending):
    """run.json's `sessions` with this one appended: which process trained which steps, so a run's
    history shows that no two processes trained it at once."""
    earlier = rundir.read_run(run_dir).get("sessions", [])
    return {"sessions": [*earlier, {**session, "to_step": step, "ended": ending}]}


def _interrupted(run_dir, step, signum, session):
    name = signal.Signals(signum).name
    rundir.update_run(run_dir, status="interrupted", step=step, interrupted_by=name, error=None,
                      **_ended(run_dir, session, step, f"interrupted by {name}"))
    return Interrupted(f"{run_dir}: interrupted by {name} at step {step}; checkpoint written; "
                       f"`dlb_train --run_dir {run_dir}` resumes from step {step}", signum)


def _mark_stopped(run_dir, status, reason, log):
    """Record why the run stopped; if even run.json cannot be written (the disk is full), say so:
    its 'running' status then belongs to no process, and its claim lets the next dlb_train in."""
    try:
        rundir.update_run(run_dir, status=status, error=reason)
    except OSError as err:
        log(f"{run_dir}: could not mark the run {status} ({describe_os_error(err)})")


class _CheckpointSchedule:
    """A checkpoint every `every` steps, and also whenever `minutes` of wall-clock time have passed
    since the last one (0: by steps only), so an interruption never loses more than that."""

    def __init__(self, every, minutes):
        self.every, self.seconds = every, 60.0 * minutes
        self.last = time.monotonic()

    def due(self, step):
        return step % self.every == 0 or (self.seconds > 0 and time.monotonic() - self.last >= self.seconds)

    def saved(self):
        self.last = time.monotonic()


class _StopOnSignals:
    """While active, SIGINT, SIGTERM and SIGHUP only set `signum` (the trainer then stops after the
    current step); the previous handlers come back at the first signal, so a second Ctrl-C stops
    at once. Only the main thread can handle signals: elsewhere this does nothing."""

    def __init__(self):
        self.signum, self.previous = None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        self._restore()

    def _restore(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def __exit__(self, *exc):
        self._restore()


def _finish(run_dir, trainer, last, train_seconds, steps_done, started, claim, session):
    claim.check()
    model_dir = run_dir / "model"
    checkpoints.save_atomic({"model": trainer.model.state_dict(), "model_config": trainer.model.config},
                            model_dir / "checkpoint.pt")
    shown, scale = trainer.shown_images()
    write_samples(trainer.model, shown, scale, model_dir / "samples")
    images_per_second = steps_done * trainer.spec.train["batch_size"] / max(train_seconds, 1e-9)
    rundir.write_json(model_dir / "results.json", {
        **last, "steps": trainer.step, "train_seconds_this_session": train_seconds,
        "images_per_second": images_per_second, "dlbench_version": dlbench.__version__})
    shutil.rmtree(checkpoints.checkpoint_dir(run_dir), ignore_errors=True)
    rundir.update_run(run_dir, status="done", step=trainer.step, finished=time.time(),
                      elapsed_seconds=time.time() - started, error=None, **_ended(run_dir, session, trainer.step, "done"))


def _prepare_run_dir(run_dir, identity, overwrite):
    """Decide, without writing, what to do with run_dir (which this process holds): 'fresh',
    'restart' (clear the old run, then fresh), 'resume' or 'skip' (finished with this config)."""
    others = [p.name for p in run_dir.iterdir() if p.name != rundir.CLAIM_JSON]
    if others and not rundir.is_run(run_dir):
        raise UserError(f"'{run_dir}' exists, is not empty and is not a run; choose another --run_dir")
    if not others:
        return "fresh"
    if overwrite:
        return "restart"  # run.json is not read: --overwrite is also the way out of a damaged one
    record = rundir.read_run(run_dir)
    differences = _differences(record, identity)
    if differences:
        state = "a finished" if record.get("status") in ("done", "failed") else "an unfinished"
        raise UserError(f"'{run_dir}' holds {state} run with a different config ({', '.join(differences)}); "
                        f"`dlb_train --run_dir {run_dir}` alone uses its own config, --overwrite replaces it, "
                        f"or choose another --run_dir")
    if record.get("status") in ("done", "failed"):
        return "skip"
    return "resume" if checkpoints.latest_checkpoint(run_dir) else "restart"


def _clear_run_dir(run_dir):
    """Remove everything in run_dir but the claim this process holds on it."""
    for path in run_dir.iterdir():
        if path.name == rundir.CLAIM_JSON:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _resume_from_newest_checkpoint(run_dir, trainer, device, log):
    """Load the newest checkpoint that reads back whole (falling back to the one before when the
    newest is damaged) and say so; a UserError when none does."""
    for path in checkpoints.checkpoints_newest_first(run_dir):
        try:
            trainer.load_state_dict(checkpoints.load(path, device, fix="trying the checkpoint before it"))
        except CorruptFile as err:
            log(f"{run_dir}: {err}")
            continue
        except (KeyError, TypeError, ValueError, RuntimeError) as err:  # a readable file of other contents
            log(f"{run_dir}: '{path}' is not a checkpoint of this run ({type(err).__name__}); trying the one before it")
            continue
        log(f"{run_dir}: resuming from step {trainer.step}")
        return
    raise UserError(f"no readable checkpoint in '{checkpoints.checkpoint_dir(run_dir)}'; "
                    f"`dlb_train --run_dir {run_dir} --overwrite` restarts the run from step 0")


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
                         if not (key == "train" and k in rundir.BOOKKEEPING_TRAIN_SETTINGS)})
        else:
            flat[key] = value
    return flat


def _differences(record, identity):
    """The bindings in which a recorded run and an identity differ, e.g. ['beta_vae.beta: 4.0 -> 8.0']."""
    old, new = _comparable(record), _comparable(identity)
    keys = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    shown = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:3]]
    return shown + ([f"and {len(keys) - 3} more"] if len(keys) > 3 else [])


def _truncate_log(run_dir, step):
    """Drop log rows written after the checkpoint a resumed run restarts from."""
    path = run_dir / "model" / "train_log.csv"
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = rows[0].keys() if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows(row for row in rows if int(row["step"]) <= step)
    rundir.atomic_write_text(path, buffer.getvalue() if rows else "")


class _LogWriter:
    """Appends rows to train_log.csv, writing the header once."""

    def __init__(self, path):
        self.path = path
        self.has_header = path.is_file() and path.stat().st_size > 0

    def write(self, row):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if not self.has_header:
                writer.writeheader()
                self.has_header = True
            writer.writerow(row)


def load_trained_model(run_dir, device="cpu"):
    """The VAE of a finished run, on device, in eval mode; a CorruptFile when its weights do not
    read back."""
    path = Path(run_dir) / "model" / "checkpoint.pt"
    fix = f"train the run again with `dlb_train --run_dir {run_dir} --overwrite`"
    state = checkpoints.load(path, device, fix=fix)
    try:
        model = build_vae(state["model_config"]).to(device)
        model.load_state_dict(state["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CorruptFile(path, f"not the weights of this run: {type(err).__name__}", fix) from None
    return model.eval()


def train_from_gin(gin_files=(), gin_params=(), run_dir=None, device="auto", overwrite=False, progress=True):
    """Parse the config, check it, and train; returns (run_dir, status). With neither gin files
    nor bindings, an existing run_dir is trained on with its own config (model/config.gin)."""
    from dlbench.config import operative_config, parse_gin, resolve_run_spec
    from dlbench.train.device import resolve_device

    if not gin_files and not gin_params:
        gin_files = [own_config(run_dir)]
    parse_gin(gin_files, gin_params)
    spec = resolve_run_spec()
    device = resolve_device(device)
    run_dir = Path(run_dir) if run_dir else rundir.default_run_dir(spec.identity())
    return run_dir, train_run(run_dir, spec, device, operative_config(), overwrite, progress)


def own_config(run_dir):
    """RUN_DIR/model/config.gin, the operative config a run was started with."""
    if run_dir is None:
        raise UserError("give at least one --gin FILE (e.g. --gin gin/beta_vae.gin), or the --run_dir of an existing run")
    path = Path(run_dir) / "model" / "config.gin"
    if not path.is_file():
        raise UserError(f"'{run_dir}' holds no run with a config ({path} is missing); give --gin FILE")
    return str(path)
