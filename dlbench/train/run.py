"""One training run into a run directory: fresh, resumed, or left alone when finished."""

import contextlib
import csv
import io
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from tqdm import tqdm

import dlbench
from dlbench import rundir
from dlbench.rundir import Prepare, Status
import dlbench.data
from dlbench.data.dsprites import generation_bar
from dlbench.errors import (CorruptFile, DataUnavailable, Interrupted, OtherDataFound, UserError, describe_os_error,
                            interrupt_signal, reason, shell_word)
from dlbench.nn import build_vae
from dlbench.signals import stop_asked
from dlbench.train import checkpoints
from dlbench.train.device import out_of_memory_reason, out_of_memory_said
from dlbench.train.loop import NonFiniteLoss, Trainer, window_means
from dlbench.train.samples import write_samples

SKIPPED = "skipped"  # what train_run answers for a run it left alone (never a status in run.json)
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def train_run(run_dir, spec, device, config_text="", overwrite=False, progress=True, log=print, in_study=False):
    """Train spec into run_dir and return the final status (Status.DONE, Status.FAILED or SKIPPED).
    The run directory is held (rundir.hold_run) throughout: a second writer gets RunHeld. A
    signal (SIGINT, SIGTERM, SIGHUP) ends the current step, writes a checkpoint, marks the run
    interrupted and raises Interrupted. in_study: a study's run, left alone without a word (see
    left_alone)."""
    run_dir = Path(run_dir)
    with StopOnSignals() as stop, rundir.hold_run(run_dir, "trained") as claim, out_of_memory_said(run_dir):
        action = rundir.prepare(run_dir, spec.identity(), overwrite)
        if action is Prepare.SKIP:
            return left_alone(run_dir, log, in_study)
        data = data_of(run_dir, spec, action, progress)  # a bad dataset stops us before anything is removed
        trainer = start_training(run_dir, spec, data, device, action, config_text, overwrite, claim, log, in_study,
                                 stacked=False)
        session = rundir.new_session(from_step=trainer.step, cpu_threads=cpu_threads(device))
        return _train_to_end(run_dir, trainer, spec, progress, trainer.started, claim, stop, log, session)


def data_of(run_dir, spec, action, progress):
    """The dataset of the run; one resumed is refused other data (OtherData) before any is generated
    for it: a run on a reduced grid resumed with an empty DLBENCH_DATA had first generated the
    whole synthetic dSprites (3 GB), then been refused it. A dSprites generated for it draws its bar
    as training does (`progress`)."""
    record = spec.identity()
    if action is Prepare.RESUME:
        record["dataset_shape"] = rundir.read_run(run_dir).get("dataset_shape")
    with generation_bar(progress):
        try:
            return dlbench.data.dataset_from_record(record, error=OtherData)
        except (OtherDataFound, DataUnavailable):
            raise
        except UserError as err:  # the data's own problem: the run's config was checked before
            raise DataUnavailable(str(err)) from None


def cpu_threads(device):
    """The threads training on the CPU uses (None on a GPU): run.json records them per session."""
    return torch.get_num_threads() if torch.device(device).type == "cpu" else None


def left_alone(run_dir, log, in_study=False):
    """SKIPPED for a run that finished, Status.FAILED (with its reason) for one that failed. A
    study's run is left alone without a word: the study counts it, and says how to train its failed
    runs again (--retry_failed), where dlb_train's advice had been printed for each of 1,280 runs."""
    record = rundir.read_run(run_dir)
    failed = record.get("status") == Status.FAILED
    if in_study:
        return Status.FAILED if failed else SKIPPED
    if failed:
        log(f"{run_dir}: the run failed ({record.get('error')}); left alone: --overwrite trains it again from step 0")
        return Status.FAILED
    missing = rundir.missing_training_file(run_dir)  # "already finished" had been said of such a run
    if missing:
        raise UserError(missing)
    log(f"{run_dir}: training already finished; left alone (`{rundir.retrain_command(run_dir)}` trains it "
        f"again from step 0)")
    return SKIPPED


