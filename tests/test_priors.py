"""The priors of Mathieu et al. (2019): anisotropic Gaussian (given, learned, PCA-initialised),
product of Student-t, Gaussian mixture (eq. 9) and sparse mixture. Densities against scipy and 2-D
quadrature, samples against the scipy CDFs (KS), moments and component frequencies, the closed-form
KL against numerical integration, the PCA initialisation against data whose principal components
are known by construction, and the priors inside a VAE and a short training run."""

from contextlib import contextmanager
import json
import math

import numpy as np
import pytest
import scipy.linalg
from scipy import integrate, stats
from scipy.integrate import cubature
from scipy.special import logsumexp
import torch

import dlbench.data
from dlbench.errors import UserError
from dlbench.methods.beta_vae import beta_vae_objective
from dlbench.nn import VAE
from dlbench.priors import build_prior, make_prior
from dlbench.priors.anisotropic_gaussian import AnisotropicGaussian, pca_singular_values
from dlbench.priors.gaussian_mixture import GaussianMixture
from dlbench.priors.sparse_mixture import SparseMixture
from dlbench.priors.student_t import StudentT
from dlbench.train.run import load_trained_model, train_from_gin

from tests.conftest import TINY_PARAMS

GIVEN = [1.0, 2.0, 3.0, 4.0]
GIVEN_NORMALISED = [0.4, 0.8, 1.2, 1.6]  # 4 * v / sum(v)
MEANS_3D = [[0.0, 0.0, 0.0], [1.0, -1.0, 2.0], [-2.0, 0.5, 0.0]]


