"""Pinwheel: the sample's size and clusters, the generator's closed form (the warp inverted
exactly), its moments, seeded reproducibility, and sampling by cluster."""

import numpy as np
import pytest
import scipy.optimize

import dlbench.data as data
from dlbench.data.ground_truth import require_discrete_factors
from dlbench.data.pinwheel import Pinwheel, pinwheel_warp
from dlbench.errors import UserError


def unwarp(points, clusters, num_clusters, rate, radius):
    """The pre-warp features (r, t) of points, given each point's radius feature r: turn each point
    back by a = 2 pi c / C + rate exp(r) (the inverse of the row-vector rotation of pinwheel.m)."""
    angle = 2 * np.pi * clusters / num_clusters + rate * np.exp(radius)
    x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
    return np.stack([x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)], axis=1)


def test_the_standard_sample_is_400_points_in_4_equal_clusters():
    ds = data.get_dataset("pinwheel")
    assert isinstance(ds, Pinwheel) and ds.name == "pinwheel"
    assert ds.images.shape == (400, 2) and ds.images.dtype == np.float32 and len(ds) == 400
    assert ds.observation_shape == (2,) and ds.pixel_scale == 1.0
    assert ds.factor_names == ["cluster"] and ds.factors_num_values == [4] and ds.num_factors == 1
    assert np.bincount(ds.labels).tolist() == [100, 100, 100, 100]
    assert ds.settings() == {"seed": 0, "num_clusters": 4, "num_per_cluster": 100, "radial_std": 0.3,
                             "tangential_std": 0.1, "rate": 0.25}
    assert not ds.full_grid and not ds.continuous_factors
    require_discrete_factors(ds, "mig")  # clusters are classes: no error


def test_points_are_the_warp_of_their_features_exactly():
    ds = Pinwheel()
    features = unwarp(ds.images, ds.labels, 4, 0.25, ds.features[:, 0])
    np.testing.assert_allclose(features, ds.features, atol=1e-6)  # float32 points
    # the radius of a point is that of its features (a rotation), and the arms turn clockwise
    np.testing.assert_allclose(np.hypot(*ds.images.T.astype(np.float64)), np.hypot(*ds.features.T), rtol=1e-6)


def test_the_radius_feature_is_recovered_from_the_point_alone():
    """Inverting without the stored features: r solves r = (first coordinate of the point turned
    back by a(r)); every root in [-|x|, |x|] is bracketed on a fine grid and refined with brentq,
    and one of them is the generator's r."""
    ds = Pinwheel()
    for i in (0, 123, 250, 399):
        point, cluster = ds.images[i].astype(np.float64), ds.labels[i]
        rho = np.hypot(*point)

        def residual(r):
            return unwarp(point[None], np.array([cluster]), 4, 0.25, np.array([r]))[0, 0] - r

        grid = np.linspace(-rho, rho, 4001)
        values = np.array([residual(r) for r in grid])
        brackets = np.flatnonzero(np.sign(values[:-1]) != np.sign(values[1:]))
        roots = [scipy.optimize.brentq(residual, grid[j], grid[j + 1], xtol=1e-12) for j in brackets]
        assert min(abs(r - ds.features[i, 0]) for r in roots) < 1e-5


def test_pre_warp_features_have_the_specified_moments_per_cluster():
    """A large sample from the same generator: per cluster, r ~ N(1, 0.3^2) and t ~ N(0, 0.1^2),
    independent; checked within 5 standard errors (n = 40000 per cluster)."""
    n = 40_000
    ds = Pinwheel(num_per_cluster=n, seed=3)
    for c in range(4):
        points = ds.images[ds.labels == c]
        r = np.hypot(*points.T.astype(np.float64))  # only |(r, t)| is read from the point itself ...
        f = unwarp(points, np.full(n, c), 4, 0.25, ds.features[ds.labels == c, 0])
        np.testing.assert_allclose(np.hypot(*f.T), r, rtol=1e-5)  # ... and the features agree with it
        radial, tangential = f[:, 0], f[:, 1]
        for values, mean, std in ((radial, 1.0, 0.3), (tangential, 0.0, 0.1)):
            assert abs(values.mean() - mean) < 5 * std / np.sqrt(n)
            assert abs(values.std() - std) < 5 * std / np.sqrt(2 * n)
        assert abs(np.corrcoef(radial, tangential)[0, 1]) < 5 / np.sqrt(n)


def test_the_clusters_are_the_arms_turned_by_a_quarter():
    """Cluster c is cluster 0 turned clockwise by 2 pi c / 4 when the features are the same."""
    ds = Pinwheel(num_per_cluster=50, seed=1)
    feats = ds.features[:50]
    base = pinwheel_warp(feats, np.zeros(50, int), 4, 0.25)
    for c in range(1, 4):
        turned = pinwheel_warp(feats, np.full(50, c), 4, 0.25)
        a = 2 * np.pi * c / 4
        clockwise = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # row vectors times R
        np.testing.assert_allclose(turned, base @ clockwise, atol=1e-12)


def test_the_sample_is_a_function_of_the_seed():
    a, b, c = Pinwheel(), Pinwheel(seed=0), Pinwheel(seed=1)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert np.array_equal(Pinwheel(**c.settings()).images, c.images)


def test_observations_of_a_cluster_are_points_of_that_cluster():
    ds = Pinwheel()
    rng = np.random.RandomState(0)
    factors = ds.sample_factors(4000, rng)
    assert factors.shape == (4000, 1) and factors.dtype.kind == "i"
    counts = np.bincount(factors[:, 0], minlength=4)
    assert counts.sum() == 4000 and np.abs(counts - 1000).max() < 5 * np.sqrt(1000 * 0.75)
    obs = ds.sample_observations_from_factors(factors, rng)
    assert obs.shape == (4000, 2) and obs.dtype == np.float32
    # each observation is one of the stored points, of the requested cluster
    rows = np.array([np.flatnonzero((ds.images == o).all(axis=1))[0] for o in obs])
    np.testing.assert_array_equal(ds.labels[rows], factors[:, 0])
    # several different points per cluster: not one observation per factor value
    assert all(len(np.unique(rows[factors[:, 0] == c])) > 50 for c in range(4))
    again = ds.sample_observations_from_factors(factors, np.random.RandomState(5))
    assert not np.array_equal(obs, again)


def test_grid_operations_are_refused_with_a_clear_error():
    ds = Pinwheel()
    with pytest.raises(UserError, match="index_of needs a full factor grid.*pinwheel"):
        ds.index_of([[0]])
    with pytest.raises(UserError, match="factors_of needs a full factor grid"):
        ds.factors_of([0])
    with pytest.raises(UserError, match="clusters are 0..3"):
        ds.sample_observations_from_factors(np.array([[4]]), np.random.RandomState(0))


@pytest.mark.parametrize("kwargs, message", [
    ({"num_per_cluster": 0}, "num_per_cluster must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"radial_std": -0.1}, "radial_std must be a finite number >= 0"),
    ({"rate": "fast"}, "rate must be a number"),
])
def test_bad_settings_are_one_clear_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        Pinwheel(**kwargs)


def test_dlb_data_sees_a_generated_dataset():
    assert Pinwheel.file_status() == "generated" and Pinwheel.default_path() is None
    info = Pinwheel.describe()
    assert info["num_images"] == 400 and info["factors_num_values"] == [4] and info["radial_std"] == 0.3
