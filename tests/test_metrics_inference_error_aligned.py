"""inference_error's true_inference_error_aligned: the TIE of the latents matched to the sources
by the signed permutation that makes it smallest (the objective cannot tell them apart), against
closed forms: zero for the exact posterior whatever order and signs its latents come in, and the
KL of a diagonal Gaussian to the correlated posterior computed here by hand."""

import itertools

import numpy as np
import pytest

from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.metrics import evaluate
from dlbench.metrics.inference_error import MAX_ALIGNED_SOURCES
from tests.toy_model import LinearGaussianModel

ORTHOGONAL = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
PAPER = 0.5 * (1 + np.eye(4))[:, :2]
SWAP_AND_FLIP = np.array([[0.0, -1.0], [1.0, 0.0]])  # latent 0 = -source 1, latent 1 = source 0


def shuffled_exact_posterior(mixing, signed_permutation):
    """A model whose latents are the exact posterior's means in another order and sign, with the
    diagonal of the posterior covariance (reordered alike) as variances."""
    exact = LinearGaussianModel(mixing)
    order = np.abs(signed_permutation).argmax(axis=1)
    return LinearGaussianModel(mixing, encoder=signed_permutation @ exact.posterior_map,
                               encoder_logvar=np.log(np.diag(exact.posterior_cov))[order])


def inference_error(data, model, **params):
    return evaluate("inference_error", data, None, encode_fn=model.encode_fn, log_weights_fn=model.log_weights_fn,
                    num_points=200, num_samples=10, **params)


def test_exact_posterior_in_another_order_and_sign_is_aligned_to_zero_error():
    data = LinearGaussian(mixing_matrix=ORTHOGONAL.tolist())
    result = inference_error(data, shuffled_exact_posterior(ORTHOGONAL, SWAP_AND_FLIP))
    assert result["true_inference_error"] > 1.0  # compared latent for latent, the sources are swapped
    assert result["true_inference_error_aligned"] == pytest.approx(0.0, abs=1e-12)
    assert result["alignment"] == "s0=+z1,s1=-z0"  # source 0 is latent 1, source 1 is minus latent 0


def test_aligned_error_of_a_diagonal_approximation_is_its_closed_form():
    data = LinearGaussian(mixing_matrix=PAPER.tolist())
    result = inference_error(data, shuffled_exact_posterior(PAPER, SWAP_AND_FLIP))
    cov = np.linalg.inv(PAPER.T @ PAPER + np.eye(2))
    precision = np.linalg.inv(cov)
    # KL(N(m, diag cov) || N(m, cov)), the same for every x once the latents are matched
    by_hand = 0.5 * (np.sum(np.diag(precision) * np.diag(cov)) - 2 + np.linalg.slogdet(cov)[1]
                     - np.sum(np.log(np.diag(cov))))
    assert result["true_inference_error_aligned"] == pytest.approx(by_hand, rel=1e-10)
    assert result["true_inference_error"] > by_hand + 1.0


def test_the_aligned_error_is_the_smallest_over_every_signed_permutation():
    rng = np.random.default_rng(4)
    data = LinearGaussian(observed_dim=6, num_sources=3, seed=2)
    model = LinearGaussianModel(data.mixing_matrix, encoder=rng.normal(size=(3, 6)), encoder_logvar=[-1.0, -2.0, -0.5])
    result = inference_error(data, model)
    candidates = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            matrix = np.diag(signs) @ np.eye(3)[list(order)]
            shuffled = LinearGaussianModel(data.mixing_matrix, encoder=matrix @ model.E,
                                           encoder_logvar=model.logvar[list(order)])
            candidates.append(inference_error(data, shuffled)["true_inference_error"])
    assert len(candidates) == 48
    assert result["true_inference_error_aligned"] == pytest.approx(min(candidates), rel=1e-10)
    assert result["true_inference_error_aligned"] <= result["true_inference_error"]


def test_too_many_sources_to_align_says_why():
    k = MAX_ALIGNED_SOURCES + 1
    mixing = np.vstack([np.eye(k), np.ones((1, k))])
    data = LinearGaussian(mixing_matrix=mixing.tolist())
    result = inference_error(data, LinearGaussianModel(mixing))
    assert "true_inference_error_aligned" not in result
    assert "more than 4" in result["true_inference_error_aligned_missing_reason"]
