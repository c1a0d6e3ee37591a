"""dlb_bench's options checked before anything is measured: counts below 1, empty lists or list
items, unknown studies, and combinations of metrics options that one mode would silently drop are
each one line and exit status 2. Every benchmark is replaced by a failure here, so a mistake that
got through would fail the test at once instead of measuring."""

import contextlib
import io
import subprocess

import pytest

from tests.commands import assert_one_line_error


@pytest.fixture
def nothing_measured(monkeypatch, tmp_path):
    """Each benchmark (and the data they load) raises if started; the working folder is tmp_path."""
    import dlbench.bench
    import dlbench.data
    import dlbench.flops
    import dlbench.stack_benchmark
    import dlbench.study.benchmark
    from dlbench.data import memory_benchmark

    def started(*args, **kwargs):
        raise AssertionError("a benchmark started")

    for module, name in [(dlbench.bench, "bench_train"), (dlbench.bench, "bench_per_run"),
                         (dlbench.bench, "bench_metrics_conv"), (dlbench.bench, "bench_metrics_lookup"),
                         (dlbench.data, "get_dataset"), (dlbench.flops, "matmul_peak_tflops"),
                         (dlbench.study.benchmark, "bench_study"), (dlbench.study.benchmark, "_images_per_second"),
                         (dlbench.stack_benchmark, "bench_layers"), (dlbench.stack_benchmark, "bench_encoding"),
                         (memory_benchmark, "measure")]:
        monkeypatch.setattr(module, name, started)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def bench(*args):
    """dlb_bench ARGS in this process: a CompletedProcess with its exit status and output."""
    from dlbench.cli.bench import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(list(args))
    return subprocess.CompletedProcess(["dlb_bench", *args], code, stdout.getvalue(), stderr.getvalue())


def assert_refused(folder, args, *needles):
    result = bench(*args)
    assert_one_line_error(result, *needles)
    assert not result.stdout, "nothing is printed before the refusal"
    assert not list(folder.iterdir()), "nothing is written"


@pytest.mark.parametrize("args", [
    ["train", "--device", "cpu", "--steps", "-1"],  # was a ZeroDivisionError
    ["train", "--device", "cpu", "--steps", "0"],  # was the default
    ["study", "--device", "cpu", "--stack", "1", "--steps", "-3"],  # was negative images per second
    ["study", "--device", "cpu", "--stack", "1", "--steps", "0"],
])
def test_steps_below_one_are_refused_for_every_benchmark_that_takes_them(nothing_measured, args):
    assert_refused(nothing_measured, args, f"dlb_bench {args[0]}: --steps must be at least 1, got {args[-1]}")


@pytest.mark.parametrize("repeats", ["0", "-2"])
def test_repeats_below_one_are_refused_as_the_other_counts_are(nothing_measured, repeats):
    # it had been refused by the API's check, without the flag's name: "repeats must be an integer >= 1"
    assert_refused(nothing_measured, ["metrics", "--lookup-only", "--repeats", repeats],
                   f"dlb_bench metrics: --repeats must be at least 1, got {repeats}")


@pytest.mark.parametrize("studies", ["nosuch", "study_v1_cpu,nosuch"])
def test_an_unknown_study_is_refused_before_the_peak_is_measured(nothing_measured, studies):
    assert_refused(nothing_measured, ["study", "--device", "cpu", "--stack", "1", "--study", studies],
                   "unknown study 'nosuch'")


@pytest.mark.parametrize("args, needle", [
    (["study", "--stack", ""], "dlb_bench study: bad --stack '' (empty)"),
    (["study", "--workers", ""], "dlb_bench study: bad --workers '' (empty)"),
    (["study", "--stack", "1", "--study", ""], "dlb_bench study: bad --study '' (empty)"),
    (["study", "--stack", "1", "--study", "study_v1_cpu,"], "bad --study 'study_v1_cpu,' (an empty item)"),
    (["study", "--stack", "1,,4"], "dlb_bench study: bad --stack '1,,4' (an empty item)"),
    (["layers", "--stack", ""], "dlb_bench layers: bad --stack '' (empty)"),
    (["encoding", "--stack", "2,"], "dlb_bench encoding: bad --stack '2,' (an empty item)"),
    (["metrics", "--metrics", "", "--lookup-only"], "dlb_bench metrics: bad --metrics '' (empty)"),
    (["metrics", "--metrics", ",", "--lookup-only"], "dlb_bench metrics: bad --metrics ',' (an empty item)"),
    (["memory", "--datasets", ""], "dlb_bench memory: bad --datasets '' (empty)"),
])
def test_an_empty_list_or_list_item_is_refused_rather_than_read_as_the_default(nothing_measured, args, needle):
    assert_refused(nothing_measured, args, needle, "give comma-separated")


@pytest.mark.parametrize("args, needle", [
    (["--metrics", "mig", "--lookup-only", "--per-run"], "--metrics is used only without --per-run"),
    (["--lookup-only", "--per-run"], "--lookup-only is used only without --per-run"),
    (["--per-run", "--metric_param", "factor_vae.num_train=10"], "--metric_param is used only without --per-run"),
    (["--per-run", "--repeats", "2"], "--repeats is used only without --per-run"),
    (["--lookup-only", "--device", "cpu"], "--device is used only without --lookup-only"),
    (["--metrics", "mig", "--lookup-only", "--metric_param", "factor_vae.num_train=10"],
     "metric parameters given for 'factor_vae', which is not among the metrics asked for (mig)"),
    # recon_ll is timed only with the conv model, which --lookup-only skips
    (["--lookup-only", "--metric_param", "recon_ll.num_points=10"], "metric parameters given for 'recon_ll'"),
    (["--metrics", "mig", "--lookup-only", "--metric_param", "mig.num_train=ten"], "mig.num_train must be an integer"),
])
def test_metrics_options_that_would_go_unused_are_refused(nothing_measured, args, needle):
    assert_refused(nothing_measured, ["metrics", *args], needle)


def test_the_metrics_options_still_go_together_where_they_are_read(monkeypatch, tmp_path):
    """The checks refuse only what is unused: these reach the benchmark with what was asked."""
    import dlbench.bench

    calls = []
    monkeypatch.setattr(dlbench.bench, "bench_metrics", lambda *args, **kwargs: calls.append(kwargs) or {})
    monkeypatch.setattr(dlbench.bench, "bench_per_run", lambda *args, **kwargs: calls.append(kwargs) or {})
    assert bench("metrics", "--lookup-only", "--metrics", "mig, sap", "--metric_param", "mig.num_train=10",
                 "--repeats", "2").returncode == 0
    assert calls[-1]["names"] == ["mig", "sap"] and calls[-1]["params"] == {"mig": {"num_train": 10}}
    assert bench("metrics", "--device", "cpu", "--per-run", "--dataset", "dsprites").returncode == 0
    assert calls[-1]["dataset"] == "dsprites"
