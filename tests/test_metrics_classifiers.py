"""The fidelity policy, pinned: every metric whose reference implementation called a scikit-learn
classifier with the library's defaults fits the classifier those defaults meant in scikit-learn
0.20 (the version of disentanglement_lib's published numbers), with every setting named, and
records it. The expected settings below are 0.20's documented defaults, written out here
independently of dlbench's tables, so an upgrade that changes a default cannot change a score
unnoticed."""

import unittest.mock

import numpy as np
import pytest
import sklearn.linear_model

from dlbench.metrics import beta_vae, classifiers, dci, modularity_explicitness, sap
from tests.toy_data import Recorder, ToyData

# scikit-learn 0.20: LogisticRegression(penalty='l2', dual=False, tol=1e-4, C=1.0, fit_intercept=True,
# intercept_scaling=1, class_weight=None, random_state=None, solver='warn' (-> liblinear),
# max_iter=100, multi_class='warn' (-> ovr), ...)
LOGISTIC_0_20 = {"dual": False, "tol": 1e-4, "C": 1.0, "fit_intercept": True, "intercept_scaling": 1,
                 "class_weight": None, "solver": "liblinear", "max_iter": 100}
# disentanglement_lib's SAP: LinearSVC(C=0.01, class_weight="balanced"), 0.20's defaults otherwise
LINEAR_SVC = {"C": 0.01, "class_weight": "balanced", "penalty": "l2", "loss": "squared_hinge", "tol": 1e-4,
              "fit_intercept": True, "intercept_scaling": 1, "max_iter": 1000}
# GradientBoostingClassifier() in 0.20
GBT_0_20 = {"learning_rate": 0.1, "n_estimators": 100, "subsample": 1.0, "min_samples_split": 2,
            "min_samples_leaf": 1, "min_weight_fraction_leaf": 0.0, "max_depth": 3, "min_impurity_decrease": 0.0,
            "init": None, "max_features": None, "max_leaf_nodes": None}


def assert_settings(estimator, expected):
    params = estimator.get_params()
    for key, value in expected.items():
        assert params[key] == value, (key, params[key], value)


def test_the_published_logistic_regression_is_0_20s_default_one_vs_rest():
    model = classifiers.published_logistic_regression()
    assert type(model).__name__ == "OneVsRestClassifier"
    assert_settings(model.estimator, LOGISTIC_0_20)
    penalty = model.estimator.get_params()
    assert penalty.get("penalty") == "l2" or penalty.get("l1_ratio") == 0.0
    assert "solver='liblinear'" in classifiers.PUBLISHED_LOGISTIC_TEXT and "penalty='l2'" in classifiers.PUBLISHED_LOGISTIC_TEXT


def test_sap_and_dci_classifiers_are_the_references():
    assert_settings(classifiers.sap_linear_svc(), LINEAR_SVC)
    model = classifiers.published_gradient_boosting(seed=3)
    assert_settings(model, GBT_0_20)
    assert model.get_params()["loss"] in ("log_loss", "deviance")


def test_one_vs_rest_liblinear_is_what_the_metric_fits():
    # an independent one-vs-rest: one binary liblinear fit per class, the class of the largest
    # decision value wins; the published classifier must predict exactly that
    rng = np.random.RandomState(0)
    x = rng.randn(300, 4)
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    scores = []
    for c in np.unique(y):
        binary = sklearn.linear_model.LogisticRegression(solver="liblinear", C=1.0, tol=1e-4, max_iter=100)
        scores.append(binary.fit(x, (y == c).astype(int)).decision_function(x))
    expected = np.unique(y)[np.argmax(np.stack(scores, axis=1), axis=1)]
    np.testing.assert_array_equal(classifiers.published_logistic_regression().fit(x, y).predict(x), expected)
    # today's default (lbfgs, multinomial) is another classifier: it does not always agree
    multinomial = sklearn.linear_model.LogisticRegression().fit(x, y).decision_function(x)
    assert not np.allclose(multinomial, np.stack(scores, axis=1))


@pytest.mark.parametrize("metric, builder, params", [
    (beta_vae.compute_beta_vae, "published_logistic_regression", {"num_train": 60, "num_eval": 30, "batch_size": 4}),
    (modularity_explicitness.compute_modularity_explicitness, "published_logistic_regression",
     {"num_train": 300, "num_test": 100}),
    (sap.compute_sap, "sap_linear_svc", {"num_train": 300, "num_test": 100}),
    (dci.compute_dci, "published_gradient_boosting", {"num_train": 100, "num_test": 50}),
])
def test_each_metric_fits_its_pinned_classifier_and_records_it(monkeypatch, metric, builder, params):
    built = []
    original = getattr(classifiers, builder)

    def spy(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(classifiers, builder, spy)
    data = ToyData((3, 4))
    result = metric(data, Recorder(data, lambda f: f), np.random.RandomState(0), **params)
    assert built, f"{metric.__name__} did not fit {builder}"
    expected_text = {"published_logistic_regression": classifiers.PUBLISHED_LOGISTIC_TEXT,
                     "sap_linear_svc": classifiers.SAP_TEXT,
                     "published_gradient_boosting": classifiers.GRADIENT_BOOSTING_TEXT}[builder]
    assert result["classifier_settings"] == expected_text


def test_beta_vae_takes_the_draw_0_20s_liblinear_took_between_training_and_evaluation_points():
    # the evaluation points follow one randint(2**31 - 1) after the training points, as in
    # disentanglement_lib, whose LogisticRegression(random_state=random_state) drew it while fitting
    data = ToyData((3, 4, 5))
    state = np.random.RandomState(7)
    identity = Recorder(data, lambda f: f)
    beta_vae.labelled_points(data, identity, state, 20, 4, 4096)
    state.randint(2**31 - 1)
    expected = beta_vae.labelled_points(data, identity, state, 10, 4, 4096)

    seen = []
    original = beta_vae.labelled_points

    def recording(*args):
        seen.append(original(*args))
        return seen[-1]
    with unittest.mock.patch.object(beta_vae, "labelled_points", recording):
        beta_vae.compute_beta_vae(data, identity, np.random.RandomState(7), batch_size=4, num_train=20, num_eval=10)
    np.testing.assert_array_equal(seen[1][0], expected[0])
    np.testing.assert_array_equal(seen[1][1], expected[1])
