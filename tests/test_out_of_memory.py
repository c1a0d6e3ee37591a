"""A GPU that runs out of memory (another process holds it, a batch or a stack too large for it) is
the machine's state, not the run's fault: one line names it and the fix, exit status 2, the run
is marked interrupted (never failed) with its last checkpoint, and the same command resumes it.
A study stops, as on a full disk, since every later run would meet it too. torch's error is
injected here on the CPU, with the message CUDA gives."""

import json

import pytest
import torch

from dlbench import evaluation, rundir
from dlbench.cli import evaluate, study, train
from dlbench.train.loop import Trainer
from dlbench.train.stack import StackedTrainer
from tests.test_cli_errors import assert_user_error, tiny_train_args
from tests.test_study import write_study

CUDA_SAYS = ("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.80 GiB of which "
             "1.06 GiB is free.\nIncluding non-PyTorch memory, this process has 3.50 GiB memory in use.")


def out_of_memory_at(cls, method, call):
    """cls.method that raises CUDA's out-of-memory error at its `call`-th call (1-based)."""
    original, calls = getattr(cls, method), []

    def failing(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise torch.cuda.OutOfMemoryError(CUDA_SAYS)
        return original(self, *args, **kwargs)

    return failing


def status_of(run_dir):
    return json.loads((run_dir / "run.json").read_text())


def test_a_run_out_of_gpu_memory_is_interrupted_with_its_checkpoint_and_resumes(tiny_dsprites, tmp_path, capsys,
                                                                                 monkeypatch):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:  # for this command only: $DLBENCH_DATA stays at the tiny grid
        patch.setattr(Trainer, "sample_batch", out_of_memory_at(Trainer, "sample_batch", 13))  # step 13
        line = assert_user_error(capsys, train.main(tiny_train_args(run_dir)), str(run_dir),
                                 "the GPU ran out of memory (Tried to allocate 2.00 GiB)", "train.batch_size",
                                 "--stack")
    assert "Including non-PyTorch memory" not in line  # not the allocator's page of figures
    record = status_of(run_dir)
    assert record["status"] == "interrupted" and "the GPU ran out of memory after step 12" in record["error"]
    assert rundir.checkpoint_paths(run_dir) and not rundir.claim_path(run_dir).exists()

    assert train.main(["--run_dir", str(run_dir), "--no_progress"]) == 0
    assert "resuming from step 10" in capsys.readouterr().out and status_of(run_dir)["status"] == "done"


def test_a_stack_out_of_gpu_memory_marks_its_runs_interrupted_and_stops_the_study(tiny_dsprites, tmp_path, capsys,
                                                                                  monkeypatch):
    file = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    options = ["--runs_root", str(runs), "--device", "cpu", "--no_progress", "--stack", "2", "--workers", "1"]
    with monkeypatch.context() as patch:  # for this command only: $DLBENCH_DATA stays at the tiny grid
        patch.setattr(StackedTrainer, "train_step", out_of_memory_at(StackedTrainer, "train_step", 13))
        assert_user_error(capsys, study.main([str(file), *options]), "a stack of 2 runs: the GPU ran out of memory",
                          "--stack")
    run_dirs = sorted(path.parent for path in runs.rglob("run.json"))
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        record = status_of(run_dir)
        assert record["status"] == "interrupted" and "the GPU ran out of memory after step 12" in record["error"]

    assert study.main([str(file), *options]) == 0
    assert [status_of(run_dir)["status"] for run_dir in run_dirs] == ["done", "done"]


def test_evaluation_out_of_gpu_memory_keeps_the_metrics_it_computed(trained_run, capsys, monkeypatch):
    compute = evaluation.metrics.evaluate

    def failing(name, *args, **kwargs):
        if name == "sap":
            raise torch.cuda.OutOfMemoryError(CUDA_SAYS)
        return compute(name, *args, **kwargs)

    monkeypatch.setattr(evaluation.metrics, "evaluate", failing)
    assert_user_error(capsys, evaluate.main([str(trained_run), "--metrics", "mig,sap", "--device", "cpu"]),
                      "the GPU ran out of memory (Tried to allocate 2.00 GiB)", "--device cpu")
    assert evaluation.stored_result(trained_run, "mean", "mig", {}, 0) is not None
    assert not rundir.claim_path(trained_run).exists()
    assert status_of(trained_run)["status"] == "done"  # the run's training is not in question


@pytest.mark.parametrize("asked", [True, False], ids=["amount", "no amount"])
def test_the_line_says_how_much_was_asked_where_torch_said(asked):
    from dlbench.errors import OutOfDeviceMemory
    from dlbench.train.device import out_of_memory_said

    with pytest.raises(OutOfDeviceMemory) as caught, out_of_memory_said("here"):
        raise torch.cuda.OutOfMemoryError(CUDA_SAYS if asked else "CUDA error: out of memory")
    assert str(caught.value).startswith("here: the GPU ran out of memory" + (" (Tried to allocate 2.00 GiB);" if asked
                                                                              else ";"))
