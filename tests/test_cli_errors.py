"""Every user mistake: one line on stderr naming the problem, exit status 2, no traceback,
and nothing half-written."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlbench.cli import aggregate, data, evaluate, postprocess, study, train

from dlbench.study import load_study
from tests.commands import assert_one_line_error, run_in_process, tree
from tests.conftest import TINY_PARAMS, tiny_params

REPO = Path(__file__).resolve().parent.parent


def tiny_train_args(run_dir, *params):
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for p in tiny_params(*params):
        args += ["--gin_param", p]
    return args


def assert_user_error(capsys, code, *needles):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("binding, needle", [
    ("foo.bar = 1", "No configurable matching 'foo'"),
    ("train.nope = 1", "train has no parameter 'nope'; its parameters: method, steps"),
    ("train.method = @nothing()", "@nothing()"),
    ("beta_vae.beta = (", "bad gin config"),
    ("train.steps = -3", "train.steps must be an integer >= 1, got -3"),
    ("train.seed = 18446744073709551616", "train.seed must be an integer"),  # torch had overflowed at step 0
    # the advice had been how to write a binding
    ("import nosuchmodule_dlb", "No module named 'nosuchmodule_dlb' (In bindings string line 1); an `import` "
                                "line names a module Python cannot import (put its folder on PYTHONPATH)"),
])
def test_bad_bindings(tiny_dsprites, tmp_path, capsys, binding, needle):
    code = train.main(tiny_train_args(tmp_path / "run", binding))
    assert_user_error(capsys, code, needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("bindings", [
    ["isotropic_gaussian.scale=1e-30"],
    ["model.prior='sparse_mixture'", "sparse_mixture.sigma0_sq=1e-40"],
])
def test_a_prior_setting_float32_cannot_use_is_refused_before_the_run_dir(tiny_data_root, tmp_path, bindings):
    # it had passed as a positive number: the first steps' loss was not finite, the run marked failed, exit 1
    args = ["--gin", "beta_vae.gin", "--run_dir", tmp_path / "run", "--device", "cpu", "--no_progress"]
    for binding in bindings:
        args += ["--gin_param", binding]
    result = run_in_process("dlb_train", *args, data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, f"{bindings[-1].partition('=')[0]} must be a number in [", "float32 holds")
    assert tree(tmp_path) == []


METHOD_MODULE = """
import gin
from dlbench.methods.base import Method


@gin.configurable("{configurable}")
class Mine(Method):
    name = {name!r}

    def hyperparameters(self):
        return {{}}

    def objective(self, outputs, step, draws):
        raise AssertionError("refused before it trains")
