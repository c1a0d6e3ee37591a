"""The local executor: a study's units (dlbench.study.unit) in this process one after another,
or in a pool of worker processes. Each worker's torch thread count is set so that workers x
threads never exceeds the cores: oversubscribed OpenMP threads on a busy CPU slow every process
several-fold. Finished work is skipped and a run another worker holds is left to it, so running
a study again, or twice at once, continues where it stopped and trains no run twice."""

import concurrent.futures
import multiprocessing
import os

from dlbench.errors import UserError
from dlbench.study.unit import DONE, FAILED, HELD, quiet, run_unit, units_of


def threads_per_worker(workers):
    return max(1, (os.cpu_count() or 1) // workers)


def _start_worker(threads):
    import torch

    import dlbench.data

    torch.set_num_threads(threads)
    dlbench.data.keep_loaded()  # the worker's runs share one load of the dataset


def _run_in_worker(unit, device, retry_failed):
    return run_unit(unit, device, retry_failed, progress=False, log=quiet)


def run_local(study, runs, runs_root, device, workers=1, retry_failed=False, progress=True, log=print):
    """Returns {run name: DONE, FAILED or HELD}."""
    units = units_of(study, runs, runs_root)
    names = [spec.name for spec in runs]
    statuses = {}
    if workers == 1:
        import dlbench.data

        previous = dlbench.data.keep_loaded()  # the study's runs share one load of the dataset
        try:
            for number, (name, unit) in enumerate(zip(names, units), 1):
                log(f"[{number}/{len(units)}] {unit.run_dir}")
                statuses[name] = run_unit(unit, device, retry_failed, progress=progress, log=log)
        finally:
            dlbench.data.keep_loaded(previous)
        return statuses
    from tqdm import tqdm

    pending = dict(zip(names, units))
    with tqdm(total=len(units), desc=study.name, unit="run", disable=not progress) as bar:
        for restart in range(len(units) + 1):
            if restart:
                log(f"a worker process died (killed, or out of memory); a new pool takes the {len(pending)} "
                    "runs left, each resuming from its last checkpoint")
            if _run_pool(pending, device, workers, retry_failed, statuses, bar):
                return statuses
    raise UserError("worker processes kept dying; see the runs left with dlb_study --status")


def _run_pool(pending, device, workers, retry_failed, statuses, bar):
    """Run the pending units (removing each as it ends) in one pool; False when a worker died (the
    runs it held are claimed by a dead process, which the next pool's claims break at once)."""
    context = multiprocessing.get_context("spawn")  # fresh processes: no forked torch or CUDA state
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                                initargs=(threads_per_worker(workers),)) as pool:
        futures = {pool.submit(_run_in_worker, unit, str(device), retry_failed): name
                   for name, unit in pending.items()}
        try:
            for future in concurrent.futures.as_completed(futures):
                statuses[futures[future]] = future.result()
                del pending[futures[future]]
                bar.update(1)
                bar.set_postfix({s: sum(v == s for v in statuses.values()) for s in (DONE, FAILED, HELD)})
        except concurrent.futures.process.BrokenProcessPool:
            return False
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # the workers checkpoint on the signal they got too
            raise
    return True
