"""The files dlb_aggregate writes (report.json, results.parquet) and its bad inputs, driven through
the command line (in this process: tests/fake_runs.run_aggregate)."""

import json
import shlex

import pandas as pd
import pytest

import dlbench
from tests.commands import assert_one_line_error, run_in_process, tree
from tests.fake_runs import make_run, read_csv, run_aggregate, write_json, write_metric

FILES = ["best.csv", "leaderboard.csv", "report.json", "representatives.csv", "results.csv", "results.parquet"]


def aggregate_ok(tmp_path, *args):
    result = run_aggregate("runs", "--out", "report", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def test_report_json_says_what_was_aggregated_and_lists_what_did_not_count(tmp_path):
    root = tmp_path / "runs"
    write_json(root / "study.json", {"name": "my_study", "file": "gin/studies/mine.gin",
                                     "runs": [{"name": name} for name in ("b4/s0", "b4/s4", "b4/s9", "c/s0")]})
    make_run(root / "b4" / "s0", 0, mig=0.2, reconstruction=50.0)
    make_run(root / "b4" / "s1", 1, mig=0.4, reconstruction=60.0)
    make_run(root / "b4" / "s2", 2, status="failed", error="the loss diverged at step 7", step=0, failed_step=7)
    make_run(root / "b4" / "s3", 3, status="running", step=10)
    make_run(root / "b4" / "s4", 4, mig=0.3)
    (root / "b4" / "s4" / "run.json").write_text("{ truncated")
    make_run(root / "copy" / "s0", 0, mig=0.2)  # the same run as b4/s0
    make_run(root / "b4" / "s5", 5, mig=0.6, recon_ll=-1.0)
    (root / "b4" / "s5" / "metrics" / "mean" / "recon_ll" / "results.json").write_text("[")

    lines = aggregate_ok(tmp_path)

    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["runs_root"] == "runs"  # as the command was given it
    assert (report["study"], report["study_file"]) == ("my_study", "gin/studies/mine.gin")
    assert report["dlbench_version"] == dlbench.__version__
    assert report["rank_by"] == "mig.discrete_mig"
    assert sorted(report["files"]) == FILES
    assert report["counts"] == {"run_json_found": 7, "runs": 5, "done": 3, "failed": 1, "unfinished": 1,
                                "not_started": 2, "not_in_study": 4, "runs_left_out": 1, "metric_results_left_out": 1,
                                "results_with_values_left_out": 0, "duplicates": 1, "settings": 1,
                                "representatives": 1}
    assert report["failed"] == [{"run_dir": "b4/s2", "dataset": "dsprites", "method": "beta_vae", "seed": 2,
                                 "status": "failed", "step": 7, "error": "the loss diverged at step 7"}]
    assert report["unfinished"] == [{"run_dir": "b4/s3", "dataset": "dsprites", "method": "beta_vae", "seed": 3,
                                     "status": "running", "step": 10, "error": None}]
    assert report["duplicates"] == [{"run_dir": "copy/s0", "same_as": "b4/s0", "results_differ": [],
                                     "results_not_counted": []}]
    [run_line, metric_line] = report["left_out"]
    assert run_line.startswith("run left out: ") and "b4/s4/run.json" in run_line
    assert metric_line.startswith("metric left out: ") and "recon_ll/results.json" in metric_line
    assert report["unranked"] == []
    # the runs study.json lists without a run directory (a damaged run.json is a run that started)
    assert report["not_started"] == ["b4/s9", "c/s0"]
    assert ("2 of the study's runs have no run directory at their place (not started, moved, or without its "
            "run.json); report.json lists them") in lines
    # the runs counted that study.json does not list: another study's, or trained there by hand (a
    # study copied into another's root had been counted as that study's without a word)
    assert report["not_in_study"] == ["b4/s1", "b4/s2", "b4/s3", "b4/s5"]
    assert ("4 runs counted are not among the runs of study.json (another study's, or trained there by hand?): "
            "b4/s1, b4/s2, b4/s3 and 1 more; move them out of the root if they are not this study's") in lines
    aggregate_ok(tmp_path, "--only", "b4/*", "--out", "only_b4")
    assert json.loads((tmp_path / "only_b4" / "report.json").read_text())["not_started"] == ["b4/s9"]


def test_without_study_json_the_study_is_null(tmp_path):
    make_run(tmp_path / "runs" / "a", 0, mig=0.2)
    aggregate_ok(tmp_path)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["study"] is None and report["counts"]["done"] == 1


def test_results_parquet_holds_numbers_as_numbers(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "a", 0, mig=0.25, recon_ll=-7.5, hyperparameters={"beta": 4.0, "prior": "laplace"})
    make_run(root / "b", 1, mig=0.5, hyperparameters={"beta": 2, "prior": 2.0})  # a kind mixed across runs
    make_run(root / "c", 2, status="failed", hyperparameters={"beta": 1.0, "prior": "laplace"})
    aggregate_ok(tmp_path)

    table = pd.read_parquet(tmp_path / "report" / "results.parquet")
    assert table["seed"].dtype == "int64" and table["model.latent_dim"].dtype == "int64"
    for column in ("hp.beta", "mig.discrete_mig", "recon_ll.recon_ll", "train_result.loss", "train.lr"):
        assert table[column].dtype == "float64", column
    by_run = table.set_index("run_dir")
    assert by_run["hp.beta"].to_dict() == {"a": 4.0, "b": 2.0, "c": 1.0}
    assert by_run["mig.discrete_mig"]["b"] == 0.5 and pd.isna(by_run["mig.discrete_mig"]["c"])
    assert by_run["hp.prior"].to_dict() == {"a": "laplace", "b": "2.0", "c": "laplace"}
    assert by_run["status"].to_dict() == {"a": "done", "b": "done", "c": "failed"}
    assert by_run["train.adam_betas"]["a"] == "[0.9, 0.999]"
    # results.csv holds the same table
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "report" / "results.csv"), table, check_dtype=False)


