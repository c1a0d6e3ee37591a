"""dlb_evaluate's mistakes: every bad value refused with one line before anything is computed or
written, and a stored result reused only for exactly the protocol it was computed with, also for
parameters whose default is None (derived from the data when not given)."""

import json
import subprocess

import pytest

from dlbench import metrics
from dlbench.cli import evaluate as evaluate_cli
from dlbench.errors import UserError
from dlbench.evaluation import evaluate_run, metric_result_path
from dlbench.study.unit import quiet
from tests.commands import assert_one_line_error, run_command, run_in_process, tree
from tests.test_external_representation import PoolCodes, save_script

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# the metrics with a protocol parameter whose default is None, and that parameter
NONE_DEFAULTS = [(name, key) for name in metrics.available_metrics()
                 for key, default in metrics.protocol_params(name).items() if default is None]


def evaluate(capsys, *args):
    """dlb_evaluate in this process, as a CompletedProcess for assert_one_line_error."""
    code = evaluate_cli.main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def test_the_none_defaults_are_the_aggregate_posterior_ones():
    # so that the tests parametrized by them are not empty
    assert NONE_DEFAULTS == [("aggregate_kl", "num_points"), ("total_correlation", "num_points")]


@pytest.mark.parametrize("name, key", NONE_DEFAULTS)
def test_a_given_value_of_a_none_default_is_its_own_protocol(trained_run, name, key):
    # num_points=50 had been stored as the default protocol and handed back when the default was asked for
    given = {key: 50, "num_samples": 200}
    sampled = evaluate_run(trained_run, [name], device="cpu", params={name: given}, log=quiet)[name]
    assert (sampled["num_points"], sampled["points"]) == (50, "sampled")
    assert metric_result_path(trained_run, "mean", name, given).parent.name == f"{name}[num_samples=200,{key}=50]"

    default = evaluate_run(trained_run, [name], device="cpu", params={name: {"num_samples": 200}}, log=quiet)[name]
    assert (default["num_points"], default["points"]) == (384, "full_grid")  # the whole tiny grid
    assert metrics.protocol_tag(name, default) == "[num_samples=200]"
    assert metrics.protocol_tag(name, sampled) == f"[num_samples=200,{key}=50]"  # apart in the aggregate too

    lines = []
    again = evaluate_run(trained_run, [name], device="cpu", params={name: given}, log=lines.append)[name]
    # each protocol reused from its own folder, and said so
    assert lines == [f"{trained_run}: kept the stored results of {name}[num_samples=200,{key}=50] (--overwrite "
                     "computes them again)"]
    assert again == sampled


def test_a_default_result_written_before_the_request_was_recorded_is_still_reused(trained_run):
    params = {"total_correlation": {"num_samples": 200}}
    evaluate_run(trained_run, ["total_correlation"], device="cpu", params=params, log=quiet)
    path = metric_result_path(trained_run, "mean", "total_correlation", params["total_correlation"])
    old = json.loads(path.read_text())
    del old[metrics.REQUESTED]  # as results were written before
    path.write_text(json.dumps(old))
    lines = []
    assert evaluate_run(trained_run, ["total_correlation"], device="cpu", params=params,
                        log=lines.append)["total_correlation"] == old
    assert lines == [f"{trained_run}: kept the stored results of total_correlation[num_samples=200] (--overwrite "
                     "computes them again)"]
    assert metrics.protocol_tag("total_correlation", old) == "[num_samples=200]"
    asked = evaluate_run(trained_run, ["total_correlation"], device="cpu",
                         params={"total_correlation": {"num_samples": 200, "num_points": 384}}, log=quiet)
    assert asked["total_correlation"]["points"] == "sampled"  # 384 drawn points: not the grid's result


def test_a_batch_size_that_only_chunks_the_encoding_is_no_protocol(trained_run):
    # mig.batch_size=512 had been stored under mig[batch_size=512] and never reused by plain mig
    chunked = evaluate_run(trained_run, ["mig"], params={"mig": {"num_train": 200, "batch_size": 64}}, log=quiet)
    assert metric_result_path(trained_run, "mean", "mig", {"num_train": 200, "batch_size": 64}).parent.name == \
        "mig[num_train=200]"
    lines = []
    again = evaluate_run(trained_run, ["mig"], params={"mig": {"num_train": 200}}, log=lines.append)
    assert lines == [f"{trained_run}: kept the stored results of mig[num_train=200] (--overwrite computes them again)"]
    assert again == chunked
    for name in metrics.CHUNKING_BATCH_SIZE:
        assert metric_result_path(trained_run, "mean", name, {"batch_size": 8}).parent.name == name
    # in factor_vae batch_size is the number of points per vote: its own protocol
    assert metric_result_path(trained_run, "mean", "factor_vae", {"batch_size": 8}).parent.name == \
        "factor_vae[batch_size=8]"


