"""Stacks of a study's runs: runs that can be trained as one model (dlbench.train.stack) grouped
into work items of at most K, trained together, then evaluated one by one, each run under its own
claim throughout, so that the exactly-once guarantees of single runs (dlbench.study.unit) hold.
Runs that cannot be stacked (an architecture with batch statistics) stay work items of one, and
their log says so."""

import json
from pathlib import Path

from dlbench import rundir
from dlbench.errors import Interrupted, UserError
from dlbench.study.unit import DONE, FAILED, HELD, recorded_status, evaluate_unit, run_unit


def stack_size(requested, device):
    """K from --stack: a number, or 'auto': 1 on a CPU, where `dlb_bench study` measured stacking
    no faster than one run at a time (the 2-core machine's compute is already busy with one)."""
    if requested in (None, "auto"):
        return 1 if not str(device).startswith("cuda") else AUTO_ON_CUDA
    try:
        k = int(requested)
    except (TypeError, ValueError):
        k = 0
    if k < 1:
        raise UserError(f"bad --stack {requested!r}; give the number of runs trained together (1 or more), or auto")
    return k


AUTO_ON_CUDA = 16  # provisional: the largest K that fits is still to be measured on a GPU


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


def work_items(units, k, log=print):
    """The units grouped into lists of at most k that can be trained as one stack, in the order of
    their first run; a run that cannot be stacked is an item of its own."""
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
        groups.setdefault(json.dumps(shared_identity(spec), sort_keys=True, default=str), []).append(unit)
    items = [group[i:i + k] for group in groups.values() for i in range(0, len(group), k)]
    return items + [[unit] for unit in alone]


def run_item(item, device, retry_failed=False, progress=False, log=print):
    """{run_dir: DONE, FAILED or HELD} of a work item: one run (run_unit), or a stack trained
    together and then evaluated run by run."""
    if len(item) == 1:
        return {item[0].run_dir: run_unit(item[0], device, retry_failed, progress, log)}
    import torch

    from dlbench.train.stacked_run import train_stack

    device = torch.device(device)
    if retry_failed:
        _clear_failed(item)
    specs, configs = zip(*[resolved(unit) for unit in item])
    try:
        trained = train_stack([unit.run_dir for unit in item], specs, device, configs, progress, log)
    except (Interrupted, KeyboardInterrupt, rundir.ClaimLost, OSError):
        raise
    except Exception as err:  # noqa: BLE001  (a bug in one stack must not stop the study)
        log(f"a stack of {len(item)} runs failed: {type(err).__name__}: {err}")
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
        except (Interrupted, KeyboardInterrupt, rundir.ClaimLost, OSError):
            raise
        except Exception as err:  # noqa: BLE001  (as in run_unit: one run's bug must not stop the study)
            log(f"{unit.run_dir}: evaluation failed: {type(err).__name__}: {err}")
            rundir.update_run(unit.run_dir, evaluation_error=f"{type(err).__name__}: {err}")
            statuses[unit.run_dir] = FAILED
    return statuses


def _clear_failed(item):
    """--retry_failed: the failed runs of a stack start again from step 0."""
    for unit in item:
        if recorded_status(unit.run_dir) == rundir.Status.FAILED:
            try:
                with rundir.hold_run(unit.run_dir, "cleared for a retry"):
                    rundir.clear(unit.run_dir)
            except rundir.RunHeld:
                pass  # another process has it: train_stack leaves it to that process
