"""The aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of a diagonal Gaussian encoder over a set
of N observations, and Monte-Carlo estimates of its log-density at samples drawn from it.

Used by mig_chen (entropies of q(z_j) and q(z_j | v_k), Chen et al. eq. 5) and total_correlation.
The log-densities are exact log-sum-exps over all N points (no minibatch approximation); the
work is chunked so that memory stays bounded, and runs in float64 on the given torch device.
"""

import math

import numpy as np
import torch

from dlbench.errors import UserError
from dlbench.metrics import utils

_ELEMENTS_PER_CHUNK = 1 << 23  # samples x points x dims per block: 64 MB of float64


def encode_gaussian(encode_fn, observations):
    """(mean, logvar), each (n, d) float64, of encode_fn on observations, checked."""
    mean, logvar = (np.asarray(a, dtype=np.float64) for a in encode_fn(observations))
    n = len(observations)
    if mean.ndim != 2 or mean.shape[0] != n or logvar.shape != mean.shape:
        raise UserError(f"encode_fn must return (mean, logvar) of shape ({n}, d) each for {n} observations, "
                        f"got {mean.shape} and {logvar.shape}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(logvar))):
        raise UserError("encode_fn returned non-finite means or log-variances: the model has diverged")
    return mean, logvar


def encode_factors(data, encode_fn, factors, random_state, batch_size):
    """(mean, logvar) of the observations rendered from `factors`, batch_size at a time."""
    parts = []
    for start in range(0, len(factors), batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        parts.append(encode_gaussian(encode_fn, observations))
    return tuple(np.concatenate([p[i] for p in parts]) for i in (0, 1))


def posterior_points(data, encode_fn, random_state, num_points, batch_size):
    """The points q(z) is built from: the whole grid when num_points is None and the dataset has
    one (so the estimate is over the dataset itself), else num_points drawn observations. A
    dataset whose observations draw a nuisance beside the factors (a colour, noise) renders each
    point once, with one draw of it. Returns (factors, mean, logvar, description)."""
    problem = no_grid_problem(data, num_points)
    if problem:
        raise UserError(problem)
    if num_points is None:
        factors = data.factors_of(np.arange(len(data)))
        description = "full_grid"
    else:
        num_points = utils.check_int("num_points", num_points, minimum=2)
        factors = data.sample_factors(num_points, random_state)
        description = "sampled"
    mean, logvar = encode_factors(data, encode_fn, factors, random_state, batch_size)
    return factors, mean, logvar, description


def no_grid_problem(data, num_points, setting="set num_points"):
    """Why q(z) cannot be built over `data` (a dataset, or its class) from num_points, or None;
    `setting` says how to set num_points where it is given."""
    if num_points is None and not getattr(data, "full_grid", True):
        return (f"dataset {getattr(data, 'name', '?')!r} has no finite grid to average over; {setting} "
                f"(observations drawn to build q(z))")
    return None


def sample_posterior(mean, logvar, num_samples, random_state):
    """(rows, z): num_samples points drawn uniformly, and one z ~ q(z|x_row) for each."""
    rows = random_state.randint(len(mean), size=num_samples)
    eps = random_state.standard_normal((num_samples, mean.shape[1]))
    return rows, mean[rows] + np.exp(0.5 * logvar[rows]) * eps


def _log_normal(z, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mean) ** 2 * torch.exp(-logvar))


def log_aggregate_density(z, mean, logvar, device="cpu", joint=False):
    """log q(z_s) at each sample z (S, d) for q = (1/N) sum_n N(mean_n, diag exp(logvar_n)).

    Returns (per_dim (S, d), joint (S,) or None): per_dim[s, j] = log q_j(z_sj) of the marginal
    mixture of dimension j; joint[s] = log q(z_s) of the full mixture when joint is True.
    """
    z, mean, logvar = (torch.as_tensor(a, dtype=torch.float64, device=device) for a in (z, mean, logvar))
    num_samples, dim = z.shape
    points = len(mean)
    sample_chunk = max(1, min(num_samples, _ELEMENTS_PER_CHUNK // (dim * min(points, 4096))))
    point_chunk = max(1, _ELEMENTS_PER_CHUNK // (dim * sample_chunk))
    per_dim_parts, joint_parts = [], []
    for s in range(0, num_samples, sample_chunk):
        zs = z[s:s + sample_chunk, None, :]
        per_dim = torch.full((len(zs), dim), -math.inf, dtype=torch.float64, device=device)
        total = torch.full((len(zs),), -math.inf, dtype=torch.float64, device=device)
        for p in range(0, points, point_chunk):
            log_q = _log_normal(zs, mean[None, p:p + point_chunk], logvar[None, p:p + point_chunk])
            per_dim = torch.logaddexp(per_dim, torch.logsumexp(log_q, dim=1))
            if joint:
                total = torch.logaddexp(total, torch.logsumexp(log_q.sum(-1), dim=1))
        per_dim_parts.append(per_dim - math.log(points))
        joint_parts.append(total - math.log(points))
    per_dim = torch.cat(per_dim_parts).cpu().numpy()
    return per_dim, (torch.cat(joint_parts).cpu().numpy() if joint else None)
