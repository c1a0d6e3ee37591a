"""Mutual Information Gap with the estimator of Chen et al. (2018, eqs. 5-6).

The encoder's Gaussians q(z|n) of every observation n of the full factor grid define the joint
q(z_j, v_k) = sum_n p(v_k) p(n|v_k) q(z_j|n). Then, per code dimension j and factor k,

  H(z_j)       = -E_q[log (1/N) sum_n q(z_j|n)]
  H(z_j | v_k) = -E_q[log (1/|X_v|) sum_{n in X_v} q(z_j|n)],  X_v the points with v_k = v
  I(z_j; v_k)  = H(z_j) - H(z_j | v_k)                               (eq. 5)

with the expectations estimated from num_samples draws (n_s uniform over the grid, z_s ~ q(z|n_s),
so (v_k(n_s), z_s) ~ q(z_j, v_k)); the inner sums are exact log-sum-exps over all points. The
same draws serve every entropy, which keeps the difference's variance low. MIG (eq. 6) is the
mean over factors of the gap between the two largest I(z_j; v_k), divided by H(v_k) = log |V_k|.
Single-valued factors are left out (their entropy is 0). With a single code dimension there is no
second-largest I(z_j; v_k): mig_chen is missing, with mig_chen_missing_reason (as the histogram
MIG's); taking the second as 0 had scored a one-latent model's I(z; v_k) / H(v_k), up to 1.
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors, require_full_grid
from dlbench.errors import UserError
from dlbench.metrics import aggregate_posterior, utils
from dlbench.metrics.mig import SINGLE_CODE


def conditional_entropies(z, rows, factor_column, mean, logvar, device):
    """(d,) H(z_j | v_k): each sample's log-density under the mixture of the points sharing its
    factor value, averaged."""
    log_q = np.empty_like(z)
    for value in np.unique(factor_column[rows]):
        samples = factor_column[rows] == value
        points = factor_column == value
        log_q[samples] = aggregate_posterior.log_aggregate_density(
            z[samples], mean[points], logvar[points], device)[0]
    return -log_q.mean(axis=0)


def mutual_information(factors, mean, logvar, num_samples, random_state, device="cpu"):
    """Matrix (d, K) of I(z_j; v_k) in nats by eq. 5 (factors (N, K), one row per grid point)."""
    rows, z = aggregate_posterior.sample_posterior(mean, logvar, num_samples, random_state)
    marginal = -aggregate_posterior.log_aggregate_density(z, mean, logvar, device)[0].mean(axis=0)
    return np.stack([marginal - conditional_entropies(z, rows, factors[:, k], mean, logvar, device)
                     for k in range(factors.shape[1])], axis=1)


def compute_mig_chen(data, representation_fn, random_state, encode_fn=None, num_samples=10000,
                     batch_size=1024, device="cpu"):
    """MIG by Chen et al.'s estimator over the whole dataset. Keys: mig_chen (or, for a single
    code dimension, mig_chen_missing_reason), num_samples, num_points, estimator, normalisation,
    factors. encode_fn maps observations to the encoder's (mean, logvar); representation_fn is
    unused (the uniform metric signature)."""
    del representation_fn
    if encode_fn is None:
        raise UserError("mig_chen needs the encoder's Gaussian: pass encode_fn (observations -> (mean, logvar)); "
                        "dlb_evaluate passes the trained model's")
    num_samples = utils.check_int("num_samples", num_samples)
    batch_size = utils.check_int("batch_size", batch_size)
    require_discrete_factors(data, "mig_chen")
    require_full_grid(data, "mig_chen")
    scored = utils.varying_factors(data)
    if len(scored) == 0:
        raise UserError("mig_chen needs at least one factor that varies; every factor takes a single value")
    factors, mean, logvar, _ = aggregate_posterior.posterior_points(data, encode_fn, random_state, None, batch_size)
    protocol = {"num_samples": num_samples, "num_points": len(mean), "estimator": "chen_full_dataset",
                "normalisation": "factor_entropy", "factors": utils.varying_factor_names(data)}
    if mean.shape[1] == 1:  # checked before the sampling, the metric's whole cost
        return {"mig_chen_missing_reason": SINGLE_CODE, **protocol}
    mi = mutual_information(factors[:, scored], mean, logvar, num_samples, random_state, device)
    entropy = np.log(np.asarray(data.factors_num_values, dtype=np.float64)[scored])
    ordered = np.sort(mi, axis=0)[::-1]
    return {"mig_chen": float(np.mean((ordered[0] - ordered[1]) / entropy)), **protocol}
