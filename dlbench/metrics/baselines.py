"""Straightforward reference implementations of the metrics' protocols, for `dlb_bench metrics`
(the baseline the speed-ups are measured against) and the equivalence tests only; not registered.

Each baseline draws the same random numbers in the same order as the metric it mirrors, so for
the same seed it returns the same dict, but it works the way disentanglement_lib's code does:
- factor_vae: the global variances encoded batch_size (64) observations per representation_fn
  call, then a Python loop over votes with one representation_fn call per vote;
- beta_vae: a Python loop over labelled points, two representation_fn calls (batch_size
  observations each) per point;
- mig, modularity_explicitness, unsupervised: codes encoded 16 points per call and the mutual
  information computed with sklearn.metrics.mutual_info_score once per pair of columns;
- sap, dci, hoyer_sparsity, active_units: codes encoded 16 points per call (hoyer_sparsity also
  scores one point at a time); the classifiers are the metrics' own.
The batch_size / representation_batch_size parameters of the metrics (observations per call)
are accepted and ignored. Observations are rendered batch by batch in the order the metric
renders them, so datasets whose rendering draws from random_state would need the same batching
to agree; every dataset here renders deterministically from the factors.
"""

import numpy as np
import sklearn.metrics

from dlbench import metrics
from dlbench.metrics import beta_vae as beta_vae_metric
from dlbench.metrics import classifiers
from dlbench.metrics import dci as dci_metric
from dlbench.metrics import mig as mig_metric
from dlbench.metrics import modularity_explicitness as me_metric
from dlbench.metrics import sap as sap_metric
from dlbench.metrics import unsupervised as unsupervised_metric
from dlbench.metrics import utils

POINTS_PER_CALL = 16  # disentanglement_lib's generate_batch_factor_code default


def factor_vae(data, representation_fn, random_state, batch_size, num_train, num_eval,
               num_variance_estimate, prune_threshold, representation_batch_size):
    del representation_batch_size
    result = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
              "num_variance_estimate": num_variance_estimate, "prune_threshold": prune_threshold}
    factors = data.sample_factors(num_variance_estimate, random_state)
    codes = utils.generate_codes(data, representation_fn, factors, random_state, batch_size)
    global_variances = np.var(codes, axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_variances) >= prune_threshold)
    if len(active) == 0:
        result.update(train_accuracy=0.0, eval_accuracy=0.0, num_active_dims=0)
        return result
    args = (data, representation_fn, random_state)
    train_votes = _factor_vae_votes(*args, num_train, batch_size, global_variances, active)
    classifier = np.argmax(train_votes, axis=0)
    eval_votes = _factor_vae_votes(*args, num_eval, batch_size, global_variances, active)
    result.update(train_accuracy=_vote_accuracy(train_votes, classifier),
                  eval_accuracy=_vote_accuracy(eval_votes, classifier), num_active_dims=len(active))
    return result


def _factor_vae_votes(data, representation_fn, random_state, num_votes, batch_size, global_variances, active):
    candidates = utils.varying_factors(data)
    voted = candidates[random_state.randint(len(candidates), size=num_votes)]
    factors = data.sample_factors(num_votes * batch_size, random_state)
    factors = factors.reshape(num_votes, batch_size, data.num_factors)
    votes = np.zeros((data.num_factors, len(global_variances)), dtype=np.int64)
    for vote in range(num_votes):
        k = voted[vote]
        batch = factors[vote]
        batch[:, k] = batch[0, k]
        observations = data.sample_observations_from_factors(batch, random_state)
        codes = utils.encode(representation_fn, observations, batch_size)
        local_variances = np.var(codes[:, active], axis=0, ddof=1)
        votes[k, active[np.argmin(local_variances / global_variances[active])]] += 1
    return votes


def _vote_accuracy(votes, classifier):
    correct = sum(votes[classifier[j], j] for j in range(votes.shape[1]))
    return float(correct / votes.sum())


def beta_vae(data, representation_fn, random_state, batch_size, num_train, num_eval, representation_batch_size):
    del representation_batch_size
    result = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
              "classifier_settings": classifiers.PUBLISHED_LOGISTIC_TEXT}
    train_x, train_y = _beta_vae_points(data, representation_fn, random_state, num_train, batch_size)
    beta_vae_metric.take_liblinear_seed(random_state)
    eval_x, eval_y = _beta_vae_points(data, representation_fn, random_state, num_eval, batch_size)
    result.update(beta_vae_metric.fit_and_score(train_x, train_y, eval_x, eval_y))  # the classifier is the metric's
    return result


