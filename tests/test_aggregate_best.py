"""best.csv: the setting with the best mean per dataset and method, and what --rank_by names."""

import json

import pandas as pd
import pytest

from dlbench.aggregate import aggregate_runs, resolve_metric_column
from dlbench.errors import UserError
from tests.commands import assert_one_line_error
from tests.fake_runs import make_run, run_aggregate, write_metric

# (method, beta) -> MIG of its two seeds; the best beta per method is obvious
MIG = {("beta_vae", 1.0): (0.1, 0.1), ("beta_vae", 4.0): (0.5, 0.6), ("beta_vae", 8.0): (0.3, 0.3),
       ("beta_tcvae", 2.0): (0.2, 0.25), ("beta_tcvae", 6.0): (0.7, 0.6)}


def make_study(root):
    for (method, beta), values in MIG.items():
        for seed, mig in enumerate(values):
            run = make_run(root / method / str(beta) / f"s{seed}", seed, mig=mig, recon_ll=-10.0 * beta,
                           method=method, hyperparameters={"beta": beta})
            write_metric(run, "total_correlation", {"total_correlation": beta + seed})
    return root


def best_betas(best):
    return dict(zip(best["method"], best["hp.beta"]))


def test_best_is_the_setting_with_the_highest_mean_mig(tmp_path):
    aggregation = aggregate_runs(make_study(tmp_path / "runs"), tmp_path / "report")
    assert best_betas(aggregation.best) == {"beta_vae": 4.0, "beta_tcvae": 6.0}
    assert set(aggregation.best["rank_by"]) == {"mig.discrete_mig"}
    assert set(aggregation.best["rank_direction"]) == {"higher"}
    # the leaderboard's row, whole
    row = aggregation.best.set_index("method").loc["beta_vae"]
    assert row["mig.discrete_mig.mean"] == pytest.approx(0.55) and row["num_done"] == 2
    written = pd.read_csv(tmp_path / "report" / "best.csv")
    assert list(written.columns) == ["rank_by", "rank_direction", *aggregation.board.columns]
    assert best_betas(written) == {"beta_vae": 4.0, "beta_tcvae": 6.0}


def test_rank_by_another_metric_and_lower_is_better(tmp_path):
    root = make_study(tmp_path / "runs")
    by_recon = aggregate_runs(root, tmp_path / "a", rank_by="recon_ll").best  # -10 beta: the smallest beta
    assert best_betas(by_recon) == {"beta_vae": 1.0, "beta_tcvae": 2.0}
    assert set(by_recon["rank_by"]) == {"recon_ll.recon_ll"}
    by_tc = aggregate_runs(root, tmp_path / "b", rank_by="total_correlation").best
    assert best_betas(by_tc) == {"beta_vae": 1.0, "beta_tcvae": 2.0}
    assert set(by_tc["rank_direction"]) == {"lower"}
    by_column = aggregate_runs(root, tmp_path / "c", rank_by="recon_ll.recon_ll_stderr").best
    assert set(by_column["rank_by"]) == {"recon_ll.recon_ll_stderr"}
    assert set(by_column["rank_direction"]) == {"lower"}  # the setting of the largest error had been best


@pytest.mark.parametrize("column, lower", [
    ("recon_ll.recon_ll", False), ("recon_ll.recon_ll_stderr", True), ("elbo.elbo", False), ("elbo.kl", True),
    ("train_result.kl", True), ("sampled.mig[num_train=500].discrete_mig", False),
    # a latent's KL ranks as the total does, and the total correlation lowest first: they had ranked highest first
    ("train_result.kl_0", True), ("train_result.kl_12", True), ("train_result.tc", True),
    ("train_result.dimwise_kl", True), ("train_result.cov_offdiag", True), ("train_result.elbo", False),
    ("train_result.images_per_second", False), ("train_result.kl_x", False),
    ("rotation.objective_change_stderr_r1", True), ("rotation.objective_change_r1", False),
    ("rotation.mig_max_abs_change", True), ("rotation.mig_max", False), ("rotation.max_abs_objective_change", True),
    ("rotation.max_abs_objective_change_over_stderr", True), ("unsupervised.mutual_info_score", True),
    ("aggregate_kl.kl_qz_pz_stderr", True), ("hp.beta", False)])