"""


@pytest.mark.parametrize("name, needle", [
    # its runs had recorded method beta_vae, and dlb_aggregate dropped one as a copy of dlbench's own
    ("beta_vae",
     "is named 'beta_vae', the name of dlbench's dlbench.methods.beta_vae.BetaVAE; give it a name of its own"),
    ("", "has no name; set its class attribute name = '...'")])
def test_a_method_of_ones_own_named_as_dlbenchs_or_not_at_all_is_refused(tiny_data_root, tmp_path, monkeypatch,
                                                                          capsys, name, needle):
    module = f"own_method_{'clash' if name else 'unnamed'}"
    (tmp_path / f"{module}.py").write_text(METHOD_MODULE.format(configurable=f"{module}_vae", name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    gin_file = tmp_path / "mine.gin"
    gin_file.write_text(f"import {module}\ntrain.method = @{module}_vae()\n")
    run_dir = tmp_path / "run"
    args = ["--gin", str(gin_file), "--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in TINY_PARAMS:
        if not binding.startswith(("train.method", "beta_vae.")):
            args += ["--gin_param", binding]
    code = train.main(args)
    line = assert_user_error(capsys, code, needle)
    assert f"the method {module}.Mine " in line
    assert not run_dir.exists()


def test_a_configurable_of_ones_own_named_as_dlbenchs_says_to_name_it_otherwise(tiny_data_root, tmp_path):
    # the advice had been how to write a binding; in a fresh Python, as gin keeps what a module registers
    from tests.commands import run_command

    (tmp_path / "clashing_method.py").write_text(
        METHOD_MODULE.format(configurable="beta_vae", name="clashing").replace("name = 'clashing'", "name = 'mine'"))
    (tmp_path / "mine.gin").write_text("import clashing_method\ntrain.method = @beta_vae()\n")
    result = run_command("dlb_train", "--gin", "mine.gin", "--run_dir", "run", "--device", "cpu", cwd=tmp_path,
                         data_root=tiny_data_root, env={"PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])})
    assert_one_line_error(result, "Ambiguous selector 'beta_vae'", "two configurables are named 'beta_vae': register "
                                  "yours under a name of its own")
    assert not (tmp_path / "run").exists()


def test_a_binding_given_twice_by_gin_param_is_refused(tiny_data_root, tmp_path):
    # the last had won without a word (--metric_param refused the same)
    args = [*tiny_train_args(tmp_path / "run"), "--gin_param", "train.steps=6"]
    result = run_in_process("dlb_train", *args, data_root=tiny_data_root, cwd=tmp_path)
    assert_one_line_error(result, "--gin_param gives train.steps twice ('train.steps = 20' and 'train.steps=6'); "
                                  "give it once")
    assert tree(tmp_path) == []


def test_a_binding_given_twice_with_one_value_or_in_two_scopes_is_one_binding():
    from dlbench.config import check_each_binding_once

    check_each_binding_once(["train.steps = 5", "train.steps=5", "train.method = @beta_vae()",
                             "train.method=@beta_vae()", "eval/train.steps = 6", "train.steps = ("])


@pytest.mark.parametrize("method", [["train.method = @beta_tcvae()", "beta_tcvae.estimator = 'mss'"],
                                    ["train.method = @beta_tcvae()", "beta_tcvae.estimator = 'mws'"],
                                    ["train.method = @ab_vae()"], ["train.method = @dip_vae()"],
                                    ["train.method = @factor_vae()"]])
def test_a_batch_too_small_for_the_objective_is_refused_with_the_config(tiny_dsprites, tmp_path, capsys, method):
    # minibatch stratified sampling and the unbiased MMD need a second observation: it had failed at
    # step 1; with one, the minibatch-weighted total correlation is a constant, the DIP covariance
    # zero and the FactorVAE permutation the identity: they had trained with a penalty that does nothing
    params = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae.", "train.batch_size"))] + method
    args = ["--run_dir", str(tmp_path / "run"), "--device", "cpu", "--no_progress"]
    for p in params + ["train.batch_size = 1"]:
        args += ["--gin_param", p]
    assert_user_error(capsys, train.main(args), "train.batch_size = 1 is too small", "at least 2")
    assert not (tmp_path / "run").exists()


def files_of(run_dir):
    return {p: p.read_bytes() for p in sorted(Path(run_dir).rglob("*")) if p.is_file()}


def test_overwrite_keeps_the_old_run_when_the_new_config_cannot_be_built(trained_run, capsys):
    before = files_of(trained_run)
    args = tiny_train_args(trained_run, "model.architecture = 'dcgan'") + ["--overwrite"]
    assert_user_error(capsys, train.main(args), "dcgan")
    assert files_of(trained_run) == before


def test_a_failed_run_is_said_to_have_failed_and_how_to_train_it_again(trained_run, capsys):
    from dlbench import rundir

    rundir.mark_stopped(trained_run, rundir.Status.FAILED, "the loss became non-finite at step 7")
    assert train.main(["--run_dir", str(trained_run), "--no_progress"]) == 1
    out = capsys.readouterr().out
    assert "the run failed (the loss became non-finite at step 7)" in out and "--overwrite" in out
    assert_user_error(capsys, evaluate.main([str(trained_run)]), "failed (the loss became non-finite at step 7)",
                      f"dlb_train --run_dir {trained_run} --overwrite")


def test_gin_file_that_does_not_parse(tmp_path, capsys):
    bad = tmp_path / "bad.gin"
    bad.write_text("train.method = @beta_vae(\ntrain.steps = \n")
    code = train.main(["--gin", str(bad), "--run_dir", str(tmp_path / "run")])
    assert_user_error(capsys, code, "bad gin config")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, where", [
    ("train.steps = 2\n\ntrain.lr = 1+2\n", "line 3, column 13: Expected newline; a binding is NAME.PARAM = VALUE"),
    ("train.steps = 2\ntrain.lr = [1e-3,\n", "line 2, column 12: this '[' is never closed; close it"),
    ('train.lr = """1e-3\n', "line 1, column 12: this string is never closed (EOF in multi-line string)"),
])
def test_a_gin_file_that_does_not_parse_says_line_and_column(tmp_path, capsys, text, where):
    # Python's words had shown the tokenizer's raw tuple, ('EOF in multi-line statement', (3, 0)), or no column
    bad = tmp_path / "bad.gin"
    bad.write_text(text)
    line = assert_user_error(capsys, train.main(["--gin", str(bad), "--run_dir", str(tmp_path / "run")]),
                             f"bad gin config in gin file '{bad}': {where}")
    assert "', (" not in line
    (tmp_path / "top.gin").write_text(f"train.steps = 2\ninclude '{bad}'\n")  # the mistake is in the file it includes
    assert_user_error(capsys, train.main(["--gin", str(tmp_path / "top.gin"), "--run_dir", str(tmp_path / "run")]),
                      f"gin file '{tmp_path / 'top.gin'}': line ", f"of {bad}" if "Expected" in where
                      else f"of the file that line 2 of {tmp_path / 'top.gin'} includes")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("binding, where", [
    ("beta_vae.beta = (", "line 1, column 17: this '(' is never closed; close it"),
    ("train.lr = 1e-3)", "line 1, column 16: Expected newline; a binding is"),
])
def test_a_gin_param_that_does_not_parse_says_its_column(tmp_path, capsys, binding, where):
    code = train.main(["--gin", "beta_vae", "--gin_param", binding, "--run_dir", str(tmp_path / "run")])
    assert "', (" not in assert_user_error(capsys, code, f"bad gin config in --gin_param '{binding}': {where}")


@pytest.mark.parametrize("sweep, where", [
    ("{'beta_vae.beta': [1.0]", "line 3, column 15: this '{' is never closed; close it"),
    ("{'beta_vae.beta': [1.0]}}", "line 3, column 39: Expected newline"),
    ("{'beta_vae.beta': [1.0]\nstudy.metrics = ['mig']", "line 4, column 1: Expected ',' or '}'"),
])
def test_a_study_file_that_does_not_parse_says_line_and_column(tmp_path, capsys, sweep, where):
    path = tmp_path / "s.gin"
    path.write_text(f"study.base_gin = ['beta_vae.gin']\nstudy.fixed = {{'train.steps': 2}}\nstudy.sweep = {sweep}\n")
    line = assert_user_error(capsys, study.main([str(path), "--runs_root", str(tmp_path / "runs"), "--dry_run"]),
                             f"bad study file '{path}': {where}")
    assert "', (" not in line
    assert not (tmp_path / "runs").exists()


