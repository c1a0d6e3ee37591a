"""Active units (Burda et al., 2016): a code dimension is active when the variance of the
posterior mean over the data, Var_x[E_q(z|x)[z_j]], exceeds a threshold (0.01).

The metric sees the representation function, so it counts active units of the mean
representation (`dlb_evaluate --mode mean`, the default); on a sampled representation the
variance includes the posterior noise and the count is not the active-units count.
"""

import numpy as np

from dlbench.metrics import utils


def observations_encoded(p):
    """How many observations compute_active_units renders and encodes with the protocol parameters p."""
    return p["num_points"]


def compute_active_units(data, representation_fn, random_state, num_points=10000, threshold=0.01,
                         batch_size=1024):
    """Keys: active_units, num_dims, active_fraction, num_points, threshold, and per-dimension
    variances variance_0, variance_1, ..."""
    num_points = utils.check_int("num_points", num_points, minimum=2)
    threshold = utils.check_float("threshold", threshold)
    batch_size = utils.check_int("batch_size", batch_size)
    factors = data.sample_factors(num_points, random_state)
    codes = np.asarray(utils.generate_codes(data, representation_fn, factors, random_state, batch_size),
                       dtype=np.float64)
    variance = codes.var(axis=0, ddof=1)
    active = int((variance > threshold).sum())
    result = {"active_units": active, "num_dims": codes.shape[1], "active_fraction": active / codes.shape[1],
              "num_points": num_points, "threshold": threshold}
    result.update({f"variance_{j}": float(v) for j, v in enumerate(variance)})
    return result
