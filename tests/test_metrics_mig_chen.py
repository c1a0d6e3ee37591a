"""mig_chen and total_correlation (aggregate-posterior estimators) against quadrature, exact
limits and the histogram MIG's ranking."""

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from dlbench.errors import UserError
from dlbench.metrics import evaluate
from dlbench.metrics.aggregate_posterior import log_aggregate_density
from dlbench.metrics.mig_chen import mutual_information
from tests.toy_data import SampledToyData, ToyData, factors_of_observations


def gaussian_encoder(data, mean_of_factors, std):
    """encode_fn with mean = mean_of_factors(factors) and a constant standard deviation."""
    def encode_fn(observations):
        mean = np.asarray(mean_of_factors(factors_of_observations(data, observations)), dtype=np.float64)
        return mean, np.full(mean.shape, 2 * np.log(std))
    return encode_fn


def mixture_entropy(means, std):
    """Differential entropy of the equal-weight 1-D Gaussian mixture, by quadrature."""
    def density(z):
        return norm.pdf(z, loc=np.asarray(means)[:, None], scale=std).mean(0)

    def integrand(z):
        p = density(np.atleast_1d(z))[0]
        return -p * np.log(p) if p > 0 else 0.0

    lo, hi = min(means) - 12 * std, max(means) + 12 * std
    return integrate.quad(integrand, lo, hi, limit=500, points=sorted(set(means)))[0]


def test_mutual_information_matches_quadrature():
    data = ToyData((2, 3))
    grid = data.factors_of(np.arange(len(data)))
    weights = np.array([[1.0, 0.4], [-0.3, 0.8]])
    std = 0.45
    mean = grid @ weights.T
    estimate = mutual_information(grid, mean, np.full(mean.shape, 2 * np.log(std)), 200000,
                                  np.random.RandomState(0))
    for j in range(2):
        h = mixture_entropy(mean[:, j], std)
        for k in range(2):
            conditional = np.mean([mixture_entropy(mean[grid[:, k] == v, j], std)
                                   for v in range(data.factors_num_values[k])])
            assert estimate[j, k] == pytest.approx(h - conditional, abs=0.01)


def test_axis_aligned_sharp_code_scores_one_and_unrelated_dimensions_zero():
    data = ToyData((3, 4, 5))
    grid = data.factors_of(np.arange(len(data))).astype(np.float64)
    mi = mutual_information(grid, grid, np.full(grid.shape, 2 * np.log(0.01)), 3000, np.random.RandomState(1))
    entropy = np.log(data.factors_num_values)
    assert np.diag(mi) == pytest.approx(entropy, abs=1e-6)
    assert np.abs(mi[~np.eye(3, dtype=bool)]).max() < 1e-9  # the grid is a product: q(z_j | v_k) = q(z_j)
    result = evaluate("mig_chen", data, None, encode_fn=gaussian_encoder(data, lambda f: f, 0.01), num_samples=3000)
    assert result["mig_chen"] == pytest.approx(1.0, abs=1e-6)
    assert result["num_points"] == len(data) and result["factors"] == "f0,f1,f2"
    assert result["estimator"] == "chen_full_dataset" and result["normalisation"] == "factor_entropy"


CASES = {
    "identity": lambda f: f,
    "permuted_scaled": lambda f: f[:, [2, 0, 1]] * np.array([3.0, -0.5, 2.0]),
    "rotated": lambda f: f @ np.linalg.qr(np.random.RandomState(3).standard_normal((3, 3)))[0],
    "duplicated": lambda f: np.concatenate([f, f[:, :1] * 1.5], axis=1),
    "two_in_one": lambda f: np.stack([f[:, 0] * 10 + f[:, 1], f[:, 2], np.zeros(len(f))], axis=1),
    "noise": lambda f: np.sin(f @ np.array([[12.9898, 78.233, 37.719]]).T * 43758.5453
                               + np.arange(3)) * 2,
}


def test_mig_chen_and_histogram_mig_agree_in_ranking():
    data = ToyData((4, 5, 6))
    chen, histogram = {}, {}
    for name, fn in CASES.items():
        chen[name] = evaluate("mig_chen", data, None, seed=0, encode_fn=gaussian_encoder(data, fn, 0.05),
                              num_samples=4000)["mig_chen"]
        histogram[name] = evaluate("mig", data, lambda x: fn(factors_of_observations(data, x)), seed=0,
                                   num_train=5000)["discrete_mig"]
    assert chen["identity"] == pytest.approx(1.0, abs=1e-3)
    assert chen["permuted_scaled"] == pytest.approx(1.0, abs=1e-3)
    assert chen["noise"] < 0.15
    for a in CASES:
        for b in CASES:
            if histogram[a] > histogram[b] + 0.1:
                assert chen[a] > chen[b], (a, b, chen, histogram)


