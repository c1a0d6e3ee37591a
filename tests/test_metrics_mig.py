"""MIG: closed forms for the discrete helpers, an independent recomputation of the score."""

import inspect

import numpy as np
import pytest
import sklearn.metrics

from dlbench.errors import UserError
from dlbench.metrics import evaluate, mig, utils
from tests.toy_data import Recorder, ToyData


def plugin_mi(a, b):
    """Plug-in mutual information in nats from the contingency table (independent of sklearn)."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    outer = joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / outer[nz])))


# ---- discrete helpers against closed forms ------------------------------------------------

def test_mi_of_exactly_independent_uniform_variables_is_zero():
    x = np.repeat(np.arange(3), 4)          # every (x, y) pair exactly once:
    y = np.tile(np.arange(4), 3)            # the empirical joint is the product of the marginals
    m = utils.discrete_mutual_info(x[:, None], y[:, None])
    assert m.shape == (1, 1)
    assert abs(m[0, 0]) < 1e-12


@pytest.mark.parametrize("n", [2, 5, 7])
def test_mi_of_uniform_variable_with_itself_is_log_n(n):
    x = np.tile(np.arange(n), 9)
    relabelled = (x * 3 + 11)               # a bijection of x carries the same information
    m = utils.discrete_mutual_info(np.stack([x, relabelled], 1), x[:, None])
    np.testing.assert_allclose(m[:, 0], np.log(n), rtol=0, atol=1e-12)
    np.testing.assert_allclose(utils.discrete_entropy(x[:, None]), [np.log(n)], rtol=0, atol=1e-12)


def test_entropy_of_non_uniform_variable():
    y = np.array([0, 0, 1, 2])               # p = (1/2, 1/4, 1/4): H = 1.5 log 2
    const = np.zeros(4, dtype=int)
    h = utils.discrete_entropy(np.stack([y, const], 1))
    np.testing.assert_allclose(h, [1.5 * np.log(2), 0.0], rtol=0, atol=1e-12)


def test_histogram_discretize_equal_width_bins():
    codes = np.stack([np.arange(20.0),                       # 20 values, 20 bins: one per bin
                      np.full(20, 3.7),                      # constant: one label, no NaN
                      np.r_[np.zeros(10), np.ones(10)],      # two values, two bins
                      np.linspace(-1, 1, 20) ** 3], 1)
    d = utils.histogram_discretize(codes, 20)
    assert d.dtype.kind == "i" and d.min() >= 1 and d.max() <= 20
    np.testing.assert_array_equal(d[:, 0], np.arange(1, 21))
    assert len(np.unique(d[:, 1])) == 1
    d2 = utils.histogram_discretize(codes[:, 2:3], 2)
    np.testing.assert_array_equal(d2[:, 0], np.r_[np.ones(10), 2 * np.ones(10)])
    # equal width: a value's bin is floor((x - min) / width) + 1, the maximum in the last bin
    x = codes[:, 3]
    width = (x.max() - x.min()) / 20
    expected = np.minimum(np.floor((x - x.min()) / width + 1e-9).astype(int) + 1, 20)
    np.testing.assert_array_equal(d[:, 3], expected)


# ---- the score ------------------------------------------------------------------------------

def expected_identity_mig(factors):
    """MIG of codes equal to the factors: the top MI of factor k is H(v_k) (a bijection), the
    second is the largest MI of v_k with another factor."""
    num_factors = factors.shape[1]
    gaps = []
    for k in range(num_factors):
        h = plugin_mi(factors[:, k], factors[:, k])
        second = max(plugin_mi(factors[:, k], factors[:, j]) for j in range(num_factors) if j != k)
        gaps.append((h - second) / h)
    return float(np.mean(gaps))


def test_mig_of_the_factors_equals_independent_computation_and_is_near_one():
    data = ToyData((3, 4, 5))
    rep = Recorder(data, lambda f: f.astype(float))
    result = evaluate("mig", data, rep, seed=1, num_train=4000, batch_size=1000)
    assert result["num_train"] == 4000 and result["num_bins"] == 20
    factors = rep.all_factors
    assert len(factors) == 4000
    assert result["discrete_mig"] == pytest.approx(expected_identity_mig(factors), abs=1e-10)
    assert result["discrete_mig"] > 0.99


def test_mig_of_fully_mixing_rotation_is_near_zero():
    # H / 2 is orthogonal and every code dimension mixes every factor with weight 1/2: by
    # symmetry each factor has the same MI with all four dimensions, so the gap is ~0.
    data = ToyData((6, 6, 6, 6))
    h = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    np.testing.assert_allclose(h @ h.T, np.eye(4), atol=1e-12)
    result = evaluate("mig", data, Recorder(data, lambda f: (f - 2.5) @ h), num_train=3000)
    assert result["discrete_mig"] < 0.05
    identity = evaluate("mig", data, Recorder(data, lambda f: f), num_train=3000)
    assert identity["discrete_mig"] > 0.99


def test_mig_of_random_rotations_is_far_lower_than_of_the_factors():
    # A Haar-random rotation is sometimes close to a signed permutation (MIG up to ~0.6 for
    # single draws), so bound the mean over draws: it is ~0.2 with a spread of ~0.03 for 10
    # draws, against > 0.99 for the factors themselves.
    data = ToyData((6, 6, 6, 6))
    scores = []
    for q_seed in range(10):
        q, _ = np.linalg.qr(np.random.RandomState(q_seed).standard_normal((4, 4)))
        rep = Recorder(data, lambda f, q=q: (f - 2.5) @ q)
        scores.append(evaluate("mig", data, rep, seed=q_seed, num_train=3000)["discrete_mig"])
    assert np.mean(scores) < 0.35


def test_duplicated_code_dimension_gives_zero_for_that_factor():
    rs = np.random.RandomState(0)
    data = ToyData((3, 4, 5))
    factors = data.sample_factors(3000, rs)
    codes = np.stack([factors[:, 0], factors[:, 0], factors[:, 1], factors[:, 2]], 1).astype(float)
    score, per_factor = mig.mig_from_codes(codes, factors, 20)
    assert per_factor[0] == 0.0
    assert np.all(per_factor[1:] > 0.99)
    assert score == pytest.approx(per_factor.mean())


def test_constant_code_dimension_changes_nothing():
    data = ToyData((3, 4, 5))
    factors = data.sample_factors(2000, np.random.RandomState(3))
    codes = factors.astype(float)
    with_const = np.concatenate([np.full((2000, 1), 2.5), codes, np.zeros((2000, 1))], 1)
    score, per_factor = mig.mig_from_codes(with_const, factors, 20)
    assert np.all(np.isfinite(per_factor))
    assert score == pytest.approx(expected_identity_mig(factors), abs=1e-10)


def test_single_valued_factor_is_skipped_without_nan():
    data = ToyData((1, 4, 5))
    rep = Recorder(data, lambda f: f.astype(float))
    result = evaluate("mig", data, rep, num_train=2000)
    assert np.isfinite(result["discrete_mig"])
    factors = rep.all_factors
    _, per_factor = mig.mig_from_codes(factors.astype(float), factors, 20)
    assert np.isnan(per_factor[0])
    # the mean over the two varying factors only, recomputed independently
    expected = np.mean([(plugin_mi(factors[:, k], factors[:, k]) - plugin_mi(factors[:, 1], factors[:, 2]))
                        / plugin_mi(factors[:, k], factors[:, k]) for k in (1, 2)])
    assert result["discrete_mig"] == pytest.approx(expected, abs=1e-10)


def test_the_factors_recorded_are_those_the_sample_varies_in():
    data = ToyData((3, 4, 5))
    rep = Recorder(data, lambda f: f.astype(float))
    result = evaluate("mig", data, rep, num_train=3)
    varies = [k for k in range(3) if len(set(rep.all_factors[:, k])) > 1]
    assert len(varies) < 3                           # this seed's 3 points hold a factor fixed
    assert result["factors"] == ",".join(f"f{k}" for k in varies)
    assert evaluate("mig", data, rep, num_train=2000)["factors"] == "f0,f1,f2"


def test_a_single_code_dimension_has_no_score_but_a_reason():
    # its second-best MI had been taken as 0, so a code equal to f0 scored (1 + ~0) / 2 here, and a
    # one-latent model up to 1, far above healthy multi-latent models
    data = ToyData((3, 4))
    result = evaluate("mig", data, Recorder(data, lambda f: f[:, :1]), num_train=2000)
    assert "discrete_mig" not in result and "second" in result["discrete_mig_missing_reason"]
    assert result["discrete_mig_missing_reason"] == mig.SINGLE_CODE
    assert {key: result[key] for key in ("num_train", "num_bins", "estimator", "normalisation", "factors")} == {
        "num_train": 2000, "num_bins": 20, "estimator": "histogram", "normalisation": "factor_entropy",
        "factors": "f0,f1"}
    factors = data.sample_factors(2000, np.random.RandomState(0))
    with pytest.raises(UserError, match="at least two code dimensions.*no second"):
        mig.mig_from_codes(factors[:, :1].astype(float), factors, 20)


def test_a_single_code_of_a_sample_where_no_factor_varies_is_refused_as_with_more_codes():
    data = ToyData((1, 1))
    for width in (1, 2):
        with pytest.raises(UserError, match="at least one factor that varies"):
            evaluate("mig", data, Recorder(data, lambda f, width=width: np.zeros((len(f), width))), num_train=10)


def test_two_codes_of_a_closed_form_example():
    # f0, f1 independent fair bits, every cell equally often; z0 = f0 and z1 = f0 xor f1, which is
    # independent of f0 and of f1 alone: I(z0; f0) = log 2 and every other MI is 0, so f0's gap is
    # 1, f1's 0 and MIG 1/2 (the single-code change leaves two codes alone)
    factors = np.tile(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), (5, 1))
    codes = np.stack([factors[:, 0], factors[:, 0] ^ factors[:, 1]], 1).astype(float)
    score, per_factor = mig.mig_from_codes(codes, factors, 2)
    np.testing.assert_allclose(per_factor, [1.0, 0.0], rtol=0, atol=1e-12)
    assert score == pytest.approx(0.5, abs=1e-12)


def test_two_codes_equal_sklearns_mutual_information():
    # values further apart than a bin's width land in bins of their own, so the discretised codes
    # carry the raw codes' information: sklearn's MI of the raw codes as labels is the reference
    data = ToyData((3, 4, 5))
    rep = Recorder(data, lambda f: np.stack([f[:, 0] + 0.5, 5.0 * f[:, 1] + f[:, 2]], 1))
    result = evaluate("mig", data, rep, seed=2, num_train=3000)
    factors = rep.all_factors
    codes = rep.fn(factors)
    for j in range(2):
        assert len(np.unique(utils.histogram_discretize(codes, 20)[:, j])) == len(np.unique(codes[:, j]))
    labels = [np.unique(codes[:, j], return_inverse=True)[1] for j in range(2)]
    mi = np.array([[sklearn.metrics.mutual_info_score(factors[:, k], labels[j]) for k in range(3)] for j in range(2)])
    entropy = np.array([sklearn.metrics.mutual_info_score(factors[:, k], factors[:, k]) for k in range(3)])
    gaps = (mi.max(0) - mi.min(0)) / entropy                   # two codes: best minus the other
    assert result["discrete_mig"] == pytest.approx(gaps.mean(), abs=1e-10)


def test_default_parameters_are_disentanglement_lib_ones():
    params = inspect.signature(mig.compute_mig).parameters
    assert params["num_train"].default == 10000
    assert params["num_bins"].default == 20


def test_batched_calls_and_batch_size_does_not_change_result():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.sin(f @ np.array([[1.0, 0.3], [0.2, 1.0], [0.5, -0.4]]))
    results = []
    for batch_size in (700, 5000):
        rep = Recorder(data, fn)
        results.append(evaluate("mig", data, rep, seed=4, num_train=5000, batch_size=batch_size))
        assert max(rep.call_sizes) <= batch_size
        assert len(rep.call_sizes) == -(-5000 // batch_size)
    assert results[0] == results[1]
    again = evaluate("mig", data, Recorder(data, fn), seed=4, num_train=5000)
    assert again == results[0]
