"""Exactly once under faults: worker processes of a local pool killed with SIGKILL at seeded
random moments; the study replaces them and goes on, and every run ends done, trained to the
end by one process at a time, with the weights and metric results of an undisturbed study, bit
for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.commands import REPO, run_command
from tests.test_study import assert_same_study, weights_and_results, write_study

pytestmark = pytest.mark.slow

# 6 runs: enough for five kills to land among two workers' runs (8 had cost CI 40 s more)
SWEEP = "{'beta_vae.beta': [1.0, 2.0, 8.0], 'train.seed': [0, 1]}"


def pool_workers(pid):
    """The pids of the pool's worker processes (children running multiprocessing's spawn_main)."""
    found = []
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(int(child))
    return found


def study_file(tmp_path):
    path = write_study(tmp_path / "s.gin", SWEEP)
    path.write_text(path.read_text().replace("'train.steps': 20", "'train.steps': 80"))  # long enough to be killed in
    return path


@pytest.fixture(scope="module")
def undisturbed(tiny_data_root, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("undisturbed")
    runs = tmp_path / "runs"
    result = run_command("dlb_study", study_file(tmp_path), "--runs_root", runs, "--device", "cpu", "--no_progress",
                         data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    return weights_and_results(runs)


@pytest.mark.parametrize("seed, kills", [(0, 5)])
def test_killed_workers_are_replaced_and_every_run_ends_done_exactly_once(undisturbed, tiny_data_root, tmp_path,
                                                                            seed, kills):
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_data_root)}
    study = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_study"), str(study_file(tmp_path)),
                              "--runs_root", str(runs), "--workers", "2", "--device", "cpu", "--no_progress"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    schedule = random.Random(seed)
    killed = 0
    deadline = time.monotonic() + 300
    # the first kill lands in the worker training the first run past a checkpoint, not in one still
    # importing torch
    while not (first := next(runs.rglob("step_*.pt"), None)) and study.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(json.loads((first.parents[2] / "claim.json").read_text())["pid"], signal.SIGKILL)
    killed += 1
    while killed < kills and study.poll() is None and time.monotonic() < deadline:
        time.sleep(schedule.uniform(1.0, 4.0))
        workers = pool_workers(study.pid)
        if workers:
            os.kill(schedule.choice(workers), signal.SIGKILL)
            killed += 1
    stdout, stderr = study.communicate(timeout=600)
    assert killed == kills, f"the study ended before every scheduled kill ({killed} of {kills})"
    assert study.returncode == 0, stdout + stderr
    assert "a worker process died" in stdout
    assert "leaked" not in stderr, stderr  # the resource tracker's warning on what a killed worker held

    endings = []
    for run_json in runs.rglob("run.json"):
        record = json.loads(run_json.read_text())
        assert record["status"] == "done"
        sessions = record["sessions"]
        endings += [s["ended"] for s in sessions]
        assert [s["ended"] for s in sessions].count("done") == 1 and sessions[-1]["ended"] == "done", sessions
        # every step in one session, in order: a killed session is listed (lost) up to its last checkpoint,
        # where the next resumed
        steps = [(s["from_step"], s["to_step"]) for s in sessions]
        assert steps[0][0] == 0 and steps[-1][1] == 80 and all(a[1] == b[0] for a, b in zip(steps, steps[1:])), sessions
    # the killed runs' sessions lost; the pool broken, the other worker's run had stopped on its SIGTERM
    assert "lost" in endings and set(endings) <= {"lost", "interrupted by SIGTERM", "done"}, endings
    assert_same_study(weights_and_results(runs), undisturbed)


# `kill -INT` to the study's process alone only for the local pool, whose workers it had missed
# (Ray and Slurm were right already: their cases cost CI's time, about 7 s each)
@pytest.mark.parametrize("executor, signame, whole_group, code", [
    *[(executor, signame, whole_group, code) for executor in ("local", "ray", "slurm")
      for signame, whole_group, code in (("SIGTERM", False, 143), ("SIGINT", True, 130))],
    ("local", "SIGINT", False, 130)])
def test_a_signal_stops_a_study_with_every_run_checkpointed_and_no_worker_left(tiny_data_root, tmp_path, signame,
                                                                              whole_group, code, executor):
    # local pool: SIGTERM to the study's process alone had killed it and left the workers training,
    # then hanging; Ctrl-C (the whole group) had broken the pool on an interruption that did not
    # unpickle, killing a worker while it wrote its checkpoint; and a worker had then started the
    # queued third run and trained it to its end, long past the signal. Ray: ray.init had replaced
    # the SIGTERM handler (the driver aborted with a stack dump), and either signal had left the
    # runs 'running', their claims behind and their training since the last checkpoint lost. Slurm
    # without Slurm (submitit's local jobs): SIGTERM had left the jobs training on, requeued every
    # two minutes; Ctrl-C had printed a traceback per job and given each a second to checkpoint
    # (all start at once, so no third run waits queued: two runs). `kill -INT` to the local pool's
    # process alone had said the runs were stopped while its workers trained them to their end
    betas = "[1.0, 8.0]" if executor == "slurm" else "[1.0, 8.0, 16.0]"
    study = write_study(tmp_path / "s.gin", f"{{'beta_vae.beta': {betas}}}")
    study.write_text(study.read_text().replace("'train.steps': 20", "'train.steps': 3000")
                     .replace("'train.checkpoint_every': 10", "'train.checkpoint_every': 100000"))
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_data_root)}
    process = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_study"), str(study), "--runs_root", str(runs),
                                "--executor", executor, *([] if executor == "slurm" else ["--workers", "2"]),
                                "--device", "cpu", "--no_progress"],
                               env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(runs.rglob("train_log.csv"))) < 2 and time.monotonic() < deadline:  # both runs training
        time.sleep(0.2)
    workers = {json.loads(path.read_text())["pid"] for path in runs.rglob("claim.json")}  # the runs' holders
    assert len(workers) == 2 and process.pid not in workers
    (os.killpg if whole_group else os.kill)(process.pid, getattr(signal, signame))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr
    assert "Traceback" not in stderr and "SIGTERM received" not in stderr, stderr
    assert stderr.splitlines()[-1] == (f"dlb_study: stopped by {signame}: every run keeps its last checkpoint; "
                                       f"the same command continues the study"), stderr
    records = [json.loads(path.read_text()) for path in sorted(runs.rglob("run.json"))]
    assert len(records) == 2 and all(r["status"] == "interrupted" for r in records), records  # the third not started
    # each run records the signal that stopped the study (Ray's had said SIGTERM for a Ctrl-C)
    assert all(r["sessions"][-1]["ended"] == f"interrupted by {signame}" for r in records), records
    for record, run_json in zip(records, sorted(runs.rglob("run.json"))):
        assert record["step"] > 0 and (run_json.parent / "model" / "checkpoints" / f"step_{record['step']:09d}.pt").is_file()
        assert not (run_json.parent / "claim.json").exists()
    # no worker left behind: each ends within seconds (Ray's take longer on a busy machine) and trains no further
    deadline = time.monotonic() + 30
    while [pid for pid in workers if Path(f"/proc/{pid}").exists()] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert [json.loads(path.read_text()) for path in sorted(runs.rglob("run.json"))] == records


def catching(pid, signum):
    """Whether process pid has a handler of its own for signum (/proc's SigCgt), False once it has ended."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signum - 1) & 1)


def test_a_signal_while_the_pools_workers_start_is_said_once(tiny_data_root, tmp_path):
    # a worker runs the bin script again as it starts, whose handler says "interrupted while starting":
    # each worker caught there by the study's passing on a SIGTERM had said so, besides the study's own line
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_data_root)}
    process = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_study"), str(study), "--runs_root", str(runs),
                                "--workers", "2", "--device", "cpu", "--no_progress"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    # the bin script's handler in place, the pool's own (ignoring the signal) not yet: the worker is starting
    while not any(catching(pid, signal.SIGTERM) for pid in pool_workers(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert time.monotonic() < deadline and not list(runs.rglob("run.json")), "no worker was seen starting"
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.splitlines() == ["dlb_study: stopped by SIGTERM: every run keeps its last checkpoint; the same "
                                   "command continues the study"], stderr
    assert not list(runs.rglob("run.json"))  # the workers, once started, took no run


def test_a_signal_while_workers_evaluate_stops_them_before_their_next_metric(tiny_data_root, tmp_path):
    # a pool's workers ignore signals outside training: each run's evaluation had gone on to its
    # last metric, past a scheduler's grace period on real data
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}", metrics="['mig', 'dci', 'recon_ll']")
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_data_root)}
    process = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_study"), str(study), "--runs_root", str(runs),
                                "--workers", "2", "--device", "cpu", "--no_progress"], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    def both_trained_and_one_metric_done():  # the other worker may still be training at the first metric
        try:
            trained = [json.loads(path.read_text())["status"] for path in runs.rglob("run.json")] == ["done"] * 2
        except (OSError, ValueError):  # a run.json being replaced at this moment
            return False
        return trained and bool(list(runs.rglob("metrics/*/*/results.json")))

    deadline = time.monotonic() + 120
    while not both_trained_and_one_metric_done() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert stderr.splitlines()[-1].startswith("dlb_study: stopped by SIGTERM"), stderr
    assert "Traceback" not in stderr, stderr
    assert len(list(runs.rglob("metrics/*/*/results.json"))) < 6  # not every metric of both runs
    assert not list(runs.rglob("claim.json"))
    assert all(json.loads(path.read_text())["status"] == "done" for path in runs.rglob("run.json"))  # trained


