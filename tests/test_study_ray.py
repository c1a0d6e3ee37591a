"""--executor ray: the study's units on a local Ray instance (2 CPUs): the same results as the
local executor, and a worker process killed mid-study is replaced, its run resumed, exactly once."""

import json
import os
import signal
import threading
import time

import pytest
import ray  # the test extra installs it (pip install -e '.[test]')

from dlbench.errors import UserError
from dlbench.study import load_study
from dlbench.study import ray_executor
from dlbench.study.unit import DONE, units_of
from tests.commands import run_command
from tests.conftest import STACKED_STUDY_OPTIONS
from tests.test_study import assert_same_study, weights_and_results, write_study

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray(tiny_data_root):
    # the instance's worker processes take the environment it starts with: the tiny dataset's root
    previous = os.environ.get("DLBENCH_DATA")
    os.environ["DLBENCH_DATA"] = str(tiny_data_root)
    ray_executor.start(num_cpus=2)
    yield ray
    ray.shutdown()
    if previous is None:
        del os.environ["DLBENCH_DATA"]
    else:
        os.environ["DLBENCH_DATA"] = previous


def test_the_ray_executor_gives_the_local_executors_results_also_for_stacks(local_stacked_study, local_ray,
                                                                          tiny_dsprites, tmp_path):
    # three runs in stacks of two: a stack and a run alone, each one Ray task, on a running cluster
    # (this module's instance: a study's own local instance is started in test_study_faults)
    study, local = local_stacked_study
    remote = tmp_path / "ray"
    address = local_ray.get_runtime_context().gcs_address
    result = run_command("dlb_study", study, "--runs_root", remote, "--executor", "ray", "--ray_address", address,
                         "--workers", "2", *STACKED_STUDY_OPTIONS, data_root=tiny_dsprites)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_same_study(weights_and_results(remote), weights_and_results(local))
    assert stacked_sizes(remote) == stacked_sizes(local) and sorted(stacked_sizes(remote), key=str) == [2, 2, False]


def stacked_sizes(runs_root):
    """run.json's 'stacked' of each run under runs_root, in the order of their names."""
    return [json.loads(path.read_text())["stacked"] for path in sorted(runs_root.rglob("run.json"))]


def test_a_killed_worker_is_replaced_and_its_run_resumes_exactly_once(local_ray, tiny_dsprites, tmp_path):
    study_path = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [2.0, 4.0]}")
    study_path.write_text(study_path.read_text().replace("'train.steps': 20", "'train.steps': 80"))  # killed at step 10
    study = load_study(str(study_path))
    alone, killed = tmp_path / "alone", tmp_path / "killed"
    assert run_command("dlb_study", study_path, "--runs_root", alone, "--device", "cpu", "--no_progress",
                       data_root=tiny_dsprites).returncode == 0

    workers = ray_executor.make_workers(ray, 2, 1, 0, 1)
    pids = ray.get([w.pid.remote() for w in workers])
    units = units_of(study, study.runs, killed)
    first_checkpoint = killed / study.runs[0].name / "model" / "checkpoints"

    def kill_when_training():
        deadline = time.monotonic() + 120
        while not list(first_checkpoint.glob("step_*.pt")) and time.monotonic() < deadline:
            time.sleep(0.05)
        holder = json.loads((killed / study.runs[0].name / "claim.json").read_text())["pid"]
        assert holder in pids
        os.kill(holder, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_training)
    killer.start()
    statuses = ray_executor.run_items(workers, [[unit] for unit in units], "cpu", False)
    killer.join()
    assert statuses == {unit.run_dir: DONE for unit in units}
    sessions = json.loads((killed / study.runs[0].name / "run.json").read_text())["sessions"]
    # the killed session listed as lost at its last checkpoint, where the next one resumed
    assert [s["ended"] for s in sessions] == ["lost", "done"], sessions
    assert 0 < sessions[0]["to_step"] == sessions[1]["from_step"], sessions
    assert_same_study(weights_and_results(killed), weights_and_results(alone))


def test_an_unreachable_cluster_is_one_line_and_nothing_is_written(tiny_dsprites, tmp_path):
    from tests.commands import assert_one_line_error, tree

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    before = tree(tmp_path)
    result = run_command("dlb_study", study, "--runs_root", tmp_path / "runs", "--executor", "ray",
                         "--ray_address", "127.0.0.1:1", data_root=tiny_dsprites)
    assert_one_line_error(result, "cannot reach the Ray cluster at '127.0.0.1:1'")
    assert tree(tmp_path) == before


# dlb_study with a stop arriving while ray.init starts Ray's processes (once its node has started
# them, before the driver has connected): the window of a stop in the first seconds of a study
STOP_WHILE_RAY_STARTS = """
import os, signal, sys
import ray._private.node
from dlbench.cli import study

starts = ray._private.node.Node.__init__
def start_then_stop(self, *args, **kwargs):
    starts(self, *args, **kwargs)
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
ray._private.node.Node.__init__ = start_then_stop
sys.exit(study.main(sys.argv[2:]))
"""


