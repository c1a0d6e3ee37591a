"""Runs trained on different grids of one dataset (run.json's dataset_shape: a reduced grid of
`dlb_data make --keep`, DLBENCH_DATA pointed elsewhere) are different settings: never averaged
together, never taken for copies of each other. Run directories are fabricated (tests/fake_runs.py)."""

import hashlib
import json

import pandas as pd
import pytest

from dlbench.aggregate import aggregate_runs
from tests.fake_runs import make_run, read_csv, write_json

# dSprites' published grid (README, Datasets), and orientation kept at 10 of its 40 values
FULL = {"observations": 3 * 6 * 40 * 32 * 32, "factor_sizes": [3, 6, 40, 32, 32]}
REDUCED = {"observations": 3 * 6 * 10 * 32 * 32, "factor_sizes": [3, 6, 10, 32, 32]}
FULL_LABEL = "dsprites[observations=737280,factor_sizes=3x6x40x32x32]"
REDUCED_LABEL = "dsprites[observations=184320,factor_sizes=3x6x10x32x32]"
MIG = {("full", 0): 0.2, ("full", 1): 0.4, ("reduced", 0): 0.7, ("reduced", 1): 0.9}


def make_grids_study(root, grids=("full", "reduced"), seeds=(0, 1)):
    """One setting (beta-VAE, beta 4) trained with each seed on each grid, same seeds on both."""
    for grid in grids:
        for seed in seeds:
            make_run(root / grid / f"s{seed}", seed, mig=MIG[grid, seed], reconstruction=50.0 + seed,
                     dataset_shape=FULL if grid == "full" else REDUCED)
    return root


def test_runs_on_two_grids_are_two_settings_with_their_own_statistics(tmp_path):
    # leaderboard.csv had averaged the MIG of both grids into one row of four runs
    aggregation = aggregate_runs(make_grids_study(tmp_path / "runs"), tmp_path / "report")
    board = aggregation.board.set_index("dataset")
    assert sorted(board.index) == sorted([FULL_LABEL, REDUCED_LABEL])
    assert board.loc[FULL_LABEL, "num_done"] == 2 and board.loc[REDUCED_LABEL, "num_done"] == 2
    assert board.loc[FULL_LABEL, "mig.discrete_mig.mean"] == pytest.approx((0.2 + 0.4) / 2)
    assert board.loc[REDUCED_LABEL, "mig.discrete_mig.mean"] == pytest.approx((0.7 + 0.9) / 2)
    assert sorted(aggregation.best["dataset"]) == sorted([FULL_LABEL, REDUCED_LABEL])
    assert len(aggregation.representatives) == 2


def test_the_same_seed_on_two_grids_is_no_duplicate(tmp_path):
    # the second had been left out as a copy of the first
    aggregation = aggregate_runs(make_grids_study(tmp_path / "runs", seeds=(0,)), tmp_path / "report")
    assert aggregation.duplicates == []
    assert sorted(aggregation.results["run_dir"]) == ["full/s0", "reduced/s0"]
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["duplicates"] == []


def test_results_csv_says_which_grid_each_run_trained_on(tmp_path):
    aggregate_runs(make_grids_study(tmp_path / "runs"), tmp_path / "report")
    rows = {row["run_dir"]: row for row in read_csv(tmp_path / "report" / "results.csv")}
    assert rows["full/s0"]["dataset_shape"] == "observations=737280,factor_sizes=3x6x40x32x32"
    assert rows["reduced/s1"]["dataset_shape"] == "observations=184320,factor_sizes=3x6x10x32x32"
    assert rows["reduced/s1"]["dataset"] == REDUCED_LABEL
    parquet = pd.read_parquet(tmp_path / "report" / "results.parquet").set_index("run_dir")
    assert parquet.loc["full/s0", "dataset_shape"] == rows["full/s0"]["dataset_shape"]


def without_shape(root):
    """The runs under root as runs written before run.json recorded dataset_shape."""
    for path in root.rglob("run.json"):
        record = json.loads(path.read_text())
        record.pop("dataset_shape")
        write_json(path, record)
    return root


