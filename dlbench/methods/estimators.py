"""Estimators shared by several methods."""

import math

import torch


def kl_to_standard_normal(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent dimension, in closed form."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def batch_mean(values):
    """Mean over the batch dimension (the one before the last for per-dimension values)."""
    return values.mean(dim=0)


def elbo_terms(outputs):
    """(reconstruction, kl, kl_per_dim): -log p(x|z) and KL(q(z|x) || p(z)) as batch means, the
    KL from the model's prior (closed form for Gaussian priors, one-sample Monte Carlo
    otherwise), and its (D,) per-dimension batch means where the prior gives them in closed
    form (None otherwise)."""
    reconstruction = -batch_mean(outputs.log_px)
    kl_per_dim = outputs.prior.kl_per_dim(outputs.mean, outputs.logvar)
    if kl_per_dim is not None:
        kl_per_dim = batch_mean(kl_per_dim)
        return reconstruction, kl_per_dim.sum(-1), kl_per_dim
    return reconstruction, batch_mean(outputs.prior.kl(outputs.mean, outputs.logvar, outputs.z)), None


def kl_scalars(kl_per_dim):
    """Per-dimension KL scalars kl_0, kl_1, ... where the prior gives them, else none."""
    return {} if kl_per_dim is None else named_per_dim("kl", kl_per_dim)


def vae_scalars(loss, reconstruction, kl, kl_per_dim, **extra):
    """The scalars every method logs (loss, reconstruction, kl, elbo), its own terms, then the
    per-dimension KL."""
    scalars = {"loss": loss, "reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl), **extra}
    scalars.update(kl_scalars(kl_per_dim))
    return scalars


def named_per_dim(prefix, values):
    """{'prefix_0': v0, 'prefix_1': v1, ...} for a 1-D tensor of per-dimension values."""
    return {f"{prefix}_{i}": v for i, v in enumerate(values.unbind(-1))}


# --- Aggregate-posterior estimators for the TC decomposition (Chen et al., 2018) ----------------

_LOG_2PI = math.log(2.0 * math.pi)


def log_density_gaussian(z, mean, logvar):
    """log N(z; mean, exp(logvar)) per dimension (broadcasting, no sum)."""
    mean = torch.as_tensor(mean, dtype=z.dtype, device=z.device)
    logvar = torch.as_tensor(logvar, dtype=z.dtype, device=z.device)
    return -0.5 * (_LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


def pairwise_log_density_gaussian(z, mean, logvar):
    """(B, B, D) matrix whose [i, j, d] entry is log q(z_i,d | x_j): sample i of the batch
    under the posterior of observation j, per latent dimension."""
    return log_density_gaussian(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))


def _log_qz_from_weights(log_qz_pairs, log_weights):
    """(log q(z_i), sum_d log q(z_i,d)) from pairwise log densities (B, B, D) and log weights
    (B, B) for log q(z_i) ~= log sum_j w_ij q(z_i | x_j)."""
    log_w = log_weights.unsqueeze(-1)
    log_qz = torch.logsumexp(log_qz_pairs.sum(-1) + log_weights, dim=1)
    log_prod_qzi = torch.logsumexp(log_qz_pairs + log_w, dim=1).sum(-1)
    return log_qz, log_prod_qzi


def log_qz_minibatch_weighted(z, mean, logvar, dataset_size):
    """Minibatch-weighted sampling (eq. 3): log q(z_i) ~= logsumexp_j log q(z_i|x_j) - log(N M),
    and the same per dimension for the marginals, summed over dimensions. Returns
    (log q(z), log prod_d q(z_d)), each (B,). Biased: over batches whose other members are
    drawn uniformly with replacement, its density has expectation
    q(z_i|x_i)/(NM) + (M-1)/(NM) q(z_i), not q(z_i) (eq. 3's importance ratio p(B)/r(B|n) = 1/N
    ignores that r covers only batches containing n)."""
    batch_size = z.shape[0]
    pairs = pairwise_log_density_gaussian(z, mean, logvar)
    log_weights = torch.full((batch_size, batch_size), -math.log(dataset_size * batch_size),
                             dtype=z.dtype, device=z.device)
    return _log_qz_from_weights(pairs, log_weights)


def stratified_importance_weights(batch_size, dataset_size, dtype=torch.float32, device=None):
    """(M, M) weights w_ij of minibatch stratified sampling, for the own-sample convention
    z_i ~ q(z|x_i): q(z_i) = (1/N) q(z_i|n_i) + ((N-1)/N) E_{n != n_i} q(z_i|n), and the M-1
    other batch members are a uniform sample of the dataset without n_i, so
    w_ii = 1/N (own posterior, on the diagonal) and w_ij = (N-1) / (N (M-1)) for j != i.
    Each row sums to 1."""
    n, m = float(dataset_size), batch_size
    if m < 2:
        raise ValueError("minibatch stratified sampling needs a batch of at least 2")
    weights = torch.full((m, m), (n - 1.0) / (n * (m - 1)), dtype=dtype, device=device)
    weights.fill_diagonal_(1.0 / n)
    return weights


def log_qz_minibatch_stratified(z, mean, logvar, dataset_size):
    """Minibatch stratified sampling: log q(z_i) ~= log sum_j w_ij q(z_i|x_j) with the weights
    of `stratified_importance_weights` (the density estimate is unbiased for a batch drawn
    uniformly without replacement), and the same per dimension for the marginals. Returns
    (log q(z), log prod_d q(z_d)), each (B,)."""
    pairs = pairwise_log_density_gaussian(z, mean, logvar)
    weights = stratified_importance_weights(z.shape[0], dataset_size, z.dtype, z.device)
    return _log_qz_from_weights(pairs, weights.log())


LOG_QZ_ESTIMATORS = {"mws": log_qz_minibatch_weighted, "mss": log_qz_minibatch_stratified}


# --- Aggregate-posterior divergences D(q(z), p(z)) (Mathieu et al., 2019, Appendix B) ---------

# The length scales sigma_l of eq. 10. Their code writes them as 2 * {0.1, 0.2, 0.5, 1, 2, 5}.
CAUCHY_LENGTH_SCALES = (0.2, 0.4, 1.0, 2.0, 4.0, 10.0)


def dimwise_cauchy_kernel(x, y, length_scales=CAUCHY_LENGTH_SCALES):
    """(n, m) Gram matrix of eq. 10: k(x_i, y_j) = sum_d sum_l s_l / (s_l + (x_id - y_jd)^2).

    A sum of one-dimensional kernels, so its MMD compares only the marginals q(z_d) and p(z_d).
    The scale enters linearly, not squared (the paper's sigma_l, their code's C = 2 * scale)."""
    # (D, n, m): summing over the leading dimension adds whole matrices (faster on CPU).
    squared = (x.T.unsqueeze(2) - y.T.unsqueeze(1)).pow(2)
    gram = torch.zeros(squared.shape[1:], dtype=squared.dtype, device=squared.device)
    for scale in length_scales:  # one (D, n, m) temporary at a time, not (L, D, n, m)
        gram = gram + (scale / (scale + squared)).sum(0)
    return gram


def _mean_off_diagonal(gram):
    n = gram.shape[0]
    return (gram.sum() - gram.diagonal().sum()) / (n * (n - 1))


def mmd_squared(x, y, kernel=dimwise_cauchy_kernel):
    """Unbiased estimate of MMD^2 between the samples x (n, D) and y (m, D), as in Mathieu et
    al.'s code: the within-sample means leave out the i = j terms (U-statistics) and the
    cross term averages all n m pairs (x and y independent, so it is unbiased too). Can be
    slightly negative when the distributions match."""
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("the unbiased MMD estimate needs at least 2 samples from each distribution")
    return _mean_off_diagonal(kernel(x, x)) + _mean_off_diagonal(kernel(y, y)) - 2.0 * kernel(x, y).mean()


def inclusive_kl(prior_samples, prior_log_prob, mean, logvar):
    """KL(p(z) || q(z)) ~= mean_j [log p(z_j) - log q(z_j)] for z_j ~ p(z) (prior_samples (J, D)
    and their log-densities prior_log_prob (J,)), with q(z) the aggregate encoding of the B
    posteriors N(mean_i, exp(logvar_i)) given: log q(z_j) = logsumexp_i log q(z_j | x_i) - log B
    (Appendix B, where the batch is the whole dataset). With B < n the inner estimate of q(z)
    makes the estimator biased (nested estimation, Appendix C.1)."""
    log_q_pairs = pairwise_log_density_gaussian(prior_samples, mean, logvar).sum(-1)  # (J, B)
    log_qz = torch.logsumexp(log_q_pairs, dim=1) - math.log(mean.shape[0])
    return (prior_log_prob - log_qz).mean(0)
