"""Hardening (issue 12) of dlb_train, dlb_postprocess, dlb_evaluate and dlb_study, driven as a
user does: each command in its own process (tests/commands.py), filesystem faults injected with
tests/faults.py. Every mistake and fault must give exit status 2 (or the documented code),
exactly one line on stderr naming the problem, no traceback, and leave the disk as it was (or
the run marked with its reason). dlb_aggregate and dlb_data have their own modules
(test_hardening_aggregate.py, test_hardening_data.py).

The trained runs are shared: the session's tiny_trained_run, and a few made here once per module
(a run stopped by a full disk at its first checkpoint; one stopped by a full disk when writing
its last checkpoint, which leaves two periodic ones; that one resumed, as is and with its
newest checkpoint damaged; a run evaluated with the default mig). Each test copies the run it
changes."""

import argparse
import glob
import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from tests.commands import REPO, assert_one_line_error, run_command, run_in_process, tree
from tests.conftest import tiny_params

pytestmark = pytest.mark.slow


def gin_args(*extra_params):
    """--gin_param flags of TINY_PARAMS, extra_params replacing those of the same names."""
    return [arg for p in tiny_params(*extra_params) for arg in ("--gin_param", p)]


def train_args(run_dir, *extra_params, progress=False, extra_args=()):
    args = ["--run_dir", run_dir, "--device", "cpu", *gin_args(*extra_params), *extra_args]
    return args if progress else [*args, "--no_progress"]


def train(run_dir, *extra_params, data_root, progress=False, fault=None, cwd=None, extra_args=(), terminal=False):
    args = train_args(run_dir, *extra_params, progress=progress, extra_args=extra_args)
    return run_command("dlb_train", *args, data_root=data_root, fault=fault, cwd=cwd, terminal=terminal)


def fault(kind, folder, rest="*", after=None):
    """A tests/faults.py spec: writes, creates and mkdirs at folder/rest raise OSError(kind)."""
    spec = f"{kind}:{glob.escape(str(Path(folder).absolute()))}/{rest}"
    return spec if after is None else f"{spec}:{after}"


def copy_run(run_dir, tmp_path, name="run"):
    return Path(shutil.copytree(run_dir, tmp_path / name))


def truncate(path):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])


def unsafe_pickle(path, **contents):
    """A torch file that torch.load(weights_only=True) refuses (an arbitrary Python object in it),
    the kind of file whose torch message advises weights_only=False."""
    torch.save({**contents, "payload": argparse.Namespace(anything=1)}, path)


def files_under(path):
    """Every file (not folder) under path, relative: folders left empty by a refused write are harmless."""
    path = Path(path)
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()) if path.exists() else []


def snapshot(path):
    """Every file under path with its bytes: for 'left untouched' (claim.json comes and goes)."""
    path = Path(path)
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def read_run(run_dir):
    return json.loads((Path(run_dir) / "run.json").read_text())


def no_temporary_files(path):
    return [name for name in files_under(path) if name.endswith(".tmp") or "/." in "/" + name]


CHECKPOINTS = Path("model") / "checkpoints"


# --- shared runs ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_disk_at_checkpoint(tiny_data_root, tmp_path_factory):
    """dlb_train with the disk full for the periodic checkpoints (the first comes at step 10)."""
    run_dir = tmp_path_factory.mktemp("full_disk_checkpoint") / "run"
    result = train(run_dir, data_root=tiny_data_root, fault=fault("ENOSPC", run_dir / CHECKPOINTS))
    return result, run_dir


@pytest.fixture(scope="module")
def two_checkpoints(tiny_data_root, tmp_path_factory):
    """dlb_train of 30 steps with the disk full for the checkpoint of the last step (written before
    the final weights): the run stops interrupted with the periodic checkpoints of steps 10 and 20 kept."""
    run_dir = tmp_path_factory.mktemp("full_disk_final") / "run"
    result = train(run_dir, "train.steps = 30", data_root=tiny_data_root,
                   fault=fault("ENOSPC", run_dir / CHECKPOINTS, ".step_000000030.pt*"))
    return result, run_dir


