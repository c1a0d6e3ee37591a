"""Lp-nested ISA prior (Stuehmer et al., 2020, eqs. 7-11): its density against numerical
integration, the standard normal and generalised normal closed forms; its exact sampler
(Algorithm 1) against the radial law, quadrature moments, the gennorm marginal and the subspace
independence; learned exponents, settings, errors, reproducibility and a pass through a VAE."""

import json
import math
import re

import gin
import numpy as np
import pytest
import torch
from scipy import stats
from scipy.integrate import cubature

from dlbench.errors import UserError
from dlbench.methods.beta_vae import beta_vae_objective
from dlbench.nn import VAE
from dlbench.nn.vae import build_vae
from dlbench.priors import PRIORS, build_prior, make_prior
from dlbench.priors.lp_nested_isa import LpNestedISA

F64 = torch.float64


def prior64(sizes, p0, p, learn_p=False):
    return LpNestedISA(p0=p0, subspace_sizes=sizes, p=p, learn_p=learn_p).double()


def log_density(prior, z):
    with torch.no_grad():
        return prior.log_prob(torch.as_tensor(z, dtype=F64)).numpy()


def nested_norms(z, sizes, p0, p):
    """(f(z), v(z)) of eq. 9 written directly in numpy: the subspace norms v_i and the root norm."""
    p = np.broadcast_to(np.asarray(p, dtype=float), (len(sizes),))
    blocks = np.split(np.abs(z), np.cumsum(sizes)[:-1], axis=-1)
    v = np.stack([(block ** p_i).sum(-1) ** (1.0 / p_i) for block, p_i in zip(blocks, p)], axis=-1)
    return (v ** p0).sum(-1) ** (1.0 / p0), v


def gennorm_under_convention(p):
    """The density proportional to exp(-|x|^p / p): scipy's gennorm with beta = p, scale p^(1/p)."""
    return stats.gennorm(p, scale=p ** (1.0 / p))


def integrate_2d(integrand):
    """Integral over R^2 of a vectorised integrand (points (N, 2) -> (N, k)), quadrant by
    quadrant with z = sign * t^3: the substitution smooths the |z_j|^p kinks on the axes.
    The mass beyond |z_j| = 40 is below exp(-40^1.5 / 1.5) for every prior tested (f >= max |z_j|)."""
    total = 0.0
    for signs in ([1, 1], [1, -1], [-1, 1], [-1, -1]):
        signs = np.array(signs, dtype=float)

        def substituted(t):
            return integrand(signs * t ** 3) * np.prod(3.0 * t ** 2, axis=-1, keepdims=True)

        result = cubature(substituted, [0.0, 0.0], [40.0 ** (1 / 3)] * 2, rtol=1e-10, atol=1e-13)
        assert result.status == "converged"
        total = total + result.estimate
    return total


# --- The density --------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes, p0, p", [
    ([2], 2.1, 2.2), ([2], 1.5, 0.8), ([2], 3.0, 1.3), ([1, 1], 2.1, 2.2), ([1, 1], 3.0, [1.3, 2.5]),
])
def test_density_integrates_to_one_in_2d(sizes, p0, p):
    prior = prior64(sizes, p0, p)
    total = integrate_2d(lambda z: np.exp(log_density(prior, z))[:, None])
    assert total[0] == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("sizes, p0, p", [
    ([2, 1], 2.1, 2.2), ([1, 2, 1], 1.5, 0.8), ([2, 2], 3.0, [1.3, 2.5]), ([3], 1.5, 0.8), ([2, 2], 2.1, [0.8, 2.0]),
])
def test_density_integrates_to_one_by_importance_sampling(sizes, p0, p):
    """E_q[p(z) / q(z)] = 1 for a multivariate Student-t proposal q, whose polynomial tails are
    heavier than the prior's exp(-f^p0 / p0); tolerance from the estimator's standard error."""
    d, n = sum(sizes), 100_000
    proposal = stats.multivariate_t(loc=np.zeros(d), shape=np.eye(d), df=5)
    z = proposal.rvs(size=n, random_state=np.random.RandomState(0))
    weights = np.exp(log_density(prior64(sizes, p0, p), z) - proposal.logpdf(z))
    estimate, standard_error = weights.mean(), weights.std() / math.sqrt(n)
    assert standard_error < 0.005   # a test able to see a 2% error in the normaliser
    assert abs(estimate - 1.0) < 5 * standard_error


def gaussian_test_points(d, seed):
    z = 2.0 * np.random.RandomState(seed).normal(size=(20, d))
    z[0] = 0.0         # the origin, where eq. 7 alone would be 0 / 0
    z[1, ::2] = 0.0    # some coordinates exactly zero
    return z


