"""linear_gaussian: the exact posterior against conditioning the joint Gaussian of (s, x) and
against least-squares regression on samples, log p(x) against scipy, the sample covariance of x,
reproducibility of A, and the continuous-factor guards."""

import numpy as np
import pytest
import scipy.stats

import dlbench.data as data
from dlbench.data.ground_truth import require_discrete_factors
from dlbench.data.linear_gaussian import LinearGaussian
from dlbench.errors import UserError


def joint_conditional(a, x):
    """p(s | x) by conditioning the (k + N)-dimensional Gaussian of (s, x):
    Cov = [[I, A^T], [A, A A^T + I]]; mean = C_sx C_xx^-1 x, cov = C_ss - C_sx C_xx^-1 C_xs."""
    n, k = a.shape
    cov = np.block([[np.eye(k), a.T], [a, a @ a.T + np.eye(n)]])
    c_ss, c_sx, c_xx = cov[:k, :k], cov[:k, k:], cov[k:, k:]
    gain = c_sx @ np.linalg.inv(c_xx)
    return x @ gain.T, c_ss - gain @ c_sx.T


@pytest.mark.parametrize("kwargs", [{}, {"observed_dim": 128, "num_sources": 2, "mixing": "ones_plus_identity"},
                                    {"mixing_matrix": [[2.73, 0.73], [0.73, 2.73]]},
                                    {"observed_dim": 7, "num_sources": 3, "seed": 4}])
def test_exact_posterior_is_the_conditional_of_the_joint_gaussian(kwargs):
    ds = LinearGaussian(**kwargs)
    x = ds.sample_observations(50, np.random.RandomState(1))
    mean, cov = ds.exact_posterior(x)
    want_mean, want_cov = joint_conditional(ds.mixing_matrix, x.astype(np.float64))
    assert mean.dtype == np.float64 and mean.shape == (50, ds.num_factors) and cov.shape == (ds.num_factors,) * 2
    np.testing.assert_allclose(mean, want_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cov, want_cov, rtol=1e-9, atol=1e-12)


def test_posterior_mean_is_the_regression_of_s_on_x():
    """E[s|x] is linear in x; least squares of s on x over many (s, x) pairs recovers its matrix
    Sigma A^T, and the residual covariance is the posterior covariance."""
    ds = LinearGaussian()
    rng = np.random.RandomState(2)
    s = ds.sample_factors(200_000, rng)
    x = ds.sample_observations_from_factors(s, rng).astype(np.float64)
    coef, *_ = np.linalg.lstsq(x, s, rcond=None)                      # s ~ x @ coef
    mean, cov = ds.exact_posterior(np.eye(10))                          # rows: Sigma A^T e_i
    np.testing.assert_allclose(coef, mean, atol=0.01)
    residual = s - x @ coef
    np.testing.assert_allclose(np.cov(residual.T), cov, atol=0.01)


def test_log_marginal_matches_scipy():
    for ds in (LinearGaussian(), LinearGaussian(observed_dim=40, num_sources=5, seed=9)):
        x = ds.sample_observations(100, np.random.RandomState(3))
        n = ds.observation_shape[0]
        want = scipy.stats.multivariate_normal(np.zeros(n), ds.mixing_matrix @ ds.mixing_matrix.T + np.eye(n)).logpdf(x)
        got = ds.log_marginal(x)
        assert got.shape == (100,) and got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_observations_have_covariance_a_a_transpose_plus_identity():
    ds = LinearGaussian()
    rng = np.random.RandomState(4)
    m = 200_000
    x = ds.sample_observations(m, rng).astype(np.float64)
    want = ds.mixing_matrix @ ds.mixing_matrix.T + np.eye(10)
    # the standard error of a covariance entry is sqrt((S_ii S_jj + S_ij^2) / m)
    stderr = np.sqrt((np.outer(np.diag(want), np.diag(want)) + want ** 2) / m)
    assert np.all(np.abs(np.cov(x.T) - want) < 5 * stderr)
    assert np.all(np.abs(x.mean(axis=0)) < 5 * np.sqrt(np.diag(want) / m))
    # the training sample follows the same law
    train = ds.images.astype(np.float64)
    stderr_train = np.sqrt((np.outer(np.diag(want), np.diag(want)) + want ** 2) / len(train))
    assert np.all(np.abs(np.cov(train.T) - want) < 5 * stderr_train)