def test_the_command_prints_every_file_it_wrote(tmp_path):
    make_run(tmp_path / "runs" / "a", 0, mig=0.2, recon_ll=-3.0)
    stdout = aggregate_ok(tmp_path, "--rank_by", "recon_ll")
    assert stdout[0] == "1 run (1 finished, 0 failed, 0 unfinished), 1 setting; best.csv ranked by recon_ll.recon_ll"
    assert sorted(line for line in stdout if line.startswith("wrote ")) == [f"wrote report/{name}" for name in FILES]
    assert sorted(path.name for path in (tmp_path / "report").iterdir()) == FILES


def test_only_failed_runs_give_the_counts_and_the_failures(tmp_path):
    for seed in (0, 1):
        make_run(tmp_path / "runs" / f"s{seed}", seed, status="failed", error=f"diverged {seed}")
    make_run(tmp_path / "runs" / "s2", 2, status="interrupted")

    stdout = aggregate_ok(tmp_path)

    assert "no run has finished training: the leaderboard holds only the counts" in stdout
    assert "2 failed runs and 1 unfinished run counted but left out of the statistics; report.json lists them " \
           "with their status" in stdout
    [row] = read_csv(tmp_path / "report" / "leaderboard.csv")
    assert (row["num_runs"], row["num_done"], row["num_failed"], row["num_unfinished"]) == ("3", "0", "2", "1")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [(run["run_dir"], run["error"]) for run in report["failed"]] == [("s0", "diverged 0"), ("s1", "diverged 1")]
    assert [run["status"] for run in report["unfinished"]] == ["interrupted"]
    assert read_csv(tmp_path / "report" / "best.csv") == [] and read_csv(tmp_path / "report" / "representatives.csv") == []


def bad_input(tmp_path, *args, needles):
    before = tree(tmp_path)
    line = assert_one_line_error(run_aggregate(*args, cwd=tmp_path), *needles)
    assert tree(tmp_path) == before
    return line


def test_an_empty_runs_root_is_one_line(tmp_path):
    (tmp_path / "runs").mkdir()
    write_json(tmp_path / "runs" / "study.json", {"name": "not_started"})
    bad_input(tmp_path, "runs", "--out", "report", needles=("no runs (run.json files) found under 'runs'", "dlb_study"))


