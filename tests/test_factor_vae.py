"""FactorVAE: the discriminator's TC estimate against the closed-form total correlation of a
correlated Gaussian, the permutation, gradient isolation between the VAE and the discriminator
through real backward passes, the gamma = 0 limit, and training with bit-exact resume."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dlbench.config import parse_gin, resolve_run_spec
from dlbench.errors import UserError
from dlbench.methods import METHODS, BetaVAE
from dlbench.methods.factor_vae import (FactorVAE, discriminator_loss_and_accuracy, make_discriminator,
                                        permute_dims, tc_from_logits)
from dlbench.nn import VAE
from dlbench.train.run import train_from_gin

from tests.conftest import TINY_PARAMS
from tests.test_train import interrupt_at, weights
from tests.training import read_log


def small_vae_and_method(gamma=40.0, seed=0):
    torch.manual_seed(seed)  # as the trainer does: model, then discriminator, from one seed
    model = VAE("conv", (1, 64, 64), 4, "bernoulli")
    method = FactorVAE(gamma=gamma)
    method.prepare(model, 100)
    return model, method


def batch_of_images(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 64, 64, generator=g) > 0.7).float()


def snapshot(tensors):
    return [None if t is None else t.detach().clone() for t in tensors]


def same(a, b):
    return all((x is None and y is None) or (x is not None and y is not None and torch.equal(x, y))
               for x, y in zip(a, b))


# --- The discriminator and the density-ratio estimate -------------------------------------------

def test_discriminator_is_the_fc_discriminator_of_disentanglement_lib():
    net = make_discriminator(10)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 1000)] + [(1000, 1000)] * 5 + [(1000, 2)]
    slopes = [m.negative_slope for m in net if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.2] * 6 and isinstance(net[-1], nn.Linear)  # 6 hidden layers, linear logits


def test_prepare_builds_a_seeded_discriminator_with_its_own_adam():
    _, a = small_vae_and_method(seed=0)
    _, b = small_vae_and_method(seed=0)
    _, c = small_vae_and_method(seed=1)
    wa, wb, wc = a.discriminator.state_dict(), b.discriminator.state_dict(), c.discriminator.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not any(torch.equal(wa[k], wc[k]) for k in wa if k.endswith("weight"))
    assert a.discriminator[0].in_features == 4
    group = a.discriminator_optimizer.param_groups[0]
    assert group["lr"] == 1e-4 and group["betas"] == (0.5, 0.9)
    assert {id(p) for p in group["params"]} == {id(p) for p in a.discriminator.parameters()}


def test_permutation_shuffles_each_column_independently():
    n = 4000
    base = torch.randn(n, generator=torch.Generator().manual_seed(0))
    z = torch.stack([base, 2 * base, -base], 1)  # perfectly correlated columns
    permuted = permute_dims(z, torch.Generator().manual_seed(1))
    for j in range(3):  # each column holds exactly the original column's values
        torch.testing.assert_close(permuted[:, j].sort().values, z[:, j].sort().values, rtol=0, atol=0)
    correlation = np.corrcoef(permuted.T.numpy())
    off_diagonal = correlation[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off_diagonal) < 4 / math.sqrt(n))  # the joint is broken
    # Different columns get different permutations (a shared one would keep the correlation 1).
    assert not torch.equal(permuted[:, 0] * 2, permuted[:, 1])


def test_discriminator_loss_is_the_balanced_cross_entropy_and_accuracy_counts_both_halves():
    joint = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5]])
    permuted = torch.tensor([[0.0, 3.0], [1.0, 0.0]])
    loss, accuracy = discriminator_loss_and_accuracy(joint, permuted)
    p_joint = np.exp(joint.numpy()) / np.exp(joint.numpy()).sum(1, keepdims=True)
    p_perm = np.exp(permuted.numpy()) / np.exp(permuted.numpy()).sum(1, keepdims=True)
    expected = -0.5 * np.log(p_joint[:, 0]).mean() - 0.5 * np.log(p_perm[:, 1]).mean()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert accuracy.item() == pytest.approx(0.5 * (2 / 3) + 0.5 * (1 / 2))
    # log D/(1-D) with D the softmax probability of "joint": the TC estimate
    assert tc_from_logits(joint).item() == pytest.approx(np.log(p_joint[:, 0] / p_joint[:, 1]).mean(), rel=1e-6)


R_CORRELATED = np.array([[1.0, 0.8, 0.5], [0.8, 1.0, 0.4], [0.5, 0.4, 1.0]])


@pytest.mark.parametrize("correlation", [R_CORRELATED, np.eye(3)], ids=["correlated", "independent"])
def test_discriminator_estimates_the_total_correlation_of_a_gaussian(correlation, one_torch_thread):
    """Trained on samples of N(0, R) against permuted samples, the estimate approaches
    TC = -0.5 log det R (0.655 nats here; 0 for independent dimensions). A narrower, faster
    discriminator (2 x 64 units, lr 3e-4) than the default keeps this under a few seconds."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    cholesky = torch.linalg.cholesky(torch.as_tensor(correlation, dtype=torch.float32))
    method = FactorVAE(discriminator_lr=3e-4, discriminator_width=64, discriminator_layers=2)
    method.build(3)

    def draw(n):
        return torch.randn(n, 3, generator=g) @ cholesky.T

    for _ in range(1000):
        method.discriminator_step(draw(1024), permute_dims(draw(1024), g))
    with torch.no_grad():
        estimate = tc_from_logits(method.frozen_logits(draw(50000))).item()
    exact = -0.5 * np.linalg.slogdet(correlation)[1]
    assert estimate == pytest.approx(exact, abs=0.12)
    if exact == 0:
        assert abs(estimate) < 0.02


