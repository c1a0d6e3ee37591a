"""Annealed VAE: the capacity schedule, the loss at and around KL = C against closed forms, the
step reaching the objective through loss(), the method class and a short training run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbench.config import parse_gin, resolve_run_spec
from dlbench.errors import UserError
from dlbench.methods.annealed_vae import AnnealedVAE, annealed_capacity, annealed_vae_objective
from dlbench.nn import VAE
from dlbench.train.run import train_from_gin

from tests.conftest import TINY_PARAMS
from tests.training import assert_loss_fell
from tests.fake_outputs import fake_outputs

GIN_FILE = str(Path(__file__).resolve().parent.parent / "gin" / "annealed_vae.gin")


def test_capacity_schedule_rises_linearly_then_holds():
    assert annealed_capacity(0, 25.0, 100000) == 0.0
    assert annealed_capacity(50000, 25.0, 100000) == 12.5
    assert annealed_capacity(1, 25.0, 100000) == pytest.approx(25.0 / 100000, rel=1e-15)
    assert annealed_capacity(100000, 25.0, 100000) == 25.0
    assert annealed_capacity(300000, 25.0, 100000) == 25.0
    torch.testing.assert_close(annealed_capacity(25, torch.tensor([5.0, 100.0]), 100), torch.tensor([1.25, 25.0]))
    method = AnnealedVAE(c_max=10.0, iteration_threshold=40)
    assert [method.capacity(s) for s in (0, 10, 40, 41, 1000)] == [0.0, 2.5, 10.0, 10.0, 10.0]


def exact_kl_outputs(log_px):
    """Posteriors N(+-1 or +-2, 1): per-dimension KLs m^2 / 2, so the batch-mean KL is exact
    in floating point: rows sum to 0.5 + 2 + 0.5 = 3 and 2 + 2 + 0.5 = 4.5, mean 3.75."""
    mean = torch.tensor([[1.0, -2.0, 1.0], [2.0, 2.0, -1.0]], dtype=torch.float64)
    return fake_outputs(mean, torch.zeros_like(mean), log_px=log_px), 3.75


def test_loss_at_kl_equal_to_capacity_is_exactly_the_reconstruction():
    out, kl = exact_kl_outputs(torch.tensor([-10.25, -3.5], dtype=torch.float64))
    loss, s = annealed_vae_objective(out, 1000.0, kl)
    assert s["kl"].item() == kl
    assert loss.item() == s["reconstruction"].item() == 6.875
    # Away from C the penalty is gamma * |KL - C| on either side.
    assert annealed_vae_objective(out, 1000.0, 1.75)[0].item() == 6.875 + 2000.0
    assert annealed_vae_objective(out, 1000.0, 5.25)[0].item() == 6.875 + 1500.0
    assert s["capacity"].item() == kl and s["capacity"].dim() == 0
    assert s["elbo"].item() == -(6.875 + kl)
    assert {"loss", "reconstruction", "kl", "elbo", "capacity", "kl_0", "kl_2"} <= set(s)


@pytest.mark.parametrize("capacity, sign", [(1.0, 1.0), (10.0, -1.0)])
def test_the_kl_gradient_changes_sign_at_the_capacity(capacity, sign):
    """dKL/dmean = mean / B for N(mean, 1) posteriors, so d loss / d mean is
    gamma * sign(KL - C) * mean / B: pushing the KL down above C and up below it."""
    out, kl = exact_kl_outputs(torch.tensor([-1.0, -2.0], dtype=torch.float64))
    out.mean.requires_grad_(True)
    loss, _ = annealed_vae_objective(out, 1000.0, capacity)
    loss.backward()
    assert np.sign(kl - capacity) == sign
    torch.testing.assert_close(out.mean.grad, sign * 1000.0 * out.mean.detach() / 2)


def test_tensor_hyperparameters():
    torch.manual_seed(0)
    out = fake_outputs(torch.randn(8, 3), torch.randn(8, 3), torch.randn(8, 3), -torch.rand(8))
    gammas, c_max = torch.tensor([1000.0, 10.0, 1.0]), torch.tensor([5.0, 25.0, 100.0])
    capacity = annealed_capacity(30, c_max, 100)
    losses, s = annealed_vae_objective(out, gammas, capacity)
    singles = torch.stack([annealed_vae_objective(out, float(g), float(c))[0] for g, c in zip(gammas, capacity)])
    torch.testing.assert_close(losses, singles)
    torch.testing.assert_close(s["loss"], s["reconstruction"] + gammas * (s["kl"] - c_max * 0.3).abs())


def test_loss_passes_the_trainers_step_to_the_capacity():
    torch.manual_seed(1)
    model = VAE("mlp", (1, 4, 4), 3, "bernoulli")
    x = torch.rand(8, 1, 4, 4).round()
    method = AnnealedVAE(gamma=1000.0, c_max=20.0, iteration_threshold=100)
    for step, capacity in ((0, 0.0), (50, 10.0), (100, 20.0), (250, 20.0)):
        loss, s = method.loss(model, x, torch.Generator().manual_seed(2), step)
        expected, _ = annealed_vae_objective(model(x, torch.Generator().manual_seed(2)), 1000.0, capacity)
        assert s["capacity"].item() == capacity
        torch.testing.assert_close(loss, expected)
        torch.testing.assert_close(loss, s["reconstruction"] + 1000.0 * (s["kl"] - capacity).abs())


def test_method_records_its_settings_and_rejects_bad_ones():
    assert AnnealedVAE().hyperparameters() == {"gamma": 1000.0, "c_max": 25.0, "iteration_threshold": 100000}
    with pytest.raises(UserError, match="iteration_threshold"):
        AnnealedVAE(iteration_threshold=0)
    with pytest.raises(UserError, match="c_max"):
        AnnealedVAE(c_max=-5.0)


def test_gin_file_parses_with_the_study_protocol():
    parse_gin([GIN_FILE])
    spec = resolve_run_spec()
    assert spec.method.hyperparameters() == {"gamma": 1000.0, "c_max": 25.0, "iteration_threshold": 100000}
    assert (spec.train["steps"], spec.train["batch_size"], spec.train["lr"]) == (300000, 64, 1e-4)
    assert spec.train["adam_betas"] == [0.9, 0.999] and spec.model["likelihood"] == "bernoulli"
    assert spec.model["latent_dim"] == 10 and spec.dataset["name"] == "dsprites"


def test_training_follows_the_schedule_and_lowers_the_loss(tiny_dsprites, tmp_path):
    # gamma = 100, not the study's 1000: at lr 1e-3 over 60 steps gamma * |KL - C| makes the
    # logged loss too noisy for a first-to-last comparison; the objective is the same.
    params = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae."))] + [
        "train.method = @annealed_vae()", "annealed_vae.gamma = 100.0", "annealed_vae.c_max = 5.0",
        "annealed_vae.iteration_threshold = 40", "train.steps = 60", "train.log_every = 10"]
    run_dir, status = train_from_gin(gin_params=params, run_dir=tmp_path / "run", device="cpu", progress=False)
    assert status == "done"
    rows = assert_loss_fell(run_dir)
    # Each row averages C over its 10 updates, steps s = 10 r, ..., 10 r + 9 before the update.
    expected = [np.mean([min(5.0, 5.0 * s / 40) for s in range(10 * r, 10 * r + 10)]) for r in range(6)]
    np.testing.assert_allclose([float(r["capacity"]) for r in rows], expected, rtol=1e-6)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == "annealed_vae"
    assert record["hyperparameters"] == {"gamma": 100.0, "c_max": 5.0, "iteration_threshold": 40}
