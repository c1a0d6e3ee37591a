"""dlb_bench study: how fast the local executor works through a study on this device, one run at a
time against a pool of worker processes, and what that makes of the whole named studies.

The slice is fixed (every `every`-th run of study_v1_cpu: 8 runs, every method), each executor
runs it into a fresh runs root of its own, one after the other, so the ratio compares like with
like on the same machine in the same minutes. Every run of both must end done.
"""

import os
import tempfile
import time
from pathlib import Path

from dlbench.errors import UserError

SLICE_STUDY = "study_v1_cpu"
SLICE_EVERY = 10
PROJECTED = ("study_v1_cpu", "study_v1")
TIMED_STEPS = 5  # steps timed per method at study_v1's protocol, after one untimed step


def study_slice(study, runs=None):
    chosen = study.runs[::SLICE_EVERY]
    return chosen[:runs] if runs else chosen


def time_executor(study, runs, runs_root, device, workers):
    """Seconds for the local executor with `workers` processes to finish `runs` (all must end done)."""
    from dlbench.study.local import run_local
    from dlbench.study.unit import DONE, quiet

    started = time.perf_counter()
    statuses = run_local(study, runs, runs_root, device, workers=workers, progress=False, log=quiet)
    seconds = time.perf_counter() - started
    failed = sorted(name for name, status in statuses.items() if status != DONE)
    if failed:
        raise UserError(f"dlb_bench study: runs did not finish with --workers {workers}: {', '.join(failed)}; "
                        f"see their run.json under {runs_root}")
    return seconds


def training_seconds_per_step(study, device, steps=TIMED_STEPS):
    """{method: seconds per training step} at the study's own protocol (its first run of each
    method), with the dataset of that run."""
    import torch

    import dlbench.data
    from dlbench.bench import sync
    from dlbench.study.stacks import resolved
    from dlbench.train.loop import Trainer

    device = torch.device(device)
    per_step, first_of_method = {}, {}
    for spec in study.runs:
        first_of_method.setdefault(spec.name.split("/", 1)[0], spec)
    for method, spec in first_of_method.items():
        run, _ = resolved(spec)
        trainer = Trainer(run, dlbench.data.dataset_from_record(run.identity()), device)
        trainer.run(1, 10**9, lambda *_: None, lambda _: False)
        sync(device)
        started = time.perf_counter()
        trainer.run(1 + steps, 10**9, lambda *_: None, lambda _: False)
        sync(device)
        per_step[method] = (time.perf_counter() - started) / steps
    return per_step


def bench_study(device, workers=None, runs=None, scratch=None, project=True, log=print):
    """Figures: seconds and runs per hour of the slice for each executor, the pool's speed-up, and
    projected hours of the named studies."""
    import torch

    import dlbench.data
    from dlbench.bench import device_name
    from dlbench.study import load_study

    workers = workers or [1, min(2, os.cpu_count() or 1)]
    study = load_study(SLICE_STUDY)
    chosen = study_slice(study, runs=runs)
    figures = {"device": device_name(torch.device(device)), "cores": os.cpu_count(), "slice": f"{len(chosen)} runs of {SLICE_STUDY} "
               f"(every {SLICE_EVERY}th)", "executors": {}}
    previous = dlbench.data.keep_loaded(False)  # each executor loads its own data, as dlb_study does
    try:
        with tempfile.TemporaryDirectory(dir=scratch, prefix="dlb_bench_study.") as root:
            for count in dict.fromkeys(workers):
                log(f"local executor, --workers {count}: {len(chosen)} runs ...")
                seconds = time_executor(study, chosen, Path(root) / f"workers={count}", device, count)
                figures["executors"][f"workers={count}"] = {"seconds": seconds,
                                                            "runs_per_hour": 3600 * len(chosen) / seconds}
                log(f"  {seconds:.0f} s, {3600 * len(chosen) / seconds:.1f} runs/hour")
    finally:
        dlbench.data.keep_loaded(previous)
    rates = {name: row["runs_per_hour"] for name, row in figures["executors"].items()}
    sequential = rates.get("workers=1")
    if sequential:
        figures["speedup_over_sequential"] = {name: rate / sequential for name, rate in rates.items() if name != "workers=1"}
    best_name, best_rate = max(rates.items(), key=lambda item: item[1])
    figures["fastest"] = best_name
    if project:
        figures["projected_hours"] = _projections(study, best_rate, device, log)
    return figures


