"""Importance-weighted bound on log p(x) (Burda et al., 2016), averaged over observations:

  L_K(x) = log (1/K) sum_k w_k,   w_k = p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

L_1 is the ELBO in expectation, E[L_K] rises with K towards log p(x). With the same K draws the
metric also reports their mean log-weight (a K-sample estimate of the ELBO), which is never above
L_K (Jensen's inequality holds draw by draw), so the gap iwae - elbo_estimate is a lower bound on
the inference gap E[log p(x) - ELBO(x)] that tightens with K.

For datasets that know their own law's density (`log_marginal(observations)`, the linear-Gaussian
model's exact log p(x)), the metric also reports its mean over the same observations,
`exact_log_px`: the best any model can score on average (E_p[log p_theta(x)] <= E_p[log p(x)],
Gibbs' inequality), so exact_log_px - iwae bounds how far the model's likelihood is from the data's.
"""

import numpy as np

from dlbench.errors import UserError
from dlbench.metrics import utils


def log_weights(observations, log_weights_fn, num_samples):
    """(n, K) log-weights, checked."""
    values = np.asarray(log_weights_fn(observations, num_samples), dtype=np.float64)
    if values.shape != (len(observations), num_samples):
        raise UserError(f"log_weights_fn must return shape ({len(observations)}, {num_samples}), got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise UserError("log_weights_fn returned non-finite log-weights (NaN or inf)")
    return values


def importance_weighted_bounds(values):
    """(L_K per observation, mean log-weight per observation) of (n, K) log-weights."""
    from scipy.special import logsumexp  # here: scipy.special takes a quarter of a second to import

    return logsumexp(values, axis=1) - np.log(values.shape[1]), values.mean(axis=1)


def compute_iwae(data, representation_fn, random_state, log_weights_fn=None, num_samples=100, num_points=10000,
                 batch_size=1024):
    """Keys: iwae, iwae_stderr, elbo_estimate, num_samples, num_points, and exact_log_px,
    exact_log_px_stderr for datasets with a log_marginal. representation_fn is unused (the uniform
    metric signature)."""
    del representation_fn
    if log_weights_fn is None:
        raise UserError("iwae needs the whole model: pass log_weights_fn (observations, K -> (n, K) log "
                        "importance weights); dlb_evaluate passes the trained model's")
    num_samples = utils.check_int("num_samples", num_samples)
    num_points = utils.check_int("num_points", num_points, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    factors = data.sample_factors(num_points, random_state)
    exact = getattr(data, "log_marginal", None)
    bounds, means, exact_values = [], [], []
    for start in range(0, num_points, batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        bound, mean = importance_weighted_bounds(log_weights(observations, log_weights_fn, num_samples))
        bounds.append(bound)
        means.append(mean)
        if exact is not None:
            exact_values.append(np.asarray(exact(observations), dtype=np.float64))
    bounds, means = np.concatenate(bounds), np.concatenate(means)
    result = {"iwae": float(bounds.mean()), "iwae_stderr": _stderr(bounds), "elbo_estimate": float(means.mean()),
              "num_samples": num_samples, "num_points": num_points}
    if exact is not None:
        exact_values = np.concatenate(exact_values)
        result.update(exact_log_px=float(exact_values.mean()), exact_log_px_stderr=_stderr(exact_values))
    return result


def _stderr(values):
    return float(values.std(ddof=1) / np.sqrt(len(values)))
