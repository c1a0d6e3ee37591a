"""A stack of runs trained into run directories (dlbench.train.stacked_run) leaves each directory
as the run trained alone would (float64, for the reason tests/test_stack.py gives), a run that
diverges fails alone, and a stack killed with SIGKILL and resumed equals one never interrupted."""

import json
import os
import signal
import subprocess
import sys
import time

import gin
import pytest
import torch

from dlbench import rundir
from dlbench.config import operative_config, parse_gin, resolve_run_spec
from dlbench.train.run import train_run
from dlbench.train.stacked_run import train_stack
from tests.commands import REPO
from tests.conftest import TINY_PARAMS
from tests.training import read_log, training_scalars

RUNS = [(0, 1.0), (1, 4.0), (2, 16.0)]
# the tiny protocol at batch 4 (float64 convolutions are slow; four images a step are enough to compare)
PARAMS = [p for p in TINY_PARAMS if not p.startswith(("beta_vae.beta", "train.steps", "train.checkpoint_every",
                                                      "train.batch_size"))] + ["train.batch_size = 4"]


def spec_and_config(seed, beta, steps=30, checkpoint_every=10):
    try:
        parse_gin([], [*PARAMS, f"train.seed = {seed}", f"beta_vae.beta = {beta}", f"train.steps = {steps}",
                       f"train.checkpoint_every = {checkpoint_every}"])
        return resolve_run_spec(), operative_config()
    finally:
        gin.clear_config()


def weights(run_dir):
    return torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]


def files(run_dir):
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


def test_each_run_of_a_stack_ends_as_it_does_alone(tiny_dsprites, tmp_path, float64):
    specs, configs = zip(*[spec_and_config(seed, beta) for seed, beta in RUNS])
    stacked = [tmp_path / "stacked" / f"run{k}" for k in range(len(RUNS))]
    statuses = train_stack(stacked, specs, torch.device("cpu"), configs, progress=False, log=lambda *_: None)
    assert list(statuses.values()) == ["done"] * 3
    for k, (spec, config) in enumerate(zip(specs, configs)):
        alone = tmp_path / "alone" / f"run{k}"
        assert train_run(alone, spec, torch.device("cpu"), config, progress=False, log=lambda *_: None) == "done"
        assert files(stacked[k]) == files(alone)
        for name, value in weights(alone).items():
            torch.testing.assert_close(weights(stacked[k])[name], value, rtol=1e-7, atol=1e-9, msg=name)
        stacked_log, alone_log = read_log(stacked[k]), read_log(alone)
        assert [row["step"] for row in stacked_log] == [row["step"] for row in alone_log]
        for row_s, row_a in zip(stacked_log, alone_log):
            assert row_s.keys() == row_a.keys()
            assert float(row_s["loss"]) == pytest.approx(float(row_a["loss"]), rel=1e-7)
        results_s, results_a = (training_scalars(run_dir) for run_dir in (stacked[k], alone))
        assert results_s.keys() == results_a.keys() and "loss" in results_s
        assert all(results_s[key] == pytest.approx(results_a[key], rel=1e-7) for key in results_a)
        record = json.loads((stacked[k] / "run.json").read_text())
        assert json.loads((alone / "run.json").read_text())["stacked"] is False
        assert record["status"] == "done" and record["stacked"] == 3 and record["hyperparameters"]["beta"] == RUNS[k][1]
        assert (stacked[k] / "model" / "config.gin").read_text() == (alone / "model" / "config.gin").read_text()
    # finished runs are left alone when the stack is run again
    again = train_stack(stacked, specs, torch.device("cpu"), configs, progress=False, log=lambda *_: None)
    assert list(again.values()) == ["skipped"] * 3


def test_a_diverging_run_fails_alone_and_the_others_finish(tiny_dsprites, tmp_path, float64, monkeypatch):
    from dlbench.methods.beta_vae import BetaVAE

    original = BetaVAE.objective

    def nan_for_beta_4_from_step_12(self, outputs, step=0, draws=None):
        loss, scalars = original(self, outputs, step, draws)
        return loss + torch.where((self.beta == 4.0) & (torch.as_tensor(step) >= 11), float("nan"), 0.0), scalars

    monkeypatch.setattr(BetaVAE, "objective", nan_for_beta_4_from_step_12)
    specs, configs = zip(*[spec_and_config(seed, beta) for seed, beta in RUNS])
    run_dirs = [tmp_path / f"run{k}" for k in range(len(RUNS))]
    statuses = train_stack(run_dirs, specs, torch.device("cpu"), configs, progress=False, log=lambda *_: None)
    assert [statuses[d] for d in run_dirs] == ["done", "failed", "done"]
    failed = json.loads((run_dirs[1] / "run.json").read_text())
    assert failed["status"] == "failed" and failed["failed_step"] == 12 and "non-finite at step 12" in failed["error"]
    assert not (run_dirs[1] / "model" / "checkpoint.pt").exists()
    assert [row["step"] for row in read_log(run_dirs[1])] == ["5", "10"]  # nothing logged after it failed
    monkeypatch.setattr(BetaVAE, "objective", original)
    alone = tmp_path / "alone"
    train_run(alone, specs[2], torch.device("cpu"), configs[2], progress=False, log=lambda *_: None)
    for name, value in weights(alone).items():
        torch.testing.assert_close(weights(run_dirs[2])[name], value, rtol=1e-7, atol=1e-9, msg=name)


