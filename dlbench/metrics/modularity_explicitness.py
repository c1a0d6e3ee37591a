"""Modularity and explicitness (Ridgeway and Mozer, 2018, section 3), disentanglement_lib's protocol.

num_train and num_test factor vectors are drawn, rendered and encoded.

Modularity, on the training codes: each code dimension is discretised into num_bins equal-width
bins over its own range and the plug-in mutual information m[i, k] = I(z_i; v_k) is computed
with every factor. A code dimension is modular when it carries information about one factor
only; with theta_i = max_k m[i, k] (its best factor),

    delta_i = sum_{k != best} m[i, k]^2 / (theta_i^2 (K - 1)),    modularity_i = 1 - delta_i,

and modularity_score is the mean of modularity_i over all code dimensions. A code dimension
with no information about any factor (theta_i = 0, e.g. a constant one) gets modularity 0, as in
disentanglement_lib: it is averaged in, not skipped.

Explicitness: the codes are standardised with the training mean and standard deviation; per
factor a one-vs-rest L2-regularised logistic regression (liblinear, C = 1) is fitted on the
training codes to predict the factor's value; its class probabilities score each class against
the rest and the ROC-AUC of each class is averaged over classes (macro average). The scores
are the mean over factors of that AUC on the training and on the test codes.

Only factors that take more than one value are used (a single-valued factor would add a zero
column to the MI matrix, inflating K - 1, and cannot be classified).
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import classifiers, utils


def modularity_per_code(mutual_info):
    """Vector (d,) of modularity_i from a (d, K) mutual information matrix, K >= 2."""
    squared = np.square(np.asarray(mutual_info, dtype=np.float64))
    best = squared.max(axis=1)
    others = squared.sum(axis=1) - best
    informative = best > 0
    out = np.zeros(len(squared))            # theta_i = 0: no information, modularity 0
    out[informative] = 1.0 - others[informative] / (best[informative] * (squared.shape[1] - 1))
    return out


def modularity_from_codes(codes, factors, num_bins):
    """(modularity_score, None) from codes (n, d) and varying factors (n, K), or (None, reason)
    when it is undefined (fewer than two factors: delta_i is 0 / 0)."""
    if factors.shape[1] < 2:
        return None, "modularity needs at least two factors that vary (with one, delta is 0/0)"
    discrete = utils.histogram_discretize(codes, num_bins)
    mutual_info = utils.discrete_mutual_info(discrete, factors)
    return float(np.mean(modularity_per_code(mutual_info))), None


def macro_auc(classes, labels, probabilities):
    """Mean over classes of the ROC-AUC of probabilities[:, c] for class c against the rest.

    A class that is absent from labels (or the only one present) has no AUC and is left out,
    where disentanglement_lib's MultiLabelBinarizer call would fail or misalign the columns.
    """
    from sklearn.metrics import roc_auc_score  # imported when used: scikit-learn takes a second to load

    aucs = []
    for column, cls in enumerate(classes):
        positive = labels == cls
        if 0 < positive.sum() < len(labels):
            aucs.append(roc_auc_score(positive, probabilities[:, column]))
    if not aucs:
        raise UserError(f"a factor takes a single value in a sample of {len(labels)} points, so no "
                        "ROC-AUC is defined; increase num_train / num_test")
    return float(np.mean(aucs))


def explicitness_per_factor(x_train, y_train, x_test, y_test):
    """(train AUC, test AUC) of a one-vs-rest logistic regression predicting y from x.

    disentanglement_lib calls LogisticRegression() with the scikit-learn defaults of its time
    (liblinear, one-vs-rest, C = 1): classifiers.published_logistic_regression, which also
    normalises the per-class probabilities to sum to one, as 0.20 did.
    """
    classifier = classifiers.published_logistic_regression().fit(x_train, y_train)
    classes = classifier.classes_
    return (macro_auc(classes, y_train, classifier.predict_proba(x_train)),
            macro_auc(classes, y_test, classifier.predict_proba(x_test)))


def explicitness_from_codes(codes_train, factors_train, codes_test, factors_test):
    """(explicitness_score_train, explicitness_score_test): mean over factors of the AUCs."""
    x_train, x_test = utils.standardise(codes_train, codes_test)
    scores = []
    for k in range(factors_train.shape[1]):
        if len(np.unique(factors_train[:, k])) < 2:
            raise UserError(f"num_train={len(factors_train)} is too small: factor {k} takes a single "
                            "value in the training sample; increase num_train")
        scores.append(explicitness_per_factor(x_train, factors_train[:, k], x_test, factors_test[:, k]))
    train, test = np.mean(scores, axis=0)
    return float(train), float(test)


def observations_encoded(p):
    """How many observations compute_modularity_explicitness renders and encodes with the protocol parameters p."""
    return p["num_train"] + p["num_test"]


def compute_modularity_explicitness(data, representation_fn, random_state, num_train=10000,
                                    num_test=5000, num_bins=20, batch_size=1024):
    """Modularity and explicitness of representation_fn on data.

    Keys: modularity_score (or modularity_score_missing_reason), explicitness_score_train,
    explicitness_score_test, and the parameters num_train, num_test, num_bins. batch_size is the
    number of observations per representation_fn call; it does not change the result (both
    factor sets are drawn before any observation is rendered).
    """
    require_discrete_factors(data, "modularity_explicitness")
    num_train = utils.check_int("num_train", num_train, minimum=2)
    num_test = utils.check_int("num_test", num_test, minimum=2)
    num_bins = utils.check_int("num_bins", num_bins, minimum=2)
    batch_size = utils.check_int("batch_size", batch_size)
    varying = utils.varying_factors(data)
    if len(varying) == 0:
        raise UserError("modularity and explicitness need at least one factor that varies; "
                        "every factor takes a single value")
    factors_train = data.sample_factors(num_train, random_state)
    factors_test = data.sample_factors(num_test, random_state)
    codes_train = utils.generate_codes(data, representation_fn, factors_train, random_state, batch_size)
    codes_test = utils.generate_codes(data, representation_fn, factors_test, random_state, batch_size)
    if codes_test.shape[1] != codes_train.shape[1]:
        raise UserError(f"representation_fn returned {codes_test.shape[1]} dimensions, "
                        f"earlier {codes_train.shape[1]}")
    factors_train, factors_test = factors_train[:, varying], factors_test[:, varying]

    result = {"num_train": num_train, "num_test": num_test, "num_bins": num_bins,
              "classifier_settings": classifiers.PUBLISHED_LOGISTIC_TEXT}
    modularity, reason = modularity_from_codes(codes_train, factors_train, num_bins)
    if modularity is None:
        result["modularity_score_missing_reason"] = reason
    else:
        result["modularity_score"] = modularity
    train, test = explicitness_from_codes(codes_train, factors_train, codes_test, factors_test)
    result.update(explicitness_score_train=train, explicitness_score_test=test)
    return result
