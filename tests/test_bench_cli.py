"""dlb_bench's command line: an option that the chosen benchmark does not read is a mistake said in
one line, not silently ignored."""

import pytest

from tests.commands import assert_one_line_error, run_command


@pytest.mark.parametrize("args, needle", [
    (["layers", "--images", "5"], "dlb_bench layers: --images is for encoding only"),
    (["train", "--stack", "2"], "dlb_bench train: --stack is for study, layers, encoding only"),
    (["memory", "--device", "cpu"], "dlb_bench memory: --device is for"),
    (["encoding", "--per-run"], "dlb_bench encoding: --per-run is for metrics only"),
])
def test_an_option_the_benchmark_does_not_read_is_refused_rather_than_ignored(args, needle):
    assert_one_line_error(run_command("dlb_bench", *args), needle)
