"""The local executor: a study's units (dlbench.study.unit) in this process one after another,
or in a pool of worker processes. Each worker's torch thread count is set so that workers x
threads never exceeds the cores: oversubscribed OpenMP threads on a busy CPU slow every process
several-fold. On CUDA each worker has a GPU of its own. Finished work is skipped and a run another
worker holds is left to it, so running a study again, or twice at once, continues where it
stopped and trains no run twice."""

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time

from tqdm import tqdm

from dlbench.errors import Interrupted, UserError
from dlbench.signals import STOPS, blocking, handling, noting
from dlbench.study.stacks import run_item, work_items
from dlbench.study.unit import DONE, FAILED, HELD, quiet, study_stopped, units_of


def default_workers(device):
    """One worker per GPU on CUDA; on a CPU one single-threaded worker per core, which `dlb_bench
    study` measured faster than one run at a time on all cores (1.7x on 2 cores: much of a run,
    its evaluation above all, does not spread over threads)."""
    if str(device).startswith("cuda"):
        import torch

        return max(1, torch.cuda.device_count())
    return max(1, os.cpu_count() or 1)


def check_workers(workers, device, option="--workers"):
    """A UserError for more CPU workers than cores: each would train with one thread on a share of a
    core, every run slower than with fewer workers (and a typo's 10**20 had started the study)."""
    cores = os.cpu_count() or 1
    if workers > cores and not str(device).startswith("cuda"):
        raise UserError(f"{option} {workers} is more workers than this machine's {cores} cores: they would only "
                        f"share them, each run slower; give at most {cores}")


def threads_per_worker(workers):
    """The threads this process may use (OMP_NUM_THREADS, else one per core), shared out: at least
    one a worker."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def worker_gpus(workers, gpu_count, visible=None):
    """The GPU (a CUDA_VISIBLE_DEVICES entry) of each of `workers` workers, round robin over the
    GPUs this process may use: those CUDA_VISIBLE_DEVICES lists (`visible`), else all."""
    gpus = [g.strip() for g in visible.split(",") if g.strip()] if visible is not None else \
        [str(i) for i in range(gpu_count)]
    if not gpus:
        raise UserError("no GPU is visible to this process (CUDA_VISIBLE_DEVICES is empty); give --device cpu")
    return [gpus[worker % len(gpus)] for worker in range(workers)]


# what a scheduler sends (SIGTERM), a closed terminal (SIGHUP) or Ctrl-C (SIGINT, to the study's
# process alone by `kill -INT`): the study's process passes it on to its workers, and they ignore it
# but while a run trains (which stops at its next checkpoint), so a signal that reaches them twice
# (sent to the whole process group, and passed on) stops a run once
FORWARDED = (signal.SIGINT, *STOPS)


# in a worker: the pool's event, set once the study is stopping (by the study's process on a signal,
# or by a worker whose run a signal stopped): a worker then starts no run of the items queued to it
_stopping = None


def _start_worker(threads, gpu_queue, stopping, study_pid):
    global _stopping
    _stopping = stopping
    _end_with_the_study(study_pid)
    for signum in FORWARDED:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # a stop that came while starting is dropped
    if gpu_queue is not None:  # before torch starts CUDA: the worker then sees its own GPU as cuda:0
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_queue.get()
    import torch

    import dlbench.data

    torch.set_num_threads(threads)
    dlbench.data.keep_loaded()  # the worker's runs share one load of the dataset
    # tqdm's default lock is a multiprocessing one, registered with the pool's resource tracker: a
    # worker killed (SIGKILL, out of memory) never unregisters it, and the study ended in Python's
    # "leaked semaphore objects" warning; a worker's bars are its own (and hidden), a thread lock does
    tqdm.set_lock(threading.RLock())


PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _end_with_the_study(study_pid):
    """End this worker when the study's process ends. Workers ignore the stop signals (the study's
    process passes them on), so a study killed outright (SIGKILL, out of memory) had left them
    behind: training on, then waiting for work for good (on a queue they hold open themselves).
    A worker ended so is as one killed: its run's claim, its holder gone, is taken over at once, and
    the run resumes from its last checkpoint."""
    if not _ask_for_a_kill_when_the_parent_ends():
        threading.Thread(target=_exit_when_orphaned, args=(study_pid,), daemon=True, name="study watch").start()
    if os.getppid() != study_pid:  # the study ended before the request: no signal will come
        os._exit(1)


def _ask_for_a_kill_when_the_parent_ends():
    """Linux's prctl(PR_SET_PDEATHSIG, SIGKILL): the kernel kills this process when its parent ends
    (strictly, the parent's thread that started it: the pool starts its workers in submit(), which
    the study calls from its main thread). False where it is not to be had."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _exit_when_orphaned(study_pid, every_seconds=1.0):
    """Elsewhere: an orphan is adopted by another process, so its parent's pid changes."""
    while os.getppid() == study_pid:
        time.sleep(every_seconds)
    os._exit(1)