@pytest.mark.parametrize("sizes", [[1], [5], [2, 3], [1, 1, 1, 1], [4, 4, 4, 4, 4]])
def test_all_exponents_two_is_the_standard_normal(sizes):
    d = sum(sizes)
    z = gaussian_test_points(d, seed=d)
    expected = stats.multivariate_normal(np.zeros(d), np.eye(d)).logpdf(z)
    np.testing.assert_allclose(log_density(prior64(sizes, 2.0, 2.0), z), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("p", [0.8, 1.5, 2.2, 3.0])
def test_single_subspace_with_p_equal_p0_is_a_generalised_normal_product(p):
    z = gaussian_test_points(3, seed=7)
    expected = gennorm_under_convention(p).logpdf(z).sum(-1)
    np.testing.assert_allclose(log_density(prior64([3], p, p), z), expected, rtol=0, atol=1e-10)


def test_subspaces_of_size_one_give_a_generalised_normal_product_whatever_their_exponents():
    z = gaussian_test_points(4, seed=3)
    expected = gennorm_under_convention(1.5).logpdf(z).sum(-1)
    np.testing.assert_allclose(log_density(prior64([1, 1, 1, 1], 1.5, [0.5, 0.8, 2.0, 7.0]), z), expected,
                               rtol=0, atol=1e-10)


def test_density_depends_on_z_through_the_nested_norm():
    """log p(z) = c - f(z)^p0 / p0 (with s = p0): differences between points come from f alone,
    f computed independently; and the sign of each coordinate does not matter."""
    sizes, p0, p = [2, 3, 1], 1.5, [0.8, 2.5, 1.0]
    prior = prior64(sizes, p0, p)
    z = np.random.RandomState(0).standard_t(3, size=(50, 6))
    f, _ = nested_norms(z, sizes, p0, p)
    log_p = log_density(prior, z)
    np.testing.assert_allclose(log_p - log_p[0], -(f ** p0 - f[0] ** p0) / p0, rtol=1e-12, atol=1e-12)
    flips = np.where(np.random.RandomState(1).rand(*z.shape) < 0.5, -1.0, 1.0)
    np.testing.assert_allclose(log_density(prior, flips * z), log_p, rtol=1e-13)
    np.testing.assert_allclose(prior.nested_norm(torch.as_tensor(z)).numpy(), f, rtol=1e-12)


def test_log_prob_and_gradients_are_finite_at_zeros_and_extremes():
    prior = LpNestedISA(p0=1.5, subspace_sizes=[2, 2], p=[0.8, 6.0], learn_p=True)
    z = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, -2.0], [1e-30, 0.0, 3.0, 0.0],
                      [50.0, -40.0, 30.0, 60.0]], requires_grad=True)
    log_p = prior.log_prob(z)
    assert torch.isfinite(log_p).all()
    log_p.sum().backward()
    assert torch.isfinite(z.grad).all() and torch.isfinite(prior.log_p.grad).all()


def test_gradients_in_z_and_in_the_exponents_match_finite_differences():
    """Autograd through lp_norm (z) and through lgamma and the powers (log p_i) against central
    differences of the density of fixed-exponent priors."""
    z = torch.tensor(np.random.RandomState(0).normal(size=(4, 5)), dtype=F64, requires_grad=True)
    exponents = [1.3, 2.5]
    prior = prior64([2, 3], 2.1, exponents, learn_p=True)
    assert torch.autograd.gradcheck(prior.log_prob, (z,))
    prior.log_prob(z).sum().backward()
    h = 1e-6
    for i, p_i in enumerate(exponents):
        up, down = list(exponents), list(exponents)
        up[i], down[i] = p_i + h, p_i - h
        d_by_dp = (log_density(prior64([2, 3], 2.1, up), z.detach()).sum()
                   - log_density(prior64([2, 3], 2.1, down), z.detach()).sum()) / (2 * h)
        # The parameter is log p_i: d/d log p_i = p_i d/dp_i.
        assert prior.log_p.grad[i].item() == pytest.approx(p_i * d_by_dp, rel=1e-6)


# --- The sampler --------------------------------------------------------------------------------

def draw(prior, n, seed):
    return prior.sample(n, generator=torch.Generator().manual_seed(seed)).numpy()


def test_sampled_radii_follow_the_radial_law():
    """f(z)^p0 / p0 ~ Gamma(n / p0) (eq. 11 with s = p0), and each subspace norm v_i^p0 / p0 ~
    Gamma(n_i / p0), since the subspaces are independent ISA factors."""
    sizes, p0, p = [2, 3, 1], 1.5, [0.8, 2.5, 1.0]
    z = draw(prior64(sizes, p0, p), 20_000, seed=0)
    f, v = nested_norms(z, sizes, p0, p)
    assert stats.kstest(f ** p0 / p0, stats.gamma(sum(sizes) / p0).cdf).pvalue > 1e-3
    for i, size in enumerate(sizes):
        assert stats.kstest(v[:, i] ** p0 / p0, stats.gamma(size / p0).cdf).pvalue > 1e-3


