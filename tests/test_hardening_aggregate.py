"""dlb_aggregate with damaged runs, copies of runs and bad paths, driven as a user does (through
its command line, in this process: tests/fake_runs.run_aggregate; the installed script itself in
a fresh Python for --help and the default runs root).

Run directories are fabricated (run.json and results.json written by hand, in the format
dlb_train and dlb_evaluate write), so no training is needed. Expected values are computed here
from the numbers written, never read from the command's output."""

import csv
import json
import os
import shutil
import warnings
from pathlib import Path
from statistics import mean

import pandas as pd
import pytest

from dlbench.metrics import metric_version
from tests.commands import assert_one_line_error, run_command, tree
from tests.fake_runs import run_aggregate

MIG = {0: 0.2, 1: 0.4, 2: 0.9}          # discrete_mig of seeds 0, 1, 2
RECON = {0: -100.0, 1: -110.0, 2: -130.0}  # recon_ll of seeds 0, 1, 2


def record(seed, beta=4.0, checkpoint_every=10, status="done"):
    """A run.json as dlb_train writes it (the keys aggregation reads, plus some bookkeeping)."""
    return {
        "method": "beta_vae", "dataset": "dsprites", "seed": seed, "status": status, "step": 20,
        "hyperparameters": {"beta": beta},
        "model": {"architecture": "conv", "latent_dim": 4, "likelihood": "bernoulli",
                  "prior": {"name": "isotropic_gaussian", "scale": 1.0}},
        "train": {"adam_betas": [0.9, 0.999], "adam_eps": 1e-08, "batch_size": 16,
                  "checkpoint_every": checkpoint_every, "log_every": 5, "lr": 0.001, "seed": seed, "steps": 20},
        "dlbench_version": "0.1.0", "device": "cpu",
    }


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2))


def make_run(run_dir, seed, **settings):
    """A finished, evaluated run of seed `seed` with the metric values of MIG and RECON."""
    write_json(run_dir / "run.json", record(seed, **settings))
    write_json(run_dir / "model" / "results.json", {"loss": 90.0 + seed, "steps": 20, "dlbench_version": "0.1.0"})
    write_json(run_dir / "metrics" / "mean" / "mig" / "results.json",
               {"metric": "mig", "metric_version": metric_version("mig"), "mode": "mean", "discrete_mig": MIG[seed],
                "num_train": 10000, "num_bins": 20})
    write_json(run_dir / "metrics" / "mean" / "recon_ll" / "results.json",
               {"metric": "recon_ll", "mode": "mean", "recon_ll": RECON[seed]})
    return run_dir


