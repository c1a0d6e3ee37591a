"""inference_error (Sikka et al. eqs. 2-3) on the linear-Gaussian dataset, with a linear-Gaussian
model whose posteriors and ELBO are closed forms."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.errors import UserError
from dlbench.metrics import evaluate
from dlbench.metrics.inference_error import gaussian_kl_diag_to_full
from tests.toy_data import ToyData
from tests.toy_model import LinearGaussianModel

ORTHOGONAL = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
PAPER = 0.5 * (1 + np.eye(4))[:, :2]  # A_ij = (1 + delta_ij) / 2, as the paper's analytic example


def drawn_observations(data, num_points, seed):
    random_state = np.random.RandomState(seed)
    return data.sample_observations_from_factors(data.sample_factors(num_points, random_state), random_state)


def test_both_errors_vanish_when_the_encoder_is_the_exact_posterior():
    data = LinearGaussian(mixing_matrix=ORTHOGONAL.tolist())
    model = LinearGaussianModel(ORTHOGONAL)  # decoder A, unit noise: the model posterior is the true one
    result = evaluate("inference_error", data, None, encode_fn=model.encode_fn, log_weights_fn=model.log_weights_fn,
                      num_points=200, num_samples=50)
    assert result["true_inference_error"] == pytest.approx(0.0, abs=1e-12)
    assert result["model_inference_error"] == pytest.approx(0.0, abs=1e-9)


def test_kl_to_a_full_covariance_matches_monte_carlo():
    rs = np.random.RandomState(0)
    mean_q, logvar_q = rs.standard_normal((1, 3)), rs.uniform(-1, 0.5, (1, 3))
    root = rs.standard_normal((3, 3))
    cov_p, mean_p = root @ root.T + 0.5 * np.eye(3), rs.standard_normal((1, 3))
    z = mean_q + np.exp(0.5 * logvar_q) * rs.standard_normal((400000, 3))
    log_q = multivariate_normal(mean_q[0], np.diag(np.exp(logvar_q[0]))).logpdf(z)
    log_p = multivariate_normal(mean_p[0], cov_p).logpdf(z)
    assert gaussian_kl_diag_to_full(mean_q, logvar_q, mean_p, cov_p)[0] == pytest.approx(
        np.mean(log_q - log_p), abs=0.01)


def test_true_inference_error_of_the_diagonal_of_a_correlated_posterior():
    data = LinearGaussian(mixing_matrix=PAPER.tolist())
    model = LinearGaussianModel(PAPER)  # exact posterior means, the diagonal of its covariance
    result = evaluate("inference_error", data, None, encode_fn=model.encode_fn, log_weights_fn=model.log_weights_fn,
                      num_points=100, num_samples=2000)
    cov = np.linalg.inv(PAPER.T @ PAPER + np.eye(2))
    # KL(N(m, diag cov) || N(m, cov)), the same for every x
    diagonal = np.diag(np.diag(cov))
    exact = 0.5 * (np.trace(np.linalg.solve(cov, diagonal)) - 2 + np.linalg.slogdet(cov)[1]
                   - np.log(np.diag(cov)).sum())
    assert result["true_inference_error"] == pytest.approx(exact, rel=1e-10)
    assert exact > 0.05
    # the decoder is A, so the model posterior is the true one and MIE -> TIE as K grows
    assert result["model_inference_error"] == pytest.approx(exact, rel=0.05)
    assert result["model_inference_error"] <= exact + 1e-3


def test_model_inference_error_approaches_log_px_minus_elbo_from_below():
    data = LinearGaussian(mixing_matrix=PAPER.tolist())
    decoder = PAPER * np.array([1.3, 0.6])  # a model whose posterior differs from the truth
    model = LinearGaussianModel(decoder, encoder=[[0.3, 0.1, 0.0, 0.2], [0.0, 0.2, 0.3, 0.1]],
                                encoder_logvar=[-1.2, -0.8])
    observations = drawn_observations(data, 300, 5)
    exact = np.mean(model.log_marginal(observations) - model.elbo(observations))
    estimates = [evaluate("inference_error", data, None, seed=5, encode_fn=model.encode_fn,
                          log_weights_fn=model.log_weights_fn, num_points=300, num_samples=k)["model_inference_error"]
                 for k in (10, 100, 3000)]
    assert estimates == sorted(estimates)
    assert estimates[-1] <= exact and estimates[-1] == pytest.approx(exact, rel=0.03)


def test_inference_error_needs_an_exact_posterior_and_matching_dimensions():
    model = LinearGaussianModel(ORTHOGONAL)
    with pytest.raises(UserError, match="exact posterior"):
        evaluate("inference_error", ToyData(), None, encode_fn=model.encode_fn, log_weights_fn=model.log_weights_fn)
    data = LinearGaussian(mixing_matrix=np.eye(4)[:, :3].tolist())
    with pytest.raises(UserError, match="2 latent dimensions, the dataset 3 sources"):
        evaluate("inference_error", data, None, encode_fn=lambda x: model.encode_fn(x[:, :4]),
                 log_weights_fn=model.log_weights_fn, num_points=10)
