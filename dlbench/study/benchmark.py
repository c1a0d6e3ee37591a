"""dlb_bench study: how fast the local executor works through a study on this device, one run at a
time against a pool of worker processes, and what that makes of the whole named studies.

The slice is fixed (every `every`-th run of study_v1_cpu: 8 runs, every method), each executor
runs it into a fresh runs root of its own, one after the other, so the ratio compares like with
like on the same machine in the same minutes. Every run of both must end done.
"""

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

from dlbench.errors import Interrupted, UserError

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
    except (Interrupted, KeyboardInterrupt) as stop:
        # the runs' own lines would point to checkpoints in the scratch folder, removed by now
        signum = getattr(stop, "signum", signal.SIGINT)
        raise Interrupted(f"the benchmark was stopped by {signal.Signals(signum).name}; its runs, in a scratch "
                          f"folder, are removed, and the same command starts it over", signum) from None
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
    import torch

    from dlbench.study import load_study

    projected = {SLICE_STUDY: {"runs": len(slice_study.runs), "hours": len(slice_study.runs) / best_rate,
                               "what": "training and evaluation, fastest executor"}}
    full = load_study("study_v1")
    log(f"timing {TIMED_STEPS} training steps of each method at study_v1's protocol ...")
    first = _first_run_of_each_method(full)
    with one_load_of_the_data():
        rates = {method: _images_per_second(spec, 1, torch.device(device), TIMED_STEPS,
                                            stacked=False)["images_per_second"]
                 for method, spec in first.items()}
    projected["study_v1"] = {"runs": len(full.runs),
                             "hours": projected_hours(_runs_per_method(full), {m: first[m].train for m in first}, rates),
                             "what": "training only, one run at a time (evaluation not included)",
                             "seconds_per_step": {m: first[m].train["batch_size"] / rates[m] for m in first}}
    return projected


STACKED_STUDIES_ON_GPU = ("study_v1", "dlib_unsupervised_v1")
WARM_UP_STEPS = 10


def bench_stacking(device, stacks=(1, 4), steps=None, study_names=None, log=print, other_precisions=None):
    """Training throughput of K runs trained as one stack, for each K in `stacks`, against one run
    at a time, on each named study's own protocol (default: study_v1_cpu on a CPU; study_v1 and
    dlib_unsupervised_v1 on a GPU), and each study's projected training time at the fastest K.
    Figures per study and K (stack_figures), and per study the projection (projected_hours), also
    with each method at its K in each of other_precisions (default: bfloat16 on a GPU, where its
    matrix products are several times faster than float32's; none on a CPU), and how far each
    projection is from the study's compute floor in that precision."""
    import torch

    from dlbench import flops
    from dlbench.bench import device_name
    from dlbench.study import load_study

    device = torch.device(device)
    steps = steps or (20 if device.type == "cpu" else 200)
    names = study_names or ([SLICE_STUDY] if device.type == "cpu" else list(STACKED_STUDIES_ON_GPU))
    studies = [load_study(name) for name in names]  # a bad name or file is refused before anything is timed
    peaks = {name: flops.matmul_peak_tflops(device, getattr(torch, name)) for name in PEAK_DTYPES}
    log(f"measured matrix-product peak: {', '.join(f'{name} {peak:.1f} TFLOP/s' for name, peak in peaks.items())}")
    figures = {"device": device_name(device), "steps": steps, "matmul_peak_tflops": peaks, "studies": {}}
    if other_precisions is None:
        other_precisions = ("bfloat16",) if device.type == "cuda" else ()
    with one_load_of_the_data():
        for study in studies:
            figures["studies"][study.name] = _study_figures(study, device, stacks, steps, peaks, other_precisions, log)
    return figures


@contextlib.contextmanager
def one_load_of_the_data():
    """Within the block a benchmark's measurements share one dataset object, and with it the one
    device copy of its images (dlbench.train.loop.device_images): each measurement had loaded the
    dataset anew and copied all of it (3 GB of dSprites) to the device again."""
    import dlbench.data

    previous = dlbench.data.keep_loaded()
    try:
        yield
    finally:
        dlbench.data.keep_loaded(previous)


