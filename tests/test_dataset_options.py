"""dataset.options: constructor options of a dataset set from gin, part of the run's identity,
recorded in run.json with what the dataset resolved to, and used by every later stage."""

import json
import math
import shutil

import numpy as np
import pytest

import dlbench.evaluation
import dlbench.train.loop as loop
from dlbench import rundir
from dlbench.aggregate import aggregate, dataset_label
from dlbench.cli import evaluate as evaluate_cli
from dlbench.cli import train as train_cli
from dlbench.config import parse_gin, resolve_run_spec
from dlbench.data import dataset_from_record
from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.data.pinwheel import Pinwheel
from dlbench.errors import UserError
from dlbench.train.run import train_from_gin

from tests.test_cli_errors import assert_user_error

TINY = ["train.method = @beta_vae()", "model.architecture = 'mlp'", "model.likelihood = 'gaussian'",
        "model.latent_dim = 2", "train.steps = 6", "train.batch_size = 16", "train.log_every = 3",
        "train.checkpoint_every = 3"]
LINEAR_GAUSSIAN = TINY + ["dataset.name = 'linear_gaussian'"]
OPTIONS = "dataset.options = {'seed': 3, 'observed_dim': 4}"
INFERENCE_ERROR = ["--metrics", "inference_error", "--metric_param", "inference_error.num_points=40",
                   "--metric_param", "inference_error.num_samples=8"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gaussian_mixing_matrix(seed, observed_dim, num_sources):
    """A as linear_gaussian's docstring defines it, computed here from that text: the first of the
    two streams SeedSequence(seed) spawns draws entries N(0, 1/k)."""
    stream = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
    return stream.standard_normal((observed_dim, num_sources)) / math.sqrt(num_sources)


def train(run_dir, *params):
    run_dir, status = train_from_gin([], [*LINEAR_GAUSSIAN, *params], run_dir, "cpu", progress=False)
    assert status == "done"
    return run_dir


@pytest.fixture(scope="module")
def trained_with_options(tmp_path_factory):
    """A finished linear_gaussian run with A drawn from seed 3 in 4 observed dimensions."""
    return train(tmp_path_factory.mktemp("options") / "run", OPTIONS)


def copy_run(run_dir, to):
    return shutil.copytree(run_dir, to)


def spy_on_evaluated_data(monkeypatch):
    """The datasets the evaluation stage hands to the metrics, in a list filled as it runs."""
    seen = []
    evaluate = dlbench.evaluation.metrics.evaluate

    def spy(name, data, *args, **kwargs):
        seen.append(data)
        return evaluate(name, data, *args, **kwargs)

    monkeypatch.setattr(dlbench.evaluation.metrics, "evaluate", spy)
    return seen


def test_gin_options_reach_the_linear_gaussian_mixing_matrix():
    parse_gin([], LINEAR_GAUSSIAN + [OPTIONS])
    data = dataset_from_record(resolve_run_spec().identity())
    expected = gaussian_mixing_matrix(seed=3, observed_dim=4, num_sources=2)
    np.testing.assert_allclose(data.mixing_matrix, expected, rtol=1e-15)
    assert np.array_equal(data.mixing_matrix, LinearGaussian(seed=3, observed_dim=4).mixing_matrix)
    assert not np.allclose(data.mixing_matrix, gaussian_mixing_matrix(seed=0, observed_dim=4, num_sources=2))


def test_gin_options_reach_the_pinwheel_sample():
    parse_gin([], TINY + ["dataset.name = 'pinwheel'", "dataset.options = {'seed': 5, 'num_clusters': 3}"])
    data = dataset_from_record(resolve_run_spec().identity())
    assert len(data) == 3 * 100 and data.factors_num_values == [3]
    assert np.array_equal(data.images, Pinwheel(seed=5, num_clusters=3).images)
    assert not np.array_equal(data.images[:300], Pinwheel(seed=0, num_clusters=3).images)


def test_options_enter_the_identity_only_when_set():
    parse_gin([], LINEAR_GAUSSIAN)
    plain = resolve_run_spec().identity()
    assert "dataset_options" not in plain  # so runs recorded before options existed keep comparing equal
    parse_gin([], LINEAR_GAUSSIAN + ["dataset.options = {'observed_dim': 4, 'seed': 3, 'mixing': 'gaussian'}"])
    identity = resolve_run_spec().identity()
    assert identity["dataset_options"] == {"mixing": "gaussian", "observed_dim": 4, "seed": 3}
    assert {k: v for k, v in identity.items() if k != "dataset_options"} == plain
    assert rundir.default_run_dir(identity) != rundir.default_run_dir(plain)


def test_a_given_mixing_matrix_is_taken_as_given():
    parse_gin([], LINEAR_GAUSSIAN + ["dataset.options = {'mixing_matrix': ((1, 0), (0, 2), (1, 1))}"])
    identity = resolve_run_spec().identity()
    assert identity["dataset_options"] == {"mixing_matrix": [[1, 0], [0, 2], [1, 1]]}  # JSON lists, as run.json reads back
    assert np.array_equal(dataset_from_record(identity).mixing_matrix, [[1, 0], [0, 2], [1, 1]])


def test_run_json_records_the_options_and_what_the_dataset_resolved_to(trained_with_options):
    record = rundir.read_run(trained_with_options)
    assert record["dataset"] == "linear_gaussian"
    assert record["dataset_options"] == {"observed_dim": 4, "seed": 3}
    settings = record["dataset_settings"]
    assert settings["seed"] == 3 and settings["mixing"] == "gaussian" and settings["num_train"] == 10_000
    np.testing.assert_allclose(settings["mixing_matrix"], gaussian_mixing_matrix(3, 4, 2), rtol=1e-15)


def test_evaluation_rebuilds_the_mixing_matrix_the_run_trained_on(trained_with_options, tmp_path, monkeypatch):
    run_dir = copy_run(trained_with_options, tmp_path / "run")
    seen = spy_on_evaluated_data(monkeypatch)
    assert evaluate_cli.main([str(run_dir), "--device", "cpu", *INFERENCE_ERROR]) == 0
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0].mixing_matrix, gaussian_mixing_matrix(3, 4, 2), rtol=1e-15)
    path = dlbench.evaluation.metric_result_path(run_dir, "mean", "inference_error", {"num_points": 40, "num_samples": 8})
    result = rundir.read_json(path)
    assert result["num_points"] == 40 and result["true_inference_error"] >= 0  # a KL divergence


