"""The Slurm executor: a study's units as a submitit job array, one job per run. Each job is
checkpointable: a preempted or timed-out job is requeued by submitit and its run resumes from the
run's last checkpoint (every train.checkpoint_minutes at most), its claim protecting it from a
second job. On a machine without Slurm the same jobs run through submitit's local executor (that
is how the tests run them). Install with `pip install -e '.[slurm]'`."""

import contextlib
import os
import re
import signal
import time
from pathlib import Path

from dlbench import rundir
from dlbench.errors import Interrupted, UserError
from dlbench.signals import STOPS, handling, noting
from dlbench.study.stacks import run_item, work_items
from dlbench.study.unit import FAILED, STOPPED, recorded_status, study_stopped, units_of


def _submitit():
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs submitit; install it with pip install -e '.[slurm]' "
                        "(or pip install submitit)") from None
    return submitit


def on_slurm():
    """Whether submitit finds Slurm here (sbatch), where its jobs run on the cluster's nodes."""
    return _submitit().AutoExecutor.which() == "slurm"


class ItemJob:
    """One work item (a run, or a stack of runs) as a submitit job (a Checkpointable: requeued as
    itself when preempted)."""

    def __init__(self, item, device, retry_failed, threads):
        self.item, self.device, self.retry_failed, self.threads = item, device, retry_failed, threads

    def __call__(self):
        import torch

        from dlbench.train import resolve_device

        if self.threads:
            torch.set_num_threads(self.threads)
        with _checkpointing_before_requeue():
            return run_item(self.item, resolve_device(self.device), self.retry_failed, progress=False)

    def checkpoint(self, *args, **kwargs):
        # the run keeps its own checkpoints; the job is resubmitted as it is and resumes from them
        return _submitit().helpers.DelayedSubmission(self, *args, **kwargs)


@contextlib.contextmanager
def _checkpointing_before_requeue():
    """Slurm warns a job (submitit has it send SIGUSR2) before its time limit or a preemption ends
    it, and submitit's handler then requeues the job and exits at once: mid-step, losing the
    training since the run's last periodic checkpoint, each time (a job shorter than
    train.checkpoint_minutes never got further). Within the block the warning stops the training
    at the end of its step, checkpointed and marked interrupted by SIGUSR2, and only then is
    submitit's handler called; an evaluation stops before its next metric, keeping those done."""
    warning = _submitit().JobEnvironment._usr_sig()  # the signal submitit asked Slurm for
    requeue = signal.getsignal(warning)
    if not callable(requeue):  # not in a submitit job: nothing would requeue it
        yield
        return
    with noting([warning]) as warned:
        try:
            yield
        except Interrupted:
            if warned:
                requeue(warning, None)  # requeues the job and exits
            raise


# a job that reaches its time limit is requeued this many times at most, each time resuming its
# run from the checkpoint written at Slurm's warning (submitit's own limit, 3, ended long runs)
REQUEUES = 20
# without Slurm, no limit worth the name: submitit's local executor cut every job at 2 minutes
LOCAL_JOB_MINUTES = 7 * 24 * 60


def make_executor(folder, options, log=print):
    """A submitit AutoExecutor (Slurm where sbatch is found, else local, said so) with options
    {'partition': ..., 'time': minutes, 'array_parallelism': n, other slurm parameters}. The time
    limit is each job's, on Slurm and locally; Slurm needs one (submitit would ask for 5 minutes)."""
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=str(folder), slurm_max_num_timeout=REQUEUES,
                                     local_max_num_timeout=REQUEUES)
    options = dict(options)
    minutes = options.pop("time", None)
    if executor.cluster != "slurm":
        # a value Slurm would refuse (cpus_per_task=abc) passes here: said, so a study tried out
        # locally is not taken for one checked for its cluster
        log("no Slurm on this machine (sbatch not found): running the jobs with submitit's local executor"
            + (f", which applies none of the Slurm options given ({', '.join(sorted(options))})" if options else ""))
        minutes = LOCAL_JOB_MINUTES if minutes is None else minutes
    elif minutes is None:
        raise UserError(f"give --slurm_time MINUTES, each job's time limit on Slurm (submitit would ask for 5 "
                        f"minutes); a job that reaches it is requeued, up to {REQUEUES} times, its run resuming "
                        f"from a checkpoint written at Slurm's warning")
    parameters = {"timeout_min": minutes, **{f"slurm_{key}": value for key, value in options.items()}}
    try:
        executor.update_parameters(**parameters)
    except (NameError, ValueError, TypeError, AssertionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"submitit refused the Slurm options {sorted(options)}: {first}") from None
    return executor


