"""The Ray executor: a study's units on a Ray cluster (an existing one at --ray_address, or a
local instance). One long-lived actor per worker slot, so that torch, CUDA and the dataset's
first load happen once per worker, not once per run. Actors are restarted when their process
dies and their task retried: Ray's retries are at-least-once, and the run's claim makes them
exactly-once (a retried run resumes from its checkpoint; a run another worker holds is left to
it). Install with `pip install -e '.[ray]'`."""

import contextlib
import functools
import os
import signal
import threading

from dlbench.errors import UserError
from dlbench.signals import STOPS, noting, stop_asked_by
from dlbench.study.local import threads_per_worker
from dlbench.study.stacks import run_item, work_items
from dlbench.study.unit import STOPS_THE_STUDY, quiet, study_stopped, units_of


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray needs Ray; install it with pip install -e '.[ray]' (or pip install ray)") from None
    return ray


def start(address=None, num_cpus=None):
    """Connect to the cluster at address, or start a local instance."""
    ray = _ray()
    if ray.is_initialized():
        return ray
    if address:
        _check_reachable(address)
    try:
        with _keeping_signal_handlers(), _stops_put_off(ray) as stops:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot connect to the Ray cluster at {address!r}: {first}; check --ray_address "
                        "(ray status on the head node shows it)") from None
    if stops:
        ray.shutdown()
        raise study_stopped(stops[0])
    return ray


@contextlib.contextmanager
def _stops_put_off(ray):
    """Within the block a stop (Ctrl-C, SIGTERM, SIGHUP) is only noted (the list yielded): raised
    inside ray.init, or ending the process through the SIGTERM handler ray.init sets (its hook is
    disabled here), it had left Ray's dashboard and runtime-env agents running for good. Once
    ray.init has returned, ray.shutdown ends every process it started."""
    utils = getattr(getattr(ray, "_private", None), "utils", None)
    sets_handler = getattr(utils, "set_sigterm_handler", None)
    with noting((signal.SIGINT, *STOPS)) as stops:
        if sets_handler is not None:
            utils.set_sigterm_handler = lambda handler: None
        try:
            yield stops
        finally:
            if sets_handler is not None:
                utils.set_sigterm_handler = sets_handler


@contextlib.contextmanager
def _keeping_signal_handlers():
    """ray.init replaces the process's SIGTERM handler with one that exits at once (its C++ core
    then aborts with a stack dump), leaving the runs in flight 'running' and unsaved: the command's
    own handlers (dlbench.cli.common) come back after it, so a stop is a stop (run_items)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, *STOPS)}
    try:
        yield
    finally:
        for signum, handler in before.items():
            if handler is not None:  # None: set outside Python, cannot be set back from here
                signal.signal(signum, handler)


def _check_reachable(address, timeout=10.0):
    """Ray retries an unreachable cluster, or another server at the address, for minutes: look
    first, and say so in one line."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not port.isdigit():
        return  # 'auto' and client addresses: Ray finds and reports them itself
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS cluster answers the plain HTTP/2 hello with TLS: leave it to Ray
    try:
        answers = _speaks_grpc(host or "127.0.0.1", int(port), timeout)
    except OSError as err:
        raise UserError(f"cannot reach the Ray cluster at {address!r} ({err.strerror or err}); check --ray_address "
                        "(ray status on the head node shows it)") from None
    if not answers:  # something else listens there: Ray would wait on it for minutes
        raise UserError(f"what answers at {address!r} is not a Ray cluster (no gRPC server, as Ray's head has); "
                        "check --ray_address (ray status on the head node shows it)")


# HTTP/2's connection preface and an empty SETTINGS frame: a gRPC server answers with its SETTINGS
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_grpc(host, port, timeout):
    """Whether the server at host:port speaks HTTP/2, as gRPC (and so Ray's head) does: its first
    frame must be SETTINGS (type 4). An OSError when nothing can be reached there."""
    import socket

    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(_HTTP2_HELLO)
        frame = b""
        try:
            while len(frame) < 9 and (part := connection.recv(9 - len(frame))):
                frame += part
        except OSError:  # it stays silent, or hangs up: not gRPC
            return False
    return len(frame) == 9 and frame[3] == 4