@contextmanager
def float64_default():
    """Build priors in float64 (their parameters take torch's default dtype; converting a float32
    prior with .double() would keep the float32 rounding of its parameters)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def t64(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def log_prob(prior, z):
    return prior.log_prob(t64(z)).detach().numpy()


def points(d, n=50, seed=0, scale=2.0):
    return np.random.RandomState(seed).normal(0.0, scale, (n, d))


def draw(prior, n, seed):
    return prior.sample(n, torch.Generator().manual_seed(seed)).numpy()


# --- independent (scipy) densities and marginal CDFs --------------------------------------------

def scipy_mixture_logpdf(z, means, variance, weights):
    per_component = [math.log(w) + stats.multivariate_normal(m, variance * np.eye(len(m))).logpdf(z)
                     for m, w in zip(means, weights)]
    return logsumexp(np.stack(per_component), axis=0)


def sparse_pdf(x, gamma, sigma0_sq):
    return (1 - gamma) * stats.norm.pdf(x) + gamma * stats.norm.pdf(x, scale=math.sqrt(sigma0_sq))


def sparse_cdf(x, gamma, sigma0_sq):
    return (1 - gamma) * stats.norm.cdf(x) + gamma * stats.norm.cdf(x, scale=math.sqrt(sigma0_sq))


def mixture_marginal_cdf(x, means, variance, weights, d):
    return sum(w * stats.norm.cdf(x, loc=m[d], scale=math.sqrt(variance)) for m, w in zip(means, weights))


# (prior, its scipy log-density, per-coordinate scipy CDFs) for the tests shared by all priors
def cases():
    with float64_default():
        return _cases()


def _cases():
    paper_means, quarter = [[0, 0], [0, 1], [1, 0], [1, 1]], [0.25] * 4
    weights_3d = np.array([1.0, 2.0, 5.0]) / 8
    return {
        "anisotropic_given": (
            AnisotropicGaussian(4, init="given", variances=GIVEN),
            lambda z: stats.multivariate_normal(np.zeros(4), np.diag(GIVEN_NORMALISED)).logpdf(z),
            [lambda x, v=v: stats.norm.cdf(x, scale=math.sqrt(v)) for v in GIVEN_NORMALISED]),
        "student_t_3": (
            StudentT(3, nu=3.0), lambda z: stats.t.logpdf(z, 3.0).sum(-1), [lambda x: stats.t.cdf(x, 3.0)] * 3),
        "student_t_0.7": (
            StudentT(2, nu=0.7), lambda z: stats.t.logpdf(z, 0.7).sum(-1), [lambda x: stats.t.cdf(x, 0.7)] * 2),
        "student_t_30": (
            StudentT(2, nu=30), lambda z: stats.t.logpdf(z, 30.0).sum(-1), [lambda x: stats.t.cdf(x, 30.0)] * 2),
        "mixture_paper": (
            GaussianMixture(2),
            lambda z: scipy_mixture_logpdf(z, paper_means, 0.03, quarter),
            [lambda x, d=d: mixture_marginal_cdf(x, paper_means, 0.03, quarter, d) for d in range(2)]),
        "mixture_3d": (
            GaussianMixture(3, means=MEANS_3D, variance=0.5, weights=[1, 2, 5]),
            lambda z: scipy_mixture_logpdf(z, MEANS_3D, 0.5, weights_3d),
            [lambda x, d=d: mixture_marginal_cdf(x, MEANS_3D, 0.5, weights_3d, d) for d in range(3)]),
        "sparse_paper": (
            SparseMixture(3),
            lambda z: np.log(sparse_pdf(z, 0.8, 0.05)).sum(-1), [lambda x: sparse_cdf(x, 0.8, 0.05)] * 3),
        "sparse_other": (
            SparseMixture(2, gamma=0.3, sigma0_sq=0.2),
            lambda z: np.log(sparse_pdf(z, 0.3, 0.2)).sum(-1), [lambda x: sparse_cdf(x, 0.3, 0.2)] * 2),
    }


CASES = list(cases())


@pytest.mark.parametrize("case", CASES)
def test_log_prob_matches_scipy(case):
    prior, scipy_logpdf, _ = cases()[case]
    z = points(prior.latent_dim)
    np.testing.assert_allclose(log_prob(prior, z), scipy_logpdf(z), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gamma, scale", [(0.0, 1.0), (1.0, math.sqrt(0.05))])
def test_sparse_mixture_limits_are_single_gaussians(gamma, scale):
    z = points(3)
    expected = stats.norm.logpdf(z, scale=scale).sum(-1)
    np.testing.assert_allclose(log_prob(SparseMixture(3, gamma=gamma).double(), z), expected, rtol=1e-12)


def test_student_t_tends_to_the_standard_normal():
    z = points(2, scale=1.0)
    np.testing.assert_allclose(log_prob(StudentT(2, nu=1e7).double(), z), stats.norm.logpdf(z).sum(-1), atol=1e-5)


@pytest.mark.parametrize("nu", [1e16, 1e20, 3e38])
def test_student_t_of_very_large_nu_is_the_standard_normal(nu):
    # lgamma((nu + 1)/2) - lgamma(nu/2) had cancelled to noise: at nu = 1e16 the density at 0 was
    # e^-19, its KL 45 nats, where the limit is the normal's
    z = points(2, scale=1.0)
    np.testing.assert_allclose(log_prob(StudentT(2, nu=nu).double(), z), stats.norm.logpdf(z).sum(-1), atol=1e-9)


@pytest.mark.parametrize("nu", [3.0, 99.0, 100.0, 101.0, 1e3, 1e6])
def test_student_t_normaliser_matches_an_independent_high_precision_one_on_both_sides_of_the_series(nu):
    import mpmath

    mpmath.mp.dps = 40
    z = np.array([[0.0], [1.5], [-4.0]])
    half = mpmath.mpf(nu) / 2
    expected = [float(mpmath.loggamma(half + mpmath.mpf(1) / 2) - mpmath.loggamma(half)
                      - mpmath.log(mpmath.mpf(nu) * mpmath.pi) / 2
                      - (mpmath.mpf(nu) + 1) / 2 * mpmath.log1p(mpmath.mpf(x) ** 2 / nu)) for x in z[:, 0]]
    np.testing.assert_allclose(log_prob(StudentT(1, nu=nu).double(), z), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("config, box", [
    ({"name": "anisotropic_gaussian", "init": "given", "variances": [1.0, 3.0]}, math.inf),
    ({"name": "student_t", "nu": 3.0}, math.inf),
    ({"name": "gaussian_mixture"}, 4.0),  # 23 standard deviations around the unit square
    ({"name": "sparse_mixture"}, 10.0),
], ids=lambda c: c["name"] if isinstance(c, dict) else "")
def test_density_integrates_to_one(config, box):
    """Adaptive 2-D Gauss-Kronrod cubature (scipy) of exp(log_prob)."""
    with float64_default():
        prior = build_prior(config, 2)

    def density(z):
        return torch.exp(prior.log_prob(torch.as_tensor(z))).numpy()

    result = cubature(density, [-box, -box], [box, box], rtol=1e-10, atol=1e-10)
    assert result.status == "converged"
    assert result.estimate == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("case", CASES)
def test_samples_follow_the_marginal_cdfs(case):
    prior, _, cdfs = cases()[case]
    z = draw(prior, 20000, seed=1)
    assert z.shape == (20000, prior.latent_dim) and z.dtype == np.float64
    for d, cdf in enumerate(cdfs):
        assert stats.kstest(z[:, d], cdf).pvalue > 1e-3, f"dimension {d}"


def test_student_t_samples_with_small_nu_stay_finite_in_float32():
    z = draw(StudentT(1, nu=0.2), 200000, seed=4)  # t_0.2 reaches 1e20 and beyond, short of float32's 3e38
    assert np.isfinite(z).all() and z.dtype == np.float32
    assert stats.kstest(z[:, 0].astype(np.float64), lambda x: stats.t.cdf(x, 0.2)).pvalue > 1e-3


@pytest.mark.parametrize("case", CASES)
def test_samples_are_reproducible_from_the_generator(case):
    prior = cases()[case][0]
    a, b, c = draw(prior, 500, seed=7), draw(prior, 500, seed=7), draw(prior, 500, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert prior.sample(3).shape == (3, prior.latent_dim)  # the global generator works too


@float64_default()
def test_sample_moments():
    n = 200000
    z = draw(AnisotropicGaussian(4, init="given", variances=GIVEN), n, seed=2)
    np.testing.assert_allclose(np.cov(z.T), np.diag(GIVEN_NORMALISED), atol=0.015)
    z = draw(StudentT(2, nu=5.0), n, seed=2)
    np.testing.assert_allclose(z.var(0), 5.0 / 3.0, rtol=0.04)  # nu / (nu - 2)
    z = draw(SparseMixture(2), n, seed=2)
    np.testing.assert_allclose(z.var(0), 0.2 + 0.8 * 0.05, rtol=0.02)
    np.testing.assert_allclose((z ** 4).mean(0), 3 * (0.2 + 0.8 * 0.05 ** 2), rtol=0.05)
    means, weights = np.array(MEANS_3D), np.array([1, 2, 5]) / 8
    z = draw(GaussianMixture(3, means=MEANS_3D, variance=0.5, weights=[1, 2, 5]), n, seed=2)
    mean = weights @ means
    covariance = 0.5 * np.eye(3) + (weights[:, None] * means).T @ means - np.outer(mean, mean)
    np.testing.assert_allclose(z.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(z.T), covariance, atol=0.02)


@float64_default()
def test_mixture_component_frequencies():
    weights = [0.1, 0.2, 0.3, 0.4]
    prior = GaussianMixture(2, variance=1e-4, weights=weights)  # well separated: nearest corner
    z = draw(prior, 20000, seed=3)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    component = ((z[:, None, :] - corners[None]) ** 2).sum(-1).argmin(1)
    counts = np.bincount(component, minlength=4)
    assert stats.chisquare(counts, 20000 * np.array(weights)).pvalue > 1e-3
    for c in range(4):
        mine = z[component == c]
        np.testing.assert_allclose(mine.mean(0), corners[c], atol=1e-3)
        np.testing.assert_allclose(mine.var(0), 1e-4, rtol=0.1)


def test_gaussian_mixture_defaults_are_the_papers():
    prior = GaussianMixture(2)
    assert sorted(prior.means.tolist()) == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert prior.variance == 0.03
    np.testing.assert_allclose(prior.log_weights.exp().numpy(), 0.25)


# --- anisotropic Gaussian -----------------------------------------------------------------------

@float64_default()
def test_given_variances_are_normalised_to_sum_to_d():
    prior = AnisotropicGaussian(4, init="given", variances=GIVEN)
    np.testing.assert_allclose(prior.variances().detach().numpy(), GIVEN_NORMALISED, rtol=1e-12)
    assert prior.variances().sum().item() == pytest.approx(4.0, rel=1e-12)


@float64_default()
def test_anisotropic_kl_equals_the_integrated_kl():
    prior = AnisotropicGaussian(4, init="given", variances=GIVEN)
    rs = np.random.RandomState(4)
    mean, logvar = rs.normal(0, 1.5, (3, 4)), rs.uniform(-3, 1, (3, 4))
    closed = prior.kl_per_dim(t64(mean), t64(logvar)).detach().numpy()
    for b in range(3):
        for d in range(4):
            q = stats.norm(mean[b, d], math.exp(0.5 * logvar[b, d]))
            p = stats.norm(0.0, math.sqrt(GIVEN_NORMALISED[d]))
            kl, _ = integrate.quad(lambda x: q.pdf(x) * (q.logpdf(x) - p.logpdf(x)), -np.inf, np.inf, epsabs=1e-12)
            assert closed[b, d] == pytest.approx(kl, rel=1e-7, abs=1e-10)
    z = t64(mean)  # kl() uses the closed form, whatever z
    np.testing.assert_allclose(prior.kl(t64(mean), t64(logvar), z).detach().numpy(), closed.sum(-1), rtol=1e-12)


@float64_default()
def test_anisotropic_kl_matches_monte_carlo():
    prior = AnisotropicGaussian(3, init="given", variances=[0.2, 1.0, 5.0])
    mean, logvar = t64([[0.3, -1.0, 2.0]]), t64([[-1.0, 0.5, 0.0]])
    q = torch.distributions.Normal(mean, torch.exp(0.5 * logvar))
    gen = torch.Generator().manual_seed(5)
    z = mean + torch.exp(0.5 * logvar) * torch.randn((400000, 3), generator=gen, dtype=torch.float64)
    monte_carlo = (q.log_prob(z).sum(-1) - prior.log_prob(z)).mean().item()
    assert prior.kl(mean, logvar, z[:1]).item() == pytest.approx(monte_carlo, abs=0.01)


class SyntheticImages:
    """Images (N, 1, 4, 4) uint8 whose centred data matrix is sum_j c_j h_j 1_{P_j}^T / 255, with h_j
    orthogonal +-1 columns of a Hadamard matrix (mean zero) and P_j disjoint pixel blocks of sizes
    1, 2, 3: its singular values are c_j sqrt(N |P_j|) / 255 by construction."""

    pixel_scale = 1.0 / 255
    contrasts = [10, 40, 20]           # c_j, in pixel units
    blocks = [[0], [1, 2], [3, 4, 5]]  # P_j

    def __init__(self, repeats=1):
        h = scipy.linalg.hadamard(8)[:, 1:4]
        x = np.full((8, 16), 128)
        for j, (c, block) in enumerate(zip(self.contrasts, self.blocks)):
            x[:, block] += c * h[:, [j]]
        x = np.tile(x, (repeats, 1))
        self.images = x.astype(np.uint8).reshape(-1, 1, 4, 4)

    def singular_values(self, n):
        values = [c * math.sqrt(n * len(b)) / 255 for c, b in zip(self.contrasts, self.blocks)]
        return sorted(values, reverse=True)


@float64_default()
def test_pca_init_uses_the_known_principal_components():
    data = SyntheticImages()
    prior = AnisotropicGaussian(3)
    assert prior.settings()["pca_singular_values"] is None
    with pytest.raises(RuntimeError, match="prepare"):
        prior.log_prob(torch.zeros(1, 3, dtype=torch.float64))
    with pytest.raises(RuntimeError, match="prepare"):
        prior.sample(2)
    prior.prepare(data)
    known = np.array(data.singular_values(8))  # 40 sqrt(16), 20 sqrt(24), 10 sqrt(8) over 255
    np.testing.assert_allclose(prior.settings()["pca_singular_values"], known, rtol=1e-5)
    # standard deviations proportional to the singular values; variances sum to D
    variances = prior.variances().detach().numpy()
    np.testing.assert_allclose(np.sqrt(variances) / known, np.sqrt(variances[0]) / known[0], rtol=1e-5)
    assert variances.sum() == pytest.approx(3.0, rel=1e-12)
    assert draw(prior, 4, seed=0).shape == (4, 3)


def test_pca_init_subsamples_large_datasets_deterministically():
    data = SyntheticImages(repeats=1500)  # 12,000 images: PCA sees a fixed 10,000 of them
    first = pca_singular_values(data.images, data.pixel_scale, 3)
    assert first == pca_singular_values(data.images, data.pixel_scale, 3)
    # ~ sqrt(10000 |P_j|) c_j (cross terms of a random subsample are O(sqrt n)); all 12,000 would give 9.5% more
    np.testing.assert_allclose(first, data.singular_values(10000), rtol=0.02)


def test_pca_init_on_a_dataset_without_fixed_images_uses_a_seeded_sample(tiny_dsprites, monkeypatch):
    """color_dsprites draws a colour per observation, so it has no `images`; PCA reads a seeded
    sample instead: the top singular values of that sample's centred matrix (full SVD here)."""
    from dlbench.data.color_dsprites import ColorDSprites
    from dlbench.priors import anisotropic_gaussian

    monkeypatch.setattr(anisotropic_gaussian, "PCA_MAX_IMAGES", 300)  # a full SVD stays quick
    data = ColorDSprites()
    prior = AnisotropicGaussian(3)
    prior.prepare(data)
    sample = data.sample_observations(300, np.random.RandomState(anisotropic_gaussian.PCA_SEED))
    x = sample.reshape(300, -1).astype(np.float64)
    expected = np.linalg.svd(x - x.mean(axis=0), compute_uv=False)[:3]
    np.testing.assert_allclose(prior.settings()["pca_singular_values"], expected, rtol=1e-4)
    again = AnisotropicGaussian(3)
    again.prepare(ColorDSprites())
    assert again.settings() == prior.settings()