def test_a_subspace_of_size_one_is_generalised_normal():
    z = draw(prior64([1, 3], 1.5, [0.5, 0.8]), 20_000, seed=1)
    law = gennorm_under_convention(1.5)
    assert stats.kstest(z[:, 0], law.cdf).pvalue > 1e-3
    assert z[:, 0].var() == pytest.approx(law.var(), abs=5 * math.sqrt(law.moment(4) / 20_000))


@pytest.mark.parametrize("p0, p", [(1.5, 0.8), (3.0, 1.3)])
def test_sample_moments_match_quadrature_of_the_density(p0, p):
    prior = prior64([2], p0, p)

    def moments(z):
        density = np.exp(log_density(prior, z))
        return np.stack([density, density * z[:, 0] ** 2, density * np.abs(z[:, 0]), density * z[:, 0] * z[:, 1]], -1)

    mass, second, first_abs, cross = integrate_2d(moments)
    assert mass == pytest.approx(1.0, abs=1e-8) and cross == pytest.approx(0.0, abs=1e-8)
    n = 40_000
    z = draw(prior, n, seed=2)
    for values, expected in [(z[:, 0] ** 2, second), (np.abs(z[:, 0]), first_abs), (z[:, 0] * z[:, 1], cross),
                             (z[:, 1] ** 2, second)]:
        assert abs(values.mean() - expected) < 5 * values.std() / math.sqrt(n)


def test_subspaces_are_independent_and_dependent_within():
    """|z| is uncorrelated across subspaces; within a subspace whose exponent differs from p0 the
    coordinates are dependent (the prior is not a product there)."""
    n = 40_000
    z = draw(prior64([2, 2], 3.0, [1.3, 2.5]), n, seed=3)
    corr = np.corrcoef(np.abs(z).T)
    bound = 4.0 / math.sqrt(n)
    for i, j in [(0, 2), (0, 3), (1, 2), (1, 3)]:
        assert abs(corr[i, j]) < bound
    assert abs(corr[0, 1]) > 10 * bound


def test_sampling_is_reproducible_with_a_generator_and_follows_dtype():
    prior = LpNestedISA(latent_dim=20)
    a, b = prior.sample(64, torch.Generator().manual_seed(5)), prior.sample(64, torch.Generator().manual_seed(5))
    assert a.dtype == torch.float32 and a.shape == (64, 20)
    assert torch.equal(a, b)
    assert not torch.equal(a, prior.sample(64, torch.Generator().manual_seed(6)))
    assert prior.double().sample(3, torch.Generator().manual_seed(5)).dtype == F64


def test_sampler_survives_large_exponents():
    """Gamma(1/p) draws underflow in plain arithmetic for large p; the sampler works in log space."""
    z = LpNestedISA(p0=2.0, subspace_sizes=[1, 3], p=[50.0, 80.0]).sample(5000, torch.Generator().manual_seed(0))
    assert torch.isfinite(z).all()


# --- Learned exponents, settings, errors ---------------------------------------------------------

def test_learned_exponents_get_gradients_stay_positive_and_are_saved():
    prior = LpNestedISA(latent_dim=8, p0=2.1, subspace_sizes=[4, 4], p=2.0, learn_p=True)
    assert "log_p" in prior.state_dict() and len(list(prior.parameters())) == 1
    torch.testing.assert_close(prior.exponents(), torch.tensor([2.0, 2.0]))
    z = torch.randn(256, 8, generator=torch.Generator().manual_seed(0)) * 1.5
    for _ in range(3):   # plain gradient steps on the negative log-likelihood of wide data
        prior.zero_grad()
        (-prior.log_prob(z).mean()).backward()
        assert torch.isfinite(prior.log_p.grad).all() and (prior.log_p.grad != 0).all()
        with torch.no_grad():
            prior.log_p -= 0.05 * prior.log_p.grad
    assert (prior.exponents() > 0).all() and not torch.allclose(prior.exponents(), torch.tensor([2.0, 2.0]))
    assert prior.settings()["p"] == [2.0, 2.0]   # settings keep the initial values
    rebuilt = build_prior(prior.config(), 8)
    rebuilt.load_state_dict(prior.state_dict())
    torch.testing.assert_close(rebuilt.log_prob(z), prior.log_prob(z))


def test_fixed_exponents_are_not_parameters():
    prior = LpNestedISA(latent_dim=20)
    assert list(prior.parameters()) == [] and dict(prior.state_dict()) == {}


