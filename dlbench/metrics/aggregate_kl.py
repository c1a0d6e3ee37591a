"""How far the aggregate posterior is from the prior: KL divergences between
q(z) = (1/N) sum_n q(z|x_n) and the model's prior p(z), in nats, both ways:

  kl_qz_pz = KL(q(z) || p(z)) = E_q(z)[log q(z) - log p(z)]   large where q(z) puts mass p(z) lacks
  kl_pz_qz = KL(p(z) || q(z)) = E_p(z)[log p(z) - log q(z)]   large where q(z) misses mass of p(z):
                                                              the inclusive KL ab_vae trains with

Mathieu et al. (2019) read the mismatch between q(z) and p(z) off density plots (Sec. 6.2, Fig. 3);
this measures it. Each expectation is a mean over num_samples draws (z ~ q(z): a point n uniformly,
then z ~ q(z|x_n); z ~ p(z): the prior's sampler), with log q(z) the exact log-sum-exp over all N
points (aggregate_posterior.log_aggregate_density) and log p(z) the prior's log-density in float64.
Only that mean is a Monte-Carlo estimate (unbiased, its standard error reported): there is no
minibatch estimate of q(z) inside, so none of the nested-estimation bias of the training-time
estimators (Mathieu et al., Appendix C).

q(z) is built from every observation the dataset holds when num_points is None: the whole grid of
a full-grid dataset (as total_correlation), else the dataset's fixed set of observations (pinwheel's
400 points, linear_gaussian's training sample, ...); num_points draws observations instead.
"""

import numpy as np

from dlbench.errors import UserError
from dlbench.metrics import aggregate_posterior, utils


def compute_aggregate_kl(data, representation_fn, random_state, encode_fn=None, log_prior_fn=None,
                         prior_sample_fn=None, num_samples=10000, num_points=None, batch_size=1024, device="cpu"):
    """Keys: kl_qz_pz, kl_qz_pz_stderr, kl_pz_qz, kl_pz_qz_stderr, num_samples, num_points, points
    ('full_grid', 'dataset' or 'sampled'). representation_fn is unused (the uniform metric
    signature)."""
    del representation_fn
    if encode_fn is None or log_prior_fn is None or prior_sample_fn is None:
        raise UserError("aggregate_kl needs the model's encoder and prior: pass encode_fn, log_prior_fn and "
                        "prior_sample_fn; dlb_evaluate passes the trained model's")
    num_samples = utils.check_int("num_samples", num_samples, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    mean, logvar, points = encoded_points(data, encode_fn, random_state, num_points, batch_size)

    def log_q(z):
        return aggregate_posterior.log_aggregate_density(z, mean, logvar, device, joint=True)[1]

    def log_p(z):
        return checked_values(log_prior_fn(z), (len(z),), "log_prior_fn")

    _, from_q = aggregate_posterior.sample_posterior(mean, logvar, num_samples, random_state)
    from_p = checked_values(prior_sample_fn(num_samples), (num_samples, mean.shape[1]), "prior_sample_fn")
    return {**mean_and_stderr("kl_qz_pz", log_q(from_q) - log_p(from_q)),
            **mean_and_stderr("kl_pz_qz", log_p(from_p) - log_q(from_p)),
            "num_samples": num_samples, "num_points": len(mean), "points": points}


def encoded_points(data, encode_fn, random_state, num_points, batch_size):
    """(mean, logvar, description) of the points q(z) is built from (see the module docstring)."""
    if num_points is not None or getattr(data, "full_grid", True):
        _, mean, logvar, points = aggregate_posterior.posterior_points(data, encode_fn, random_state, num_points,
                                                                       batch_size)
        return mean, logvar, points
    if not hasattr(data, "images"):
        raise UserError(f"dataset {getattr(data, 'name', '?')!r} holds no fixed set of observations to average "
                        f"over; set num_points (observations drawn to build q(z))")
    observations = data.observations_at(np.arange(len(data)))
    parts = [aggregate_posterior.encode_gaussian(encode_fn, observations[start:start + batch_size])
             for start in range(0, len(observations), batch_size)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), "dataset"


def checked_values(values, shape, source):
    values = np.asarray(values, dtype=np.float64)
    if values.shape != shape or not np.all(np.isfinite(values)):
        raise UserError(f"{source} must return {shape} finite values, got shape {values.shape}"
                        + ("" if values.shape != shape else " with non-finite values"))
    return values


def mean_and_stderr(key, terms):
    return {key: float(terms.mean()), f"{key}_stderr": float(terms.std(ddof=1) / np.sqrt(len(terms)))}
