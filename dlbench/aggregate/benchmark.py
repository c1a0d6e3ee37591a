"""dlb_bench aggregate: how long dlb_aggregate takes on a study of 1280 runs.

The runs are fabricated in a temporary folder (run.json, model/results.json and three metric
results per finished run, as dlb_train and dlb_evaluate write them: 2 datasets x 4 methods x 8
values of the regulariser x 20 seeds), about one in twenty failed and one in thirty unfinished,
so every file dlb_aggregate writes has work to do. Timed: the aggregation in this process (reading
the runs alone, and everything), and the command in a fresh Python as a user runs it (imports
included).
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlbench import rundir
from dlbench.errors import UserError
from dlbench.metrics import VERSION_KEY, metric_version

RUNS = 1280
DATASETS = ("dsprites", "shapes3d")
METHODS = {"beta_vae": "beta", "beta_tcvae": "beta", "factor_vae": "gamma", "isa_vae": "beta"}
VALUES = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
SEEDS = 20
FAILED_EVERY, UNFINISHED_EVERY = 20, 30
METRICS = ("mig", "factor_vae", "recon_ll")


def synthetic_specs(runs=RUNS):
    """(dataset, method, hyperparameter name, value, seed) of the first `runs` synthetic runs."""
    specs = [(dataset, method, name, value, seed) for dataset in DATASETS for method, name in METHODS.items()
             for value in VALUES for seed in range(SEEDS)]
    return specs[:runs]


def write_synthetic_root(root, runs=RUNS, seed=0):
    """Write `runs` fake run directories under root; returns {status: count}."""
    from dlbench.metrics import protocol_params

    rng = np.random.default_rng(seed)
    protocols = {metric: {k: v for k, v in protocol_params(metric).items() if v is not None} for metric in METRICS}
    counts = {}
    for index, (dataset, method, name, value, run_seed) in enumerate(synthetic_specs(runs)):
        status = _status(index)
        counts[status] = counts.get(status, 0) + 1
        run_dir = Path(root) / dataset / method / f"{name}={value}" / f"seed={run_seed}"
        _write(rundir.run_json_path(run_dir), _record(dataset, method, name, value, run_seed, status))
        if status == "done":
            _write_results(run_dir, rng, value, protocols)
    return counts


def _status(index):
    if index % FAILED_EVERY == FAILED_EVERY - 1:
        return "failed"
    return "running" if index % UNFINISHED_EVERY == UNFINISHED_EVERY - 1 else "done"


def _record(dataset, method, name, value, seed, status):
    return {"method": method, "dataset": dataset, "seed": seed, "status": status, "step": 1000,
            "error": "loss diverged (nan)" if status == "failed" else None,
            "hyperparameters": {name: value},
            "model": {"architecture": "conv", "latent_dim": 10, "likelihood": "bernoulli",
                      "prior": {"name": "isotropic_gaussian"}},
            "train": {"batch_size": 64, "lr": 1e-4, "steps": 1000, "seed": seed, "checkpoint_every": 500,
                      "adam_betas": [0.9, 0.999]},
            "dlbench_version": "0.1.0", "device": "cpu"}


def _write_results(run_dir, rng, value, protocols):
    reconstruction = 30.0 + 4.0 * value + rng.normal(0, 2)
    _write(rundir.train_results_path(run_dir), {"loss": reconstruction + 10.0, "reconstruction": reconstruction,
                                                "kl": 10.0, "steps": 1000, "dlbench_version": "0.1.0"})
    values = {"mig": {"discrete_mig": float(np.clip(0.03 * value + rng.normal(0, 0.05), 0, 1))},
              "factor_vae": {"train_accuracy": float(rng.uniform(0.5, 1)), "eval_accuracy": float(rng.uniform(0.5, 1)),
                             "num_active_dims": int(rng.integers(3, 11))},
              "recon_ll": {"recon_ll": -reconstruction, "recon_ll_stderr": 0.3}}
    for metric in METRICS:
        _write(rundir.metric_results_path(run_dir, "mean", metric),
               {"metric": metric, VERSION_KEY: metric_version(metric), "mode": "mean", "seed": 0,
                **protocols[metric], **values[metric], "elapsed_seconds": 1.0, "dlbench_version": "0.1.0"})


def _write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def bench_aggregate(runs=RUNS, scratch=None):
    """{figure: value}: the synthetic root's make-up and the seconds each way of aggregating it took."""
    from dlbench.aggregate import aggregate_runs, collect

    with tempfile.TemporaryDirectory(dir=scratch, prefix="dlb_bench_aggregate-") as folder:
        root, out = Path(folder) / "runs", Path(folder) / "report"
        started = time.perf_counter()
        counts = write_synthetic_root(root, runs)
        written = time.perf_counter() - started
        started = time.perf_counter()
        collect(root)
        reading = time.perf_counter() - started
        started = time.perf_counter()
        aggregation = aggregate_runs(root, out)
        in_process = time.perf_counter() - started
        command = [sys.executable, "-c", "import sys; from dlbench.cli.aggregate import main; sys.exit(main())",
                   str(root), "--out", str(out)]
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        command_seconds = time.perf_counter() - started
        if finished.returncode != 0:
            raise UserError(f"dlb_bench aggregate: dlb_aggregate failed on the synthetic root: {finished.stderr.strip()}")
    return {"runs": runs, "statuses": counts, "settings": len(aggregation.board),
            "seconds_to_write_the_runs": written, "seconds_to_read_the_runs": reading,
            "seconds_to_aggregate": in_process, "seconds_of_the_command": command_seconds}


def main(args):
    """dlb_bench aggregate [--runs N] [--scratch DIR] [--json]: print the figures."""
    runs = RUNS if args.runs is None else args.runs
    if runs < 1:
        raise UserError(f"dlb_bench aggregate: --runs must be at least 1, got {runs}")
    figures = bench_aggregate(runs, args.scratch)
    print(json.dumps(figures) if args.json else "\n".join(format_figures(figures)))


def format_figures(figures):
    """The lines dlb_bench aggregate prints for the figures of bench_aggregate."""
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(figures["statuses"].items()))
    return [f"synthetic runs root: {figures['runs']} runs ({statuses}), {figures['settings']} settings, "
            f"written in {figures['seconds_to_write_the_runs']:.1f} s",
            f"reading the runs:            {figures['seconds_to_read_the_runs']:6.2f} s",
            f"aggregating (every file):    {figures['seconds_to_aggregate']:6.2f} s",
            f"dlb_aggregate in a fresh Python (imports included): {figures['seconds_of_the_command']:6.2f} s"]
