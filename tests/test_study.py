"""Studies as first-class objects: the sweep algebra, stable run names, study.json, pasteable dry
runs, --status, and the local executor (a pool of workers, and two dlb_study processes at once)
training each run exactly once."""

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dlbench.errors import UserError
from dlbench.study import load_study, run_name
from dlbench.study.sweep import binding, expand
from tests.commands import REPO, assert_one_line_error, run_command, run_in_process, tree
from tests.conftest import TINY_PARAMS


def test_a_dict_is_a_product_a_tuple_key_zips_and_a_list_chains():
    assert expand({"a.x": [1, 2], "a.y": ["u", "v"]}) == [
        {"a.x": 1, "a.y": "u"}, {"a.x": 1, "a.y": "v"}, {"a.x": 2, "a.y": "u"}, {"a.x": 2, "a.y": "v"}]
    assert expand({("a.x", "a.y"): [(1, "u"), (2, "v")], "train.seed": [0]}) == [
        {"a.x": 1, "a.y": "u", "train.seed": 0}, {"a.x": 2, "a.y": "v", "train.seed": 0}]
    assert expand([{"m.a": [1]}, {"n.b": [2, 3]}]) == [{"m.a": 1}, {"n.b": 2}, {"n.b": 3}]
    assert expand(None) == [{}]
    assert binding("train.method", "@beta_tcvae()") == "train.method = @beta_tcvae()"
    assert binding("dataset.name", "dsprites") == "dataset.name = 'dsprites'"


@pytest.mark.parametrize("sweep, needle", [
    ({"a.x": []}, "non-empty list"),
    ({"a.x": 3}, "non-empty list"),
    ({("a.x", "a.y"): [(1,)]}, "tuple of 2"),
    ({"x": [1]}, "is not a binding"),
    ([], "empty list"),
    ("a.x", "must be a dict"),
])
def test_malformed_sweeps_are_named(sweep, needle):
    with pytest.raises(UserError, match=needle):
        expand(sweep)


def test_run_names_say_what_the_run_is():
    assert run_name("beta_vae", {"beta_vae.beta": 4.0, "train.seed": 3}, 3) == "beta_vae/beta=4.0/seed=3"
    assert run_name("beta_tcvae", {"train.method": "@beta_tcvae()", "beta_tcvae.beta": 6.0, "train.lr": 1e-3}, 0) == \
        "beta_tcvae/beta=6.0,lr=0.001/seed=0"
    assert run_name("beta_vae", {}, 0) == "beta_vae/seed=0"


def write_study(path, sweep, metrics="['mig']", name=None):
    fixed = ", ".join(f"'{p.split('=')[0].strip()}': {p.split('=', 1)[1].strip()}"
                      for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae.beta")))
    path.write_text("\n".join([
        "study.base_gin = ['beta_vae.gin']",
        f"study.fixed = {{{fixed}}}",
        f"study.sweep = {sweep}",
        f"study.metrics = {metrics}",
        "study.metric_params = {'mig': {'num_train': 200}}" if metrics == "['mig']" else "",
    ]))
    return path


def test_a_run_config_given_as_a_study_says_so(tiny_dsprites, tmp_path):
    # gin's "Required bindings for `study` not provided in config: ['base_gin']" had been said
    config = REPO / "gin" / "beta_vae.gin"
    result = run_in_process("dlb_study", config, "--runs_root", tmp_path / "runs", "--dry_run", data_root=tiny_dsprites)
    assert_one_line_error(result, f"'{config}' is a run config, not a study file (it binds no study.base_gin); train "
                                  f"it with dlb_train --gin {config}, or see gin/studies/ for study files")
    assert tree(tmp_path) == []


@pytest.mark.parametrize("extra", [["--dry_run"], []], ids=["dry_run", "run"])
def test_more_cpu_workers_than_cores_is_one_line_and_nothing_is_written(tiny_dsprites, tmp_path, extra):
    # --workers 99999999999999999999 had started the study (four single-threaded workers sharing two cores)
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    cores = os.cpu_count()
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--device", "cpu", "--workers",
                            str(cores + 1), *extra, data_root=tiny_dsprites)
    assert_one_line_error(result, f"--workers {cores + 1} is more workers than this machine's {cores} cores",
                          f"give at most {cores}")
    assert tree(tmp_path) == ["s.gin"]


def test_a_binding_given_twice_in_a_study_file_is_one_line_and_nothing_is_written(tiny_dsprites, tmp_path):
    # gin keeps the last binding without a word: the first sweep's values had been dropped unseen
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    study.write_text(study.read_text() + "\nstudy.sweep = {'beta_vae.beta': [4.0]}\n")
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--dry_run", data_root=tiny_dsprites)
    assert_one_line_error(result, f"bad study file '{study}'", "study.sweep is bound twice, on lines 3 and 6",
                          "keep one")
    assert tree(tmp_path) == ["s.gin"]


def test_a_swept_binding_replaces_the_fixed_one_of_its_name_in_the_run_commands(tiny_dsprites, tmp_path):
    # both had been given, the fixed first: a --dry_run command that dlb_train refuses
    study = write_study(tmp_path / "s.gin", "{'train.steps': [6]}")
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--dry_run", data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout.strip().split(": ", 1)[1])
    bindings = [command[i + 1] for i, arg in enumerate(command) if arg == "--gin_param"]
    assert [b for b in bindings if b.startswith("train.steps")] == ["train.steps = 6"]


