"""aggregate_kl (KL between the aggregate posterior q(z) and the prior p(z), both ways) against
closed forms (a Gaussian q(z) against a Gaussian prior) and two-dimensional quadrature (a mixture
q(z) against the Gaussian-mixture prior of Mathieu et al.)."""

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from dlbench.data.pinwheel import Pinwheel
from dlbench.errors import UserError
from dlbench.metrics import evaluate
from tests.toy_data import SampledToyData, ToyData, factors_of_observations


def gaussian_encoder(data, mean_of_factors, std):
    """encode_fn with mean = mean_of_factors(factors) and a constant standard deviation per dimension."""
    def encode_fn(observations):
        mean = np.asarray(mean_of_factors(factors_of_observations(data, observations)), dtype=np.float64)
        return mean, np.broadcast_to(2 * np.log(std), mean.shape).copy()
    return encode_fn


class DiagonalGaussianPrior:
    """N(mean, diag(variance)) in numpy: the two prior functions the metric takes."""

    def __init__(self, mean, variance, seed=0):
        self.mean, self.variance = np.asarray(mean, float), np.asarray(variance, float)
        self.rng = np.random.default_rng(seed)

    def log_prior_fn(self, z):
        return multivariate_normal(self.mean, np.diag(self.variance)).logpdf(z)

    def prior_sample_fn(self, num):
        return self.mean + np.sqrt(self.variance) * self.rng.standard_normal((num, len(self.mean)))


class MixturePrior:
    """Mathieu et al.'s eq. 9 in numpy: four equal components at the corners of the unit square, variance 0.03."""

    means = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    variance = 0.03

    def __init__(self, seed=0):
        self.rng = np.random.default_rng(seed)

    def log_prior_fn(self, z):
        per_component = [multivariate_normal(m, self.variance * np.eye(2)).logpdf(z) for m in self.means]
        return logsumexp(per_component, axis=0) - np.log(len(self.means))

    def prior_sample_fn(self, num):
        component = self.rng.integers(len(self.means), size=num)
        return self.means[component] + np.sqrt(self.variance) * self.rng.standard_normal((num, 2))


def gaussian_kl(mean0, var0, mean1, var1):
    """KL(N(mean0, diag var0) || N(mean1, diag var1)), closed form."""
    return 0.5 * np.sum(var0 / var1 + (mean1 - mean0) ** 2 / var1 - 1 + np.log(var1 / var0))


def test_a_gaussian_aggregate_posterior_against_a_gaussian_prior_matches_the_closed_forms():
    # every observation encodes to the same Gaussian, so q(z) is that Gaussian
    data = ToyData((3, 4))
    q_mean, q_std = np.array([0.4, -0.3]), np.array([0.7, 1.3])
    prior = DiagonalGaussianPrior([0.1, 0.2], [1.5, 0.6])
    encode_fn = gaussian_encoder(data, lambda f: np.broadcast_to(q_mean, (len(f), 2)), q_std)
    result = evaluate("aggregate_kl", data, None, seed=3, encode_fn=encode_fn, log_prior_fn=prior.log_prior_fn,
                      prior_sample_fn=prior.prior_sample_fn, num_samples=20000)
    forward = gaussian_kl(q_mean, q_std ** 2, prior.mean, prior.variance)
    backward = gaussian_kl(prior.mean, prior.variance, q_mean, q_std ** 2)
    assert forward > 0.3 and backward > 0.3  # far enough from zero that a sign or factor error shows
    assert result["kl_qz_pz"] == pytest.approx(forward, abs=4 * result["kl_qz_pz_stderr"])
    assert result["kl_pz_qz"] == pytest.approx(backward, abs=4 * result["kl_pz_qz_stderr"])
    assert result["kl_qz_pz_stderr"] < 0.02 and result["kl_pz_qz_stderr"] < 0.02
    assert result["points"] == "full_grid" and result["num_points"] == 12 and result["num_samples"] == 20000


def test_q_equal_to_the_prior_gives_zero_both_ways():
    data = ToyData((2, 2))
    prior = DiagonalGaussianPrior([0.0, 0.0], [1.0, 1.0])
    encode_fn = gaussian_encoder(data, lambda f: np.zeros((len(f), 2)), np.ones(2))
    result = evaluate("aggregate_kl", data, None, encode_fn=encode_fn, log_prior_fn=prior.log_prior_fn,
                      prior_sample_fn=prior.prior_sample_fn, num_samples=500)
    assert result["kl_qz_pz"] == pytest.approx(0.0, abs=1e-12)
    assert result["kl_pz_qz"] == pytest.approx(0.0, abs=1e-12)


