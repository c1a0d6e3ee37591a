"""Inference errors of Sikka et al. (eqs. 2-3), for datasets with an exact posterior (the
linear-Gaussian dataset: x = A s + eta, posterior N(Sigma A^T x, Sigma), Sigma = (A^T A + I)^-1):

  TIE = E_p(x)[KL(q(z|x) || p_gt(z|x))]   true inference error, closed form per observation
  MIE = E_p(x)[KL(q(z|x) || p_theta(z|x))] model inference error = E[log p_theta(x) - ELBO(x)]

The TIE is exact: the KL between the encoder's diagonal Gaussian and the full-covariance ground-
truth posterior. The model posterior of a neural decoder has no closed form, so the MIE is
estimated per observation as log (1/K) sum_k w_k - (1/K) sum_k log w_k with K draws from q(z|x)
(the importance-weighted bound minus the ELBO from the same draws): never negative, zero when
q(z|x) is the model posterior (then every weight equals p_theta(x)), and rising to the MIE as K
grows (a lower bound on it for finite K).

The beta-VAE objective with an isotropic prior and a diagonal q(z|x) is unchanged when the latents
are reordered or change sign, so a model has no reason to put source j in latent j with its sign.
true_inference_error_aligned is the TIE of the model's latents matched to the sources by the
signed permutation (one for the whole model) that makes it smallest; alignment names it
('s0=+z1,s1=-z0': source 0 is latent 1, source 1 is minus latent 0). The 2^k k! candidates are
tried for up to MAX_ALIGNED_SOURCES sources (384), beyond that the key is missing with a reason.
"""

import itertools

import numpy as np

from dlbench.errors import UserError
from dlbench.metrics import utils
from dlbench.metrics.aggregate_posterior import encode_gaussian
from dlbench.metrics.iwae import importance_weighted_bounds, log_weights

MAX_ALIGNED_SOURCES = 4


def gaussian_kl_diag_to_full(mean_q, logvar_q, mean_p, cov_p):
    """KL(N(mean_q, diag exp(logvar_q)) || N(mean_p, cov_p)) per row: means (n, k), cov_p (k, k)."""
    k = mean_q.shape[1]
    chol = np.linalg.cholesky(cov_p)
    precision = np.linalg.inv(cov_p)
    diff = mean_p - mean_q
    trace = np.exp(logvar_q) @ np.diag(precision)
    mahalanobis = np.einsum("ni,ij,nj->n", diff, precision, diff)
    log_det_p = 2 * np.log(np.diag(chol)).sum()
    return 0.5 * (trace + mahalanobis - k + log_det_p - logvar_q.sum(axis=1))


def signed_permutations(k):
    """Every (order, signs) of k latents: source j is matched to signs[j] * z[order[j]]."""
    return [(order, np.array(signs)) for order in itertools.permutations(range(k))
            for signs in itertools.product((1.0, -1.0), repeat=k)]


def alignment_name(order, signs):
    """'s0=+z1,s1=-z0' for order (1, 0) and signs (1, -1)."""
    return ",".join(f"s{j}={'+' if sign > 0 else '-'}z{i}" for j, (i, sign) in enumerate(zip(order, signs)))


def no_exact_posterior(dataset):
    return f"inference_error needs a dataset with an exact posterior (linear_gaussian); dataset {dataset!r} has none"


def latent_dim_problem(latent_dim, num_sources):
    return (f"inference_error compares q(z|x) with the exact posterior over the sources: the model has {latent_dim} "
            f"latent dimensions, the dataset {num_sources} sources; train with model.latent_dim = {num_sources}, or "
            f"choose other metrics")


def compute_inference_error(data, representation_fn, random_state, encode_fn=None, log_weights_fn=None,
                            num_points=1000, num_samples=1000, batch_size=256):
    """Keys: true_inference_error, true_inference_error_aligned and alignment (or
    true_inference_error_aligned_missing_reason), model_inference_error, num_points, num_samples,
    model_inference_error_estimator. representation_fn is unused (the uniform metric signature)."""
    del representation_fn
    if encode_fn is None or log_weights_fn is None:
        raise UserError("inference_error needs the whole model: pass encode_fn and log_weights_fn; "
                        "dlb_evaluate passes the trained model's")
    if not hasattr(data, "exact_posterior"):
        raise UserError(no_exact_posterior(getattr(data, "name", "?")))
    num_points = utils.check_int("num_points", num_points, minimum=2)
    num_samples = utils.check_int("num_samples", num_samples)
    batch_size = utils.check_int("batch_size", batch_size)
    factors = data.sample_factors(num_points, random_state)
    alignments = signed_permutations(data.num_factors) if data.num_factors <= MAX_ALIGNED_SOURCES else []
    aligned_sums = np.zeros(len(alignments))
    true_errors, model_errors = [], []
    for start in range(0, num_points, batch_size):
        observations = data.sample_observations_from_factors(factors[start:start + batch_size], random_state)
        mean_q, logvar_q = encode_gaussian(encode_fn, observations)
        mean_p, cov_p = data.exact_posterior(observations)
        if mean_q.shape != mean_p.shape:
            raise UserError(latent_dim_problem(mean_q.shape[1], mean_p.shape[1]))
        true_errors.append(gaussian_kl_diag_to_full(mean_q, logvar_q, mean_p, cov_p))
        for a, (order, signs) in enumerate(alignments):
            order = list(order)
            aligned_sums[a] += gaussian_kl_diag_to_full(mean_q[:, order] * signs, logvar_q[:, order], mean_p,
                                                        cov_p).sum()
        bound, elbo = importance_weighted_bounds(log_weights(observations, log_weights_fn, num_samples))
        model_errors.append(bound - elbo)
    result = {"true_inference_error": float(np.concatenate(true_errors).mean()),
              "model_inference_error": float(np.concatenate(model_errors).mean()),
              "num_points": num_points, "num_samples": num_samples,
              "model_inference_error_estimator": "iwae_minus_elbo"}
    if alignments:
        best = int(np.argmin(aligned_sums))
        result.update(true_inference_error_aligned=float(aligned_sums[best] / num_points),
                      alignment=alignment_name(*alignments[best]))
    else:
        result["true_inference_error_aligned_missing_reason"] = (
            f"{data.num_factors} sources: more than {MAX_ALIGNED_SOURCES}, too many signed permutations to try")
    return result
