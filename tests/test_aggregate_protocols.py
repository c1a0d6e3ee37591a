"""dlb_aggregate never mixes results computed with different metric protocols."""

import shutil

import pytest

from dlbench import rundir
from dlbench.aggregate import aggregate, protocol_tag
from dlbench.metrics import metric_version


def write_result(run_dir, metric, result, mode="mean"):
    rundir.write_json(run_dir / "metrics" / mode / metric / "results.json",
                      {"metric": metric, "metric_version": metric_version(metric), "mode": mode, **result})


def test_protocol_tag_names_the_parameters_that_differ_from_the_defaults():
    assert protocol_tag("mig", {"discrete_mig": 0.3, "num_train": 10000, "num_bins": 20}) == ""
    assert protocol_tag("mig", {"discrete_mig": 0.3, "num_train": 500, "num_bins": 20}) == "[num_train=500]"
    assert protocol_tag("dci", {"classifier": "logistic", "num_train": 10000}) == "[classifier=logistic]"
    assert protocol_tag("total_correlation", {"num_points": 384, "num_samples": 10000}) == ""  # None: derived
    assert protocol_tag("not_a_metric_of_this_version", {"num_train": 3}) == ""


def test_runs_evaluated_with_other_settings_get_their_own_columns(tiny_trained_run, tmp_path):
    root = tmp_path / "runs"
    runs = [shutil.copytree(tiny_trained_run, root / name) for name in ("a", "b", "c")]
    for seed, run in enumerate(runs):  # three seeds of one setting, not three copies of one run
        record = rundir.read_run(run)
        record["seed"] = record["train"]["seed"] = seed
        rundir.write_json(run / "run.json", record)
    write_result(runs[0], "mig", {"discrete_mig": 0.2, "num_train": 10000, "num_bins": 20})
    write_result(runs[1], "mig", {"discrete_mig": 0.4, "num_train": 10000, "num_bins": 20})
    write_result(runs[2], "mig", {"discrete_mig": 0.9, "num_train": 300, "num_bins": 20})
    write_result(runs[2], "mig", {"discrete_mig": 0.5, "num_train": 10000, "num_bins": 20}, mode="sampled")
    results, board = aggregate(root, tmp_path / "report")
    by_run = results.set_index("run_dir")
    assert by_run.loc["c", "mig[num_train=300].discrete_mig"] == 0.9
    assert by_run.loc["c", "sampled.mig.discrete_mig"] == 0.5
    assert by_run["mig.discrete_mig"].dropna().to_dict() == {"a": 0.2, "b": 0.4}
    assert board["mig.discrete_mig.mean"].iloc[0] == pytest.approx(0.3)  # the 300-point run is not averaged in
    assert board["mig[num_train=300].discrete_mig.mean"].iloc[0] == pytest.approx(0.9)


def test_results_of_other_seeds_get_their_own_columns_and_tagged_folders_are_read(tiny_trained_run, tmp_path):
    root = tmp_path / "runs"
    run = shutil.copytree(tiny_trained_run, root / "a")
    write_result(run, "mig", {"discrete_mig": 0.2, "num_train": 10000, "num_bins": 20, "seed": 0})
    rundir.write_json(run / "metrics" / "mean" / "mig[seed=3]" / "results.json",
                      {"metric": "mig", "metric_version": metric_version("mig"), "mode": "mean", "discrete_mig": 0.7,
                       "num_train": 10000, "num_bins": 20, "seed": 3})
    results, _ = aggregate(root, tmp_path / "report")
    row = results.set_index("run_dir").loc["a"]
    assert row["mig.discrete_mig"] == 0.2 and row["mig[seed=3].discrete_mig"] == 0.7


def test_a_whole_number_given_for_a_float_parameter_is_the_float_protocol(tiny_trained_run, tiny_dsprites, tmp_path):
    # active_units.threshold=0 had been stored under [threshold=0], where aggregation, reading 0.0 from the
    # result, found it misplaced and left it out; and threshold=0.0 was computed again into a second folder
    from dlbench.evaluation import evaluate_run, metric_result_path

    root = tmp_path / "runs"
    run = shutil.copytree(tiny_trained_run, root / "a")
    params = {"active_units": {"threshold": 0, "num_points": 100}}
    assert metric_result_path(run, "mean", "active_units", params["active_units"]) == \
        run / "metrics" / "mean" / "active_units[num_points=100,threshold=0.0]" / "results.json"
    first = evaluate_run(run, ["active_units"], params=params, log=lambda *_: None)
    assert first["active_units"]["threshold"] == 0.0
    again = evaluate_run(run, ["active_units"], params={"active_units": {"threshold": 0.0, "num_points": 100}},
                         log=lambda *_: None)
    assert again == first  # the same protocol: kept, not computed again beside it
    assert [p.name for p in (run / "metrics" / "mean").iterdir() if p.name.startswith("active_units")] == \
        ["active_units[num_points=100,threshold=0.0]"]
    results, _ = aggregate(root, tmp_path / "report")
    column = "active_units[num_points=100,threshold=0.0].active_units"
    assert results.set_index("run_dir").loc["a", column] == first["active_units"]["active_units"]
    assert protocol_tag("active_units", {"threshold": 1}) == protocol_tag("active_units", {"threshold": 1.0})