def test_a_misspelt_study_binding_names_the_study_bindings(tmp_path, capsys):
    # "Configurable 'study' doesn't have a parameter named 'swep'" had named none of them
    from tests.test_study import write_study

    path = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    path.write_text(path.read_text().replace("study.sweep", "study.swep"))
    assert_user_error(capsys, study.main([str(path), "--runs_root", str(tmp_path / "runs"), "--dry_run"]),
                      f"bad study file '{path}': study has no parameter 'swep'; a study file binds study.base_gin, "
                      f"study.fixed, study.sweep, study.metrics, study.metric_params")
    path.write_text(path.read_text().replace("study.swep", "stduy.sweep"))
    assert_user_error(capsys, study.main([str(path), "--runs_root", str(tmp_path / "runs"), "--dry_run"]),
                      "No configurable matching 'stduy'; a study file binds study.base_gin, study.fixed, study.sweep")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("written, shown", [("train.steps = 3", "{'train.steps': 3, ...}"),
                                             ("train.method = @beta_tcvae()", "{'train.method': '@beta_tcvae()', ...}")])
def test_a_run_setting_bound_outside_study_fixed_is_refused(tmp_path, capsys, written, shown):
    # gin took it and no run read it: the study trained with the setting of study.fixed, without a word
    from tests.test_study import write_study

    path = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, written, "STEPS = 3"]) + "\n")  # a macro is not a run's setting
    setting = written.split(" = ")[0]
    assert_user_error(capsys, study.main([str(path), "--runs_root", str(tmp_path / "runs"), "--dry_run"]),
                      f"bad study file '{path}': line {len(lines) + 1} binds {setting}, which no run reads (a run's "
                      f"settings come from study.fixed and study.sweep alone); give it there: study.fixed = {shown}")
    assert not (tmp_path / "runs").exists()


def test_missing_gin_file(tmp_path, capsys):
    code = train.main(["--gin", str(tmp_path / "nope.gin"), "--run_dir", str(tmp_path / "run")])
    assert_user_error(capsys, code, "nope.gin", "not found")


def test_a_folder_given_as_a_gin_file_or_study_file_is_said_to_be_a_folder(tmp_path, capsys):
    # "not found" had sent the user looking for a folder that is there
    from dlbench.cli import study

    (tmp_path / "configs").mkdir()
    (tmp_path / "mine.gin").mkdir()
    code = train.main(["--gin", str(tmp_path / "configs"), "--run_dir", str(tmp_path / "run")])
    assert_user_error(capsys, code, f"'{tmp_path / 'configs'}' is a folder, not a gin file")
    assert_user_error(capsys, study.main([str(tmp_path / "mine.gin"), "--status"]),
                      f"'{tmp_path / 'mine.gin'}' is a folder, not a study file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "mine.gin"]


def test_a_run_whose_config_gin_is_gone_is_said_to_be_a_run(trained_run, capsys):
    # "holds no run with a config" had been said of a finished run
    (trained_run / "model" / "config.gin").unlink()
    assert_user_error(capsys, train.main(["--run_dir", str(trained_run)]),
                      f"'{trained_run}' holds a run (done) whose own config ({trained_run / 'model' / 'config.gin'}) is "
                      f"missing; restore it from a copy, or give the gin files it trained with")


def test_a_run_dir_that_does_not_exist_is_said_not_to_exist(tmp_path, capsys):
    # "holds no run with a config (.../model/config.gin is missing)" had been said of a mistyped --run_dir
    assert_user_error(capsys, train.main(["--run_dir", str(tmp_path / "nope")]),
                      f"'{tmp_path / 'nope'}' does not exist: check the --run_dir of the run to train on, or give "
                      f"--gin FILE to start a new run there")
    (tmp_path / "empty").mkdir()
    assert_user_error(capsys, train.main(["--run_dir", str(tmp_path / "empty")]), "holds no run with a config")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


@pytest.mark.parametrize("gone", ["checkpoint.pt", "results.json"])
def test_a_finished_run_whose_weights_or_results_are_gone_is_not_said_finished(trained_run, capsys, gone):
    # "training already finished; left alone" and exit 0 had been said of it, as dlb_postprocess then refused it
    path = trained_run / "model" / gone
    path.unlink()
    assert_user_error(capsys, train.main(["--run_dir", str(trained_run)]),
                      f"'{path}' is missing, though run.json says the training finished; restore it from a copy, "
                      f"or train the run again with dlb_train --run_dir {trained_run} --overwrite")
    assert not path.exists()


def test_gin_param_alone_on_a_run_says_it_needs_the_runs_own_config(trained_run):
    # "no method given: bind train.method" had been said to a user changing the run's steps
    before = files_of(trained_run)
    config = trained_run / "model" / "config.gin"
    result = run_in_process("dlb_train", "--run_dir", trained_run, "--gin_param", "train.steps = 190")
    assert_one_line_error(result, "--gin_param needs --gin",
                          f"'{trained_run}' holds a run whose own config is {config}", f"give --gin {config} with them",
                          "--overwrite", "or --run_dir alone to resume it")
    assert files_of(trained_run) == before


def test_no_gin_at_all(capsys):
    assert_user_error(capsys, train.main([]), "--gin")


def test_unknown_dataset(tiny_dsprites, tmp_path, capsys):
    code = train.main(tiny_train_args(tmp_path / "run", "dataset.name = 'mnist3d'"))
    assert_user_error(capsys, code, "dataset.name must be one of", "'dsprites'", "got 'mnist3d'")
    assert not (tmp_path / "run").exists()


def test_corrupt_dataset_file(tmp_path, monkeypatch, capsys):
    from dlbench.data.dsprites import FILENAME

    (tmp_path / "data" / "dsprites").mkdir(parents=True)
    (tmp_path / "data" / "dsprites" / FILENAME).write_bytes(b"not an npz at all")
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "data"))
    code = train.main(tiny_train_args(tmp_path / "run"))
    assert_user_error(capsys, code, FILENAME)
    assert not (tmp_path / "run").exists()