def check_options(options, jobs):
    """Refuse options submitit rejects, and more `jobs` than cores without Slurm, now, before the
    runs root is written (a throwaway folder): the study's record and an empty slurm_logs/ had
    been left behind, after a line saying the jobs would run locally."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        check_local_jobs(make_executor(folder, options, log=lambda *_: None), jobs)


def check_local_jobs(executor, jobs):
    cores = os.cpu_count() or 1
    if executor.cluster == "local" and jobs > cores:
        raise UserError(f"without Slurm, submitit's local executor starts every job at once (--array_parallelism "
                        f"is Slurm's): {jobs} jobs on {cores} cores; give --executor local, which runs them --workers "
                        f"at a time, or --stack K, which makes a job of K runs that train as one model")


def submit(executor, items, device, retry_failed, threads=None):
    """The submitted jobs, one per work item, as one array."""
    with executor.batch():
        jobs = [executor.submit(ItemJob(item, str(device), retry_failed, threads)) for item in items]
    return jobs


def run_slurm(study, runs, runs_root, device, options, retry_failed=False, log=print, stack=1):
    """Returns {run name: DONE, FAILED or HELD}; waits for every job. With stack K > 1, runs that
    can be trained as one model are, K at a time, each stack one job (dlbench.study.stacks)."""
    units = units_of(study, runs, runs_root)
    names = {unit.run_dir: spec.name for spec, unit in zip(runs, units)}
    items = work_items(units, stack, log, device)  # device as --device gave it: "auto", "cpu" or "cuda"
    executor = make_executor(Path(runs_root) / "slurm_logs", options, log)
    threads = 1 if executor.cluster == "local" else None  # local jobs all run at once on this machine's cores
    # local jobs start ignoring Ctrl-C (a disposition their processes inherit): submitit's controller
    # would die of it with a traceback on this terminal, its task given a second to checkpoint;
    # stopped_waiting stops them instead, and a job's training still stops on Ctrl-C at its step
    local = executor.cluster == "local"
    check_local_jobs(executor, len(items))
    # a stop while the jobs are submitted waits for the submission: raised inside it, it had left
    # the jobs submitted so far unknown to this process, training on with nobody to stop them
    with handling([signal.SIGINT], signal.SIG_IGN) if local else contextlib.nullcontext(), \
            noting(STOPS if local else (signal.SIGINT, *STOPS)) as stops:
        jobs = submit(executor, items, str(device), retry_failed, threads)  # each job resolves it on its node
    if stops:
        raise stopped_waiting(executor.cluster, jobs, stops[0])
    log(f"submitted {len(jobs)} job{'s' if len(jobs) != 1 else ''} for {len(units)} runs ({executor.cluster}); "
        f"logs in {Path(runs_root) / 'slurm_logs'}")
    statuses = {}
    try:
        for item, job in zip(items, jobs):
            try:
                statuses.update(job.result())
            except Exception as err:  # noqa: BLE001  (a job that died: its runs are recorded, the study goes on)
                statuses.update(ended_early(job, item, err, names, log))
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM or SIGHUP (a StopSignal)
        raise stopped_waiting(executor.cluster, jobs, getattr(stop, "signum", signal.SIGINT)) from None
    return {names[run_dir]: status for run_dir, status in statuses.items()}


def stopped_waiting(cluster, jobs, signum):
    """The Interrupted that ends a study stopped while it waits on its jobs. Slurm's jobs go on:
    they are the cluster's, and a study's process only waits on them (a closed terminal must not
    end them). Local jobs (no Slurm) are this machine's processes: they stop as a local pool's runs
    do, at the step, checkpointed (SIGTERM to each job's controller, which passes it on), and this
    waits for them."""
    running = [job for job in jobs if not job.done()]
    if cluster != "local":
        arrays = " ".join(sorted({str(job.job_id).split("_")[0] for job in running}))
        return Interrupted(f"stopped waiting by {signal.Signals(signum).name}: {len(running)} jobs go on on Slurm "
                           f"(scancel {arrays} stops them); dlb_study --status shows how far their runs are", signum)
    _stop_local_jobs(running)
    return study_stopped(signum)


RESEND_SECONDS = 5


def _stop_local_jobs(jobs):
    """SIGTERM to each local job's controller (a local job's id is its pid), which passes it on to
    its task, again every RESEND_SECONDS until the job has ended. One sent while the controller
    starts has no task to be passed to yet, and one reaching the task before training listens is
    only logged (submitit's handler): such a job had trained on for good, the study waiting on it.
    A repeat is harmless: training stops at its step on the first, and gives the rest back to
    submitit's handler, which logs them."""
    while jobs:
        for job in jobs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(job.job_id), signal.SIGTERM)
        resend_at = time.monotonic() + RESEND_SECONDS
        while time.monotonic() < resend_at and not all(job.done() for job in jobs):
            time.sleep(0.1)
        jobs = [job for job in jobs if not job.done()]


def ended_early(job, item, err, names, log):
    """{run_dir: status} of the runs of a job that gave no result: FAILED where run.json says the
    run failed, else STOPPED (killed, preempted or out of memory: the run keeps its checkpoint and
    the same command resumes it); a line each saying why, with the job's log."""
    log_file = getattr(getattr(job, "paths", None), "stderr", None)
    where = f" (its log: {log_file})" if log_file else ""
    statuses = {}
    for unit in item:
        if recorded_status(unit.run_dir) == rundir.Status.FAILED:
            statuses[unit.run_dir] = FAILED
            log(f"{names[unit.run_dir]}: job {job.job_id} failed: {_exception_line(err)}{where}")
        else:
            statuses[unit.run_dir] = STOPPED
            log(f"{names[unit.run_dir]}: job {job.job_id} ended without a result ({_exception_line(err)}); the run "
                f"keeps its last checkpoint and the same command resumes it{where}")
    return statuses


def _exception_line(err):
    """The last line of a job's error that names a Python exception, or what submitit said first
    (its message ends with lines of the job's log, which do not say why)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt|Interrupted|Exit)\b", line)]
    return raised[-1] if raised else (lines[0] if lines else type(err).__name__)
