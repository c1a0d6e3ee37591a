"""dlb_bench aggregate: the synthetic runs root it writes, and the figures it prints (a small root:
the full 1280 runs are for the benchmark itself)."""

import contextlib
import io
import json
import subprocess

import pandas as pd
import pytest

from dlbench.aggregate import aggregate_runs
from dlbench.aggregate.benchmark import format_figures, write_synthetic_root
from dlbench.cli import bench as bench_cli
from tests.commands import assert_one_line_error


def test_the_synthetic_root_has_failed_and_unfinished_runs_and_aggregates(tmp_path):
    # 60 runs: every 20th failed (indices 19, 39, 59), every 30th of the others running (29)
    assert write_synthetic_root(tmp_path / "runs", runs=60) == {"done": 56, "failed": 3, "running": 1}
    aggregation = aggregate_runs(tmp_path / "runs", tmp_path / "report")
    # 20 seeds per setting: three betas of beta_vae on dsprites, each with one failed run
    board = aggregation.board.set_index("hp.beta")
    assert list(board["num_failed"]) == [1, 1, 1] and list(board["num_unfinished"]) == [0, 1, 0]
    results = pd.read_csv(tmp_path / "report" / "results.csv")
    finished = results[(results["status"] == "done") & (results["hp.beta"] == 3.0)]
    assert board.loc[3.0, "mig.discrete_mig.mean"] == pytest.approx(finished["mig.discrete_mig"].mean())
    assert len(aggregation.representatives) == 3
    assert list(aggregation.best["hp.beta"]) == [board["mig.discrete_mig.mean"].idxmax()]


def bench(*args):
    """dlb_bench aggregate ARGS in this process: a CompletedProcess with its exit status and output."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = bench_cli.main(["aggregate", *map(str, args)])
    return subprocess.CompletedProcess(["dlb_bench", "aggregate", *args], code, stdout.getvalue(), stderr.getvalue())


@pytest.mark.slow  # times dlb_aggregate in a fresh Python too (its imports take seconds)
def test_dlb_bench_aggregate_prints_its_figures(tmp_path):
    result = bench("--runs", 40, "--scratch", tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["runs"] == 40 and figures["statuses"] == {"done": 37, "failed": 2, "running": 1}
    assert figures["settings"] == 2
    for name in ("seconds_to_write_the_runs", "seconds_to_read_the_runs", "seconds_to_aggregate",
                 "seconds_of_the_command"):
        assert figures[name] > 0, name
    assert list(tmp_path.iterdir()) == []  # the synthetic root is removed
    lines = format_figures(figures)
    assert lines[0].startswith("synthetic runs root: 40 runs (37 done, 2 failed, 1 running), 2 settings")
    assert lines[2] == f"aggregating (every file):    {figures['seconds_to_aggregate']:6.2f} s"


@pytest.mark.parametrize("args, needle", [(["--scratch", "missing"], "--scratch 'missing' is not an existing folder"),
                                          (["--runs", "0"], "--runs must be at least 1")])
def test_dlb_bench_aggregate_refuses_bad_options_in_one_line(tmp_path, args, needle):
    assert_one_line_error(bench(*args), "dlb_bench aggregate", needle)
    assert list(tmp_path.iterdir()) == []
