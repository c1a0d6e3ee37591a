"""representatives.csv: among a setting's finished runs in the upper half of MIG, the one nearest
in Mahalanobis distance to their mean of (MIG, reconstruction); the degenerate cases as documented
in dlbench/aggregate/representatives.py. Expected runs are known by construction or computed here
with scipy's Mahalanobis distance."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import mahalanobis

from dlbench.aggregate import aggregate_runs, distances_to_mean
from tests.fake_runs import make_run


def representatives_of(tmp_path, runs):
    """Write runs [(name, mig, recon_ll, extra make_run arguments)] and aggregate them: the rows of
    representatives.csv by beta, as written."""
    root = tmp_path / "runs"
    for seed, (name, mig, recon, extra) in enumerate(runs):
        make_run(root / name, seed, mig=mig, recon_ll=recon, **extra)
    aggregate_runs(root, tmp_path / "report")
    return pd.read_csv(tmp_path / "report" / "representatives.csv")


def one_setting(runs):
    return [(name, mig, recon, {}) for name, mig, recon in runs]


def test_the_run_at_the_upper_halfs_mean_is_chosen(tmp_path):
    lower = [(f"low{i}", mig, -60.0) for i, mig in enumerate((0.1, 0.2, 0.3, 0.4))]
    # the upper half (MIG at or above the median 0.5 of nine runs): four around (0.6, -100) and one on it
    upper = [("a", 0.5, -100.0), ("b", 0.7, -100.0), ("c", 0.6, -90.0), ("d", 0.6, -110.0), ("centre", 0.6, -100.0)]
    [row] = representatives_of(tmp_path, one_setting(lower + upper)).to_dict("records")
    assert row["run_dir"] == "centre"
    assert row["distance"] == pytest.approx(0.0, abs=1e-9)
    assert (row["mig"], row["reconstruction"]) == (0.6, -100.0)
    assert (row["mig_column"], row["reconstruction_column"]) == ("mig.discrete_mig", "recon_ll.recon_ll")
    assert (row["distance_method"], row["num_upper_half"], row["num_candidates"]) == ("mahalanobis", 5, 9)


def test_mahalanobis_not_euclidean_distance_decides(tmp_path):
    # MIG and reconstruction traded off along a line; 'across' is nearest to the mean in (standardised)
    # Euclidean distance but lies across the line, 'along' is farther but on it
    upper = [("u1", 0.50, -100.0), ("u2", 0.60, -110.0), ("u3", 0.70, -120.0), ("u4", 0.80, -130.0),
             ("across", 0.67, -111.0), ("along", 0.61, -108.0)]
    lower = [(f"low{i}", mig, -50.0) for i, mig in enumerate((0.1, 0.15, 0.2, 0.25, 0.3))]
    points = np.array([[mig, recon] for _, mig, recon in upper])
    mean, inverse = points.mean(axis=0), np.linalg.inv(np.cov(points, rowvar=False))
    expected = [mahalanobis(point, mean, inverse) for point in points]
    standardised = (points - mean) / points.std(axis=0, ddof=1)
    assert upper[int(np.argmin(np.linalg.norm(standardised, axis=1)))][0] == "across"
    assert upper[int(np.argmin(np.linalg.norm(points - mean, axis=1)))][0] == "across"
    assert upper[int(np.argmin(expected))][0] == "along"

    [row] = representatives_of(tmp_path, one_setting(lower + upper)).to_dict("records")
    assert row["run_dir"] == "along"
    assert row["distance"] == pytest.approx(min(expected))
    assert row["num_upper_half"] == 6 and row["distance_method"] == "mahalanobis"
    distances, method = distances_to_mean(points)
    np.testing.assert_allclose(distances, expected)


def test_one_representative_per_setting_from_finished_runs_only(tmp_path):
    runs = [("beta4/a", 0.5, -10.0, {}), ("beta4/b", 0.9, -30.0, {}),
            # an unfinished and a failed run right at the mean of the finished ones are not candidates
            ("beta4/running", 0.7, -20.0, {"status": "running"}), ("beta4/failed", 0.7, -20.0, {"status": "failed"}),
            ("beta1/only", 0.3, -5.0, {"hyperparameters": {"beta": 1.0}})]
    rows = representatives_of(tmp_path, runs).set_index("hp.beta")
    assert sorted(rows.index) == [1.0, 4.0]
    assert rows.loc[1.0, "run_dir"] == "beta1/only"
    assert rows.loc[1.0, "distance_method"] == "single run" and rows.loc[1.0, "distance"] == 0.0
    assert rows.loc[4.0, "num_candidates"] == 2  # and of two, only the one above the median is in the upper half
    assert rows.loc[4.0, "run_dir"] == "beta4/b" and rows.loc[4.0, "num_upper_half"] == 1


def test_two_runs_in_the_upper_half_tie_and_the_higher_mig_wins(tmp_path):
    # three runs: the median 0.5 and the 0.9 above it form the upper half; both are equally far from
    # their mean (1/sqrt(2) with a rank-one covariance), so the higher MIG is chosen
    rows = representatives_of(tmp_path, one_setting([("a", 0.2, -10.0), ("b", 0.5, -20.0), ("c", 0.9, -40.0)]))
    [row] = rows.to_dict("records")
    assert row["run_dir"] == "c" and row["num_upper_half"] == 2
    assert row["distance"] == pytest.approx(1 / math.sqrt(2))
    assert row["distance_method"] == "pseudo-inverse"


def test_runs_on_a_line_use_the_pseudo_inverse(tmp_path):
    # the upper half lies on a line: the covariance is singular; along the line the middle run is the mean
    rows = representatives_of(tmp_path, one_setting([("a", 0.1, -1.0), ("b", 0.2, -2.0), ("c", 0.5, -120.0),
                                                     ("d", 0.6, -110.0), ("e", 0.7, -100.0)]))
    [row] = rows.to_dict("records")
    assert row["run_dir"] == "d" and row["distance"] == pytest.approx(0.0, abs=1e-6)
    assert row["distance_method"] == "pseudo-inverse" and row["num_upper_half"] == 3


def test_a_value_equal_in_every_run_is_left_out_of_the_distance(tmp_path):
    # equal MIG in the upper half: the distance is |reconstruction - mean| / std of reconstruction
    rows = representatives_of(tmp_path, one_setting([("a", 0.5, -100.0), ("b", 0.5, -130.0), ("c", 0.5, -110.0)]))
    [row] = rows.to_dict("records")
    assert row["run_dir"] == "c"  # -110 is 3.33 from the mean -113.33; -100 is 13.3, -130 16.7
    recon = np.array([-100.0, -130.0, -110.0])
    assert row["distance"] == pytest.approx(abs(-110.0 - recon.mean()) / recon.std(ddof=1))
    assert row["distance_method"] == "pseudo-inverse"


def test_identical_runs_are_all_at_distance_zero_and_the_first_is_chosen(tmp_path):
    rows = representatives_of(tmp_path, one_setting([("b", 0.5, -100.0), ("a", 0.5, -100.0)]))
    [row] = rows.to_dict("records")
    assert (row["run_dir"], row["distance"], row["distance_method"]) == ("a", 0.0, "identical runs")


def test_without_recon_ll_the_training_reconstruction_is_used(tmp_path):
    root = tmp_path / "runs"
    for seed, (mig, reconstruction) in enumerate(((0.9, 50.0), (0.8, 60.0), (0.1, 70.0))):
        make_run(root / f"s{seed}", seed, mig=mig, reconstruction=reconstruction)
    make_run(root / "other", 0, mig=0.4, recon_ll=-3.0, hyperparameters={"beta": 2.0})
    rows = aggregate_runs(root, tmp_path / "report").representatives.set_index("hp.beta")
    assert rows.loc[4.0, "reconstruction_column"] == "train_result.reconstruction"
    assert rows.loc[4.0, "reconstruction"] in (50.0, 60.0)
    assert rows.loc[2.0, "reconstruction_column"] == "recon_ll.recon_ll"


def test_a_setting_with_recon_ll_in_another_protocol_only_is_represented_by_it(tmp_path):
    # such a setting had taken the training loss (a positive -log-likelihood) into the column where the
    # others have recon_ll (a log-likelihood)
    from tests.fake_runs import write_metric

    root = tmp_path / "runs"
    make_run(root / "default", 0, mig=0.4, recon_ll=-3.0, hyperparameters={"beta": 2.0})
    for seed, (mig, recon) in enumerate(((0.9, -50.0), (0.8, -60.0), (0.1, -70.0))):
        run = make_run(root / f"s{seed}", seed, mig=mig, reconstruction=-recon + 1.0)
        write_metric(run, "recon_ll[num_points=500]", {"recon_ll": recon}, num_points=500)
    rows = aggregate_runs(root, tmp_path / "report").representatives.set_index("hp.beta")
    assert rows.loc[2.0, "reconstruction_column"] == "recon_ll.recon_ll"
    assert rows.loc[4.0, "reconstruction_column"] == "recon_ll[num_points=500].recon_ll"
    assert rows.loc[4.0, "reconstruction"] in (-50.0, -60.0)


def test_a_setting_without_both_values_has_no_row(tmp_path):
    rows = representatives_of(tmp_path, [("a", 0.5, None, {}), ("b", None, -3.0, {"hyperparameters": {"beta": 2.0}})])
    assert rows.empty
    assert list(rows.columns[:2]) == ["dataset", "method"] and "distance" in rows.columns


@pytest.mark.parametrize("with_study", [True, False])
def test_a_study_that_changed_its_mig_protocol_is_represented_and_ranked_by_the_new_one(tmp_path, with_study):
    # the runs keep their results of the default protocol, evaluated before the study set mig's
    # num_train: representatives and best.csv had followed those, the default being preferred
    from tests.fake_runs import write_json, write_metric

    root = tmp_path / "runs"
    for name, seed, old, new in (("a", 0, 0.9, 0.1), ("b", 1, 0.1, 0.9)):
        run = make_run(root / name, seed, mig=old, recon_ll=-100.0)
        write_metric(run, "mig[num_train=500]", {"discrete_mig": new}, num_train=500, num_bins=20)
    if with_study:
        write_json(root / "study.json", {"name": "s", "file": "s.gin", "metrics": ["mig", "recon_ll"],
                                         "metric_params": {"mig": {"num_train": 500}}, "runs": []})
    aggregation = aggregate_runs(root, tmp_path / "report")
    [row] = pd.read_csv(tmp_path / "report" / "representatives.csv").to_dict("records")
    # two runs are equally far from their mean: the one of higher MIG, in the column chosen, is taken
    column = "mig[num_train=500].discrete_mig" if with_study else "mig.discrete_mig"
    assert (row["mig_column"], row["run_dir"], row["mig"]) == (column, "b" if with_study else "a", 0.9)
    assert aggregation.report["rank_by"] == column
    # named, the metric follows the study as the default ranking does (it had taken the default protocol)
    assert aggregate_runs(root, tmp_path / "named", rank_by="mig").report["rank_by"] == column
    assert aggregate_runs(root, tmp_path / "tagged", rank_by="mig[num_train=500]").report["rank_by"] == \
        "mig[num_train=500].discrete_mig"