def test_a_mixture_aggregate_posterior_against_the_mixture_prior_matches_quadrature():
    data = ToyData((2, 3))
    std = 0.3
    weights = np.array([[0.5, 0.2], [-0.1, 0.4]])
    encode_fn = gaussian_encoder(data, lambda f: f @ weights.T, np.full(2, std))
    means = data.factors_of(np.arange(len(data))) @ weights.T
    prior = MixturePrior(seed=1)
    result = evaluate("aggregate_kl", data, None, seed=0, encode_fn=encode_fn, log_prior_fn=prior.log_prior_fn,
                      prior_sample_fn=prior.prior_sample_fn, num_samples=40000)

    # both densities on a fine grid, the integrals as Riemann sums (the tails beyond are below 1e-9)
    axis = np.linspace(-2.5, 3.5, 301)  # steps of 0.02, a tenth of the narrowest standard deviation
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    log_q = logsumexp([multivariate_normal(m, std ** 2 * np.eye(2)).logpdf(grid) for m in means], axis=0) \
        - np.log(len(means))
    log_p = prior.log_prior_fn(grid)
    cell = (axis[1] - axis[0]) ** 2
    forward = np.sum(np.exp(log_q) * (log_q - log_p)) * cell
    backward = np.sum(np.exp(log_p) * (log_p - log_q)) * cell
    assert np.sum(np.exp(log_q)) * cell == pytest.approx(1.0, abs=1e-6)
    assert result["kl_qz_pz"] == pytest.approx(forward, abs=4 * result["kl_qz_pz_stderr"] + 1e-3)
    assert result["kl_pz_qz"] == pytest.approx(backward, abs=4 * result["kl_pz_qz_stderr"] + 1e-3)
    assert forward > 0.5 and backward > 0.5 and abs(forward - backward) > 0.1  # the two directions differ


def test_a_dataset_without_a_grid_averages_over_every_observation_it_holds():
    data = Pinwheel()
    seen = []

    def encode_fn(observations):
        seen.append(np.array(observations))
        return np.asarray(observations, dtype=np.float64), np.full(observations.shape, np.log(0.01))

    prior = MixturePrior()
    result = evaluate("aggregate_kl", data, None, encode_fn=encode_fn, log_prior_fn=prior.log_prior_fn,
                      prior_sample_fn=prior.prior_sample_fn, num_samples=100, batch_size=150)
    assert [len(batch) for batch in seen] == [150, 150, 100]
    np.testing.assert_array_equal(np.concatenate(seen), data.images)
    assert result["points"] == "dataset" and result["num_points"] == 400


def test_a_dataset_without_held_observations_needs_num_points():
    data = SampledToyData((3, 4))
    prior = DiagonalGaussianPrior([0.0] * 2, [1.0] * 2)
    functions = dict(encode_fn=gaussian_encoder(data, lambda f: f[:, :2] * 0.5, np.ones(2)),
                     log_prior_fn=prior.log_prior_fn, prior_sample_fn=prior.prior_sample_fn)
    with pytest.raises(UserError, match="num_points"):
        evaluate("aggregate_kl", data, None, num_samples=100, **functions)
    result = evaluate("aggregate_kl", data, None, num_samples=100, num_points=50, **functions)
    assert result["points"] == "sampled" and result["num_points"] == 50


def test_the_model_functions_are_required_and_checked():
    data = ToyData((2, 2))
    prior = DiagonalGaussianPrior([0.0] * 2, [1.0] * 2)
    encode_fn = gaussian_encoder(data, lambda f: f * 1.0, np.ones(2))
    with pytest.raises(UserError, match="needs the model's encoder and prior"):
        evaluate("aggregate_kl", data, None, encode_fn=encode_fn)
    with pytest.raises(UserError, match=r"prior_sample_fn must return \(10, 2\)"):
        evaluate("aggregate_kl", data, None, encode_fn=encode_fn, log_prior_fn=prior.log_prior_fn,
                 prior_sample_fn=lambda n: np.zeros((n, 3)), num_samples=10)
    with pytest.raises(UserError, match="log_prior_fn .* non-finite"):
        evaluate("aggregate_kl", data, None, encode_fn=encode_fn, log_prior_fn=lambda z: np.full(len(z), np.nan),
                 prior_sample_fn=prior.prior_sample_fn, num_samples=10)


def test_a_trained_models_prior_functions_draw_and_score_its_prior():
    from dlbench.model_functions import model_functions
    from dlbench.nn.vae import VAE

    model = VAE("pinwheel", (2,), 2, "gaussian", {"name": "gaussian_mixture"})
    functions = model_functions(model, "cpu", seed=5)
    draws = functions["prior_sample_fn"](20000)
    assert draws.shape == (20000, 2) and draws.dtype == np.float64
    # the mixture's moments: mean (0.5, 0.5), variance 0.25 + 0.03 per axis, no correlation
    assert draws.mean(0) == pytest.approx([0.5, 0.5], abs=4 * np.sqrt(0.28 / 20000))
    assert np.cov(draws.T) == pytest.approx(np.diag([0.28, 0.28]), abs=0.01)
    # seeded by the evaluation seed: the same draws for the same seed, others for another
    np.testing.assert_array_equal(model_functions(model, "cpu", seed=5)["prior_sample_fn"](20000), draws)
    assert not np.allclose(model_functions(model, "cpu", seed=6)["prior_sample_fn"](20000), draws)
    z = np.array([[0.1, 0.9], [2.0, -1.0]])
    # (the mixture's log-weights are float32 buffers: log(1/4) rounded, a constant 4e-9 nats off)
    np.testing.assert_allclose(functions["log_prior_fn"](z), MixturePrior().log_prior_fn(z), rtol=0, atol=1e-8)
