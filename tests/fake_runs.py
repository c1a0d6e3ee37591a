"""Run directories fabricated by hand for the aggregation tests (run.json, model/results.json and
metric results in the format dlb_train and dlb_evaluate write), and dlb_aggregate driven in this
process (as its installed script does, without the seconds a fresh Python spends importing)."""

import contextlib
import csv
import io
import json
import os
import subprocess

from dlbench.cli import aggregate as aggregate_cli
from dlbench.metrics import VERSION_KEY, metric_version


def record(seed, method="beta_vae", dataset="dsprites", status="done", hyperparameters=None, **fields):
    """A run.json as dlb_train writes it (the keys aggregation reads, plus some bookkeeping)."""
    return {
        "method": method, "dataset": dataset, "seed": seed, "status": status, "step": 20,
        "hyperparameters": {"beta": 4.0} if hyperparameters is None else hyperparameters,
        "model": {"architecture": "conv", "latent_dim": 4, "likelihood": "bernoulli",
                  "prior": {"name": "isotropic_gaussian", "scale": 1.0}},
        "train": {"adam_betas": [0.9, 0.999], "batch_size": 16, "checkpoint_every": 10, "lr": 0.001,
                  "seed": seed, "steps": 20},
        "dlbench_version": "0.1.0", "device": "cpu", **fields,
    }


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def write_metric(run_dir, folder, values, mode="mean", **params):
    """metrics/<mode>/<folder>/results.json holding values and the protocol parameters params, of
    the metric's current version, as dlb_evaluate writes it."""
    metric = folder.partition("[")[0]
    write_json(run_dir / "metrics" / mode / folder / "results.json",
               {"metric": metric, VERSION_KEY: metric_version(metric), "mode": mode, **params, **values})


def make_run(run_dir, seed, mig=None, recon_ll=None, reconstruction=None, status="done", **settings):
    """A run of seed `seed`: run.json, and when given its MIG (mig.discrete_mig), recon_ll and the
    training reconstruction (model/results.json, written for finished runs only)."""
    write_json(run_dir / "run.json", record(seed, status=status, **settings))
    if status == "done":
        train = {"loss": 90.0 + seed, "steps": 20, "dlbench_version": "0.1.0"}
        if reconstruction is not None:
            train["reconstruction"] = reconstruction
        write_json(run_dir / "model" / "results.json", train)
    if mig is not None:
        write_metric(run_dir, "mig", {"discrete_mig": mig}, num_train=10000, num_bins=20)
    if recon_ll is not None:
        write_metric(run_dir, "recon_ll", {"recon_ll": recon_ll, "recon_ll_stderr": 0.5})
    return run_dir


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_aggregate(*args, cwd):
    """dlb_aggregate ARGS run in this process from folder cwd: a CompletedProcess with its exit
    status and what it printed (an unexpected exception is raised, traceback and all)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = aggregate_cli.main([str(arg) for arg in args])
    finally:
        os.chdir(before)
    return subprocess.CompletedProcess(["dlb_aggregate", *map(str, args)], code, stdout.getvalue(), stderr.getvalue())
