"""iwae's exact_log_px: for a dataset that knows its own density (linear_gaussian), the mean exact
log p(x) over the observations the bound was computed on, checked against scipy's multivariate
normal density of the observations the metric handed to the model; with the exact posterior as
the encoder every importance weight is p(x), so the bound equals it."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.metrics import evaluate
from tests.toy_data import ToyData
from tests.toy_model import LinearGaussianModel

ORTHOGONAL = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])  # A^T A diagonal: diagonal posterior
PAPER = 0.5 * (1 + np.eye(5))[:, :2]  # A_ij = (1 + delta_ij) / 2


class Recording:
    """A model's function that records every batch of observations it is given."""

    def __init__(self, fn):
        self.fn, self.seen = fn, []

    def __call__(self, observations, *args):
        self.seen.append(np.asarray(observations, dtype=np.float64))
        return self.fn(observations, *args)

    def observations(self):
        return np.concatenate(self.seen)


def test_exact_log_px_is_the_mean_density_of_the_observations_the_bound_used():
    data = LinearGaussian(mixing_matrix=PAPER.tolist())
    model = LinearGaussianModel(PAPER * 0.8)
    weights = Recording(model.log_weights_fn)
    result = evaluate("iwae", data, None, seed=3, log_weights_fn=weights, num_points=300, num_samples=20,
                      batch_size=128)
    x = weights.observations()
    assert x.shape == (300, 5)
    log_px = multivariate_normal(np.zeros(5), PAPER @ PAPER.T + np.eye(5)).logpdf(x)
    assert result["exact_log_px"] == pytest.approx(log_px.mean(), rel=1e-12)
    assert result["exact_log_px_stderr"] == pytest.approx(log_px.std(ddof=1) / np.sqrt(300), rel=1e-10)
    # no model scores above the data's own law on average (Gibbs), here by a wide margin
    assert result["iwae"] < result["exact_log_px"]


def test_with_the_exact_posterior_the_bound_is_the_exact_log_px():
    data = LinearGaussian(mixing_matrix=ORTHOGONAL.tolist())
    model = LinearGaussianModel(ORTHOGONAL)  # the data's own model, with its exact (diagonal) posterior
    result = evaluate("iwae", data, None, log_weights_fn=model.log_weights_fn, num_points=200, num_samples=5)
    assert result["iwae"] == pytest.approx(result["exact_log_px"], abs=1e-9)
    assert result["elbo_estimate"] == pytest.approx(result["exact_log_px"], abs=1e-9)


def test_datasets_without_a_density_report_no_exact_log_px():
    data = ToyData()
    model = LinearGaussianModel(np.eye(3))
    result = evaluate("iwae", data, None, log_weights_fn=model.log_weights_fn, num_points=20, num_samples=3)
    assert not any(key.startswith("exact_log_px") for key in result)


def test_elbo_and_iwae_see_the_same_observations_for_the_same_points_and_seed():
    """The reproduction compares the ELBO, the IWAE bound and the exact log p(x) point for point."""
    data = LinearGaussian()
    model = LinearGaussianModel(data.mixing_matrix)
    terms, weights = Recording(model.elbo_terms_fn), Recording(model.log_weights_fn)
    evaluate("elbo", data, None, seed=1, elbo_terms_fn=terms, num_points=2500)
    evaluate("iwae", data, None, seed=1, log_weights_fn=weights, num_points=2500, num_samples=2)
    assert np.array_equal(terms.observations(), weights.observations())
