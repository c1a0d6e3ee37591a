"""dlb_bench's command line: an option that the chosen benchmark does not read is a mistake said in
one line, not silently ignored."""

import pytest

from tests.commands import assert_one_line_error, run_command


@pytest.mark.parametrize("args, needle", [
    (["layers", "--images", "5"], "dlb_bench layers: --images is for encoding only"),
    (["train", "--stack", "2"], "dlb_bench train: --stack is for study, layers, encoding only"),
    (["memory", "--device", "cpu"], "dlb_bench memory: --device is for"),
    (["encoding", "--per-run"], "dlb_bench encoding: --per-run is for metrics only"),
    (["study", "--stack", "1,2", "--workers", "2"], "dlb_bench study: --workers is used only without --stack"),
    (["study", "--stack", "1,2", "--runs", "3"], "dlb_bench study: --runs is used only without --stack"),
    (["study", "--study", "study_v1"], "dlb_bench study: --study is used only with --stack"),
    (["study", "--steps", "5"], "dlb_bench study: --steps is used only with --stack"),
])
def test_an_option_the_benchmark_does_not_read_is_refused_rather_than_ignored(args, needle):
    assert_one_line_error(run_command("dlb_bench", *args), needle)


@pytest.mark.parametrize("hours, said", [(2.4132, "2.41 h"), (0.05, "3.0 min"), (1e-4, "0.36 s")])
def test_a_projected_duration_too_short_for_hours_is_said_in_minutes_or_seconds(hours, said):
    # a small study's projection had read "0.00 h"
    from dlbench.cli.bench import _duration

    assert _duration(hours) == said


@pytest.mark.parametrize("pflop, said", [(3.2, "3.20 PFLOP"), (0.0042, "4.20 TFLOP"), (2e-7, "0.2 GFLOP")])
def test_a_flop_count_too_small_for_pflop_is_said_in_a_smaller_unit(pflop, said):
    from dlbench.cli.bench import _flop

    assert _flop(pflop) == said