def test_an_unknown_rank_by_is_one_line_naming_the_metrics_present(tmp_path):
    make_run(tmp_path / "runs" / "a", 0, mig=0.2, recon_ll=-3.0)
    line = bad_input(tmp_path, "runs", "--out", "report", "--rank_by", "dci",
                     needles=("unknown --rank_by 'dci'", "mig, recon_ll", "mig.discrete_mig"))
    assert line.startswith("dlb_aggregate: error: ")


def test_an_out_that_is_a_file_is_one_line(tmp_path):
    make_run(tmp_path / "runs" / "a", 0, mig=0.2)
    (tmp_path / "report").write_text("mine\n")
    bad_input(tmp_path, "runs", "--out", "report", needles=("--out 'report' is a file, not a folder",))
    assert (tmp_path / "report").read_text() == "mine\n"


@pytest.mark.parametrize("rank_by", ["mig.nothing", "sampled.mig"])
def test_rank_by_an_absent_column_is_refused(tmp_path, rank_by):
    make_run(tmp_path / "runs" / "a", 0, mig=0.2)
    bad_input(tmp_path, "runs", "--out", "report", "--rank_by", rank_by, needles=(f"unknown --rank_by '{rank_by}'",))


@pytest.mark.parametrize("rank_by", ["hp.beta", "train.lr", "model.latent_dim", "seed"])
def test_rank_by_a_setting_says_it_is_not_a_measured_value(tmp_path, rank_by):
    # it had said "no run has it" of a setting every run has
    make_run(tmp_path / "runs" / "a", 0, mig=0.2, recon_ll=-3.0)
    bad_input(tmp_path, "runs", "--out", "report", "--rank_by", rank_by,
              needles=(f"--rank_by {rank_by} is a setting, not a measured value", "one of: mig, recon_ll"))


@pytest.mark.parametrize("metric", ["unsupervised", "rotation[num_rotations=2]"])
def test_rank_by_a_metric_without_a_headline_names_its_values(tmp_path, metric):
    # it had said "no run has it" of a metric every run has
    keys = {"unsupervised": ("gaussian_total_correlation", "mutual_info_score"),
            "rotation[num_rotations=2]": ("objective", "mig_r1")}[metric]
    for seed in (0, 1):
        run = make_run(tmp_path / "runs" / f"s{seed}", seed, mig=0.2)
        write_metric(run, metric, {key: 0.1 * (seed + 1) for key in keys},
                     **({"num_rotations": 2} if "rotation" in metric else {}))
    bare = metric.partition("[")[0]
    columns = [f"{metric}.{key}" for key in keys]
    bad_input(tmp_path, "runs", "--out", "report", "--rank_by", bare,
              needles=(f"--rank_by {bare}: its results hold several values and none is its headline",
                       *(shlex.quote(column) for column in columns)))
    aggregate_ok(tmp_path, "--rank_by", columns[1])  # as it says: METRIC.KEY ranks
    [best] = read_csv(tmp_path / "report" / "best.csv")
    assert best["rank_by"] == columns[1]


def test_rank_by_a_metric_whose_every_result_is_damaged_says_so(tmp_path):
    # it had said "no run has it", and not that they were left out as damaged
    runs = [make_run(tmp_path / "runs" / f"s{seed}", seed, mig=0.2, recon_ll=-3.0) for seed in (0, 1)]
    for run in runs:
        (run / "metrics" / "mean" / "mig" / "results.json").write_text("{ cut")
    bad_input(tmp_path, "runs", "--out", "report", "--rank_by", "mig",
              needles=("--rank_by mig: no run has a usable result of it: 2 were left out as damaged",
                       "'runs/s0/metrics/mean/mig/results.json' is unreadable", "dlb_evaluate runs/s0 --metrics mig"))