def running(pid):
    """Whether process pid is alive: an orphan that has exited may stay a zombie until init reaps it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def test_a_killed_studys_workers_end_and_leave_their_runs_to_be_taken_over(tiny_data_root, tmp_path):
    # a pool's workers ignore stop signals (the study's process passes them on): a study killed by
    # SIGKILL (out of memory, a scheduler's hard kill) had left its workers training on, then idle for good
    from dlbench.rundir import held_by

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    study.write_text(study.read_text().replace("'train.steps': 20", "'train.steps': 3000"))
    runs = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_data_root)}
    process = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_study"), str(study), "--runs_root", str(runs),
                                "--workers", "2", "--device", "cpu", "--no_progress"], env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    workers = []
    try:
        deadline = time.monotonic() + 120
        while len(list(runs.rglob("train_log.csv"))) < 2 and time.monotonic() < deadline:  # both runs training
            time.sleep(0.2)
        workers = pool_workers(process.pid)
        assert len(workers) == 2, workers
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while [pid for pid in workers if running(pid)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if running(pid)], "the workers outlived the study's process"
    finally:
        for pid in workers:  # none should be left; a failure must not leave them training
            if running(pid):
                os.kill(pid, signal.SIGKILL)
    claimed = [path.parent for path in runs.rglob("claim.json")]
    assert claimed and all(held_by(run_dir) is None for run_dir in claimed)  # a dead holder's claim is taken over