STACK_SCRIPT = """
import sys, torch
from tests.test_stacked_run import RUNS, spec_and_config
from dlbench.train.stacked_run import train_stack
specs, configs = zip(*[spec_and_config(seed, beta, steps=40, checkpoint_every=5) for seed, beta in RUNS])
train_stack([f"{sys.argv[1]}/run{k}" for k in range(len(RUNS))], specs, torch.device("cpu"), configs, progress=False)
"""


def run_stack_script(root, tiny_dsprites):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_dsprites)}
    return subprocess.Popen([sys.executable, "-c", STACK_SCRIPT, str(root)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_a_stack_killed_and_resumed_equals_a_stack_never_interrupted(tiny_dsprites, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    assert run_stack_script(straight, tiny_dsprites).wait(timeout=300) == 0
    process = run_stack_script(killed, tiny_dsprites)
    checkpoint = killed / "run2" / "model" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoint.is_dir() and list(checkpoint.glob("step_*.pt"))) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere after the first checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert run_stack_script(killed, tiny_dsprites).wait(timeout=300) == 0
    for k in range(len(RUNS)):
        record = json.loads((killed / f"run{k}" / "run.json").read_text())
        sessions = record["sessions"]
        assert record["status"] == "done" and [s["ended"] for s in sessions] == ["lost", "done"], sessions
        assert 0 < sessions[0]["to_step"] == sessions[1]["from_step"], sessions  # lost at its last checkpoint
        a, b = weights(straight / f"run{k}"), weights(killed / f"run{k}")
        assert all(torch.equal(a[name], b[name]) for name in a), k  # bit for bit
        def scalars(root):  # the log without its timings
            return [{key: v for key, v in row.items() if key != "images_per_second"} for row in read_log(root / f"run{k}")]

        assert scalars(straight) == scalars(killed)


def stop_between_checkpoints(root, specs, configs, monkeypatch):
    """The run folders of a stack stopped while it wrote its checkpoints of step 15: what a kill at
    that moment leaves, runs 0 and 1 at step 15 and run 2 at step 10."""
    import dlbench.train.stacked_run as stacked_run

    stopped = [root / f"run{k}" for k in range(len(RUNS))]
    save = stacked_run.checkpoints.save_checkpoint

    def stop_before_the_last_runs_step_15(run_dir, state):
        if run_dir == stopped[2] and state["step"] == 15:
            raise KeyboardInterrupt
        save(run_dir, state)

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(stacked_run.checkpoints, "save_checkpoint", stop_before_the_last_runs_step_15)
        train_stack(stopped, specs, torch.device("cpu"), configs, progress=False, log=lambda *_: None)
    return stopped


def resume_and_stop_at_once(stopped, specs, configs, monkeypatch):
    """What resuming the stack says before it trains (it is stopped there)."""
    import dlbench.train.stacked_run as stacked_run

    def stop_at_once(*_):
        raise KeyboardInterrupt

    said = []
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(stacked_run, "_train_group", stop_at_once)
        train_stack(stopped, specs, torch.device("cpu"), configs, progress=False, log=said.append)
    return said


def test_a_stack_stopped_between_its_runs_checkpoints_resumes_as_the_stack_it_was(tiny_dsprites, tmp_path,
                                                                                   monkeypatch):
    # a SIGKILL while the stack writes one round of checkpoints leaves its runs at different steps;
    # runs trained in another stack compute in another order, so the resumed stack must be the same
    specs, configs = zip(*[spec_and_config(seed, beta, steps=20, checkpoint_every=5) for seed, beta in RUNS])
    quiet = dict(progress=False, log=lambda *_: None)
    straight = [tmp_path / "straight" / f"run{k}" for k in range(len(RUNS))]
    assert set(train_stack(straight, specs, torch.device("cpu"), configs, **quiet).values()) == {"done"}

    stopped = stop_between_checkpoints(tmp_path / "stopped", specs, configs, monkeypatch)
    for run_dir in stopped:  # a Ctrl-C's session names it, as a first signal's does
        assert json.loads((run_dir / "run.json").read_text())["sessions"][-1]["ended"] == "interrupted by SIGINT"
    said = resume_and_stop_at_once(stopped, specs, configs, monkeypatch)
    assert sum("back to step 10" in line for line in said) == 2, said
    for run_dir in stopped[:2]:
        # the checkpoint of step 15 held the trajectory left: a later resume had taken it
        assert max(path.name for path in rundir.checkpoint_paths(run_dir)) == "step_000000010.pt"
        assert json.loads((run_dir / "run.json").read_text())["step"] == 10
    assert set(train_stack(stopped, specs, torch.device("cpu"), configs, **quiet).values()) == {"done"}
    for a, b in zip(straight, stopped):
        assert all(torch.equal(weights(a)[name], weights(b)[name]) for name in weights(a)), b  # bit for bit
        assert [row["loss"] for row in read_log(a)] == [row["loss"] for row in read_log(b)]


def test_runs_of_two_stacks_stopped_at_different_steps_resume_in_one_without_going_back(tiny_dsprites, tmp_path,
                                                                                          monkeypatch):
    # a rerun with a larger --stack joined them: the runs ahead had gone back to the step of those
    # behind, their newer checkpoint deleted, although no stack of the three had ever been
    import dlbench.train.stacked_run as stacked_run

    specs, configs = zip(*[spec_and_config(seed, beta, steps=20, checkpoint_every=5) for seed, beta in RUNS])
    run_dirs = [tmp_path / f"run{k}" for k in range(len(RUNS))]
    save = stacked_run.checkpoints.save_checkpoint
    for members, stop_at in ((slice(0, 2), 15), (slice(2, 3), 10)):
        def stop_after(run_dir, state, last=run_dirs[members][-1], stop_at=stop_at):
            save(run_dir, state)
            if run_dir == last and state["step"] == stop_at:
                raise KeyboardInterrupt

        with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
            patched.setattr(stacked_run.checkpoints, "save_checkpoint", stop_after)
            train_stack(run_dirs[members], specs[members], torch.device("cpu"), configs[members], progress=False,
                        log=lambda *_: None)

    said = resume_and_stop_at_once(run_dirs, specs, configs, monkeypatch)
    assert not any("back to step" in line for line in said), said
    assert any("not one stack before: they train in groups by step" in line for line in said), said
    for run_dir in run_dirs[:2]:
        assert max(path.name for path in rundir.checkpoint_paths(run_dir)) == "step_000000015.pt"
    assert set(train_stack(run_dirs, specs, torch.device("cpu"), configs, progress=False,
                           log=lambda *_: None).values()) == {"done"}
    for run_dir, resumed_at in zip(run_dirs, (15, 15, 10)):
        assert json.loads((run_dir / "run.json").read_text())["sessions"][-1]["from_step"] == resumed_at


def test_each_session_records_whether_the_run_trained_stacked(tiny_dsprites, tmp_path, monkeypatch):
    # run.json had kept only the last session's `stacked`: a run stacked for its first steps and
    # finished alone read as never stacked
    import dlbench.train.stacked_run as stacked_run
    from dlbench.errors import Interrupted

    specs, configs = zip(*[spec_and_config(seed, beta, steps=20, checkpoint_every=5) for seed, beta in RUNS[:2]])
    run_dirs = [tmp_path / f"run{k}" for k in range(2)]
    save = stacked_run.checkpoints.save_checkpoint

    def sigterm_at_step_10(run_dir, state):
        save(run_dir, state)
        if state["step"] == 10 and run_dir == run_dirs[1]:
            os.kill(os.getpid(), signal.SIGTERM)  # the stack stops after its next step, checkpointed

    with monkeypatch.context() as patched, pytest.raises(Interrupted):
        patched.setattr(stacked_run.checkpoints, "save_checkpoint", sigterm_at_step_10)
        train_stack(run_dirs, specs, torch.device("cpu"), configs, progress=False, log=lambda *_: None)
    assert train_run(run_dirs[0], specs[0], torch.device("cpu"), configs[0], progress=False,
                     log=lambda *_: None) == "done"
    # the other resumed by its stack, the first done: it trains on by itself in the stack's batched
    # kernels, which compute in another order than a run alone's, so it records a stack of 1, not false
    assert train_stack(run_dirs, specs, torch.device("cpu"), configs, progress=False,
                       log=lambda *_: None)[run_dirs[1]] == "done"
    for run_dir, alone in zip(run_dirs, (False, 1)):
        record = json.loads((run_dir / "run.json").read_text())
        assert [s["stacked"] for s in record["sessions"]] == [2, alone] and record["stacked"] is alone


def test_a_stack_whose_run_ahead_has_another_models_checkpoint_of_the_step_behind_trains_in_groups(
        tiny_dsprites, tmp_path, monkeypatch):
    # going back to it would have trained the run on from another model's weights
    from dlbench.train import checkpoints

    specs, configs = zip(*[spec_and_config(seed, beta, steps=20, checkpoint_every=5) for seed, beta in RUNS])
    stopped = stop_between_checkpoints(tmp_path, specs, configs, monkeypatch)
    behind = rundir.checkpoint_path(stopped[0], 10)
    state = torch.load(behind, weights_only=True)
    state["model_config"]["prior"]["scale"] = 2.0  # a run of the same shapes and another prior
    checkpoints.save_atomic(state, behind)
    said = resume_and_stop_at_once(stopped, specs, configs, monkeypatch)
    assert not any("back to step" in line for line in said), said
    assert any("they train in groups by step" in line for line in said), said