@pytest.mark.parametrize("other_protocol", [True, False])
def test_without_rank_by_a_default_metric_whose_every_result_is_damaged_says_so(tmp_path, other_protocol):
    # it had said "no run has mig's default protocol" (or "no metric was evaluated"), not that they were damaged
    runs = [make_run(tmp_path / "runs" / f"s{seed}", seed) for seed in (0, 1)]
    for run in runs:
        write_metric(run, "mig", {"discrete_mig": "x"}, num_train=10000, num_bins=20)
    if other_protocol:
        write_metric(runs[0], "mig[seed=3]", {"discrete_mig": 0.3}, num_train=10000, num_bins=20, seed=3)
    [line] = [line for line in aggregate_ok(tmp_path) if line.startswith("best.csv is empty")]
    assert line.startswith("best.csv is empty: no run has a usable result of mig: 2 were left out as damaged, the "
                           "first: 'runs/s0/metrics/mean/mig/results.json' is unusable (its discrete_mig is 'x', "
                           "not a number); compute it again with dlb_evaluate runs/s0 --metrics mig"), line
    if other_protocol:
        assert line.endswith("; its other protocols here: mig[seed=3]; rank with --rank_by one of: 'mig[seed=3]'")
    else:
        assert line.endswith("; no other metric has a usable result; evaluate the runs with dlb_evaluate, or rank by "
                             "a training result, e.g. --rank_by train_result.loss")


@pytest.mark.parametrize("command", ["dlb_aggregate", "dlb_report"])
@pytest.mark.parametrize("rank_by", ["", " "])
def test_an_empty_rank_by_is_refused_in_one_line(tmp_path, command, rank_by):
    # it had ranked by mig without a word
    make_run(tmp_path / "runs" / "s0", 0, mig=0.2)
    before = tree(tmp_path)
    result = run_in_process(command, "runs", "--out", "report", "--rank_by", rank_by, cwd=tmp_path)
    assert_one_line_error(result, f"{command}: error: argument --rank_by: an empty name; give a metric, e.g. mig, "
                                  f"or leave --rank_by out to rank by mig")
    assert tree(tmp_path) == before


def test_an_unreadable_study_json_is_reported_and_the_rest_aggregated(tmp_path):
    make_run(tmp_path / "runs" / "a", 0, mig=0.2)
    (tmp_path / "runs" / "study.json").write_text("{ cut")
    stdout = aggregate_ok(tmp_path)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["study"] is None
    [line] = report["left_out"]
    assert line.startswith("study left out: ") and "study.json" in line and line in stdout
    assert report["counts"]["metric_results_left_out"] == 0 and report["counts"]["runs_left_out"] == 0


@pytest.mark.parametrize("study, problem", [
    ({"name": "s", "file": 5}, "its file is 5, not a path"),
    ({"name": None, "runs": None}, "its name is null, not text"),
    ({"name": "s", "runs": None}, "its runs is null, not a list of the study's runs"),
    ({"name": "s", "runs": {"a": {}}}, 'its runs is {"a": {}}, not a list'),
    ({"name": "s", "runs": [{"name": "a"}, 5]}, "its runs[1] is 5, not an object naming a run"),
    ({"name": "s", "runs": [{"name": ["a"]}]}, 'its runs[0].name is ["a"], not text'),
    ({"name": "s", "runs": [{"gin_files": []}]}, "its runs[0] has no name"),
    ({"name": 7}, "its name is 7, not text"),
    ({"runs": [{"name": "a"}]}, "it names no study"),
    ({"name": "s", "metrics": "mig"}, 'its metrics is "mig", not a list of metric names'),
    ({"name": "s", "metric_params": [1]}, "its metric_params is [1], not an object"),
])
def test_a_study_json_of_wrong_types_is_left_out_as_unreadable_naming_the_field(tmp_path, study, problem):
    # JSON of the wrong shape had ended dlb_aggregate in a TypeError (shown_gin_path, iterating None)
    make_run(tmp_path / "runs" / "a", 0, mig=0.2)
    write_json(tmp_path / "runs" / "study.json", study)
    stdout = aggregate_ok(tmp_path)
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert (report["study"], report["study_file"]) == (None, None)
    assert report["not_started"] == report["not_in_study"] == []
    [line] = report["left_out"]
    assert line.startswith("study left out: 'runs/study.json' is unreadable (") and problem in line, line
    assert line in stdout


