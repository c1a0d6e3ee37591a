"""The vector datasets (pinwheel, linear_gaussian) train through dlb_train with the mlp
architecture and a Gaussian or Laplace likelihood, nothing else changed, into a finished run
directory that dlb_evaluate evaluates."""

import json

import pytest
import torch

from dlbench.cli import evaluate as evaluate_cli
from dlbench.cli import train as train_cli
from dlbench.evaluation import metric_result_path
from tests.training import read_log

SHRINK = ["train.steps = 6", "train.batch_size = 16", "train.log_every = 3", "train.checkpoint_every = 3",
          "model.latent_dim = 2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
@pytest.mark.parametrize("dataset", ["pinwheel", "linear_gaussian"])
def test_vector_dataset_trains_with_mlp_and_evaluates(tmp_path, dataset, likelihood):
    run_dir = tmp_path / "run"
    bindings = ["train.method = @beta_vae()", f"dataset.name = '{dataset}'", "model.architecture = 'mlp'",
                f"model.likelihood = '{likelihood}'"] + SHRINK
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in bindings:
        args += ["--gin_param", binding]
    assert train_cli.main(args) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and record["dataset"] == dataset and record["step"] == 6
    assert (run_dir / "model" / "checkpoint.pt").is_file()
    for figure in ("reconstructions", "traversals", "prior_samples"):
        assert (run_dir / "model" / "samples" / f"{figure}.png").stat().st_size > 0
    # metrics on vector observations: reconstruction for both, MIG where the factors are discrete
    params = {"mig": {"num_train": 200}, "recon_ll": {"num_points": 100}}
    metrics = ["mig", "recon_ll"] if dataset == "pinwheel" else ["recon_ll"]
    argv = [str(run_dir), "--device", "cpu", "--metrics", ",".join(metrics)]
    for metric in metrics:
        argv += ["--metric_param", f"{metric}.{next(iter(params[metric]))}={next(iter(params[metric].values()))}"]
    assert evaluate_cli.main(argv) == 0
    for metric in metrics:
        result = json.loads(metric_result_path(run_dir, "mean", metric, params[metric]).read_text())
        assert result["metric"] == metric
    recon = json.loads(metric_result_path(run_dir, "mean", "recon_ll", params["recon_ll"]).read_text())
    assert recon["likelihood"] == likelihood


def test_the_vector_datasets_train_on_their_own_values(tmp_path):
    """The trainer's batches are rows of the dataset's float32 sample, unscaled."""
    from dlbench.config import parse_gin, resolve_run_spec
    from dlbench.data import get_dataset
    from dlbench.train.loop import Trainer

    parse_gin([], ["train.method = @beta_vae()", "dataset.name = 'pinwheel'", "model.architecture = 'mlp'",
                   "model.likelihood = 'gaussian'"] + SHRINK)
    data = get_dataset("pinwheel")
    trainer = Trainer(resolve_run_spec(), data, torch.device("cpu"))
    batch = trainer.sample_batch(32).numpy()
    assert batch.shape == (32, 2)
    rows = torch.as_tensor(data.images)
    assert all(bool((rows == torch.as_tensor(b)).all(dim=1).any()) for b in batch)


def test_the_linear_gaussian_gin_file_trains(tmp_path):
    from pathlib import Path

    gin_file = Path(__file__).resolve().parent.parent / "gin" / "linear_gaussian_beta_vae.gin"
    run_dir = tmp_path / "run"
    args = ["--gin", str(gin_file), "--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in SHRINK:
        args += ["--gin_param", binding]
    assert train_cli.main(args) == 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "done" and record["dataset"] == "linear_gaussian"
    assert record["model"]["architecture"] == "mlp" and record["model"]["likelihood"] == "gaussian"


HUGE_BETA = ["train.method = @beta_vae()", "dataset.name = 'linear_gaussian'", "model.architecture = 'mlp'",
             "model.likelihood = 'gaussian'", "beta_vae.beta = 1e38", "train.steps = 100", "train.log_every = 100",
             "train.batch_size = 16"]


def assert_finite_near_float32_max(run_dir):
    """Every step's loss is 1e38 times a KL of order 0.01 to 1: finite in float32, but the 100 of the
    window sum past its largest number (3.4e38)."""
    rows = read_log(run_dir)
    assert len(rows) == 1 and 1e36 < float(rows[0]["loss"]) < 3.4e38, rows
    loss = json.loads((run_dir / "model" / "results.json").read_text())["loss"]
    assert loss == float(rows[0]["loss"])


def test_a_window_of_finite_losses_near_float32s_largest_logs_a_finite_mean(tmp_path):
    # the log window's float32 sum had overflowed: a run whose every step was finite logged loss inf,
    # which reached the leaderboard as its training loss
    run_dir = tmp_path / "run"
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in HUGE_BETA:
        args += ["--gin_param", binding]
    assert train_cli.main(args) == 0
    assert_finite_near_float32_max(run_dir)


def test_a_stacks_window_of_finite_losses_near_float32s_largest_logs_a_finite_mean(tmp_path):
    import gin

    from dlbench.config import operative_config, parse_gin, resolve_run_spec
    from dlbench.train.stacked_run import train_stack

    specs, configs = [], []
    for seed in (0, 1):
        try:
            parse_gin([], [*HUGE_BETA, f"train.seed = {seed}"])
            specs.append(resolve_run_spec())
            configs.append(operative_config())
        finally:
            gin.clear_config()
    run_dirs = [tmp_path / f"run{seed}" for seed in (0, 1)]
    statuses = train_stack(run_dirs, specs, torch.device("cpu"), configs, progress=False, log=lambda *_: None)
    assert set(statuses.values()) == {"done"}
    for run_dir in run_dirs:
        assert_finite_near_float32_max(run_dir)
