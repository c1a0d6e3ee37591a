"""Mutual Information Gap (Chen et al., 2018, section 4), disentanglement_lib's protocol.

num_train factor vectors are drawn, rendered and encoded (mean codes, as the representation
function gives them); each code dimension is discretised into num_bins equal-width bins over its
own range; the plug-in mutual information I(z_j; v_k) of every code dimension with every factor
and the plug-in entropy H(v_k) of every factor are computed on that sample; per factor the gap
between the largest and second largest I(z_j; v_k) is divided by H(v_k); the score is the mean
over factors.

Choices where the reference is silent or undefined:
- a factor that takes a single value in the sample has H(v_k) = 0 and a 0/0 gap; it is left out
  of the mean (and of `factors`).
- with a single code dimension there is no second-largest I(z_j; v_k) (disentanglement_lib
  fails): discrete_mig is missing, with discrete_mig_missing_reason. Taking the second as 0 had
  scored the code's own I(z; v_k) / H(v_k), so a one-latent model scored up to 1 for the factor it
  captured (0.2 in a trial), far above healthy multi-latent models.
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import utils

SINGLE_CODE = ("a single code dimension: MIG is the gap between a factor's best and second-best code, and "
               "one code has no second")


def mig_from_codes(codes, factors, num_bins):
    """(score, per_factor) from codes (n, d) and factors (n, K).

    per_factor[k] is the normalised gap of factor k, or NaN for a factor whose sample entropy is
    0 (it takes a single value in the sample): its MI with every code dimension is 0 too, so the
    gap is 0/0 and carries no information about disentanglement. Such factors are skipped: the
    score is the mean over the factors with positive entropy.
    Codes of a single dimension are refused (a UserError): there is no second-best dimension, so no
    gap (compute_mig reports SINGLE_CODE instead of calling this).
    """
    codes = np.asarray(codes, dtype=np.float64)
    factors = np.asarray(factors)
    if codes.shape[1] < 2:
        raise UserError(f"MIG needs at least two code dimensions, got {SINGLE_CODE}")
    require_a_varying_factor(factors)
    discrete = utils.histogram_discretize(codes, num_bins)
    m = utils.discrete_mutual_info(discrete, factors)              # (d, K)
    entropy = utils.discrete_entropy(factors)                      # (K,)
    sorted_m = np.sort(m, axis=0)[::-1]
    gap = sorted_m[0] - sorted_m[1]
    scored = entropy > 0
    per_factor = np.full(factors.shape[1], np.nan)
    per_factor[scored] = gap[scored] / entropy[scored]
    return float(np.mean(per_factor[scored])), per_factor


def require_a_varying_factor(factors):
    """Refuse a sample in which every factor takes a single value: no factor has a gap to average."""
    if all(len(np.unique(column)) < 2 for column in np.asarray(factors).T):
        raise UserError("MIG needs at least one factor that varies; every factor takes a single value")


def observations_encoded(p):
    """How many observations compute_mig renders and encodes with the protocol parameters p."""
    return p["num_train"]


def compute_mig(data, representation_fn, random_state, num_train=10000, num_bins=20, batch_size=1024):
    """MIG of representation_fn on data. Keys: discrete_mig (or, for a single code dimension,
    discrete_mig_missing_reason), num_train, num_bins, estimator ('histogram', as against mig_chen's),
    normalisation and factors (the factor set averaged over: those that vary in the sample).

    batch_size is the number of observations per representation_fn call; it does not change
    the result (the factors are drawn in one go before any observation is rendered).
    """
    require_discrete_factors(data, "mig")
    num_train = utils.check_int("num_train", num_train, minimum=2)
    num_bins = utils.check_int("num_bins", num_bins, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    factors = data.sample_factors(num_train, random_state)
    codes = utils.generate_codes(data, representation_fn, factors, random_state, batch_size)
    protocol = {"num_train": num_train, "num_bins": num_bins, "estimator": "histogram",
                "normalisation": "factor_entropy", "factors": utils.sampled_factor_names(data, factors)}
    if codes.shape[1] == 1:
        require_a_varying_factor(factors)  # the same refusal as with more codes comes first
        return {"discrete_mig_missing_reason": SINGLE_CODE, **protocol}
    score, _ = mig_from_codes(codes, factors, num_bins)
    return {"discrete_mig": score, **protocol}