@pytest.fixture(scope="module")
def evaluated_run(tiny_trained_run, tiny_data_root, tmp_path_factory):
    """A copy of the tiny run, postprocessed and evaluated with the default mig."""
    run_dir = copy_run(tiny_trained_run, tmp_path_factory.mktemp("evaluated"))
    result = run_in_process("dlb_evaluate", run_dir, "--metrics", "mig", "--device", "cpu", data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    assert (run_dir / "metrics" / "mean" / "mig" / "results.json").is_file()
    return run_dir


@pytest.fixture(scope="module")
def resumed(two_checkpoints, tiny_data_root, tmp_path_factory):
    """`dlb_train --run_dir RUN` alone (its standard error a terminal: the bar drawn) on a copy of
    two_checkpoints; returns the result, the run and its config.gin from before."""
    run_dir = copy_run(two_checkpoints[1], tmp_path_factory.mktemp("resumed"))
    config = (run_dir / "model" / "config.gin").read_text()
    return run_command("dlb_train", "--run_dir", run_dir, data_root=tiny_data_root, terminal=True), run_dir, config


def bar_frames(stderr):
    """The successive states of a tqdm bar written to stderr."""
    return [frame.strip() for frame in stderr.replace("\n", "\r").split("\r") if frame.strip()]


# --- 1. filesystem faults -------------------------------------------------------------------


def test_train_run_dir_under_proc(tiny_data_root, tmp_path):
    where = "/proc/dlbench_test/run"
    result = train(where, data_root=tiny_data_root, cwd=tmp_path)
    line = assert_one_line_error(result, "dlb_train: error:", "/proc/")
    assert "choose" in line or "check the path" in line
    assert not Path(where).exists() and tree(tmp_path) == []


def test_train_run_dir_under_a_file_is_found_before_the_dataset(tmp_path):
    """The output location is checked before the dataset loads: with a dataset that is missing,
    the run directory's problem is the one reported."""
    (tmp_path / "afile").write_text("a file")
    (tmp_path / "empty_data").mkdir()
    before = tree(tmp_path)
    result = train(tmp_path / "afile" / "run", "dataset.name = 'shapes3d'", data_root=tmp_path / "empty_data",
                   cwd=tmp_path)
    line = assert_one_line_error(result, str(tmp_path / "afile" / "run"), "not a folder")
    assert "3dshapes" not in line and "shapes3d" not in line
    assert tree(tmp_path) == before


def test_train_run_dir_that_is_a_file(tiny_data_root, tmp_path):
    (tmp_path / "afile").write_text("a file")
    result = train(tmp_path / "afile", data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "afile"), "not a directory", "--run_dir")
    assert tree(tmp_path) == ["afile"] and (tmp_path / "afile").read_text() == "a file"


def test_a_run_inside_another_run_is_refused_and_overwrite_spares_a_run_copied_inside(tiny_trained_run, tiny_data_root,
                                                                                        tmp_path):
    # a run trained inside another's folder passed for part of it (an aggregation counted both), and
    # the outer run's --overwrite removed it without a word
    outer = copy_run(tiny_trained_run, tmp_path, "outer")
    before = snapshot(outer)
    result = run_in_process("dlb_train", *train_args(outer / "inner"), data_root=tiny_data_root)
    assert_one_line_error(result, f"'{outer / 'inner'}' is inside the run directory '{outer}'", "outside it")
    assert snapshot(outer) == before

    copy_run(tiny_trained_run, outer, "copied")  # by hand
    before = snapshot(outer)
    result = run_in_process("dlb_train", *train_args(outer, extra_args=["--overwrite"]), data_root=tiny_data_root)
    assert_one_line_error(result, f"'{outer}' holds another run, '{outer / 'copied'}'", "move that run out first")
    assert snapshot(outer) == before


def test_train_read_only_run_folder(tiny_data_root, tmp_path):
    run_dir = tmp_path / "disk" / "run"
    result = train(run_dir, data_root=tiny_data_root, cwd=tmp_path, fault=fault("EROFS", tmp_path / "disk", "*"))
    assert_one_line_error(result, str(run_dir), "Read-only file system", "writable")
    assert tree(tmp_path) == []


def test_train_overwrite_on_a_failing_disk_leaves_the_run_whole(tiny_trained_run, tiny_data_root, tmp_path):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    before = snapshot(run_dir)
    result = train(run_dir, data_root=tiny_data_root, extra_args=["--overwrite"], fault=fault("EIO", run_dir))
    assert_one_line_error(result, str(run_dir), "input/output error")
    assert snapshot(run_dir) == before


def test_train_full_disk_at_a_periodic_checkpoint_marks_the_run_interrupted(full_disk_at_checkpoint):
    result, run_dir = full_disk_at_checkpoint
    line = assert_one_line_error(result, "No space left on device", "free some space", str(run_dir / CHECKPOINTS))
    record = read_run(run_dir)
    assert record["status"] == "interrupted"
    assert "No space left on device" in record["error"] and str(run_dir / CHECKPOINTS) in record["error"]
    assert record["error"] in line
    assert not (run_dir / "model" / "checkpoint.pt").exists()
    assert files_under(run_dir / CHECKPOINTS) == [] and no_temporary_files(run_dir) == []


def test_train_full_disk_for_the_last_checkpoint_keeps_the_others(two_checkpoints):
    result, run_dir = two_checkpoints
    assert_one_line_error(result, "No space left on device", str(run_dir / "model"))
    record = read_run(run_dir)
    assert record["status"] == "interrupted" and "No space left on device" in record["error"]
    assert files_under(run_dir / CHECKPOINTS) == ["step_000000010.pt", "step_000000020.pt"]
    assert not (run_dir / "model" / "checkpoint.pt").exists() and no_temporary_files(run_dir) == []


@pytest.mark.parametrize("which, written", [("full_disk_at_checkpoint", "step_000000010.pt"),
                                            ("two_checkpoints", "step_000000030.pt")])