def test_a_study_file_may_bind_again_what_the_study_it_includes_binds(tiny_dsprites, tmp_path):
    # how a smoke run shrinks a named study (reports/reproductions/common.sh), and a study varies another
    base = write_study(tmp_path / "base.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    (tmp_path / "narrow.gin").write_text(f"include '{base}'\nstudy.sweep = {{'beta_vae.beta': [4.0]}}\n")
    assert [spec.name for spec in load_study(str(tmp_path / "narrow.gin")).runs] == ["beta_vae/beta=4.0/seed=0"]


def test_a_study_that_grows_keeps_the_names_of_its_runs(tiny_dsprites, tmp_path):
    small = load_study(str(write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0], 'train.seed': [0]}")))
    grown = load_study(str(write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 4.0, 8.0], 'train.seed': [0, 1]}")))
    old = {spec.name: spec.gin_params for spec in small.runs}
    new = {spec.name: spec.gin_params for spec in grown.runs}
    assert set(old) == {"beta_vae/beta=1.0/seed=0", "beta_vae/beta=8.0/seed=0"}
    assert len(new) == 6 and all(new[name] == params for name, params in old.items())


def test_runs_that_would_share_a_name_get_a_hash(tiny_dsprites, tmp_path):
    study = load_study(str(write_study(tmp_path / "s.gin",
                                       "[{'model.latent_dim': [4]}, {'model.latent_dim': [4], 'train.lr': [0.002]}]")))
    names = [spec.name for spec in study.runs]
    assert names == ["beta_vae/latent_dim=4/seed=0", "beta_vae/latent_dim=4,lr=0.002/seed=0"]  # no hash needed
    # names that would clash get a hash of their bindings
    from dlbench.study import _unique_names

    specs = [type("Spec", (), {"gin_params": params}) for params in (["a = 'x y'"], ["a = 'xy'"])]
    first, second = _unique_names(["m/a=xy/seed=0", "m/a=xy/seed=0"], specs)
    assert first != second and first.startswith("m/a=xy,h") and first.endswith("/seed=0")
    # the run given twice is named (it had been "the same run more than once")
    with pytest.raises(UserError, match=r"gives the run beta_vae/lr=0.001/seed=0 more than once; remove the repeated"):
        load_study(str(write_study(tmp_path / "u.gin", "[{'train.lr': [0.001]}, {'train.lr': [0.001]}]")))


@pytest.mark.parametrize("sweep", [
    "{'beta_vae.beta': [1, 1.0]}",  # written differently, the same number
    "[{'train.adam_betas': [(0.5, 0.9)]}, {'train.adam_betas': [[0.5, 0.9]]}]",  # a tuple and a list
    "[{'model.latent_dim': [4]}, {'model.latent_dim': [4], 'train.lr': [0.001]}]",  # the fixed value given again
])
def test_a_sweep_that_names_one_run_twice_in_other_words_is_refused(tiny_dsprites, tmp_path, sweep):
    # the same model had been trained twice, and aggregated as a duplicate
    with pytest.raises(UserError, match="are the same run .* remove the repeated value from study.sweep"):
        load_study(str(write_study(tmp_path / "s.gin", sweep)))


@pytest.mark.parametrize("sweep", [
    "{'beta_tcvae.beta': [2.0]}",  # had named the run beta_vae/beta=2.0/seed=0, trained at beta_vae's beta 4
    "{'beta_tcvae.beta': [1.0, 2.0]}",  # had been called two runs "the same", with no repeated value
    "[{'beta_vae.beta': [1.0]}, {'student_t.nu': [3.0]}]",  # a prior the run does not have
])
def test_a_swept_value_the_run_does_not_read_is_refused(tiny_dsprites, tmp_path, sweep):
    with pytest.raises(UserError, match=r"study.sweep sets \S+ = \S+, which this beta_vae run does not read \(a "
                                        r"method or prior it does not call\); sweep it with the method or prior"):
        load_study(str(write_study(tmp_path / "s.gin", sweep)))
    # a fixed one may go unread by some runs: a study fixes every method's settings for all its runs
    study = write_study(tmp_path / "f.gin", "[{'beta_vae.beta': [1.0]}, {'train.method': ['@beta_tcvae()']}]")
    study.write_text(study.read_text().replace("study.fixed = {", "study.fixed = {'beta_tcvae.beta': 2.0, "))
    assert [spec.name for spec in load_study(str(study)).runs] == ["beta_vae/beta=1.0/seed=0", "beta_tcvae/seed=0"]
    # but not by all of them (a misspelt method, a prior left out of the sweep): gin had ignored it
    study = write_study(tmp_path / "g.gin", "{'beta_vae.beta': [1.0]}")
    study.write_text(study.read_text().replace("study.fixed = {", "study.fixed = {'beta_tcvae.beta': 2.0, "
                                                                    "'student_t.nu': 4.0, "))
    with pytest.raises(UserError, match=r"study g: study.fixed sets beta_tcvae.beta = 2.0, student_t.nu = 4.0, "
                                        r"which no run of the study reads"):
        load_study(str(study))


def test_a_likelihood_that_cannot_score_data_generated_in_memory_is_refused_before_any_run(tmp_path):
    # a linear Gaussian's shape is its options': its runs had each failed as they started
    study = tmp_path / "lg.gin"
    study.write_text("\n".join(["study.base_gin = ['linear_gaussian_beta_vae.gin']",
                                 "study.fixed = {'model.likelihood': 'bernoulli'}",
                                 "study.sweep = {'train.seed': [0, 1]}", "study.metrics = ['elbo']",
                                 "study.metric_params = {'elbo': {'num_points': 100}}"]))
    with pytest.raises(UserError, match=r"study lg, run beta_vae/seed=0: the bernoulli likelihood .* is for images"):
        load_study(str(study))


PINWHEEL = "'dataset.name': ['pinwheel'], 'model.architecture': ['mlp'], 'model.likelihood': ['gaussian']"


@pytest.mark.parametrize("sweep, metrics, needle", [
    ("'dataset.name': ['dsprites']", "['inference_error']", "needs a dataset with an exact posterior"),
    ("'dataset.name': ['linear_gaussian']", "['mig']", "metric mig needs discrete factors"),
    # elbo had been computed in every run before total_correlation was refused
    ("'dataset.name': ['linear_gaussian']", "['elbo', 'total_correlation']",
     "no finite grid to average over; set total_correlation.num_points in study.metric_params"),
    (PINWHEEL, "['total_correlation']", "set total_correlation.num_points in study.metric_params"),
    (PINWHEEL, "['mig_chen']", "mig_chen needs a full factor grid"),
    # the study's model.latent_dim is 4; linear_gaussian has 2 sources (an option of the data, not its class)
    ("'dataset.name': ['linear_gaussian']", "['inference_error']",
     "the model has 4 latent dimensions, the dataset 2 sources; train with model.latent_dim = 2"),
    # every metric that cannot, in one line (one at a time, a list had taken a run of the command for each),
    # a reason shared by several said once for them all
    ("'dataset.name': ['linear_gaussian']", "['mig', 'recon_ll', 'dci', 'total_correlation']",
     "3 of the metrics asked for cannot score it: metrics mig, dci need discrete factors; dataset linear_gaussian "
     "has continuous ones; choose a metric for continuous factors (e.g. sap with sap.continuous_factors=True, "
     "inference_error, recon_ll) | dataset 'linear_gaussian' has no finite grid to average over; set "
     "total_correlation.num_points in study.metric_params"),
])
def test_a_metric_that_cannot_score_the_studys_data_is_refused_before_any_run(tiny_dsprites, tmp_path, sweep,
                                                                               metrics, needle):
    # every run had trained, then failed its evaluation
    file = write_study(tmp_path / "s.gin", f"{{{sweep}}}", metrics=metrics)
    result = run_in_process("dlb_study", file, "--runs_root", tmp_path / "runs", "--dry_run", data_root=tiny_dsprites)
    assert_one_line_error(result, needle)
    assert not (tmp_path / "runs").exists()


def test_the_metrics_said_to_need_discrete_factors_are_those_that_require_them():
    import inspect

    from dlbench import metrics

    requiring = {name for name in metrics.available_metrics()
                 if "require_discrete_factors(data" in inspect.getsource(inspect.getmodule(metrics.METRICS[name]))}
    assert requiring == metrics.DISCRETE_FACTOR_METRICS | {"sap"}  # sap: unless continuous_factors


def test_the_dry_run_prints_commands_a_shell_can_paste(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [4.0], 'dataset.name': ['dsprites']}")
    result = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--dry_run", data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.strip().splitlines()
    directory, command = line.split(": ", 1)
    args = shlex.split(command)
    assert args[0] == "dlb_train" and "dataset.name = 'dsprites'" in args and "beta_vae.beta = 4.0" in args
    assert args[-2:] == ["--run_dir", directory] and directory.endswith("beta_vae/beta=4.0,name=dsprites/seed=0")
    assert not (tmp_path / "runs").exists()


def test_a_dry_run_command_leaves_out_the_fixed_bindings_its_run_does_not_read(tiny_dsprites, tmp_path):
    # they had been pasted into dlb_train, which noted them as unused, "check the name", of a study that was right
    study = write_study(tmp_path / "s.gin", "[{'beta_vae.beta': [4.0]}, "
                                            "{'train.method': ['@beta_tcvae()'], 'beta_tcvae.beta': [6.0]}]")
    study.write_text(study.read_text().replace("study.fixed = {", "study.fixed = {'beta_tcvae.alpha': 1.0, "))
    runs = tmp_path / "runs"
    result = run_in_process("dlb_study", study, "--runs_root", runs, "--dry_run", data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr
    commands = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    beta_vae, beta_tcvae = (shlex.split(commands[str(runs / name)]) for name in
                            ("beta_vae/beta=4.0/seed=0", "beta_tcvae/beta=6.0/seed=0"))
    assert "beta_tcvae.alpha = 1.0" not in beta_vae and "beta_tcvae.alpha = 1.0" in beta_tcvae
    trained = run_in_process(*beta_vae, "--device", "cpu", "--no_progress", data_root=tiny_dsprites)
    assert trained.returncode == 0 and "note" not in trained.stderr, trained.stderr
    # the command trained the study's own run
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "2 runs: 1 not started, 1 trained, not evaluated" in status.stdout, status.stdout


def test_the_status_of_a_one_run_study_says_one_run(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    status = run_in_process("dlb_study", study, "--runs_root", tmp_path / "runs", "--status", data_root=tiny_dsprites)
    assert f"in {tmp_path / 'runs'}: 1 run: 1 not started" in status.stdout, status.stdout  # had been "1 runs"
    # a mistyped root had read as a study not started, and nothing more
    assert status.stdout.startswith(f"--runs_root '{tmp_path / 'runs'}' does not exist: no run of this study has "
                                    "started there\n"), status.stdout
    assert not (tmp_path / "runs").exists()


def test_status_and_study_json_and_another_study_in_the_same_root(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    assert run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress", "--shard", "0/2",
                       data_root=tiny_dsprites).returncode == 0
    record = json.loads((runs / "study.json").read_text())
    assert record["name"] == "s" and [r["name"] for r in record["runs"]] == [
        "beta_vae/beta=1.0/seed=0", "beta_vae/beta=8.0/seed=0"]
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert status.returncode == 1 and "2 runs: 1 done, 1 not started" in status.stdout

    # a failed run is listed with its reason
    run_json = runs / "beta_vae" / "beta=1.0" / "seed=0" / "run.json"
    json.loads(run_json.read_text())
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()), "status": "failed", "error": "the loss became non-finite at step 7"}))
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "1 failed" in status.stdout and "failed: beta_vae/beta=1.0/seed=0: the loss became non-finite at step 7" in status.stdout

    other = write_study(tmp_path / "other.gin", "{'beta_vae.beta': [2.0]}")
    before = tree(runs)
    result = run_in_process("dlb_study", other, "--runs_root", runs, "--device", "cpu", data_root=tiny_dsprites)
    # a file of another name that includes s.gin to grow it is another study, its name the file's
    assert_one_line_error(result, "holds the study 's', not 'other' (a study is named after its file, other.gin); "
                                  "give another --runs_root, or, to grow 's', write the grown study into a file "
                                  "named s.gin")
    assert tree(runs) == before
    for mode in ("--dry_run", "--status"):  # a command that passes its dry run runs
        assert_one_line_error(run_in_process("dlb_study", other, "--runs_root", runs, mode, data_root=tiny_dsprites),
                              "holds the study 's', not 'other'")