def make_study(root, seeds=(0, 1, 2), **settings):
    return {seed: make_run(root / f"s{seed}", seed, **settings) for seed in seeds}


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def aggregate_ok(tmp_path, root):
    """Run dlb_aggregate ROOT --out tmp_path/report; returns (results rows, leaderboard rows, stdout lines)."""
    out = tmp_path / "report"
    result = run_aggregate(root, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return read_csv(out / "results.csv"), read_csv(out / "leaderboard.csv"), result.stdout.splitlines()


def lines_naming(lines, path):
    return [line for line in lines if str(path) in line]


def truncate(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def drop_identity(path):
    value = json.loads(path.read_text())
    del value["seed"], value["method"]
    path.write_text(json.dumps(value))


DAMAGES = {
    "truncated run.json": ("run.json", truncate, "not valid JSON"),
    "run.json not an object": ("run.json", lambda p: p.write_text("[1, 2, 3]\n"), "not an object"),
    "run.json without identity": ("run.json", drop_identity, "lacks method, seed"),
    "truncated model/results.json": ("model/results.json", truncate, "not valid JSON"),
    # a done run without them had been counted finished, with fewer values, without a word
    "model/results.json missing": ("model/results.json", Path.unlink, "is missing, though"),
    "model/ missing": ("model", shutil.rmtree, "is missing, though"),
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_run_is_left_out_and_reported_the_rest_aggregated(tmp_path, damage):
    file, spoil, problem = DAMAGES[damage]
    root = tmp_path / "runs"
    runs = make_study(root)
    damaged = runs[2] / file
    spoil(damaged)

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert sorted(row["run_dir"] for row in results) == ["s0", "s1"]
    assert len(board) == 1
    assert int(board[0]["num_done"]) == 2
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean([MIG[0], MIG[1]]))
    assert float(board[0]["recon_ll.recon_ll.mean"]) == pytest.approx(mean([RECON[0], RECON[1]]))
    reported = lines_naming(stdout, damaged)
    assert len(reported) == 1 and problem in reported[0], stdout
    assert f"dlb_train --run_dir {runs[2]} --overwrite" in reported[0]  # a command that names the run


def test_a_corrupt_metric_file_loses_only_that_metric(tmp_path):
    root = tmp_path / "runs"
    runs = make_study(root)
    damaged = runs[1] / "metrics" / "mean" / "mig" / "results.json"
    truncate(damaged)

    results, board, stdout = aggregate_ok(tmp_path, root)

    by_run = {row["run_dir"]: row for row in results}
    assert sorted(by_run) == ["s0", "s1", "s2"]
    assert by_run["s1"]["mig.discrete_mig"] == "" and float(by_run["s1"]["recon_ll.recon_ll"]) == RECON[1]
    assert int(board[0]["num_done"]) == 3
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean([MIG[0], MIG[2]]))
    assert float(board[0]["recon_ll.recon_ll.mean"]) == pytest.approx(mean(RECON.values()))
    reported = lines_naming(stdout, damaged)
    assert len(reported) == 1 and "dlb_evaluate" in reported[0], stdout


def test_when_every_run_is_damaged_it_is_one_line(tmp_path):
    root = tmp_path / "runs"
    for run in make_study(root).values():
        truncate(run / "run.json")
    before = tree(tmp_path)
    result = run_aggregate(root, "--out", tmp_path / "report", cwd=tmp_path)
    assert_one_line_error(result, "none of the 3 runs", "run.json")
    assert tree(tmp_path) == before


def test_copies_of_runs_are_counted_once_and_reported(tmp_path):
    root = tmp_path / "runs"
    make_study(root / "a")
    shutil.copytree(root / "a", root / "copy")

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert sorted(row["run_dir"] for row in results) == ["a/s0", "a/s1", "a/s2"]  # first by path
    assert len(board) == 1 and int(board[0]["num_done"]) == 3
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean(MIG.values()))
    [line] = [line for line in stdout if "duplicate runs not counted" in line]
    assert line.startswith("3 duplicate runs not counted: ")
    assert f"{root / 'copy' / 's0'} (same run as {root / 'a' / 's0'})" in line


def test_a_finished_copy_is_preferred_and_bookkeeping_does_not_make_runs_differ(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "a" / "s0", 0, status="running")
    make_run(root / "b" / "s0", 0, checkpoint_every=500)  # the same run, checkpointed less often

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert [row["run_dir"] for row in results] == ["b/s0"]
    assert int(board[0]["num_done"]) == 1
    assert any(f"{root / 'a' / 's0'} (same run as {root / 'b' / 's0'})" in line for line in stdout), stdout


def test_the_studys_own_evaluated_copy_is_counted_and_copies_that_differ_are_said_so(tmp_path):
    # a backup whose path sorted first had been counted instead: without its metrics, or with old ones
    root = tmp_path / "runs"
    runs = make_study(root, seeds=(0, 1))
    write_json(root / "study.json", {"name": "s", "runs": [{"name": "s0"}, {"name": "s1"}]})
    shutil.copytree(runs[0], root / "a_backup" / "s0")
    shutil.rmtree(root / "a_backup" / "s0" / "metrics")
    shutil.copytree(runs[1], root / "a_backup" / "s1")
    old = root / "a_backup" / "s1" / "metrics" / "mean" / "mig" / "results.json"
    write_json(old, {**json.loads(old.read_text()), "discrete_mig": 0.99})

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert sorted(row["run_dir"] for row in results) == ["s0", "s1"]
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean([MIG[0], MIG[1]]))
    assert any(f"{root / 'a_backup' / 's1'} (same run as {root / 's1'}; its mig.discrete_mig differ)" in line
               for line in stdout), stdout
    assert any(line.startswith("1 of the duplicates holds other metric values") for line in stdout), stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert {d["run_dir"]: d["results_differ"] for d in report["duplicates"]} == {
        "a_backup/s0": [], "a_backup/s1": ["mig.discrete_mig"]}



