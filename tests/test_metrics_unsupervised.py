"""Unsupervised scores: Gaussian closed forms, an independent KL / matrix-square-root
computation, sklearn's mutual information, and missing values instead of NaN."""

import inspect

import numpy as np
import pytest
import scipy.linalg
import sklearn.metrics

from dlbench.metrics import unsupervised as un
from dlbench.metrics import utils
from tests.test_metrics_mig import plugin_mi
from tests.toy_data import Recorder, ToyData

VALUE_KEYS = ("gaussian_total_correlation", "gaussian_wasserstein_correlation",
              "gaussian_wasserstein_correlation_norm", "mutual_info_score")


def correlated_codes(n, correlation, scales, seed):
    """n draws of N(0, S R S), S = diag(scales)."""
    cov = correlation * np.outer(scales, scales)
    return np.random.RandomState(seed).multivariate_normal(np.zeros(len(scales)), cov, size=n), cov


def kl_to_product_of_marginals(cov):
    """KL(N(0, C) || N(0, diag C)) from the general Gaussian KL formula (determinants, inverse)."""
    diag = np.diag(np.diag(cov))
    return 0.5 * (np.trace(np.linalg.inv(diag) @ cov) - len(cov)
                  + np.log(np.linalg.det(diag) / np.linalg.det(cov)))


def all_finite(result):
    return all(np.isfinite(v) for v in result.values() if not isinstance(v, str))


R3 = np.array([[1.0, 0.6, -0.3],
               [0.6, 1.0, 0.2],
               [-0.3, 0.2, 1.0]])


# ---- Gaussian total correlation ----------------------------------------------------------------

def test_total_correlation_of_population_covariance_is_minus_half_log_det_r():
    cov = R3 * np.outer([0.5, 2.0, 3.0], [0.5, 2.0, 3.0])
    tc, reason = un.gaussian_total_correlation(cov)
    assert reason is None
    assert tc == pytest.approx(-0.5 * np.log(np.linalg.det(R3)), rel=1e-12)
    assert tc == pytest.approx(kl_to_product_of_marginals(cov), rel=1e-10)


def test_total_correlation_of_correlated_gaussian_codes():
    codes, cov = correlated_codes(20000, R3, np.array([0.5, 2.0, 3.0]), seed=0)
    scores = un.unsupervised_scores(codes, 20)
    sample_cov = np.cov(codes, rowvar=False)
    # exactly the KL of the sample covariance, and close to the population value
    assert scores["gaussian_total_correlation"] == pytest.approx(kl_to_product_of_marginals(sample_cov), rel=1e-10)
    # sampling spread of the estimate at n = 20000 is ~0.007 (20 seeds): 4 sigma
    assert scores["gaussian_total_correlation"] == pytest.approx(-0.5 * np.log(np.linalg.det(R3)), abs=0.03)


def test_codes_whose_sample_covariance_is_exactly_s_r_s_give_the_closed_form():
    # whiten standard normal draws (sample covariance exactly I), then colour with S R S
    rs = np.random.RandomState(8)
    z = rs.standard_normal((500, 3))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    scales = np.array([0.2, 1.0, 4.0])
    codes = 5.0 + z @ np.linalg.cholesky(R3 * np.outer(scales, scales)).T
    np.testing.assert_allclose(np.cov(codes, rowvar=False), R3 * np.outer(scales, scales), atol=1e-12)
    scores = un.unsupervised_scores(codes, 20)
    assert scores["gaussian_total_correlation"] == pytest.approx(-0.5 * np.log(np.linalg.det(R3)), rel=1e-10)


def test_independent_gaussian_codes_have_near_zero_correlations():
    # sample correlations are O(1/sqrt(n)): TC ~ d(d-1)/(4n) = 6e-4, W ~ var * O(1/n)
    codes = np.random.RandomState(1).standard_normal((5000, 4)) * np.array([0.1, 1.0, 3.0, 10.0])
    scores = un.unsupervised_scores(codes, 20)
    assert 0 <= scores["gaussian_total_correlation"] < 3e-3
    assert 0 <= scores["gaussian_wasserstein_correlation_norm"] < 1e-3


# ---- Gaussian Wasserstein correlation -----------------------------------------------------------

@pytest.mark.parametrize("rho", [0.0, 0.3, -0.8, 0.99])
def test_wasserstein_correlation_closed_form_two_dims(rho):
    # equal variances s^2: D^1/2 C D^1/2 = s^4 [[1, rho], [rho, 1]], eigenvalues s^4 (1 +- rho)
    s2 = 2.5
    cov = s2 * np.array([[1.0, rho], [rho, 1.0]])
    expected = 4 * s2 - 2 * s2 * (np.sqrt(1 + rho) + np.sqrt(1 - rho))
    assert un.gaussian_wasserstein_correlation(cov) == pytest.approx(expected, abs=1e-12)


def test_wasserstein_correlation_against_matrix_square_root_of_d_c():
    codes, _ = correlated_codes(3000, R3, np.array([0.5, 2.0, 3.0]), seed=2)
    cov = np.cov(codes, rowvar=False)
    # disentanglement_lib's form: square root of the non-symmetric D C
    expected = 2 * np.trace(cov) - 2 * np.trace(scipy.linalg.sqrtm(np.diag(np.diag(cov)) @ cov)).real
    scores = un.unsupervised_scores(codes, 20)
    assert scores["gaussian_wasserstein_correlation"] == pytest.approx(expected, rel=1e-9)
    assert scores["gaussian_wasserstein_correlation_norm"] == pytest.approx(expected / np.trace(cov), rel=1e-9)


# ---- mutual information score ---------------------------------------------------------------------

