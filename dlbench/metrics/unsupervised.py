"""Unsupervised scores of disentanglement_lib: covariance and mutual information of the codes.

num_train factor vectors are drawn, rendered and encoded; C is the sample covariance of the
codes (ddof 1, as np.cov) and D = diag(C) the variances.

- gaussian_total_correlation: the total correlation of N(0, C), i.e. KL(N(0, C) || N(0, D)),
      TC = 0.5 (sum_i log C_ii - log det C) = -0.5 log det R,   R = D^-1/2 C D^-1/2.
  It is computed from the correlation matrix R (better conditioned). It is undefined (infinite)
  when a code dimension is constant (log 0) or C is singular (an exact linear dependence, or
  num_train <= d); it is then reported missing with the reason.
- gaussian_wasserstein_correlation: the squared 2-Wasserstein distance between N(0, C) and
  N(0, D),
      W = tr C + tr D - 2 tr (D^1/2 C D^1/2)^1/2 = 2 tr C - 2 tr (D^1/2 C D^1/2)^1/2,
  (disentanglement_lib takes the matrix square root of the similar, non-symmetric D C; the
  trace is the same). It is defined for any C, constant dimensions included.
- gaussian_wasserstein_correlation_norm: W / tr C; missing when every dimension is constant.
- mutual_info_score: every code dimension is discretised into num_bins equal-width bins; the
  plug-in mutual information I(z_i; z_j) of every pair i != j is averaged,
      sum_{i != j} I(z_i; z_j) / (d^2 - d);
  missing with a single code dimension.
"""

import numpy as np

from dlbench.metrics import utils

# A correlation matrix whose smallest eigenvalue is below this is treated as singular: its
# log-determinant is then rounding noise (R has unit diagonal, so its eigenvalues are O(1) for
# any non-degenerate codes; 1e-10 would be a total correlation above 11 nats from one direction).
SINGULAR_EIGENVALUE = 1e-10


def constant_dims(codes):
    """Indices of the code columns that take a single value."""
    return np.flatnonzero(np.ptp(codes, axis=0) == 0)


def gaussian_total_correlation(cov, constant=()):
    """(TC, None) for covariance cov, or (None, reason) when it is infinite / undefined.

    `constant` lists the dimensions known to be constant (their sample variance may be a
    rounding residue rather than exactly 0); any variance <= 0 counts as constant too.
    """
    variances = np.diag(cov)
    dead = sorted(set(int(i) for i in constant) | set(np.flatnonzero(variances <= 0).tolist()))
    if dead:
        return None, (f"constant code dimension(s) {dead}: the Gaussian total correlation is "
                      "infinite (log of a zero variance)")
    scale = 1.0 / np.sqrt(variances)
    correlation = cov * scale[:, None] * scale[None, :]
    np.fill_diagonal(correlation, 1.0)       # exactly 1 by definition, not 1 +- rounding
    eigenvalues = np.linalg.eigvalsh(correlation)
    if eigenvalues.min() < SINGULAR_EIGENVALUE:
        return None, ("singular covariance (linearly dependent code dimensions, or no more "
                      "points than dimensions): the Gaussian total correlation is infinite")
    # TC >= 0 (Hadamard's inequality: det R <= 1); a negative value is a rounding residue
    return float(max(0.0, -0.5 * np.sum(np.log(eigenvalues)))), None


def gaussian_wasserstein_correlation(cov):
    """Squared 2-Wasserstein distance between N(0, cov) and N(0, diag(cov))."""
    root_var = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    scaled = cov * root_var[:, None] * root_var[None, :]           # D^1/2 C D^1/2, symmetric PSD
    # tr of its square root = sum of the square roots of its eigenvalues (clipped: rounding can
    # make a zero eigenvalue slightly negative); W >= 0, so a rounding residue below 0 is 0.
    trace_root = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(scaled), 0.0, None)))
    return float(max(0.0, 2.0 * np.trace(cov) - 2.0 * trace_root))


def mutual_info_matrix(codes, num_bins):
    """Matrix (d, d) of the plug-in MI between discretised code columns, zero diagonal."""
    discrete = utils.histogram_discretize(codes, num_bins)
    matrix = utils.discrete_mutual_info(discrete, discrete)
    np.fill_diagonal(matrix, 0.0)
    return matrix


def unsupervised_scores(codes, num_bins):
    """The scores of codes (n, d): a dict holding each value or its <key>_missing_reason."""
    codes = np.asarray(codes, dtype=np.float64)
    num_codes = codes.shape[1]
    cov = np.atleast_2d(np.cov(codes, rowvar=False))
    scores = {}

    total_correlation, reason = gaussian_total_correlation(cov, constant_dims(codes))
    if reason is None:
        scores["gaussian_total_correlation"] = total_correlation
    else:
        scores["gaussian_total_correlation_missing_reason"] = reason

    wasserstein = gaussian_wasserstein_correlation(cov)
    scores["gaussian_wasserstein_correlation"] = wasserstein
    total_variance = float(np.trace(cov))
    if total_variance > 0 and len(constant_dims(codes)) < num_codes:
        scores["gaussian_wasserstein_correlation_norm"] = wasserstein / total_variance
    else:
        scores["gaussian_wasserstein_correlation_norm_missing_reason"] = (
            "every code dimension is constant: the total variance is 0")

    if num_codes < 2:
        scores["mutual_info_score_missing_reason"] = "a single code dimension has no pairs"
    else:
        matrix = mutual_info_matrix(codes, num_bins)
        scores["mutual_info_score"] = float(matrix.sum() / (num_codes ** 2 - num_codes))
    return scores


def observations_encoded(p):
    """How many observations compute_unsupervised renders and encodes with the protocol parameters p."""
    return p["num_train"]


def compute_unsupervised(data, representation_fn, random_state, num_train=10000, num_bins=20,
                         batch_size=1024):
    """Unsupervised scores of representation_fn on data.

    Keys: gaussian_total_correlation, gaussian_wasserstein_correlation,
    gaussian_wasserstein_correlation_norm, mutual_info_score (each, when undefined, replaced by
    <key>_missing_reason), and the parameters num_train, num_bins. batch_size is the number of
    observations per representation_fn call; it does not change the result.
    """
    num_train = utils.check_int("num_train", num_train, minimum=2)
    num_bins = utils.check_int("num_bins", num_bins, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    factors = data.sample_factors(num_train, random_state)
    codes = utils.generate_codes(data, representation_fn, factors, random_state, batch_size)
    result = {"num_train": num_train, "num_bins": num_bins}
    result.update(unsupervised_scores(codes, num_bins))
    return result