def _run_in_worker(item, device, retry_failed):
    """The item's statuses, or None when the study is stopping (the item is not started: a run a
    worker took after the stop had been trained to its end)."""
    if _stopping.is_set():
        return None
    try:
        # outside training (which has handlers of its own), a signal is noted: the run's evaluation
        # stops before its next metric (raised there, a second one would cut the unwinding)
        with noting(FORWARDED):
            return run_item(item, device, retry_failed, progress=False, log=quiet)
    except (Interrupted, KeyboardInterrupt):
        _stopping.set()
        raise


class StudyBar:
    """One bar over a study's runs: finished, running, failed and left, with tqdm's rate and ETA.
    Runs held by another process count as ended here (they are that process's)."""

    def __init__(self, name, total, enabled):
        self.bar = tqdm(total=total, desc=name, unit="run", disable=not enabled, dynamic_ncols=True)
        self.counts = {DONE: 0, FAILED: 0, HELD: 0}

    def show(self, running):
        left = self.bar.total - self.bar.n - running
        shown = {"done": self.counts[DONE], "running": running, "failed": self.counts[FAILED], "left": left}
        if self.counts[HELD]:
            shown["held elsewhere"] = self.counts[HELD]
        self.bar.set_postfix(shown, refresh=True)

    def ended(self, status, running):
        self.counts[status] += 1
        self.bar.update(1)
        self.show(running)

    def write(self, *parts):
        if not self.bar.disable:
            self.bar.write(" ".join(str(p) for p in parts))

    def close(self):
        self.bar.close()


def run_local(study, runs, runs_root, device, workers=1, retry_failed=False, progress=True, log=print, stack=1):
    """Returns {run name: DONE, FAILED or HELD}. With stack K > 1, runs that can be trained as one
    model are, K at a time (dlbench.study.stacks)."""
    units = units_of(study, runs, runs_root)
    names = {unit.run_dir: spec.name for spec, unit in zip(runs, units)}
    bar = StudyBar(study.name, len(units), progress)
    log = bar.write if progress else log
    try:
        items = work_items(units, stack, log, device)
        # a run's CPU threads decide the order of its float sums, so its weights: each run gets the
        # threads of the --workers asked for, whether the study, a slice or a rerun of it is run
        threads = threads_per_worker(workers)
        workers = max(1, min(workers, len(items)))  # no idle processes (and one item is run here)
        if workers == 1:
            return _run_sequentially(items, names, device, retry_failed, bar, progress, log, threads)
        return _run_in_pools(items, names, device, workers, retry_failed, bar, log, threads)
    finally:
        bar.close()