def _projections(slice_study, best_rate, device, log):
    """study_v1_cpu from the slice's rate (training and evaluation, at its own scale); study_v1 from
    training steps timed at its protocol (training only: its evaluation is left out)."""
    from dlbench.study import load_study
    from dlbench.study.stacks import resolved

    projected = {SLICE_STUDY: {"runs": len(slice_study.runs), "hours": len(slice_study.runs) / best_rate,
                               "what": "training and evaluation, fastest executor"}}
    full = load_study("study_v1")
    log(f"timing {TIMED_STEPS} training steps of each method at study_v1's protocol ...")
    per_step = training_seconds_per_step(full, device)
    steps = resolved(full.runs[0])[0].train["steps"]
    runs_per_method = {method: sum(spec.name.startswith(method + "/") for spec in full.runs) for method in per_step}
    hours = sum(per_step[m] * steps * runs_per_method[m] for m in per_step) / 3600
    projected["study_v1"] = {"runs": len(full.runs), "hours": hours,
                             "what": "training only, one run at a time (evaluation not included)",
                             "seconds_per_step": per_step}
    return projected


def bench_stacking(device, stacks=(1, 4), steps=None, study_name=SLICE_STUDY, log=print):
    """Training throughput of K runs trained as one stack against the same K runs trained one
    after another, for each K in `stacks`: the beta-VAE runs of a study (study_v1_cpu: its MLP at
    batch 64; dlib_unsupervised_v1: disentanglement_lib's conv at batch 64) with K seeds. Figures
    per K: images per second summed over the runs both ways, the ratio, and on CUDA the peak
    device memory of the stack."""
    import torch

    from dlbench.bench import device_name, sync
    from dlbench.study import load_study
    from dlbench.study.stacks import resolved
    from dlbench.train.loop import Trainer
    from dlbench.train.stack import StackedTrainer
    import dlbench.data

    device = torch.device(device)
    steps = steps or (20 if device.type == "cpu" else 200)
    study = load_study(study_name)
    beta_vae = [spec for spec in study.runs if spec.name.startswith("beta_vae/")]
    figures = {"device": device_name(device), "study": study.name, "steps": steps, "stacks": {}}
    warmed = False
    for k in stacks:
        specs = [resolved(beta_vae[i % len(beta_vae)])[0] for i in range(k)]
        for i, spec in enumerate(specs):  # K distinct runs: seeds 0..K-1
            spec.train["seed"] = i
        data = dlbench.data.dataset_from_record(specs[0].identity())
        batch = specs[0].train["batch_size"]
        if not warmed:  # the process's first steps (allocator, kernels chosen) are not what is measured
            Trainer(specs[0], data, device).run(10, 10**9, lambda *_: None)
            StackedTrainer(specs[:1], data, device).run(10, 10**9, lambda *_: None)
            warmed = True
        trainers = [Trainer(spec, data, device) for spec in specs]
        for trainer in trainers:
            trainer.run(1, 10**9, lambda *_: None)
        sync(device)
        started = time.perf_counter()
        for trainer in trainers:
            trainer.run(1 + steps, 10**9, lambda *_: None)
        sync(device)
        alone = k * steps * batch / (time.perf_counter() - started)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        stack = StackedTrainer(specs, data, device)
        stack.run(1, 10**9, lambda *_: None)
        sync(device)
        started = time.perf_counter()
        stack.run(1 + steps, 10**9, lambda *_: None)
        sync(device)
        stacked = k * steps * batch / (time.perf_counter() - started)
        row = {"alone_images_per_second": alone, "stacked_images_per_second": stacked, "ratio": stacked / alone}
        if device.type == "cuda":
            row["stack_peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        figures["stacks"][f"K={k}"] = row
        log(f"  K={k}: one after another {alone:.0f} img/s, stacked {stacked:.0f} img/s, ratio {stacked / alone:.2f}")
    figures["projected_training_hours"] = _projected_training(study, figures["stacks"], log)
    return figures


def _projected_training(study, rows, log):
    """The study's training time at the fastest measured rate (stacked or not): every run's images
    (steps x batch) over beta-VAE's images per second. Training only; the other methods' steps
    cost more or less than beta-VAE's."""
    from dlbench.study.stacks import resolved

    best = max(max(row["alone_images_per_second"], row["stacked_images_per_second"]) for row in rows.values())
    train = resolved(study.runs[0])[0].train
    images = len(study.runs) * train["steps"] * train["batch_size"]
    hours = images / best / 3600
    log(f"  {study.name}: {len(study.runs)} runs x {train['steps']} steps x batch {train['batch_size']} at "
        f"{best:.0f} img/s: {hours:.1f} h of training")
    return {study.name: hours}
