"""dlb_bench's command line: an option that the chosen benchmark does not read is a mistake said in
one line, not silently ignored."""

import pytest

from tests.commands import assert_one_line_error, run_command


@pytest.mark.parametrize("args, needle", [
    (["layers", "--images", "5"], "dlb_bench layers: --images is for encoding only"),
    (["train", "--stack", "2"], "dlb_bench train: --stack is for study, layers, encoding only"),
    (["memory", "--device", "cpu"], "dlb_bench memory: --device is for"),
    (["encoding", "--per-run"], "dlb_bench encoding: --per-run is for metrics only"),
    (["study", "--stack", "1,2", "--workers", "2"], "dlb_bench study: --workers is read only without --stack"),
    (["study", "--stack", "1,2", "--runs", "3"], "dlb_bench study: --runs is read only without --stack"),
    (["study", "--study", "study_v1"], "dlb_bench study: --study is read only with --stack"),
    (["study", "--steps", "5"], "dlb_bench study: --steps is read only with --stack"),
])
def test_an_option_the_benchmark_does_not_read_is_refused_rather_than_ignored(args, needle):
    assert_one_line_error(run_command("dlb_bench", *args), needle)
