"""The alpha-beta objective (Mathieu et al., 2019): the Cauchy-kernel dimension-wise MMD against
a double loop and its known limits, the inclusive KL against closed forms and quadrature, the
objective against beta-VAE on a real model, and short training runs."""

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from scipy.special import logsumexp

from dlbench.config import parse_gin, resolve_run_spec
from dlbench.errors import UserError
from dlbench.methods import beta_vae_objective
from dlbench.methods.ab_vae import ABVAE, ab_vae_objective
from dlbench.methods.beta_vae import BetaVAE
from dlbench.methods.estimators import (CAUCHY_LENGTH_SCALES, dimwise_cauchy_kernel, inclusive_kl,
                                        mmd_squared)
from dlbench.nn import VAE
from dlbench.priors import IsotropicGaussian
from dlbench.train.run import train_from_gin

from tests.conftest import TINY_PARAMS
from tests.training import assert_loss_fell
from tests.fake_outputs import fake_outputs

SCALES = [0.2, 0.4, 1.0, 2.0, 4.0, 10.0]  # eq. 10's sigma_l, typed again here on purpose


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


# --- The dimension-wise MMD -------------------------------------------------------------------

def loop_kernel(a, b):
    """Eq. 10 for two vectors, one term at a time."""
    total = 0.0
    for d in range(len(a)):
        for s in SCALES:
            total += s / (s + (a[d] - b[d]) ** 2)
    return total