@pytest.mark.parametrize("config, latent_dim", [
    ({"name": "lp_nested_isa", "p0": 2.1, "subspace_sizes": [4] * 5, "p": [2.2] * 5, "learn_p": False}, 20),
    ({"name": "lp_nested_isa", "p0": 1.5, "subspace_sizes": [1, 2], "p": [0.8, 3.0], "learn_p": True}, 3),
])
def test_config_round_trips_through_build_prior(config, latent_dim):
    prior = build_prior(config, latent_dim)
    assert prior.config() == config and json.loads(json.dumps(prior.config())) == config
    assert PRIORS["lp_nested_isa"] is LpNestedISA and prior.latent_dim == latent_dim
    z = torch.randn(5, latent_dim)
    torch.testing.assert_close(build_prior(prior.config(), latent_dim).log_prob(z), prior.log_prob(z))


def test_scalar_p_and_keyword_call_form():
    prior = LpNestedISA(p0=2.1, subspace_sizes=(3, 2), p=2.2)
    assert prior.latent_dim == 5 and prior.settings() == {
        "p0": 2.1, "subspace_sizes": [3, 2], "p": [2.2, 2.2], "learn_p": False}


def test_gin_bindings_reach_make_prior():
    gin.clear_config()
    try:
        gin.parse_config(["lp_nested_isa.p0 = 1.5", "lp_nested_isa.subspace_sizes = [2, 2]",
                          "lp_nested_isa.p = [0.8, 2.5]", "lp_nested_isa.learn_p = True"])
        prior = make_prior("lp_nested_isa", 4)
        assert prior.settings() == {"p0": 1.5, "subspace_sizes": [2, 2], "p": [0.8, 2.5], "learn_p": True}
        with pytest.raises(UserError, match="model.latent_dim .5. must equal the sum of lp_nested_isa.subspace_sizes .4"):
            make_prior("lp_nested_isa", 5)
    finally:
        gin.clear_config()


@pytest.mark.parametrize("kwargs, message", [
    ({"latent_dim": 10}, r"model.latent_dim \(10\) must equal the sum of lp_nested_isa.subspace_sizes \(20"),
    ({"p0": 0.0}, "p0 must be a number > 0"),
    ({"p0": float("nan")}, "p0 must be a finite number > 0"),
    ({"p0": 1e300}, "p0 must be a finite number > 0 that float32 holds"),  # had overflowed in a traceback
    ({"p": 1e39}, "p must be positive numbers that float32 holds"),
    ({"p": -1.0}, "p must be positive"),
    ({"p": [2.0, 2.0]}, "p has 2 exponents for 5 subspaces"),
    ({"p": [2.0, 0.0, 2.0, 2.0, 2.0]}, "p must be positive"),
    ({"subspace_sizes": [2, 0]}, "subspace_sizes must be a non-empty list of positive integers"),
    ({"subspace_sizes": [2.5, 2]}, "subspace_sizes must be a non-empty list of positive integers"),
    ({"subspace_sizes": []}, "subspace_sizes must be a non-empty list of positive integers"),
    ({"subspace_sizes": 4}, "subspace_sizes must be a non-empty list of positive integers"),
    ({"learn_p": "yes"}, "learn_p must be True or False"),
])
def test_bad_settings_raise_one_line_user_errors(kwargs, message):
    with pytest.raises(UserError) as info:
        LpNestedISA(**kwargs)
    # Our message is its first line; gin appends a line naming the configurable, which the
    # command-line front ends fold into one (dlbench.config._one_line).
    assert re.search(message, str(info.value).splitlines()[0])


# --- On a model ----------------------------------------------------------------------------------

@pytest.mark.parametrize("learn_p", [False, True])
def test_vae_with_the_isa_prior_gives_a_finite_loss_and_gradients(learn_p):
    torch.manual_seed(0)
    prior = {"name": "lp_nested_isa", "p0": 2.1, "subspace_sizes": [4] * 5, "p": [2.2] * 5, "learn_p": learn_p}
    model = VAE("conv", (1, 64, 64), 20, "bernoulli", prior=prior)
    x = (torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    loss, scalars = beta_vae_objective(model(x, torch.Generator().manual_seed(1)), beta=1.0)
    assert torch.isfinite(loss) and torch.isfinite(scalars["kl"])
    loss.backward()
    grads = [param.grad for param in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    prior_parameters = list(model.prior.parameters())
    assert len(prior_parameters) == int(learn_p)
    assert all(torch.isfinite(param.grad).all() and (param.grad != 0).all() for param in prior_parameters)
    assert build_vae(model.config).prior.config() == prior
    with pytest.raises(UserError, match="must equal the sum"):
        VAE("conv", (1, 64, 64), 10, "bernoulli", prior=prior)


def test_the_paper_parameters_read_positionally_from_the_package():
    from dlbench.priors import LpNestedISA as exported

    prior = exported(2.1, [4, 4, 4, 4, 4], 2.2)
    assert prior.latent_dim == 20 and prior.p0 == 2.1 and prior.subspace_sizes == [4] * 5