def test_a_study_file_from_elsewhere_under_the_same_name_is_said_and_a_nameless_record_is_damaged(tiny_dsprites,
                                                                                                    tmp_path):
    """Another s.gin had replaced the runs root's record of s without a word, and a study.json
    naming no study was said to hold 'the study None'."""
    from dlbench.errors import CorruptFile
    from dlbench.study import load_study, record_study

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = load_study(str(write_study(tmp_path / "a" / "s.gin", "{'beta_vae.beta': [1.0]}")))
    second = load_study(str(write_study(tmp_path / "b" / "s.gin", "{'beta_vae.beta': [2.0]}")))
    runs = tmp_path / "runs"
    runs.mkdir()
    said = []
    record_study(first, runs, log=said.append)
    record_study(first, runs, log=said.append)
    assert said == []
    record_study(second, runs, log=said.append)
    assert said == [f"{runs}: the study 's' recorded there came from {first.file}; it now comes from {second.file}"]
    assert json.loads((runs / "study.json").read_text())["file"] == second.file
    (runs / "study.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(CorruptFile, match="study.json' is unreadable \\(it names no study\\); delete it"):
        record_study(first, runs)


def test_a_study_changed_since_its_runs_trained_is_refused_and_they_are_left_alone(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    runs = tmp_path / "runs"
    assert run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress",
                       data_root=tiny_dsprites).returncode == 0
    files = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    # the same study, its protocol changed: its run keeps its name but not its config
    changed = tmp_path / "changed" / "s.gin"
    changed.parent.mkdir()
    changed.write_text(study.read_text().replace("'train.steps': 20", "'train.steps': 30"))
    assert "'train.steps': 30" in changed.read_text()
    for mode in ([], ["--dry_run"], ["--status"]):
        result = run_in_process("dlb_study", changed, "--runs_root", runs, "--device", "cpu", *mode,
                                data_root=tiny_dsprites)
        assert_one_line_error(result, "holds 1 of these runs trained with another config "
                                      "(beta_vae/beta=1.0/seed=0: train.steps: 20 -> 30)")
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == files
    # a study that only grows is the same study: its finished run is kept
    grown = tmp_path / "grown" / "s.gin"
    grown.parent.mkdir()
    write_study(grown, "{'beta_vae.beta': [1.0, 8.0]}")
    status = run_in_process("dlb_study", grown, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "2 runs: 1 done, 1 not started" in status.stdout, status.stderr
    # nor may another study go inside this one's root, or inside one of its runs
    for inside in (runs / "nested", runs / "beta_vae" / "beta=1.0" / "seed=0" / "nested"):
        result = run_in_process("dlb_study", study, "--runs_root", inside, "--device", "cpu", data_root=tiny_dsprites)
        assert_one_line_error(result, f"is inside '{inside.parent}'")
    # nor hold it: the study inside had then been refused its own root, being inside another's
    for mode in ([], ["--dry_run"], ["--status"]):
        result = run_in_process("dlb_study", study, "--runs_root", tmp_path, "--device", "cpu", *mode,
                                data_root=tiny_dsprites)
        assert_one_line_error(result, f"holds '{runs}', the runs root of a study")
    assert not (tmp_path / "study.json").exists()
    # nor be one of its runs (study.json had been written into the run, and each run marked failed)
    run = runs / "beta_vae" / "beta=1.0" / "seed=0"
    for mode in ([], ["--dry_run"], ["--status"]):
        result = run_in_process("dlb_study", study, "--runs_root", run, "--device", "cpu", *mode, data_root=tiny_dsprites)
        assert_one_line_error(result, f"--runs_root '{run}' is a run directory of dlb_train")
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == files


def test_a_study_that_starts_sweeping_a_default_keeps_the_run_it_has(tiny_dsprites, tmp_path):
    # beta_vae/seed=0 (at the default beta 4.0) had been trained again as beta_vae/beta=4/seed=0
    study, runs = tmp_path / "s.gin", tmp_path / "runs"
    write_study(study, "{'train.seed': [0]}")
    assert run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress",
                       data_root=tiny_dsprites).returncode == 0
    kept = runs / "beta_vae" / "seed=0"
    weights = {p: p.read_bytes() for p in (kept / "model").rglob("*") if p.is_file()}
    write_study(study, "{'beta_vae.beta': [4, 8.0]}")  # a whole 4: the same number as the default 4.0
    said = "1 of its runs keep the names an earlier version of the study gave them"
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "2 runs: 1 done, 1 not started" in status.stdout and said in status.stdout, status.stdout + status.stderr
    dry = run_in_process("dlb_study", study, "--runs_root", runs, "--dry_run", data_root=tiny_dsprites)
    assert f"{kept}: dlb_train" in dry.stdout and "beta=4/seed=0: " not in dry.stdout, dry.stdout
    grown = run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress",
                        data_root=tiny_dsprites)
    assert grown.returncode == 0 and "2 runs finished" in grown.stdout, grown.stdout + grown.stderr
    assert "already finished" not in grown.stdout + grown.stderr  # dlb_train's advice, once for each run kept
    assert not (runs / "beta_vae" / "beta=4").exists() and (runs / "beta_vae" / "beta=8.0" / "seed=0").is_dir()
    assert {p: p.read_bytes() for p in (kept / "model").rglob("*") if p.is_file()} == weights
    recorded = [run["name"] for run in json.loads((runs / "study.json").read_text())["runs"]]
    assert recorded == ["beta_vae/seed=0", "beta_vae/beta=8.0/seed=0"]
    # a run of another config is not taken for one of the study's (steps differ: it is trained anew)
    write_study(study, "{'beta_vae.beta': [4.0], 'train.seed': [1]}")
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert "1 run: 1 not started" in status.stdout and said not in status.stdout, status.stdout + status.stderr


