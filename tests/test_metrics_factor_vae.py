"""FactorVAE score: exact limits, chance level, pruning of dead dimensions, batching."""

import inspect

import numpy as np
import pytest

from dlbench.metrics import evaluate, factor_vae
from tests.toy_data import Recorder, ToyData

SMALL = dict(num_train=300, num_eval=200, num_variance_estimate=1000)


def test_score_of_the_factors_is_exactly_one():
    data = ToyData((3, 4, 5))
    result = evaluate("factor_vae", data, Recorder(data, lambda f: f), seed=2, **SMALL)
    assert result["train_accuracy"] == 1.0
    assert result["eval_accuracy"] == 1.0
    assert result["num_active_dims"] == 3
    assert result["batch_size"] == 64 and result["num_train"] == 300 and result["num_eval"] == 200
    assert result["num_variance_estimate"] == 1000 and result["prune_threshold"] == 0.05


def noise_representation(dim, seed):
    rng = np.random.RandomState(seed)
    return lambda f: rng.standard_normal((len(f), dim))


@pytest.mark.parametrize("sizes", [(3, 4, 5), (1, 3, 4, 5)])
def test_gaussian_noise_is_at_chance(sizes):
    # Codes independent of the factors: the voting dimension is independent of the voted
    # factor, which is uniform over the K' varying factors, so any classifier built from the
    # training votes is right on a fresh vote with probability exactly 1/K' (chance). The
    # eval accuracy is a mean of num_eval Bernoulli(1/K') outcomes: sd = sqrt(2/9/5000) ~ 0.0067;
    # bound at 0.04 (6 sd). A single-valued factor (second case) must not count in K':
    # with it, chance would be 1/4, 12 sd away.
    # The train accuracy takes the most-voted factor per dimension, so it is >= 1/K' exactly,
    # and exceeds it only by the overfit of ~100 votes per dimension (~0.04).
    data = ToyData(sizes)
    k_varying = sum(n > 1 for n in sizes)
    assert k_varying == 3
    result = evaluate("factor_vae", data, Recorder(data, noise_representation(10, 0)), seed=0,
                      num_train=1000, num_eval=5000, num_variance_estimate=1000)
    assert result["num_active_dims"] == 10
    assert abs(result["eval_accuracy"] - 1 / k_varying) < 0.04
    assert 1 / k_varying - 1e-12 <= result["train_accuracy"] < 1 / k_varying + 0.12


@pytest.mark.parametrize("sizes", [(6,), (1, 6, 1)])
def test_with_a_single_factor_that_varies_the_score_is_undefined(sizes):
    # every vote fixes that factor, so the majority vote is right for noise too: it had scored 1 (pinwheel's
    # one factor, a dSprites grid kept to one factor) where the score says nothing
    data = ToyData(sizes)
    votes = factor_vae.generate_votes(data, Recorder(data, noise_representation(4, 1)), np.random.RandomState(0),
                                      50, 64, np.ones(4), np.ones(4, bool), 4096)
    assert (np.argmax(votes, axis=0) == sizes.index(6)).all()  # the trivially right classifier
    result = evaluate("factor_vae", data, Recorder(data, noise_representation(4, 1)), **SMALL)
    assert "train_accuracy" not in result and "eval_accuracy" not in result
    assert result["eval_accuracy_missing_reason"] == result["train_accuracy_missing_reason"]
    assert result["eval_accuracy_missing_reason"].startswith("a single factor varies")
    assert result["num_active_dims"] == 4


def test_single_valued_factor_never_voted():
    data = ToyData((1, 4, 5))
    rs = np.random.RandomState(0)
    rep = Recorder(data, noise_representation(4, 1))
    votes = factor_vae.generate_votes(data, rep, rs, 500, 64, np.ones(4), np.ones(4, bool), 4096)
    assert votes.shape == (3, 4)
    assert votes[0].sum() == 0 and votes.sum() == 500
    # with the factors as codes the constant factor's dimension is pruned and the score is exact
    result = evaluate("factor_vae", data, Recorder(data, lambda f: f), **SMALL)
    assert result == {**result, "train_accuracy": 1.0, "eval_accuracy": 1.0, "num_active_dims": 2}


