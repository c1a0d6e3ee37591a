"""Training curves: the plotted median and quartiles over seeds equal numpy's over hand-written
logs aligned on their shared steps; damaged or missing logs, and logs that end before the others',
are left out and named; rows cut short or not numbers are dropped and said."""

import numpy as np
import pytest
from PIL import Image

from dlbench import rundir
from dlbench.errors import UserError
from dlbench.report import curves
from dlbench.train.run import LogWriter


def write_log(run_dir, rows):
    """A train_log.csv as dlb_train writes it (rows: dicts with step first)."""
    writer = LogWriter(rundir.train_log_path(run_dir))
    for row in rows:
        writer.write(row)
    return run_dir


def log_rows(steps, loss, reconstruction, kl):
    return [{"step": s, "images_per_second": 100.0, "loss": lo, "reconstruction": r, "kl": k, "elbo": -(r + k)}
            for s, lo, r, k in zip(steps, loss, reconstruction, kl)]


@pytest.fixture
def three_seeds(tmp_path):
    """Three runs; the third logged step 5 too and the first two step 15, so the shared steps are
    10, 20."""
    runs = [
        write_log(tmp_path / "a", log_rows([10, 15, 20], [9.0, 3.0, 4.0], [8.0, 2.0, 3.0], [1.0, 1.0, 1.0])),
        write_log(tmp_path / "b", log_rows([10, 15, 20], [7.0, 1.0, 6.0], [5.0, 0.5, 4.0], [2.0, 0.5, 2.0])),
        write_log(tmp_path / "c", log_rows([5, 10, 20], [99.0, 1.0, 2.0], [90.0, 0.5, 1.0], [9.0, 0.5, 1.0])),
    ]
    return runs


def test_median_and_quartiles_are_numpys_over_the_shared_steps(three_seeds):
    data = curves.curve_data(three_seeds)
    assert data.runs == three_seeds and data.left_out == []
    assert sorted(data.bands) == ["kl", "loss", "reconstruction"]
    # the values at steps 10 and 20 of runs a, b, c, as written above
    at_shared = {"loss": [[9.0, 4.0], [7.0, 6.0], [1.0, 2.0]],
                 "reconstruction": [[8.0, 3.0], [5.0, 4.0], [0.5, 1.0]],
                 "kl": [[1.0, 1.0], [2.0, 2.0], [0.5, 1.0]]}
    for quantity, values in at_shared.items():
        band = data.bands[quantity]
        np.testing.assert_array_equal(band.steps, [10, 20])
        np.testing.assert_allclose(band.median, np.median(values, axis=0))
        np.testing.assert_allclose(band.q25, np.quantile(values, 0.25, axis=0))
        np.testing.assert_allclose(band.q75, np.quantile(values, 0.75, axis=0))
    # by hand: loss at step 10 sorted is 1, 7, 9 -> median 7, quartiles 4 and 8 (linear interpolation)
    loss = data.bands["loss"]
    assert (loss.median[0], loss.q25[0], loss.q75[0]) == (7.0, 4.0, 8.0)


def test_the_figure_plots_those_numbers(three_seeds, tmp_path, monkeypatch):
    plotted = {}
    save = curves.save_figure

    def recording_save(fig, folder, name):
        for ax in fig.axes:
            median_line, band = ax.lines[0], ax.collections[0].get_paths()[0].vertices
            plotted[ax.get_title()] = (median_line.get_xdata(), median_line.get_ydata(), band, ax.get_xlabel(),
                                       ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()])
        plotted["title"] = fig.get_suptitle()
        return save(fig, folder, name)

    monkeypatch.setattr(curves, "save_figure", recording_save)
    paths = curves.training_curves(three_seeds, tmp_path / "figures", "curves_beta4", "beta_vae, beta=4",
                                   "dsprites", study="tiny")
    assert [p.name for p in paths] == ["curves_beta4.png", "curves_beta4.pdf"]
    with Image.open(paths[0]) as image:
        assert image.size[0] > 0
    assert paths[1].read_bytes().startswith(b"%PDF")
    data = curves.curve_data(three_seeds)
    for quantity in curves.QUANTITIES:
        steps, median, band, xlabel, ylabel, legend = plotted[quantity]
        expected = data.bands[quantity]
        np.testing.assert_array_equal(steps, expected.steps)
        np.testing.assert_allclose(median, expected.median)
        # the band's outline passes through (step, q25) and (step, q75) at every step
        corners = {(float(x), float(y)) for x, y in band}
        for step, low, high in zip(expected.steps, expected.q25, expected.q75):
            assert (step, low) in corners and (step, high) in corners
        assert xlabel == "training step" and "nats" in ylabel
        assert sorted(legend) == ["25-75% of 3 runs", "median of 3 runs"]
    assert plotted["title"] == "Training curves of beta_vae, beta=4: dsprites, study tiny"