def test_cuda_without_cuda(tiny_dsprites, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = train.main(tiny_train_args(tmp_path / "run") + ["--device", "cuda"])
    assert_user_error(capsys, code, "CUDA is not available")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", [evaluate.main, postprocess.main])
def test_missing_run_dir(tmp_path, capsys, command):
    code = command([str(tmp_path / "nowhere")])
    assert_user_error(capsys, code, "does not exist")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("command", [evaluate.main, postprocess.main])
def test_run_dir_that_is_not_a_run(tmp_path, capsys, command):
    code = command([str(tmp_path)])
    assert_user_error(capsys, code, "is a folder, not a run directory")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a_file").write_text("")
    assert_user_error(capsys, command([str(tmp_path / "a_file")]), "is a file, not a run directory")


@pytest.mark.parametrize("command", [evaluate.main, postprocess.main])
def test_a_folder_of_a_run_or_of_runs_names_the_run_to_give(tmp_path, capsys, command, monkeypatch):
    # both had been told "give the RUN_DIR that dlb_train wrote", naming none
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "b8" / "model").mkdir(parents=True)
    (tmp_path / "runs" / "b8" / "run.json").write_text('{"status": "done"}')
    (tmp_path / "runs" / "b8" / "model" / "config.gin").write_text("")
    assert_user_error(capsys, command(["runs/b8/model"]),
                      "'runs/b8/model' is a folder inside the run directory 'runs/b8'; give that run directory")
    assert_user_error(capsys, command(["runs/b8/model/config.gin"]), "is a file inside the run directory 'runs/b8'")
    assert_user_error(capsys, command(["runs"]), "'runs' is a folder of runs, not a run directory (no run.json); give "
                                                 "one run directory, e.g. 'runs/b8'")
    (tmp_path / "home" / "a" / "b" / "c").mkdir(parents=True)  # a run 4 folders down is not searched for
    Path("runs/b8").rename("home/a/b/c/b8")
    assert_user_error(capsys, command(["home"]), "'home' is a folder, not a run directory")


def make_unfinished_run(run_dir):
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"status": "interrupted", "dataset": "dsprites"}))
    return run_dir


@pytest.mark.parametrize("command", [evaluate.main, postprocess.main])
def test_evaluating_an_unfinished_run(tmp_path, capsys, command):
    run_dir = make_unfinished_run(tmp_path / "run")
    code = command([str(run_dir)])
    assert_user_error(capsys, code, "has not finished")
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]


@pytest.mark.parametrize("command", [evaluate.main, postprocess.main])
def test_a_run_still_training_names_the_process_training_it(tmp_path, capsys, command):
    # it had said to finish it with dlb_train, which the claim refuses while the run trains
    import os
    import socket
    import time

    run_dir = make_unfinished_run(tmp_path / "run")
    trainer = os.getppid()  # a live process that is not this one
    (run_dir / "claim.json").write_text(json.dumps({
        "token": "t", "purpose": "trained", "host": socket.gethostname(), "pid": trainer, "acquired": time.time(),
        "lease_seconds": 600}))
    line = assert_user_error(capsys, command([str(run_dir)]), f"is being trained by process {trainer}")
    assert "dlb_train" not in line


def test_unknown_metric(tmp_path, capsys):
    run_dir = make_unfinished_run(tmp_path / "run")
    code = evaluate.main([str(run_dir), "--metrics", "mig,sap_scor"])
    assert_user_error(capsys, code, "unknown metric 'sap_scor'")
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]


@pytest.mark.parametrize("command", [evaluate.main, postprocess.main])
def test_unknown_postprocess_mode(tmp_path, capsys, command):
    run_dir = make_unfinished_run(tmp_path / "run")
    code = command([str(run_dir), "--mode", "median"])
    assert_user_error(capsys, code, "unknown postprocess mode 'median'")
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]


def test_missing_runs_root(tmp_path, capsys):
    code = aggregate.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert_user_error(capsys, code, "RUNS_ROOT", "does not exist")
    assert not (tmp_path / "out").exists()


def test_runs_root_without_runs(tmp_path, capsys):
    code = aggregate.main([str(tmp_path), "--out", str(tmp_path / "out")])
    assert_user_error(capsys, code, "no runs")