def _beta_vae_points(data, representation_fn, random_state, num_points, batch_size):
    candidates = utils.varying_factors(data)
    labels = candidates[random_state.randint(len(candidates), size=num_points)]
    shape = (num_points, batch_size, data.num_factors)
    factors1 = data.sample_factors(num_points * batch_size, random_state).reshape(shape)
    factors2 = data.sample_factors(num_points * batch_size, random_state).reshape(shape)
    features = []
    for point in range(num_points):
        k = labels[point]
        factors2[point, :, k] = factors1[point, :, k]
        codes1 = utils.encode(representation_fn, data.sample_observations_from_factors(factors1[point], random_state),
                              batch_size)
        codes2 = utils.encode(representation_fn, data.sample_observations_from_factors(factors2[point], random_state),
                              batch_size)
        features.append(np.mean(np.abs(codes1 - codes2), axis=0))
    return np.stack(features), labels


def _codes(data, representation_fn, random_state, num_points):
    factors = data.sample_factors(num_points, random_state)
    return factors, utils.generate_codes(data, representation_fn, factors, random_state, POINTS_PER_CALL)


def _sklearn_mutual_info(discrete, targets):
    return np.array([[sklearn.metrics.mutual_info_score(targets[:, k], discrete[:, i])
                      for k in range(targets.shape[1])] for i in range(discrete.shape[1])])


def mig(data, representation_fn, random_state, num_train, num_bins, batch_size):
    del batch_size
    factors, codes = _codes(data, representation_fn, random_state, num_train)
    protocol = {"num_train": num_train, "num_bins": num_bins, "estimator": "histogram",
                "normalisation": "factor_entropy", "factors": utils.sampled_factor_names(data, factors)}
    if codes.shape[1] == 1:  # the metric's reason, where disentanglement_lib fails
        mig_metric.require_a_varying_factor(factors)
        return {"discrete_mig_missing_reason": mig_metric.SINGLE_CODE, **protocol}
    m = _sklearn_mutual_info(utils.histogram_discretize(codes, num_bins), factors)
    gaps = []
    for k in range(factors.shape[1]):
        entropy = sklearn.metrics.mutual_info_score(factors[:, k], factors[:, k])
        if entropy > 0:
            column = np.sort(m[:, k])[::-1]
            gaps.append((column[0] - column[1]) / entropy)
    return {"discrete_mig": float(np.mean(gaps)), **protocol}


def sap(data, representation_fn, random_state, num_train, num_test, continuous_factors, batch_size):
    del batch_size
    factors, codes, factors_test, codes_test = utils.train_test_codes(
        data, representation_fn, random_state, num_train, num_test, POINTS_PER_CALL)
    varying = np.array([len(np.unique(factors[:, k])) > 1 for k in range(factors.shape[1])])
    protocol = {"num_train": num_train, "num_test": num_test, "continuous_factors": continuous_factors,
                "classifier_settings": "squared correlation" if continuous_factors else classifiers.SAP_TEXT}
    if codes.shape[1] == 1:  # the metric's reason: a gap needs a second code
        return {"SAP_score_missing_reason": sap_metric.SINGLE_CODE, **protocol}
    if continuous_factors:
        scores = sap_metric.continuous_score_matrix(codes, factors.astype(np.float64))
    else:
        scores = sap_metric.discrete_score_matrix(codes, factors, codes_test, factors_test)
    return {"SAP_score": sap_metric.sap_from_score_matrix(scores, varying), **protocol}


def dci(data, representation_fn, random_state, num_train, num_test, classifier, batch_size):
    del batch_size
    factors_train, codes_train, factors_test, codes_test = utils.train_test_codes(
        data, representation_fn, random_state, num_train, num_test, POINTS_PER_CALL)
    seed = int(random_state.randint(2**31 - 1))
    importance, train_acc, test_acc = dci_metric.importance_matrix(
        codes_train, factors_train, codes_test, factors_test, classifier, seed)
    return {**dci_metric.specificity_scores(importance),
            "informativeness_train": float(train_acc.mean()), "informativeness_test": float(test_acc.mean()),
            "num_train": num_train, "num_test": num_test, "classifier": classifier,
            "classifier_settings": dci_metric.SETTINGS_TEXT[classifier]}