class Worker:
    """One worker slot: its process keeps torch and its caches between runs."""

    def __init__(self, threads):
        import torch

        import dlbench.data

        if threads:
            torch.set_num_threads(threads)
        dlbench.data.keep_loaded()  # the worker's runs share one load of the dataset

    def pid(self):
        return os.getpid()

    def run(self, item, device, retry_failed, board):
        """{run_dir: status} of a work item: one run, or a stack (dlbench.study.stacks); device as
        --device gave it, resolved here, on the worker's node with the GPUs Ray gave it. board: the
        StopBoard of run_items."""
        import ray

        from dlbench.train import resolve_device

        # a cancelled task (run_items stopping) stops its training at the step, and its evaluation
        # before the next metric, as the signal that stopped the study would (the board says which:
        # a cancel carries none)
        context = ray.get_runtime_context()
        stopped_by = functools.cache(lambda: _posted_signal(ray, board))
        with stop_asked_by(lambda: stopped_by() if context.is_canceled() else None):
            return run_item(item, resolve_device(device), retry_failed, progress=False, log=quiet)


def _posted_signal(ray, board):
    """The signal on the board, or SIGTERM where none was posted (a cancel for another reason: a
    run elsewhere stopped the study) or the board cannot be read."""
    try:
        return ray.get(board.signal.remote(), timeout=10) or signal.SIGTERM
    except ray.exceptions.RayError:
        return signal.SIGTERM


class StopBoard:
    """The signal that stopped the study, posted before its tasks are cancelled: a worker's run
    records it ("interrupted by SIGINT"), where a cancelled task learns only that it was."""

    def __init__(self):
        self.signum = None

    def post(self, signum):
        self.signum = signum

    def signal(self):
        return self.signum


def worker_count(resources, workers, gpus_per_worker):
    """--workers, or by default one per CPU, or per gpus_per_worker of the cluster's GPUs."""
    if workers:
        return workers
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 0) / gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)))


def check_cluster(address, workers, gpus_per_worker, log=print):
    """Reach the cluster (or start the local instance) and check it has room for the workers."""
    resources = start(address).cluster_resources()
    check_room(resources, worker_count(resources, workers, gpus_per_worker), gpus_per_worker, address, log)


def check_room(resources, count, gpus_per_worker, address, log=print):
    """Refuse workers the cluster has no room for, each taking a CPU and gpus_per_worker GPUs: one that
    never starts keeps the runs given to it waiting for good, and the study had hung. A cluster of
    --ray_address may grow (Ray's autoscaler), so there it is a note; the local instance cannot."""
    cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    fits = min(int(cpus), int(gpus / gpus_per_worker) if gpus_per_worker else int(cpus))
    if count <= fits:
        return
    gpu_each = f" and {gpus_per_worker:g} GPU" if gpus_per_worker else ""
    room = f"{count} worker{'s' if count != 1 else ''} of 1 CPU{gpu_each} each"
    has = f"{cpus:g} CPUs" + (f" and {gpus:g} GPUs" if gpus_per_worker else "")
    if address:
        log(f"note: the Ray cluster has {has} now, too few for {room}: those it cannot place wait, with their runs, "
            f"until it grows")
        return
    fix = (f"give --workers {fits} or fewer" if fits else
           "drop --gpus_per_worker and --device cuda, or give --ray_address of a cluster with GPUs")
    raise UserError(f"the local Ray instance has {has}, too few for {room}: a worker it cannot place never "
                    f"starts, and the runs given to it would wait for good; {fix}")


def make_workers(ray, count, cpus_per_worker, gpus_per_worker, threads):
    actor = ray.remote(max_restarts=-1, max_task_retries=-1)(Worker)
    return [actor.options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker).remote(threads) for _ in range(count)]


