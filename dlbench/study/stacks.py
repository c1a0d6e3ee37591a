"""Stacks of a study's runs: runs that can be trained as one model (dlbench.train.stack) grouped
into work items of at most K, trained together, then evaluated one by one, each run under its own
claim throughout, so that the exactly-once guarantees of single runs (dlbench.study.unit) hold.
Runs that cannot be stacked (an architecture with batch statistics) stay work items of one, and
their log says so."""

import dataclasses
import json
from pathlib import Path

from dlbench import rundir
from dlbench.errors import UserError, reason
from dlbench.study.unit import FAILED, HELD, STOPS_THE_STUDY, evaluate_unit, recorded_status, run_unit


AUTO = "auto"
MAX_AUTO_STACK = 64  # the most runs --stack auto puts together (beyond it a GPU gains little: see README)
MEMORY_HEADROOM = 0.8  # the share of the GPU's free memory a stack may fill (the rest: fragmentation, evaluation)


def stack_size(requested, device):
    """K from --stack: a number; or 'auto': 1 on a CPU, where `dlb_bench study --stack` measured
    stacking no faster than one run at a time (one run already keeps its cores busy), and on CUDA
    AUTO, which work_items resolves per group of runs to the most that fit the GPU's memory."""
    if requested in (None, AUTO):
        return AUTO if str(device).startswith("cuda") else 1
    try:
        k = int(requested)
    except (TypeError, ValueError):
        k = 0
    if k < 1:
        raise UserError(f"bad --stack {requested!r}; give the number of runs trained together (1 or more), or auto")
    return k


def largest_fitting(peak_one, peak_two, available, limit=MAX_AUTO_STACK):
    """The most runs of a stack that fit `available` bytes, from the peak bytes one step of a stack
    of one and of two took: each run adds peak_two - peak_one (its weights, Adam state and
    activations), the rest is shared (the step's fixed work). At least 1, at most limit."""
    per_run = max(peak_two - peak_one, 1)
    shared = max(peak_one - per_run, 0)
    return int(max(1, min(limit, (available - shared) // per_run)))


def fitting_stack_size(spec, device, log=print):
    """--stack auto on CUDA for runs like spec: one step of a stack of one and of two measured, and
    the most that fit MEMORY_HEADROOM of the GPU's free memory (largest_fitting)."""
    import torch

    import dlbench.data

    device = torch.device(device)  # Ray and Slurm pass --device as given ("cuda")
    peak_one, peak_two = stack_step_peaks(spec, dlbench.data.dataset_from_record(spec.identity()), device)
    free, _ = torch.cuda.mem_get_info(device)
    k = largest_fitting(peak_one, peak_two, MEMORY_HEADROOM * free)
    log(f"--stack auto: {k} runs per stack ({peak_two - peak_one:,} bytes per run, {free:,} bytes free)")
    return k


def stack_step_peaks(spec, data, device):
    """The peak bytes one step of a stack of one and of two runs like spec took on the GPU, above
    what was held before. The dataset's device copy is made first: every stack shares it, so it is
    no run's, and made within the first measurement it made the bytes of a run come out negative."""
    import torch

    from dlbench.train.loop import device_images
    from dlbench.train.stack import StackedTrainer

    device_images(data, device)
    peaks = []
    for k in (1, 2):
        specs = [dataclasses.replace(spec, train={**spec.train, "seed": spec.train["seed"] + i}) for i in range(k)]
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        stack = StackedTrainer(specs, data, device)
        stack.train_step(spec.train["batch_size"])
        torch.cuda.synchronize(device)
        peaks.append(torch.cuda.max_memory_allocated(device) - before)
        del stack
        torch.cuda.empty_cache()
    return tuple(peaks)


def resolved(run):
    """(RunSpec, operative config text) of a run given by its gin files and bindings (a Unit, or a
    study's RunSpec)."""
    import gin

    from dlbench.config import operative_config, parse_gin, resolve_run_spec

    try:
        parse_gin(list(run.gin_files), list(run.gin_params))
        return resolve_run_spec(), operative_config()
    finally:
        gin.clear_config()


def work_items(units, k, log=print, device=None):
    """The units grouped into lists of at most k (for k AUTO: as many as fit the memory of device,
    measured per group) that can be trained as one stack, in the order of their first run; a run
    that cannot be stacked is an item of its own."""
    if k == 1:
        return [[unit] for unit in units]
    from dlbench.train.stack import shared_identity, stack_problem

    groups, alone = {}, []
    for unit in units:
        spec, _ = resolved(unit)
        problem = stack_problem([spec])
        if problem:
            alone.append(unit)
            log(f"{unit.run_dir}: trained alone ({problem})")
            continue
        groups.setdefault(json.dumps(shared_identity(spec), sort_keys=True, default=str), []).append((spec, unit))
    items = []
    for group in groups.values():
        size = fitting_stack_size(group[0][0], device, log) if k == AUTO and len(group) > 1 else k
        units_of_group = [unit for _, unit in group]
        items += [units_of_group[i:i + size] for i in range(0, len(units_of_group), size)]
    return items + [[unit] for unit in alone]


def run_item(item, device, retry_failed=False, progress=False, log=print):
    """{run_dir: DONE, FAILED or HELD} of a work item: one run (run_unit), or a stack trained
    together and then evaluated run by run."""
    if len(item) == 1:
        return {item[0].run_dir: run_unit(item[0], device, retry_failed, progress, log)}
    import torch

    from dlbench.train.stacked_run import train_stack

    device = torch.device(device)
    specs, configs = zip(*[resolved(unit) for unit in item])
    # --retry_failed: a failed run of the stack starts again from step 0 (asked once it is held)
    retry = (lambda run_dir: recorded_status(run_dir) == rundir.Status.FAILED) if retry_failed else None
    try:
        trained = train_stack([unit.run_dir for unit in item], specs, device, configs, progress, log, retry)
    except STOPS_THE_STUDY:
        raise
    except Exception as err:  # noqa: BLE001  (a bug in one stack must not stop the study)
        log(f"a stack of {len(item)} runs failed: {reason(err)}")
        return {unit.run_dir: FAILED for unit in item}
    statuses = {}
    for unit in item:
        status = trained[Path(unit.run_dir)]
        if status in (HELD, rundir.Status.FAILED):
            statuses[unit.run_dir] = HELD if status == HELD else FAILED
            continue
        try:
            with rundir.hold_run(unit.run_dir, "evaluated"):
                statuses[unit.run_dir] = evaluate_unit(unit, device, log)
        except rundir.RunHeld:
            statuses[unit.run_dir] = HELD
    return statuses