def start_training(run_dir, spec, data, device, action, config_text, overwrite, claim, log, in_study=False,
                   **recorded):
    """The run's Trainer, fresh (its folder cleared first on RESTART, its config written) or resumed
    from its newest checkpoint, with run.json marked running (with `recorded` fields too);
    trainer.started is when this session started. in_study: a study's run (its advice names the
    study's flags)."""
    identity = spec.identity()
    if action is Prepare.RESUME:
        record = rundir.read_run(run_dir)
        check_resumable_on(record, run_dir, device)
        dlbench.data.check_dataset_shape(record, data, error=OtherData)
    # built first: a model the data or the seed cannot make is refused before the old run is removed
    trainer = Trainer(spec, data, device)
    history = {}
    if action is Prepare.RESTART:
        if not overwrite:
            log(f"{run_dir}: the unfinished run has no checkpoint to resume from; training starts again from step 0")
        history = earlier_sessions(run_dir, identity, overwrite)
        rundir.clear(run_dir)
    config_gin = rundir.config_gin_path(run_dir)
    if action is Prepare.RESUME:
        say_missing_checkpoint(run_dir, record, log)
        resume_from_newest_checkpoint(run_dir, trainer, log)
        truncate_log(run_dir, trainer.step, record.get("train", {}).get("log_every"))
        say_other_threads(record, run_dir, device, log, in_study)
        # the config given is the run's (prepare compared them), but may set other bookkeeping
        # (train.log_every, checkpoint_every), which run.json records from this session on
        if not config_gin.is_file():
            log(f"{run_dir}: {config_gin} was missing; written again from the config given")
            rundir.atomic_write_text(config_gin, config_text)
        elif config_gin.read_text(encoding="utf-8", errors="replace") != config_text:
            rundir.atomic_write_text(config_gin, config_text)
    else:
        rundir.atomic_write_text(config_gin, config_text)
    started = time.time()
    # Settings that follow from the identity, recorded but not compared on resume: those the prior
    # took from the data (PCA values), and everything the dataset resolved to (a drawn mixing matrix).
    prepared = {"dataset_shape": dlbench.data.dataset_shape(data)}
    if trainer.model.config["prior"] != spec.model["prior"]:
        prepared["prepared_prior"] = trainer.model.config["prior"]
    if hasattr(data, "settings"):
        prepared["dataset_settings"] = data.settings()
    claim.check()
    rundir.mark_running(run_dir, started, **identity, **prepared, **recorded, **history, device=str(device),
                        step=trainer.step, checkpoint_minutes=spec.train["checkpoint_minutes"])
    trainer.started = started  # this session's start (run.json keeps the first session's)
    return trainer


def earlier_sessions(run_dir, identity, overwrite):
    """{'sessions': [...]} of a run trained again from step 0 in its folder where its history goes
    on: an unfinished run that kept no checkpoint (the session left open is closed as lost at step
    0, where this one starts: a session killed before its first checkpoint had been dropped from
    the list), and a failed run trained again with its own config (--retry_failed, or --overwrite
    of the same config: its failed sessions had been dropped). Empty for a run replaced by another
    config's, and where run.json is not there or unreadable (a start cut short before it)."""
    try:
        record = rundir.read_run(run_dir)
    except (FileNotFoundError, CorruptFile):
        return {}
    retried = record.get("status") == Status.FAILED and not rundir.config_differences(record, identity)
    sessions = record.get("sessions")
    if (overwrite and not retried) or not (isinstance(sessions, list) and sessions):
        return {}
    return {"sessions": sessions}


def say_other_threads(record, run_dir, device, log, in_study=False):
    """A line when a run trained on the CPU resumes with another number of threads than its last
    session had: they decide the order of its float sums, so its weights from here on differ, in
    float rounding, from those of the run trained with one number throughout. A study shares its
    threads out among its --workers, whatever OMP_NUM_THREADS says of the whole."""
    sessions = [s for s in record.get("sessions", []) if isinstance(s, dict)]
    before, now = sessions[-1].get("cpu_threads") if sessions else None, cpu_threads(device)
    if before and now and before != now:
        alike = (f"the study run with the --workers it trained with, which gave each run {before}, resumes it alike"
                 if in_study else f"OMP_NUM_THREADS={before} resumes it alike")
        log(f"{run_dir}: trained so far with {before} CPU threads, now with {now}: its weights will differ in float "
            f"rounding from the run trained with {before} throughout ({alike})")


class OtherDevice(rundir.ConfigMismatch):
    """The run's checkpoints were written on another kind of device (CPU or GPU)."""


