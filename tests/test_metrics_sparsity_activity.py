"""Hoyer sparsity and active units, on representations whose answer is known by construction."""

import numpy as np
import pytest

from dlbench.metrics.active_units import compute_active_units
from dlbench.metrics.hoyer_sparsity import compute_hoyer_sparsity, hoyer, hoyer_sparsity_from_codes
from tests.toy_data import Recorder, ToyData


def test_hoyer_is_zero_for_dense_and_one_for_one_hot_vectors():
    np.testing.assert_allclose(hoyer(np.ones((3, 5)) * [[1], [2], [-3]]), 0.0, atol=1e-12)
    np.testing.assert_allclose(hoyer(np.eye(4) * 7.0), 1.0, atol=1e-12)


def test_hoyer_matches_its_definition_on_random_vectors():
    rs = np.random.RandomState(0)
    y = rs.normal(size=(50, 6))
    expected = [(np.sqrt(6) - np.sum(np.abs(v)) / np.linalg.norm(v)) / (np.sqrt(6) - 1) for v in y]
    np.testing.assert_allclose(hoyer(y), expected, rtol=1e-12)


def test_normalisation_removes_the_scale_of_each_dimension():
    rs = np.random.RandomState(1)
    codes = rs.normal(size=(1000, 4))
    scaled = codes * [1.0, 10.0, 0.1, 3.0]
    assert hoyer_sparsity_from_codes(codes)[0] == pytest.approx(hoyer_sparsity_from_codes(scaled)[0], rel=1e-12)


def test_sparse_codes_score_higher_than_dense_ones():
    rs = np.random.RandomState(2)
    dense = rs.normal(size=(2000, 8))
    sparse = dense * (rs.uniform(size=dense.shape) < 0.2)  # each entry "off" with probability 0.8
    assert hoyer_sparsity_from_codes(sparse)[0] > hoyer_sparsity_from_codes(dense)[0] + 0.2


def test_dead_dimensions_are_left_out_and_too_few_live_ones_are_missing_with_a_reason():
    rs = np.random.RandomState(3)
    live = rs.normal(size=(500, 3))
    with_dead = np.concatenate([live, np.zeros((500, 2))], axis=1)
    score, reason, dims, points = hoyer_sparsity_from_codes(with_dead)
    assert reason is None and dims == 3 and points == 500
    assert score == pytest.approx(hoyer_sparsity_from_codes(live)[0], rel=1e-12)
    data = ToyData()
    result = compute_hoyer_sparsity(data, Recorder(data, lambda f: np.zeros((len(f), 4))),
                                    np.random.RandomState(0), num_points=100)
    assert "hoyer_sparsity" not in result and "vary" in result["hoyer_sparsity_missing_reason"]


def test_hoyer_sparsity_end_to_end_is_seeded_and_reproducible():
    data = ToyData()
    one_hot = lambda f: np.eye(5)[f[:, 2]]  # exactly one non-zero code per point
    a = compute_hoyer_sparsity(data, Recorder(data, one_hot), np.random.RandomState(4), num_points=300)
    b = compute_hoyer_sparsity(data, Recorder(data, one_hot), np.random.RandomState(4), num_points=300)
    assert a == b and a["num_points"] == 300
    assert a["hoyer_sparsity"] == pytest.approx(1.0, abs=1e-12)


def test_active_units_count_dimensions_whose_mean_varies_over_the_data():
    data = ToyData((3, 4, 5))
    # factor 0 (values 0..2, variance 2/3), factor 1 scaled to variance ~1e-4, a constant, noise-free copy
    fn = lambda f: np.stack([f[:, 0], 0.01 * f[:, 1], np.full(len(f), 3.0), f[:, 2]], axis=1)
    result = compute_active_units(data, Recorder(data, fn), np.random.RandomState(0), num_points=2000)
    assert result["active_units"] == 2 and result["num_dims"] == 4
    assert result["active_fraction"] == 0.5
    assert result["variance_2"] == 0.0
    assert result["variance_0"] == pytest.approx(2.0 / 3.0, rel=0.1)


def test_both_are_registered_for_dlb_evaluate():
    from dlbench.metrics import available_metrics, evaluate

    assert {"hoyer_sparsity", "active_units"} <= set(available_metrics())
    data = ToyData()
    result = evaluate("active_units", data, Recorder(data, lambda f: f.astype(float)), seed=0, num_points=50)
    assert result["active_units"] == 3