def test_rank_by_where_no_run_has_a_result_says_to_evaluate_first(tmp_path):
    make_run(tmp_path / "runs" / "a", 0, status="failed")
    bad_input(tmp_path, "runs", "--out", "report", "--rank_by", "mig",
              needles=("unknown --rank_by 'mig'", "no run under the runs root has a metric result", "dlb_evaluate"))


def aggregated_before_a_new_run(tmp_path):
    """A root of one run aggregated into report/, then a second run added to it: the earlier
    aggregation's files as {name: bytes}."""
    root, out = tmp_path / "runs", tmp_path / "report"
    make_run(root / "b4" / "s0", 0, mig=0.2, reconstruction=50.0)
    aggregate_ok(tmp_path)
    earlier = {name: (out / name).read_bytes() for name in FILES}
    make_run(root / "b4" / "s1", 1, mig=0.4, reconstruction=60.0)
    return earlier


def test_a_full_disk_midway_leaves_the_earlier_files_whole_as_a_set(tmp_path, monkeypatch):
    # a full disk at results.parquet had left the new results.csv beside the earlier tables
    import errno
    import pathlib

    out = tmp_path / "report"
    before = aggregated_before_a_new_run(tmp_path)
    write = pathlib.Path.write_bytes

    def full_at_parquet(self, data):
        if self.name.startswith(".results.parquet."):
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_at_parquet)
    result = run_aggregate("runs", "--out", "report", cwd=tmp_path)
    assert_one_line_error(result, "No space left on device", "results.parquet")
    assert {name: (out / name).read_bytes() for name in FILES} == before
    assert sorted(p.name for p in out.iterdir()) == FILES  # no temporary file left


def test_a_folder_where_a_file_goes_is_one_line_before_any_file_is_replaced(tmp_path):
    # a folder at best.csv had been met at its rename, after report.json and representatives.csv were replaced
    out = tmp_path / "report"
    before = aggregated_before_a_new_run(tmp_path)
    del before["best.csv"]
    (out / "best.csv").unlink()
    (out / "best.csv").mkdir()

    bad_input(tmp_path, "runs", "--out", "report", needles=("'report/best.csv' is a folder", "move it away"))
    assert {name: (out / name).read_bytes() for name in before} == before


def test_a_rename_failing_after_others_leaves_no_file_of_the_earlier_aggregation(tmp_path, monkeypatch):
    # the files renamed before the failure had stood beside the earlier aggregation's others, as one set
    import errno
    import os

    out = tmp_path / "report"
    earlier = aggregated_before_a_new_run(tmp_path)
    aggregate_ok(tmp_path, "--out", "reference")
    replace = os.replace

    def failing_at_best(source, target):
        if os.fspath(target).endswith("best.csv"):
            raise OSError(errno.EIO, "Input/output error", os.fspath(target))
        return replace(source, target)

    monkeypatch.setattr(os, "replace", failing_at_best)
    line = assert_one_line_error(run_aggregate("runs", "--out", "report", cwd=tmp_path), "best.csv",
                                 "Input/output error")
    left = sorted(path.name for path in out.iterdir())
    assert left and "best.csv" not in left  # the earlier best.csv went too: it would pass for this aggregation's
    # renamed last, report.json is not among them: it had described this aggregation beside half its tables
    assert "report.json" not in left
    for name in left:
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes() != earlier[name], name
    assert sorted(line.partition("written: ")[2].partition(";")[0].split(", ")) == left  # said which are new


def test_the_summary_counts_one_run_in_the_singular(tmp_path):
    # "0 failed and 1 unfinished runs counted", "1 of the study's runs have"
    make_run(tmp_path / "runs" / "s0", 0, mig=0.5)
    make_run(tmp_path / "runs" / "s1", 1, status="interrupted")
    stdout = aggregate_ok(tmp_path)
    assert "1 unfinished run counted but left out of the statistics; report.json lists it with its status" in stdout
    assert "failed" not in stdout
