"""Pinwheel: spiral clusters in the plane (Johnson et al., 2016), as in Appendix B of Mathieu et
al. (2019): 400 points in 4 spirals, rate 0.25; the cluster is the one factor.

The generator (R. P. Adams' pinwheel.m, which the authors ran): point i of cluster c has polar
features r_i ~ N(1, radial_std^2) (distance from the origin) and t_i ~ N(0, tangential_std^2)
(offset across the arm), and is turned by the angle a_i = 2 pi c / C + rate * exp(r_i), so arms
twist more the further out they reach:

    x_i = (r_i cos a_i + t_i sin a_i,  -r_i sin a_i + t_i cos a_i)

(the row vector (r, t) times [[cos a, -sin a], [sin a, cos a]], as in pinwheel.m: a clockwise turn).

Standard deviations. The paper quotes "radial and tangential standard deviations of 0.1 and 0.3":
those are the arguments of pinwheel(radial_std, tangential_std, ...), but pinwheel.m scales the
radial feature by its *tangential* argument and the tangential feature by its radial one. The data
the paper trained on therefore has a radial spread of 0.3 and a tangential spread of 0.1 (which
is what makes the clusters spirals: with a radial spread of 0.1, exp(r) hardly varies and each
cluster is a short arc). dlbench's parameters mean what their names say, and the defaults
reproduce the paper's data: radial_std=0.3, tangential_std=0.1. No rescaling (pinwheel.m has none;
the Python port in Johnson's SVAE code multiplies by 10).

The dataset is one fixed sample, drawn on construction from numpy's default_rng(seed) (seed 0 by
default) and held in memory (3.2 kB): `images` (N, 2) float32, rows ordered by cluster,
num_per_cluster each, with `labels` their clusters and `features` their (r, t).
It is not a grid: a cluster has many observations. sample_observations_from_factors draws, for
each requested cluster, one of that cluster's points uniformly with random_state (so metrics that
hold the cluster fixed see different points of it); index_of and factors_of do not apply.
"""

import numpy as np

from dlbench.data.ground_truth import GeneratedInMemory, GroundTruthData
from dlbench.errors import UserError

NAME = "pinwheel"
NUM_CLUSTERS = 4
NUM_PER_CLUSTER = 100
RADIAL_STD = 0.3       # the paper's "tangential" 0.3, see the module docstring
TANGENTIAL_STD = 0.1   # the paper's "radial" 0.1
RATE = 0.25


def pinwheel_warp(features, clusters, num_clusters, rate):
    """Points (n, 2) from polar features (n, 2) = (r, t) of the given clusters: the turn by
    a = 2 pi c / C + rate exp(r)."""
    r, t = features[:, 0], features[:, 1]
    angle = 2 * np.pi * np.asarray(clusters) / num_clusters + rate * np.exp(r)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.stack([r * cos + t * sin, -r * sin + t * cos], axis=1)


def _integer(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise UserError(f"pinwheel {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _nonnegative(name, value):
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise UserError(f"pinwheel {name} must be a number >= 0, got {value!r}") from None
    if isinstance(value, bool) or not np.isfinite(out) or out < 0:
        raise UserError(f"pinwheel {name} must be a finite number >= 0, got {value!r}")
    return out


class Pinwheel(GeneratedInMemory, GroundTruthData):
    """The pinwheel sample as ground-truth data: one factor, the cluster."""

    name = NAME
    factor_names = ["cluster"]
    observation_shape = (2,)
    pixel_scale = 1.0
    full_grid = False
    options = ("seed", "num_clusters", "num_per_cluster", "radial_std", "tangential_std", "rate")

    def __init__(self, seed=0, num_clusters=NUM_CLUSTERS, num_per_cluster=NUM_PER_CLUSTER,
                 radial_std=RADIAL_STD, tangential_std=TANGENTIAL_STD, rate=RATE):
        self.seed = _integer("seed", seed, minimum=0)
        self.num_clusters = _integer("num_clusters", num_clusters)
        self.num_per_cluster = _integer("num_per_cluster", num_per_cluster)
        self.radial_std = _nonnegative("radial_std", radial_std)
        self.tangential_std = _nonnegative("tangential_std", tangential_std)
        self.rate = _nonnegative("rate", rate)
        self.factors_num_values = [self.num_clusters]
        rng = np.random.default_rng(self.seed)
        n = self.num_clusters * self.num_per_cluster
        self.features = rng.standard_normal((n, 2)) * np.array([self.radial_std, self.tangential_std])
        self.features[:, 0] += 1.0
        self.labels = np.repeat(np.arange(self.num_clusters), self.num_per_cluster)
        self._points = pinwheel_warp(self.features, self.labels, self.num_clusters, self.rate).astype(np.float32)

    @property
    def images(self):
        """All points, float32 (N, 2), ordered by cluster."""
        return self._points

    def __len__(self):
        return len(self._points)

    def sample_observations_from_factors(self, factors, random_state):
        """For each row's cluster, one of that cluster's points drawn uniformly (float32 (n, 2))."""
        clusters = np.asarray(factors, dtype=np.int64).reshape(len(factors), -1)[:, 0]
        if clusters.size and (clusters.min() < 0 or clusters.max() >= self.num_clusters):
            raise UserError(f"pinwheel clusters are 0..{self.num_clusters - 1}, got {clusters.min()}..{clusters.max()}")
        rows = clusters * self.num_per_cluster + random_state.randint(self.num_per_cluster, size=len(clusters))
        return self._points[rows].copy()

    def settings(self):
        """The constructor arguments: Pinwheel(**settings()) rebuilds this exact sample."""
        return {"seed": self.seed, "num_clusters": self.num_clusters, "num_per_cluster": self.num_per_cluster,
                "radial_std": self.radial_std, "tangential_std": self.tangential_std, "rate": self.rate}

    # dlb_data's describe; default_path and file_status come from GeneratedInMemory (no file)
    @staticmethod
    def describe(path=None):
        data = Pinwheel()
        return {"name": NAME, "source": "generated in memory on use (no file)", "num_images": len(data),
                "observation_shape": list(Pinwheel.observation_shape), "factor_names": list(Pinwheel.factor_names),
                "factors_num_values": list(data.factors_num_values), **data.settings()}