class OtherData(rundir.ConfigMismatch, OtherDataFound):
    """The dataset found is not the one the run trained on (dlbench.data.check_dataset_shape)."""


def check_resumable_on(record, run_dir, device):
    """OtherDevice when the run's checkpoints were written on another kind of device: a CPU's
    random generator (a Mersenne twister) and a GPU's (counter-based Philox) have different states,
    so the run's random numbers cannot go on there, and it would be another run."""
    trained_on = record.get("device")
    if not trained_on or torch.device(trained_on).type == torch.device(device).type:
        return
    kind = torch.device(trained_on).type
    raise OtherDevice(f"'{run_dir}' was trained on the {kind}: resume it there (--device {kind}); its random numbers "
                      f"cannot go on on the {torch.device(device).type} (--overwrite trains it again from step 0 here)")


def _train_to_end(run_dir, trainer, spec, progress, started, claim, stop, log, session):
    t = spec.train
    log_file = LogWriter(rundir.train_log_path(run_dir))
    # updated every step, so the rate and the ETA show from the first steps, not the first log step
    bar = tqdm(total=t["steps"], initial=trainer.step, disable=not progress, desc=run_dir.name, unit="step")
    schedule = CheckpointSchedule(t["checkpoint_every"], t["checkpoint_minutes"])

    def on_log(step, means, images_per_second):
        log_file.write({"step": step, "images_per_second": round(images_per_second, 1), **means})
        bar.set_postfix(loss=f"{means['loss']:.2f}", refresh=False)

    def save_checkpoint():
        claim.check()
        checkpoints.save_checkpoint(run_dir, trainer.state_dict())
        rundir.mark_checkpoint(run_dir, trainer.step)
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
        rundir.mark_session_started(run_dir, session)
        trainer.run(t["steps"], t["log_every"], on_log, after_step)
        if trainer.step < t["steps"]:
            bar.close()
            save_checkpoint()
            raise _interrupted(run_dir, trainer.step, stop.signum, session)
        seconds = time.perf_counter() - tick
        save_checkpoint()  # kept until the run is done: a fault while finishing loses no training
        finish_training(run_dir, trainer, seconds, trainer.step - first_step, started, claim, session, log)
    except NonFiniteLoss as err:
        rundir.mark_failed(run_dir, session, err.step, str(err))
        log(f"{run_dir}: {err}; run marked failed")
        return Status.FAILED
    except (Interrupted, rundir.ClaimLost):
        raise  # the first already marked the run; after the second the run is another process's
    except KeyboardInterrupt as err:  # a second Ctrl-C: stop now, the last checkpoint is kept
        name = signal.Signals(interrupt_signal(err)).name
        mark_stopped(run_dir, Status.INTERRUPTED, f"stopped at once by a second {name}", log, session,
                     ending=f"interrupted by {name}")
        _say_where_it_resumes(run_dir, log)
        raise
    except torch.cuda.OutOfMemoryError:  # the GPU's state, not the run's fault: it resumes once there is room
        mark_stopped(run_dir, Status.INTERRUPTED, out_of_memory_reason(trainer.step), log, session)
        raise
    except SystemExit:  # a scheduler's own handler exiting (submitit's requeue on preemption)
        mark_stopped(run_dir, Status.INTERRUPTED, "the process exited mid-run (preempted or requeued)", log, session)
        raise
    except OSError as err:  # a full disk, a lost mount: the run can resume once that is fixed
        err.filename = err.filename or str(run_dir)  # torch.save's own error names no file: say where
        mark_stopped(run_dir, Status.INTERRUPTED, describe_os_error(err), log, session)
        raise
    except BaseException as err:
        mark_stopped(run_dir, Status.FAILED, reason(err), log, session)
        raise
    finally:
        bar.close()
    return Status.DONE


def _interrupted(run_dir, step, signum, session):
    name = signal.Signals(signum).name
    rundir.mark_interrupted(run_dir, session, step, name)
    return Interrupted(f"{run_dir}: interrupted by {name} at step {step}; checkpoint written; "
                       f"`{rundir.resume_command(run_dir)}` resumes from step {step}", signum)