@pytest.mark.parametrize("metric, binding, needle", [
    ("dci", "dci.classifier=foo", "dci.classifier must be one of 'gbt', 'logistic', got 'foo'"),
    ("aggregate_kl", "aggregate_kl.num_points=abc",
     "aggregate_kl.num_points must be an integer in [2, 1000000000], got 'abc'"),
    ("total_correlation", "total_correlation.num_points=0",
     "total_correlation.num_points must be an integer in [2, 1000000000]"),
    ("mig", "mig.num_train=1", "mig.num_train must be an integer in [2, 1000000000], got 1"),
    # one bin had given MIG 0 (every mutual information 0) and exit 0
    ("mig", "mig.num_bins=1", "mig.num_bins must be an integer in [2, 1000000000], got 1"),
    ("modularity_explicitness", "modularity_explicitness.num_bins=1", "num_bins must be an integer in [2,"),
    ("unsupervised", "unsupervised.num_bins=1", "unsupervised.num_bins must be an integer in [2,"),
])
def test_every_value_is_refused_before_anything_is_computed(trained_run, capsys, metric, binding, needle):
    # they had been refused by the metric itself, after postprocessing and the metrics before it
    before = tree(trained_run)
    result = evaluate(capsys, trained_run, "--metrics", f"active_units,{metric}", "--metric_param", binding)
    assert_one_line_error(result, needle)
    assert "computing" not in result.stdout and tree(trained_run) == before


@pytest.mark.parametrize("binding", [".num_train=3", "mig.=3", "mig. =3", "mig.num_train", "=3", " .num_train=3"])
def test_a_malformed_metric_param_is_said_to_be_malformed(trained_run, binding):
    # ".num_train=3" had been taken for parameters of a metric named ''
    before = tree(trained_run)
    result = run_in_process("dlb_evaluate", trained_run, "--metrics", "mig", "--metric_param", binding)
    assert_one_line_error(result, f"bad --metric_param '{binding}'; write METRIC.PARAM=VALUE")
    assert tree(trained_run) == before


def test_a_parameter_given_twice_with_two_values_is_refused(trained_run, capsys):
    # the last had won without a word; the same value twice is one value
    before = tree(trained_run)
    result = evaluate(capsys, trained_run, "--metrics", "mig", "--metric_param", "mig.num_train=200",
                      "--metric_param", "mig.num_train=300")
    assert_one_line_error(result, "--metric_param gives mig.num_train twice (200 and 300); give it once")
    assert tree(trained_run) == before
    from dlbench.evaluation import parse_metric_params

    assert parse_metric_params(["mig.num_train=200", "mig.num_train = 200"]) == {"mig": {"num_train": 200}}


def test_the_value_checks_name_parameters_that_exist():
    for binding in metrics._VALUE_CHECKS:
        name, key = binding.split(".")
        assert key in metrics.protocol_params(name), binding


@pytest.mark.parametrize("name, key", NONE_DEFAULTS)
def test_a_none_default_takes_its_declared_values(name, key):
    metrics.check_params(name, {key: None})  # the default, said out loud
    metrics.check_params(name, {key: 2})
    for bad in ("abc", 1, 2.5, True):
        with pytest.raises(UserError, match=f"^{name}.{key} must be"):
            metrics.check_params(name, {key: bad})


@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_a_seed_numpy_cannot_take_is_refused_up_front(trained_run, tiny_dsprites, tmp_path, capsys, seed):
    before = tree(trained_run)
    result = evaluate(capsys, trained_run, "--metrics", "mig", "--seed", seed)
    assert_one_line_error(result, f"--seed must be an integer in [0, 4294967295], got {seed}")
    assert "computing" not in result.stdout and tree(trained_run) == before
    script = save_script(PoolCodes(), tmp_path / "pool.pt")
    result = evaluate(capsys, "--representation", script, "--dataset", "dsprites", "--out", tmp_path / "out",
                      "--metrics", "mig", "--seed", seed)
    assert_one_line_error(result, "--seed must be an integer")
    assert not (tmp_path / "out").exists()


def test_a_seed_out_of_range_in_a_process_of_its_own(trained_run, tiny_dsprites):
    result = run_command("dlb_evaluate", trained_run, "--metrics", "mig", "--seed", "-1", data_root=tiny_dsprites)
    assert_one_line_error(result, "--seed")
    assert result.stdout == ""