def test_pca_init_needs_enough_data():
    with pytest.raises(UserError, match="init = 'given'"):
        AnisotropicGaussian(8).prepare(SyntheticImages())


def test_config_round_trips_through_build_prior():
    pca = AnisotropicGaussian(3, learned=True)
    pca.prepare(SyntheticImages())
    priors = [pca, AnisotropicGaussian(4, init="given", variances=GIVEN), StudentT(3, nu=4.5),
              GaussianMixture(3, means=MEANS_3D, variance=0.5, weights=[1, 2, 5]), GaussianMixture(2),
              SparseMixture(3, gamma=0.3, sigma0_sq=0.1)]
    for prior in priors:
        config = json.loads(json.dumps(prior.config()))  # plain JSON values, as run.json holds them
        rebuilt = build_prior(config, prior.latent_dim)
        assert type(rebuilt) is type(prior) and rebuilt.config() == prior.config()
        z = torch.as_tensor(points(prior.latent_dim, seed=9), dtype=torch.float32)
        assert torch.equal(rebuilt.log_prob(z), prior.log_prob(z))


def test_learned_logits_get_gradients_and_load_from_a_state_dict():
    prior = AnisotropicGaussian(4, init="given", variances=GIVEN, learned=True)
    assert [name for name, _ in prior.named_parameters()] == ["logits"]
    prior.log_prob(torch.randn(5, 4, generator=torch.Generator().manual_seed(0))).sum().backward()
    assert prior.logits.grad is not None and torch.all(prior.logits.grad != 0)
    with torch.no_grad():
        prior.logits.add_(torch.tensor([0.5, -0.5, 0.0, 1.0]))
    rebuilt = build_prior(prior.config(), 4)
    rebuilt.load_state_dict(prior.state_dict())
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(rebuilt.log_prob(z), prior.log_prob(z))
    fixed = AnisotropicGaussian(4, init="given", variances=GIVEN)
    assert list(fixed.parameters()) == [] and "logits" in fixed.state_dict()