def test_a_units_claim_says_the_run_is_trained_and_evaluated(trained_run, monkeypatch):
    # a dlb_evaluate met while the study evaluated the run had been told it "is being trained"
    from dlbench import rundir
    from dlbench.study import unit as unit_module

    seen = []
    monkeypatch.setattr(unit_module, "evaluate_unit", lambda unit, device, log: seen.append(
        json.loads(rundir.claim_path(unit.run_dir).read_text())["purpose"]) or unit_module.DONE)
    unit = unit_module.Unit(str(trained_run), (), tuple(TINY_PARAMS), ("mig",), {})
    assert unit_module.run_unit(unit, "cpu", log=lambda *_: None) == unit_module.DONE
    assert seen == ["trained and evaluated"]


def test_a_unit_does_not_mark_failed_a_run_of_another_config(trained_run):
    from dlbench.study.unit import FAILED, Unit, run_unit

    run_dir = trained_run
    before = (run_dir / "run.json").read_bytes()
    params = [p for p in TINY_PARAMS if not p.startswith("train.steps")] + ["train.steps = 30"]
    unit = Unit(str(run_dir), (), tuple(params), ("mig",), {})
    lines = []
    assert run_unit(unit, "cpu", log=lines.append) == FAILED
    assert "train.steps: 20 -> 30" in lines[0] and (run_dir / "run.json").read_bytes() == before


def test_a_units_failure_from_a_users_file_is_said_in_its_own_words(tmp_path, tiny_dsprites):
    # the class name of the error had led the line and run.json's error: "failed: CorruptFile: '...' is unreadable"
    from dlbench import rundir
    from dlbench.study.unit import FAILED, Unit, run_unit

    run_dir = tmp_path / "run"
    rundir.update_run(run_dir, status="interrupted")  # a run.json that records no config
    lines = []
    assert run_unit(Unit(str(run_dir), (), tuple(TINY_PARAMS), ("mig",), {}), "cpu", log=lines.append) == FAILED
    said = f"'{run_dir / 'run.json'}' is unreadable (it records no run's config"
    assert lines[0].startswith(f"{run_dir}: failed: {said}"), lines
    assert rundir.read_run(run_dir)["error"].startswith(said)