def test_a_run_recorded_before_options_existed_still_evaluates(tmp_path, monkeypatch):
    run_dir = train(tmp_path / "run")
    record = rundir.read_run(run_dir)
    assert "dataset_options" not in record
    del record["dataset_settings"]  # written since options exist; older run.json files lack it
    rundir.write_json(run_dir / "run.json", record)
    seen = spy_on_evaluated_data(monkeypatch)
    assert evaluate_cli.main([str(run_dir), "--device", "cpu", *INFERENCE_ERROR]) == 0
    np.testing.assert_allclose(seen[0].mixing_matrix, gaussian_mixing_matrix(0, 10, 2), rtol=1e-15)


def test_evaluation_refuses_data_that_differs_from_the_recorded_settings(trained_with_options, tmp_path, capsys):
    run_dir = copy_run(trained_with_options, tmp_path / "run")
    record = rundir.read_run(run_dir)
    record["dataset_settings"]["mixing_matrix"][0][0] += 1.0  # as if the generator had changed since training
    rundir.write_json(run_dir / "run.json", record)
    code = evaluate_cli.main([str(run_dir), "--device", "cpu", *INFERENCE_ERROR])
    assert_user_error(capsys, code, "'linear_gaussian'", "differs from the one the run trained on", "mixing_matrix")
    assert not (run_dir / "metrics").exists() and not (run_dir / "representation").exists()


def interrupt_after_first_checkpoint(run_dir, monkeypatch, *params):
    original = loop.Trainer.run

    def crash(self, until, *args, **kwargs):
        original(self, 3, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop.Trainer, "run", crash)
    with pytest.raises(KeyboardInterrupt):
        train_from_gin([], [*LINEAR_GAUSSIAN, *params], run_dir, "cpu", progress=False)
    monkeypatch.setattr(loop.Trainer, "run", original)


@pytest.mark.parametrize("other", ["dataset.options = {'seed': 4, 'observed_dim': 4}", None])
def test_resume_accepts_the_same_options_and_refuses_others(tmp_path, monkeypatch, other):
    run_dir = tmp_path / "run"
    interrupt_after_first_checkpoint(run_dir, monkeypatch, OPTIONS)
    before = (run_dir / "run.json").read_text()
    assert json.loads(before)["status"] == "interrupted"
    with pytest.raises(UserError, match="different config"):
        train_from_gin([], LINEAR_GAUSSIAN + ([other] if other else []), run_dir, "cpu", progress=False)
    assert (run_dir / "run.json").read_text() == before
    _, status = train_from_gin([], LINEAR_GAUSSIAN + [OPTIONS], run_dir, "cpu", progress=False)
    record = rundir.read_run(run_dir)
    assert status == "done" and record["step"] == 6 and record["dataset_options"] == {"observed_dim": 4, "seed": 3}