def test_elbo_results_written_with_the_old_key_name_still_aggregate(tiny_trained_run, tmp_path):
    root = tmp_path / "runs"
    old, new = (shutil.copytree(tiny_trained_run, root / name) for name in ("old", "new"))
    rundir.write_json(old / "run.json", {**rundir.read_run(old), "seed": 1})
    write_result(old, "elbo", {"elbo": -10.0, "log_px": -8.0, "kl": 2.0, "num_points": 10000})
    write_result(new, "elbo", {"elbo": -12.0, "recon_ll": -9.0, "kl": 3.0, "num_points": 10000})
    results, board = aggregate(root, tmp_path / "report")
    assert results.set_index("run_dir")["elbo.recon_ll"].to_dict() == {"old": -8.0, "new": -9.0}
    assert "elbo.log_px" not in results.columns
    assert board["elbo.recon_ll.mean"].iloc[0] == pytest.approx(-8.5)


def test_a_result_of_an_earlier_version_of_its_metric_is_left_out_with_the_command_that_computes_it(tmp_path):
    # factor_vae results stored before a single varying factor was no score (no metric_version) had been
    # averaged with those computed since
    from tests.fake_runs import make_run, read_csv, run_aggregate, write_json, write_metric

    root = tmp_path / "runs"
    current = [make_run(root / name, seed, mig=0.1) for seed, name in enumerate(("a", "b"))]
    for run, accuracy in zip(current, (0.6, 0.8)):
        write_metric(run, "factor_vae", {"eval_accuracy": accuracy, "train_accuracy": accuracy})
    outdated = make_run(root / "c", 2, mig=0.1)
    path = outdated / "metrics" / "mean" / "factor_vae" / "results.json"
    write_json(path, {"metric": "factor_vae", "mode": "mean", "eval_accuracy": 0.1, "train_accuracy": 0.1})

    result = run_aggregate(root, "--out", tmp_path / "report", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if str(path) in line]
    assert len(said) == 1 and "factor_vae version 1" in said[0], result.stdout
    assert said[0].endswith(f"dlb_evaluate {outdated} --metrics factor_vae --mode mean --overwrite"), said
    [board] = read_csv(tmp_path / "report" / "leaderboard.csv")
    assert board["factor_vae.eval_accuracy.count"] == "2"
    assert float(board["factor_vae.eval_accuracy.mean"]) == pytest.approx(0.7)
    assert {row["run_dir"]: row["factor_vae.eval_accuracy"] for row in read_csv(tmp_path / "report" / "results.csv")} \
        == {"a": "0.6", "b": "0.8", "c": ""}


def test_a_mig_result_of_version_1_is_left_out_and_one_missing_with_its_reason_is_not(tmp_path):
    # mig 2: a single code dimension is missing with a reason where it had scored its best MI over H(v),
    # up to 1, so a version-1 value (no metric_version) may be such a score and is computed again
    from dlbench.metrics.mig import SINGLE_CODE
    from tests.fake_runs import make_run, read_csv, run_aggregate, write_json, write_metric

    root = tmp_path / "runs"
    for seed, (name, value) in enumerate((("a", 0.2), ("b", 0.4))):
        make_run(root / name, seed, mig=value)
    outdated = make_run(root / "c", 2)
    path = outdated / "metrics" / "mean" / "mig" / "results.json"
    write_json(path, {"metric": "mig", "mode": "mean", "discrete_mig": 0.9, "num_train": 10000, "num_bins": 20})
    one_code = make_run(root / "d", 3)
    write_metric(one_code, "mig", {"discrete_mig_missing_reason": SINGLE_CODE}, num_train=10000, num_bins=20)

    result = run_aggregate(root, "--out", tmp_path / "report", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if str(path) in line]
    assert len(said) == 1 and "mig version 1" in said[0], result.stdout
    assert said[0].endswith(f"dlb_evaluate {outdated} --metrics mig --mode mean --overwrite"), said
    assert str(one_code) not in result.stdout
    [board] = read_csv(tmp_path / "report" / "leaderboard.csv")
    assert board["mig.discrete_mig.count"] == "2" and float(board["mig.discrete_mig.mean"]) == pytest.approx(0.3)
    assert {row["run_dir"]: row["mig.discrete_mig"] for row in read_csv(tmp_path / "report" / "results.csv")} \
        == {"a": "0.2", "b": "0.4", "c": "", "d": ""}


def test_rank_by_a_metric_whose_every_result_is_outdated_says_so(tmp_path):
    # it had said "unknown --rank_by 'factor_vae': no run has it", of a root that had evaluated it
    from tests.fake_runs import make_run, run_aggregate, write_json

    root = tmp_path / "runs"
    path = make_run(root / "a", 0, mig=0.1) / "metrics" / "mean" / "factor_vae" / "results.json"
    write_json(path, {"metric": "factor_vae", "mode": "mean", "eval_accuracy": 0.1})

    result = run_aggregate(root, "--out", tmp_path / "report", "--rank_by", "factor_vae", cwd=tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith(f"dlb_aggregate: error: --rank_by factor_vae: no run has a usable result of it: "
                                    f"1 was left out as outdated, the first: '{path}' is outdated"), result.stderr
