"""Reconstruction log-likelihood: independent recomputation, closed form, seeding, errors."""

import inspect

import numpy as np
import pytest

from dlbench.errors import UserError
from dlbench.metrics import evaluate, recon_ll
from tests.toy_data import ToyData

SCALE = 0.25                       # ToyData((3, 4, 5)) pixels in {0, .25, .5, .75, 1}


def bernoulli_ll(p):
    """log p(x) of fixed per-channel Bernoulli probabilities p: ignores z entirely."""
    p = np.asarray(p, dtype=np.float64)
    return lambda x: (x.reshape(len(x), -1) * np.log(p) + (1 - x.reshape(len(x), -1)) * np.log1p(-p)).sum(1)


class RecordingLL:
    def __init__(self, fn):
        self.fn, self.batches = fn, []

    def __call__(self, x):
        self.batches.append(np.array(x))
        return self.fn(x)

    @property
    def observations(self):
        return np.concatenate(self.batches)


def nonlinear_ll(x):
    flat = x.reshape(len(x), -1).astype(np.float64)
    return -np.sum((flat - 0.3) ** 2, 1) * 10 + np.sin(7 * flat).sum(1)


def test_mean_and_stderr_equal_independent_computation_over_the_seeded_set():
    data = ToyData((3, 4, 5), pixel_scale=SCALE)
    ll = RecordingLL(nonlinear_ll)
    result = evaluate("recon_ll", data, None, seed=3, log_likelihood_fn=ll, num_points=2500, batch_size=1000)
    # the evaluation set is data.sample(num_points, RandomState(seed)), redrawn here
    observations = data.sample_observations(2500, np.random.RandomState(3))
    np.testing.assert_array_equal(ll.observations, observations)
    values = nonlinear_ll(observations)
    assert result["recon_ll"] == pytest.approx(values.mean(), rel=1e-12)
    assert result["recon_ll_stderr"] == pytest.approx(values.std(ddof=1) / np.sqrt(2500), rel=1e-12)
    assert result["num_points"] == 2500 and result["likelihood"] == "bernoulli"
    assert result["z_sampled"] is True
    assert [len(b) for b in ll.batches] == [1000, 1000, 500]


def test_same_seed_same_result_different_seed_different_set():
    data = ToyData((3, 4, 5), pixel_scale=SCALE)
    runs = {}
    for seed in (0, 0, 1):
        ll = RecordingLL(nonlinear_ll)
        runs.setdefault(seed, []).append(
            (evaluate("recon_ll", data, None, seed=seed, log_likelihood_fn=ll, num_points=500), ll.observations))
    (r0, x0), (r0b, x0b) = runs[0]
    (r1, x1), = runs[1]
    assert r0 == r0b
    np.testing.assert_array_equal(x0, x0b)
    assert not np.array_equal(x0, x1)
    assert r0["recon_ll"] != r1["recon_ll"]


def test_bernoulli_with_fixed_probabilities_matches_closed_form():
    # log p(x) = sum_c x_c log p_c + (1 - x_c) log(1 - p_c) is linear in x, so its mean over the
    # dataset is the same expression at the dataset's mean image, and, the channels being
    # independent factors, its variance is sum_c Var(x_c) (log p_c - log(1 - p_c))^2.
    data = ToyData((3, 4, 5), pixel_scale=SCALE)
    p = np.array([0.2, 0.55, 0.9])
    images = data.images.reshape(len(data), -1).astype(np.float64) * SCALE     # the whole dataset
    mean_image, var_image = images.mean(0), images.var(0)
    exact_mean = float(np.sum(mean_image * np.log(p) + (1 - mean_image) * np.log1p(-p)))
    exact_sd = float(np.sqrt(np.sum(var_image * (np.log(p) - np.log1p(-p)) ** 2)))
    # the closed forms of the uniform-factor moments agree with the images
    sizes = np.array([3, 4, 5])
    np.testing.assert_allclose(mean_image, SCALE * (sizes - 1) / 2)
    np.testing.assert_allclose(var_image, SCALE ** 2 * (sizes ** 2 - 1) / 12)

    result = evaluate("recon_ll", data, None, seed=0, log_likelihood_fn=bernoulli_ll(p), num_points=10000)
    # sampling error only: a mean of 10000 i.i.d. draws, bound at 5 standard errors
    assert abs(result["recon_ll"] - exact_mean) < 5 * exact_sd / np.sqrt(10000)
    assert result["recon_ll_stderr"] == pytest.approx(exact_sd / np.sqrt(10000), rel=0.05)


def test_without_log_likelihood_fn_explains_it_needs_a_decoder():
    data = ToyData((3, 4))
    with pytest.raises(UserError, match="decoder"):
        evaluate("recon_ll", data, lambda x: x.reshape(len(x), -1))
    with pytest.raises(UserError, match="decoder"):
        recon_ll.compute_recon_ll(data, None, np.random.RandomState(0))


def test_bad_log_likelihood_output_is_a_user_error():
    data = ToyData((3, 4))
    with pytest.raises(UserError, match="shape"):
        evaluate("recon_ll", data, None, log_likelihood_fn=lambda x: np.zeros((len(x), 2)), num_points=10)
    with pytest.raises(UserError, match="non-finite"):
        evaluate("recon_ll", data, None, log_likelihood_fn=lambda x: np.full(len(x), np.nan), num_points=10)


def test_defaults():
    params = inspect.signature(recon_ll.compute_recon_ll).parameters
    assert params["num_points"].default == 10000
    assert params["likelihood"].default == "bernoulli"
    assert params["log_likelihood_fn"].default is None