def test_factors_are_the_sources_and_observations_add_fresh_noise():
    ds = LinearGaussian()
    s = ds.sample_factors(5, np.random.RandomState(0))
    assert s.shape == (5, 2) and s.dtype == np.float64
    x1 = ds.sample_observations_from_factors(s, np.random.RandomState(1))
    x2 = ds.sample_observations_from_factors(s, np.random.RandomState(2))
    assert x1.dtype == np.float32 and x1.shape == (5, 10)
    assert not np.array_equal(x1, x2)
    noise = np.random.RandomState(1).standard_normal((5, 10))
    np.testing.assert_allclose(x1, s @ ds.mixing_matrix.T + noise, rtol=1e-6, atol=1e-6)


def test_the_default_is_reproducible_and_settings_rebuild_the_dataset():
    a = data.get_dataset("linear_gaussian")
    b = LinearGaussian()
    np.testing.assert_array_equal(a.mixing_matrix, b.mixing_matrix)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.mixing_matrix.shape == (10, 2) and a.images.shape == (10_000, 10) and a.images.dtype == np.float32
    assert len(a) == 10_000 and a.observation_shape == (10,) and a.factor_names == ["s0", "s1"]
    c = LinearGaussian(**a.settings())
    np.testing.assert_array_equal(c.mixing_matrix, a.mixing_matrix)
    np.testing.assert_array_equal(c.images, a.images)
    assert not np.array_equal(LinearGaussian(seed=1).mixing_matrix, a.mixing_matrix)
    # the paper's analytic example: A_ij = (1 + delta_ij) / 2
    paper = LinearGaussian(observed_dim=128, num_sources=2, mixing="ones_plus_identity").mixing_matrix
    assert paper.shape == (128, 2) and paper[0, 0] == paper[1, 1] == 1.0 and paper[0, 1] == paper[5, 0] == 0.5
    info = LinearGaussian.describe()
    assert info["mixing_matrix"] == a.mixing_matrix.tolist() and LinearGaussian.file_status() == "generated"


def test_the_drawn_mixing_matrix_has_variance_one_over_k():
    a = LinearGaussian(observed_dim=4000, num_sources=4, seed=5, num_train=1).mixing_matrix
    assert abs(a.mean()) < 5 * np.sqrt(0.25 / a.size)
    assert abs(a.var() - 0.25) < 5 * 0.25 * np.sqrt(2 / a.size)


def test_continuous_factors_refuse_discrete_use_with_a_clear_error():
    ds = LinearGaussian()
    assert ds.continuous_factors and not ds.full_grid and ds.num_factors == 2
    with pytest.raises(UserError, match="metric mig needs discrete factors; dataset linear_gaussian has continuous"):
        require_discrete_factors(ds, "mig")
    with pytest.raises(UserError, match="continuous factors"):
        ds.factors_num_values
    with pytest.raises(UserError, match="index_of needs a full factor grid"):
        ds.index_of(np.zeros((1, 2)))


@pytest.mark.parametrize("kwargs, message", [
    ({"mixing_matrix": [[1.0, 2.0], [3.0]]}, "rectangular"),
    ({"mixing_matrix": [1.0, 2.0]}, "N x k matrix"),
    ({"mixing_matrix": [[1.0, float("nan")]]}, "non-finite"),
    ({"mixing_matrix": [[1.0, 2.0]], "num_sources": 3}, "num_sources=3 disagrees"),
    ({"mixing": "orthogonal"}, "unknown linear_gaussian mixing 'orthogonal'"),
    ({"observed_dim": 0}, "observed_dim must be an integer >= 1"),
    ({"num_train": 2.5}, "num_train must be an integer"),
])
def test_bad_settings_are_one_clear_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        LinearGaussian(**kwargs)


def test_bad_observation_shapes_are_refused():
    ds = LinearGaussian()
    with pytest.raises(UserError, match=r"shape \(n, 10\)"):
        ds.exact_posterior(np.zeros((3, 9)))
    with pytest.raises(UserError, match=r"shape \(n, 2\)"):
        ds.sample_observations_from_factors(np.zeros((3, 3)), np.random.RandomState(0))