def test_results_only_a_copy_left_out_holds_are_said_so(tmp_path):
    # a metric evaluated in the copy left out alone had vanished from every table, and results_differ was []
    root = tmp_path / "runs"
    counted, other = make_run(root / "a", 0), make_run(root / "b", 0)
    shutil.rmtree(other / "metrics" / "mean" / "mig")
    write_json(other / "metrics" / "mean" / "sap" / "results.json",
               {"metric": "sap", "metric_version": metric_version("sap"), "mode": "mean", "SAP_score": 0.3})

    results, _, stdout = aggregate_ok(tmp_path, root)

    assert [row["run_dir"] for row in results] == ["a"]  # not merged: the copies may be two trainings
    assert f"{other} (same run as {counted}; only it holds sap.SAP_score, not counted)" \
        in " ".join(stdout), stdout
    assert any(line.startswith("1 of the duplicates holds results the copy counted lacks") for line in stdout), stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    [duplicate] = report["duplicates"]
    assert duplicate["results_not_counted"] == ["sap.SAP_score"]
    assert duplicate["results_differ"] == []

def test_the_evaluated_copy_is_counted_where_no_study_names_one(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "b" / "s0", 0)
    shutil.copytree(root / "b" / "s0", root / "a" / "s0")
    shutil.rmtree(root / "a" / "s0" / "metrics")

    results, _, _ = aggregate_ok(tmp_path, root)

    assert [row["run_dir"] for row in results] == ["b/s0"]


@pytest.mark.parametrize("value", ["0.9", None, True, float("nan"), "absent"])
def test_a_metric_result_without_a_number_is_left_out_and_said_so(tmp_path, value):
    # the value had become an empty cell without a word
    root = tmp_path / "runs"
    runs = make_study(root)
    path = runs[1] / "metrics" / "mean" / "mig[num_train=200]" / "results.json"
    path.parent.mkdir()
    result = {"metric": "mig", "metric_version": metric_version("mig"), "mode": "mean", "num_train": 200,
              "num_bins": 20, "discrete_mig": value}
    if value == "absent":
        del result["discrete_mig"]
    path.write_text(json.dumps(result))

    results, _, stdout = aggregate_ok(tmp_path, root)

    assert not any(row.get("mig[num_train=200].discrete_mig") for row in results)
    [line] = lines_naming(stdout, path)
    # a NaN is a number: the file is read, its value is not finite (it had been called "unreadable")
    finite = "finite " if isinstance(value, float) else ""
    assert "is unusable (its discrete_mig is" in line and f", not a {finite}number)" in line, line
    # the command it gives computes that protocol again, not the default one
    assert f"dlb_evaluate {runs[1]} --metrics mig --mode mean --metric_param mig.num_train=200 --overwrite" in line
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["counts"]["metric_results_left_out"] == 1


@pytest.mark.parametrize("value", [5.0, -0.2], ids=repr)
def test_a_score_outside_its_range_from_0_to_1_is_left_out_and_said_so(tmp_path, value):
    # a MIG of 5.0 had been averaged into the leaderboard and made its run the representative
    root = tmp_path / "runs"
    runs = make_study(root)
    path = runs[1] / "metrics" / "mean" / "mig" / "results.json"
    write_json(path, {**json.loads(path.read_text()), "discrete_mig": value})

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert [row["mig.discrete_mig"] for row in results] == [str(MIG[0]), "", str(MIG[2])]
    [line] = lines_naming(stdout, path)
    assert f"is unusable (its discrete_mig is {value!r}, outside the score's range from 0 to 1)" in line, line


def test_a_score_at_its_range_edge_within_float_rounding_counts():
    from dlbench.metrics import result_problem

    assert result_problem("mig", {"discrete_mig": 1 + 1e-12}) is None
    assert result_problem("mig", {"discrete_mig": -1e-12}) is None
    assert result_problem("recon_ll", {"recon_ll": 5.0}) is None  # a log-likelihood has no such range


def test_settings_that_lack_the_rank_value_in_part_or_whole_are_said_so(tmp_path):
    # one evaluated run of three had made its setting best.csv's pick, and the others had no word
    root = tmp_path / "runs"
    make_study(root / "b4")
    eight = make_study(root / "b8", beta=8.0)
    one = make_study(root / "b16", beta=16.0)
    for run in (eight[0], eight[1], *one.values()):
        shutil.rmtree(run / "metrics" / "mean" / "mig")

    _, board, stdout = aggregate_ok(tmp_path, root)

    assert any("best.csv ranks by mig.discrete_mig, which not every finished run has: 1 setting has none "
               "(not candidates) and 1 has it from some of its runs" in line for line in stdout), stdout
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["rank_by_short"] == {"settings_in_part": 1, "settings_without": 1}