def _study_figures(study, device, stacks, steps, peaks, other_precisions, log):
    """bench_stacking's figures of one study."""
    log(f"{study.name}: {len(study.runs)} runs; stacks of {', '.join(map(str, stacks))} ...")
    first = _first_run_of_each_method(study)
    study_figures = _study_stacking(study, first, device, stacks, steps, log)
    # the precision of the study's runs (one for all: their protocol)
    own = next(iter(first.values())).train.get("precision", "float32")
    study_figures["projected_training_hours_by_precision"] = {
        own: study_figures["projected_training_hours"],
        **{precision: _projected_in_precision(study, first, study_figures, precision, device, steps, log)
           for precision in other_precisions if precision != own}}
    study_figures.update(_compute_floor(study, first, study_figures, device, peaks, log))
    return study_figures


def _projected_in_precision(study, first, figures, precision, device, steps, log):
    """The study's projected training hours with every run in train.precision `precision`, each
    method (first: its first run) measured at the K it was timed at."""
    import dataclasses

    rates = {}
    for method, spec in first.items():
        k = figures["method_stack_sizes"][method]
        spec = dataclasses.replace(spec, train={**spec.train, "precision": precision})
        measured = _measured_or_out_of_memory(spec, k, device, steps, stacked=k > 1)
        if measured is None:
            log(f"  {method} in {precision} at K={k}: out of memory; its rate in the study's precision is used")
        rates[method] = measured["images_per_second"] if measured else figures["method_images_per_second"][method]
    hours = projected_hours(_runs_per_method(study), {m: first[m].train for m in first}, rates)
    log(f"  {study.name}: {hours:.1f} h of training in {precision}")
    return hours


PEAK_DTYPES = ("float32", "bfloat16")  # training's default precision, and train.precision = 'bfloat16'


def _compute_floor(study, first, figures, device, peaks, log):
    """How far the projected training is from the study's compute floor: each method's FLOPs per
    step of one run (dlbench.flops), the TFLOP/s its measured rate achieves, the study's training
    PFLOP, the floor in hours at each measured peak, and the projected hours over each floor."""
    import dlbench.data
    from dlbench import flops

    runs = _runs_per_method(study)
    per_step = {method: flops.step_flops(spec, dlbench.data.dataset_from_record(spec.identity()), device)
                for method, spec in first.items()}
    total = sum(runs[method] * first[method].train["steps"] * per_step[method] for method in runs)
    rates = figures["method_images_per_second"]
    floors = {name: flops.floor_hours(total, peak) for name, peak in peaks.items()}
    projected = figures["projected_training_hours_by_precision"]
    log(f"  {study.name}: {total / 1e15:.1f} PFLOP of matrix products; floor "
        + ", ".join(f"{floor:.2f} h at the {name} peak" for name, floor in floors.items()) + "; projected "
        + ", ".join(f"{hours:.2f} h in {name}" for name, hours in projected.items()))
    return {"step_gflop": {method: value / 1e9 for method, value in per_step.items()},
            "method_tflops": {method: per_step[method] * rates[method] / first[method].train["batch_size"] / 1e12
                              for method in per_step},
            "training_pflop": total / 1e15, "compute_floor_hours": floors,
            # each projection against the floor of its own precision
            "projected_over_floor": {name: hours / floors[name] for name, hours in projected.items() if name in floors}}


