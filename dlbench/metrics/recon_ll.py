"""Reconstruction log-likelihood E_q(z|x)[log p(x|z)], in nats per image.

The model supplies log_likelihood_fn: a numpy batch of observations to a numpy (n,) array of
log p(x|z) per image with z sampled from q(z|x) inside it (one sample per image, so the mean
over the evaluation set is an unbiased estimate of the expectation). The evaluation set is
num_points observations drawn with random_state, so the same seed gives the same set.
"""

import numpy as np

from dlbench.errors import UserError
from dlbench.metrics import utils


def compute_recon_ll(data, representation_fn, random_state, log_likelihood_fn=None,
                     likelihood="bernoulli", num_points=10000, batch_size=1024):
    """Keys: recon_ll (mean), recon_ll_stderr (std/sqrt(n), ddof=1), num_points, likelihood,
    z_sampled. representation_fn is unused (the uniform metric signature); likelihood is the
    name of the decoder's likelihood, recorded with the result."""
    del representation_fn
    if log_likelihood_fn is None:
        raise UserError("recon_ll needs a model with a decoder: pass log_likelihood_fn (a function "
                        "from a batch of observations to log p(x|z) per image); dlb_evaluate passes "
                        "the trained model's")
    if not isinstance(likelihood, str) or not likelihood:
        raise UserError(f"likelihood must be the likelihood's name, got {likelihood!r}")
    num_points = utils.check_int("num_points", num_points, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)

    factors = data.sample_factors(num_points, random_state)
    values = []
    for start in range(0, num_points, batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        ll = np.asarray(log_likelihood_fn(observations), dtype=np.float64)
        if ll.shape != (len(observations),):
            raise UserError(f"log_likelihood_fn must return shape ({len(observations)},) for a batch of "
                            f"{len(observations)} observations, got {ll.shape}")
        if not np.all(np.isfinite(ll)):
            raise UserError("log_likelihood_fn returned non-finite values (NaN or inf)")
        values.append(ll)
    values = np.concatenate(values)
    return {"recon_ll": float(values.mean()),
            "recon_ll_stderr": float(values.std(ddof=1) / np.sqrt(num_points)),
            "num_points": num_points, "likelihood": likelihood, "z_sampled": True}