def test_a_training_scalar_some_methods_log_is_not_sent_to_dlb_evaluate(tmp_path):
    # runs without beta_tcvae's tc had been told to evaluate themselves "with that protocol (dlb_evaluate)"
    root = tmp_path / "runs"
    for beta in (1.0, 4.0):
        make_run(root / str(beta), 0, beta=beta)
    write_json(root / "1.0" / "model" / "results.json",
               {"loss": 90.0, "tc": 2.0, "steps": 20, "dlbench_version": "0.1.0"})
    result = run_aggregate(root, "--out", tmp_path / "report", "--rank_by", "train_result.tc", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if "which not every finished run has" in line]
    assert line.endswith("1 setting has none (not candidates) and 0 have it from some of their runs; their methods "
                         "do not log it in training; rank by another --rank_by"), line


def test_runs_linked_into_the_root_are_counted_once_and_a_link_back_up_ends(tmp_path):
    # links to run folders had been skipped without a word ("no runs found" for a root of links)
    kept = make_study(tmp_path / "elsewhere", seeds=(1, 2))
    root = tmp_path / "runs"
    make_run(root / "s0", 0)
    (root / "linked").mkdir()
    (root / "linked" / "s1").symlink_to(kept[1])
    (root / "linked" / "s2").symlink_to(kept[2])
    (root / "linked" / "again").symlink_to(kept[2])  # the same folder by a second link: one run
    (root / "linked" / "up").symlink_to(root)  # a loop

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert sorted(row["run_dir"] for row in results) == ["linked/again", "linked/s1", "s0"]
    assert int(board[0]["num_done"]) == 3
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean(MIG.values()))
    assert not any("duplicate" in line for line in stdout), stdout


def test_many_duplicates_make_one_short_line(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "a", 0)
    for index in range(6):
        shutil.copytree(root / "a", root / f"copy{index}")

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert len(results) == 1 and int(board[0]["num_done"]) == 1
    [line] = [line for line in stdout if "duplicate runs not counted" in line]
    assert line.startswith("6 duplicate runs not counted: ") and line.endswith(" and 3 more")


def test_runs_differing_only_in_bookkeeping_settings_are_one_setting(tmp_path):
    root = tmp_path / "runs"
    for seed, every in ((0, 10), (1, 50), (2, 1000)):
        make_run(root / f"s{seed}", seed, checkpoint_every=every)
    make_run(root / "other_beta", 0, beta=8.0)

    results, board, _ = aggregate_ok(tmp_path, root)

    assert len(results) == 4
    assert sorted(row["train.checkpoint_every"] for row in results) == ["10", "10", "1000", "50"]
    assert not any(column.startswith(("train.checkpoint_every", "train.log_every")) for column in board[0])
    by_beta = {float(row["hp.beta"]): row for row in board}
    assert sorted(by_beta) == [4.0, 8.0]
    assert int(by_beta[4.0]["num_done"]) == 3
    assert float(by_beta[4.0]["mig.discrete_mig.mean"]) == pytest.approx(mean(MIG.values()))


def test_without_runs_root_runs_is_aggregated_into_reports_runs(tmp_path):
    make_study(tmp_path / "runs")
    result = run_command("dlb_aggregate", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "no RUNS_ROOT given: aggregating runs/ into reports/runs"
    board = read_csv(tmp_path / "reports" / "runs" / "leaderboard.csv")
    assert int(board[0]["num_done"]) == 3
    assert float(board[0]["recon_ll.recon_ll.mean"]) == pytest.approx(mean(RECON.values()))


def test_without_runs_root_and_without_runs_folder_is_one_line(tmp_path):
    before = tree(tmp_path)
    result = run_aggregate(cwd=tmp_path)
    assert_one_line_error(result, "no RUNS_ROOT given", "runs/")
    assert tree(tmp_path) == before


def test_a_runs_root_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "runs.txt").write_text("not a folder\n")
    before = tree(tmp_path)
    result = run_aggregate("runs.txt", cwd=tmp_path)
    assert_one_line_error(result, "'runs.txt' is a file, not a folder")
    assert tree(tmp_path) == before