@pytest.mark.parametrize("name, settings", [
    ("anisotropic_gaussian", {"init": "svd"}),
    ("anisotropic_gaussian", {"init": "given"}),
    ("anisotropic_gaussian", {"init": "given", "variances": [1.0, 2.0]}),
    ("anisotropic_gaussian", {"init": "given", "variances": [1.0, 2.0, -3.0]}),
    ("anisotropic_gaussian", {"init": "given", "variances": [1.0, 2.0, "a"]}),
    ("anisotropic_gaussian", {"init": "pca", "variances": [1.0, 2.0, 3.0]}),
    ("anisotropic_gaussian", {"init": "pca", "pca_singular_values": [1.0, 0.0, 3.0]}),
    ("student_t", {"nu": 0.0}),
    ("student_t", {"nu": -2.0}),
    ("student_t", {"nu": math.inf}),
    ("student_t", {"nu": "three"}),
    ("student_t", {"nu": "3"}),  # a string or a bool is a mistake, not a number: they had been taken
    ("student_t", {"nu": True}),
    ("gaussian_mixture", {}),  # 3 dimensions: no default means
    ("gaussian_mixture", {"means": [[0.0, 1.0]]}),
    ("gaussian_mixture", {"means": []}),
    ("gaussian_mixture", {"means": MEANS_3D, "variance": 0.0}),
    ("gaussian_mixture", {"means": MEANS_3D, "weights": [1.0, 2.0]}),
    ("gaussian_mixture", {"means": MEANS_3D, "weights": [1.0, -1.0, 2.0]}),
    ("gaussian_mixture", {"means": MEANS_3D, "weights": [0.0, 0.0, 0.0]}),
    ("sparse_mixture", {"gamma": -0.1}),
    ("sparse_mixture", {"gamma": 1.5}),
    ("sparse_mixture", {"sigma0_sq": 0.0}),
    ("sparse_mixture", {"gamma": "0.5"}),
    ("gaussian_mixture", {"means": MEANS_3D, "variance": "1"}),
    # strings and bools had been read as numbers, and values past float32 as finite ones
    ("gaussian_mixture", {"means": [["0", 0.0, 0.0]]}),
    ("gaussian_mixture", {"means": [[1e39, 0.0, 0.0]]}),
    ("gaussian_mixture", {"means": MEANS_3D, "weights": [True, 1.0, 1.0]}),
    ("anisotropic_gaussian", {"init": "given", "variances": ["1", 2.0, 3.0]}),
    ("anisotropic_gaussian", {"init": "given", "variances": [1e39, 2.0, 3.0]}),
])
def test_bad_settings_raise_user_errors(name, settings):
    with pytest.raises(UserError, match=name):
        build_prior({"name": name, **settings}, 3)


