"""The Slurm executor: a study's units as a submitit job array, one job per run. Each job is
checkpointable: a preempted or timed-out job is requeued by submitit and its run resumes from the
run's last checkpoint (every train.checkpoint_minutes at most), its claim protecting it from a
second job. On a machine without Slurm the same jobs run through submitit's local executor (that
is how the tests run them). Install with `pip install -e '.[slurm]'`."""

from pathlib import Path

from dlbench.errors import UserError
from dlbench.study.unit import FAILED, run_unit, units_of


def _submitit():
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm needs submitit; install it with pip install -e '.[slurm]' "
                        "(or pip install submitit)") from None
    return submitit


class UnitJob:
    """One run as a submitit job (a Checkpointable: requeued as itself when preempted)."""

    def __init__(self, unit, device, retry_failed, threads):
        self.unit, self.device, self.retry_failed, self.threads = unit, device, retry_failed, threads

    def __call__(self):
        import torch

        from dlbench.train import resolve_device

        if self.threads:
            torch.set_num_threads(self.threads)
        return run_unit(self.unit, resolve_device(self.device), self.retry_failed, progress=False)

    def checkpoint(self, *args, **kwargs):
        # the run keeps its own checkpoints; the job is resubmitted as it is and resumes from them
        return _submitit().helpers.DelayedSubmission(self, *args, **kwargs)


def make_executor(folder, options, log=print):
    """A submitit AutoExecutor (Slurm where sbatch is found, else local, said so) with options
    {'partition': ..., 'time': minutes, 'array_parallelism': n, other slurm parameters}."""
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=str(folder))
    if executor.cluster != "slurm":
        log("no Slurm on this machine (sbatch not found): running the jobs with submitit's local executor")
    parameters = {f"slurm_{key}": value for key, value in options.items()}
    try:
        executor.update_parameters(**parameters)
    except (NameError, ValueError, TypeError, AssertionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"submitit refused the Slurm options {sorted(options)}: {first}") from None
    return executor


def check_options(options):
    """Refuse options submitit rejects now, before the runs root is written (a throwaway folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        make_executor(folder, options, log=lambda *_: None)


def submit(executor, units, device, retry_failed, threads=None):
    """The submitted jobs, one per unit, as one array."""
    with executor.batch():
        jobs = [executor.submit(UnitJob(unit, str(device), retry_failed, threads)) for unit in units]
    return jobs


def run_slurm(study, runs, runs_root, device, options, retry_failed=False, log=print):
    """Returns {run name: DONE, FAILED or HELD}; waits for every job."""
    units = units_of(study, runs, runs_root)
    executor = make_executor(Path(runs_root) / "slurm_logs", options, log)
    threads = 1 if executor.cluster == "local" else None  # local jobs all run at once on this machine's cores
    jobs = submit(executor, units, "auto" if str(device) == "auto" else device, retry_failed, threads)
    log(f"submitted {len(jobs)} jobs ({executor.cluster}); logs in {Path(runs_root) / 'slurm_logs'}")
    statuses = {}
    for spec, job in zip(runs, jobs):
        try:
            statuses[spec.name] = job.result()
        except Exception as err:  # noqa: BLE001  (a job that died: its run is recorded, the study goes on)
            log(f"{spec.name}: job {job.job_id} failed: {str(err).strip().splitlines()[-1] if str(err).strip() else err}")
            statuses[spec.name] = FAILED
    return statuses