def mark_stopped(run_dir, status, reason, log, session=None, ending=None):
    """Record why the run stopped (and the training session that stopped, ending as `ending` says);
    if even run.json cannot be written (the disk is full), say so: its 'running' status then
    belongs to no process, and its claim lets the next dlb_train in."""
    try:
        rundir.mark_stopped(run_dir, status, reason, session, ending)
    except OSError as err:
        log(f"{run_dir}: could not mark the run {status} ({describe_os_error(err)})")


def _say_where_it_resumes(run_dir, log):
    """For a run stopped at once (a second signal), which the command's last line does not name:
    the step of its last checkpoint, where the same command resumes it."""
    with contextlib.suppress(UserError, OSError):
        step = rundir.read_run(run_dir).get("step")
        if isinstance(step, int) and step > 0:
            log(f"{run_dir}: stopped at once; its last checkpoint is of step {step}, where "
                f"`{rundir.resume_command(run_dir)}` resumes it")
        else:
            log(f"{run_dir}: stopped at once, before its first checkpoint; `{rundir.resume_command(run_dir)}` "
                f"starts it again from step 0")


class CheckpointSchedule:
    """A checkpoint every `every` steps, and also whenever `minutes` of wall-clock time have passed
    since the last one (0: by steps only), so an interruption never loses more than that."""

    def __init__(self, every, minutes):
        self.every, self.seconds = every, 60.0 * minutes
        self.last = time.monotonic()

    def due(self, step):
        return step % self.every == 0 or (self.seconds > 0 and time.monotonic() - self.last >= self.seconds)

    def saved(self):
        self.last = time.monotonic()


class StopOnSignals:
    """While active, SIGINT, SIGTERM and SIGHUP only set `signum` (the trainer then stops after the
    current step); the previous handlers come back at the first signal, so a second Ctrl-C stops
    at once. Only the main thread can handle signals: elsewhere this does nothing."""

    def __init__(self):
        self._signum, self.previous = None, {}

    @property
    def signum(self):
        """The signal that stopped training, or None; a stop asked without a signal
        (dlbench.signals.stop_asked_by) reads as the signal it stands for."""
        if self._signum is None:
            self._signum = stop_asked()
        return self._signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        return self

    def _handle(self, signum, frame):
        self._signum = signum
        self._restore()

    def _restore(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}

    def __exit__(self, *exc):
        self._restore()


def finish_training(run_dir, trainer, train_seconds, steps_done, started, claim, session, log):
    """Write the run's final weights, sample figures and model/results.json (the means of its
    training scalars over its last steps: loop.RESULT_STEPS), and mark it done."""
    claim.check()
    # host tensors: the weights of a run trained on a GPU load where there is none, as the final
    # weights are meant to (torch.load without map_location restores each tensor on its device)
    weights = {name: value.cpu() for name, value in trainer.model.state_dict().items()}
    checkpoints.save_atomic({"model": weights, "model_config": trainer.model.config}, rundir.weights_path(run_dir))
    shown, scale = trainer.shown_images()
    write_samples(trainer.model, shown, scale, rundir.samples_dir(run_dir), log=log)
    images_per_second = steps_done * trainer.spec.train["batch_size"] / max(train_seconds, 1e-9)
    rundir.write_json(rundir.train_results_path(run_dir), {
        **window_means(trainer.result_window), "steps": trainer.step, "train_seconds_this_session": train_seconds,
        "images_per_second": images_per_second, "dlbench_version": dlbench.__version__})
    shutil.rmtree(rundir.checkpoints_dir(run_dir), ignore_errors=True)  # only resume needs them
    rundir.mark_done(run_dir, session, trainer.step, started)


def say_missing_checkpoint(run_dir, record, log=print):
    """A line when the checkpoint of the step run.json last recorded is gone (deleted by hand, a
    disk restored from an older copy): the resume starts from an earlier one, with no other word."""
    step = record.get("step")
    if isinstance(step, int) and step > 0 and not rundir.checkpoint_path(run_dir, step).exists():
        log(f"{run_dir}: the checkpoint of step {step}, run.json's last, is missing; the run resumes from the "
            f"newest one there")


