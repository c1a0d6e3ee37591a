"""leaderboard.csv against numbers computed by hand: finished runs only in the statistics, failed
and unfinished runs counted, other protocols and modes in columns of their own.

Run directories are fabricated (tests/fake_runs.py); the expected values are written out here from
the numbers written into them."""

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from dlbench.aggregate import aggregate_runs, summarise, upper_half
from tests.fake_runs import make_run, read_csv, write_metric

# beta = 1: five finished seeds, in no particular order
MIG_1 = {0: 0.1, 1: 0.9, 2: 0.4, 3: 0.2, 4: 0.8}
RECON_1 = {0: -100.0, 1: -120.0, 2: -90.0, 3: -110.0, 4: -105.0}
# beta = 4: four finished seeds (an even count)
MIG_4 = {0: 0.1, 1: 0.2, 2: 0.3, 3: 0.4}


@pytest.fixture
def study(tmp_path):
    """The runs root, and the Aggregation of it written to tmp_path/report."""
    root = tmp_path / "runs"
    for seed, mig in MIG_1.items():
        make_run(root / "b1" / f"s{seed}", seed, mig=mig, recon_ll=RECON_1[seed], hyperparameters={"beta": 1.0})
    # seeds 0 and 1 also evaluated with 500 points, seed 2 also on the sampled representation
    write_metric(root / "b1" / "s0", "mig[num_train=500]", {"discrete_mig": 0.3}, num_train=500, num_bins=20)
    write_metric(root / "b1" / "s1", "mig[num_train=500]", {"discrete_mig": 0.5}, num_train=500, num_bins=20)
    write_metric(root / "b1" / "s2", "mig", {"discrete_mig": 0.7}, mode="sampled", num_train=10000, num_bins=20)
    # failed and unfinished runs, two of them holding a MIG that must not be averaged in
    make_run(root / "b1" / "s5", 5, status="failed", hyperparameters={"beta": 1.0})
    make_run(root / "b1" / "s6", 6, mig=0.99, status="running", hyperparameters={"beta": 1.0})
    make_run(root / "b1" / "s7", 7, status="interrupted", hyperparameters={"beta": 1.0})
    make_run(root / "b1" / "s8", 8, mig=0.0, status="failed", hyperparameters={"beta": 1.0})
    for seed, mig in MIG_4.items():
        make_run(root / "b4" / f"s{seed}", seed, mig=mig, recon_ll=-50.0 - seed, hyperparameters={"beta": 4.0})
    for seed in (0, 1):  # a setting whose every run failed
        make_run(root / "b8" / f"s{seed}", seed, status="failed", hyperparameters={"beta": 8.0})
    return root, aggregate_runs(root, tmp_path / "report")


def board_row(aggregation, beta):
    board = aggregation.board
    [row] = board[board["hp.beta"] == beta].to_dict("records")
    return row


def test_results_have_one_row_per_run_with_its_status(study):
    _, aggregation = study
    results = aggregation.results.set_index("run_dir")
    assert len(results) == 9 + 4 + 2
    assert results.loc["b1/s5", "status"] == "failed" and results.loc["b1/s7", "status"] == "interrupted"
    assert results.loc["b1/s6", "mig.discrete_mig"] == 0.99  # kept in results.csv, out of the statistics
    assert results.loc["b1/s0", "mig[num_train=500].discrete_mig"] == 0.3
    assert results.loc["b1/s2", "sampled.mig.discrete_mig"] == 0.7


def test_runs_are_counted_by_status(study):
    _, aggregation = study
    counts = {beta: {k: board_row(aggregation, beta)[k] for k in ("num_runs", "num_done", "num_failed", "num_unfinished")}
              for beta in (1.0, 4.0, 8.0)}
    assert counts == {1.0: {"num_runs": 9, "num_done": 5, "num_failed": 2, "num_unfinished": 2},
                      4.0: {"num_runs": 4, "num_done": 4, "num_failed": 0, "num_unfinished": 0},
                      8.0: {"num_runs": 2, "num_done": 0, "num_failed": 2, "num_unfinished": 0}}


def test_statistics_of_an_odd_count_of_finished_runs(study):
    _, aggregation = study
    row = board_row(aggregation, 1.0)
    # sorted MIG of the five finished seeds: 0.1, 0.2, 0.4, 0.8, 0.9 (0.99 and 0.0 are not finished runs)
    assert row["mig.discrete_mig.count"] == 5
    assert row["mig.discrete_mig.mean"] == pytest.approx(2.4 / 5)
    # squared deviations from 0.48: 0.1444 + 0.0784 + 0.0064 + 0.1024 + 0.1764 = 0.508, over n - 1 = 4
    assert row["mig.discrete_mig.std"] == pytest.approx(math.sqrt(0.508 / 4))
    assert row["mig.discrete_mig.std"] == pytest.approx(statistics.stdev(MIG_1.values()))
    assert row["mig.discrete_mig.sem"] == pytest.approx(math.sqrt(0.508 / 4) / math.sqrt(5))
    assert row["mig.discrete_mig.median"] == pytest.approx(0.4)
    assert row["mig.discrete_mig.q25"] == pytest.approx(0.2)  # positions 1 and 3 of 0..4: no interpolation
    assert row["mig.discrete_mig.q75"] == pytest.approx(0.8)
    assert row["mig.discrete_mig.upper_half_mean"] == pytest.approx((0.4 + 0.8 + 0.9) / 3)  # the median is in
    # recon_ll sorted: -120, -110, -105, -100, -90
    assert row["recon_ll.recon_ll.mean"] == pytest.approx(-105.0)
    assert row["recon_ll.recon_ll.median"] == pytest.approx(-105.0)
    assert (row["recon_ll.recon_ll.q25"], row["recon_ll.recon_ll.q75"]) == pytest.approx((-110.0, -100.0))
    assert row["recon_ll.recon_ll.upper_half_mean"] == pytest.approx((-105.0 - 100.0 - 90.0) / 3)


