"""Hoyer sparsity of a representation (Mathieu et al., 2019, Appendix B).

num_points observations are drawn and encoded; each code dimension is divided by its standard
deviation over those points (so a dimension's scale does not count as sparsity), and the Hoyer
measure Hoyer(y) = (sqrt(d) - ||y||_1 / ||y||_2) / (sqrt(d) - 1), 0 for a dense vector and 1 for
a vector with one non-zero entry, is averaged over the points.
"""

import numpy as np

from dlbench.metrics import utils


def hoyer(vectors):
    """Hoyer measure of each row of an (n, d) array (d >= 2, no all-zero row)."""
    d = vectors.shape[1]
    ratio = np.abs(vectors).sum(1) / np.sqrt((vectors ** 2).sum(1))
    return (np.sqrt(d) - ratio) / (np.sqrt(d) - 1.0)


def hoyer_sparsity_from_codes(codes):
    """(score or None, reason or None, number of dimensions used, number of points used).

    Dimensions constant over the points (dead latents) have no standard deviation to normalise
    by and are left out; points whose normalised code is all zeros are left out (0/0)."""
    std = codes.std(axis=0)
    live = std > 0
    if live.sum() < 2:
        return None, "fewer than two code dimensions vary over the data", int(live.sum()), 0
    normalised = codes[:, live] / std[live]
    nonzero = np.abs(normalised).sum(1) > 0
    if not nonzero.any():
        return None, "every normalised code is zero", int(live.sum()), 0
    return float(hoyer(normalised[nonzero]).mean()), None, int(live.sum()), int(nonzero.sum())


def observations_encoded(p):
    """How many observations compute_hoyer_sparsity renders and encodes with the protocol parameters p."""
    return p["num_points"]


def compute_hoyer_sparsity(data, representation_fn, random_state, num_points=10000, batch_size=1024):
    """Keys: hoyer_sparsity (or hoyer_sparsity_missing_reason), num_dims_used, num_points_used,
    num_points."""
    num_points = utils.check_int("num_points", num_points, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    factors = data.sample_factors(num_points, random_state)
    codes = utils.generate_codes(data, representation_fn, factors, random_state, batch_size)
    score, reason, dims, points = hoyer_sparsity_from_codes(np.asarray(codes, dtype=np.float64))
    result = {"num_dims_used": dims, "num_points_used": points, "num_points": num_points}
    if score is None:
        result["hoyer_sparsity_missing_reason"] = reason
    else:
        result["hoyer_sparsity"] = score
    return result