def modularity_explicitness(data, representation_fn, random_state, num_train, num_test, num_bins, batch_size):
    del batch_size
    varying = utils.varying_factors(data)
    factors_train = data.sample_factors(num_train, random_state)
    factors_test = data.sample_factors(num_test, random_state)
    codes_train = utils.generate_codes(data, representation_fn, factors_train, random_state, POINTS_PER_CALL)
    codes_test = utils.generate_codes(data, representation_fn, factors_test, random_state, POINTS_PER_CALL)
    factors_train, factors_test = factors_train[:, varying], factors_test[:, varying]
    result = {"num_train": num_train, "num_test": num_test, "num_bins": num_bins,
              "classifier_settings": classifiers.PUBLISHED_LOGISTIC_TEXT}
    if len(varying) < 2:
        result["modularity_score_missing_reason"] = me_metric.modularity_from_codes(
            codes_train, factors_train, num_bins)[1]
    else:
        m = _sklearn_mutual_info(utils.histogram_discretize(codes_train, num_bins), factors_train)
        result["modularity_score"] = float(np.mean(me_metric.modularity_per_code(m)))
    train, test = me_metric.explicitness_from_codes(codes_train, factors_train, codes_test, factors_test)
    result.update(explicitness_score_train=train, explicitness_score_test=test)
    return result


def unsupervised(data, representation_fn, random_state, num_train, num_bins, batch_size):
    del batch_size
    _, codes = _codes(data, representation_fn, random_state, num_train)
    d = codes.shape[1]
    cov = np.atleast_2d(np.cov(codes, rowvar=False))
    constant = unsupervised_metric.constant_dims(codes)
    result = {"num_train": num_train, "num_bins": num_bins}
    total_correlation, reason = unsupervised_metric.gaussian_total_correlation(cov, constant)
    if reason is None:
        result["gaussian_total_correlation"] = total_correlation
    else:
        result["gaussian_total_correlation_missing_reason"] = reason
    wasserstein = unsupervised_metric.gaussian_wasserstein_correlation(cov)
    result["gaussian_wasserstein_correlation"] = wasserstein
    if np.trace(cov) > 0 and len(constant) < d:
        result["gaussian_wasserstein_correlation_norm"] = wasserstein / float(np.trace(cov))
    else:
        result["gaussian_wasserstein_correlation_norm_missing_reason"] = (
            "every code dimension is constant: the total variance is 0")
    if d < 2:
        result["mutual_info_score_missing_reason"] = "a single code dimension has no pairs"
    else:
        discrete = utils.histogram_discretize(codes, num_bins)
        m = _sklearn_mutual_info(discrete, discrete)
        np.fill_diagonal(m, 0.0)
        result["mutual_info_score"] = float(m.sum() / (d * d - d))
    return result


def hoyer_sparsity(data, representation_fn, random_state, num_points, batch_size):
    del batch_size
    _, codes = _codes(data, representation_fn, random_state, num_points)
    std = codes.std(axis=0)
    live = std > 0
    result = {"num_dims_used": int(live.sum()), "num_points": num_points}
    normalised = codes[:, live] / std[live]
    d = normalised.shape[1]
    values = []
    for row in normalised:                   # one point at a time
        l1 = np.abs(row).sum()
        if l1 > 0:
            values.append((np.sqrt(d) - l1 / np.sqrt((row ** 2).sum())) / (np.sqrt(d) - 1.0))
    result["num_points_used"] = len(values) if d >= 2 else 0
    if d < 2:
        result["hoyer_sparsity_missing_reason"] = "fewer than two code dimensions vary over the data"
    elif not values:
        result["hoyer_sparsity_missing_reason"] = "every normalised code is zero"
    else:
        result["hoyer_sparsity"] = float(np.mean(values))
    return result


def active_units(data, representation_fn, random_state, num_points, threshold, batch_size):
    del batch_size
    _, codes = _codes(data, representation_fn, random_state, num_points)
    variance = codes.var(axis=0, ddof=1)
    active = int((variance > threshold).sum())
    result = {"active_units": active, "num_dims": codes.shape[1], "active_fraction": active / codes.shape[1],
              "num_points": num_points, "threshold": threshold}
    result.update({f"variance_{j}": float(v) for j, v in enumerate(variance)})
    return result


BASELINES = {
    "active_units": active_units,
    "beta_vae": beta_vae,
    "dci": dci,
    "factor_vae": factor_vae,
    "hoyer_sparsity": hoyer_sparsity,
    "mig": mig,
    "modularity_explicitness": modularity_explicitness,
    "sap": sap,
    "unsupervised": unsupervised,
}


def evaluate_baseline(name, data, representation_fn, seed=0, **params):
    """The baseline of metric `name` with np.random.RandomState(seed) and the metric's defaults
    for the parameters not given; the result in evaluate()'s form (plain Python values)."""
    settings = {**metrics.metric_params(name), **params}
    result = BASELINES[name](data, representation_fn, np.random.RandomState(seed), **settings)
    return {str(key): value.item() if isinstance(value, np.generic) else value for key, value in result.items()}