BAD_OUTS = {
    "an existing file": (lambda tmp: tmp / "report.csv", "is a file, not a folder"),
    "under a file": (lambda tmp: tmp / "report.csv" / "sub", "which is a file"),
    "under /proc": (lambda tmp: Path("/proc/dlbench_aggregate_test/report"), "cannot be written"),
    "in a run": (lambda tmp: tmp / "runs" / "s0" / "report", "is inside the run directory"),
}


@pytest.mark.parametrize("where", BAD_OUTS, ids=list(BAD_OUTS))
def test_a_bad_out_is_one_line_before_any_run_is_read(tmp_path, where):
    place, needle = BAD_OUTS[where]
    out = place(tmp_path)
    (tmp_path / "report.csv").write_text("old\n")
    make_study(tmp_path / "runs")
    (tmp_path / "empty").mkdir()
    before = tree(tmp_path)

    assert_one_line_error(run_aggregate("runs", "--out", out, cwd=tmp_path), "--out", needle)
    # a root without runs would be an error of its own: the output is checked first
    assert_one_line_error(run_aggregate("empty", "--out", out, cwd=tmp_path), "--out", needle)

    assert tree(tmp_path) == before
    assert (tmp_path / "report.csv").read_text() == "old\n"
    assert not Path("/proc/dlbench_aggregate_test").exists()


def test_help_explains_runs_root(tmp_path):
    result = run_command("dlb_aggregate", "--help", cwd=tmp_path)
    assert result.returncode == 0
    usage = " ".join(result.stdout.split())
    assert "RUNS_ROOT folder holding the run directories" in usage and "default: runs/" in usage



STRAY_COPIES = {  # where under metrics/ a copy of s1's mig result lands (made by hand), what it records
    "a backup beside the result": ("mean/mig_backup", {}),
    "another protocol's folder": ("mean/mig[num_train=500]", {}),
    "another metric's folder": ("mean/sap", {}),
    "another mode's folder": ("sampled/mig", {}),
}


@pytest.mark.parametrize("stray", STRAY_COPIES, ids=list(STRAY_COPIES))
def test_a_copy_of_a_result_in_another_folder_is_left_out_and_said_where_it_belongs(tmp_path, stray):
    # a copy of a result folder had replaced the real value in results.csv, or added a column, without a word
    root = tmp_path / "runs"
    runs = make_study(root)
    real = runs[1] / "metrics" / "mean" / "mig" / "results.json"
    copy = runs[1] / "metrics" / STRAY_COPIES[stray][0] / "results.json"
    write_json(copy, {**json.loads(real.read_text()), "discrete_mig": 0.777})

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert {row["run_dir"]: float(row["mig.discrete_mig"]) for row in results} == {f"s{s}": MIG[s] for s in MIG}
    assert not any("0.777" in value for row in results for value in row.values())
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean(MIG.values()))
    [line] = lines_naming(stdout, copy)
    assert line.startswith("metric left out: ") and f"belongs in '{real}'" in line, line
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert line in report["left_out"] and report["counts"]["metric_results_left_out"] == 1


