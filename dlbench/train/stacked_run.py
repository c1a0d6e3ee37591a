"""A stack of runs (dlbench.train.stack) trained into their run directories. Each directory ends as
the run trained alone would leave it: its config, training log, checkpoints, weights, samples,
results and run.json (which records `stacked`: the number of runs it was trained with), each run
under its own claim. A run that is finished is skipped, one another process holds is left to it,
and the others are prepared as a run alone is (fresh, restarted or resumed from its checkpoint);
runs resuming from different steps are trained as separate stacks, one after the other."""

import contextlib
import signal
import time
from pathlib import Path

import torch
from tqdm import tqdm

from dlbench import rundir
from dlbench.errors import CorruptFile, Interrupted, UserError, interrupt_signal, reason
from dlbench.rundir import HELD, Prepare, Status
from dlbench.train import checkpoints
from dlbench.train.device import out_of_memory_reason, out_of_memory_said
from dlbench.train.run import (CheckpointSchedule, LogWriter, StopOnSignals, cpu_threads, data_of, finish_training,
                               left_alone, mark_stopped, start_training, truncate_log)
from dlbench.train.stack import StackedTrainer


def train_stack(run_dirs, specs, device, config_texts, progress=True, log=print, retry=None):
    """{run_dir: Status.DONE, Status.FAILED, SKIPPED or HELD} for runs that stack_problem accepts
    together. A signal (SIGINT, SIGTERM, SIGHUP) ends the current step, writes every live run's
    checkpoint, marks them interrupted and raises Interrupted. retry(run_dir), asked once the run
    is held here: whether to train it again from step 0 (--retry_failed of a failed run)."""
    run_dirs = [Path(d) for d in run_dirs]
    statuses = {}
    with StopOnSignals() as stop, contextlib.ExitStack() as holds, \
            out_of_memory_said(f"a stack of {len(run_dirs)} runs"):
        claims = {}
        for run_dir in run_dirs:
            try:
                claims[run_dir] = holds.enter_context(rundir.hold_run(run_dir, "trained"))
            except rundir.RunHeld:
                statuses[run_dir] = HELD
        members = []
        for run_dir, spec, text in zip(run_dirs, specs, config_texts):
            if run_dir in claims:
                overwrite = retry is not None and retry(run_dir)
                try:
                    action = rundir.prepare(run_dir, spec.identity(), overwrite=overwrite)
                except UserError as err:  # the folder's own problem (not a run, a damaged run.json): that run's alone
                    log(f"{run_dir}: failed: {err}")
                    statuses[run_dir] = Status.FAILED
                    continue
                if action is Prepare.SKIP:
                    statuses[run_dir] = left_alone(run_dir, log, in_study=True)  # stacks are a study's
                else:
                    members.append((run_dir, spec, text, action, overwrite))
        if not members:
            return statuses
        # a resumed run's recorded data is checked before any is generated (data_of)
        first_dir, first_spec, _, first_action, _ = next((m for m in members if m[3] is Prepare.RESUME), members[0])
        data = data_of(first_dir, first_spec, first_action, progress)
        trainers = [start_training(run_dir, spec, data, device, action, text, overwrite, claims[run_dir], log,
                                   in_study=True, stacked=len(members))
                    for run_dir, spec, text, action, overwrite in members]
        _resume_at_one_step([member[0] for member in members], trainers, log)
        for step in sorted({trainer.step for trainer in trainers}):
            group = [(member[0], member[1], trainer) for member, trainer in zip(members, trainers) if trainer.step == step]
            statuses.update(_train_group(group, claims, stop, progress, log))
    return statuses


def _resume_at_one_step(run_dirs, trainers, log):
    """A stack stopped while it wrote one round of checkpoints (a SIGKILL, a power cut) resumes with
    its runs at different steps. Runs trained in another stack compute in another order (batched
    kernels), so the runs ahead go back to the step of the runs behind, from their checkpoint of
    that step (each keeps two), and the stack trains on as the stack it was. Where a run ahead lacks
    a readable checkpoint of that step, or the runs were not one stack before (a rerun with another
    --stack joined stacks that had stopped at different steps: none is there to be again, and going
    back would throw steps away), the runs train in groups by step instead."""
    behind = min(trainer.step for trainer in trainers)
    ahead = [(run_dir, trainer) for run_dir, trainer in zip(run_dirs, trainers) if trainer.step > behind]
    if not ahead or behind == 0:
        return
    if not _last_trained_as_this_stack(run_dirs):
        log(f"the runs of the stack resume at different steps ({behind} to {max(t.step for t in trainers)}), "
            "as they were not one stack before: they train in groups by step")
        return
    try:
        states = [checkpoints.load(rundir.checkpoint_path(run_dir, behind)) for run_dir, _ in ahead]
        for (_, trainer), state in zip(ahead, states):
            checkpoints.require_model(trainer.spec.model, state)
    except (OSError, CorruptFile, checkpoints.OtherModel):
        log("the runs of the stack resume at different steps and not every run ahead has a checkpoint of the "
            f"step {behind}: they train in groups by step")
        return
    for (run_dir, trainer), state in zip(ahead, states):
        trainer.load_state_dict(state)
        truncate_log(run_dir, behind)
        # the checkpoints past it hold the trajectory left: a later resume would take the newest
        kept = rundir.checkpoint_path(run_dir, behind)
        for newer in rundir.checkpoint_paths(run_dir):
            if newer.name > kept.name:
                newer.unlink()
        rundir.mark_checkpoint(run_dir, behind)
        log(f"{run_dir}: back to step {behind}, where the other runs of its stack resume")


