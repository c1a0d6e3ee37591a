"""DCI: disentanglement, completeness, informativeness (Eastwood & Williams, 2018),
disentanglement_lib's protocol.

num_train and then num_test factor vectors are drawn, rendered and encoded. For every factor k a
classifier predicts v_k from all code dimensions; its feature importances give column k of the
importance matrix R (codes x factors, R[i, k] >= 0) and its accuracies on the train and test sets,
averaged over factors, are informativeness_train / informativeness_test.

With P_i. = R[i, :] / sum_k R[i, k] (the normalised row of code i, K factors):
    D_i = 1 - H_K(P_i.),   rho_i = sum_k R[i, k] / sum_ik R[i, k],   disentanglement = sum_i rho_i D_i
and with P_.k = R[:, k] / sum_i R[i, k] (the normalised column of factor k, d codes):
    C_k = 1 - H_d(P_.k),   w_k = sum_i R[i, k] / sum_ik R[i, k],     completeness = sum_k w_k C_k
where H_b is the entropy in base b (0 log 0 = 0). Every column of R sums to 1 for both classifiers
below (gradient-boosted trees normalise their importances; the logistic importances are
normalised here), so w_k = 1/K and completeness is the plain mean over factors, as in the paper.

Classifiers (parameter `classifier`):
- 'gbt' (default, the reference): sklearn GradientBoostingClassifier with 0.20's default settings,
  impurity-based feature importances, as disentanglement_lib. Slow: ~100 boosting stages with one
  tree per class, per factor.
- 'logistic' (the fast option): multinomial L2-regularised logistic regression (C = 1, lbfgs,
  settings in dlbench.metrics.classifiers) on codes standardised with the training mean and standard deviation; importance of
  code i for factor k = mean over classes of |coefficient|, normalised to sum 1 over codes.
  Standardising makes the importances independent of the scale of each code dimension; the L2
  penalty shares weight equally between duplicated code dimensions, so duplicates lower
  completeness as they do with trees (an L1 penalty would keep one copy at random, and permutation
  importances give each copy ~0). A linear probe only sees codes that order a factor's values
  monotonically; Eastwood & Williams also used a linear (lasso) model with |weights|.
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import classifiers, utils

CLASSIFIERS = ("gbt", "logistic")
SETTINGS_TEXT = {"gbt": classifiers.GRADIENT_BOOSTING_TEXT, "logistic": classifiers.FAST_LOGISTIC_TEXT}


def _normalised_entropy(p, base):
    """Entropy in base `base` of each row of p (rows sum to 1; 0 log 0 = 0). A single outcome
    (base 1) carries no uncertainty: entropy 0."""
    if base <= 1:
        return np.zeros(len(p))
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    # at most 1 but for rounding: a uniform row had given 1 + 2e-16, and a score of -2e-16
    return np.minimum(-plogp.sum(axis=1) / np.log(base), 1.0)


def _weighted_specificity(importance):
    """sum_i rho_i (1 - H_K(row i)): the weighted mean over rows of one minus the entropy of the
    row's normalised importances, in base K = the number of columns; rho_i = the row's share of
    the total importance. Rows with zero importance have weight 0 and never produce NaN. An
    all-zero matrix scores 0 (disentanglement_lib's value: no code explains anything)."""
    importance = np.asarray(importance, dtype=np.float64)
    if np.any(importance < 0) or not np.all(np.isfinite(importance)):
        raise ValueError("importances must be finite and non-negative")
    row_sums = importance.sum(axis=1)
    total = row_sums.sum()
    if total == 0:
        return 0.0
    used = row_sums > 0
    p = importance[used] / row_sums[used, None]
    scores = 1.0 - _normalised_entropy(p, importance.shape[1])
    return float(np.sum(row_sums[used] / total * scores))


def disentanglement(importance):
    """Disentanglement of an importance matrix (codes x factors)."""
    return _weighted_specificity(importance)


def completeness(importance):
    """Completeness of an importance matrix (codes x factors)."""
    return _weighted_specificity(np.asarray(importance).T)


def _accuracy(model, codes, labels):
    return float(np.mean(model.predict(codes) == labels))


def _gbt_importance(codes_train, labels, seed):
    model = classifiers.published_gradient_boosting(seed)
    model.fit(codes_train, labels)
    return model, np.abs(model.feature_importances_)


def _logistic_importance(codes_train, labels, seed):
    model = classifiers.fast_logistic_regression(seed)
    model.fit(codes_train, labels)
    weights = np.abs(model.coef_).mean(axis=0)
    total = weights.sum()
    return model, (weights / total if total > 0 else weights)


def importance_matrix(codes_train, factors_train, codes_test, factors_test, classifier, seed):
    """(R, train accuracies, test accuracies) with R of shape (d, K') over the K' factors that
    take at least two values in the training sample (one classifier per factor)."""
    fit = {"gbt": _gbt_importance, "logistic": _logistic_importance}[classifier]
    if classifier == "logistic":
        codes_train, codes_test = utils.standardise(codes_train, codes_test)
    scored = [k for k in range(factors_train.shape[1]) if len(np.unique(factors_train[:, k])) > 1]
    if not scored:
        raise UserError("DCI needs at least one factor that varies; every factor takes a single "
                        "value in the training sample (increase num_train)")
    columns, train_acc, test_acc = [], [], []
    for k in scored:
        model, column = fit(codes_train, factors_train[:, k], seed)
        columns.append(column)
        train_acc.append(_accuracy(model, codes_train, factors_train[:, k]))
        test_acc.append(_accuracy(model, codes_test, factors_test[:, k]))
    return np.stack(columns, axis=1), np.array(train_acc), np.array(test_acc)


def observations_encoded(p):
    """How many observations compute_dci renders and encodes with the protocol parameters p."""
    return p["num_train"] + p["num_test"]


def compute_dci(data, representation_fn, random_state, num_train=10000, num_test=5000,
                classifier="gbt", batch_size=1024):
    """DCI of representation_fn on data.

    Keys: disentanglement, completeness (each, where undefined, <key>_missing_reason instead: see
    specificity_scores), informativeness_train, informativeness_test, and the parameters num_train, num_test, classifier. batch_size is the number of observations per
    representation_fn call; it does not change the result. Factors with a single value (in the
    dataset, or by chance in a tiny training sample) are left out: nothing can be predicted.
    """
    require_discrete_factors(data, "dci")
    num_train = utils.check_int("num_train", num_train, minimum=2)
    num_test = utils.check_int("num_test", num_test)
    batch_size = utils.check_int("batch_size", batch_size)
    if classifier not in CLASSIFIERS:
        raise UserError(f"classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}")

    factors_train, codes_train, factors_test, codes_test = utils.train_test_codes(
        data, representation_fn, random_state, num_train, num_test, batch_size)
    seed = int(random_state.randint(2**31 - 1))

    importance, train_acc, test_acc = importance_matrix(
        codes_train, factors_train, codes_test, factors_test, classifier, seed)
    return {
        **specificity_scores(importance),
        "informativeness_train": float(train_acc.mean()),
        "informativeness_test": float(test_acc.mean()),
        "num_train": num_train,
        "num_test": num_test,
        "classifier": classifier,
        "classifier_settings": SETTINGS_TEXT[classifier],
    }


def specificity_scores(importance):
    """disentanglement and completeness of the importance matrix (codes x scored factors), each
    or its <key>_missing_reason. Each is an entropy in base the number of the other axis's
    entries: with a single factor scored (disentanglement) or a single code (completeness) that
    is base 1, undefined (disentanglement_lib gives NaN there); 1 would claim a perfect score."""
    codes, factors = importance.shape
    scores = {}
    if factors > 1:
        scores["disentanglement"] = disentanglement(importance)
    else:
        scores["disentanglement_missing_reason"] = ("a single factor varies in the training sample: a code "
                                                    "cannot be specific to one factor among one")
    if codes > 1:
        scores["completeness"] = completeness(importance)
    else:
        scores["completeness_missing_reason"] = "a single code dimension: a factor cannot be captured by one among one"
    return scores