def test_a_result_in_its_folder_counts_before_an_old_one_of_the_same_protocol_and_the_old_one_is_named(tmp_path):
    # results written before protocols named folders sit under the metric's name (dlb_evaluate still
    # reuses them); a second file of the same columns had been dropped without a word
    root = tmp_path / "runs"
    runs = make_study(root)
    protocol = {"metric": "mig", "metric_version": metric_version("mig"), "mode": "mean", "num_train": 200,
                "num_bins": 20}
    old = runs[0] / "metrics" / "mean" / "mig" / "results.json"
    write_json(old, {**protocol, "discrete_mig": 0.5})
    tagged = runs[0] / "metrics" / "mean" / "mig[num_train=200]" / "results.json"
    write_json(tagged, {**protocol, "discrete_mig": 0.6})
    write_json(runs[1] / "metrics" / "mean" / "mig" / "results.json", {**protocol, "discrete_mig": 0.7})

    results, _, stdout = aggregate_ok(tmp_path, root)

    by_run = {row["run_dir"]: row["mig[num_train=200].discrete_mig"] for row in results}
    assert by_run == {"s0": "0.6", "s1": "0.7", "s2": ""}  # an old file alone counts
    [line] = lines_naming(stdout, old)
    assert line.startswith("metric left out: ") and f"'{tagged}'" in line and "which counts" in line, line


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "0.5", "Infinity", None], ids=repr)
def test_a_measured_value_that_is_not_a_finite_number_is_left_out_and_said_so(tmp_path, value):
    # an infinity had made the leaderboard's mean infinite, with numpy's two-line warning; NaN and text went unsaid
    root = tmp_path / "runs"
    runs = make_study(root)
    for seed, run in runs.items():
        path = run / "metrics" / "mean" / "recon_ll" / "results.json"
        write_json(path, {**json.loads(path.read_text()), "recon_ll_stderr": value if seed == 1 else 0.5})

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # none may reach the user
        results, board, stdout = aggregate_ok(tmp_path, root)

    assert [row["recon_ll.recon_ll_stderr"] for row in results] == ["0.5", "", "0.5"]
    assert float(board[0]["recon_ll.recon_ll_stderr.mean"]) == 0.5
    assert board[0]["recon_ll.recon_ll_stderr.count"] == "2"
    assert float(board[0]["recon_ll.recon_ll.mean"]) == pytest.approx(mean(RECON.values()))  # its other values count
    [line] = lines_naming(stdout, runs[1] / "metrics" / "mean" / "recon_ll" / "results.json")
    assert line.startswith("value left out: ") and f"recon_ll_stderr = {json.dumps(value)}" in line, line
    assert "dlb_evaluate" in line and "--overwrite" in line
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert line in report["left_out"] and report["counts"]["results_with_values_left_out"] == 1


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "90.5", None, [1.0]], ids=repr)
def test_a_training_scalar_that_is_not_a_finite_number_is_left_out_and_said_so(tmp_path, value):
    # a finished run's infinite training loss had reached the leaderboard's mean, unsaid
    root = tmp_path / "runs"
    runs = make_study(root)
    path = runs[1] / "model" / "results.json"
    write_json(path, {**json.loads(path.read_text()), "loss": value})

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        results, board, stdout = aggregate_ok(tmp_path, root)

    assert [row["train_result.loss"] for row in results] == ["90.0", "", "92.0"]
    assert float(board[0]["train_result.loss.mean"]) == 91.0 and board[0]["train_result.loss.count"] == "2"
    [line] = lines_naming(stdout, path)
    assert line.startswith("value left out: ") and f"loss = {json.dumps(value)}" in line, line
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert line in report["left_out"] and report["counts"]["results_with_values_left_out"] == 1


# a folder name holding the byte 0xff (not UTF-8) as Python reads it from the disk, and as the tables show it
NOT_UTF8 = os.fsdecode(b"bad\xffname")
SHOWN = "bad\\xffname"