def test_mutual_info_matrix_against_sklearn_on_random_inputs():
    rs = np.random.RandomState(3)
    base = rs.standard_normal((1500, 2))
    codes = np.stack([base[:, 0], base[:, 0] + 0.5 * base[:, 1], rs.uniform(size=1500),
                      np.exp(base[:, 1]), rs.randint(0, 3, size=1500).astype(float)], 1)
    matrix = un.mutual_info_matrix(codes, 20)
    discrete = utils.histogram_discretize(codes, 20)
    for i in range(5):
        for j in range(5):
            expected = 0.0 if i == j else sklearn.metrics.mutual_info_score(discrete[:, i], discrete[:, j])
            assert matrix[i, j] == pytest.approx(expected, abs=1e-12)
            if i != j:
                assert matrix[i, j] == pytest.approx(plugin_mi(discrete[:, i], discrete[:, j]), abs=1e-12)
    score = un.unsupervised_scores(codes, 20)["mutual_info_score"]
    assert score == pytest.approx(matrix.sum() / 20, abs=1e-12)


def test_mutual_info_score_of_duplicated_uniform_dims_is_their_entropy():
    # two copies of a uniform variable on 4 values (every value equally often): I = log 4
    x = np.tile(np.arange(4.0), 250)
    scores = un.unsupervised_scores(np.stack([x, 3 * x - 1], 1), 20)
    assert scores["mutual_info_score"] == pytest.approx(np.log(4), abs=1e-12)


# ---- undefined values: missing with a reason, never NaN ---------------------------------------------

def test_constant_dimension_makes_total_correlation_missing_only():
    codes = np.random.RandomState(4).standard_normal((2000, 3))
    codes[:, 1] = 0.37                       # its sample variance is a rounding residue, not 0
    scores = un.unsupervised_scores(codes, 20)
    assert all_finite(scores)
    assert "gaussian_total_correlation" not in scores
    assert "constant code dimension(s) [1]" in scores["gaussian_total_correlation_missing_reason"]
    # a constant dimension is independent of the others: W and MI as without it, over 3 dims
    rest = un.unsupervised_scores(codes[:, [0, 2]], 20)
    assert scores["gaussian_wasserstein_correlation"] == pytest.approx(
        rest["gaussian_wasserstein_correlation"], rel=1e-9, abs=1e-15)
    assert scores["mutual_info_score"] == pytest.approx(rest["mutual_info_score"] * 2 / 6, abs=1e-12)


def test_duplicated_dimension_makes_total_correlation_missing_as_singular():
    codes = np.random.RandomState(5).standard_normal((2000, 3))
    codes = np.concatenate([codes, 2 * codes[:, :1]], 1)
    scores = un.unsupervised_scores(codes, 20)
    assert all_finite(scores)
    assert "singular" in scores["gaussian_total_correlation_missing_reason"]
    assert scores["gaussian_wasserstein_correlation"] > 0


def test_all_dimensions_dead_and_single_dimension():
    dead = un.unsupervised_scores(np.zeros((100, 3)), 20)
    assert all_finite(dead)
    assert dead["gaussian_wasserstein_correlation"] == 0.0
    assert "gaussian_total_correlation_missing_reason" in dead
    assert "gaussian_wasserstein_correlation_norm_missing_reason" in dead
    assert dead["mutual_info_score"] == 0.0
    single = un.unsupervised_scores(np.random.RandomState(6).standard_normal((100, 1)), 20)
    assert single["gaussian_total_correlation"] == 0.0
    assert single["gaussian_wasserstein_correlation"] == 0.0
    assert "mutual_info_score_missing_reason" in single


def test_fewer_points_than_dimensions_is_singular():
    scores = un.unsupervised_scores(np.random.RandomState(7).standard_normal((4, 6)), 20)
    assert all_finite(scores)
    assert "singular" in scores["gaussian_total_correlation_missing_reason"]


# ---- the metric through the data ------------------------------------------------------------------

def run(data, fn, seed=0, **params):
    params = {"num_train": 3000, **params}
    return un.compute_unsupervised(data, Recorder(data, fn), np.random.RandomState(seed), **params)


def test_factors_themselves_are_uncorrelated():
    # independent uniform factors: TC, W and pairwise MI are only sampling noise
    result = run(ToyData((3, 4, 5)), lambda f: f.astype(float))
    assert set(result) == set(VALUE_KEYS) | {"num_train", "num_bins"}
    assert result["gaussian_total_correlation"] < 3e-3
    assert result["gaussian_wasserstein_correlation_norm"] < 1e-3
    assert result["mutual_info_score"] < 0.01
    mixed = run(ToyData((3, 4, 5)), lambda f: f @ np.array([[1.0, 1.0, 0], [0, 1.0, 1.0], [1.0, 0, 1.0]]))
    assert mixed["gaussian_total_correlation"] > 0.1
    assert mixed["mutual_info_score"] > 0.1


def test_same_seed_same_dict_and_batch_size_does_not_matter():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.sin(f @ np.array([[1.0, 0.3], [0.2, 1.0], [0.5, -0.4]]))
    first = run(data, fn, seed=4, batch_size=700)
    assert first == run(data, fn, seed=4, batch_size=700)
    assert first == run(data, fn, seed=4, batch_size=5000)
    assert first != run(data, fn, seed=5)


def test_dead_dimension_through_the_metric():
    result = run(ToyData((3, 4)), lambda f: np.concatenate([f, np.zeros((len(f), 1))], 1))
    assert all_finite(result)
    assert "gaussian_total_correlation_missing_reason" in result
    assert "gaussian_total_correlation" not in result


def test_default_parameters_are_disentanglement_lib_ones():
    params = inspect.signature(un.compute_unsupervised).parameters
    assert params["num_train"].default == 10000
    assert params["num_bins"].default == 20
