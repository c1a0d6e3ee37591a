"""DIP-VAE: the covariance penalties against numpy (np.cov, explicit loops), their known limits,
the reduction to the plain VAE, tensor hyperparameters, the method class and a short training run."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlbench.config import parse_gin, resolve_run_spec
from dlbench.errors import UserError
from dlbench.methods import beta_vae_objective
from dlbench.methods.dip_vae import DipVAE, covariance_over_batch, dip_vae_objective
from dlbench.train.run import train_from_gin

from tests.conftest import TINY_PARAMS
from tests.training import assert_loss_fell
from tests.fake_outputs import fake_outputs

GIN_FILE = str(Path(__file__).resolve().parent.parent / "gin" / "dip_vae.gin")


def random_posteriors(seed, batch=32, dim=4):
    """Correlated means, random log-variances and log p(x|z), float64 numpy."""
    rs = np.random.RandomState(seed)
    mixing = rs.normal(size=(dim, dim))
    return rs.normal(size=(batch, dim)) @ mixing + 0.3, rs.uniform(-2.0, 0.5, (batch, dim)), -rs.uniform(size=batch)


def numpy_penalties(covariance):
    """sum_{i != j} C_ij^2 and sum_i (C_ii - 1)^2 with explicit loops."""
    d = covariance.shape[0]
    off = sum(covariance[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    diag = sum((covariance[i, i] - 1.0) ** 2 for i in range(d))
    return off, diag


def numpy_covariance(mean, logvar, dip_type):
    # bias=True: the 1/B normalisation of disentanglement_lib's E[mu mu^T] - E[mu] E[mu]^T.
    covariance = np.cov(mean, rowvar=False, bias=True)
    if dip_type == "ii":
        covariance = covariance + np.diag(np.exp(logvar).mean(0))
    return covariance


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_penalties_and_loss_match_numpy(dip_type):
    mean, logvar, log_px = random_posteriors(0)
    lambda_od, lambda_d = 3.0, 7.0
    loss, s = dip_vae_objective(fake_outputs(t(mean), t(logvar), log_px=t(log_px)), lambda_od, lambda_d, dip_type)
    off, diag = numpy_penalties(numpy_covariance(mean, logvar, dip_type))
    assert off > 1.0 and diag > 1.0  # the test data is far from the identity
    assert s["cov_offdiag"].item() == pytest.approx(off, rel=1e-12)
    assert s["cov_diag"].item() == pytest.approx(diag, rel=1e-12)
    kl = (0.5 * (mean ** 2 + np.exp(logvar) - 1.0 - logvar)).sum(1).mean()
    assert s["kl"].item() == pytest.approx(kl, rel=1e-12)
    assert s["reconstruction"].item() == pytest.approx(-log_px.mean(), rel=1e-12)
    assert s["elbo"].item() == pytest.approx(log_px.mean() - kl, rel=1e-12)
    assert loss.item() == pytest.approx(-log_px.mean() + kl + lambda_od * off + lambda_d * diag, rel=1e-12)
    assert {"kl_0", "kl_3"} <= set(s) and all(v.dim() == 0 for v in s.values())


def test_type_one_penalties_vanish_for_standard_normal_means():
    """Means i.i.d. N(0, I) over a huge batch have covariance ~ I (sampling error ~ 1/sqrt(B));
    with near-zero posterior variances type II agrees."""
    mean = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    logvar = torch.full_like(mean, -30.0)
    for dip_type in ("i", "ii"):
        _, s = dip_vae_objective(fake_outputs(mean, logvar), 1.0, 1.0, dip_type)
        assert s["cov_offdiag"].item() < 1e-3 and s["cov_diag"].item() < 1e-3


def test_type_two_penalty_vanishes_when_the_aggregate_posterior_covariance_is_the_identity():
    """Means whose batch covariance is exactly diag(c), posterior variances averaging exactly
    1 - c: Cov[mu] + E[sigma^2] = I, so type II's penalties are 0, while type I sees only
    diag(c), off by sum (c - 1)^2 on the diagonal."""
    rs = np.random.RandomState(2)
    c = np.array([0.2, 0.5, 0.9])
    raw = rs.normal(size=(50, 3))
    raw -= raw.mean(0)
    whitened = raw @ np.linalg.inv(np.linalg.cholesky(np.cov(raw, rowvar=False, bias=True))).T
    mean = whitened * np.sqrt(c)
    u = rs.uniform(0.5, 2.0, size=(50, 3))
    variance = (1.0 - c) * u / u.mean(0)
    np.testing.assert_allclose(np.cov(mean, rowvar=False, bias=True) + np.diag(variance.mean(0)), np.eye(3),
                               atol=1e-12)
    out = fake_outputs(t(mean), t(np.log(variance)))
    _, s2 = dip_vae_objective(out, 1.0, 1.0, "ii")
    assert s2["cov_offdiag"].item() < 1e-20 and s2["cov_diag"].item() < 1e-20
    _, s1 = dip_vae_objective(out, 1.0, 1.0, "i")
    assert s1["cov_offdiag"].item() < 1e-20
    assert s1["cov_diag"].item() == pytest.approx(((c - 1.0) ** 2).sum(), rel=1e-10)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_zero_weights_give_exactly_the_vae_loss(dip_type):
    torch.manual_seed(3)
    out = fake_outputs(torch.randn(16, 5), torch.randn(16, 5), torch.randn(16, 5), -torch.rand(16))
    loss, s = dip_vae_objective(out, 0.0, 0.0, dip_type)
    vae_loss, vae_s = beta_vae_objective(out, 1.0)
    assert torch.equal(loss, vae_loss)
    for name in vae_s:
        assert torch.equal(s[name], vae_s[name])


def test_tensor_hyperparameters_and_stacked_batches():
    torch.manual_seed(4)
    out = fake_outputs(torch.randn(16, 3), torch.randn(16, 3), torch.randn(16, 3), -torch.rand(16))
    lambda_od, lambda_d = torch.tensor([1.0, 5.0, 0.0]), torch.tensor([10.0, 5.0, 2.0])
    for dip_type in ("i", "ii"):
        losses, s = dip_vae_objective(out, lambda_od, lambda_d, dip_type)
        singles = torch.stack([dip_vae_objective(out, float(a), float(b), dip_type)[0]
                               for a, b in zip(lambda_od, lambda_d)])
        torch.testing.assert_close(losses, singles)
        torch.testing.assert_close(s["loss"], s["reconstruction"] + s["kl"] + lambda_od * s["cov_offdiag"]
                                   + lambda_d * s["cov_diag"])
    # (B, K, D) values: one covariance per run k, over the batch only.
    stacked = torch.randn(32, 2, 3, dtype=torch.float64)
    covariance = covariance_over_batch(stacked)
    for k in range(2):
        np.testing.assert_allclose(covariance[k].numpy(), np.cov(stacked[:, k].numpy(), rowvar=False, bias=True),
                                   rtol=1e-12)


def test_method_resolves_lambda_d_and_rejects_bad_settings():
    assert DipVAE(lambda_od=2.0).hyperparameters() == {"lambda_od": 2.0, "lambda_d": 20.0, "dip_type": "i"}
    assert DipVAE(lambda_od=2.0, dip_type="ii").hyperparameters()["lambda_d"] == 2.0
    assert DipVAE(lambda_od=2.0, lambda_d=3.0, dip_type="ii").hyperparameters()["lambda_d"] == 3.0
    method = DipVAE(lambda_od=5.0, dip_type="ii")
    torch.manual_seed(5)
    out = fake_outputs(torch.randn(8, 2), torch.randn(8, 2), torch.randn(8, 2), -torch.rand(8))
    torch.testing.assert_close(method.objective(out)[0], dip_vae_objective(out, 5.0, 5.0, "ii")[0])
    with pytest.raises(UserError, match="dip_vae.dip_type must be one of 'i', 'ii', got 'iii'"):
        DipVAE(dip_type="iii")
    with pytest.raises(UserError, match="'i' or 'ii'"):
        dip_vae_objective(out, 1.0, 1.0, "I")
    with pytest.raises(UserError, match="lambda_d"):
        DipVAE(lambda_od=1.0, lambda_d=-1.0)
    parse_gin([GIN_FILE], ["dip_vae.dip_type = 'iii'"])
    with pytest.raises(UserError, match="dip_type"):
        resolve_run_spec()


def test_gin_file_parses_with_the_study_protocol():
    parse_gin([GIN_FILE])
    spec = resolve_run_spec()
    assert spec.method.hyperparameters() == {"lambda_od": 10.0, "lambda_d": 100.0, "dip_type": "i"}
    assert (spec.train["steps"], spec.train["batch_size"], spec.train["lr"]) == (300000, 64, 1e-4)
    assert spec.train["adam_betas"] == [0.9, 0.999] and spec.model["likelihood"] == "bernoulli"
    assert spec.model["latent_dim"] == 10 and spec.dataset["name"] == "dsprites"
    parse_gin([GIN_FILE], ["dip_vae.dip_type = 'ii'"])
    assert resolve_run_spec().method.hyperparameters()["lambda_d"] == 10.0


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_training_lowers_the_loss_and_records_the_penalties(tiny_dsprites, tmp_path, dip_type):
    params = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae."))] + [
        "train.method = @dip_vae()", "dip_vae.lambda_od = 5.0", f"dip_vae.dip_type = '{dip_type}'",
        "train.steps = 60", "train.log_every = 10"]
    run_dir, status = train_from_gin(gin_params=params, run_dir=tmp_path / "run", device="cpu", progress=False)
    assert status == "done"
    assert_loss_fell(run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == "dip_vae"
    assert record["hyperparameters"] == {"lambda_od": 5.0, "lambda_d": 50.0 if dip_type == "i" else 5.0,
                                         "dip_type": dip_type}
    results = json.loads((run_dir / "model" / "results.json").read_text())
    assert {"cov_offdiag", "cov_diag", "kl", "kl_3"} <= set(results)
