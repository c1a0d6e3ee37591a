"""Modularity and explicitness: representations whose answer is known by construction, and an
independent recomputation of each score."""

import inspect

import numpy as np
import pytest
import sklearn.metrics
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import MultiLabelBinarizer

from dlbench.errors import UserError
from dlbench.metrics import modularity_explicitness as me
from dlbench.metrics import utils
from tests.test_metrics_mig import plugin_mi
from tests.toy_data import Recorder, ToyData


def run(data, fn, seed=0, **params):
    params = {"num_train": 2000, "num_test": 1000, **params}
    return me.compute_modularity_explicitness(data, Recorder(data, fn), np.random.RandomState(seed), **params)


def expected_modularity(codes_discrete, factors):
    """Ridgeway and Mozer's modularity from plug-in MI (contingency tables), code by code."""
    per_code = []
    for i in range(codes_discrete.shape[1]):
        mi = np.array([plugin_mi(codes_discrete[:, i], factors[:, k]) for k in range(factors.shape[1])])
        best = mi.max()
        if best == 0:
            per_code.append(0.0)
            continue
        others = sum(m ** 2 for k, m in enumerate(mi) if k != mi.argmax())
        per_code.append(1.0 - others / (best ** 2 * (len(mi) - 1)))
    return float(np.mean(per_code))


# ---- modularity -------------------------------------------------------------------------------

def test_modularity_formula_on_a_hand_made_matrix():
    mi = np.array([[2.0, 0.0, 0.0],      # one factor only: 1
                   [1.0, 1.0, 1.0],      # all alike: 1 - 2 / 2 = 0
                   [0.0, 3.0, 1.5],      # 1 - 1.5^2 / (9 * 2) = 0.875
                   [0.0, 0.0, 0.0]])     # no information: 0, as disentanglement_lib
    np.testing.assert_allclose(me.modularity_per_code(mi), [1.0, 0.0, 0.875, 0.0], rtol=0, atol=1e-15)


def test_modularity_of_the_factors_is_near_one_and_matches_independent_computation():
    data = ToyData((3, 4, 5))
    factors = data.sample_factors(3000, np.random.RandomState(0))
    score, reason = me.modularity_from_codes(factors.astype(float), factors, 20)
    assert reason is None
    assert score == pytest.approx(expected_modularity(factors, factors), abs=1e-12)
    assert score > 0.99


def test_permuted_and_scaled_factors_have_the_same_modularity():
    data = ToyData((3, 4, 5))
    factors = data.sample_factors(3000, np.random.RandomState(1))
    base, _ = me.modularity_from_codes(factors.astype(float), factors, 20)
    codes = factors[:, [2, 0, 1]] * np.array([-0.3, 7.0, 2.5]) + 1.0
    permuted, _ = me.modularity_from_codes(codes, factors, 20)
    assert permuted == pytest.approx(base, abs=1e-12)


def test_one_code_holding_two_factors_lowers_modularity():
    data = ToyData((3, 5, 4))
    factors = data.sample_factors(4000, np.random.RandomState(2))
    # z0 = 5 v0 + v1 takes 15 values, each in its own bin: I(z0; v0) = H(v0), I(z0; v1) = H(v1)
    mixed = np.stack([5 * factors[:, 0] + factors[:, 1], factors[:, 2]], 1).astype(float)
    score, _ = me.modularity_from_codes(mixed, factors, 20)
    identity, _ = me.modularity_from_codes(factors.astype(float), factors, 20)
    discrete = utils.histogram_discretize(mixed, 20)
    assert score == pytest.approx(expected_modularity(discrete, factors), abs=1e-12)
    # population value: z0 -> 1 - log(3)^2 / (2 log(5)^2) (plus O(1/n) plug-in bias), z1 -> 1
    population = 0.5 * (1 - np.log(3) ** 2 / (2 * np.log(5) ** 2) + 1.0)
    assert score == pytest.approx(population, abs=0.01)
    assert score < identity - 0.1


def test_dead_code_counts_as_zero_and_gives_no_nan():
    data = ToyData((3, 4, 5))
    factors = data.sample_factors(3000, np.random.RandomState(3))
    codes = np.concatenate([factors.astype(float), np.full((3000, 1), 0.7)], 1)
    score, _ = me.modularity_from_codes(codes, factors, 20)
    identity, _ = me.modularity_from_codes(factors.astype(float), factors, 20)
    assert np.isfinite(score)
    assert score == pytest.approx(identity * 3 / 4, abs=1e-12)


def test_modularity_with_one_varying_factor_is_missing_with_reason():
    data = ToyData((1, 2))                   # the first factor is single-valued: excluded
    result = run(data, lambda f: f.astype(float))
    assert "modularity_score" not in result
    assert "two factors" in result["modularity_score_missing_reason"]
    assert result["explicitness_score_train"] == 1.0   # a binary factor read off its own code
    assert result["explicitness_score_test"] == 1.0


# ---- explicitness ---------------------------------------------------------------------------