def weights_and_results(runs, metrics=True):
    found = {}
    for run_json in sorted(runs.rglob("run.json")):
        run_dir = run_json.parent
        results = {str(p.relative_to(run_dir)): {k: v for k, v in json.loads(p.read_text()).items()
                                                 if k not in ("elapsed_seconds",)}
                   for p in run_dir.glob("metrics/*/*/results.json")} if metrics else {}
        found[str(run_dir.relative_to(runs))] = (torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"],
                                                results)
    return found


def assert_same_study(a, b):
    assert a.keys() == b.keys()
    for name in a:
        weights_a, results_a = a[name]
        weights_b, results_b = b[name]
        assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a), name
        assert results_a == results_b, name


@pytest.mark.slow
def test_a_run_held_by_another_process_counts_once_that_process_finished_and_let_go(trained_run, tmp_path):
    # two dlb_study on one root had both exited 1, each counting the other's runs as held
    import shutil

    from dlbench import rundir
    from dlbench.cli.study import _done_and_let_go
    from dlbench.evaluation import evaluate_run

    study = load_study(str(write_study(tmp_path / "s.gin", "{'beta_vae.beta': [4.0]}")))
    [spec] = study.runs
    run_dir = rundir.study_run_dir(tmp_path / "runs", spec.name)
    shutil.copytree(trained_run, run_dir)
    assert not _done_and_let_go(study, spec, tmp_path / "runs")  # trained, its metric not yet stored
    evaluate_run(run_dir, ["mig"], params=study.metric_params, log=lambda *_: None)
    assert _done_and_let_go(study, spec, tmp_path / "runs")
    with rundir.hold_run(run_dir, "evaluated"):  # still being evaluated there
        assert not _done_and_let_go(study, spec, tmp_path / "runs")
    rundir.update_run(run_dir, evaluation_error="mig: boom")
    assert not _done_and_let_go(study, spec, tmp_path / "runs")
    rundir.mark_stopped(run_dir, rundir.Status.INTERRUPTED, "SIGTERM")
    assert not _done_and_let_go(study, spec, tmp_path / "runs")


def test_a_pool_of_workers_and_two_processes_at_once_train_each_run_exactly_once(tiny_dsprites, tmp_path):
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0], 'train.seed': [0, 1]}")
    pool, twice = tmp_path / "pool", tmp_path / "twice"
    common = ["--device", "cpu", "--no_progress"]
    one_by_one = [*common, "--workers", "1"]  # (each session then names its dlb_study process)
    result = run_command("dlb_study", study, "--runs_root", pool, "--workers", "2", *common, data_root=tiny_dsprites)
    assert result.returncode == 0, result.stderr

    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DLBENCH_DATA": str(tiny_dsprites)}
    import os
    command = [sys.executable, str(REPO / "bin" / "dlb_study"), str(study), "--runs_root", str(twice), *one_by_one]
    processes = [subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert all(p.returncode in (0, 1) for p in processes), outputs
    # whichever process left a run to the other, the second run of the study completes it
    assert run_command("dlb_study", study, "--runs_root", twice, *one_by_one, data_root=tiny_dsprites).returncode == 0
    for run_json in twice.rglob("run.json"):
        sessions = json.loads(run_json.read_text())["sessions"]
        assert len(sessions) == 1 and sessions[0]["from_step"] == 0 and sessions[0]["ended"] == "done", sessions
    assert {s["pid"] for r in twice.rglob("run.json") for s in json.loads(r.read_text())["sessions"]} <= \
        {p.pid for p in processes}, outputs  # what the two said, should one have left a run untrained
    # each run of `twice` trained in one session by a study of one worker: the study trained one run
    # at a time, with which the pool's must agree
    assert_same_study(weights_and_results(pool), weights_and_results(twice))


def test_a_worker_keeps_its_dataset_loaded_between_runs(tiny_dsprites, tmp_path, monkeypatch):
    import dlbench.data

    record = {"dataset": "dsprites"}
    assert dlbench.data.dataset_from_record(record) is not dlbench.data.dataset_from_record(record)
    previous = dlbench.data.keep_loaded()
    try:
        first = dlbench.data.dataset_from_record(record)
        assert dlbench.data.dataset_from_record(record) is first  # loaded once
        import shutil

        shutil.copytree(tiny_dsprites / "dsprites", tmp_path / "dsprites")
        monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))  # another data root is another dataset
        other = dlbench.data.dataset_from_record(record)
        assert other is not first and dlbench.data.dataset_from_record(record) is other
    finally:
        dlbench.data.keep_loaded(previous)
    assert dlbench.data.dataset_from_record(record) is not first


def test_a_slice_of_a_study_trains_its_runs_with_the_threads_the_whole_study_gives_them(tiny_dsprites, tmp_path,
                                                                                        monkeypatch):
    # a one-run slice (--only, --shard, a rerun of one run) had trained in the study's process on all
    # its cores, where the whole study gives each of its single-threaded workers one: other float
    # sums, other weights (MIG 0.05 against 0.03 for one run)
    import os

    from dlbench.cli import study as study_cli

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # two cores (CI's): two workers of one thread by default
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # what torch takes on two cores, without OMP_NUM_THREADS
    try:
        for root, only in (("whole", []), ("slice", ["--only", "beta_vae/beta=1.0/*"])):
            argv = [str(study), "--runs_root", str(tmp_path / root), "--device", "cpu", "--no_progress", *only]
            assert study_cli.main(argv) == 0
        assert torch.get_num_threads() == 2  # the process's own setting comes back
    finally:
        torch.set_num_threads(previous)
    whole, sliced = weights_and_results(tmp_path / "whole"), weights_and_results(tmp_path / "slice")
    assert list(sliced) == ["beta_vae/beta=1.0/seed=0"]
    assert_same_study(sliced, {name: whole[name] for name in sliced})
    for root in ("whole", "slice"):
        record = json.loads((tmp_path / root / "beta_vae" / "beta=1.0" / "seed=0" / "run.json").read_text())
        assert [s["cpu_threads"] for s in record["sessions"]] == [1]


def test_a_file_where_a_runs_folder_goes_is_found_before_the_first_run(tiny_dsprites, tmp_path):
    # reached in turn, it had stopped the study after the runs before it, advising another path
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    (runs / "beta_vae").mkdir(parents=True)
    (runs / "beta_vae" / "beta=8.0").write_text("hi")
    before = tree(runs)
    result = run_in_process("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress",
                            data_root=tiny_dsprites)
    assert_one_line_error(result, f"'{runs / 'beta_vae' / 'beta=8.0'}' is a file, where the folder of the study's run "
                                  f"beta_vae/beta=8.0/seed=0 goes; move it away")
    assert tree(runs) == before  # no run trained