def test_unknown_study_and_bad_shard(tmp_path, capsys):
    assert_user_error(capsys, study.main(["nostudy", "--runs_root", str(tmp_path)]), "unknown study 'nostudy'")
    assert_user_error(capsys, study.main(["quickstart", "--runs_root", str(tmp_path), "--shard", "3/2"]), "--shard")
    # a value starting with '-' had been read as a flag: "expected one argument", not what is wrong with it
    assert_user_error(capsys, study.main(["quickstart", "--runs_root", str(tmp_path), "--shard", "-1/2"]),
                      "bad --shard '-1/2'; write I/N")
    # and as argparse takes the start of a flag for the flag, so does that: --sha had still said "expected one argument"
    assert_user_error(capsys, study.main(["quickstart", "--runs_root", str(tmp_path), "--sha", "-1/2"]),
                      "bad --shard '-1/2'; write I/N")
    assert_user_error(capsys, study.main(["quickstart", "--runs_root", str(tmp_path), "--s", "-1/2"]),
                      "ambiguous option: --s could match")  # argparse's to refuse
    assert_user_error(capsys, study.main(["quickstart", "--runs_root", str(tmp_path), "--executor", "ray",
                                          "--gpus_per_worker", "-1e-3"]), "--gpus_per_worker must be positive")
    # a shard with no runs would do nothing and call the study done
    runs = len(load_study("quickstart").runs)
    assert_user_error(capsys, study.main(["quickstart", "--runs_root", str(tmp_path), "--shard", f"{runs}/{runs + 1}"]),
                      f"holds none of the {runs} runs")
    assert list(tmp_path.iterdir()) == []


def test_bad_slurm_values_are_refused_with_or_without_slurm(tmp_path, capsys):
    for executor in (["--executor", "slurm"], []):
        for flag in ("--slurm_time", "--array_parallelism"):
            for value in ("0", "-5"):
                code = study.main(["quickstart", "--runs_root", str(tmp_path), *executor, flag, value, "--dry_run"])
                assert_user_error(capsys, code, f"{flag} must be at least 1, got {value}")