def test_a_full_disk_line_names_the_file_being_written(request, which, written):
    result, run_dir = request.getfixturevalue(which)
    line = assert_one_line_error(result, "No space left on device")
    assert ".tmp" not in line and f"{written}'" in line, line


def test_a_fault_while_finishing_loses_no_training(tiny_data_root, tmp_path):
    # the disk fills as the final weights are written: the checkpoint of the last step is kept, and the
    # run finishes from it, as never interrupted (it had started again from its last periodic checkpoint)
    run_dir = tmp_path / "run"
    result = train(run_dir, data_root=tiny_data_root, fault=fault("ENOSPC", run_dir / "model", ".checkpoint.pt*"))
    assert_one_line_error(result, "No space left on device", "checkpoint.pt'")
    assert files_under(run_dir / CHECKPOINTS) == ["step_000000010.pt", "step_000000020.pt"]
    resumed = run_command("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root)
    assert resumed.returncode == 0 and "resuming from step 20" in resumed.stdout, resumed.stdout
    assert read_run(run_dir)["status"] == "done" and files_under(run_dir / CHECKPOINTS) == []
    assert train(tmp_path / "alone", data_root=tiny_data_root).returncode == 0  # the same, never interrupted
    final = torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]
    alone = torch.load(tmp_path / "alone" / "model" / "checkpoint.pt", weights_only=True)["model"]
    assert final.keys() == alone.keys() and all(torch.equal(final[k], alone[k]) for k in final)


def test_a_full_disk_without_a_path_is_said_with_the_run_directory(tiny_dsprites, tmp_path, monkeypatch, capsys):
    # torch.save's own error names no file: the line had said "cannot use: No space left on device"
    import errno

    from dlbench.cli import train as train_cli
    from dlbench.train import run

    def full(*_, **__):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(run, "write_samples", full)
    run_dir = tmp_path / "run"
    code = train_cli.main(["--run_dir", str(run_dir), "--device", "cpu", "--no_progress", *gin_args()])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot use '{run_dir}': No space left on device" in err, err
    assert read_run(run_dir)["status"] == "interrupted"


def test_train_full_disk_for_run_json_itself(tiny_data_root, tmp_path):
    """The disk fills after the first checkpoint, so even run.json cannot record why the run
    stopped: the command says so, and lets go of the run, so the next dlb_train resumes it."""
    run_dir = tmp_path / "run"
    # an atomic write opens its file three times; the first two run.json writes (status running, the
    # session listed) succeed
    result = train(run_dir, data_root=tiny_data_root, fault=fault("ENOSPC", run_dir, ".run.json*", after=6))
    assert_one_line_error(result, "No space left on device", str(run_dir))
    assert "could not mark the run interrupted" in result.stdout
    assert read_run(run_dir)["status"] == "running"
    assert files_under(run_dir / CHECKPOINTS) == ["step_000000010.pt"]
    assert not (run_dir / "claim.json").exists() and no_temporary_files(run_dir) == []


def test_evaluate_full_disk_keeps_the_finished_metric_and_writes_no_partial_result(evaluated_run, tiny_data_root,
                                                                                      tmp_path):
    run_dir = copy_run(evaluated_run, tmp_path)
    before = files_under(run_dir)
    result = run_command("dlb_evaluate", run_dir, "--metrics", "mig,active_units", "--metric_param",
                         "mig.num_bins=10", "--device", "cpu", data_root=tiny_data_root,
                         fault=fault("ENOSPC", run_dir / "metrics" / "mean" / "active_units"))
    assert_one_line_error(result, "No space left on device", "active_units", "free some space")
    assert "[2/2] computing active_units" in result.stdout
    after = files_under(run_dir)
    assert sorted(set(after) - set(before)) == ["metrics/mean/mig[num_bins=10]/results.json"]
    assert not (run_dir / "metrics" / "mean" / "active_units" / "results.json").exists()
    assert no_temporary_files(run_dir) == []


def test_evaluate_on_a_read_only_run(evaluated_run, tiny_data_root, tmp_path):
    run_dir = copy_run(evaluated_run, tmp_path)
    before = snapshot(run_dir)
    result = run_command("dlb_evaluate", run_dir, "--metrics", "active_units", "--device", "cpu",
                         data_root=tiny_data_root, fault=fault("EROFS", run_dir))
    assert_one_line_error(result, str(run_dir), "Read-only file system", "writable")
    assert snapshot(run_dir) == before


def test_evaluate_into_a_folder_it_may_not_write_computes_nothing(tiny_trained_run, tiny_data_root, tmp_path):
    # the metric had been computed (minutes on a whole dataset) before its result met the folder
    run_dir = copy_run(tiny_trained_run, tmp_path)
    (run_dir / "metrics" / "mean").mkdir(parents=True)
    before = snapshot(run_dir)
    result = run_command("dlb_evaluate", run_dir, "--metrics", "mig", "--metric_param", "mig.num_train=200",
                         "--device", "cpu", data_root=tiny_data_root, fault=fault("EACCES", run_dir, "metrics/mean*"))
    assert_one_line_error(result, f"cannot use '{run_dir / 'metrics' / 'mean'}': Permission denied; choose a folder "
                                  f"you may write to")
    assert "computing" not in result.stdout and snapshot(run_dir) == before