def study_of_the_trained_run(trained_run, tmp_path, metric_params=None):
    """(study, its run's spec, its unit): a study of one run, a copy of trained_run; of mig, or of the
    metrics of metric_params ({metric: {parameter: value}})."""
    import shutil

    from dlbench.study.unit import units_of

    path = tmp_path / "s.gin"
    if metric_params is None:
        write_study(path, "{'beta_vae.beta': [4.0]}")
    else:
        write_study(path, "{'beta_vae.beta': [4.0]}", metrics=repr(list(metric_params)))
        path.write_text(path.read_text() + f"\nstudy.metric_params = {metric_params!r}\n")
    study = load_study(str(path))
    [spec] = study.runs
    [unit] = units_of(study, study.runs, tmp_path / "runs")
    shutil.copytree(trained_run, unit.run_dir)
    return study, spec, unit


def test_an_evaluation_that_failed_and_was_mended_counts_as_done(trained_run, tmp_path):
    # the failure's record stayed in run.json: the study's rerun said "0 failed", --status "failed"
    from dlbench import rundir
    from dlbench.study import run_state
    from dlbench.study.unit import DONE, evaluate_unit

    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path)
    rundir.update_run(unit.run_dir, evaluation_error="'results.json' is unreadable (not valid JSON)")
    assert run_state(study, spec, tmp_path / "runs")[0] == "failed"
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    assert run_state(study, spec, tmp_path / "runs") == ("done", None)


def test_a_metric_that_raises_fails_the_evaluation_not_the_trained_run(trained_run, tmp_path, capsys, monkeypatch):
    # a metric's bug (not a UserError) had marked the trained run's training failed: --retry_failed
    # was advised to train it again from step 0, and a plain rerun did not try its evaluation again
    import dlbench.evaluation
    from dlbench import rundir
    from dlbench.cli import study as study_cli
    from dlbench.study import run_state

    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path)  # only its evaluation is left
    args = [study.file, "--runs_root", str(tmp_path / "runs"), "--device", "cpu", "--workers", "1", "--no_progress"]
    real = dlbench.evaluation.evaluate_run

    def broken(*args, **kwargs):
        raise IndexError("index 18 is out of bounds for axis 0 with size 16")

    monkeypatch.setattr(dlbench.evaluation, "evaluate_run", broken)
    assert study_cli.main(args) == 1
    out = capsys.readouterr().out
    record = rundir.read_run(unit.run_dir)
    assert record["status"] == "done" and record["evaluation_error"].startswith("IndexError: index 18"), record
    assert "evaluation failed: IndexError" in out and "--retry_failed" not in out, out
    assert run_state(study, spec, tmp_path / "runs")[0] == "failed"
    monkeypatch.setattr(dlbench.evaluation, "evaluate_run", real)  # mended: the same command evaluates it
    assert study_cli.main(args) == 0
    assert run_state(study, spec, tmp_path / "runs") == ("done", None)


@pytest.mark.parametrize("terminal", [True, False])
def test_the_study_draws_its_bar_only_into_a_terminal(trained_run, tmp_path, capsys, monkeypatch, terminal):
    # it had drawn it into pipes and logs too, each redraw one more line there
    from dlbench.cli import study as study_cli

    study, _, unit = study_of_the_trained_run(trained_run, tmp_path)  # only its evaluation is left
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    assert study_cli.main([study.file, "--runs_root", str(tmp_path / "runs"), "--device", "cpu", "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert ("done=1, running=0, failed=0, left=0" in err) == terminal, err
    if not terminal:  # the run is named in the log instead
        assert err == "" and f"[1/1] {unit.run_dir}" in out, (out, err)


def test_a_studys_rerun_keeps_its_runs_results_without_a_line_each(trained_run, tmp_path):
    # each had said "(--overwrite computes them again)": dlb_study has no --overwrite, and dlb_evaluate's
    # computes the default metrics, not the study's protocols
    from dlbench.study.unit import DONE, evaluate_unit

    study, _, unit = study_of_the_trained_run(trained_run, tmp_path)
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    lines = []
    assert evaluate_unit(unit, "cpu", log=lines.append) == DONE
    assert lines == []


def test_a_studys_run_folder_holding_files_but_no_run_json_is_failed_with_advice_a_study_can_follow(
        tiny_dsprites, tmp_path):
    # the run's line had said "choose another --run_dir", which a study's run has no way to
    from dlbench.study import run_state
    from dlbench.study.unit import FAILED, run_unit, units_of

    write_study(tmp_path / "s.gin", "{'beta_vae.beta': [4.0]}")
    study = load_study(str(tmp_path / "s.gin"))
    [spec] = study.runs
    [unit] = units_of(study, study.runs, tmp_path / "runs")
    Path(unit.run_dir).mkdir(parents=True)
    (Path(unit.run_dir) / "train_log.csv").write_text("step,loss\n")  # what is left of a run whose run.json is gone
    lines = []
    assert run_unit(unit, "cpu", log=lines.append) == FAILED
    assert len(lines) == 1 and "has no run.json); move its files away" in lines[0], lines
    assert "--run_dir" not in lines[0], lines
    state, reason = run_state(study, spec, tmp_path / "runs")
    assert state == "failed" and "move them away" in reason, (state, reason)


def test_a_damaged_result_is_a_run_to_evaluate_again_and_the_studys_rerun_computes_it(trained_run, tmp_path):
    # a result whose discrete_mig was 'abc' had counted done, and the study's rerun had kept it
    from dlbench.evaluation import metric_result_path
    from dlbench.study import run_state
    from dlbench.study.unit import DONE, evaluate_unit

    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path)
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    path = metric_result_path(unit.run_dir, "mean", "mig", study.metric_params["mig"])
    computed = json.loads(path.read_text())
    path.write_text(json.dumps({**computed, "discrete_mig": "abc"}))
    state, reason = run_state(study, spec, tmp_path / "runs")
    assert state == "to evaluate again (a result damaged)", (state, reason)
    assert reason.startswith(f"'{path}' is damaged (its discrete_mig is 'abc', not a number)"), reason
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    assert run_state(study, spec, tmp_path / "runs") == ("done", None)
    assert json.loads(path.read_text())["discrete_mig"] == computed["discrete_mig"]


def test_a_result_of_an_earlier_metric_version_is_a_run_not_evaluated_and_the_studys_rerun_computes_it(
        trained_run, tiny_dsprites, tmp_path):
    # a factor_vae result stored before a single varying factor was no score (no metric_version) had
    # counted done, while dlb_evaluate computes it again and dlb_aggregate leaves it out
    from dlbench.evaluation import metric_result_path
    from dlbench.study import run_state
    from dlbench.study.unit import DONE, evaluate_unit

    params = {"num_train": 40, "num_eval": 40, "num_variance_estimate": 400, "batch_size": 8}
    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path, {"factor_vae": params})
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    path = metric_result_path(unit.run_dir, "mean", "factor_vae", params)
    older = {key: value for key, value in json.loads(path.read_text()).items() if key != "metric_version"}
    # not a multiple of 1/num_eval: an accuracy no version computes on this protocol
    path.write_text(json.dumps({**older, "eval_accuracy": 0.123456789}))
    assert run_state(study, spec, tmp_path / "runs") == ("trained, not evaluated", "missing factor_vae")
    status = run_in_process("dlb_study", study.file, "--runs_root", tmp_path / "runs", "--status",
                            data_root=tiny_dsprites)
    assert "1 run: 1 trained, not evaluated" in status.stdout, status.stdout
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    assert run_state(study, spec, tmp_path / "runs") == ("done", None)
    again = json.loads(path.read_text())
    assert again["metric_version"] == 2 and 0 <= again["eval_accuracy"] <= 1