def test_a_run_named_in_bytes_that_are_not_utf8_is_counted_and_named_with_escapes_everywhere(tmp_path):
    # pyarrow had ended the aggregation in a UnicodeEncodeError (surrogates not allowed)
    root = tmp_path / "runs"
    make_run(root / "s0", 0)
    make_run(root / NOT_UTF8, 1)
    make_run(root / "copies" / NOT_UTF8, 1)  # a copy: the duplicates line and report.json name it too
    (root / "copies" / NOT_UTF8 / "metrics" / "mean" / "recon_ll" / "results.json").write_text("{ cut")

    results, board, stdout = aggregate_ok(tmp_path, root)

    assert [row["run_dir"] for row in results] == [SHOWN, "s0"]
    assert pd.read_parquet(tmp_path / "report" / "results.parquet")["run_dir"].tolist() == [SHOWN, "s0"]
    assert float(board[0]["mig.discrete_mig.mean"]) == pytest.approx(mean([MIG[0], MIG[1]]))
    [damaged] = [line for line in stdout if line.startswith("metric left out: ")]
    assert f"'{root}/copies/{SHOWN}/metrics/mean/recon_ll/results.json' is unreadable" in damaged
    [copies] = [line for line in stdout if "duplicate run not counted" in line]
    assert f"{root}/copies/{SHOWN} (same run as {root}/{SHOWN})" in copies
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["duplicates"][0]["run_dir"] == f"copies/{SHOWN}" and report["left_out"] == [damaged]
    assert not any("\udcff" in line for line in stdout)
    # --only takes the name as the tables show it
    picked = run_aggregate(root, "--out", tmp_path / "picked", "--only", SHOWN, cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr
    assert [row["run_dir"] for row in read_csv(tmp_path / "picked" / "results.csv")] == [SHOWN]


def test_a_lone_surrogate_escaped_in_a_runs_json_files_is_shown_with_escapes(tmp_path):
    # json.dumps writes a path that is not UTF-8 as "\\udcff": read back, pyarrow had refused it in a traceback
    root = tmp_path / "runs"
    make_run(root / "s0", 0)
    run = make_run(root / "s1", 1)
    written = record(1)
    written["dataset_options"] = {"path": NOT_UTF8}
    (run / "run.json").write_text(json.dumps(written))
    assert "\\udcff" in (run / "run.json").read_text()
    results, _, _ = aggregate_ok(tmp_path, root)
    row = next(row for row in results if row["run_dir"] == "s1")
    assert SHOWN in row["dataset"]
    assert float(row["mig.discrete_mig"]) == MIG[1]


def test_a_run_whose_escaped_name_is_another_runs_name_is_left_out(tmp_path):
    root = tmp_path / "runs"
    make_run(root / SHOWN, 0)     # a folder really named with a backslash
    make_run(root / NOT_UTF8, 1)  # which the name of this one reads as
    results, _, stdout = aggregate_ok(tmp_path, root)
    assert [(row["run_dir"], row["seed"]) for row in results] == [(SHOWN, "0")]
    [line] = [line for line in stdout if line.startswith("run left out: ")]
    assert line == (f"run left out: '{root}/{SHOWN}' has a name that is not UTF-8, and '{SHOWN}', as the tables "
                    f"would show it, names another folder under '{root}'; rename it")


@pytest.mark.parametrize("command", ["dlb_aggregate", "dlb_report"])
def test_a_folder_another_process_writes_a_report_into_is_refused(tmp_path, capsys, command):
    # two dlb_reports into one --out had each listed only its own figures in drawn.json, and the
    # other's were then kept for good as the user's
    import socket
    import time

    from dlbench.cli import aggregate, report

    root = tmp_path / "runs"
    make_study(root)
    out = tmp_path / "out"
    out.mkdir()
    other = os.getppid()  # a live process that is not this one
    write_json(out / "claim.json", {"token": "t", "purpose": "reported", "host": socket.gethostname(), "pid": other,
                                    "acquired": time.time(), "lease_seconds": 600})
    main = {"dlb_aggregate": aggregate.main, "dlb_report": report.main}[command]
    assert main([str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'{out}' is being reported by process {other}" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["claim.json"]
    (out / "claim.json").unlink()  # that process is done: the folder is free, and the claim goes with the command
    assert main([str(root), "--out", str(out)]) == 0
    assert not (out / "claim.json").exists() and (out / "results.csv").is_file()


@pytest.mark.parametrize("command", ["dlb_aggregate", "dlb_report"])
def test_the_runs_root_itself_as_out_is_refused(tmp_path, capsys, command):
    # the six tables had been written among the runs, beside study.json
    from dlbench.cli import aggregate, report

    root = tmp_path / "runs"
    make_study(root)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    main = {"dlb_aggregate": aggregate.main, "dlb_report": report.main}[command]
    assert main([str(root), "--out", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out '{root}' is the runs root itself; choose a folder of its own" in err, err
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


@pytest.mark.parametrize("command", ["dlb_aggregate", "dlb_report"])
def test_a_folder_holding_another_roots_runs_as_out_is_refused(tmp_path, capsys, command):
    # the tables had been written among another study's runs
    from dlbench.cli import aggregate, report

    root, other = tmp_path / "runs", tmp_path / "other_study"
    make_study(root)
    make_study(other / "nested")
    before = sorted(p.relative_to(other) for p in other.rglob("*"))
    main = {"dlb_aggregate": aggregate.main, "dlb_report": report.main}[command]
    assert main([str(root), "--out", str(other)]) == 2
    err = capsys.readouterr().err
    nested = other / "nested" / "s0"
    assert err.count("\n") == 1 and f"--out '{other}' holds runs ('{nested}') that are not those" in err
    assert sorted(p.relative_to(other) for p in other.rglob("*")) == before


def test_a_folder_holding_the_runs_root_is_an_out_for_its_tables(tmp_path):
    # a report beside its runs: study/runs aggregated into study
    study = tmp_path / "study"
    make_study(study / "runs")
    assert run_aggregate(study / "runs", "--out", study, cwd=tmp_path).returncode == 0
    assert (study / "leaderboard.csv").is_file()