def test_postprocess_full_disk_writes_no_representation(tiny_trained_run, tiny_data_root, tmp_path):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    before = files_under(run_dir)
    result = run_command("dlb_postprocess", run_dir, data_root=tiny_data_root,
                         fault=fault("ENOSPC", run_dir / "postprocessed" / "mean", ".representation.pt*"))
    assert_one_line_error(result, "No space left on device", str(run_dir / "postprocessed" / "mean"))
    assert files_under(run_dir) == before
    assert not (run_dir / "postprocessed").exists()  # the folders made for it had stayed, empty


def write_study(path, sweep="{'beta_vae.beta': [1.0, 4.0]}", metrics="['mig']", metric_params="{}"):
    """A study of tiny runs (so that a check that lets one through costs seconds, not hours)."""
    path.write_text("study.base_gin = ['beta_vae.gin']\n"
                    "study.fixed = {'train.steps': 20, 'train.batch_size': 16, 'model.latent_dim': 4, "
                    "'train.checkpoint_every': 10}\n"
                    f"study.sweep = {sweep}\nstudy.metrics = {metrics}\nstudy.metric_params = {metric_params}\n")
    return path


def test_study_runs_root_is_a_file(tiny_data_root, tmp_path):
    study = write_study(tmp_path / "s.gin")
    (tmp_path / "afile").write_text("a file")
    before = tree(tmp_path)
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "afile", "--no_progress",
                            data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, "--runs_root", str(tmp_path / "afile"), "not a folder")
    assert tree(tmp_path) == before and (tmp_path / "afile").read_text() == "a file"


def test_study_runs_root_under_proc(tiny_data_root, tmp_path):
    study = write_study(tmp_path / "s.gin")
    result = run_in_process("dlb_study", study, "--runs_root", "/proc/dlbench_test/runs", "--no_progress",
                            data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, "--runs_root", "/proc/dlbench_test")
    assert tree(tmp_path) == ["s.gin"]


# --- 2. corrupt files -----------------------------------------------------------------------


def test_train_resume_with_truncated_run_json(tiny_trained_run, tiny_data_root, tmp_path):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    truncate(run_dir / "run.json")
    before = snapshot(run_dir)
    result = train(run_dir, data_root=tiny_data_root)
    assert_one_line_error(result, str(run_dir / "run.json"), "not valid JSON", "--overwrite")
    assert snapshot(run_dir) == before


