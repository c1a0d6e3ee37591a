"""SAP score: score matrices against brute force, known gaps, noise, merged/duplicated and dead
dimensions, single-valued factors, determinism."""

import numpy as np
import pytest

from dlbench.errors import UserError
from dlbench.metrics import sap
from tests.toy_data import Recorder, ToyData

SMALL = dict(num_train=1000, num_test=1000)


def run(data, fn, seed=0, **params):
    return sap.compute_sap(data, Recorder(data, fn), np.random.RandomState(seed), **{**SMALL, **params})


def best_map_accuracy(z, v):
    """Accuracy of the best function g of the discrete column z predicting v (brute force)."""
    return sum(np.max(np.bincount(v[z == value])) for value in np.unique(z)) / len(v)


def noise_representation(dim, seed):
    rng = np.random.RandomState(seed)
    return lambda f: rng.standard_normal((len(f), dim))


def test_discrete_score_matrix_of_binary_factors():
    # Binary factors as codes: a 1-D threshold separates each factor exactly (accuracy 1); a
    # different factor's column is independent of it, so no function of it beats the best map
    # of its values (brute force), which is ~1/2.
    rs = np.random.RandomState(0)
    factors, factors_test = rs.randint(2, size=(1000, 3)), rs.randint(2, size=(1000, 3))
    scores = sap.discrete_score_matrix(factors.astype(float), factors, factors_test.astype(float), factors_test)
    np.testing.assert_array_equal(np.diag(scores), 1.0)
    for i in range(3):
        for k in range(3):
            if i != k:
                assert scores[i, k] <= best_map_accuracy(factors_test[:, i], factors_test[:, k]) + 1e-12
                assert abs(scores[i, k] - 0.5) < 0.06


def test_factors_themselves_binary_sap_is_one_minus_chance():
    # per factor: top 1 (its own dimension), second ~1/2 (another factor's dimension, chance)
    data = ToyData((2, 2, 2))
    result = run(data, lambda f: f)
    assert result == {**result, "num_train": 1000, "num_test": 1000, "continuous_factors": False}
    assert abs(result["SAP_score"] - 0.5) < 0.05
    # continuous: squared correlation 1 with itself, ~0 (sd ~ 1/n) with the others
    assert run(data, lambda f: f, continuous_factors=True)["SAP_score"] > 0.98


def test_continuous_score_matrix_matches_corrcoef():
    rs = np.random.RandomState(1)
    codes = rs.standard_normal((500, 4))
    factors = rs.randint(5, size=(500, 3)).astype(float)
    codes[:, 1] += factors[:, 2]
    expected = np.corrcoef(codes.T, factors.T)[:4, 4:] ** 2
    np.testing.assert_allclose(sap.continuous_score_matrix(codes, factors), expected, rtol=1e-10)


def test_permutation_leaves_sap_unchanged_and_scaling_too_for_continuous_factors():
    data = ToyData((3, 4, 5))
    base = run(data, lambda f: f)["SAP_score"]
    assert base > 0.3
    # permuting the code dimensions permutes the rows of the score matrix: the same fits
    assert run(data, lambda f: f[:, [2, 0, 1]])["SAP_score"] == base
    # the discrete score is not scale invariant (C = 0.01 penalises the SVM weight, so a
    # shrunk dimension is fitted worse), as in the reference; the squared correlation is
    base_c = run(data, lambda f: f, continuous_factors=True)["SAP_score"]
    moved_c = run(data, lambda f: f[:, [2, 0, 1]] * np.array([3.0, -0.5, 2.0]) + 1.0,
                  continuous_factors=True)["SAP_score"]
    assert base_c > 0.98 and abs(base_c - moved_c) < 1e-9


@pytest.mark.parametrize("continuous", [False, True])
def test_pure_noise_scores_about_zero(continuous):
    # every column of the score matrix holds d values with the same distribution (chance level
    # or squared correlations of order 1/n): the top-two gap is a few standard errors
    data = ToyData((3, 4, 5))
    result = run(data, noise_representation(5, 0), continuous_factors=continuous)
    assert 0.0 <= result["SAP_score"] < 0.04


@pytest.mark.parametrize("continuous", [False, True])
def test_two_factors_in_one_dimension_and_duplicates_lower_sap(continuous):
    data = ToyData((2, 2, 2))
    identity = run(data, lambda f: f, continuous_factors=continuous)["SAP_score"]
    merged = run(data, lambda f: np.stack([2 * f[:, 0] + f[:, 1], f[:, 2]], axis=1),
                 continuous_factors=continuous)["SAP_score"]
    duplicated = run(data, lambda f: f[:, [0, 0, 1, 2]], continuous_factors=continuous)["SAP_score"]
    assert merged < identity - 0.1
    # factor 0's gap is exactly 0 (two identical top dimensions): SAP loses a third of its value
    assert abs(duplicated - 2 / 3 * identity) < 0.03


