"""BetaVAE score (Higgins et al., 2017), disentanglement_lib's protocol (beta_vae_sklearn).

One labelled point: pick a factor k uniformly, draw batch_size pairs of factor vectors where the
two vectors of a pair share factor k's value (every other factor drawn independently), encode
both, and take the feature vector mean over the pairs of |z1 - z2| (per code dimension) with
label k. A dimension that encodes k alone is 0 in the feature of every point labelled k, so a
linear classifier recovers k. A logistic regression is fitted on num_train points; its accuracy
on them is train_accuracy, on num_eval fresh points eval_accuracy.

Only factors that take more than one value are picked: holding a single-valued factor fixed
fixes nothing, so its points would be indistinguishable from the others' and would only add
label noise (and chance would no longer be 1/K). disentanglement_lib picks among all of its
dataset's factors, but its datasets list only varying ones (dSprites leaves colour out), so on
those datasets the two agree.

Points are built many at a time: the factor vectors of a whole point set are drawn in one go,
then rendered and encoded representation_batch_size observations per representation_fn call
(the pairs of several points stacked), so the result does not depend on
representation_batch_size.
"""

import numpy as np

from dlbench.data.ground_truth import require_discrete_factors
from dlbench.errors import UserError
from dlbench.metrics import classifiers, utils


def too_few_factors_problem(data):
    """Why the score is undefined on data, or None: its classifier tells which factor a point
    holds fixed, which needs two factors that vary (with one, every label is the same and the
    score would be 1 for any model; disentanglement_lib's classifier refuses to fit)."""
    varying = len(utils.varying_factors(data))
    if varying >= 2:
        return None
    return (f"the BetaVAE score needs two or more factors that vary, to tell which one a point holds fixed; "
            f"{getattr(data, 'name', 'the dataset')} has {varying}: choose another metric (e.g. mig)")


def draw_pair_factors(data, random_state, num_points, batch_size):
    """(labels, factors1, factors2): labels (num_points,) the fixed factor of each point,
    factors1/factors2 (num_points, batch_size, num_factors) with factors2[p, :, labels[p]] ==
    factors1[p, :, labels[p]]."""
    problem = too_few_factors_problem(data)
    if problem:
        raise UserError(problem)
    candidates = utils.varying_factors(data)
    num_factors = data.num_factors
    labels = candidates[random_state.randint(len(candidates), size=num_points)]
    shape = (num_points, batch_size, num_factors)
    factors1 = data.sample_factors(num_points * batch_size, random_state).reshape(shape)
    factors2 = data.sample_factors(num_points * batch_size, random_state).reshape(shape)
    rows = np.arange(num_points)
    factors2[rows, :, labels] = factors1[rows, :, labels]
    return labels, factors1, factors2


def pair_features(data, representation_fn, random_state, factors1, factors2, representation_batch_size):
    """Features (num_points, d): per point the mean over its pairs of |z1 - z2|."""
    num_points, batch_size, num_factors = factors1.shape
    # each call encodes both halves of the pairs of points_per_call points
    points_per_call = max(1, representation_batch_size // (2 * batch_size))
    parts, dim = [], None
    for start in range(0, num_points, points_per_call):
        chunk1 = factors1[start:start + points_per_call]
        chunk2 = factors2[start:start + points_per_call]
        n = len(chunk1)
        stacked = np.concatenate([chunk1, chunk2]).reshape(-1, num_factors)
        observations = data.sample_observations_from_factors(stacked, random_state)
        codes = utils.encode(representation_fn, observations, max(representation_batch_size, 2 * batch_size))
        if dim is None:
            dim = codes.shape[1]
        elif codes.shape[1] != dim:
            raise UserError(f"representation_fn returned {codes.shape[1]} dimensions, earlier {dim}")
        codes = codes.reshape(2, n, batch_size, dim)
        parts.append(np.abs(codes[0] - codes[1]).mean(axis=1))
    return np.concatenate(parts, axis=0)


def labelled_points(data, representation_fn, random_state, num_points, batch_size, representation_batch_size):
    """(features (num_points, d), labels (num_points,)) of the BetaVAE protocol."""
    labels, factors1, factors2 = draw_pair_factors(data, random_state, num_points, batch_size)
    features = pair_features(data, representation_fn, random_state, factors1, factors2,
                             representation_batch_size)
    return features, labels


def observations_encoded(p):
    """How many observations compute_beta_vae renders and encodes with the protocol parameters p."""
    return 2 * p["batch_size"] * (p["num_train"] + p["num_eval"])


def compute_beta_vae(data, representation_fn, random_state, batch_size=64, num_train=10000,
                     num_eval=5000, representation_batch_size=4096):
    """BetaVAE score of representation_fn on data.

    Keys: train_accuracy, eval_accuracy, and the parameters batch_size (pairs per point),
    num_train, num_eval. representation_batch_size is the number of observations per
    representation_fn call (it does not change the result).

    The classifier is disentanglement_lib's LogisticRegression() as scikit-learn 0.20 defined it
    (liblinear, one-vs-rest, L2, C = 1; classifiers.published_logistic_regression), and the draws
    follow its order: the training points, then the one number 0.20's liblinear fit drew from the
    metric's random state, then the evaluation points.
    """
    require_discrete_factors(data, "beta_vae")
    batch_size = utils.check_int("batch_size", batch_size)
    num_train = utils.check_int("num_train", num_train)
    num_eval = utils.check_int("num_eval", num_eval)
    representation_batch_size = utils.check_int("representation_batch_size", representation_batch_size)
    result = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval,
              "classifier_settings": classifiers.PUBLISHED_LOGISTIC_TEXT}

    args = (batch_size, representation_batch_size)
    train_x, train_y = labelled_points(data, representation_fn, random_state, num_train, *args)
    take_liblinear_seed(random_state)
    eval_x, eval_y = labelled_points(data, representation_fn, random_state, num_eval, *args)
    result.update(fit_and_score(train_x, train_y, eval_x, eval_y))
    return result


def take_liblinear_seed(random_state):
    """The draw scikit-learn 0.20's liblinear fit took from the metric's random state (it was
    given random_state=random_state) between the training and the evaluation points: taken here
    too, so the evaluation points are those disentanglement_lib drew for the same seed."""
    random_state.randint(np.iinfo(np.int32).max)


def fit_and_score(train_x, train_y, eval_x, eval_y):
    """{train_accuracy, eval_accuracy} of the published classifier, or where the training points
    all have one label (a tiny num_train) their <key>_missing_reason: no classifier can be fitted
    to one class (disentanglement_lib's fit fails), and always predicting it scores a label's
    frequency, not the representation."""
    if len(np.unique(train_y)) < 2:
        reason = f"all {len(train_y)} training points hold the same factor fixed: increase num_train"
        return {"train_accuracy_missing_reason": reason, "eval_accuracy_missing_reason": reason}
    model = classifiers.published_logistic_regression().fit(train_x, train_y)
    return {"train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
            "eval_accuracy": float(np.mean(model.predict(eval_x) == eval_y))}