def loop_mmd(x, y):
    """Unbiased MMD^2 by a double loop: within-sample pairs i != j, all cross pairs."""
    n, m = len(x), len(y)
    xx = sum(loop_kernel(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(loop_kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(loop_kernel(x[i], y[j]) for i in range(n) for j in range(m)) / (n * m)
    return xx + yy - 2.0 * xy


def test_cauchy_kernel_and_mmd_match_a_double_loop():
    rs = np.random.RandomState(0)
    x, y = rs.normal(size=(5, 3)), rs.normal(0.5, 2.0, size=(4, 3))
    assert list(CAUCHY_LENGTH_SCALES) == SCALES
    gram = dimwise_cauchy_kernel(t(x), t(y)).numpy()
    expected = np.array([[loop_kernel(a, b) for b in y] for a in x])
    np.testing.assert_allclose(gram, expected, rtol=1e-12)
    assert mmd_squared(t(x), t(y)).item() == pytest.approx(loop_mmd(x, y), rel=1e-12)
    # k(x, x) = D * L: every term is s / s.
    assert dimwise_cauchy_kernel(t(x[:1]), t(x[:1])).item() == pytest.approx(3 * len(SCALES))
    with pytest.raises(ValueError, match="at least 2"):
        mmd_squared(t(x[:1]), t(y))


N_SAMPLES, DIMS = 300, 2


def mmd_between(shift, seed, n=N_SAMPLES, d=DIMS, kernel=dimwise_cauchy_kernel):
    """MMD^2 estimate between n draws of N(0, I_d) and n draws of N(shift, I_d)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, d, generator=g, dtype=torch.float64) + shift
    return mmd_squared(x, y, kernel=kernel).item()


@functools.lru_cache(maxsize=1)
def null_estimates():
    """MMD^2 of N(0, I) with itself over 20 seeds: the estimator's spread at this sample size."""
    return np.array([mmd_between(0.0, seed) for seed in range(20)])


def test_mmd_is_unbiased_at_zero_for_equal_distributions_and_grows_with_a_mean_shift():
    null = null_estimates()
    spread = null.std()
    # Unbiased: the mean over seeds is 0 within 4 standard errors (it goes negative too).
    assert abs(null.mean()) < 4 * spread / math.sqrt(len(null))
    assert null.min() < 0 < null.max()
    shifted = [mmd_between(shift, seed=100) for shift in (0.0, 0.5, 1.0, 2.0)]
    assert abs(shifted[0]) < 4 * spread
    assert all(a < b for a, b in zip(shifted, shifted[1:]))
    assert shifted[1] > 10 * spread  # a shift of half a standard deviation is plainly detected


def joint_cauchy_kernel(x, y):
    """The same scales on the Euclidean distance: a kernel that sees dependence."""
    squared = (x.unsqueeze(1) - y.unsqueeze(0)).pow(2).sum(-1)
    return sum(s / (s + squared) for s in SCALES)


def test_dimension_wise_mmd_only_compares_marginals():
    """Correlated vs independent Gaussians with unit variances: equal marginals, so the
    dimension-wise MMD is within the noise of a null comparison (the property the paper states
    in Appendix B), while the same scales on the joint distance tell them apart. Each kernel is
    judged against its own spread over seeds for equal distributions."""
    g = torch.Generator().manual_seed(1)
    n, rho = N_SAMPLES, 0.9
    a, b = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
    correlated = torch.stack([a, rho * a + math.sqrt(1 - rho ** 2) * b], 1)
    independent = torch.randn(n, 2, generator=g, dtype=torch.float64)
    joint_null = np.array([mmd_between(0.0, seed, kernel=joint_cauchy_kernel) for seed in range(10)])
    dimwise = mmd_squared(correlated, independent).item()
    joint = mmd_squared(correlated, independent, kernel=joint_cauchy_kernel).item()
    assert abs(dimwise) < 4 * null_estimates().std()
    assert joint > 6 * joint_null.std()


# --- The inclusive KL -------------------------------------------------------------------------

def gaussian_kl(mean_p, sd_p, mean_q, sd_q):
    """KL(N(mean_p, sd_p^2) || N(mean_q, sd_q^2)) per dimension."""
    return np.log(sd_q / sd_p) + (sd_p ** 2 + (mean_p - mean_q) ** 2) / (2 * sd_q ** 2) - 0.5


def prior_draws(prior, n, seed):
    z = prior.sample(n, torch.Generator().manual_seed(seed))
    return z, prior.log_prob(z)


def test_inclusive_kl_is_the_gaussian_kl_when_every_posterior_is_the_same():
    """q(z|x_i) = N(m, s^2) for all i, so q(z) = N(m, s^2); p = N(0, 1.5^2 I)."""
    m, s = np.array([0.3, -0.5]), np.array([0.8, 1.4])
    mean, logvar = t(np.tile(m, (6, 1))), t(np.tile(2 * np.log(s), (6, 1)))
    prior = IsotropicGaussian(2, scale=1.5).double()
    z, log_pz = prior_draws(prior, 200000, seed=2)
    estimate = inclusive_kl(z, log_pz, mean, logvar).item()
    expected = gaussian_kl(0.0, 1.5, m, s).sum()
    terms = stats.norm.logpdf(z.numpy(), 0, 1.5).sum(1) - stats.norm.logpdf(z.numpy(), m, s).sum(1)
    assert abs(estimate - expected) < 4 * terms.std() / math.sqrt(len(terms))
    assert estimate == pytest.approx(terms.mean(), rel=1e-9)


def test_inclusive_kl_of_a_mixture_matches_quadrature_and_a_scipy_computation():
    """Distinct posteriors: q(z) = (1/B) sum_i N(m_i, s_i^2), 1-D, p = N(0, 1). The estimate
    agrees with the integral of p (log p - log q) within 4 standard errors, and equals the
    logsumexp formula written with scipy on the same prior samples."""
    m, s = np.array([-1.0, 0.2, 1.5]), np.array([0.5, 1.0, 0.7])

    def log_q(z):
        return logsumexp(stats.norm.logpdf(np.asarray(z)[..., None], m, s), axis=-1) - math.log(len(m))

    exact, _ = integrate.quad(lambda z: stats.norm.pdf(z) * (stats.norm.logpdf(z) - log_q(z)), -12, 12,
                              epsabs=1e-12)
    prior = IsotropicGaussian(1).double()
    z, log_pz = prior_draws(prior, 200000, seed=3)
    estimate = inclusive_kl(z, log_pz, t(m[:, None]), t(2 * np.log(s)[:, None])).item()
    terms = stats.norm.logpdf(z.numpy()[:, 0]) - log_q(z.numpy()[:, 0])
    assert estimate == pytest.approx(terms.mean(), rel=1e-9)
    assert abs(estimate - exact) < 4 * terms.std() / math.sqrt(len(terms))


# --- The objective ----------------------------------------------------------------------------

def real_model_and_batch():
    torch.manual_seed(0)
    model = VAE("conv", (1, 64, 64), 4, "bernoulli")
    x = (torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    return model, x


def independent_divergence(outputs, prior_samples, divergence):
    """D from numpy/scipy on the pass's posterior samples and the prior samples."""
    z, zp = outputs.z.detach().double().numpy(), prior_samples.double().numpy()
    if divergence == "mmd":
        return loop_mmd(z, zp)
    mean, sd = outputs.mean.detach().double().numpy(), np.exp(0.5 * outputs.logvar.detach().double().numpy())
    log_q = logsumexp(stats.norm.logpdf(zp[:, None, :], mean[None], sd[None]).sum(-1), axis=1) - math.log(len(mean))
    return float(np.mean(stats.norm.logpdf(zp).sum(1) - log_q))


@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl"])
def test_with_alpha_zero_and_beta_one_the_loss_is_beta_vaes_and_alpha_adds_the_divergence(divergence):
    model, x = real_model_and_batch()
    with torch.no_grad():
        ab_loss, ab = ABVAE(alpha=0.0, beta=1.0, divergence=divergence).loss(model, x, torch.Generator().manual_seed(5))
        b_loss, b = BetaVAE(beta=1.0).loss(model, x, torch.Generator().manual_seed(5))
        assert ab_loss.item() == b_loss.item()  # exactly
        for name in ("reconstruction", "kl", "elbo", "kl_0", "kl_3"):
            assert ab[name].item() == b[name].item()

        alpha, beta = 7.0, 2.5
        loss, scalars = ABVAE(alpha=alpha, beta=beta, divergence=divergence).loss(model, x,
                                                                                 torch.Generator().manual_seed(5))
        generator = torch.Generator().manual_seed(5)
        outputs = model(x, generator)
        prior_samples = model.prior.sample(len(x), generator)  # the draw the method makes after the pass
        expected_d = independent_divergence(outputs, prior_samples, divergence)
        expected = beta_vae_objective(outputs, beta)[0].item() + alpha * expected_d
    assert scalars["divergence"].item() == pytest.approx(expected_d, rel=1e-4, abs=1e-5)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert set(scalars) == {"loss", "reconstruction", "kl", "elbo", "divergence", "kl_0", "kl_1", "kl_2", "kl_3"}


@pytest.mark.parametrize("divergence", ["mmd", "inclusive_kl"])
def test_the_divergence_trains_the_encoder_only(divergence):
    model, x = real_model_and_batch()
    _, scalars = ABVAE(divergence=divergence).loss(model, x, torch.Generator().manual_seed(6))
    scalars["divergence"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_tensor_hyperparameters_give_one_loss_per_setting():
    torch.manual_seed(1)
    mean, logvar = torch.randn(8, 3), torch.randn(8, 3) * 0.3
    out = fake_outputs(mean, logvar, mean + torch.exp(0.5 * logvar) * torch.randn(8, 3), -torch.rand(8))
    alphas, betas = torch.tensor([0.0, 1.0, 1000.0]), torch.tensor([1.0, 4.0, 0.5])
    for divergence in ("mmd", "inclusive_kl"):
        samples = out.prior.sample(8, torch.Generator().manual_seed(2))
        losses, s = ab_vae_objective(out, alphas, betas, divergence, samples)
        singles = torch.stack([ab_vae_objective(out, float(a), float(b), divergence, samples)[0]
                               for a, b in zip(alphas, betas)])
        torch.testing.assert_close(losses, singles)
        torch.testing.assert_close(s["loss"], s["reconstruction"] + betas * s["kl"] + alphas * s["divergence"])


def test_settings_and_user_errors():
    assert ABVAE().hyperparameters() == {"alpha": 1000.0, "beta": 1.0, "divergence": "mmd"}
    assert ABVAE(alpha=1, beta=0, divergence="inclusive_kl").hyperparameters() == {
        "alpha": 1.0, "beta": 0.0, "divergence": "inclusive_kl"}
    with pytest.raises(UserError, match="ab_vae.divergence must be one of 'mmd', 'inclusive_kl', got 'kl'"):
        ABVAE(divergence="kl")
    with pytest.raises(UserError, match="ab_vae.alpha"):
        ABVAE(alpha=-1.0)
    out = fake_outputs(torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(UserError, match="mmd, inclusive_kl"):
        ab_vae_objective(out, 1.0, 1.0, "wasserstein", torch.zeros(4, 2))


# --- Training and the gin file ----------------------------------------------------------------

AB_PARAMS = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae."))] + [
    "train.method = @ab_vae()", "ab_vae.beta = 1.0", "train.steps = 40", "train.log_every = 10"]


@pytest.mark.parametrize("divergence,alpha", [("mmd", 100.0), ("inclusive_kl", 1.0)])
def test_training_lowers_the_loss(tiny_dsprites, tmp_path, divergence, alpha):
    params = AB_PARAMS + [f"ab_vae.divergence = '{divergence}'", f"ab_vae.alpha = {alpha}"]
    run_dir, status = train_from_gin([], params, tmp_path / "run", "cpu", progress=False)
    assert status == "done"
    rows = assert_loss_fell(run_dir)
    assert all(math.isfinite(float(r["divergence"])) for r in rows)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["method"] == "ab_vae"
    assert record["hyperparameters"] == {"alpha": alpha, "beta": 1.0, "divergence": divergence}


def test_the_gin_file_parses():
    parse_gin([str(Path(__file__).resolve().parent.parent / "gin" / "ab_vae.gin")])
    spec = resolve_run_spec()
    assert spec.method.hyperparameters() == {"alpha": 1000.0, "beta": 1.0, "divergence": "mmd"}
    assert spec.train["batch_size"] == 64 and spec.train["steps"] == 300000 and spec.train["lr"] == 1e-4
    assert spec.model["latent_dim"] == 10 and spec.model["likelihood"] == "bernoulli"


def test_with_the_pinwheel_mixture_prior_the_kl_is_monte_carlo_and_d_uses_its_density():
    """The paper's clustering set-up in miniature: 2 latents, the 4-component mixture prior (eq.
    9, means at the unit square's corners, variance 0.03) and the inclusive KL, checked against
    scipy's mixture density on the same prior draws."""
    from dlbench.priors.gaussian_mixture import GaussianMixture

    prior = GaussianMixture(2).double()
    torch.manual_seed(3)
    mean, logvar = torch.rand(6, 2, dtype=torch.float64), torch.full((6, 2), -3.0, dtype=torch.float64)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(6, 2, dtype=torch.float64)
    out = fake_outputs(mean, logvar, z, -torch.rand(6, dtype=torch.float64), prior=prior)
    loss, s = ab_vae_objective(out, 2.0, 0.5, "inclusive_kl", prior.sample(6, torch.Generator().manual_seed(4)))
    draws = prior.sample(6, torch.Generator().manual_seed(4)).numpy()
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])

    def log_p(points):
        return logsumexp(stats.norm.logpdf(points[:, None, :], corners[None], math.sqrt(0.03)).sum(-1), axis=1) - math.log(4)

    sd = np.exp(0.5 * logvar.numpy())
    log_q = logsumexp(stats.norm.logpdf(draws[:, None, :], mean.numpy()[None], sd[None]).sum(-1), axis=1) - math.log(6)
    # rel 1e-7: the prior keeps its log-weights in float32 precision even in double
    assert s["divergence"].item() == pytest.approx(np.mean(log_p(draws) - log_q), rel=1e-7)
    mc_kl = np.mean(stats.norm.logpdf(z.numpy(), mean.numpy(), sd).sum(1) - log_p(z.numpy()))
    assert s["kl"].item() == pytest.approx(mc_kl, rel=1e-7)
    assert not any(name.startswith("kl_") for name in s)
    assert loss.item() == pytest.approx((s["reconstruction"] + 0.5 * s["kl"] + 2.0 * s["divergence"]).item(), rel=1e-12)
