"""Interruptions keep their work, and a run has one writer: dlb_train stopped by SIGINT, SIGTERM
or SIGHUP checkpoints, marks the run interrupted and resumes to the weights of an uninterrupted
run, bit for bit on CPU; a second dlb_train on a run being trained is refused at once and the
first finishes as if alone."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.commands import REPO, assert_one_line_error, run_command
from tests.conftest import tiny_params

pytestmark = pytest.mark.slow

STEPS = 160
# the tiny config, long enough to be interrupted mid-way: the signal comes at step 10, and while
# the first writer trains on, three commands are refused (5 s in all here, dlb_evaluate importing
# torch, against 150 steps of 60-120 ms); no periodic checkpoint before the signal, so the one
# resumed from is the one the signal wrote
PARAMS = tiny_params(f"train.steps = {STEPS}", "train.checkpoint_every = 100000", "train.log_every = 10")


def train_args(run_dir, *extra):
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in PARAMS:
        args += ["--gin_param", binding]
    return [*args, *extra]


def start_training(run_dir, data_root):
    """dlb_train in the background, returned once it has logged its first steps (its signal
    handlers are in place from before the first step)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(data_root)}
    process = subprocess.Popen([sys.executable, str(REPO / "bin" / "dlb_train"), *train_args(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               stdin=subprocess.DEVNULL)
    log = run_dir / "model" / "train_log.csv"
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.stat().st_size > 0):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)
    return process


