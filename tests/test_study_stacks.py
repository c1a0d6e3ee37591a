"""Studies with --stack K: stackable runs grouped into stacks of at most K, trained together and
evaluated one by one, with the results of the same study run one run at a time (float64, for the
reason tests/test_stack.py gives)."""

import json

import pytest
import torch

from dlbench.errors import UserError
from dlbench.study import load_study
from dlbench.study.local import run_local
from dlbench.study.stacks import AUTO, largest_fitting, stack_size, work_items
from dlbench.study.unit import DONE, units_of
from tests.commands import assert_one_line_error, run_command, run_in_process, tree
from tests.test_study import write_study


def test_stackable_runs_are_grouped_k_at_a_time_and_the_others_alone(tiny_dsprites, tmp_path):
    study = load_study(str(write_study(tmp_path / "s.gin", """[
        {'beta_vae.beta': [1.0, 2.0, 4.0], 'train.seed': [0, 1]},
        {'model.architecture': ['dcgan'], 'dataset.name': ['fashion_mnist']},
        {'train.method': ['@beta_vae()'], 'train.lr': [1e-4]}]""")))
    units = units_of(study, study.runs, tmp_path / "runs")
    said = []
    items = work_items(units, 4, log=said.append)
    names = [[unit.run_dir.split("/runs/")[1] for unit in item] for item in items]
    assert names == [
        ["beta_vae/beta=1.0/seed=0", "beta_vae/beta=1.0/seed=1", "beta_vae/beta=2.0/seed=0", "beta_vae/beta=2.0/seed=1"],
        ["beta_vae/beta=4.0/seed=0", "beta_vae/beta=4.0/seed=1"],
        ["beta_vae/lr=0.0001/seed=0"],  # another learning rate: another stack
        ["beta_vae/architecture=dcgan,name=fashion_mnist/seed=0"]]  # BatchNorm: alone, and said so
    assert len(said) == 1 and "dcgan" in said[0] and "BatchNorm" in said[0]
    assert work_items(units, 1) == [[unit] for unit in units]


def test_stack_sizes():
    assert stack_size("auto", "cpu") == 1 and stack_size(None, "cpu") == 1 and stack_size("8", "cpu") == 8
    assert stack_size("auto", "cuda") == stack_size(None, "cuda:1") == AUTO  # measured per group of runs
    for bad in ("0", "-2", "many"):
        with pytest.raises(UserError, match="bad --stack"):
            stack_size(bad, "cpu")


def test_the_largest_stack_that_fits_the_memory():
    mib = 2**20
    # 100 MiB shared, 30 MiB per run: a stack of one peaks at 130 MiB, of two at 160 MiB
    assert largest_fitting(130 * mib, 160 * mib, 1000 * mib) == 30  # (1000 - 100) // 30
    assert largest_fitting(130 * mib, 160 * mib, 1000 * mib, limit=16) == 16
    assert largest_fitting(130 * mib, 160 * mib, 120 * mib) == 1  # not even two fit: one at a time
    assert largest_fitting(130 * mib, 130 * mib, 1000 * mib) == 64  # nothing measured per run: the limit


def results(runs):
    found = {}
    for run_json in sorted(runs.rglob("run.json")):
        run_dir = run_json.parent
        metrics = {p.parent.name: json.loads(p.read_text()) for p in run_dir.glob("metrics/mean/*/results.json")}
        found[str(run_dir.relative_to(runs))] = (
            torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"], metrics,
            json.loads(run_json.read_text()))
    return found


def test_a_stacked_study_gives_the_results_of_the_study_run_one_at_a_time(tiny_dsprites, tmp_path, float64,
                                                                         monkeypatch):
    import dlbench.study.stacks
    import dlbench.study.unit

    evaluate = dlbench.study.unit.evaluate_unit

    def evaluate_in_float32(*args, **kwargs):  # training in float64; the evaluation stage works in float32
        torch.set_default_dtype(torch.float32)
        try:
            return evaluate(*args, **kwargs)
        finally:
            torch.set_default_dtype(torch.float64)

    for module in (dlbench.study.unit, dlbench.study.stacks):
        monkeypatch.setattr(module, "evaluate_unit", evaluate_in_float32)
    study = load_study(str(write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 4.0, 8.0]}")))
    quiet = dict(progress=False, log=lambda *_: None)
    alone = run_local(study, study.runs, tmp_path / "alone", "cpu", workers=1, stack=1, **quiet)
    stacked = run_local(study, study.runs, tmp_path / "stacked", "cpu", workers=1, stack=2, **quiet)
    assert set(alone.values()) == set(stacked.values()) == {DONE} and alone.keys() == stacked.keys()
    a, b = results(tmp_path / "alone"), results(tmp_path / "stacked")
    assert a.keys() == b.keys()
    for name in a:
        for key, value in a[name][0].items():
            torch.testing.assert_close(b[name][0][key], value, rtol=1e-7, atol=1e-9, msg=f"{name} {key}")
        assert a[name][1].keys() == b[name][1].keys() == {"mig[num_train=200]"}
        for metric, result in a[name][1].items():
            for key, value in result.items():
                if isinstance(value, float) and key != "elapsed_seconds":
                    assert b[name][1][metric][key] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, metric, key)
        assert a[name][2]["stacked"] is False
    assert [b[name][2]["stacked"] for name in sorted(b)] == [2, 2, False]  # 2 together, the third alone