def test_a_done_run_whose_training_results_are_damaged_is_failed_as_aggregation_leaves_it_out(trained_run, tmp_path):
    # --status and the study's rerun had counted it done, while dlb_aggregate left the whole run out
    from dlbench import rundir
    from dlbench.aggregate import collect
    from dlbench.study import run_state
    from dlbench.study.unit import DONE, FAILED, evaluate_unit, recorded_status, run_unit

    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path)
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    path = rundir.train_results_path(unit.run_dir)
    path.write_text("")
    said = f"'{path}' is unreadable (not valid JSON"
    with pytest.raises(UserError, match="none of the 1 runs"):
        collect(tmp_path / "runs")
    state, reason = run_state(study, spec, tmp_path / "runs")
    assert state == "failed" and reason.startswith(said), (state, reason)
    assert f"dlb_train --run_dir {unit.run_dir} --overwrite" in reason
    lines = []
    assert evaluate_unit(unit, "cpu", log=lines.append) == FAILED and said in lines[0], lines
    assert recorded_status(unit.run_dir) == "failed"  # what --retry_failed trains again
    assert run_unit(unit, "cpu", retry_failed=True, log=lambda *_: None) == DONE
    assert run_state(study, spec, tmp_path / "runs") == ("done", None)
    assert json.loads(path.read_text())["steps"] == 20


@pytest.mark.parametrize("removed", ["model/results.json", "model/checkpoint.pt", "model"])
def test_a_done_run_missing_its_training_results_or_weights_is_failed_and_trained_again(trained_run, tmp_path,
                                                                                        removed):
    # counted done by --status while the study's evaluation failed on the missing weights, and
    # --retry_failed, the fix it gave, left the run as it was
    import shutil

    from dlbench.study import run_state
    from dlbench.study.unit import DONE, FAILED, evaluate_unit, recorded_status, run_unit

    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path)
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    path = Path(unit.run_dir) / removed
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    state, reason = run_state(study, spec, tmp_path / "runs")
    assert state == "failed" and "is missing, though run.json says the training finished" in reason, (state, reason)
    assert f"dlb_train --run_dir {unit.run_dir} --overwrite" in reason
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == FAILED
    assert recorded_status(unit.run_dir) == "failed"  # what --retry_failed trains again
    assert run_unit(unit, "cpu", retry_failed=True, log=lambda *_: None) == DONE
    assert run_state(study, spec, tmp_path / "runs") == ("done", None)


@pytest.mark.parametrize("status", [5, "finished", None, "left out"])
def test_a_status_no_dlbench_writes_makes_run_json_damaged(trained_run, tmp_path, status):
    # --status had called it interrupted, dlb_aggregate unfinished, and the study trained the
    # finished run again from step 0
    from dlbench import rundir
    from dlbench.study import run_state
    from dlbench.study.unit import DONE, evaluate_unit, recorded_status

    study, spec, unit = study_of_the_trained_run(trained_run, tmp_path)
    assert evaluate_unit(unit, "cpu", log=lambda *_: None) == DONE
    path = rundir.run_json_path(unit.run_dir)
    record = {key: value for key, value in json.loads(path.read_text()).items() if key != "status"}
    path.write_text(json.dumps(record if status == "left out" else {**record, "status": status}))
    state, reason = run_state(study, spec, tmp_path / "runs")
    said = "it has no status" if status == "left out" else (f"its status is {status!r}, not one of running, "
                                                             f"interrupted, done, failed")
    assert state == "failed" and reason.startswith(f"'{path}' is unreadable ({said})"), (state, reason)
    assert recorded_status(unit.run_dir) == "failed"  # what --retry_failed trains again


def test_status_counts_a_run_with_a_damaged_result_and_the_others(tiny_dsprites, tmp_path):
    # one result holding a JSON list had stopped --status: "error: '.../results.json' is unreadable", no counts
    from dlbench import rundir
    from dlbench.evaluation import metric_result_path

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    assert run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--no_progress", "--shard", "0/2",
                       data_root=tiny_dsprites).returncode == 0
    path = metric_result_path(rundir.study_run_dir(runs, "beta_vae/beta=1.0/seed=0"), "mean", "mig", {"num_train": 200})
    path.write_text("[1,2]\n")
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status", data_root=tiny_dsprites)
    assert status.returncode == 1 and status.stderr == "", status.stderr
    assert "2 runs: 1 not started, 1 to evaluate again (a result damaged)" in status.stdout, status.stdout
    assert (f"  to evaluate again: beta_vae/beta=1.0/seed=0: '{path}' is damaged (a JSON list, not an object)"
            in status.stdout), status.stdout


def test_a_study_of_one_worker_stopped_says_how_the_study_goes_on(tiny_dsprites, tmp_path, capsys):
    # run one at a time, a stopped study had ended with its run's line, "`dlb_train --run_dir RUN` resumes"
    import signal

    from dlbench.cli import study as study_cli
    from dlbench.signals import stop_asked_by

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    args = [str(study), "--runs_root", str(runs), "--device", "cpu", "--workers", "1", "--no_progress"]
    with stop_asked_by(lambda: signal.SIGTERM):
        assert study_cli.main(args) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["dlb_study: stopped by SIGTERM: every run keeps its last checkpoint; the same command continues "
                   "the study"], err
    [record] = [json.loads(path.read_text()) for path in runs.rglob("run.json")]  # the second not started
    assert record["status"] == "interrupted" and record["step"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["1", "2"])  # a run alone, and a stack: each clears its own way
