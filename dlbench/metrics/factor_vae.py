"""FactorVAE score (Kim & Mnih, 2018), disentanglement_lib's protocol.

1. Global variance: encode num_variance_estimate random observations, per-dimension variance
   (ddof=1). Dimensions whose standard deviation is below prune_threshold are inactive
   (collapsed to the prior, constant, dead) and are ignored from then on.
2. A vote: pick a factor k uniformly, draw batch_size factor vectors that all share one random
   value of factor k, encode them, take the per-dimension variance (ddof=1) divided by the
   global variance over the active dimensions, and vote (k, argmin dimension).
3. The majority-vote classifier maps each dimension to the factor that voted for it most; its
   accuracy on the num_train votes it was built from is train_accuracy, on num_eval fresh votes
   eval_accuracy.

Votes are built many at a time: the factor vectors of a whole vote set are drawn in one go and
rendered / encoded representation_batch_size observations per representation_fn call (several
vote batches stacked), so the result does not depend on representation_batch_size.
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import utils


def prune_dims(variances, threshold):
    """Mask of the active dimensions: standard deviation >= threshold."""
    return np.sqrt(variances) >= threshold


def generate_votes(data, representation_fn, random_state, num_votes, batch_size, global_variances,
                   active_dims, representation_batch_size):
    """Vote counts, an int64 array (num_factors, d): [k, j] = votes of factor k for dimension j.

    Inactive dimensions (active_dims False) never receive votes. Factors with a single value
    are never voted for: fixing them does not fix anything, so their votes would be noise.
    """
    num_factors = data.num_factors
    dim = len(global_variances)
    active_index = np.flatnonzero(active_dims)
    active_variances = global_variances[active_index]
    candidates = utils.varying_factors(data)
    if len(candidates) == 0:
        raise UserError("the FactorVAE score needs at least one factor that varies; every factor "
                        "takes a single value")
    voted = candidates[random_state.randint(len(candidates), size=num_votes)]
    factors = data.sample_factors(num_votes * batch_size, random_state)
    factors = factors.reshape(num_votes, batch_size, num_factors)
    rows = np.arange(num_votes)
    factors[rows, :, voted] = factors[rows, 0, voted][:, None]

    votes = np.zeros((num_factors, dim), dtype=np.int64)
    votes_per_call = max(1, representation_batch_size // batch_size)
    for start in range(0, num_votes, votes_per_call):
        chunk = factors[start:start + votes_per_call]
        n = len(chunk)
        observations = data.sample_observations_from_factors(chunk.reshape(-1, num_factors), random_state)
        codes = utils.encode(representation_fn, observations, max(representation_batch_size, batch_size))
        if codes.shape[1] != dim:
            raise UserError(f"representation_fn returned {codes.shape[1]} dimensions, earlier {dim}")
        codes = codes.reshape(n, batch_size, dim)
        if len(active_index) < dim:          # (a copy; skipped in the usual all-active case)
            codes = codes[:, :, active_index]
        ratios = codes.var(axis=1, ddof=1) / active_variances
        winners = active_index[np.argmin(ratios, axis=1)]
        np.add.at(votes, (voted[start:start + n], winners), 1)
    return votes


def _accuracy(votes, classifier):
    return float(votes[classifier, np.arange(votes.shape[1])].sum() / votes.sum())


def observations_encoded(p):
    """How many observations compute_factor_vae renders and encodes with the protocol parameters p."""
    return p["num_variance_estimate"] + p["batch_size"] * (p["num_train"] + p["num_eval"])


def compute_factor_vae(data, representation_fn, random_state, batch_size=64, num_train=10000,
                       num_eval=5000, num_variance_estimate=10000, prune_threshold=0.05,
                       representation_batch_size=4096):
    """FactorVAE score of representation_fn on data.

    Keys: train_accuracy, eval_accuracy (each <key>_missing_reason instead where a single factor
    varies), num_active_dims, and the parameters batch_size,
    num_train, num_eval, num_variance_estimate, prune_threshold. batch_size is the protocol's
    number of points per vote; representation_batch_size the number of observations per
    representation_fn call (it does not change the result).
    """
    require_discrete_factors(data, "factor_vae")
    batch_size = utils.check_int("batch_size", batch_size, minimum=2)
    num_train = utils.check_int("num_train", num_train)
    num_eval = utils.check_int("num_eval", num_eval)
    num_variance_estimate = utils.check_int("num_variance_estimate", num_variance_estimate, minimum=2)
    prune_threshold = utils.check_float("prune_threshold", prune_threshold)
    representation_batch_size = utils.check_int("representation_batch_size", representation_batch_size)

    result = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
              "num_variance_estimate": num_variance_estimate, "prune_threshold": prune_threshold}

    factors = data.sample_factors(num_variance_estimate, random_state)
    codes = utils.generate_codes(data, representation_fn, factors, random_state, representation_batch_size)
    global_variances = np.var(codes, axis=0, ddof=1)
    active_dims = prune_dims(global_variances, prune_threshold)
    # disentanglement_lib reports len(active_dims), the number of all dimensions; this is the
    # number of active ones, which is what the name says.
    num_active = int(active_dims.sum())
    if len(utils.varying_factors(data)) == 1:
        # every vote then fixes the one factor, and the majority vote is right for any representation
        # (a score of 1 that says nothing); disentanglement_lib reports that 1
        reason = ("a single factor varies: every vote fixes it, so any representation would score 1; the score needs "
                  "two or more factors that vary")
        result.update(train_accuracy_missing_reason=reason, eval_accuracy_missing_reason=reason,
                      num_active_dims=num_active)
        return result
    if num_active == 0:
        result.update(train_accuracy=0.0, eval_accuracy=0.0, num_active_dims=0)
        return result

    args = (batch_size, global_variances, active_dims, representation_batch_size)
    train_votes = generate_votes(data, representation_fn, random_state, num_train, *args)
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = generate_votes(data, representation_fn, random_state, num_eval, *args)
    result.update(train_accuracy=_accuracy(train_votes, classifier),
                  eval_accuracy=_accuracy(eval_votes, classifier),
                  num_active_dims=num_active)
    return result