def with_dead(f):
    return np.concatenate([np.zeros((len(f), 1)), f, np.full((len(f), 1), 3.7)], axis=1)


def test_dead_dimensions_score_zero_correlation_without_nan():
    data = ToyData((3, 4, 5))
    result = run(data, with_dead, continuous_factors=True)
    assert all(np.isfinite(v) for v in result.values() if not isinstance(v, (bool, str)))
    # the dead dimensions never beat an informative one: same score as without them
    assert result["SAP_score"] == run(data, lambda f: f, continuous_factors=True)["SAP_score"]
    codes = with_dead(np.random.RandomState(0).randint(3, size=(200, 3))).astype(float)
    scores = sap.continuous_score_matrix(codes, codes[:, 1:4])
    np.testing.assert_array_equal(scores[[0, 4]], 0.0)
    # all dimensions dead: SAP 0, not NaN
    assert run(data, lambda f: np.zeros((len(f), 3)), continuous_factors=True)["SAP_score"] == 0.0


def test_dead_dimension_scores_a_constant_predictors_accuracy_as_disentanglement_lib():
    # disentanglement_lib fits the SVM on a constant code too: it predicts one class, so its
    # score is that class's frequency among the test points, never 0
    rs = np.random.RandomState(0)
    factors, factors_test = rs.randint(3, size=(200, 3)), rs.randint(3, size=(200, 3))
    scores = sap.discrete_score_matrix(with_dead(factors).astype(float), factors,
                                       with_dead(factors_test).astype(float), factors_test)
    for dead in (0, 4):
        for k in range(3):
            frequencies = np.bincount(factors_test[:, k], minlength=3) / len(factors_test)
            assert np.isclose(frequencies, scores[dead, k]).any()
    # so a collapsed dimension beside a noisy informative one scores about as a useless noisy one
    # does (both near chance, 1/3), rather than 0, which had made the gap 0.58 and not ~0.25
    data = ToyData((3,))
    rng = np.random.RandomState(1)
    informative = lambda f: f + rng.normal(0, 1, (len(f), 1))
    collapsed = run(data, lambda f: np.c_[informative(f), np.zeros(len(f))])["SAP_score"]
    useless = run(data, lambda f: np.c_[informative(f), rng.normal(0, 1, (len(f), 1))])["SAP_score"]
    assert collapsed < 0.35 and abs(collapsed - useless) < 0.08
    # all dimensions dead: every column the same constant predictor, SAP 0, not NaN
    assert run(data, lambda f: np.zeros((len(f), 3)))["SAP_score"] == 0.0


def test_single_valued_factor_is_left_out_of_the_mean():
    with_constant = run(ToyData((1, 2, 2)), lambda f: f)["SAP_score"]
    assert abs(with_constant - 0.5) < 0.05          # the mean of two ~0.5 gaps, not (0 + ...)/3


def test_a_single_code_dimension_has_no_score_but_a_reason():
    # its second-best had been taken as 0: a constant code then scored its class frequency, chance,
    # above a healthy model's gaps (the same constant code in three dimensions scores 0)
    for fn in (lambda f: f, lambda f: np.zeros((len(f), 1))):
        result = run(ToyData((2, 3)), lambda f, fn=fn: fn(f[:, :1]))
        assert "SAP_score" not in result and "second" in result["SAP_score_missing_reason"]
    assert run(ToyData((2, 3)), lambda f: np.zeros((len(f), 3)))["SAP_score"] == 0.0


def test_same_seed_gives_identical_dict():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.sin(f @ np.array([[1.0, 0.3], [0.2, 1.0], [0.5, -0.7]]))
    assert run(data, fn, seed=3) == run(data, fn, seed=3)
    assert run(data, fn, seed=3, batch_size=64) == run(data, fn, seed=3, batch_size=5000)


def test_bad_settings_raise_user_errors():
    data = ToyData((3, 4))
    with pytest.raises(UserError, match="continuous_factors"):
        run(data, lambda f: f, continuous_factors="no")
    with pytest.raises(UserError, match="num_test"):
        run(data, lambda f: f, num_test=0)
    with pytest.raises(UserError, match="varies"):
        run(ToyData((1, 1)), lambda f: f)