def test_statistics_of_an_even_count_interpolate(study):
    _, aggregation = study
    row = board_row(aggregation, 4.0)
    assert row["mig.discrete_mig.mean"] == pytest.approx(0.25)
    assert row["mig.discrete_mig.median"] == pytest.approx(0.25)
    # linear interpolation: position 0.75 lies between 0.1 and 0.2, position 2.25 between 0.3 and 0.4
    assert row["mig.discrete_mig.q25"] == pytest.approx(0.175)
    assert row["mig.discrete_mig.q75"] == pytest.approx(0.325)
    assert row["mig.discrete_mig.upper_half_mean"] == pytest.approx(0.35)
    assert row["mig.discrete_mig.std"] == pytest.approx(statistics.stdev(MIG_4.values()))


def test_other_protocols_and_modes_are_summarised_apart(study):
    _, aggregation = study
    row = board_row(aggregation, 1.0)
    assert row["mig[num_train=500].discrete_mig.count"] == 2
    assert row["mig[num_train=500].discrete_mig.mean"] == pytest.approx(0.4)
    assert row["mig[num_train=500].discrete_mig.std"] == pytest.approx(math.sqrt(0.02))  # (0.1² + 0.1²) / 1
    assert row["mig[num_train=500].discrete_mig.upper_half_mean"] == pytest.approx(0.5)
    assert row["sampled.mig.discrete_mig.count"] == 1
    assert row["sampled.mig.discrete_mig.mean"] == pytest.approx(0.7)
    assert math.isnan(row["sampled.mig.discrete_mig.std"]) and math.isnan(row["sampled.mig.discrete_mig.sem"])
    assert row["sampled.mig.discrete_mig.median"] == row["sampled.mig.discrete_mig.q25"] == pytest.approx(0.7)


def test_a_setting_without_finished_runs_has_counts_and_no_statistics(study):
    _, aggregation = study
    row = board_row(aggregation, 8.0)
    assert row["mig.discrete_mig.count"] == 0
    assert all(math.isnan(row[f"mig.discrete_mig.{name}"]) for name in ("mean", "std", "median", "upper_half_mean"))


def test_the_written_leaderboard_holds_the_same_numbers(study, tmp_path):
    _, aggregation = study
    written = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    pd.testing.assert_frame_equal(written, aggregation.board, check_dtype=False)
    assert read_csv(tmp_path / "report" / "leaderboard.csv")[0]["num_done"] == "5"  # a count, not 5.0


def test_leaderboard_columns_follow_the_documented_names(study):
    _, aggregation = study
    columns = list(aggregation.board.columns)
    assert columns[:2] == ["dataset", "method"]
    counts = columns.index("num_runs")
    assert columns[counts:counts + 4] == ["num_runs", "num_done", "num_failed", "num_unfinished"]
    assert columns[counts + 4:counts + 12] == [f"mig.discrete_mig.{name}" for name in
                                               ("count", "mean", "std", "sem", "median", "q25", "q75", "upper_half_mean")]
    assert "train_result.loss.mean" in columns


@pytest.mark.parametrize("values, expected", [
    ([1.0, 2.0, 3.0], (2.0 + 3.0) / 2),             # odd count: the median is in
    ([1.0, 2.0, 3.0, 4.0], (3.0 + 4.0) / 2),        # even count: the top half
    ([1.0, 2.0, 2.0, 3.0], (2.0 + 2.0 + 3.0) / 3),  # ties at the median are all in
    ([4.0, 1.0], 4.0),
    ([7.0], 7.0),
])
def test_upper_half_mean_is_the_mean_at_or_above_the_median(values, expected):
    assert summarise(values)["upper_half_mean"] == pytest.approx(expected)
    assert np.asarray(values)[upper_half(values)].mean() == pytest.approx(expected)


def test_summary_of_one_value_and_of_none():
    one = summarise([3.0])
    assert (one["count"], one["mean"], one["median"], one["q25"], one["q75"]) == (1, 3.0, 3.0, 3.0, 3.0)
    assert math.isnan(one["std"]) and math.isnan(one["sem"])
    none = summarise([])
    assert none["count"] == 0 and all(math.isnan(value) for key, value in none.items() if key != "count")