def resume_from_newest_checkpoint(run_dir, trainer, log):
    """Load the newest checkpoint that reads back whole (falling back to the one before when the
    newest is damaged) and say so; a UserError when none does. Read onto the host: load_state_dict
    moves each tensor to the trainer's device, but Adam's step counts, which it leaves where they
    are, then stay on the host as a fresh run's do (on a GPU, Adam would wait for them every step)."""
    for path in rundir.checkpoint_paths(run_dir):
        try:
            trainer.load_state_dict(checkpoints.load(path, fix="trying the checkpoint before it"))
        except CorruptFile as err:
            log(f"{run_dir}: {err}")
            continue
        except torch.cuda.OutOfMemoryError:  # the GPU's state: the checkpoint is fine
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as err:  # a readable file of other contents
            why = err if isinstance(err, checkpoints.OtherModel) else type(err).__name__
            log(f"{run_dir}: '{path}' is not a checkpoint of this run ({why}); trying the one before it")
            continue
        log(f"{run_dir}: resuming from step {trainer.step}")
        return
    raise UserError(f"no readable checkpoint in '{rundir.checkpoints_dir(run_dir)}'; "
                    f"`{rundir.retrain_command(run_dir)}` restarts the run from step 0")


def truncate_log(run_dir, step, logged_every=None):
    """Drop log rows written after the checkpoint a resumed run restarts from. A UserError when the
    log does not read back as rows of steps, or (given the run's `logged_every`, run.json's
    train.log_every) holds no row up to the checkpoint's step though one was written: the resumed
    log would lack the start of the run's curves without a word."""
    path = rundir.train_log_path(run_dir)
    fix = f"restore it from a copy, or train the run again from step 0 with `{rundir.retrain_command(run_dir)}`"
    fields, rows = read_log_rows(path, fix)
    kept = [row for row in rows if int(row["step"]) <= step]
    if not kept and isinstance(logged_every, int) and 0 < logged_every <= step:
        if not path.is_file():
            raise UserError(f"'{path}', the training log of the run up to step {step}, is missing; {fix}")
        raise CorruptFile(path, f"it holds no row up to step {step}, where the run resumes", fix)
    if not path.is_file():
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(kept)
    rundir.atomic_write_text(path, buffer.getvalue() if fields else "")


def read_log_rows(path, fix):
    """The field names and rows of a train_log.csv (none when it is missing or empty); a
    CorruptFile when it is not a table of whole rows with a whole-number step."""
    if not path.is_file():
        return [], []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows, fields = list(reader), reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as err:
        raise CorruptFile(path, f"not a table of text: {err}", fix) from None
    if fields and "step" not in fields:
        raise CorruptFile(path, "it has no step column", fix)
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise CorruptFile(path, f"line {line} has {'more' if None in row else 'fewer'} values than the header", fix)
        if not row["step"].isdigit():
            raise CorruptFile(path, f"line {line} has the step {row['step']!r}, not a whole number", fix)
    return fields, rows


class LogWriter:
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
    path = rundir.weights_path(run_dir)
    fix = f"train the run again with `{rundir.retrain_command(run_dir)}`"
    if not path.is_file():  # run.json says done: the file was removed or moved since
        raise UserError(f"'{path}', the weights of the finished run, is missing; restore it, or {fix}")
    state = checkpoints.load(path, device, fix=fix)
    try:
        checkpoints.require_model(rundir.read_run(run_dir).get("model") or {}, state)
        model = build_vae(state["model_config"]).to(device)
        model.load_state_dict(state["model"])
    except torch.cuda.OutOfMemoryError:  # the GPU's state: the weights are fine
        raise
    except checkpoints.OtherModel as err:
        raise CorruptFile(path, f"the weights of another model: {err}", fix) from None
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CorruptFile(path, f"not the weights of this run: {type(err).__name__}", fix) from None
    return model.eval()


