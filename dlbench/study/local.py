"""The local executor: each run trained, postprocessed and evaluated in turn, in this process.
Finished stages are skipped, so running a study again continues where it stopped."""

from pathlib import Path

from dlbench.evaluation import evaluate_run
from dlbench.train.run import train_from_gin


def run_local(study, runs, runs_root, device, progress=True, log=print):
    """Returns {run name: final status}."""
    statuses = {}
    for number, spec in enumerate(runs, 1):
        run_dir = Path(runs_root) / spec.name
        log(f"[{number}/{len(runs)}] {run_dir}")
        _, status = train_from_gin(spec.gin_files, spec.gin_params, run_dir, device, progress=progress)
        if status in ("done", "skipped"):
            evaluate_run(run_dir, study.metrics, "mean", device, params=study.metric_params, log=log)
        statuses[spec.name] = status
    return statuses