def test_train_own_config_with_run_json_not_an_object(tiny_trained_run, tiny_data_root, tmp_path):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    (run_dir / "run.json").write_text("[1, 2, 3]\n")
    before = snapshot(run_dir)
    result = run_in_process("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root)
    assert_one_line_error(result, str(run_dir / "run.json"), "not an object")
    assert snapshot(run_dir) == before


def test_evaluate_with_truncated_run_json(evaluated_run, tiny_data_root, tmp_path):
    run_dir = copy_run(evaluated_run, tmp_path)
    truncate(run_dir / "run.json")
    before = snapshot(run_dir)
    result = run_in_process("dlb_evaluate", run_dir, "--metrics", "active_units", data_root=tiny_data_root)
    assert_one_line_error(result, str(run_dir / "run.json"), "not valid JSON")
    assert snapshot(run_dir) == before


@pytest.fixture(scope="module")
def fallen_back(two_checkpoints, tiny_data_root, tmp_path_factory):
    """`dlb_train --run_dir RUN` on a copy of two_checkpoints whose newest checkpoint is garbage."""
    run_dir = copy_run(two_checkpoints[1], tmp_path_factory.mktemp("fallen_back"))
    (run_dir / CHECKPOINTS / "step_000000020.pt").write_bytes(b"garbage, not a checkpoint")
    return run_command("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root), run_dir


def test_resume_falls_back_from_a_damaged_newest_checkpoint(fallen_back):
    result, run_dir = fallen_back
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "step_000000020.pt" in result.stdout and "trying the checkpoint before it" in result.stdout
    assert "resuming from step 10" in result.stdout
    record = read_run(run_dir)
    assert record["status"] == "done" and record["step"] == 30 and record.get("error") is None
    assert (run_dir / "model" / "checkpoint.pt").is_file()


def test_the_fallback_line_does_not_ask_for_a_rerun(fallen_back):
    result, run_dir = fallen_back
    line = next(line for line in result.stdout.splitlines() if "step_000000020.pt" in line)
    assert "run the command again" not in line, line


def test_resume_without_the_newest_checkpoint_says_it_is_missing(two_checkpoints, tiny_data_root, tmp_path):
    # the resume had gone back to the checkpoint before without a word
    run_dir = copy_run(two_checkpoints[1], tmp_path)
    assert read_run(run_dir)["step"] == 20
    (run_dir / CHECKPOINTS / "step_000000020.pt").unlink()
    result = run_in_process("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    said = f"{run_dir}: the checkpoint of step 20, run.json's last, is missing; the run resumes from the newest one " \
        "there"
    assert lines.index(said) < lines.index(f"{run_dir}: resuming from step 10"), lines
    assert read_run(run_dir)["status"] == "done"


@pytest.mark.parametrize("damage", ["garbage", "unsafe pickle"])
def test_resume_with_every_checkpoint_damaged(two_checkpoints, tiny_data_root, tmp_path, damage):
    run_dir = copy_run(two_checkpoints[1], tmp_path)
    for path in (run_dir / CHECKPOINTS).glob("step_*.pt"):
        if damage == "garbage":
            path.write_bytes(b"\x00garbage" * 10)
        else:
            unsafe_pickle(path, step=int(path.stem.split("_")[1]))
    before = snapshot(run_dir)
    result = run_in_process("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root)
    line = assert_one_line_error(result, "no readable checkpoint", str(run_dir / CHECKPOINTS),
                                 f"dlb_train --run_dir {run_dir} --overwrite")
    # torch's own message would advise weights_only=False: loading code from a damaged file
    assert "weights_only" not in result.stdout + result.stderr, line
    assert snapshot(run_dir) == before


def test_a_gpu_out_of_memory_while_resuming_is_not_taken_for_damaged_checkpoints(two_checkpoints, tiny_data_root,
                                                                                  tmp_path, monkeypatch):
    # the GPU's state, not the files': "no readable checkpoint ... --overwrite" would throw the
    # training away
    import torch

    run_dir = copy_run(two_checkpoints[1], tmp_path)
    checkpoint_files = {path.name: path.read_bytes() for path in (run_dir / CHECKPOINTS).glob("step_*.pt")}

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch, "load", out_of_memory)
    result = run_in_process("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root)
    line = assert_one_line_error(result, "the GPU ran out of memory (Tried to allocate 2.00 GiB)",
                                 "the same command resumes")
    assert "no readable checkpoint" not in result.stdout + line and "--overwrite" not in line, line
    assert {path.name: path.read_bytes() for path in (run_dir / CHECKPOINTS).glob("step_*.pt")} == checkpoint_files
    assert read_run(run_dir)["status"] == "interrupted"


def damage_log(path, damage):
    """train_log.csv of a run checkpointed at step 20 (log rows every 5 steps), damaged."""
    header, first, *_ = path.read_text().splitlines()
    if damage == "missing":
        path.unlink()
    elif damage == "not text":
        path.write_bytes(b"\xff\xfe\x00garbage" * 10)
    elif damage == "a row cut short":
        path.write_text(f"{header}\n{first[: len(first) // 2]}\n")
    elif damage == "a step not a number":
        path.write_text(f"{header}\nfive{first[first.index(','):]}\n")
    elif damage == "no row":
        path.write_text(f"{header}\n")


@pytest.mark.parametrize("damage, said", [("missing", "is missing"), ("not text", "not a table of text"),
                                          ("a row cut short", "line 2 has fewer values than the header"),
                                          ("a step not a number", "the step 'five'"),
                                          ("no row", "no row up to step 20")])
def test_resume_with_a_damaged_training_log(two_checkpoints, tiny_data_root, tmp_path, damage, said):
    """A resume keeps the log's rows up to its checkpoint: a log that does not read back had ended
    in a traceback, and a missing one was started afresh at step 20 without a word."""
    run_dir = copy_run(two_checkpoints[1], tmp_path)
    log = run_dir / "model" / "train_log.csv"
    damage_log(log, damage)
    before = snapshot(run_dir)
    result = run_in_process("dlb_train", "--run_dir", run_dir, "--no_progress", data_root=tiny_data_root)
    assert_one_line_error(result, str(log), said, "restore it", f"dlb_train --run_dir {run_dir} --overwrite")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("command, damage", [("dlb_postprocess", "truncated"), ("dlb_evaluate", "unsafe pickle")])
def test_damaged_final_weights(tiny_trained_run, tiny_data_root, tmp_path, command, damage):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    weights = run_dir / "model" / "checkpoint.pt"
    truncate(weights) if damage == "truncated" else unsafe_pickle(weights)
    before = snapshot(run_dir)
    result = run_in_process(command, run_dir, data_root=tiny_data_root)
    assert_one_line_error(result, str(weights), "unreadable", f"dlb_train --run_dir {run_dir} --overwrite")
    assert "weights_only" not in result.stdout + result.stderr
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("damaged", ["representation.pt", "results.json"])
@pytest.mark.parametrize("command", ["dlb_evaluate", "dlb_postprocess"])
def test_a_truncated_representation_is_made_again_from_the_weights(evaluated_run, tiny_data_root, tmp_path, command,
                                                                   damaged):
    """representation.pt and the results.json that marks it complete are derived from the run's
    weights: a damaged one is written again, and said so, rather than refused (or, as before,
    taken for complete: a results.json holding '{' had passed)."""
    import json

    import torch

    run_dir = copy_run(evaluated_run, tmp_path)
    folder = run_dir / "postprocessed" / "mean"
    truncate(folder / damaged)
    extra = ["--metrics", "active_units"] if command == "dlb_evaluate" else []
    result = run_in_process(command, run_dir, *extra, data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    assert f"{damaged} does not load" in result.stdout and "writing it again" in result.stdout
    torch.jit.load(str(folder / "representation.pt"))  # whole again
    assert json.loads((folder / "results.json").read_text())["mode"] == "mean"


def test_evaluate_with_a_damaged_result_of_another_protocol(evaluated_run, tiny_data_root, tmp_path):
    """That protocol's result is computed again, and said so, the default one left as it was (a
    result is derived from the weights, as representation.pt is: it had been refused, to be given
    --overwrite)."""
    run_dir = copy_run(evaluated_run, tmp_path)
    damaged = run_dir / "metrics" / "mean" / "mig[num_bins=10]" / "results.json"
    damaged.parent.mkdir()
    damaged.write_text('{"discrete_mig": 0.')
    default = (run_dir / "metrics" / "mean" / "mig" / "results.json").read_bytes()
    result = run_in_process("dlb_evaluate", run_dir, "--metrics", "mig", "--metric_param", "mig.num_bins=10",
                            data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    assert f"'{damaged}' is damaged (not valid JSON" in result.stdout and "computing mig again" in result.stdout
    assert json.loads(damaged.read_text())["num_bins"] == 10
    assert (run_dir / "metrics" / "mean" / "mig" / "results.json").read_bytes() == default


# --- 3. gin values --------------------------------------------------------------------------


GIN_MISTAKES = {
    "train.steps = 1.5": ["train.steps must be an integer", "got 1.5"],
    "beta_vae.beta = 'abc'": ["beta_vae.beta must be a number", "got 'abc'"],
    "beta_vae.beta = -1.0": ["beta_vae.beta must be a number >= 0", "got -1.0"],
    "isa_vae.beta = -2.0": ["isa_vae.beta must be a number >= 0", "got -2.0"],
    "model.latent_dim = 0": ["model.latent_dim must be an integer >= 1", "got 0"],
    "train.steps = 100*2": ["--gin_param 'train.steps = 100*2'", "write 200, not 100*2"],
    "beta_vae.gamma = 3": ["beta_vae has no parameter 'gamma'", "its parameters: beta"],
    "model.architecture = conv": ["--gin_param 'model.architecture = conv'", "quote strings"],
}


@pytest.mark.parametrize("binding", GIN_MISTAKES, ids=list(GIN_MISTAKES))
def test_bad_gin_value(tiny_data_root, tmp_path, binding):
    extra = ["train.method = @isa_vae()"] if binding.startswith("isa_vae") else []
    result = run_in_process("dlb_train", *train_args(tmp_path / "run", *extra, binding), data_root=tiny_data_root,
                            cwd=tmp_path)
    assert_one_line_error(result, *GIN_MISTAKES[binding])
    assert tree(tmp_path) == []  # neither --run_dir nor a default runs/ folder


def test_bad_value_in_a_gin_file_names_the_file(tiny_data_root, tmp_path):
    config = tmp_path / "mine.gin"
    config.write_text("train.method = @beta_vae()\ntrain.stepz = 20\n")
    result = run_in_process("dlb_train", "--gin", config, "--no_progress", data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, f"gin file '{config}'", "train has no parameter 'stepz'", "steps")
    assert tree(tmp_path) == ["mine.gin"]


# --- 4. protocol mismatches -----------------------------------------------------------------


def test_other_metric_parameters_are_computed_beside_the_default(evaluated_run, tiny_data_root, tmp_path):
    run_dir = copy_run(evaluated_run, tmp_path)
    default = run_dir / "metrics" / "mean" / "mig" / "results.json"
    before = default.read_bytes()
    result = run_in_process("dlb_evaluate", run_dir, "--metrics", "mig", "--metric_param", "mig.num_bins=10",
                            "--device", "cpu", data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    other = json.loads((run_dir / "metrics" / "mean" / "mig[num_bins=10]" / "results.json").read_text())
    assert other["num_bins"] == 10 and other["metric"] == "mig"
    assert default.read_bytes() == before and json.loads(before)["num_bins"] == 20


def test_a_damaged_default_result_does_not_block_another_protocol(evaluated_run, tiny_data_root, tmp_path):
    run_dir = copy_run(evaluated_run, tmp_path)
    default = run_dir / "metrics" / "mean" / "mig" / "results.json"
    truncate(default)
    damaged = default.read_bytes()
    result = run_in_process("dlb_evaluate", run_dir, "--metrics", "mig", "--metric_param", "mig.num_bins=10",
                            "--device", "cpu", data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    assert json.loads((run_dir / "metrics" / "mean" / "mig[num_bins=10]" / "results.json").read_text())["num_bins"] == 10
    assert default.read_bytes() == damaged


METRIC_PARAM_MISTAKES = {
    "unknown parameter": (["--metrics", "mig", "--metric_param", "mig.num_binz=3"],
                          ["num_binz", "'mig'", "accepted: num_train, num_bins"]),
    "wrong type": (["--metrics", "mig", "--metric_param", "mig.num_bins=abc"],
                   ["mig.num_bins must be an integer", "got 'abc'"]),
    "metric not asked for": (["--metrics", "mig", "--metric_param", "factor_vae.num_train=100"],
                             ["'factor_vae'", "not among the metrics asked for"]),
    "malformed": (["--metrics", "mig", "--metric_param", "mig=3"],
                  ["--metric_param 'mig=3'", "METRIC.PARAM=VALUE"]),
}


@pytest.mark.parametrize("mistake", METRIC_PARAM_MISTAKES, ids=list(METRIC_PARAM_MISTAKES))
def test_metric_parameters_refused_before_anything_is_computed(evaluated_run, tiny_data_root, tmp_path, mistake):
    run_dir = copy_run(evaluated_run, tmp_path)
    args, needles = METRIC_PARAM_MISTAKES[mistake]
    before = snapshot(run_dir)
    result = run_in_process("dlb_evaluate", run_dir, *args, data_root=tiny_data_root)
    assert_one_line_error(result, *needles)
    assert "computing" not in result.stdout
    assert snapshot(run_dir) == before


def test_train_another_config_on_a_finished_run(tiny_trained_run, tiny_data_root, tmp_path):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    before = snapshot(run_dir)
    result = train(run_dir, "beta_vae.beta = 8.0", data_root=tiny_data_root)
    assert_one_line_error(result, str(run_dir), "finished run with a different config", "beta_vae.beta: 4.0 -> 8.0",
                          "--overwrite")
    assert snapshot(run_dir) == before


def test_train_the_same_config_on_a_finished_run_is_skipped(tiny_trained_run, tiny_data_root, tmp_path):
    run_dir = copy_run(tiny_trained_run, tmp_path)
    before = snapshot(run_dir)
    result = train(run_dir, data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"{run_dir}: skipped"
    assert snapshot(run_dir) == before


# --- 5. studies checked whole before the first run ------------------------------------------


STUDY_MISTAKES = {
    "unknown metric": (dict(metrics="['mig', 'migg']"), ["study.metrics", "unknown metric 'migg'"]),
    "sweep value of the wrong type": (dict(sweep="{'beta_vae.beta': [1.0, 'abc']}"),
                                      ["run with beta_vae.beta = 'abc'", "beta_vae.beta must be a number", "got 'abc'"]),
    "sweep not a list": (dict(sweep="{'beta_vae.beta': 4.0}"), ["study.sweep: 'beta_vae.beta' must have a non-empty list of values, got 4.0"]),
    "unknown metric parameter": (dict(metric_params="{'mig': {'num_binz': 3}}"),
                                 ["study.metric_params", "num_binz", "'mig'"]),
    "bad value in the last run": (dict(sweep="{'train.seed': [0, 1, -1]}"),
                                  ["run with train.seed = -1", "train.seed must be an integer in [0, 4294967295]", "got -1"]),
}


@pytest.mark.parametrize("mistake", STUDY_MISTAKES, ids=list(STUDY_MISTAKES))
def test_study_mistake_found_before_the_first_run(tiny_data_root, tmp_path, mistake):
    settings, needles = STUDY_MISTAKES[mistake]
    study = write_study(tmp_path / "s.gin", **settings)
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--no_progress",
                            data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, *needles)
    assert tree(tmp_path) == ["s.gin"]  # no run directory, not even --runs_root


# --- 8. progress ----------------------------------------------------------------------------


def test_evaluate_names_each_metric_before_computing_it(evaluated_run, tiny_data_root, tmp_path):
    run_dir = copy_run(evaluated_run, tmp_path)
    result = run_in_process("dlb_evaluate", run_dir, "--metrics", "mig,active_units,hoyer_sparsity", "--device",
                            "cpu", data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()

    def index(start):
        found = [i for i, line in enumerate(lines) if line.startswith(f"{run_dir}: {start}")]
        assert len(found) == 1, (start, lines)
        return found[0]

    # mig is stored already: it is neither computed nor counted
    assert not any("computing mig" in line for line in lines)
    assert index("[1/2] computing active_units") < index("active_units ") \
        < index("[2/2] computing hoyer_sparsity") < index("hoyer_sparsity ")


def test_train_progress_bar_shows_a_rate_before_the_first_log_step(tiny_data_root, tmp_path):
    result = train(tmp_path / "run", "train.log_every = 1000", data_root=tiny_data_root, progress=True, terminal=True)
    assert result.returncode == 0, result.stderr
    frames = bar_frames(result.stderr)
    # the loss appears in the bar at the first log step (here only the last step): a rate before it
    before_log = [frame for frame in frames if "loss=" not in frame]
    assert any("step/s" in frame or "s/step" in frame for frame in before_log), frames


def test_a_resumed_runs_bar_starts_at_its_checkpoint(resumed):
    result, run_dir, _ = resumed
    frames = bar_frames(result.stderr)
    positions = [int(match[1]) for frame in frames for match in [re.search(r"\| *(\d+)/30 ", frame)] if match]
    assert len(positions) == len(frames) and positions[0] == 20 and positions[-1] == 30, frames
    assert any("step/s" in frame or "s/step" in frame for frame in frames), frames


def test_no_progress_keeps_stderr_empty(fallen_back):
    result, _ = fallen_back  # a whole training (after a fallback) with --no_progress
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_train_draws_no_bar_into_a_pipe(tiny_data_root, tmp_path):
    # each redraw of the bar had become one more line of the log its standard error went to
    result = train(tmp_path / "run", data_root=tiny_data_root, progress=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


# --- 11. messages ---------------------------------------------------------------------------


def help_text(command):
    result = run_in_process(command, "--help")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return " ".join(result.stdout.split())


def test_train_help_says_run_dir_alone_resumes():
    text = help_text("dlb_train")
    assert "--run_dir RUN_DIR" in text and "alone, without --gin, resumes the run there with its own config" in text


def test_postprocess_help_describes_run_dir():
    assert "RUN_DIR a run directory written by dlb_train" in help_text("dlb_postprocess")


def test_evaluate_help_lists_the_metrics():
    from dlbench.metrics import available_metrics

    text = help_text("dlb_evaluate")
    assert "RUN_DIR a run directory written by dlb_train" in text
    for name in available_metrics():
        assert name in text, name


def test_study_help_names_the_studies():
    text = help_text("dlb_study")
    named = sorted(path.stem for path in (REPO / "gin" / "studies").glob("*.gin"))  # reproductions add their own
    assert {"dlib_unsupervised_v1", "quickstart", "study_v1", "study_v1_cpu"} <= set(named)
    assert "NAME_OR_GIN" in text and f"({', '.join(named)})" in text


def test_train_run_dir_alone_resumes_with_the_runs_own_config(resumed):
    result, run_dir, config = resumed
    assert result.returncode == 0, result.stderr
    assert "resuming from step 20" in result.stdout and result.stdout.splitlines()[-1] == f"{run_dir}: done"
    record = read_run(run_dir)
    assert record["status"] == "done" and record["step"] == 30 and record["train"]["steps"] == 30
    assert (run_dir / "model" / "config.gin").read_text() == config


def test_train_run_dir_alone_without_a_run(tiny_data_root, tmp_path):
    result = run_in_process("dlb_train", "--run_dir", tmp_path / "nothing", data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, str(tmp_path / "nothing"), "does not exist", "give --gin FILE")
    assert tree(tmp_path) == []


@pytest.mark.parametrize("command, needle", [
    ("dlb_train", "give at least one --gin FILE"),
    ("dlb_postprocess", "required: RUN_DIR"),
    ("dlb_study", "required: NAME_OR_GIN"),
])
def test_no_arguments_at_all(tmp_path, command, needle):
    result = run_in_process(command, cwd=tmp_path)
    assert_one_line_error(result, f"{command}: error:", needle)
    assert tree(tmp_path) == []


@pytest.mark.parametrize("in_the_way, advice", [
    ("postprocessed/mean", "File exists; something is in the way there (a file where a folder goes); move it away"),
    ("postprocessed/mean/representation.pt", "Is a directory; a folder is where a file goes; move it away"),
])
def test_something_in_the_way_of_a_file_the_command_writes_is_to_be_moved_away(evaluated_run, tiny_data_root,
                                                                               tmp_path, in_the_way, advice):
    # the lines had said "choose another" path, which the run's own layout does not allow
    run_dir = copy_run(evaluated_run, tmp_path)
    shutil.rmtree(run_dir / "postprocessed")
    blocker = run_dir / in_the_way
    if blocker.name == "mean":
        blocker.parent.mkdir()
        blocker.write_text("")
    else:
        blocker.mkdir(parents=True)
    result = run_in_process("dlb_postprocess", run_dir, data_root=tiny_data_root)
    assert_one_line_error(result, f"'{blocker}'", advice)


@pytest.mark.parametrize("command", ["dlb_postprocess", "dlb_evaluate"])
def test_a_finished_runs_missing_weights_are_named_with_the_fix(evaluated_run, tiny_data_root, tmp_path, command):
    # "No such file or directory; check the path" had been all: the path was dlbench's own
    run_dir = copy_run(evaluated_run, tmp_path)
    shutil.rmtree(run_dir / "postprocessed")
    (run_dir / "model" / "checkpoint.pt").unlink()
    result = run_in_process(command, run_dir, data_root=tiny_data_root)
    assert_one_line_error(result, f"'{run_dir / 'model' / 'checkpoint.pt'}', the weights of the finished run, is "
                                  f"missing; restore it, or train the run again with `dlb_train --run_dir {run_dir} "
                                  f"--overwrite`")
