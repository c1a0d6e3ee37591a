"""BetaVAE score: exact limits, chance level, single-valued factors, dead dimensions, batching."""

import numpy as np
import pytest

from dlbench.errors import UserError
from dlbench.metrics import beta_vae, classifiers
from tests.toy_data import Recorder, ToyData

SMALL = dict(num_train=300, num_eval=300)


def run(data, fn, seed=0, **params):
    return beta_vae.compute_beta_vae(data, Recorder(data, fn), np.random.RandomState(seed), **params)


def noise_representation(dim, seed):
    rng = np.random.RandomState(seed)
    return lambda f: rng.standard_normal((len(f), dim))


def test_factors_themselves_score_exactly_one_and_parameters_are_recorded():
    # A point labelled k has feature 0 in dimension k and, in every other dimension j, the mean
    # of 64 |v_j - v_j'| which is 0 only with probability <= (1/3)^64: the classes are linearly
    # separable and a fitted logistic regression separates them.
    data = ToyData((3, 4, 5))
    result = run(data, lambda f: f, seed=2, **SMALL)
    assert result == {"batch_size": 64, "num_train": 300, "num_eval": 300,
                      "train_accuracy": 1.0, "eval_accuracy": 1.0,
                      "classifier_settings": classifiers.PUBLISHED_LOGISTIC_TEXT}


@pytest.mark.parametrize("sizes", [(3, 4, 5), (1, 3, 4, 5)])
def test_pure_noise_is_at_chance(sizes):
    # Features independent of the labels: any classifier is right on a fresh point with
    # probability exactly 1/K' (K' = 3 varying factors, uniform labels). eval_accuracy is a mean
    # of 3000 Bernoulli(1/3): sd = sqrt(2/9/3000) ~ 0.0086; bound 0.04 (~4.6 sd). With the
    # single-valued factor counted, chance would be 1/4, 9.7 sd away.
    data = ToyData(sizes)
    result = run(data, noise_representation(10, 0), num_train=500, num_eval=3000)
    assert abs(result["eval_accuracy"] - 1 / 3) < 0.04
    assert result["train_accuracy"] < 0.6   # fits noise a little, far from the separable 1.0


def test_pairs_share_exactly_the_labelled_factor_which_always_varies():
    data = ToyData((1, 4, 5, 2))
    labels, f1, f2 = beta_vae.draw_pair_factors(data, np.random.RandomState(0), 600, 64)
    assert f1.shape == f2.shape == (600, 64, 4)
    assert set(np.unique(labels)) == {1, 2, 3}       # never the single-valued factor 0
    for p in range(600):                             # brute force, point by point
        k = labels[p]
        np.testing.assert_array_equal(f1[p, :, k], f2[p, :, k])
        others = [j for j in (1, 2, 3) if j != k]
        # the other varying factors are drawn independently: they differ somewhere in 64 pairs
        assert all(np.any(f1[p, :, j] != f2[p, :, j]) for j in others)
    for k in (1, 2, 3):                              # labels roughly uniform over 1..3
        assert abs(np.mean(labels == k) - 1 / 3) < 0.07


def test_vectorised_features_match_a_per_point_loop():
    data = ToyData((3, 4, 5))
    weights = np.random.RandomState(3).standard_normal((3, 6))
    fn = lambda f: np.tanh(f @ weights)
    rs = np.random.RandomState(1)
    labels, f1, f2 = beta_vae.draw_pair_factors(data, rs, 50, 8)
    features = beta_vae.pair_features(data, Recorder(data, fn), rs, f1, f2, representation_batch_size=40)
    for p in range(50):
        z1 = np.tanh(f1[p].astype(np.float32) @ weights).astype(np.float32)
        z2 = np.tanh(f2[p].astype(np.float32) @ weights).astype(np.float32)
        expected = np.mean(np.abs(z1.astype(np.float64) - z2.astype(np.float64)), axis=0)
        np.testing.assert_allclose(features[p], expected, rtol=1e-6, atol=1e-7)


def test_representation_batch_size_does_not_change_the_result_and_calls_are_bounded():
    data = ToyData((3, 4, 5))
    rotation = np.linalg.qr(np.random.RandomState(4).standard_normal((3, 3)))[0]
    fn = lambda f: f @ rotation
    small = Recorder(data, fn)
    a = beta_vae.compute_beta_vae(data, small, np.random.RandomState(7), representation_batch_size=300, **SMALL)
    b = run(data, fn, seed=7, representation_batch_size=100000, **SMALL)
    assert a == b
    assert max(small.call_sizes) <= 300


def test_dead_and_constant_dimensions_give_finite_exact_scores():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.concatenate([np.full((len(f), 1), 3.7), f[:, :1], np.zeros((len(f), 1)), f[:, 1:]], axis=1)
    result = run(data, fn, seed=5, **SMALL)
    assert all(np.isfinite(v) for v in result.values() if not isinstance(v, str))
    assert result["train_accuracy"] == 1.0 and result["eval_accuracy"] == 1.0
    # every dimension dead: features all 0, the classifier predicts one class -> chance-level
    dead = run(data, lambda f: np.zeros((len(f), 2)), num_train=300, num_eval=3000)
    assert all(np.isfinite(v) for v in dead.values() if not isinstance(v, str))
    assert abs(dead["eval_accuracy"] - 1 / 3) < 0.04


def test_same_seed_gives_identical_dict():
    data = ToyData((3, 4, 5))
    fn = lambda f: np.sin(f @ np.array([[1.0, 0.3], [0.2, 1.0], [0.5, -0.7]]))
    assert run(data, fn, seed=11, **SMALL) == run(data, fn, seed=11, **SMALL)
    assert run(data, fn, seed=11, **SMALL) != run(data, fn, seed=12, **SMALL)


def test_a_single_varying_factor_is_refused_before_any_work():
    # every label would be that factor: a score of 1 for any model (disentanglement_lib's
    # classifier refuses one class)
    data = ToyData((1, 5))
    with pytest.raises(UserError, match="two or more factors that vary.*has 1"):
        run(data, lambda f: f, num_train=20, num_eval=20)
    from dlbench.metrics import dataset_problem, evaluate
    assert "two or more factors" in dataset_problem("beta_vae", {}, data)
    assert dataset_problem("beta_vae", {}, ToyData((1, 5, 2))) is None
    with pytest.raises(UserError, match="two or more factors"):   # asked before a code is computed
        evaluate("beta_vae", data, lambda x: pytest.fail("encoded"), num_train=20, num_eval=20)


def test_training_points_of_one_label_leave_the_score_undefined_with_a_reason():
    rs = np.random.RandomState(0)
    features = rs.uniform(size=(3, 2))
    result = beta_vae.fit_and_score(features, np.array([1, 1, 1]), features, np.array([0, 1, 0]))
    assert set(result) == {"train_accuracy_missing_reason", "eval_accuracy_missing_reason"}
    assert "increase num_train" in result["eval_accuracy_missing_reason"]
    from dlbench.metrics import result_problem
    assert result_problem("beta_vae", result) is None        # stored and reused, not computed again


def test_bad_settings_raise_user_errors():
    data = ToyData((3, 4))
    with pytest.raises(UserError, match="batch_size"):
        run(data, lambda f: f, batch_size=0)
    with pytest.raises(UserError, match="num_train"):
        run(data, lambda f: f, num_train=2.5)
    with pytest.raises(UserError, match="vary"):
        run(ToyData((1, 1)), lambda f: f, **SMALL)