def test_a_bad_stack_is_one_line_and_writes_nothing(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--stack", "0", "--device", "cpu",
                            data_root=tiny_dsprites)
    assert_one_line_error(result, "bad --stack '0'")
    assert tree(tmp_path) == ["s.gin"]
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--stack", "-1",
                            "--executor", "slurm", data_root=tiny_dsprites)
    assert_one_line_error(result, "bad --stack '-1'")


@pytest.mark.slow
def test_a_full_disk_stops_a_stack_interrupted_and_the_study_resumes_to_the_undisturbed_results(tiny_dsprites,
                                                                                                 tmp_path):
    from tests.test_hardening import CHECKPOINTS, fault, no_temporary_files
    from tests.test_study import assert_same_study, weights_and_results

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    common = ["--device", "cpu", "--no_progress", "--stack", "2"]
    undisturbed, full = tmp_path / "undisturbed", tmp_path / "full"
    assert run_command("dlb_study", study, "--runs_root", undisturbed, *common, data_root=tiny_dsprites).returncode == 0
    # the disk is full when the stack writes the first checkpoint of its first run (step 10)
    first = full / "beta_vae" / "beta=1.0" / "seed=0"
    result = run_command("dlb_study", study, "--runs_root", full, *common, data_root=tiny_dsprites,
                         fault=fault("ENOSPC", first / CHECKPOINTS))
    assert_one_line_error(result, "No space left on device", str(first / CHECKPOINTS))
    for run_json in sorted(full.rglob("run.json")):  # every run of the stack says why it stopped
        record = json.loads(run_json.read_text())
        assert record["status"] == "interrupted" and "No space left on device" in record["error"], run_json
    assert no_temporary_files(full) == []
    # space again: the same command finishes the study, with the results of the undisturbed one
    assert run_command("dlb_study", study, "--runs_root", full, *common, data_root=tiny_dsprites).returncode == 0
    assert_same_study(weights_and_results(full), weights_and_results(undisturbed))


def test_a_run_folders_own_problem_fails_that_run_alone_stacked_or_not(tiny_dsprites, tmp_path):
    # a foreign folder in one run's place had failed its whole stack, and a damaged run.json had
    # stopped the whole study (it was read again to mark the run failed)
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0], 'train.seed': [0, 1]}")
    runs = tmp_path / "runs"
    foreign = runs / "beta_vae" / "beta=1.0" / "seed=0"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    # and a run whose worker was killed before it wrote run.json: not started, which the study trains
    cut_short = runs / "beta_vae" / "beta=1.0" / "seed=1" / "model"
    cut_short.mkdir(parents=True)
    (cut_short / "config.gin").write_text("train.steps = 3\n")
    options = ["--runs_root", runs, "--device", "cpu", "--no_progress", "--workers", "1"]
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "4 runs: 1 failed, 3 not started" in status.stdout, status.stdout
    result = run_command("dlb_study", study, *options, "--stack", "4", data_root=tiny_dsprites)
    assert result.returncode == 1 and "3 runs finished, 1 failed (beta_vae/beta=1.0/seed=0)" in result.stdout, \
        result.stdout + result.stderr
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "4 runs: 3 done, 1 failed" in status.stdout and "holds files but no run" in status.stdout, status.stdout

    damaged = runs / "beta_vae" / "beta=8.0" / "seed=0" / "run.json"
    damaged.write_text(damaged.read_text()[:50])
    result = run_in_process("dlb_study", study, *options, "--stack", "1", data_root=tiny_dsprites)  # trains none
    assert result.returncode == 1 and "2 runs finished, 2 failed" in result.stdout, result.stdout + result.stderr