def weights(run_dir):
    return torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def uninterrupted_run(tiny_data_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("alone") / "run"
    result = run_command("dlb_train", *train_args(run_dir), data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run):
    return weights(uninterrupted_run)


def log_without_rates(run_dir):
    """{step: the row's values but the images per second (a time)} of a run's train_log.csv."""
    lines = (run_dir / "model" / "train_log.csv").read_text().splitlines()
    names = lines[0].split(",")
    rows = [dict(zip(names, line.split(","))) for line in lines[1:]]
    return {row["step"]: {k: v for k, v in row.items() if k != "images_per_second"} for row in rows}


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_each_stop_signal_is_caught_once_then_handled_as_before(signame):
    # the three signals share one path from here on: dlb_train is run with one of them below
    from dlbench.train.run import StopOnSignals

    signum = getattr(signal, signame)
    before = signal.getsignal(signum)
    with StopOnSignals() as stop:
        os.kill(os.getpid(), signum)
        assert stop.signum == signum
        assert signal.getsignal(signum) == before  # a second one stops at once
    assert signal.getsignal(signum) == before


def test_a_stop_asked_without_a_signal_reads_as_the_signal_it_stands_for_and_only_while_asked():
    # how a Ray task cancelled by the study's process, or a Slurm job warned of its end, stops its
    # training (dlbench.signals.stop_asked_by)
    from dlbench.signals import stop_asked_by
    from dlbench.train.run import StopOnSignals

    asked = []
    with StopOnSignals() as stop:
        with stop_asked_by(lambda: signal.SIGTERM if asked else None):
            assert stop.signum is None
            asked.append(True)
            assert stop.signum == signal.SIGTERM
    with StopOnSignals() as stop:
        assert stop.signum is None  # the check went with its block
        with stop_asked_by(lambda: signal.SIGUSR2):  # Slurm's warning to a job
            assert stop.signum == signal.SIGUSR2


@pytest.mark.parametrize("signame", ["SIGTERM"])
def test_a_signal_checkpoints_and_the_run_resumes_to_the_same_weights(signame, uninterrupted, uninterrupted_run,
                                                                        tiny_data_root, tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, tiny_data_root)
    signum = getattr(signal, signame)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 128 + signum, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    record = json.loads((run_dir / "run.json").read_text())
    step = record["step"]
    assert record["status"] == "interrupted" and record["interrupted_by"] == signame
    assert 0 < step < STEPS
    assert f"interrupted by {signame} at step {step}" in lines[0]
    assert f"dlb_train --run_dir {run_dir}` resumes from step {step}" in lines[0]
    assert (run_dir / "model" / "checkpoints" / f"step_{step:09d}.pt").is_file()
    assert not (run_dir / "claim.json").exists()  # the claim went with the process

    # resumed with the run's own config (no --gin): the weights of a run never interrupted
    resumed = run_command("dlb_train", "--run_dir", run_dir, "--device", "cpu", "--no_progress",
                          data_root=tiny_data_root)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from step {step}" in resumed.stdout
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    assert_same_weights(weights(run_dir), uninterrupted)
    # and the same log: the row whose steps span the stop had averaged only those after the resume
    assert log_without_rates(run_dir) == log_without_rates(uninterrupted_run)


def test_a_second_writer_is_refused_at_once_and_the_first_finishes_as_if_alone(uninterrupted, tiny_data_root,
                                                                               tmp_path):
    run_dir = tmp_path / "run"
    first = start_training(run_dir, tiny_data_root)
    before = json.loads((run_dir / "run.json").read_text())
    tick = time.monotonic()
    second = run_command("dlb_train", *train_args(run_dir), data_root=tiny_data_root)
    elapsed = time.monotonic() - tick
    line = assert_one_line_error(second, str(run_dir), "is being trained by process", str(first.pid))
    assert elapsed < 1.0, f"the second writer took {elapsed:.2f} s to be refused ({line})"
    overwrite = run_command("dlb_train", *train_args(run_dir, "--overwrite"), data_root=tiny_data_root)
    assert_one_line_error(overwrite, "is being trained by process")
    evaluate = run_command("dlb_evaluate", run_dir, "--device", "cpu", data_root=tiny_data_root)
    assert_one_line_error(evaluate, "is being trained by process")

    _, stderr = first.communicate(timeout=180)
    assert first.returncode == 0, stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and record["started"] == before["started"]
    assert_same_weights(weights(run_dir), uninterrupted)
    assert not (run_dir / "claim.json").exists()


def test_a_killed_run_leaves_no_claim_in_the_way_and_a_rerun_says_it_starts_again(uninterrupted, tiny_data_root,
                                                                                  tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, tiny_data_root)
    process.kill()  # SIGKILL: no handler runs, the claim file stays behind
    process.communicate()
    assert (run_dir / "claim.json").is_file()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    rerun = run_command("dlb_train", "--run_dir", run_dir, "--device", "cpu", "--no_progress", data_root=tiny_data_root)
    assert rerun.returncode == 0, rerun.stderr
    assert "no checkpoint to resume from; training starts again from step 0" in rerun.stdout
    assert_same_weights(weights(run_dir), uninterrupted)
    # the killed session stays in the run's history (it had been dropped with the folder's files)
    sessions = json.loads((run_dir / "run.json").read_text())["sessions"]
    assert [(s["pid"], s["from_step"], s["to_step"], s["ended"]) for s in sessions] == [
        (process.pid, 0, 0, "lost"), (sessions[1]["pid"], 0, sessions[1]["to_step"], "done")], sessions
    assert sessions[1]["pid"] != process.pid


def test_a_run_killed_before_its_run_json_is_trained_by_the_same_command(uninterrupted, tiny_data_root, tmp_path):
    # killed between writing model/config.gin and run.json (here that state made by hand, the window
    # being a few milliseconds), the folder had been refused by every rerun as "not a run"
    run_dir = tmp_path / "run"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "config.gin").write_text("train.steps = 3\n")  # not the config given: replaced
    (run_dir / "model" / ".config.gin.q1w2e3.tmp").write_text("train.st")
    rerun = run_command("dlb_train", *train_args(run_dir), data_root=tiny_data_root)
    assert rerun.returncode == 0, rerun.stderr
    assert "training starts again from step 0" in rerun.stdout
    assert_same_weights(weights(run_dir), uninterrupted)
    assert not list(run_dir.rglob("*.tmp")) and "train.steps = 160" in (run_dir / "model" / "config.gin").read_text()


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_run_stopped_at_once_records_the_session_up_to_its_last_checkpoint(tiny_data_root, tmp_path, monkeypatch,
                                                                             capsys, signame):
    # a second Ctrl-C (or a full disk, a full GPU, a bug) had left the session out of run.json's
    # `sessions`: the resumed run then listed only its own, as if steps 0 to 5 had trained nowhere.
    # And the session had ended "interrupted", without the signal, and nothing had said where the
    # run resumes (the command's last line names only the signal)
    from dlbench.cli import train
    from dlbench.errors import StopSignal
    from dlbench.train import checkpoints

    signum = getattr(signal, signame)

    monkeypatch.setenv("DLBENCH_DATA", str(tiny_data_root))
    saved = []
    save = checkpoints.save_checkpoint

    def save_then_stop(*args, **kwargs):
        saved.append(True)
        if len(saved) == 2:
            # a second signal while the second checkpoint is written (Ctrl-C's is Python's own)
            raise KeyboardInterrupt if signum == signal.SIGINT else StopSignal(signum)
        return save(*args, **kwargs)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_stop)
    run_dir = tmp_path / "run"
    params = tiny_params("train.steps = 20", "train.checkpoint_every = 5")
    argv = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress",
            *[arg for param in params for arg in ("--gin_param", param)]]
    assert train.main(argv) == 128 + signum
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["step"] == 5
    assert [(s["from_step"], s["to_step"], s["ended"]) for s in record["sessions"]] == [
        (0, 5, f"interrupted by {signame}")]
    out, err = capsys.readouterr()
    assert f"{run_dir}: stopped at once; its last checkpoint is of step 5, where `dlb_train --run_dir {run_dir}` " \
           f"resumes it\n" in out, out
    assert err == f"dlb_train: interrupted by {signame}\n", err