# --- Gradient isolation, through the trainer's sequence of calls --------------------------------

def test_the_vae_update_never_moves_the_discriminator_and_its_update_never_moves_the_vae():
    model, method = small_vae_and_method(gamma=40.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    batches = iter([batch_of_images(seed=s) for s in range(4)])
    disc_params = list(method.discriminator.parameters())

    for _ in range(2):
        disc_before, disc_grads_before = snapshot(disc_params), snapshot(p.grad for p in disc_params)
        outputs = model(next(batches), g)
        loss, scalars = method.objective(outputs, 0, method.draw(model, len(outputs.x), g))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        # The VAE's backward and step leave the discriminator's grads and weights as they were
        # (None on the first step, the discriminator's own grads on the second).
        assert same(disc_grads_before, (p.grad for p in disc_params))
        assert same(disc_before, disc_params)
        assert scalars["tc"].requires_grad  # ... while the TC term does reach the encoder

        model_before = snapshot(model.parameters())
        model_grads_before = snapshot(p.grad for p in model.parameters())
        extra = method.after_step(model, outputs, lambda: next(batches), g)
        assert set(extra) == {"discriminator_loss", "discriminator_accuracy"}
        # The discriminator's step leaves the VAE's weights and grads untouched ...
        assert same(model_before, model.parameters())
        assert same(model_grads_before, (p.grad for p in model.parameters()))
        # ... and does move the discriminator.
        assert all(p.grad is not None for p in disc_params)
        assert not same(disc_before, disc_params)


def test_the_tc_term_puts_gradient_into_the_encoder_only_through_z():
    """The encoder's gradient differs between gamma = 0 and gamma > 0 by exactly gamma times
    the gradient of the TC estimate, computed here with an independent frozen copy of D."""
    x = batch_of_images()
    grads = {}
    for gamma in (0.0, 10.0):
        model, method = small_vae_and_method(gamma=gamma)
        loss, _ = method.loss(model, x, torch.Generator().manual_seed(3))
        model.zero_grad()
        loss.backward()
        grads[gamma] = model.encoder.mean.weight.grad.clone()
    model, method = small_vae_and_method()
    frozen = make_discriminator(4).requires_grad_(False)
    frozen.load_state_dict(method.discriminator.state_dict())
    outputs = model(x, torch.Generator().manual_seed(3))
    tc = tc_from_logits(frozen(outputs.z))
    tc_grad, = torch.autograd.grad(tc, model.encoder.mean.weight)
    torch.testing.assert_close(grads[10.0] - grads[0.0], 10.0 * tc_grad, rtol=1e-3, atol=1e-5)
    assert tc_grad.abs().sum() > 0


def test_with_gamma_zero_the_loss_is_the_beta_vae_loss_with_beta_one():
    x = batch_of_images()
    model, method = small_vae_and_method(gamma=0.0)
    loss, scalars = method.loss(model, x, torch.Generator().manual_seed(5))
    reference, ref_scalars = BetaVAE(beta=1.0).loss(model, x, torch.Generator().manual_seed(5))
    assert torch.equal(loss, reference)
    for name in ("reconstruction", "kl", "elbo", "kl_0", "kl_3"):
        assert torch.equal(scalars[name], ref_scalars[name])
    # With gamma > 0 the difference is gamma * tc, tc the mean log-odds of the discriminator.
    method.gamma = 25.0
    loss, scalars = method.loss(model, x, torch.Generator().manual_seed(5))
    torch.testing.assert_close(loss, reference + 25.0 * scalars["tc"])
    with torch.no_grad():
        z = model(x, torch.Generator().manual_seed(5)).z
        probs = method.discriminator(z).softmax(1)
    assert scalars["tc"].item() == pytest.approx(torch.log(probs[:, 0] / probs[:, 1]).mean().item(), abs=1e-5)


def test_settings_are_checked_and_state_needs_prepare():
    assert METHODS["factor_vae"] is FactorVAE
    assert FactorVAE().hyperparameters() == {
        "gamma": 40.0, "discriminator_lr": 1e-4, "discriminator_betas": [0.5, 0.9],
        "discriminator_width": 1000, "discriminator_layers": 6}
    for bad in ({"gamma": -1.0}, {"discriminator_lr": 0.0}, {"discriminator_betas": (0.5, 1.0)},
                {"discriminator_width": 0}, {"discriminator_layers": 2.5}):
        with pytest.raises(UserError, match="factor_vae"):
            FactorVAE(**bad)
    with pytest.raises(RuntimeError, match="prepare"):
        FactorVAE().state_dict()


# --- Training through the trainer ---------------------------------------------------------------

# The tiny config's discriminator keeps the 6 hidden layers but is 128 wide, as TINY_PARAMS keeps
# the conv architecture with 4 latents: the plumbing is the same, the run a few seconds.
FACTOR_PARAMS = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae."))] + [
    "train.method = @factor_vae()", "factor_vae.gamma = 10.0", "factor_vae.discriminator_width = 128"]


