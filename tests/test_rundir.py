"""Atomic writes: a crash while writing leaves neither a partial file nor a temporary one. And the
lifecycle: what prepare decides for a run directory, and what the marks record in run.json."""

import json
import os

import pytest

from dlbench import rundir
from dlbench.errors import UserError


def test_write_json_round_trips_numpy_and_torch_scalars(tmp_path):
    import numpy as np
    import torch

    rundir.write_json(tmp_path / "a" / "results.json", {"x": np.float32(1.5), "n": np.int64(3),
                                                        "t": torch.tensor(2.0), "v": np.arange(2)})
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == {"x": 1.5, "n": 3, "t": 2.0, "v": [0, 1]}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    rundir.write_json(path, {"old": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        rundir.write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_update_run_merges_fields(tmp_path):
    rundir.update_run(tmp_path, status="running", step=0)
    rundir.update_run(tmp_path, step=10)
    assert rundir.read_run(tmp_path) == {"status": "running", "step": 10}


IDENTITY = {"method": "beta_vae", "dataset": "dsprites", "seed": 0, "hyperparameters": {"beta": 4.0},
            "train": {"steps": 20, "checkpoint_every": 10}, "model": {"latent_dim": 4}}


def test_prepare_decides_fresh_restart_resume_and_skip(tmp_path):
    Prepare, Status = rundir.Prepare, rundir.Status
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    rundir.atomic_write_text(rundir.claim_path(run_dir), "{}")  # the claim of the preparing process
    assert rundir.prepare(run_dir, IDENTITY, overwrite=False) is Prepare.FRESH

    rundir.update_run(run_dir, **IDENTITY, status=Status.RUNNING)
    assert rundir.prepare(run_dir, IDENTITY, overwrite=False) is Prepare.RESTART  # no checkpoint to resume from
    rundir.atomic_write_bytes(rundir.checkpoint_path(run_dir, 10), b"")
    assert rundir.prepare(run_dir, IDENTITY, overwrite=False) is Prepare.RESUME
    # how often to log and checkpoint may change between sessions of a run
    more_often = {**IDENTITY, "train": {**IDENTITY["train"], "checkpoint_every": 5}}
    assert rundir.prepare(run_dir, more_often, overwrite=False) is Prepare.RESUME
    assert rundir.prepare(run_dir, IDENTITY, overwrite=True) is Prepare.RESTART

    for ended in Status.ENDED:
        rundir.update_run(run_dir, status=ended)
        assert rundir.prepare(run_dir, IDENTITY, overwrite=False) is Prepare.SKIP
    for ended, said in ((Status.DONE, "a finished"), (Status.FAILED, "a failed")):  # a failed one had been "finished"
        rundir.update_run(run_dir, status=ended)
        differs = rf"{said} run with a different config \(beta_vae.beta: 4.0 -> 8.0\)"
        with pytest.raises(UserError, match=differs) as err:
            rundir.prepare(run_dir, {**IDENTITY, "hyperparameters": {"beta": 8.0}}, overwrite=False)
        # its own config would train nothing more: a failed run is left alone
        assert ("alone uses its own config" in str(err.value)) is (ended == Status.DONE), err.value

    rundir.clear(run_dir)
    assert [p.name for p in run_dir.iterdir()] == [rundir.CLAIM_JSON]  # all but the claim


def test_prepare_refuses_a_folder_that_is_not_a_run_but_overwrite_replaces_a_damaged_run(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="is not empty and is not a run"):
        rundir.prepare(tmp_path, IDENTITY, overwrite=True)
    rundir.run_json_path(tmp_path).write_text("{trunc")
    assert rundir.prepare(tmp_path, IDENTITY, overwrite=True) is rundir.Prepare.RESTART


def test_a_start_cut_short_before_run_json_is_started_again_but_a_users_file_is_refused(tmp_path):
    # a SIGKILL between writing model/config.gin and run.json had left a folder every rerun refused
    # as "not a run"
    run_dir = tmp_path / "run"
    rundir.atomic_write_text(rundir.config_gin_path(run_dir), "train.steps = 20\n")
    (rundir.model_dir(run_dir) / ".config.gin.k2j3.tmp").write_text("train.st")
    (run_dir / ".run.json.x81a.tmp").write_text("{")
    rundir.atomic_write_text(rundir.claim_path(run_dir), "{}")
    assert rundir.prepare(run_dir, IDENTITY, overwrite=False) is rundir.Prepare.RESTART
    for mine in (run_dir / "notes.txt", rundir.model_dir(run_dir) / "weights.pt", run_dir / ".notes.tmp"):
        mine.write_text("mine")
        with pytest.raises(UserError, match="is not empty and is not a run"):
            rundir.prepare(run_dir, IDENTITY, overwrite=False)
        mine.unlink()
    rundir.config_gin_path(run_dir).unlink()
    rundir.config_gin_path(run_dir).mkdir()  # a folder of that name is not the config training writes
    with pytest.raises(UserError, match="is not empty and is not a run"):
        rundir.prepare(run_dir, IDENTITY, overwrite=False)


def test_a_restart_from_step_0_refuses_to_clear_a_folder_holding_another_run(tmp_path):
    # an unfinished run with no checkpoint is cleared too, as --overwrite clears one
    rundir.update_run(tmp_path, **IDENTITY, status=rundir.Status.RUNNING)
    rundir.update_run(tmp_path / "copied", **IDENTITY, status=rundir.Status.DONE)
    with pytest.raises(UserError, match=f"holds another run, '{tmp_path / 'copied'}'"):
        rundir.prepare(tmp_path, IDENTITY, overwrite=False)
    with pytest.raises(UserError, match="is inside the run directory"):
        rundir.prepare(tmp_path / "copied" / "deeper", IDENTITY, overwrite=False)


def test_a_different_config_names_what_the_run_is_first_and_its_seed_once():
    """Sorted by name, a run of another method, dataset and seed was described by three of its
    settings 'and 4 more', the seed among them twice (the identity holds it as seed and train.seed)."""
    record = {**IDENTITY, "train": {**IDENTITY["train"], "seed": 0}}
    other = {"method": "factor_vae", "dataset": "shapes3d", "seed": 1, "hyperparameters": {"gamma": 10.0},
             "train": {"steps": 30, "checkpoint_every": 10, "seed": 1}, "model": {"latent_dim": 6}}
    differences = rundir.config_differences(record, other)
    assert differences[:3] == ["method: 'beta_vae' -> 'factor_vae'", "dataset: 'dsprites' -> 'shapes3d'",
                               "train.seed: 0 -> 1"]
    # beta_vae.beta, factor_vae.gamma, model.latent_dim and train.steps
    assert differences[3:] == ["and 4 more"]


def test_a_run_json_without_a_config_is_said_to_be_damaged(tmp_path):
    """run.json '{}' had been described as a run of another config, each binding 'None -> ...'."""
    from dlbench.errors import CorruptFile

    rundir.update_run(tmp_path, status="running")
    with pytest.raises(CorruptFile, match=r"run.json' is unreadable \(it records no run's config.*--overwrite"):
        rundir.prepare(tmp_path, IDENTITY, overwrite=False)


def test_a_session_that_ended_without_a_word_is_listed_as_lost_at_its_last_checkpoint(tmp_path):
    # a session killed with SIGKILL records nothing: its steps had been missing from `sessions`
    rundir.mark_running(tmp_path, 100.0, method="beta_vae", step=0)
    first = rundir.new_session(from_step=0)
    rundir.mark_session_started(tmp_path, first)
    assert rundir.read_run(tmp_path)["sessions"] == [{**first, "to_step": None, "ended": None}]  # open while it trains
    rundir.mark_checkpoint(tmp_path, 10)
    rundir.mark_checkpoint(tmp_path, 20)  # ... then killed: nothing more is written

    second = {**rundir.new_session(from_step=20), "pid": first["pid"] + 1}  # the process that resumes it
    rundir.mark_session_started(tmp_path, second)
    rundir.mark_checkpoint(tmp_path, 30)
    rundir.mark_interrupted(tmp_path, second, 30, "SIGTERM")
    third = rundir.new_session(from_step=30)
    rundir.mark_session_started(tmp_path, third)
    rundir.mark_done(tmp_path, third, 40, 100.0)
    assert [(s["pid"], s["from_step"], s["to_step"], s["ended"]) for s in rundir.read_run(tmp_path)["sessions"]] == [
        (first["pid"], 0, 20, "lost"), (first["pid"] + 1, 20, 30, "interrupted by SIGTERM"),
        (first["pid"], 30, 40, "done")]


def test_the_marks_record_the_lifecycle_in_run_json(tmp_path):
    Status = rundir.Status
    rundir.mark_running(tmp_path, 100.0, method="beta_vae", step=0)
    record = rundir.read_run(tmp_path)
    assert record["status"] == Status.RUNNING and record["started"] == 100.0 and record["method"] == "beta_vae"
    session = rundir.new_session(from_step=0)
    rundir.mark_checkpoint(tmp_path, 10)
    rundir.mark_interrupted(tmp_path, session, 10, "SIGTERM")
    record = rundir.read_run(tmp_path)
    assert (record["status"], record["step"], record["interrupted_by"]) == (Status.INTERRUPTED, 10, "SIGTERM")

    rundir.mark_running(tmp_path, 200.0, step=10)  # resumed: the run keeps its first start
    assert rundir.read_run(tmp_path)["started"] == 100.0
    rundir.mark_done(tmp_path, rundir.new_session(from_step=10), 20, 200.0)
    record = rundir.read_run(tmp_path)
    assert record["status"] == Status.DONE and record["step"] == 20 and record["error"] is None
    assert [(s["from_step"], s["to_step"], s["ended"]) for s in record["sessions"]] == [
        (0, 10, "interrupted by SIGTERM"), (10, 20, "done")]
    assert rundir.require_finished_run(tmp_path) == record

    rundir.mark_stopped(tmp_path, Status.FAILED, "RuntimeError: boom")
    assert rundir.read_run(tmp_path)["error"] == "RuntimeError: boom"
    with pytest.raises(UserError, match=r"failed \(RuntimeError: boom\); there is no model to use"):
        rundir.require_finished_run(tmp_path)


@pytest.mark.parametrize("status, overwrite, other_config, kept", [
    ("running", False, False, True),   # killed before its first checkpoint: trained again from step 0
    ("failed", True, False, True),     # --retry_failed, or --overwrite with its own config
    ("failed", True, True, False),     # replaced by another config's run
    ("done", True, False, False),      # a finished run trained again on purpose starts a new history
])
def test_a_run_trained_again_in_its_folder_keeps_its_sessions_where_it_is_the_same_run(tmp_path, status, overwrite,
                                                                                       other_config, kept):
    from dlbench.train.run import earlier_sessions

    sessions = [{"host": "h", "pid": 1, "from_step": 0, "stacked": False, "to_step": 0, "ended": "failed"}]
    rundir.update_run(tmp_path, **IDENTITY, status=status, sessions=sessions)
    identity = {**IDENTITY, "hyperparameters": {"beta": 8.0}} if other_config else IDENTITY
    assert earlier_sessions(tmp_path, identity, overwrite) == ({"sessions": sessions} if kept else {})
    assert earlier_sessions(tmp_path / "nothing", identity, overwrite) == {}  # no run.json: a start cut short