def test_errors_and_changes_under_rotation_rank_lowest_first(column, lower):
    from dlbench.aggregate.columns import lower_is_better

    assert lower_is_better(column) is lower


def test_a_tie_goes_to_the_first_setting_in_the_leaderboard(tmp_path):
    root = tmp_path / "runs"
    for beta in (8.0, 2.0):
        make_run(root / str(beta), 0, mig=0.5, hyperparameters={"beta": beta})
    assert best_betas(aggregate_runs(root, tmp_path / "report").best) == {"beta_vae": 2.0}


def test_a_method_without_the_value_has_no_row_and_is_reported(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "a", 0, mig=0.5)
    make_run(root / "b", 0, recon_ll=-3.0, method="beta_tcvae")
    aggregation = aggregate_runs(root, tmp_path / "report")
    assert list(aggregation.best["method"]) == ["beta_vae"]
    assert aggregation.report["unranked"] == [{"dataset": "dsprites", "method": "beta_tcvae"}]


def test_mig_means_the_default_protocol_and_else_the_one_present(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root / "a", 0, mig=0.2)
    write_metric(run, "mig[num_train=500]", {"discrete_mig": 0.9}, num_train=500, num_bins=20)
    write_metric(run, "mig", {"discrete_mig": 0.4}, mode="sampled", num_train=10000, num_bins=20)
    results = aggregate_runs(root, tmp_path / "report").results
    assert resolve_metric_column(results, "mig") == "mig.discrete_mig"
    assert resolve_metric_column(results, "mig[num_train=500]") == "mig[num_train=500].discrete_mig"
    assert resolve_metric_column(results, "sampled.mig") == "sampled.mig.discrete_mig"
    assert resolve_metric_column(results.drop(columns=["mig.discrete_mig"]), "mig") == "mig[num_train=500].discrete_mig"
    assert resolve_metric_column(results, "mig_chen") is None


def test_an_unknown_rank_by_names_the_metrics_present_before_anything_is_written(tmp_path):
    root = make_study(tmp_path / "runs")
    with pytest.raises(UserError, match=r"unknown --rank_by 'dci'.*mig, recon_ll, total_correlation"):
        aggregate_runs(root, tmp_path / "report", rank_by="dci")
    assert not (tmp_path / "report").exists()


def test_without_mig_the_default_ranking_is_empty_and_says_what_to_use(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "a", 0, recon_ll=-3.0)
    aggregation = aggregate_runs(root, tmp_path / "report")
    assert aggregation.best.empty and aggregation.report["rank_by"] is None
    assert any("best.csv is empty: no run has mig; rank with --rank_by one of: recon_ll" in line
               for line in aggregation.notes())
    assert list(pd.read_csv(tmp_path / "report" / "best.csv").columns)[:3] == ["rank_by", "rank_direction", "dataset"]


@pytest.mark.parametrize("metrics, names, columns", [
    ({"unsupervised": {"gaussian_total_correlation": 0.3, "mutual_info_score": 0.1}}, "unsupervised",
     "unsupervised.gaussian_total_correlation"),
    ({"rotation": {"mig": 0.2, "mig_max": 0.3}, "unsupervised": {"gaussian_total_correlation": 0.3,
                                                                   "mutual_info_score": 0.1}},
     "rotation, unsupervised", "rotation.mig, unsupervised.gaussian_total_correlation")])
def test_metrics_without_a_headline_are_named_with_a_column_to_rank_by(tmp_path, metrics, names, columns):
    # the note had said 'none (no metric was evaluated)' of runs evaluated with rotation or unsupervised only
    root = tmp_path / "runs"
    run = make_run(root / "a", 0)
    for metric, values in metrics.items():
        write_metric(run, metric, values)
    notes = [line for line in aggregate_runs(root, tmp_path / "report").notes() if line.startswith("best.csv")]
    assert notes == [f"best.csv is empty: no run has mig; the metrics evaluated ({names}) have no headline value to "
                     f"rank by; rank with --rank_by one of their columns of results.csv, e.g. {columns}"]
    first = columns.split(", ")[0]
    assert set(aggregate_runs(root, tmp_path / "ranked", rank_by=first).best["rank_by"]) == {first}


