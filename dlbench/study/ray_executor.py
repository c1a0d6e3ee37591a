"""The Ray executor: a study's units on a Ray cluster (an existing one at --ray_address, or a
local instance). One long-lived actor per worker slot, so that torch, CUDA and the dataset's
first load happen once per worker, not once per run. Actors are restarted when their process
dies and their task retried: Ray's retries are at-least-once, and the run's claim makes them
exactly-once (a retried run resumes from its checkpoint; a run another worker holds is left to
it). Install with `pip install -e '.[ray]'`."""

import os

from dlbench.errors import UserError
from dlbench.study.stacks import run_item, work_items
from dlbench.study.unit import quiet, units_of


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
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot connect to the Ray cluster at {address!r}: {first}; check --ray_address "
                        "(ray status on the head node shows it)") from None
    return ray


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

    def run(self, item, device, retry_failed):
        """{run_dir: status} of a work item: one run, or a stack (dlbench.study.stacks); device as
        --device gave it, resolved here, on the worker's node with the GPUs Ray gave it."""
        from dlbench.train import resolve_device

        return run_item(item, resolve_device(device), retry_failed, progress=False, log=quiet)


def make_workers(ray, count, cpus_per_worker, gpus_per_worker, threads):
    actor = ray.remote(max_restarts=-1, max_task_retries=-1)(Worker)
    return [actor.options(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker).remote(threads) for _ in range(count)]


def run_items(workers, items, device, retry_failed, on_done=None):
    """{run_dir: status} of the work items, spread over the workers; on_done(count) as runs end."""
    from ray.util import ActorPool

    statuses = {}
    pool = ActorPool(workers)
    for result in pool.map_unordered(lambda worker, item: worker.run.remote(item, str(device), retry_failed), items):
        statuses.update(result)
        if on_done:
            on_done(len(result))
    return statuses


def run_ray(study, runs, runs_root, device, workers, address=None, gpus_per_worker=0.0, retry_failed=False,
            progress=True, log=print, stack=1):
    """Returns {run name: DONE, FAILED or HELD}. With stack K > 1, runs that can be trained as one
    model are, K at a time, each stack one task (dlbench.study.stacks)."""
    from tqdm import tqdm

    ray = start(address, num_cpus=None if address else (os.cpu_count() or 1))
    units = units_of(study, runs, runs_root)
    names = {unit.run_dir: spec.name for spec, unit in zip(runs, units)}
    items = work_items(units, stack, log, device)  # device as --device gave it: "auto", "cpu" or "cuda"
    cpus = ray.cluster_resources().get("CPU", 1)
    count = workers or max(1, int(ray.cluster_resources().get("GPU", 0) / gpus_per_worker) if gpus_per_worker
                           else int(cpus))
    threads = max(1, int(cpus // count)) if not address else None
    log(f"Ray: {count} workers on {ray.cluster_resources()}")
    pool = make_workers(ray, count, 1, gpus_per_worker, threads)
    with tqdm(total=len(units), desc=study.name, unit="run", disable=not progress) as bar:
        statuses = run_items(pool, items, device, retry_failed, on_done=bar.update)
    return {names[run_dir]: status for run_dir, status in statuses.items()}