def test_a_run_without_a_readable_log_is_left_out_and_named(three_seeds, tmp_path):
    missing = tmp_path / "never_logged"
    missing.mkdir()
    damaged = tmp_path / "damaged"
    rundir.train_log_path(damaged).parent.mkdir(parents=True)
    rundir.train_log_path(damaged).write_text("loss,kl\n1,2\n")  # no step column
    emptied = tmp_path / "emptied"  # a resume from step 0 empties the log
    rundir.train_log_path(emptied).parent.mkdir(parents=True)
    rundir.train_log_path(emptied).write_text("")
    garbled = tmp_path / "garbled"  # had been drawn as an empty curve
    rundir.train_log_path(garbled).parent.mkdir(parents=True)
    rundir.train_log_path(garbled).write_text("step,loss\nfoo,bar\n")
    data = curves.curve_data([*three_seeds, missing, damaged, emptied, garbled])
    assert data.runs == three_seeds
    assert [run for run, _ in data.left_out] == [missing, damaged, emptied, garbled]
    assert "no model/train_log.csv" in data.left_out[0][1] and "step" in data.left_out[1][1]
    assert "does not read" in data.left_out[2][1]
    assert "no row whose step and values are numbers" in data.left_out[3][1]


def test_a_step_logged_twice_counts_once_with_its_last_values(tmp_path):
    rows = log_rows([10, 20, 20], [5.0, 4.0, 3.0], [4.0, 3.0, 2.0], [1.0, 1.0, 1.0])
    data = curves.curve_data([write_log(tmp_path / "a", rows)])
    np.testing.assert_array_equal(data.bands["loss"].steps, [10, 20])
    np.testing.assert_array_equal(data.bands["loss"].median, [5.0, 3.0])


def test_a_quantity_some_run_did_not_log_is_not_drawn(tmp_path):
    full = write_log(tmp_path / "a", log_rows([10], [5.0], [4.0], [1.0]))
    no_kl = write_log(tmp_path / "b", [{"step": 10, "loss": 3.0, "reconstruction": 3.0}])
    assert sorted(curves.curve_data([full, no_kl]).bands) == ["loss", "reconstruction"]


def test_runs_without_logs_are_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no training log"):
        curves.curve_data([tmp_path / "empty"])
    with pytest.raises(UserError, match="no training log"):
        curves.curve_data([])
    unrelated = write_log(tmp_path / "c", [{"step": 10, "accuracy": 0.5}])
    with pytest.raises(UserError, match="none of the columns"):
        curves.training_curves([unrelated], tmp_path / "out", "x", "label", "dsprites")
    assert not (tmp_path / "out" / "x.png").exists()


def test_a_log_that_ends_early_is_left_out_rather_than_cutting_the_others_curves(three_seeds, tmp_path):
    # a log cut down to its first rows (a truncated or restored file) had cut every run of the
    # setting down to the steps it shares with the others: here to step 10 alone
    short = write_log(tmp_path / "short", log_rows([10], [50.0], [40.0], [10.0]))
    data = curves.curve_data([*three_seeds, short])
    assert data.runs == three_seeds
    assert data.left_out == [(short, "its model/train_log.csv ends at step 10, before step 20 that the "
                                     "setting's other runs logged")]
    np.testing.assert_array_equal(data.bands["loss"].steps, [10, 20])
    np.testing.assert_allclose(data.bands["loss"].median, [7.0, 4.0])  # of 9, 7, 1 and of 4, 6, 2