def test_one_grid_gives_the_leaderboard_of_runs_that_did_not_record_it(tmp_path):
    recorded = aggregate_runs(make_grids_study(tmp_path / "a", grids=("reduced",)), tmp_path / "report_a")
    older = aggregate_runs(without_shape(make_grids_study(tmp_path / "b", grids=("reduced",))), tmp_path / "report_b")
    assert list(recorded.board["dataset"]) == ["dsprites"]
    pd.testing.assert_frame_equal(recorded.board, older.board)
    for name in ("leaderboard.csv", "best.csv", "representatives.csv"):
        assert (tmp_path / "report_a" / name).read_bytes() == (tmp_path / "report_b" / name).read_bytes(), name
    # results.csv gains the grid's column; runs older than run.json's dataset_shape have none
    columns = list(older.results.columns)
    assert list(recorded.results.columns) == columns[:columns.index("status") + 1] + ["dataset_shape"] + \
        columns[columns.index("status") + 1:]


def test_a_run_without_a_recorded_grid_stays_with_a_copy_that_has_one(tmp_path):
    # a copy taken before the run was resumed by a dlbench that records the grid is still a copy
    root = make_grids_study(tmp_path / "runs", grids=("full",), seeds=(0,))
    make_run(root / "older" / "s0", 0, mig=MIG["full", 0])
    aggregation = aggregate_runs(root, tmp_path / "report")
    assert [(str(duplicate.copy), str(duplicate.kept)) for duplicate in aggregation.duplicates] == [
        (str(root / "older" / "s0"), str(root / "full" / "s0"))]
    assert list(aggregation.board["dataset"]) == ["dsprites"]


def test_a_run_without_a_recorded_grid_is_not_pooled_where_grids_differ(tmp_path):
    root = make_grids_study(tmp_path / "runs")
    make_run(root / "older" / "s0", 0, mig=0.5)
    board = aggregate_runs(root, tmp_path / "report").board.set_index("dataset")
    assert sorted(board.index) == sorted(["dsprites", FULL_LABEL, REDUCED_LABEL])
    assert board.loc["dsprites", "mig.discrete_mig.mean"] == 0.5
    assert board.loc[FULL_LABEL, "num_runs"] == 2 and board.loc[REDUCED_LABEL, "num_runs"] == 2


@pytest.mark.parametrize("shape", ["737280", {"observations": -1}, {"observations": 5, "factor_sizes": "3x6"}])
def test_a_damaged_recorded_grid_leaves_the_run_out_with_one_line(tmp_path, shape):
    root = make_grids_study(tmp_path / "runs", grids=("full",))
    make_run(root / "damaged", 2, mig=0.5, dataset_shape=shape)
    aggregation = aggregate_runs(root, tmp_path / "report")
    assert sorted(aggregation.results["run_dir"]) == ["full/s0", "full/s1"]
    [line] = aggregation.left_out
    assert line.startswith("run left out: ") and "dataset_shape" in line and "damaged" in line and "run.json" in line


def test_two_reduced_grids_of_one_shape_are_two_settings_named_by_what_they_kept(tmp_path):
    # orientation 0:40:4 and 2:40:4 have one shape: their runs had been pooled, the second seed 0 a "copy"
    root = tmp_path / "runs"
    kept = {"even": {"orientation": list(range(0, 40, 4))}, "odd": {"orientation": list(range(2, 40, 4))}}
    for grid, mig in (("even", 0.3), ("odd", 0.6)):
        make_run(root / grid / "s0", 0, mig=mig, dataset_shape={**REDUCED, "kept": kept[grid]})
    make_run(root / "full" / "s0", 0, mig=0.1, dataset_shape=FULL)

    aggregation = aggregate_runs(root, tmp_path / "report")

    assert aggregation.duplicates == []
    board = aggregation.board.set_index("dataset")
    labels = {grid: f"{REDUCED_LABEL[:-1]},kept=#{hashlib.sha1(json.dumps(kept[grid]).encode()).hexdigest()[:8]}]"
              for grid in kept}
    # the full grid's shape is its own: its label names no kept values
    assert sorted(board.index) == sorted([FULL_LABEL, *labels.values()])
    assert board.loc[labels["even"], "mig.discrete_mig.mean"] == 0.3
    assert board.loc[labels["odd"], "mig.discrete_mig.mean"] == 0.6


def test_a_reduced_grid_beside_the_full_one_is_named_by_its_shape_alone(tmp_path):
    root = tmp_path / "runs"
    make_run(root / "reduced" / "s0", 0, mig=0.3,
             dataset_shape={**REDUCED, "kept": {"orientation": list(range(0, 40, 4))}})
    make_run(root / "full" / "s0", 0, mig=0.1, dataset_shape=FULL)
    board = aggregate_runs(root, tmp_path / "report").board
    assert sorted(board["dataset"]) == sorted([FULL_LABEL, REDUCED_LABEL])