def _run_sequentially(items, names, device, retry_failed, bar, progress, log, threads):
    import torch

    import dlbench.data

    statuses, done = {}, 0
    previous = dlbench.data.keep_loaded()  # the study's runs share one load of the dataset
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for item in items:
            if not progress:
                for unit in item:
                    done += 1
                    log(f"[{done}/{len(names)}] {unit.run_dir}")
            bar.show(running=len(item))
            # the run's own step bar shows below the study's
            for run_dir, status in run_item(item, device, retry_failed, progress=progress, log=log).items():
                statuses[names[run_dir]] = status
                bar.ended(status, running=0)
    except Interrupted as err:  # its line gave dlb_train's way on, for one run: the study goes on as a study
        raise study_stopped(err.signum) from None
    finally:
        dlbench.data.keep_loaded(previous)
        torch.set_num_threads(previous_threads)
    return statuses


def _run_in_pools(items, names, device, workers, retry_failed, bar, log, threads):
    statuses, pending = {}, {tuple(unit.run_dir for unit in item): item for item in items}
    for restart in range(len(items) + 1):
        if restart:
            log(f"a worker process died (killed, or out of memory); a new pool takes the "
                f"{sum(map(len, pending.values()))} runs left, each resuming from its last checkpoint")
        if _run_pool(pending, names, device, workers, retry_failed, statuses, bar, threads):
            return statuses
    raise UserError("worker processes kept dying; see the runs left with dlb_study --status")


def _run_pool(pending, names, device, workers, retry_failed, statuses, bar, threads):
    """Run the pending items (removing each as it ends) in one pool; False when a worker died (the
    runs it held are claimed by a dead process, which the next pool's claims break at once)."""
    context = multiprocessing.get_context("spawn")  # fresh processes: no forked torch or CUDA state
    gpu_queue = None
    if str(device).startswith("cuda"):
        import torch

        gpu_queue = context.Queue()
        for gpu in worker_gpus(workers, torch.cuda.device_count(), os.environ.get("CUDA_VISIBLE_DEVICES")):
            gpu_queue.put(gpu)
    stopping = context.Event()
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                                initargs=(threads, gpu_queue, stopping, os.getpid())) as pool, \
            _forwarding_stops(stopping):
        # the workers start with the stops blocked, which they inherit until they ignore them: a Ctrl-C
        # while they imported torch had ended each in a traceback, and a SIGTERM then had each say
        # "interrupted while starting" besides the study's own line; this process takes them as the block ends
        with blocking(FORWARDED):
            futures = {pool.submit(_run_in_worker, item, str(device), retry_failed): key
                       for key, item in pending.items()}
        bar.show(running=min(workers, len(pending)))
        try:
            for future in concurrent.futures.as_completed(futures):
                key = futures[future]
                result = future.result()
                if result is None:  # not started: the worker whose run was stopped raises Interrupted
                    continue
                del pending[key]
                for run_dir, status in result.items():
                    statuses[names[run_dir]] = status
                    bar.ended(status, running=min(workers, len(pending)))
        except concurrent.futures.process.BrokenProcessPool:
            return False
        except BaseException as err:
            stopping.set()
            pool.shutdown(wait=True, cancel_futures=True)  # the workers checkpoint on the signal they got too
            if type(err) is KeyboardInterrupt:  # Ctrl-C, which reached the workers too
                raise study_stopped(signal.SIGINT) from None
            raise
    if pending:  # items not started, and no worker said why (cannot happen but by a stop)
        raise Interrupted(f"stopped with {len(pending)} runs not started; the same command continues the study",
                          signal.SIGTERM)
    return True


@contextlib.contextmanager
def _forwarding_stops(stopping):
    """While a pool runs, SIGTERM or SIGHUP to this process is passed on to the workers and ends the
    study as Interrupted (128 + the signal), after the workers have checkpointed their runs (the
    pool waits for them; `stopping` keeps them from starting others). It had killed this process
    alone, leaving the workers behind."""
    def stop(signum, frame):
        # one stop: a repeat (a scheduler signalling again, Ctrl-C to the process group) had cut
        # the pool's shutdown short, leaving workers that ignore signals running for good
        for each in FORWARDED:
            signal.signal(each, signal.SIG_IGN)
        stopping.set()
        for child in multiprocessing.active_children():
            os.kill(child.pid, signum)
        raise study_stopped(signum)

    with handling(FORWARDED, stop):
        yield