def test_bad_gin_settings_raise_user_errors():
    import gin
    gin.clear_config()
    try:
        gin.bind_parameter("student_t.nu", -1.0)
        with pytest.raises(UserError, match="student_t.nu"):
            make_prior("student_t", 3)
    finally:
        gin.clear_config()


# --- in a model -----------------------------------------------------------------------------------

@pytest.mark.parametrize("prior", [
    {"name": "student_t", "nu": 3.0},
    {"name": "sparse_mixture", "gamma": 0.8},
    {"name": "gaussian_mixture", "means": [[0, 0, 0, 0], [1, 1, 1, 1]]},
    {"name": "anisotropic_gaussian", "init": "given", "variances": GIVEN, "learned": True},
], ids=lambda p: p["name"])
def test_a_vae_with_the_prior_trains(prior):
    torch.manual_seed(0)
    model = VAE("conv", (1, 64, 64), 4, "bernoulli", prior=prior)
    x = (torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    loss, scalars = beta_vae_objective(model(x, torch.Generator().manual_seed(2)), beta=4.0)
    assert torch.isfinite(loss) and all(torch.isfinite(v) for v in scalars.values())
    loss.backward()
    gradients = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in gradients)
    assert any(g.abs().sum() > 0 for g in gradients)
    if prior.get("learned"):
        assert torch.isfinite(model.prior.logits.grad).all() and model.prior.logits.grad.abs().sum() > 0