def _study_stacking(study, first, device, stacks, steps, log):
    """One study's figures: for each K the images per second summed over the stack's runs, against
    one run trained alone (the rate of K runs one after another), the ratio, runs per hour both
    ways and the peak device memory (CUDA); then each method's stacked rate at the best K and the
    projected hours of the whole study's training. first: each method's first run."""
    measured_method = "beta_vae" if "beta_vae" in first else next(iter(first))  # the stacks' K are measured on it
    reference = first[measured_method]
    for stacked in (False, True):  # untimed: the process's first steps (allocator, kernels chosen) are not measured
        _images_per_second(reference, 1, device, WARM_UP_STEPS, stacked)
    alone = _images_per_second(reference, 1, device, steps, stacked=False)["images_per_second"]
    images_per_run = reference.train["steps"] * reference.train["batch_size"]
    rows = {}
    for k in stacks:
        measured = _measured_or_out_of_memory(reference, k, device, steps, stacked=True)
        if measured is None:
            rows[f"K={k}"] = {"out_of_memory": True}
            log(f"  K={k}: out of memory")
            continue
        rows[f"K={k}"] = stack_figures(alone, measured["images_per_second"], images_per_run,
                                       measured.get("peak_memory_gib"))
        log(f"  K={k}: {measured['images_per_second']:.0f} img/s stacked against {alone:.0f} alone "
            f"(ratio {rows[f'K={k}']['ratio']:.2f})")
    # a study's work items of one run are trained alone (not as a stack of one): K = 1 is alone's rate
    effective = {1: alone} | {k: rows[f"K={k}"]["stacked_images_per_second"] for k in stacks
                              if k > 1 and "out_of_memory" not in rows[f"K={k}"]}
    best = max(effective, key=effective.get)
    rates, method_stacks = {}, {}
    for method, spec in first.items():
        if spec is reference:
            rates[method], method_stacks[method] = effective[best], best
            continue
        # another method's stacks may take more memory (beta-TCVAE's (B, B, D) terms): the largest K that fits
        for k in sorted((k for k in effective if k <= best), reverse=True):
            measured = _measured_or_out_of_memory(spec, k, device, steps, stacked=k > 1)
            if measured is not None:
                rates[method], method_stacks[method] = measured["images_per_second"], k
                break
        else:
            raise RuntimeError(f"{method}: not even one run alone fits the GPU's memory")
    hours = projected_hours(_runs_per_method(study), {m: first[m].train for m in first}, rates)
    log(f"  {study.name}: {hours:.1f} h of training at K={best} (each method at its own measured rate)")
    return {"protocol": {key: reference.train[key] for key in ("steps", "batch_size")}
            | {"architecture": reference.model["architecture"], "method": measured_method},
            "stacks": rows, "best_k": best, "method_images_per_second": rates, "method_stack_sizes": method_stacks,
            "projected_training_hours": hours}


def _measured_or_out_of_memory(spec, k, device, steps, stacked):
    """_images_per_second(spec, k, device, steps, stacked), or None where the runs do not fit the
    GPU's memory (the memory is released and the benchmark goes on)."""
    import torch

    try:
        return _images_per_second(spec, k, device, steps, stacked)
    except torch.cuda.OutOfMemoryError:
        pass
    # out of the except block: its traceback held the measurement's trainer, whose memory the
    # cache could not release while it lived
    torch.cuda.empty_cache()
    return None


def stack_figures(alone, stacked, images_per_run, peak_memory_gib=None):
    """The figures of one K: images per second summed over the runs, stacked and alone, their
    ratio, and the training runs per hour each rate makes at the study's protocol."""
    row = {"alone_images_per_second": alone, "stacked_images_per_second": stacked, "ratio": stacked / alone,
           "alone_runs_per_hour": 3600 * alone / images_per_run,
           "stacked_runs_per_hour": 3600 * stacked / images_per_run}
    if peak_memory_gib is not None:
        row["peak_memory_gib"] = peak_memory_gib
    return row


def projected_hours(runs_per_method, train_settings, rates):
    """Hours to train every run: per method, its runs x steps x batch size over its images per second."""
    seconds = sum(runs * train_settings[method]["steps"] * train_settings[method]["batch_size"] / rates[method]
                  for method, runs in runs_per_method.items())
    return seconds / 3600


def _first_run_of_each_method(study):
    from dlbench.study.stacks import resolved

    first = {}
    for spec in study.runs:
        method = spec.name.split("/", 1)[0]
        if method not in first:
            first[method] = resolved(spec)[0]
    return first


def _runs_per_method(study):
    counts = {}
    for spec in study.runs:
        method = spec.name.split("/", 1)[0]
        counts[method] = counts.get(method, 0) + 1
    return counts


def _images_per_second(spec, k, device, steps, stacked):
    """{'images_per_second': summed over k runs like spec (seeds 0..k-1), trained as one stack or,
    for k = 1 and not stacked, alone; on CUDA also 'peak_memory_gib'}. One untimed step first (the
    kernels' first launch and the allocator's growth are not what is measured)."""
    import dataclasses

    import torch

    import dlbench.data
    from dlbench.bench import sync
    from dlbench.train.loop import Trainer
    from dlbench.train.stack import StackedTrainer

    specs = [dataclasses.replace(spec, train={**spec.train, "seed": i}) for i in range(k)]
    data = dlbench.data.dataset_from_record(spec.identity())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = StackedTrainer(specs, data, device) if stacked else Trainer(specs[0], data, device)
    trainer.run(1, 10**9, lambda *_: None)
    sync(device)
    started = time.perf_counter()
    trainer.run(1 + steps, 10**9, lambda *_: None)
    sync(device)
    figures = {"images_per_second": k * steps * spec.train["batch_size"] / (time.perf_counter() - started)}
    if device.type == "cuda":
        figures["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return figures