def test_a_single_code_dimension_has_no_mig_chen_but_a_reason(monkeypatch):
    # its second-best MI had been taken as 0: a sharp code of f0 scored (1 + 0) / 2 here, a one-latent
    # model up to 1; the reason comes before the sampling, the metric's whole cost
    import dlbench.metrics.mig_chen as mig_chen
    from dlbench.metrics.mig import SINGLE_CODE

    data = ToyData((3, 4))
    monkeypatch.setattr(mig_chen, "mutual_information", lambda *args, **kwargs: pytest.fail("sampled"))
    result = evaluate("mig_chen", data, None, encode_fn=gaussian_encoder(data, lambda f: f[:, :1], 0.01))
    assert "mig_chen" not in result and result["mig_chen_missing_reason"] == SINGLE_CODE
    assert result["num_points"] == len(data) and result["factors"] == "f0,f1" and result["num_samples"] == 10000


def test_mig_chen_needs_a_full_grid_and_an_encoder():
    sampled = SampledToyData((3, 4, 5))
    with pytest.raises(UserError, match="mig_chen needs a full factor grid"):
        evaluate("mig_chen", sampled, None, encode_fn=gaussian_encoder(sampled, lambda f: f, 0.1))
    with pytest.raises(UserError, match="encode_fn"):
        evaluate("mig_chen", ToyData(), None)


def test_log_aggregate_density_matches_direct_sum_across_chunks(monkeypatch):
    import dlbench.metrics.aggregate_posterior as ap

    rs = np.random.RandomState(0)
    z, mean, logvar = rs.standard_normal((37, 3)), rs.standard_normal((53, 3)), rs.uniform(-2, 1, (53, 3))
    components = norm.logpdf(z[:, None], mean[None], np.exp(0.5 * logvar)[None])  # (S, N, d)
    per_dim = np.logaddexp.reduce(components, axis=1) - np.log(53)
    joint = np.logaddexp.reduce(components.sum(-1), axis=1) - np.log(53)
    monkeypatch.setattr(ap, "_ELEMENTS_PER_CHUNK", 40)  # many chunks of samples and of points
    got_per_dim, got_joint = log_aggregate_density(z, mean, logvar, joint=True)
    np.testing.assert_allclose(got_per_dim, per_dim, rtol=1e-12)
    np.testing.assert_allclose(got_joint, joint, rtol=1e-12)


def test_total_correlation_is_zero_for_a_code_factorised_over_a_product_grid():
    data = ToyData((3, 4, 5))
    result = evaluate("total_correlation", data, None, encode_fn=gaussian_encoder(data, lambda f: f * 0.7, 0.3),
                      num_samples=2000)
    assert abs(result["total_correlation"]) < 1e-9
    assert result["points"] == "full_grid" and result["num_points"] == 60


def test_total_correlation_of_a_duplicated_factor_is_its_entropy():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.concatenate([f, f[:, :1]], axis=1)
    result = evaluate("total_correlation", data, None, encode_fn=gaussian_encoder(data, fn, 0.01),
                      num_samples=2000)
    assert result["total_correlation"] == pytest.approx(np.log(3), abs=1e-6)


def test_total_correlation_matches_two_dimensional_quadrature():
    data = ToyData((2, 3))
    std = 0.5
    weights = np.array([[1.0, 0.6], [0.5, -0.7]])
    means = data.factors_of(np.arange(len(data))) @ weights.T

    def log_q(z1, z2):
        return np.log(np.mean(norm.pdf(z1, means[:, 0], std) * norm.pdf(z2, means[:, 1], std)))

    lo, hi = means.min(0) - 8 * std, means.max(0) + 8 * std
    joint_entropy = integrate.dblquad(lambda z2, z1: -np.exp(log_q(z1, z2)) * log_q(z1, z2),
                                      lo[0], hi[0], lo[1], hi[1], epsabs=1e-7)[0]
    exact = mixture_entropy(means[:, 0], std) + mixture_entropy(means[:, 1], std) - joint_entropy
    result = evaluate("total_correlation", data, None, seed=0, num_samples=200000,
                      encode_fn=gaussian_encoder(data, lambda f: f @ weights.T, std))
    assert result["total_correlation"] == pytest.approx(exact, abs=4 * result["total_correlation_stderr"] + 1e-3)
    assert exact > 0.05


def test_total_correlation_on_sampled_points():
    data = SampledToyData((3, 4))
    with pytest.raises(UserError, match="num_points"):
        evaluate("total_correlation", data, None, encode_fn=gaussian_encoder(data, lambda f: f, 0.1))
    result = evaluate("total_correlation", data, None, encode_fn=gaussian_encoder(data, lambda f: f, 0.1),
                      num_points=500, num_samples=500)
    assert result["points"] == "sampled" and result["num_points"] == 500