def run_items(workers, items, device, retry_failed, on_done=None):
    """{run_dir: status} of the work items, spread over the workers; on_done(count) as runs end.
    A stop (Ctrl-C, SIGTERM, SIGHUP) ends the study as in the local pool: the runs in flight stop
    at their step, checkpointed and marked interrupted, before this raises Interrupted, and no
    queued item starts. So does what stops a worker's run (STOPS_THE_STUDY), raised here as itself."""
    ray = _ray()
    statuses, queue, idle, in_flight = {}, list(items), list(workers), {}
    board = ray.remote(num_cpus=0)(StopBoard).remote()  # no CPU: the workers take them all
    # signals are only noted: raised inside Ray's wait, a StopSignal comes out as a plain
    # KeyboardInterrupt, the signal lost; a repeat while the runs wind down is ignored
    with noting((signal.SIGINT, *STOPS)) as stops:
        try:
            while (queue or in_flight) and not stops:
                while idle and queue:
                    worker = idle.pop()
                    in_flight[worker.run.remote(queue.pop(0), str(device), retry_failed, board)] = worker
                ended, _ = ray.wait(list(in_flight), num_returns=1, timeout=1.0)
                for ref in ended:
                    idle.append(in_flight.pop(ref))
                    result = _result(ray, ref)
                    statuses.update(result)
                    if on_done:
                        on_done(len(result))
        except BaseException:
            _stop_in_flight(ray, in_flight)
            raise
        if stops:
            ray.get(board.post.remote(stops[0]))
            _stop_in_flight(ray, in_flight)
            raise study_stopped(stops[0])
    return statuses


def _result(ray, ref):
    """The task's {run_dir: status}; what stopped it on the worker is raised here as itself (Ray
    wraps it with the worker's traceback, which would reach the user as pages of text)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        if isinstance(err.cause, STOPS_THE_STUDY):
            raise err.cause from None
        raise


def _stop_in_flight(ray, in_flight):
    """Cancel the tasks in flight and wait until each worker has wound its run down: a call queued
    behind the cancelled one answers once it has (a worker's process exits with this one's)."""
    for ref in in_flight:
        ray.cancel(ref)
    with contextlib.suppress(ray.exceptions.RayError):
        ray.get([worker.pid.remote() for worker in in_flight.values()])
    for ref in in_flight:  # read, so that Ray does not print each run's Interrupted as an unhandled error
        with contextlib.suppress(ray.exceptions.RayError):
            ray.get(ref)


def run_ray(study, runs, runs_root, device, workers, address=None, gpus_per_worker=0.0, retry_failed=False,
            progress=True, log=print, stack=1):
    """Returns {run name: DONE, FAILED or HELD}. With stack K > 1, runs that can be trained as one
    model are, K at a time, each stack one task (dlbench.study.stacks)."""
    from tqdm import tqdm

    ray = start(address, num_cpus=None if address else (os.cpu_count() or 1))
    units = units_of(study, runs, runs_root)
    names = {unit.run_dir: spec.name for spec, unit in zip(runs, units)}
    items = work_items(units, stack, log, device)  # device as --device gave it: "auto", "cpu" or "cuda"
    count = worker_count(ray.cluster_resources(), workers, gpus_per_worker)
    # as the local pool shares them out (a run's CPU threads decide its weights, bit for bit); a
    # cluster's nodes are theirs to set
    threads = threads_per_worker(count) if not address else None
    log(f"Ray: {count} worker{'s' if count != 1 else ''} on {ray.cluster_resources()}")
    pool = make_workers(ray, count, 1, gpus_per_worker, threads)
    with tqdm(total=len(units), desc=study.name, unit="run", disable=not progress) as bar:
        statuses = run_items(pool, items, device, retry_failed, on_done=bar.update)
    return {names[run_dir]: status for run_dir, status in statuses.items()}