def test_retry_failed_trains_again_the_failed_runs_and_those_whose_run_json_is_damaged(tiny_dsprites, tmp_path, stack):
    # a run.json that cannot be read is a failed run to --status, but --retry_failed had left it as it was
    from dlbench import rundir

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    args = [study, "--runs_root", runs, "--device", "cpu", "--workers", "1", "--no_progress", "--stack", stack]
    assert run_in_process("dlb_study", *args).returncode == 0
    before = weights_and_results(runs)
    failed, damaged = (rundir.study_run_dir(runs, f"beta_vae/beta={beta}/seed=0") for beta in ("1.0", "8.0"))
    rundir.update_run(failed, status="failed", error="RuntimeError: a bug since mended")
    rundir.run_json_path(damaged).write_text("{not json")
    marked = rundir.read_run(failed)

    again = run_in_process("dlb_study", *args)
    assert again.returncode == 1 and "0 runs finished, 2 failed" in again.stdout, again.stdout  # left alone
    # the failed one not listed as work, "[1/2] RUN", for nothing to be done (the damaged one's unit marks it)
    work = [line for line in again.stdout.splitlines() if line.startswith("[")]
    assert work == [f"[1/1] {damaged}"], again.stdout
    # the study's way to train them again, said once (dlb_train's --overwrite had been advised run by run)
    assert "this command with --retry_failed trains again from step 0 the 2 runs whose training failed" in again.stdout
    assert "left alone" not in again.stdout + again.stderr, again.stdout
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status")
    assert "the study's command with --retry_failed trains again from step 0 the 2 runs" in status.stdout
    assert rundir.read_run(failed) == marked and rundir.run_json_path(damaged).read_text() == "{not json"

    retried = run_in_process("dlb_study", *args, "--retry_failed")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    # the failed run's history goes on (it had been dropped); the damaged run.json's cannot be read
    for run_dir, earlier in ((failed, marked["sessions"]), (damaged, [])):
        record = rundir.read_run(run_dir)
        assert record["status"] == "done" and record.get("error") is None, record
        assert [(s["from_step"], s["to_step"], s["ended"]) for s in record["sessions"]] == [
            *((s["from_step"], s["to_step"], s["ended"]) for s in earlier), (0, 20, "done")], record["sessions"]
    assert len(marked["sessions"]) == 1
    assert_same_study(weights_and_results(runs), before)


def test_a_run_held_by_another_process_that_let_go_of_it_unfinished_is_not_said_to_run_there(tiny_dsprites, tmp_path,
                                                                                               monkeypatch, capsys):
    # a dlb_evaluate by hand that had held the run while the study came by, gone by the summary: "still
    # running there" had been said of a run nobody was working on
    from dlbench import rundir
    from dlbench.cli import study as study_cli
    from dlbench.study import local
    from dlbench.study.unit import HELD

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0]}")
    runs = tmp_path / "runs"
    monkeypatch.setattr(local, "run_local", lambda study, specs, *args, **kwargs: {specs[0].name: HELD})
    args = [str(study), "--runs_root", str(runs), "--device", "cpu", "--no_progress"]
    assert study_cli.main(args) == 1
    out = capsys.readouterr().out
    let_go = "1 held by other processes that let go of them unfinished or died (the same command goes on with them)"
    assert let_go in out and "still running there" not in out, out
    # a holder killed (SIGKILL: its claim left behind) after the study came by: said so too, not "running there"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_dir = rundir.study_run_dir(runs, "beta_vae/beta=1.0/seed=0")
    run_dir.mkdir(parents=True)
    rundir.claim_path(run_dir).write_text(json.dumps({"token": "t", "purpose": "trained and evaluated",
                                                      "host": socket.gethostname(), "pid": dead.pid,
                                                      "acquired": time.time(), "lease_seconds": 60.0}))
    assert study_cli.main(args) == 1
    out = capsys.readouterr().out
    assert let_go in out and "still running there" not in out, out
    rundir.claim_path(run_dir).unlink()
    with rundir.hold_run(rundir.study_run_dir(runs, "beta_vae/beta=1.0/seed=0"), "evaluated"):  # held still
        assert study_cli.main(args) == 1
    out = capsys.readouterr().out
    assert "1 held by other processes, still running there" in out and "let go" not in out, out


def test_a_pools_summary_says_why_runs_failed_and_who_holds_the_others(tiny_dsprites, tmp_path):
    # its workers' lines are kept quiet: the summary had named the failed runs without a reason, and
    # said of a run behind an unreadable claim.json only "1 held by other processes, still running there"
    from dlbench import rundir

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    damaged, held = (rundir.study_run_dir(runs, f"beta_vae/beta={beta}/seed=0") for beta in ("1.0", "8.0"))
    rundir.update_run(damaged, status="interrupted")  # a run.json that records no config
    held.mkdir(parents=True)
    rundir.claim_path(held).write_text("not a claim")
    result = run_command("dlb_study", study, "--runs_root", runs, "--device", "cpu", "--workers", "2", "--no_progress",
                         data_root=tiny_dsprites)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-4].startswith("study s: 0 runs finished, 1 failed (beta_vae/beta=1.0/seed=0), 1 held"), lines
    assert lines[-3].startswith(f"  failed: beta_vae/beta=1.0/seed=0: '{damaged / 'run.json'}' is unreadable "
                                "(it records no run's config"), lines
    assert lines[-2].startswith(f"  held: beta_vae/beta=8.0/seed=0: '{held}' holds an unreadable claim.json"), lines
    assert lines[-1] == "  this command with --retry_failed trains again from step 0 the 1 run whose training failed"


@pytest.mark.slow
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_study_whose_dataset_is_missing_stops_with_the_line_that_says_how_to_get_it(root, tmp_path, workers):
    # under a pool, whose workers keep their lines to themselves, it had said "0 runs finished, 2 failed"
    # without a reason, and --status "2 not started"
    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    study.write_text(study.read_text().replace("'dataset.name': 'dsprites'", "'dataset.name': 'shapes3d'"))
    result = run_command("dlb_study", study, "--runs_root", tmp_path / "runs", "--workers", workers,
                         "--no_progress", "--device", "cpu", data_root=root)
    line = assert_one_line_error(result, "3dshapes file not found", "dlb_data download shapes3d")
    assert line.startswith("dlb_study: error: "), line
    assert "failed" not in result.stdout, result.stdout