def train_from_gin(gin_files=(), gin_params=(), run_dir=None, device="auto", overwrite=False, progress=True,
                   note_unused=False, in_study=False):
    """Parse the config, check it, and train; returns (run_dir, status). With neither gin files
    nor bindings, an existing run_dir is trained on with its own config (model/config.gin).
    note_unused: say on stderr which of gin_params the run does not use (a study's runs share
    bindings of methods and priors each uses some of; a user's own are meant to count)."""
    from dlbench.config import (bound_configurable, operative_config, parse_gin, resolve_run_spec, unused_bindings,
                                unused_file_bindings, unused_macros, unused_scopes)
    from dlbench.train.device import resolve_device

    own = not gin_files and not gin_params
    if own:
        gin_files = [own_config(run_dir)]
    parse_gin(gin_files, gin_params)
    if not gin_files and run_dir is not None and rundir.is_run(run_dir):
        check_bindings_give_a_config(run_dir)
    spec = resolve_run_spec()
    # a scoped binding's scope is what goes uncalled: unused_scopes' note says so
    unused = [b for b in unused_bindings(gin_params) if "/" not in bound_configurable(b)] if note_unused else []
    if unused:
        print(f"dlb_train: note: this {spec.method.name} run does not use {', '.join(map(repr, unused))} "
              f"(a method or prior it does not call); check the name", file=sys.stderr)
    in_files = unused_file_bindings(gin_params) if note_unused and not own else []
    if in_files:  # a --gin_param's had been said, the same binding in a gin file ignored without a word
        print(f"dlb_train: note: this {spec.method.name} run does not use {', '.join(in_files)} of its gin files (a "
              f"method or prior it does not call); gin ignores {'them' if len(in_files) > 1 else 'it'}",
              file=sys.stderr)
    scopes = unused_scopes() if note_unused else []
    if scopes:
        print(f"dlb_train: note: this run calls no {', '.join(scopes)}: gin ignores the bindings of a scope that "
              f"no binding names (train.method = @scope/method()); bind them without the scope", file=sys.stderr)
    macros = unused_macros() if note_unused else []
    if macros:
        typo = next((name for name in macros if "/" in name), None)  # a scope needs a configurable: no macro has one
        print(f"dlb_train: note: the run uses no macro {', '.join(macros)}: gin ignores its value"
              + (f"; a setting is bound as NAME.PARAM = VALUE ({typo.replace('/', '.')} = ...)" if typo else ""),
              file=sys.stderr)
    device = resolve_device(device)
    run_dir = Path(run_dir) if run_dir else rundir.default_run_dir(spec.identity())
    try:
        return run_dir, train_run(run_dir, spec, device, operative_config(), overwrite, progress, in_study=in_study)
    except rundir.ConfigMismatch as err:
        if not own or isinstance(err, (OtherDevice, OtherData)):
            raise
        # the run's own config.gin no longer says what run.json does: someone edited it
        changed = ", ".join(err.differences)
        raise rundir.ConfigMismatch(f"'{gin_files[0]}' was changed since the run started ({changed}); undo the "
                                    f"change, or add --overwrite to train again from step 0 with it",
                                    err.differences) from None


def check_bindings_give_a_config(run_dir):
    """Refuse --gin_param alone, binding no method, on the run in run_dir: they are taken for a new
    run's whole config, not changes to the run's own (which "no method given" had not said)."""
    import gin

    try:
        gin.query_parameter("train.method")
    except ValueError:
        config = rundir.config_gin_path(run_dir)
        raise UserError(f"--gin_param needs --gin: alone they make a new run's whole config, and '{run_dir}' holds a "
                        f"run whose own config is {config}; give --gin {shell_word(config)} with them (of a run only "
                        f"how often it logs or checkpoints may change; another change needs --overwrite, which trains "
                        f"it again from step 0), or --run_dir alone to resume it as it is") from None


def own_config(run_dir):
    """RUN_DIR/model/config.gin, the operative config a run was started with."""
    if run_dir is None:
        raise UserError("give at least one --gin FILE (e.g. --gin gin/beta_vae.gin), or the --run_dir of an existing "
                        "run")
    path = rundir.config_gin_path(run_dir)
    if not path.is_file():
        if rundir.is_run(run_dir):  # "holds no run" had been said of a finished run whose config.gin was gone
            status = rundir.read_run(run_dir).get("status", "recorded")
            raise UserError(f"'{run_dir}' holds a run ({status}) whose own config ({path}) is missing; restore it from "
                            f"a copy, or give the gin files it trained with (--gin FILE), which its run.json checks")
        if not Path(run_dir).exists():  # said as dlb_evaluate says it, not as a folder without a config
            raise UserError(f"'{run_dir}' does not exist: check the --run_dir of the run to train on, or give --gin "
                            f"FILE to start a new run there")
        raise UserError(f"'{run_dir}' holds no run with a config ({path} is missing); give --gin FILE")
    return str(path)