def test_a_dry_run_passes_the_device_on_in_its_commands(tiny_dsprites, tmp_path, capsys, monkeypatch):
    # the commands may be for a GPU cluster's nodes, printed on a login node without a GPU
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert study.main(["quickstart", "--runs_root", str(tmp_path / "runs"), "--device", "cuda", "--dry_run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all("--device cuda --run_dir" in line for line in lines)


def test_unknown_flag(capsys):
    assert_user_error(capsys, evaluate.main(["x", "--metricz", "mig"]), "--metricz")


def test_installed_script_prints_one_line_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "bin" / "dlb_train"), "--gin", str(tmp_path / "no.gin")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("dlb_train: error: gin file")


def test_a_study_refuses_a_data_folder_under_a_file_before_it_writes(tmp_path, capsys, monkeypatch):
    (tmp_path / "a_file").write_text("")
    for root, needle in ((tmp_path / "a_file", "is a file"), (tmp_path / "a_file" / "data", "is under a file")):
        monkeypatch.setenv("DLBENCH_DATA", str(root))
        code = study.main(["quickstart", "--runs_root", str(tmp_path / "runs"), "--device", "cpu"])
        assert_user_error(capsys, code, f"the data folder '{root}' (DLBENCH_DATA) {needle}")
    assert not (tmp_path / "runs").exists()  # each run had failed on it in turn, study.json written


def test_a_reader_that_leaves_early_is_not_called_a_disk_fault(tmp_path):
    # `dlb_study ... --dry_run | head -1`: the pipe closes before dlb_study writes
    process = subprocess.Popen([sys.executable, "-c", "from dlbench.cli.study import main; raise SystemExit(main())",
                                "quickstart", "--runs_root", str(tmp_path / "runs"), "--dry_run"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and stderr == "", stderr


FULL = "No space left on device"


@pytest.mark.parametrize("command, args", [
    (train.main, ["--help"]), (evaluate.main, ["--help"]), (data.main, ["list"]),
    (study.main, ["quickstart", "--runs_root", "runs", "--dry_run"])])
def test_output_into_a_full_disk_is_said_in_one_line(tmp_path, monkeypatch, capsys, command, args):
    # `dlb_data list > file` on a full disk had said "cannot use: No space left on device", naming
    # nothing, and `--help > file` had exited 0 with nothing written (argparse drops the fault)
    monkeypatch.chdir(tmp_path)
    full = open("/dev/full", "w")  # every write to it fails as a full disk's
    monkeypatch.setattr(sys, "stdout", full)
    code = command(args)
    monkeypatch.undo()
    with contextlib.suppress(OSError):  # closing flushes what is still held, in vain
        full.close()
    assert_user_error(capsys, code, "cannot write to standard output: " + FULL, "free some space")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_behind_the_output_of_an_installed_script_is_one_line_and_status_2():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, str(REPO / "bin" / "dlb_train"), "--help"], stdout=full,
                                stderr=subprocess.PIPE, text=True, env={"PYTHONPATH": str(REPO)}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"dlb_train: error: cannot write to standard output: {FULL}; free some space (or choose " \
                            f"a folder on another disk) and run the command again\n"


@pytest.mark.parametrize("command, args", [
    (train.main, ["--run_dir", ""]), (postprocess.main, [""]), (evaluate.main, [""]), (aggregate.main, [""]),
    (aggregate.main, ["runs", "--out", " "]), (study.main, ["quickstart", "--runs_root", ""]),
    (data.main, ["make", "dsprites", "--path", ""]), (data.main, ["verify", "dsprites", "--path", ""])])
def test_an_empty_path_is_refused(tmp_path, monkeypatch, capsys, command, args):
    # Path('') is the current folder: dlb_train had trained into runs/ there, dlb_postprocess read '.'
    monkeypatch.chdir(tmp_path)
    assert_user_error(capsys, command(args), "an empty path")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("gin_text, needle", [
    ("train.steps = 40", "no method given: bind train.method"),
    ("train.method = @beta_vae()\nbeta_vae.beta = %BETA", "the macro %BETA is used but never bound"),
])
def test_gins_internal_errors_are_said_in_words(tiny_dsprites, tmp_path, capsys, gin_text, needle):
    (tmp_path / "config.gin").write_text(gin_text + "\n")
    code = train.main(["--gin", str(tmp_path / "config.gin"), "--run_dir", str(tmp_path / "run"), "--device", "cpu"])
    assert_user_error(capsys, code, needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("binding, said", [
    ("train.method = @beta_vae", "train.method = @beta_vae names the method without calling it; write @beta_vae() "
                                 "(with the parentheses)"),
    ("train.method = @lp_nested_isa", "train.method = @lp_nested_isa names a prior, not a method; give a method such "
                                      "as @beta_vae(), and choose the prior with model.prior = 'lp_nested_isa'"),
    ("model.prior = @student_t", "model.prior takes a prior's name, not a reference: write model.prior = "
                                 "'student_t' (its settings are bound as student_t.NAME = VALUE)"),
    ("model.prior = @lp_nested_isa()", "write model.prior = 'lp_nested_isa'")])
def test_a_reference_in_the_wrong_form_is_said_in_the_form_it_was_written(tiny_dsprites, tmp_path, capsys, binding,
                                                                          said):
    # the class gin handed over had been printed: "got <class 'dlbench.methods.beta_vae.BetaVAE'>"
    assert_user_error(capsys, train.main(tiny_train_args(tmp_path / "run", binding)), said)
    assert not (tmp_path / "run").exists()


def test_a_binding_the_run_does_not_use_is_noted(tiny_dsprites, tmp_path, capsys):
    # gin ignores bindings of configurables never called: a beta_tcvae.beta in a beta_vae run trained with beta 4
    args = tiny_train_args(tmp_path / "run", "beta_tcvae.beta = 8.0", "train.steps = 2")
    assert train.main(args) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dlb_train: note: this beta_vae run does not use 'beta_tcvae.beta = 8.0'" in err
    assert train.main(tiny_train_args(tmp_path / "used", "train.steps = 2")) == 0
    assert capsys.readouterr().err == ""


def test_a_binding_of_a_gin_file_the_run_does_not_use_is_noted(tiny_dsprites, tmp_path, capsys):
    # noted for --gin_param only: a gin file's beta_tcvae.beta in a beta_vae run, or the beta_vae.gin's
    # beta of a run a --gin_param made a dip_vae, had been ignored without a word
    config = tmp_path / "mine.gin"
    config.write_text("beta_tcvae.beta = 8.0\nbeta_tcvae.alpha = 2.0\n")
    assert train.main([*tiny_train_args(tmp_path / "run", "train.steps = 2"), "--gin", str(config)]) == 0
    assert capsys.readouterr().err == ("dlb_train: note: this beta_vae run does not use beta_tcvae.alpha, "
                                       "beta_tcvae.beta of its gin files (a method or prior it does not call); gin "
                                       "ignores them\n")
    params = [p for p in tiny_params("train.steps = 2", "train.method = @dip_vae()") if not p.startswith("beta_vae.")]
    assert train.main(["--gin", str(REPO / "gin" / "beta_vae.gin"), "--run_dir", str(tmp_path / "dip"), "--device",
                       "cpu", "--no_progress", *(arg for p in params for arg in ("--gin_param", p))]) == 0
    err = capsys.readouterr().err
    assert "this dip_vae run does not use beta_vae.beta of its gin files" in err, err
    # a run trained on with its own config (model/config.gin) has nothing to say
    assert train.main(["--run_dir", str(tmp_path / "dip"), "--device", "cpu", "--no_progress"]) == 0
    assert capsys.readouterr().err == ""


def test_a_scope_the_run_does_not_call_is_noted(tiny_dsprites, tmp_path, capsys):
    # 'foo/beta_vae.beta = 9.0' in a gin file: the run trained with beta 4 without a word
    scoped = tmp_path / "scoped.gin"
    scoped.write_text("foo/beta_vae.beta = 9.0\n")
    assert train.main([*tiny_train_args(tmp_path / "run", "train.steps = 2"), "--gin", str(scoped)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dlb_train: note: this run calls no foo/beta_vae" in err, err
    # the same through --gin_param is said once, by the same note: its scope is what goes uncalled (a
    # note had blamed a method or prior the run does not call, of foo/train.lr, where train is called)
    for binding, scope in (("foo/beta_vae.beta = 9.0", "foo/beta_vae"), ("foo/train.lr = 1e-3", "foo/train")):
        assert train.main(tiny_train_args(tmp_path / scope.replace("/", "_"), "train.steps = 2", binding)) == 0
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"dlb_train: note: this run calls no {scope}" in err, err


def test_a_macro_the_run_does_not_use_is_noted(tiny_dsprites, tmp_path, capsys):
    # 'train/lr = 1' (for train.lr) is a macro to gin, which ignored it: the run trained with its lr without a word
    config = tmp_path / "typo.gin"
    config.write_text("train/lr = 1\nEPS = 1e-7\ntrain.adam_eps = %EPS\n")  # EPS is used
    assert train.main([*tiny_train_args(tmp_path / "run", "train.steps = 2"), "--gin", str(config)]) == 0
    err = capsys.readouterr().err
    assert err == ("dlb_train: note: the run uses no macro train/lr: gin ignores its value; a setting is bound as "
                   "NAME.PARAM = VALUE (train.lr = ...)\n"), err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["train"]["adam_eps"] == 1e-7
    assert train.main(tiny_train_args(tmp_path / "macro", "train.steps = 2", "UNUSED = 3")) == 0
    assert capsys.readouterr().err == "dlb_train: note: the run uses no macro UNUSED: gin ignores its value\n"


def test_a_runs_own_config_changed_by_hand_is_said_so(trained_run, capsys):
    # the message had advised `dlb_train --run_dir RUN` alone: the command that had just been run
    from dlbench import rundir

    rundir.mark_stopped(trained_run, rundir.Status.INTERRUPTED, "SIGTERM")
    config = trained_run / "model" / "config.gin"
    config.write_text(config.read_text().replace("beta_vae.beta = 4.0", "beta_vae.beta = 8.0"))
    assert_user_error(capsys, train.main(["--run_dir", str(trained_run), "--no_progress"]),
                      f"'{config}' was changed since the run started (beta_vae.beta: 4.0 -> 8.0)", "--overwrite")


def test_a_run_trained_on_a_gpu_does_not_resume_on_the_cpu(tiny_dsprites, tmp_path, capsys, monkeypatch):
    # its generator's state does not load into a CPU generator: every checkpoint had been called
    # unreadable, and --overwrite advised, which throws away the GPU's hours
    from dlbench import rundir
    from dlbench.train.loop import Trainer

    run_dir = tmp_path / "run"
    sample_batch, calls = Trainer.sample_batch, []

    def stopped_at_step_13(self, *args):
        calls.append(1)
        if len(calls) == 13:
            raise KeyboardInterrupt
        return sample_batch(self, *args)

    with monkeypatch.context() as patch:  # for this command only: $DLBENCH_DATA stays at the tiny grid
        patch.setattr(Trainer, "sample_batch", stopped_at_step_13)
        assert train.main(tiny_train_args(run_dir)) == 130
    rundir.update_run(run_dir, device="cuda:0")  # as a GPU's session records it
    assert rundir.checkpoint_paths(run_dir)
    before = files_of(run_dir)
    capsys.readouterr()
    assert_user_error(capsys, train.main(["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]),
                      "was trained on the cuda: resume it there (--device cuda)", "cannot go on on the cpu")
    assert files_of(run_dir) == before


def test_an_architecture_the_data_does_not_fit_is_refused_before_a_study_starts(tiny_dsprites, tmp_path, capsys):
    # dcgan on 64x64 dSprites had failed at training time, after the study's other runs, with no run.json
    from tests.test_study import write_study

    path = write_study(tmp_path / "s.gin", "{'model.architecture': ['conv', 'dcgan']}")
    code = study.main([str(path), "--runs_root", str(tmp_path / "runs"), "--device", "cpu"])
    assert_user_error(capsys, code, "run with model.architecture = 'dcgan'", "needs 32x32 images")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dataset, shape", [("pinwheel", "(2,)"), ("linear_gaussian", "(10,)")])
def test_a_likelihood_the_data_does_not_fit_is_refused_before_anything_is_written(tmp_path, capsys, dataset, shape):
    # the bernoulli default on real-valued vectors had ended training in an IndexError, the run marked failed
    from tests.test_study import write_study

    run_dir = tmp_path / "run"
    code = train.main(tiny_train_args(run_dir, f"dataset.name = '{dataset}'", "model.architecture = 'mlp'"))
    assert_user_error(capsys, code, "the bernoulli likelihood (model.likelihood) is for images",
                      f"vectors of shape {shape}: use model.likelihood = 'gaussian'")
    assert not run_dir.exists()
    if dataset == "pinwheel":  # a study is refused before its first run (a linear Gaussian's shape needs the data)
        path = write_study(tmp_path / "s.gin", "{'dataset.name': ['pinwheel'], 'model.architecture': ['mlp']}",
                           metrics="['recon_ll']")
        code = study.main([str(path), "--runs_root", str(tmp_path / "runs"), "--device", "cpu"])
        assert_user_error(capsys, code, "the bernoulli likelihood (model.likelihood) is for images")
        assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("cycle", [["self.gin"], ["a.gin", "b.gin"]])
def test_a_gin_file_that_includes_itself_is_one_line(tmp_path, capsys, cycle):
    # gin follows includes round the cycle: dlb_train and dlb_study had printed 3,000 lines of RecursionError
    from tests.test_study import write_study

    for name, included in zip(cycle, cycle[1:] + cycle[:1]):
        (tmp_path / name).write_text(f"include '{included}'\n")
    code = train.main(tiny_train_args(tmp_path / "run") + ["--gin", str(tmp_path / cycle[0])])
    assert_user_error(capsys, code, f"gin file '{tmp_path / cycle[0]}'", "a file includes itself")
    study_path = write_study(tmp_path / "s.gin", "{'train.seed': [0]}")
    bases = f"['beta_vae.gin', '{tmp_path / cycle[0]}']"
    study_path.write_text(study_path.read_text().replace("['beta_vae.gin']", bases))
    assert_user_error(capsys, study.main([str(study_path), "--runs_root", str(tmp_path / "runs"), "--dry_run"]),
                      "a file includes itself")
    (tmp_path / "itself.gin").write_text("include 'itself.gin'\n")  # the study file itself
    assert_user_error(capsys, study.main([str(tmp_path / "itself.gin"), "--runs_root", str(tmp_path / "runs")]),
                      f"bad study file '{tmp_path / 'itself.gin'}': a file includes itself")
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def write_nested_includes(folder, innermost):
    """folder/top.gin includes sub/a.gin, which includes b.gin beside it, which holds `innermost`."""
    (folder / "sub").mkdir(parents=True)
    (folder / "top.gin").write_text("include 'sub/a.gin'\n")
    (folder / "sub" / "a.gin").write_text("include 'b.gin'\n")
    (folder / "sub" / "b.gin").write_text(innermost)
    return folder / "top.gin"


def test_an_include_in_an_included_file_is_found_beside_it(tiny_data_root, tmp_path):
    # gin had looked for it in the working folder and the --gin file's folder only: 'Unable to open file: b.gin'
    top = write_nested_includes(tmp_path / "config", "beta_vae.beta = 3.0\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.gin").write_text("beta_vae.beta = 9.0\n")  # in the working folder, which gin had looked in first
    params = [p for p in TINY_PARAMS if not p.startswith("beta_vae.beta")]  # b.gin binds it
    args = ["--gin", top, "--run_dir", tmp_path / "run", "--device", "cpu", "--no_progress"]
    result = run_in_process("dlb_train", *args, *(arg for p in params for arg in ("--gin_param", p)),
                            data_root=tiny_data_root, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "run" / "run.json").read_text())["hyperparameters"] == {"beta": 3.0}


def test_an_include_not_found_names_the_file_that_includes_it(tiny_data_root, tmp_path):
    # gin's 'Unable to open file: b.gin. Searched config paths: [...]' had come with the advice for a
    # binding, 'a binding is NAME.PARAM = VALUE', and without the file the include is in (nor its line)
    from tests.test_study import write_study

    top = write_nested_includes(tmp_path, "# a comment\n\ninclude 'missing.gin'\n")
    result = run_in_process("dlb_train", "--gin", top, *tiny_train_args(tmp_path / "run"),
                            data_root=tiny_data_root, cwd=tmp_path / "sub")
    line = assert_one_line_error(result, f"bad gin config in gin file '{top}': 'missing.gin', which "
                                         f"{tmp_path / 'sub' / 'b.gin'} includes on line 3, is not found (looked in "
                                         f"{tmp_path / 'sub'}, the working folder,",
                                 f"correct the include's path in {tmp_path / 'sub' / 'b.gin'}")
    assert "a binding is" not in line and "Unable to open" not in line
    study_path = write_study(tmp_path / "s.gin", "{'train.seed': [0]}")
    study_path.write_text("include 'sub/a.gin'\n" + study_path.read_text())
    result = run_in_process("dlb_study", study_path, "--runs_root", tmp_path / "runs", "--dry_run",
                            data_root=tiny_data_root)
    assert_one_line_error(result, f"bad study file '{study_path}': 'missing.gin', which {tmp_path / 'sub' / 'b.gin'} "
                                  f"includes on line 3, is not found")
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()


def test_a_run_dir_under_a_file_names_that_file(tiny_dsprites, tmp_path, capsys):
    (tmp_path / "a_file").write_text("")
    run_dir = tmp_path / "a_file" / "x" / "run"
    code = train.main(["--gin", str(REPO / "gin" / "beta_vae.gin"), *tiny_train_args(run_dir)])
    assert_user_error(capsys, code, f"'{run_dir}': Not a directory", f"'{tmp_path / 'a_file'}' is a file, not a folder")


def test_a_value_that_is_not_a_literal_is_named_with_its_line(tmp_path, capsys):
    # Python's words had reached the user: "malformed node or string on line 1: <ast.Name object at 0x...>"
    from tests.test_study import write_study

    (tmp_path / "mine.gin").write_text("include 'beta_vae.gin'\n\nbeta_vae.beta = four\n")
    line = assert_user_error(capsys, train.main(tiny_train_args(tmp_path / "run") + ["--gin", str(tmp_path / "mine.gin")]),
                             f"gin file '{tmp_path / 'mine.gin'}': line 3: 'four' is not a Python literal", "quote strings")
    assert "ast." not in line
    study_path = write_study(tmp_path / "s.gin", "{\n    'train.seed': [0, one],\n}")
    sweep_line = 1 + study_path.read_text().splitlines().index("    'train.seed': [0, one],")
    line = assert_user_error(capsys, study.main([str(study_path), "--runs_root", str(tmp_path / "runs"), "--dry_run"]),
                             f"bad study file '{study_path}': line {sweep_line}: 'one' is not a Python literal")
    assert "ast." not in line
    assert not (tmp_path / "run").exists() and not (tmp_path / "runs").exists()