def test_training_with_the_learned_pca_prior(tiny_dsprites, tmp_path):
    params = TINY_PARAMS + ["model.prior = 'anisotropic_gaussian'", "anisotropic_gaussian.learned = True",
                            "train.steps = 6", "train.log_every = 3", "train.checkpoint_every = 3"]
    run_dir, status = train_from_gin(gin_params=params, run_dir=tmp_path / "run", device="cpu", progress=False)
    assert status == "done"
    # independent PCA of the 384 tiny-dSprites images (fewer than 10,000: no subsample): square
    # roots of the top eigenvalues of the centred Gram matrix
    images = dlbench.data.get_dataset("dsprites").images
    x = images.reshape(len(images), -1).astype(np.float64)
    x -= x.mean(0)
    expected = np.sqrt(np.linalg.eigvalsh(x @ x.T)[::-1][:4])
    state = torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)
    prior_config = state["model_config"]["prior"]
    assert prior_config["name"] == "anisotropic_gaussian" and prior_config["learned"] is True
    np.testing.assert_allclose(prior_config["pca_singular_values"], expected, rtol=1e-4)
    # trained: the logits moved from their PCA initialisation, 2 log s
    logits = state["model"]["prior.logits"]
    initial = 2 * torch.log(torch.tensor(prior_config["pca_singular_values"]))
    assert not torch.allclose(logits, initial)
    # the finished run reloads without the data, learned values included
    model = load_trained_model(run_dir)
    assert torch.equal(model.prior.logits.detach(), logits)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["model"]["prior"]["name"] == "anisotropic_gaussian"
    assert record["model"]["prior"]["init"] == "pca" and record["model"]["prior"]["learned"] is True
    # run.json keeps the values the prior took from the data beside the identity resume compares
    assert record["model"]["prior"]["pca_singular_values"] is None
    np.testing.assert_allclose(record["prepared_prior"]["pca_singular_values"], expected, rtol=1e-4)
