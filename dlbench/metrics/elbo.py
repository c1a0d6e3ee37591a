"""The evidence lower bound and its two terms, per observation, averaged over num_points
observations drawn with the evaluation seed:

  ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))

The reconstruction term is estimated with one z ~ q(z|x) per observation (unbiased); the KL is
the model prior's: closed form for Gaussian priors (then also per latent dimension, kl_0 ...),
a one-sample Monte-Carlo estimate otherwise (then the per-dimension split is missing).
"""

import numpy as np

from dlbench.errors import UserError
from dlbench.metrics import utils


def _checked(terms, key, n):
    values = np.asarray(terms[key], dtype=np.float64)
    if values.shape[0] != n or not np.all(np.isfinite(values)):
        raise UserError(f"elbo_terms_fn returned a bad {key!r}: expected {n} finite rows, got shape {values.shape}")
    return values


def collect_terms(data, elbo_terms_fn, random_state, num_points, batch_size):
    """{'log_px': (n,), 'kl': (n,), 'kl_per_dim': (n, d) if given} over num_points drawn observations."""
    factors = data.sample_factors(num_points, random_state)
    parts = []
    for start in range(0, num_points, batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        terms = elbo_terms_fn(observations)
        parts.append({key: _checked(terms, key, len(observations)) for key in terms})
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def compute_elbo(data, representation_fn, random_state, elbo_terms_fn=None, num_points=10000, batch_size=1024):
    """Keys: elbo, elbo_stderr, recon_ll (E_q(z|x)[log p(x|z)], the reconstruction term: the
    quantity of the recon_ll metric, not the marginal log p(x), which iwae bounds), kl, kl_0 ...
    kl_{d-1} (or kl_per_dim_missing_reason), num_points. Results written before the rename call
    recon_ll `log_px` (metrics.LEGACY_KEYS reads them). representation_fn is unused (the uniform
    metric signature)."""
    del representation_fn
    if elbo_terms_fn is None:
        raise UserError("elbo needs the whole model: pass elbo_terms_fn (observations -> {'log_px', 'kl'} per "
                        "observation); dlb_evaluate passes the trained model's")
    num_points = utils.check_int("num_points", num_points, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    terms = collect_terms(data, elbo_terms_fn, random_state, num_points, batch_size)
    elbo = terms["log_px"] - terms["kl"]
    result = {"elbo": float(elbo.mean()), "elbo_stderr": float(elbo.std(ddof=1) / np.sqrt(num_points)),
              "recon_ll": float(terms["log_px"].mean()), "kl": float(terms["kl"].mean()), "num_points": num_points}
    if "kl_per_dim" in terms:
        result.update({f"kl_{j}": float(v) for j, v in enumerate(terms["kl_per_dim"].mean(axis=0))})
    else:
        result["kl_per_dim_missing_reason"] = "the prior has no closed-form KL per dimension"
    return result
