"""Separated Attribute Predictability, SAP (Kumar et al., 2018, section 3), disentanglement_lib's
protocol (sap_score).

num_train factor vectors are drawn, rendered and encoded, then num_test more. A score matrix
S (d x K) says how well code dimension i alone predicts factor k:
- discrete factors (continuous_factors=False, the default): S[i, k] is the test accuracy of a
  linear SVM (squared hinge, C = 0.01, balanced class weights, one-vs-rest) fitted on the single
  feature z_i of the training points to predict v_k;
- continuous factors: S[i, k] = Cov(z_i, v_k)^2 / (Var z_i Var v_k), the squared correlation on
  the training points (the test points are not used).
Per factor, the gap between the largest and second largest entry of its column; SAP is the
mean of the gaps over the factors.

Choices where the reference is silent or undefined:
- a code dimension that is constant on the training points: with discrete factors its SVM is
  fitted like any other's, as disentanglement_lib does; it predicts a single class, so it scores
  that class's frequency in the test points, about chance. Scoring it 0 instead would let a model
  raise its SAP by collapsing a dimension that a noisy, useless one keeps at chance. With
  continuous factors (variance <= 1e-12) it scores 0, as in disentanglement_lib: its correlation
  is 0/0.
- a factor that takes a single value on the training points has no classifier (one class) and a
  0/0 correlation; it is left out of the mean. disentanglement_lib's datasets have no such
  factor (dSprites leaves colour out).
- with a single code dimension there is no second-largest entry (disentanglement_lib raises):
  SAP_score is missing, with SAP_score_missing_reason. Taking the second as 0 had scored the
  code's accuracy alone, so a collapsed one-latent model scored chance (0.31 on dSprites), far
  above a healthy model's gaps.
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import classifiers, utils

CONSTANT_VARIANCE = 1e-12
SINGLE_CODE = ("a single code dimension: SAP is the gap between a factor's best and second-best code, and "
               "one code has no second")


def discrete_score_matrix(codes, factors, codes_test, factors_test):
    """S (d, K): test accuracy of a 1-D linear SVM on code column i predicting factor column k.

    Single-valued factor columns score 0 (no classifier has one class to tell from another); a
    constant code column is fitted too (see the module's docstring). One fit per (i, k) pair: each
    is a separate 1-D problem, with no shared work to vectorise.
    """
    dim, num_factors = codes.shape[1], factors.shape[1]
    scores = np.zeros((dim, num_factors))
    varying = np.array([len(np.unique(factors[:, k])) > 1 for k in range(num_factors)], dtype=bool)
    for i in range(dim):
        for k in np.flatnonzero(varying):
            classifier = classifiers.sap_linear_svc()
            classifier.fit(codes[:, i:i + 1], factors[:, k])
            scores[i, k] = np.mean(classifier.predict(codes_test[:, i:i + 1]) == factors_test[:, k])
    return scores


def continuous_score_matrix(codes, factors):
    """S (d, K): squared correlation of code column i with factor column k (0 for a constant
    code or factor column)."""
    codes = codes - codes.mean(axis=0)
    factors = factors - factors.mean(axis=0)
    n = len(codes)
    covariance = codes.T @ factors / (n - 1)
    var_codes = np.sum(codes ** 2, axis=0) / (n - 1)
    var_factors = np.sum(factors ** 2, axis=0) / (n - 1)
    denominator = np.outer(var_codes, var_factors)
    defined = (var_codes[:, None] > CONSTANT_VARIANCE) & (var_factors[None, :] > 0)
    scores = np.zeros_like(covariance)
    scores[defined] = covariance[defined] ** 2 / denominator[defined]
    return scores


def sap_from_score_matrix(scores, factor_mask):
    """Mean over the factors in factor_mask of (largest - second largest) entry of the column."""
    ordered = np.sort(scores, axis=0)[::-1]
    gaps = ordered[0] - ordered[1]
    return float(np.mean(gaps[factor_mask]))


def observations_encoded(p):
    """How many observations compute_sap renders and encodes with the protocol parameters p."""
    return p["num_train"] + p["num_test"]


def compute_sap(data, representation_fn, random_state, num_train=10000, num_test=5000,
                continuous_factors=False, batch_size=1024):
    """SAP of representation_fn on data. Keys: SAP_score, num_train, num_test, continuous_factors.

    batch_size is the number of observations per representation_fn call; it does not change
    the result.
    """
    if not continuous_factors:
        require_discrete_factors(data, "sap")
    num_train = utils.check_int("num_train", num_train, minimum=2)
    num_test = utils.check_int("num_test", num_test)
    batch_size = utils.check_int("batch_size", batch_size)
    if not isinstance(continuous_factors, (bool, np.bool_)):
        raise UserError(f"continuous_factors must be true or false, got {continuous_factors!r}")
    continuous_factors = bool(continuous_factors)

    factors, codes, factors_test, codes_test = utils.train_test_codes(
        data, representation_fn, random_state, num_train, num_test, batch_size)

    varying = np.array([len(np.unique(factors[:, k])) > 1 for k in range(factors.shape[1])], dtype=bool)
    if not varying.any():
        raise UserError("SAP needs at least one factor that varies; every factor takes a single value "
                        "on the training points (raise num_train)")
    protocol = {"num_train": num_train, "num_test": num_test, "continuous_factors": continuous_factors,
                "classifier_settings": "squared correlation" if continuous_factors else classifiers.SAP_TEXT}
    if codes.shape[1] == 1:
        return {"SAP_score_missing_reason": SINGLE_CODE, **protocol}
    if continuous_factors:
        scores = continuous_score_matrix(codes, factors.astype(np.float64))
    else:
        scores = discrete_score_matrix(codes, factors, codes_test, factors_test)
    return {"SAP_score": sap_from_score_matrix(scores, varying), **protocol}