def cut_log(run_dir, keep_bytes):
    """run_dir's train_log.csv cut to its first keep_bytes bytes, as a writer killed mid-row leaves it."""
    path = rundir.train_log_path(run_dir)
    path.write_bytes(path.read_bytes()[:keep_bytes])
    return run_dir


def test_a_row_cut_short_is_dropped_and_said(three_seeds, tmp_path):
    rows = log_rows([10, 20], [7.0, 123456.0], [5.0, 123455.0], [2.0, 1.0])
    cut = write_log(tmp_path / "cut", rows)
    # the last row cut inside its loss: what is left of it reads as the number 12
    cut_log(cut, rundir.train_log_path(cut).read_bytes().index(b"20,100.0,12") + len("20,100.0,12"))
    table, dropped = curves.read_train_log(cut)
    assert table.index.tolist() == [10]
    assert dropped == ["a last row cut short, as a writer stopped mid-row leaves it"]
    # it now ends before the others, so it is left out, the dropped row named in the reason
    data = curves.curve_data([*three_seeds, cut])
    assert data.runs == three_seeds and [run for run, _ in data.left_out] == [cut]
    assert "ends at step 10" in data.left_out[0][1] and "a last row cut short" in data.left_out[0][1]
    # cut inside its first row: no row is left
    header_and_part = cut_log(write_log(tmp_path / "part", rows), 60)
    data = curves.curve_data([*three_seeds, header_and_part])
    assert data.runs == three_seeds and [run for run, _ in data.left_out] == [header_and_part]
    assert "no row whose step and values are numbers (dropped: a last row cut short" in data.left_out[0][1]


def test_rows_that_are_not_numbers_are_dropped_and_said(tmp_path):
    # a row of NaNs had given the curve a gap at its step, or an empty plot where it was the only shared step
    path = rundir.train_log_path(tmp_path / "a")
    path.parent.mkdir(parents=True)
    path.write_text("step,images_per_second,loss,reconstruction,kl\n10,1,5,4,1\n15,,,,\n20,1,nan,3,1\n"
                    "25,1,2,1,1\n")
    data = curves.curve_data([tmp_path / "a"])
    np.testing.assert_array_equal(data.bands["loss"].steps, [10, 25])
    np.testing.assert_array_equal(data.bands["loss"].median, [5.0, 2.0])
    assert data.left_out == []
    assert data.trimmed == [(tmp_path / "a", "dropped from its model/train_log.csv: 2 rows whose step is not a "
                                             "whole number or whose loss, reconstruction or kl is not a number")]


def test_the_figure_and_the_caller_hear_of_runs_left_out_and_rows_dropped(three_seeds, tmp_path, monkeypatch):
    legends = []
    save = curves.save_figure

    def recording_save(fig, folder, name):
        legends.extend(t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())
        return save(fig, folder, name)

    monkeypatch.setattr(curves, "save_figure", recording_save)
    (tmp_path / "never_logged").mkdir()
    nan_row = write_log(tmp_path / "nan_row", log_rows([10, 15, 20], [1.0, float("nan"), 2.0], [1.0, 1.0, 1.0],
                                                       [0.5, 0.5, 0.5]))
    heard = []
    curves.training_curves([*three_seeds, tmp_path / "never_logged", nan_row], tmp_path / "figures", "curves",
                           "beta_vae, beta=4", "dsprites", note_run=lambda run, line: heard.append((run, line)))
    assert heard == [(tmp_path / "never_logged", "left out: it has no model/train_log.csv"),
                     (nan_row, "drawn, but dropped from its model/train_log.csv: 1 row whose step is not a whole "
                               "number or whose loss, reconstruction or kl is not a number")]
    # a figure seen without the page still says that it is short of a run
    assert set(legends) == {"median of 4 of 5 runs", "25-75% of 4 of 5 runs"}