def test_training_lowers_the_loss_and_logs_the_discriminator(tiny_dsprites, tmp_path):
    run_dir, status = train_from_gin([], FACTOR_PARAMS + ["train.steps = 60", "train.log_every = 10"],
                                     tmp_path / "r", "cpu", progress=False)
    assert status == "done"
    rows = read_log(run_dir)
    assert {"loss", "tc", "discriminator_loss", "discriminator_accuracy", "kl_3"} <= set(rows[0])
    assert float(rows[-1]["loss"]) < 0.7 * float(rows[0]["loss"])
    assert all(0 <= float(r["discriminator_accuracy"]) <= 1 and math.isfinite(float(r["tc"])) for r in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == "factor_vae" and record["hyperparameters"]["gamma"] == 10.0


def test_resume_equals_an_uninterrupted_run_bit_for_bit(tiny_dsprites, tmp_path, monkeypatch):
    whole, _ = train_from_gin([], FACTOR_PARAMS, tmp_path / "whole", "cpu", progress=False)
    interrupt_at(monkeypatch, 17, FACTOR_PARAMS, tmp_path / "resumed")
    checkpoint = torch.load(tmp_path / "resumed" / "model" / "checkpoints" / "step_000000010.pt", weights_only=True)
    assert {"discriminator", "discriminator_optimizer"} <= set(checkpoint["method"])
    _, status = train_from_gin([], FACTOR_PARAMS, tmp_path / "resumed", "cpu", progress=False)
    assert status == "done"
    wa, wb = weights(whole), weights(tmp_path / "resumed")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with open(whole / "model" / "train_log.csv") as f:
        columns = next(csv.reader(f))
    assert "discriminator_accuracy" in columns
    strip = [{k: v for k, v in r.items() if k != "images_per_second"} for r in read_log(whole)]
    assert strip == [{k: v for k, v in r.items() if k != "images_per_second"} for r in read_log(tmp_path / "resumed")]


def test_the_gin_file_parses_to_the_study_protocol():
    parse_gin(["gin/factor_vae.gin"])
    spec = resolve_run_spec()
    assert spec.method.name == "factor_vae"
    assert spec.method.hyperparameters() == {
        "gamma": 40.0, "discriminator_lr": 1e-4, "discriminator_betas": [0.5, 0.9],
        "discriminator_width": 1000, "discriminator_layers": 6}
    assert spec.train["steps"] == 300000 and spec.train["batch_size"] == 64 and spec.train["lr"] == 1e-4
    assert spec.model["latent_dim"] == 10 and spec.model["likelihood"] == "bernoulli"