def _last_trained_as_this_stack(run_dirs):
    """Whether the runs' last sessions were one session of a stack of just these runs: one process's,
    from one step, in a stack of as many runs."""
    last = []
    for run_dir in run_dirs:
        sessions = rundir.read_run(run_dir).get("sessions") or [None]
        last.append(sessions[-1] if isinstance(sessions[-1], dict) else {})
    ids = {(s.get("host"), s.get("pid"), s.get("from_step"), s.get("stacked")) for s in last}
    return len(ids) == 1 and last[0].get("stacked") == len(run_dirs)


def _train_group(group, claims, stop, progress, log):
    """Train runs at the same step together to their end."""
    run_dirs = [run_dir for run_dir, _, _ in group]
    spec, trainers = group[0][1], [trainer for _, _, trainer in group]
    stack = StackedTrainer([s for _, s, _ in group], trainers=trainers)
    t = spec.train
    threads = cpu_threads(trainers[0].device)
    sessions = [rundir.new_session(from_step=stack.step, stacked=len(group), cpu_threads=threads) for _ in group]
    for run_dir, session in zip(run_dirs, sessions):  # runs that resume at different steps train in groups
        rundir.mark_session_started(run_dir, session, stacked=len(group))
    log_files = [LogWriter(rundir.train_log_path(run_dir)) for run_dir in run_dirs]
    ended = {}  # run_dir -> status, for runs that failed on the way
    schedule = CheckpointSchedule(t["checkpoint_every"], t["checkpoint_minutes"])
    bar = tqdm(total=t["steps"], initial=stack.step, disable=not progress, unit="step",
               desc=f"{len(group)} runs stacked")

    def mark_failures():
        for k, failed_step in enumerate(stack.failed_steps()):
            if failed_step is not None and run_dirs[k] not in ended:
                error = f"the loss became non-finite at step {failed_step}"
                rundir.mark_failed(run_dirs[k], sessions[k], failed_step, error)
                log(f"{run_dirs[k]}: {error}; run marked failed (the other runs of its stack train on)")
                ended[run_dirs[k]] = Status.FAILED

    def live():
        return [k for k, run_dir in enumerate(run_dirs) if run_dir not in ended]

    def on_log(step, means, images_per_second):
        for k, run_means in enumerate(means):
            if run_means is not None:
                log_files[k].write({"step": step, "images_per_second": round(images_per_second, 1), **run_means})
        mark_failures()

    def save_checkpoints():
        for k in live():
            claims[run_dirs[k]].check()
            checkpoints.save_checkpoint(run_dirs[k], stack.run_state(k))
            rundir.mark_checkpoint(run_dirs[k], stack.step)
        schedule.saved()

    def after_step(step):
        bar.update(1)
        if any(claims[run_dir].lost for run_dir in run_dirs):
            for run_dir in run_dirs:
                claims[run_dir].check()
        if stop.signum is not None:
            return True
        if step < t["steps"] and schedule.due(step):
            mark_failures()
            save_checkpoints()
        return False

    first_step, tick = stack.step, time.perf_counter()
    try:
        stack.run(t["steps"], t["log_every"], on_log, after_step)
        mark_failures()
        if stack.step < t["steps"]:
            bar.close()
            save_checkpoints()
            raise _interrupted(run_dirs, live(), sessions, stack.step, stop.signum)
        seconds = time.perf_counter() - tick
        save_checkpoints()  # kept until each run is done: a fault while finishing one loses no run's training
        for k in live():
            stack.run_state(k)  # the run's weights and step into its own trainer
            finish_training(run_dirs[k], trainers[k], seconds, stack.step - first_step, trainers[k].started,
                            claims[run_dirs[k]], sessions[k], log)
            ended[run_dirs[k]] = Status.DONE
    except (Interrupted, rundir.ClaimLost):
        raise
    except BaseException as err:  # an error, a second Ctrl-C, a full disk, a full GPU: every unfinished run says why
        stopped = isinstance(err, (KeyboardInterrupt, SystemExit, OSError, torch.cuda.OutOfMemoryError))
        status = Status.INTERRUPTED if stopped else Status.FAILED
        why = out_of_memory_reason(stack.step) if isinstance(err, torch.cuda.OutOfMemoryError) else reason(err)
        ending = None
        if isinstance(err, KeyboardInterrupt):  # a second signal: the session names it (it had said "interrupted")
            ending = f"interrupted by {signal.Signals(interrupt_signal(err)).name}"
        for k in live():
            mark_stopped(run_dirs[k], status, why, log, sessions[k], ending=ending)
        raise
    finally:
        bar.close()
    return ended


def _interrupted(run_dirs, live, sessions, step, signum):
    name = signal.Signals(signum).name
    for k in live:
        rundir.mark_interrupted(run_dirs[k], sessions[k], step, name)
    return Interrupted(f"{len(live)} stacked runs interrupted by {name} at step {step}; checkpoints written; "
                       f"running the same command again resumes them", signum)