def test_explicitness_of_binary_factors_is_one():
    result = run(ToyData((2, 2, 2)), lambda f: f.astype(float))
    assert result["explicitness_score_train"] == 1.0
    assert result["explicitness_score_test"] == 1.0


def test_explicitness_of_one_hot_factors_is_near_one():
    # each class of each factor is one coordinate of the code: linearly separable from the rest
    nums = (3, 4, 5)
    one_hot = lambda f: np.concatenate([np.eye(n)[f[:, k]] for k, n in enumerate(nums)], 1)
    result = run(ToyData(nums), one_hot)
    assert result["explicitness_score_train"] > 0.999
    assert result["explicitness_score_test"] > 0.999


def test_explicitness_of_noise_is_one_half():
    # fresh noise for every point (not a lookup per grid cell, which would identify the cell)
    noise = np.random.RandomState(5)
    result = run(ToyData((3, 4, 5)), lambda f: noise.standard_normal((len(f), 3)),
                 num_train=3000, num_test=3000)
    assert result["explicitness_score_test"] == pytest.approx(0.5, abs=0.03)
    assert result["explicitness_score_train"] == pytest.approx(0.5, abs=0.05)


def reference_explicitness(codes_train, factors_train, codes_test, factors_test):
    """disentanglement_lib's protocol written out: standardise, per class a binary liblinear
    logistic regression, probabilities normalised over classes, MultiLabelBinarizer + macro
    ROC-AUC (all classes present in both sets here)."""
    mean, std = codes_train.mean(0), codes_train.std(0)
    x_train, x_test = (codes_train - mean) / std, (codes_test - mean) / std
    scores = []
    for k in range(factors_train.shape[1]):
        y_train, y_test = factors_train[:, k], factors_test[:, k]
        classes = np.unique(y_train)
        fits = [LogisticRegression(solver="liblinear", random_state=0).fit(x_train, y_train == c)
                for c in (classes[1:] if len(classes) == 2 else classes)]
        aucs = []
        for x, y in ((x_train, y_train), (x_test, y_test)):
            p = np.stack([fit.predict_proba(x)[:, 1] for fit in fits], 1)
            p = np.concatenate([1 - p, p], 1) if len(classes) == 2 else p / p.sum(1, keepdims=True)
            labels = MultiLabelBinarizer().fit_transform(y[:, None])
            aucs.append(sklearn.metrics.roc_auc_score(labels, p))
        scores.append(aucs)
    return tuple(np.mean(scores, axis=0))


def test_explicitness_matches_the_reference_protocol_written_out():
    data = ToyData((2, 3, 4))
    mix = np.array([[1.0, 0.3, -0.2], [0.2, 1.0, 0.5], [0.5, -0.4, 1.0]])
    fn = lambda f: np.sin(f @ mix) + 0.1 * f
    rs = np.random.RandomState(7)
    factors_train, factors_test = data.sample_factors(1500, rs), data.sample_factors(800, rs)
    codes_train, codes_test = fn(factors_train), fn(factors_test)
    got = me.explicitness_from_codes(codes_train, factors_train, codes_test, factors_test)
    expected = reference_explicitness(codes_train, factors_train, codes_test, factors_test)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    assert 0.5 < got[1] < 1.0


def test_dead_code_dimension_gives_finite_explicitness():
    result = run(ToyData((2, 2)), lambda f: np.concatenate([f, np.zeros((len(f), 1))], 1))
    assert result["explicitness_score_train"] == 1.0
    assert result["explicitness_score_test"] == 1.0
    assert np.isfinite(result["modularity_score"])


# ---- protocol -------------------------------------------------------------------------------

def test_same_seed_same_dict_and_batch_size_does_not_matter():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.sin(f @ np.array([[1.0, 0.3], [0.2, 1.0], [0.5, -0.4]]))
    first = run(data, fn, seed=4, batch_size=700)
    assert first == run(data, fn, seed=4, batch_size=700)
    assert first == run(data, fn, seed=4, batch_size=5000)
    assert first != run(data, fn, seed=5, batch_size=700)
    assert set(first) == {"modularity_score", "explicitness_score_train", "explicitness_score_test",
                          "num_train", "num_test", "num_bins", "classifier_settings"}
    assert "solver='liblinear'" in first["classifier_settings"] and "one-vs-rest" in first["classifier_settings"]
    assert (first["num_train"], first["num_test"], first["num_bins"]) == (2000, 1000, 20)


def test_default_parameters_are_disentanglement_lib_ones():
    params = inspect.signature(me.compute_modularity_explicitness).parameters
    assert params["num_train"].default == 10000
    assert params["num_test"].default == 5000
    assert params["num_bins"].default == 20


def test_user_errors():
    with pytest.raises(UserError, match="at least one factor"):
        run(ToyData((1, 1)), lambda f: f.astype(float))
    with pytest.raises(UserError, match="num_test"):
        run(ToyData((3, 4)), lambda f: f.astype(float), num_test=0)
    with pytest.raises(UserError, match="increase num_train"):
        run(ToyData((40, 2)), lambda f: f.astype(float), num_train=2, num_test=50, seed=0)
