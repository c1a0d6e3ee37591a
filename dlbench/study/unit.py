"""The unit of work every executor runs: train, postprocess and evaluate one run of a study,
holding the run's claim throughout (dlbench.rundir), so that however many workers, processes or
machines run a study, each run is worked on by one at a time and finished exactly once.

A Unit is plain data (picklable), so the local pool, Ray and Slurm can ship it anywhere.
"""

import contextlib
import dataclasses
import signal
from pathlib import Path

from dlbench import rundir
from dlbench.errors import (CorruptFile, DataUnavailable, Interrupted, OtherDataFound, OutOfDeviceMemory, UserError,
                            reason)

DONE, FAILED = "done", "failed"
HELD = rundir.HELD  # another worker has the run now
STOPPED = "stopped"  # its job ended without a result (killed, preempted): the same command resumes it


@dataclasses.dataclass(frozen=True)
class Unit:
    run_dir: str
    gin_files: tuple
    gin_params: tuple
    metrics: tuple
    metric_params: dict


def quiet(*_):
    """The log of units run in workers: their lines would interleave (the study reports instead)."""


def units_of(study, runs, runs_root):
    # absolute: a worker may start in another folder (Ray, Slurm), on another machine of a shared disk
    runs_root = Path(runs_root).absolute()
    return [Unit(str(rundir.study_run_dir(runs_root, spec.name)), tuple(spec.gin_files), tuple(spec.gin_params),
                 tuple(study.metrics), study.metric_params) for spec in runs]


# what every later run would meet too (an interruption, a claim taken over, a full disk, a full
# GPU, DLBENCH_DATA at other data): it stops the study, where a run's own failure only fails that run
STOPS_THE_STUDY = (Interrupted, KeyboardInterrupt, rundir.ClaimLost, OSError, OutOfDeviceMemory, OtherDataFound,
                   DataUnavailable)


def study_stopped(signum):
    """What a study's process raises once a signal has stopped its workers' runs."""
    return Interrupted(f"stopped by {signal.Signals(signum).name}: every run keeps its last checkpoint; "
                       f"the same command continues the study", signum)


def run_unit(unit, device, retry_failed=False, progress=False, log=print):
    """DONE, FAILED (with the reason in run.json) or HELD. A run that fails does not stop the
    study; what STOPS_THE_STUDY does."""
    import torch

    from dlbench.train.run import train_from_gin

    device = torch.device(device)
    try:
        with rundir.hold_run(unit.run_dir, "trained and evaluated"):  # a holder met evaluating had read as training
            overwrite = retry_failed and recorded_status(unit.run_dir) == rundir.Status.FAILED
            _, status = train_from_gin(unit.gin_files, unit.gin_params, unit.run_dir, device, overwrite, progress,
                                       in_study=True)
            if status == rundir.Status.FAILED:
                return FAILED
            return evaluate_unit(unit, device, log)
    except rundir.RunHeld:
        return HELD
    except STOPS_THE_STUDY:
        raise
    except rundir.ConfigMismatch as err:  # another config's run: not this unit's to mark failed
        log(f"{unit.run_dir}: failed: {err}")
        return FAILED
    except Exception as err:  # noqa: BLE001  (a bug in one run's training must not stop a 1280-run study)
        log(f"{unit.run_dir}: failed: {reason(err)}")
        # a damaged run.json cannot take the mark: it is the run's own failure, not the study's
        with contextlib.suppress(UserError):
            if rundir.is_run(unit.run_dir):
                rundir.mark_stopped(unit.run_dir, rundir.Status.FAILED, reason(err))
        return FAILED


def evaluate_unit(unit, device, log=print):
    """DONE, or FAILED when a metric cannot score the model (recorded in run.json; the study goes
    on) or the run's training results are damaged (damaged_training). The caller holds the run."""
    from dlbench.evaluation import evaluate_run

    damaged = damaged_training(unit.run_dir)
    if damaged:  # dlb_aggregate would leave the run out, whatever its metrics: not worth computing them
        log(f"{unit.run_dir}: failed: {damaged}")
        return FAILED
    try:
        evaluate_run(unit.run_dir, list(unit.metrics), "mean", device, params=unit.metric_params, log=log,
                     say_kept=False)
    except STOPS_THE_STUDY:
        raise
    except Exception as err:  # noqa: BLE001  (a metric's bug: the run stays trained, its evaluation is tried again)
        # raised into run_unit's handler, it had marked the trained run's training failed
        rundir.update_run(unit.run_dir, evaluation_error=reason(err))
        log(f"{unit.run_dir}: evaluation failed: {reason(err)}")
        return FAILED
    # an earlier evaluation's failure, now mended (its file restored, the result recomputed): left
    # in run.json, --status had called the run failed for good
    if "evaluation_error" in rundir.read_run(unit.run_dir):
        rundir.update_run(unit.run_dir, evaluation_error=None)
    return DONE


def recorded_status(run_dir):
    """run.json's status (None where there is none yet). A run.json that cannot be read, or that
    records no run's config, is FAILED: the run's other files cannot be trusted without it, so
    --status counts it failed, and --retry_failed had left it so for good; so is a done run whose
    model/results.json or final weights are damaged or missing (damaged_training)."""
    try:
        record = rundir.read_run(run_dir) if rundir.is_run(run_dir) else None
    except CorruptFile:
        return rundir.Status.FAILED
    if record is None:
        return None
    if not rundir.records_config(record) or (record.get("status") == rundir.Status.DONE and damaged_training(run_dir)):
        return rundir.Status.FAILED
    return record.get("status")


def damaged_training(run_dir):
    """What is wrong with a trained run's model/results.json or final weights (a line naming it and
    the fix), or None. Damaged or missing, dlb_aggregate leaves the whole run out and nothing can
    evaluate it, so a study counts the run failed (and --retry_failed trains it again) rather than
    done."""
    missing = rundir.missing_training_file(run_dir)
    if missing:
        return missing
    try:
        rundir.read_train_results(run_dir)
    except CorruptFile as err:
        return str(err)
    return None