def test_a_run_json_without_its_dataset(tiny_dsprites, tmp_path, capsys):
    run = tmp_path / "j"
    run.mkdir()
    (run / "run.json").write_text('{"status": "done"}')
    result = evaluate(capsys, run, "--metrics", "mig")
    assert_one_line_error(result, f"'{run / 'run.json'}' does not name the dataset", "dlb_train")
    assert tree(run) == ["run.json"]


def test_repeated_metrics_flags_are_all_computed(trained_run, capsys):
    # only the last had been taken
    result = evaluate(capsys, trained_run, "--metrics", "active_units", "--metrics", "mig",
                      "--metric_param", "mig.num_train=300", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert metric_result_path(trained_run, "mean", "mig", {"num_train": 300}).is_file()
    assert metric_result_path(trained_run, "mean", "active_units").is_file()
    assert result.stdout.count("computing") == 2


def test_an_out_that_is_a_file(tiny_dsprites, tmp_path, capsys):
    script = save_script(PoolCodes(), tmp_path / "pool.pt")
    (tmp_path / "afile").write_text("mine")
    result = evaluate(capsys, "--representation", script, "--dataset", "dsprites", "--out", tmp_path / "afile",
                      "--metrics", "mig")
    assert_one_line_error(result, "--out", "is a file, not a folder; choose another --out")
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_run_dir_that_is_a_file(tiny_dsprites, tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    assert_one_line_error(evaluate(capsys, tmp_path / "afile"), "is a file, not a run directory")


@pytest.mark.parametrize("binding", ["mig.num_train", "factor_vae.batch_size", "recon_ll.num_points"])
def test_a_count_no_metric_is_computed_on_is_refused_before_numpy_asks_for_petabytes(binding):
    # numpy had answered with a traceback: 'Maximum allowed dimension exceeded', or 7 TiB asked for
    name, key = binding.split(".")
    for huge in (10**12, 10**23):
        with pytest.raises(UserError, match=f"^{binding} must be an integer in"):
            metrics.check_params(name, {key: huge})
    metrics.check_params(name, {key: 10_000})


def test_a_folder_where_a_result_goes_is_found_before_anything_is_computed(trained_run, capsys):
    # it had been found once the metric was computed, its minutes lost
    from dlbench.evaluation import metric_result_path

    path = metric_result_path(trained_run, "mean", "mig", {"num_train": 200})
    path.mkdir(parents=True)
    before = tree(trained_run)
    result = evaluate(capsys, trained_run, "--metrics", "active_units,mig", "--metric_param", "mig.num_train=200")
    assert_one_line_error(result, f"'{path}' is not a file, where mig's result goes; move it away")
    assert "computing" not in result.stdout and tree(trained_run) == before


def test_a_file_where_the_folder_of_a_result_goes_is_found_before_anything_is_computed(trained_run, capsys):
    # `metrics` a file: it had been found once the data was encoded and the metric computed
    import shutil

    run_dir = trained_run  # a copy of its own
    shutil.rmtree(run_dir / "metrics", ignore_errors=True)
    (run_dir / "metrics").write_text("notes")
    before = tree(run_dir)
    result = evaluate(capsys, run_dir, "--metrics", "active_units,mig", "--metric_param", "mig.num_train=200")
    assert_one_line_error(result, f"'{run_dir / 'metrics'}' is a file, where the folder of active_units's result goes")
    assert "computing" not in result.stdout and tree(run_dir) == before


DAMAGES = {
    "headline not a number": lambda result: {**result, "discrete_mig": "abc"},
    "headline missing": lambda result: {key: value for key, value in result.items() if key != "discrete_mig"},
    "not an object": lambda result: [1, 2],
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_damaged_stored_result_is_computed_again_and_said(trained_run, capsys, damage):
    # a result whose discrete_mig was 'abc' had been reused without a word (dlb_aggregate then left it
    # out as damaged), and one that was not an object had stopped the command, to be given --overwrite
    args = [trained_run, "--metrics", "mig", "--metric_param", "mig.num_train=200", "--device", "cpu"]
    assert evaluate(capsys, *args).returncode == 0
    path = metric_result_path(trained_run, "mean", "mig", {"num_train": 200})
    computed = json.loads(path.read_text())
    path.write_text(json.dumps(DAMAGES[damage](computed)))
    result = evaluate(capsys, *args)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if str(path) in line]
    assert len(said) == 1 and "is damaged (" in said[0] and said[0].endswith("computing mig again"), result.stdout
    assert json.loads(path.read_text())["discrete_mig"] == computed["discrete_mig"]


# a protocol of factor_vae small enough for the tiny run; the metric's version changed (a single varying factor)
SMALL_FACTOR_VAE = ["--metrics", "factor_vae", "--device", "cpu"] + [
    f"--metric_param=factor_vae.{key}={value}" for key, value in
    {"num_train": 40, "num_eval": 40, "num_variance_estimate": 400, "batch_size": 8}.items()]
# not a multiple of 1/num_eval, so no version of the metric computes it on this protocol: a result holding
# it was not computed again (inside the score's range from 0 to 1, outside of which a result is unusable)
NOT_AN_ACCURACY = 0.123456789


def factor_vae_result(capsys, run_dir):
    """(path, result) of a small factor_vae protocol dlb_evaluate computed for run_dir."""
    assert evaluate(capsys, run_dir, *SMALL_FACTOR_VAE).returncode == 0
    [path] = (run_dir / "metrics" / "mean").glob("factor_vae*/results.json")
    return path, json.loads(path.read_text())


def test_a_result_of_an_earlier_version_of_its_metric_is_computed_again_and_said(trained_run, capsys):
    # factor_vae gave 1 where a single factor varies, now a missing reason: a result stored before
    # that (no metric_version) had been reused beside the new ones
    path, computed = factor_vae_result(capsys, trained_run)
    older = {key: value for key, value in computed.items() if key != "metric_version"}
    path.write_text(json.dumps({**older, "eval_accuracy": NOT_AN_ACCURACY}))
    result = evaluate(capsys, trained_run, *SMALL_FACTOR_VAE)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stdout.splitlines() if "version 1" in line]
    assert len(said) == 1 and "factor_vae[" in said[0] and said[0].endswith("computing it again"), result.stdout
    assert "kept the stored results" not in result.stdout
    again = json.loads(path.read_text())
    assert again["metric_version"] == 2 and 0 <= again["eval_accuracy"] <= 1


def test_a_result_of_the_current_version_of_its_metric_is_reused_untouched(trained_run, capsys):
    path, computed = factor_vae_result(capsys, trained_run)
    assert computed["metric_version"] == 2  # factor_vae's version since a single varying factor is no score
    path.write_text(json.dumps({**computed, "eval_accuracy": NOT_AN_ACCURACY}))
    written = path.read_bytes()
    result = evaluate(capsys, trained_run, *SMALL_FACTOR_VAE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{trained_run}: kept the stored results of factor_vae["), result.stdout
    assert path.read_bytes() == written


def test_a_run_evaluated_already_says_which_results_it_kept(trained_run, capsys):
    # it had printed nothing at all (a --representation said "kept ..."); a run half evaluated says
    # which it kept and which it computes
    args = [trained_run, "--metrics", "mig", "--metric_param", "mig.num_train=200", "--device", "cpu"]
    assert evaluate(capsys, *args).returncode == 0
    again = evaluate(capsys, *args, "--metrics", "active_units")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines[0] == f"{trained_run}: kept the stored results of mig[num_train=200] (--overwrite computes them " \
        "again)", lines
    assert any("computing active_units" in line for line in lines[1:]), lines


def test_the_results_kept_are_named_by_their_protocol(trained_run, capsys):
    # after --seed 1 the line said "kept the stored results of mig", which reads as the default protocol's
    args = [trained_run, "--metrics", "mig,active_units", "--metric_param", "mig.num_train=200", "--device", "cpu"]
    assert evaluate(capsys, *args, "--seed", "1").returncode == 0
    assert evaluate(capsys, *args).returncode == 0
    again = evaluate(capsys, *args, "--seed", "1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{trained_run}: kept the stored results of mig[num_train=200,seed=1], "
                                         "active_units[seed=1] (--overwrite computes them again)"]
    script = save_script(PoolCodes(), trained_run.parent / "codes.pt")
    out = trained_run.parent / "out"
    for _ in range(2):
        kept = evaluate(capsys, "--representation", script, "--dataset", "dsprites", "--out", out, *args[1:],
                        "--seed", "1")
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.splitlines() == [f"{script}: kept the results stored for it of mig[num_train=200,seed=1], "
                                        "active_units[seed=1] (--overwrite computes them again)"]


@pytest.fixture
def linear_gaussian_run(tmp_path):
    """A run on linear_gaussian (2 sources, no grid) with 3 latents."""
    from dlbench.cli import train as train_cli

    run_dir = tmp_path / "linear_gaussian"
    bindings = ["train.method = @beta_vae()", "dataset.name = 'linear_gaussian'", "model.architecture = 'mlp'",
                "model.likelihood = 'gaussian'", "model.latent_dim = 3", "train.steps = 2", "train.batch_size = 16"]
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    assert train_cli.main(args + [arg for binding in bindings for arg in ("--gin_param", binding)]) == 0
    return run_dir


@pytest.mark.parametrize("metrics, needle", [
    ("elbo,total_correlation", "no finite grid to average over; pass --metric_param total_correlation.num_points=N"),
    ("elbo,inference_error",
     "the model has 3 latent dimensions, the dataset 2 sources; train with model.latent_dim = 2"),
])
def test_a_metric_that_cannot_score_the_runs_data_is_refused_before_any_is_computed(linear_gaussian_run, capsys,
                                                                                     metrics, needle):
    # elbo had been computed first, and its minutes lost with the refusal that followed
    capsys.readouterr()
    before = tree(linear_gaussian_run)
    result = evaluate(capsys, linear_gaussian_run, "--metrics", metrics, "--metric_param", "elbo.num_points=200")
    assert_one_line_error(result, needle)
    assert "computing" not in result.stdout and tree(linear_gaussian_run) == before


def test_a_metric_that_cannot_score_the_data_of_a_representation_is_refused_before_it_loads(tmp_path, capsys):
    result = evaluate(capsys, "--representation", tmp_path / "missing.pt", "--encoder", tmp_path / "missing.pt",
                      "--dataset", "pinwheel", "--out", tmp_path / "out", "--metrics", "total_correlation")
    assert_one_line_error(result, "pass --metric_param total_correlation.num_points=N")
    assert not (tmp_path / "out").exists()


def test_a_value_left_out_is_said_with_its_reason_in_the_line_of_its_metric():
    # the line had shown the numbers alone: "hoyer_sparsity num_dims_used=1, num_points_used=0"
    from dlbench.evaluation import _values_said

    values = {"hoyer_sparsity_missing_reason": "fewer than two code dimensions vary over the data",
              "num_dims_used": 1, "num_points_used": 0, "num_points": 10}
    assert _values_said("hoyer_sparsity", values) == (
        "num_dims_used=1, num_points_used=0; hoyer_sparsity missing (fewer than two code dimensions vary over the data)")
    assert _values_said("dci", {"disentanglement_missing_reason": "one", "completeness_missing_reason": "two"}) == (
        "disentanglement missing (one); completeness missing (two)")
    # a count had been shown as a float, num_points_used=1e+04
    assert _values_said("hoyer_sparsity", {"hoyer_sparsity": 0.123456, "num_points_used": 10000}) == (
        "hoyer_sparsity=0.1235, num_points_used=10000")


@pytest.mark.parametrize("overwrite", [False, True])
def test_results_of_other_weights_are_computed_again_from_the_weights_the_run_holds(trained_run, tmp_path, capsys,
                                                                                   overwrite):
    # a checkpoint of another training (same model, another seed) copied over a run's had kept its
    # postprocessed representation, and with it every metric, --overwrite too, computed from the old weights
    import shutil

    from dlbench import rundir
    from dlbench.cli import train as train_cli
    from tests.conftest import TINY_PARAMS

    other = tmp_path / "other"
    assert train_cli.main(["--run_dir", str(other), "--device", "cpu", "--no_progress",
                           *(arg for p in [*TINY_PARAMS, "train.seed = 1"] for arg in ("--gin_param", p))]) == 0
    before = evaluate_run(trained_run, ["mig"], device="cpu", log=quiet)["mig"]
    of_other = evaluate_run(other, ["mig"], device="cpu", log=quiet)["mig"]
    assert of_other["discrete_mig"] != before["discrete_mig"]  # else the test could not tell them apart

    shutil.copyfile(rundir.weights_path(other), rundir.weights_path(trained_run))
    capsys.readouterr()
    lines = []
    again = evaluate_run(trained_run, ["mig"], device="cpu", log=lines.append, overwrite=overwrite)["mig"]
    assert again["discrete_mig"] == of_other["discrete_mig"]
    assert again[metrics.WEIGHTS_DIGEST] == of_other[metrics.WEIGHTS_DIGEST] != before[metrics.WEIGHTS_DIGEST]
    said = f"{trained_run}: the stored result of mig was computed from other weights than "
    assert (said in lines[0]) is not overwrite, lines
    # and the representation was made again, and said so
    assert capsys.readouterr().out == (f"{trained_run}: {rundir.representation_path(trained_run, 'mean')} was made "
                                       f"from other weights than {rundir.weights_path(trained_run)} holds now; "
                                       f"writing it again\n")
    record = json.loads(rundir.postprocess_results_path(trained_run, "mean").read_text())
    assert record[metrics.WEIGHTS_DIGEST] == again[metrics.WEIGHTS_DIGEST]