def test_without_any_metric_the_note_says_to_evaluate_or_rank_by_a_training_result(tmp_path):
    make_run(tmp_path / "runs" / "a", 0)
    notes = [line for line in aggregate_runs(tmp_path / "runs", tmp_path / "report").notes()
             if line.startswith("best.csv")]
    assert notes == ["best.csv is empty: no run has mig; no metric was evaluated; evaluate the runs with "
                     "dlb_evaluate, or rank by a training result, e.g. --rank_by train_result.loss"]
    ranked = aggregate_runs(tmp_path / "runs", tmp_path / "ranked", rank_by="train_result.loss").best
    assert set(ranked["rank_by"]) == {"train_result.loss"}


def make_other_protocol_study(root):
    """Two settings whose runs have MIG and recon_ll of non-default protocols only (num_bins=10,
    num_points=200); beta 4 has the higher MIG and beta 1 the higher recon_ll."""
    for beta, mig, recon_ll in ((1.0, 0.1, -3.0), (4.0, 0.6, -9.0)):
        run = make_run(root / str(beta), 0, hyperparameters={"beta": beta})
        write_metric(run, "mig[num_bins=10]", {"discrete_mig": mig}, num_train=10000, num_bins=10)
        write_metric(run, "recon_ll[num_points=200]", {"recon_ll": recon_ll, "recon_ll_stderr": 0.5}, num_points=200)
    return root


@pytest.mark.parametrize("metric, protocol", [("mig", "mig[num_bins=10]"), ("recon_ll", "recon_ll[num_points=200]")])
def test_a_bare_metric_name_never_ranks_by_another_protocol(tmp_path, metric, protocol):
    # `--rank_by mig` had ranked by mig[num_bins=10].discrete_mig where no run had the default protocol
    make_other_protocol_study(tmp_path / "runs")
    result = run_aggregate("runs", "--out", "report", "--rank_by", metric, cwd=tmp_path)
    assert_one_line_error(result, "dlb_aggregate: error: ", f"--rank_by {metric}: no run has {metric}'s default "
                          f"protocol", f"--rank_by '{protocol}'")
    assert not (tmp_path / "report").exists()


def test_a_metric_name_with_its_protocol_ranks_by_that_protocol(tmp_path):
    root = make_other_protocol_study(tmp_path / "runs")
    by_mig = aggregate_runs(root, tmp_path / "a", rank_by="mig[num_bins=10]").best
    assert best_betas(by_mig) == {"beta_vae": 4.0}
    assert set(by_mig["rank_by"]) == {"mig[num_bins=10].discrete_mig"}
    by_recon = aggregate_runs(root, tmp_path / "b", rank_by="recon_ll[num_points=200]").best
    assert best_betas(by_recon) == {"beta_vae": 1.0}


def test_the_default_ranking_never_takes_another_protocol_of_mig(tmp_path):
    # without --rank_by the root of mig[num_bins=10] only had been ranked by it, as if it were mig's default
    result = run_aggregate("runs", "--out", "report", cwd=make_other_protocol_study(tmp_path / "runs").parent)
    assert result.returncode == 0, result.stderr
    assert "ranked by" not in result.stdout
    assert "best.csv is empty: no run has mig's default protocol; its results here are of mig[num_bins=10]" \
           in result.stdout
    assert pd.read_csv(tmp_path / "report" / "best.csv").empty
    assert json.loads((tmp_path / "report" / "report.json").read_text())["rank_by"] is None


def test_an_unknown_rank_by_names_the_columns_of_the_metrics_without_a_headline_too(tmp_path):
    # unsupervised, mean or sampled, ranks by one of its columns, which the line had not said
    root = make_study(tmp_path / "runs")
    values = {"gaussian_total_correlation": 0.5, "gaussian_wasserstein_correlation": 0.2, "mutual_info_score": 0.1}
    for run in root.glob("*/*/s*"):
        write_metric(run, "unsupervised", values)
        write_metric(run, "unsupervised", values, mode="sampled")
    with pytest.raises(UserError) as err:
        aggregate_runs(root, tmp_path / "report", rank_by="dci")
    said = str(err.value)
    assert "give one of the metrics present: mig, recon_ll, total_correlation; metrics of several values by one of " \
           "their columns, e.g. unsupervised.gaussian_total_correlation, " \
           "sampled.unsupervised.gaussian_total_correlation (" in said, said