def test_constant_and_dead_dimensions_are_pruned_and_never_voted():
    data = ToyData((3, 4, 5))
    # constant first: were it kept, its 0/0 variance ratio would be NaN, which np.argmin picks
    rep_fn = lambda f: np.concatenate([np.full((len(f), 1), 3.7), f[:, :1], np.zeros((len(f), 1)),
                                       f[:, 1:]], axis=1)
    result = evaluate("factor_vae", data, Recorder(data, rep_fn), seed=5, **SMALL)
    assert all(np.isfinite(v) for v in result.values())
    assert result["train_accuracy"] == 1.0 and result["eval_accuracy"] == 1.0
    assert result["num_active_dims"] == 3

    global_var = np.array([0.0, 0.6, 0.0, 1.2, 2.0])
    active = factor_vae.prune_dims(global_var, 0.05)
    np.testing.assert_array_equal(active, [False, True, False, True, True])
    votes = factor_vae.generate_votes(data, Recorder(data, rep_fn), np.random.RandomState(0), 400, 64,
                                      global_var, active, 4096)
    assert votes[:, [0, 2]].sum() == 0 and votes.sum() == 400


def test_num_active_dims_counts_dimensions_with_std_at_least_threshold():
    data = ToyData((3, 4, 5))
    rng = np.random.RandomState(7)
    # stds: ~0.82 (factor), 0.01, 0.2, 0 (dead), ~0.045 (0.04 * factor with 4 values: 0.04 * 1.118)
    rep_fn = lambda f: np.stack([f[:, 0], 0.01 * rng.standard_normal(len(f)), 0.2 * rng.standard_normal(len(f)),
                                 np.zeros(len(f)), 0.04 * f[:, 1]], 1)
    result = evaluate("factor_vae", data, Recorder(data, rep_fn), **SMALL)
    assert result["num_active_dims"] == 2
    assert all(np.isfinite(v) for v in result.values())
    # a lower threshold keeps the informative small-scale dimension
    low = evaluate("factor_vae", data, Recorder(data, rep_fn), prune_threshold=0.005, **SMALL)
    assert low["num_active_dims"] == 4


def test_no_active_dimension_gives_zero_accuracies():
    data = ToyData((3, 4, 5))
    rep = Recorder(data, lambda f: np.zeros((len(f), 3)))
    result = evaluate("factor_vae", data, rep, **SMALL)
    assert result["train_accuracy"] == 0.0 and result["eval_accuracy"] == 0.0
    assert result["num_active_dims"] == 0
    assert sum(rep.call_sizes) == SMALL["num_variance_estimate"]


def test_vote_batches_fix_one_factor_and_are_stacked_into_large_calls():
    data = ToyData((3, 4, 5))
    rep = Recorder(data, lambda f: f)
    votes = factor_vae.generate_votes(data, rep, np.random.RandomState(3), 150, 64, np.ones(3),
                                      np.ones(3, bool), 4096)
    assert rep.call_sizes == [4096, 4096, 22 * 64]           # 64 votes of 64 points per call
    batches = rep.all_factors.reshape(150, 64, 3)
    fixed = (batches == batches[:, :1, :]).all(axis=1)       # (votes, factors): factor constant
    assert fixed.any(axis=1).all()
    # the codes are the factors, so each vote goes to its own fixed factor's dimension
    np.testing.assert_array_equal(votes, np.diag(fixed.sum(axis=0)))
    # the voted factor is uniform over the factors
    assert all(30 <= c <= 70 for c in fixed.sum(axis=0))


def test_representation_batch_size_does_not_change_result_and_seed_does():
    data = ToyData((3, 4, 5))
    q, _ = np.linalg.qr(np.random.RandomState(0).standard_normal((3, 3)))
    fn = lambda f: (f - 2.0) @ q
    results = [evaluate("factor_vae", data, Recorder(data, fn), seed=1, representation_batch_size=b, **SMALL)
               for b in (4096, 640, 64)]
    assert results[0] == results[1] == results[2]
    assert 0.0 < results[0]["eval_accuracy"] < 1.0
    other = [evaluate("factor_vae", data, Recorder(data, fn), seed=s, **SMALL)["train_accuracy"]
             for s in (2, 3, 4)]
    assert len(set(other + [results[0]["train_accuracy"]])) > 1


def test_default_parameters_are_disentanglement_lib_ones():
    params = inspect.signature(factor_vae.compute_factor_vae).parameters
    assert params["batch_size"].default == 64
    assert params["num_train"].default == 10000
    assert params["num_eval"].default == 5000
    assert params["num_variance_estimate"].default == 10000
    assert params["prune_threshold"].default == 0.05