@pytest.mark.parametrize("dataset, options, needles", [
    ("linear_gaussian", "{'sed': 3}", ["'linear_gaussian'", "no option 'sed'", "seed, observed_dim, num_sources"]),
    ("pinwheel", "{'observed_dim': 3}", ["'pinwheel'", "no option 'observed_dim'", "num_clusters"]),
    ("dsprites", "{'path': '/tmp/x.npz'}", ["'dsprites'", "no option 'path'", "takes no options"]),
    ("linear_gaussian", "3", ["dataset.options must be a dict"]),
    ("linear_gaussian", "{'seed': @beta_vae()}", ["option 'seed' must be a number, string or list"]),
    ("linear_gaussian", "{'seed': {'a': 1}}", ["option 'seed' must be a number, string or list"]),
    ("linear_gaussian", "{'mixing': 'spiral'}", ["unknown linear_gaussian mixing 'spiral'"]),
])
def test_bad_options_are_one_line_and_write_nothing(tmp_path, capsys, dataset, options, needles):
    args = ["--run_dir", str(tmp_path / "run"), "--device", "cpu", "--no_progress"]
    for binding in TINY + [f"dataset.name = '{dataset}'", f"dataset.options = {options}"]:
        args += ["--gin_param", binding]
    assert_user_error(capsys, train_cli.main(args), *needles)
    assert not (tmp_path / "run").exists()


def test_the_aggregate_label_shows_the_options():
    assert dataset_label("linear_gaussian", None) == dataset_label("linear_gaussian", {}) == "linear_gaussian"
    assert dataset_label("linear_gaussian", {"seed": 3, "observed_dim": 20}) == "linear_gaussian[observed_dim=20,seed=3]"
    matrix = dataset_label("linear_gaussian", {"mixing_matrix": [[1, 0], [0, 1]]})
    assert matrix.startswith("linear_gaussian[mixing_matrix=#") and len(matrix) == len("linear_gaussian[mixing_matrix=#]") + 8
    assert matrix == dataset_label("linear_gaussian", {"mixing_matrix": [[1, 0], [0, 1]]})
    assert matrix != dataset_label("linear_gaussian", {"mixing_matrix": [[1, 0], [0, 2]]})


def test_aggregate_does_not_pool_runs_of_other_options(trained_with_options, tmp_path):
    root = tmp_path / "runs"
    runs = {name: copy_run(trained_with_options, root / name) for name in ("a", "b", "c")}
    record = rundir.read_run(runs["b"])
    record["seed"] = record["train"]["seed"] = record["seed"] + 1  # a second seed, not a copy of a
    rundir.write_json(runs["b"] / "run.json", record)
    record = rundir.read_run(runs["c"])
    record["dataset_options"] = {"observed_dim": 4, "seed": 4}
    rundir.write_json(runs["c"] / "run.json", record)
    for name, value in (("a", 0.2), ("b", 0.4), ("c", 0.9)):
        rundir.write_json(runs[name] / "metrics" / "mean" / "recon_ll" / "results.json",
                          {"metric": "recon_ll", "mode": "mean", "recon_ll": value})
    results, board = aggregate(root, tmp_path / "report")
    assert results.set_index("run_dir")["dataset"].to_dict() == {
        "a": "linear_gaussian[observed_dim=4,seed=3]", "b": "linear_gaussian[observed_dim=4,seed=3]",
        "c": "linear_gaussian[observed_dim=4,seed=4]"}
    by_dataset = board.set_index("dataset")
    assert by_dataset["num_runs"].to_dict() == {"linear_gaussian[observed_dim=4,seed=3]": 2,
                                                "linear_gaussian[observed_dim=4,seed=4]": 1}
    assert by_dataset.loc["linear_gaussian[observed_dim=4,seed=3]", "recon_ll.recon_ll.mean"] == pytest.approx(0.3)
    assert by_dataset.loc["linear_gaussian[observed_dim=4,seed=4]", "recon_ll.recon_ll.mean"] == pytest.approx(0.9)