def processes_with(marker):
    """The pids of the live processes whose environment holds marker (each inherits it)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker.encode() in open(f"/proc/{entry}/environ", "rb").read():
                pids.append(int(entry))
        except OSError:  # gone, or not ours to read
            pass
    return pids


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_stop_while_ray_starts_leaves_none_of_its_processes(tiny_dsprites, tmp_path, stop):
    # ray.init's own SIGTERM handler ended the study with exit status 15, and a KeyboardInterrupt
    # raised inside ray.init left it half started: either way its dashboard and runtime-env agents
    # ran on for good
    import subprocess
    import sys
    import uuid

    from tests.commands import REPO

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    marker = f"DLBENCH_TEST_RAY_{uuid.uuid4().hex}"
    env = {**os.environ, "PYTHONPATH": str(REPO), "DLBENCH_DATA": str(tiny_dsprites), marker: "1"}
    result = subprocess.run([sys.executable, "-c", STOP_WHILE_RAY_STARTS, stop, str(study), "--runs_root",
                             str(tmp_path / "runs"), "--executor", "ray", "--no_progress"],
                            capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10  # ray.shutdown has signalled them: give them a moment to go
    while (left := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, "Ray's processes left running"
    assert result.returncode == 128 + getattr(signal, stop), result.stderr[-3000:]
    assert f"dlb_study: stopped by {stop}: every run keeps its last checkpoint" in result.stderr


def test_what_answers_at_the_address_is_asked_whether_it_speaks_grpc_as_rays_head(local_ray):
    # an HTTP server at --ray_address had kept ray.init waiting for minutes
    import http.server
    import socket

    head = ray.get_runtime_context().gcs_address  # a real head: it must pass
    ray_executor._check_reachable(head)
    host, _, port = head.rpartition(":")
    assert ray_executor._speaks_grpc(host, int(port), timeout=5)
    web = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        assert not ray_executor._speaks_grpc("127.0.0.1", web.server_address[1], timeout=5)
        with pytest.raises(UserError, match="is not a Ray cluster"):
            ray_executor._check_reachable(f"127.0.0.1:{web.server_address[1]}")
    finally:
        web.shutdown()
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        assert not ray_executor._speaks_grpc("127.0.0.1", silent.getsockname()[1], timeout=0.5)


def test_ray_workers_resolve_the_device_where_they_run(local_ray, tiny_dsprites, tmp_path, monkeypatch):
    # the driver had resolved it: without a GPU there, --device cuda was refused and the default
    # auto sent "cpu" to workers holding GPUs
    import torch

    from dlbench.cli import study as study_cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sent = []

    def run_ray(study, runs, runs_root, device, *args, stack=1, **kwargs):
        sent.append((str(device), stack))
        return {spec.name: DONE for spec in runs}

    monkeypatch.setattr(ray_executor, "run_ray", run_ray)
    # as on a cluster of GPU nodes (this local instance has no GPU to place a worker of 1 on)
    monkeypatch.setattr(ray_executor, "check_cluster", lambda *args: None)
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    # a cluster's address: the workers run on its nodes (a local instance's run here, whose device decides)
    base = [str(study), "--runs_root", str(tmp_path / "runs"), "--executor", "ray", "--ray_address", "head:6379",
            "--no_progress"]
    assert study_cli.main([*base, "--device", "cuda", "--gpus_per_worker", "1", "--stack", "2"]) == 0
    assert study_cli.main(base) == 0
    assert sent == [("cuda", 2), ("auto", 1)]
    local = [arg for arg in base if arg not in ("--ray_address", "head:6379")]
    assert study_cli.main([*local, "--device", "cuda", "--gpus_per_worker", "1", "--stack", "2"]) == 2
    # and a worker resolves "auto" on its own node: here, without a GPU, the CPU
    ran = []
    monkeypatch.setattr(ray_executor, "run_item", lambda item, device, *args, **kwargs: ran.append(device) or {})
    import dlbench.data

    monkeypatch.setattr(dlbench.data, "keep_loaded", lambda *_: None)  # a worker's, not this process's, setting
    ray_executor.Worker(None).run([], "auto", False, None)
    assert ran == [torch.device("cpu")]


def test_what_stops_a_workers_run_reaches_the_study_as_itself(local_ray, tiny_dsprites, tmp_path):
    # a filesystem fault on the worker (here its runs root lies under a file) stops the study; Ray
    # had handed it on wrapped with the worker's traceback, which the command printed as pages
    study = load_study(str(write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")))
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    units = units_of(study, study.runs, blocker / "runs")
    workers = ray_executor.make_workers(ray, 1, 1, 0, 1)
    with pytest.raises(OSError) as caught:
        ray_executor.run_items(workers, [[unit] for unit in units], "cpu", False)
    assert not isinstance(caught.value, ray.exceptions.RayError) and "a_file" in str(caught.value)
