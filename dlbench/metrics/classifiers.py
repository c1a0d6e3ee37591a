"""The classifiers the metrics fit, with every setting written out.

Fidelity policy: where disentanglement_lib's metric called a scikit-learn classifier with the
library's defaults, dlbench builds the classifier those defaults meant in scikit-learn 0.20 (the
version its published numbers were computed with), naming every setting, so that a later change
of a default cannot change a score; each result records the classifier in `classifier_settings`.
Where the reference itself fixed settings (SAP's LinearSVC), those are kept and the rest written
out too. Which metric uses which:

- beta_vae, modularity_explicitness: LogisticRegression() of scikit-learn 0.20, i.e. liblinear,
  one-vs-rest, L2, C = 1 (today's default is lbfgs and multinomial, which scores differently).
- sap: LinearSVC(C=0.01, class_weight='balanced') on one code dimension, as the reference.
- dci: GradientBoostingClassifier() (its 0.20 defaults and today's agree; written out anyway).
- dci with classifier='logistic': dlbench's own fast option, lbfgs multinomial L2 (not a
  reference protocol, so its numbers are never compared with gbt ones).
"""

# scikit-learn is imported where a classifier is built: its ensemble module alone takes about a
# second, which every command that imports the metrics (even for --help) would otherwise pay.

# scikit-learn 0.20's LogisticRegression() (solver='warn' meant liblinear, multi_class='warn' ovr)
PUBLISHED_LOGISTIC_REGRESSION = dict(dual=False, tol=1e-4, C=1.0, fit_intercept=True,
                                     intercept_scaling=1, class_weight=None, solver="liblinear", max_iter=100)

# disentanglement_lib's SAP: LinearSVC(C=0.01, class_weight='balanced') and 0.20's other defaults,
# except dual=False: the primal solver of the same problem, deterministic (the reference's dual
# solver shuffles with an unseeded generator) and equal to it within the solvers' tolerance.
SAP_LINEAR_SVC = dict(penalty="l2", loss="squared_hinge", dual=False, tol=1e-4, C=0.01, fit_intercept=True,
                      intercept_scaling=1, class_weight="balanced", max_iter=1000)

# GradientBoostingClassifier() as in 0.20 ('deviance' is today's 'log_loss', the same loss; the
# split criterion, friedman_mse, is the only one scikit-learn has left and can no longer be named)
PUBLISHED_GRADIENT_BOOSTING = dict(loss="log_loss", learning_rate=0.1, n_estimators=100, subsample=1.0,
                                   min_samples_split=2, min_samples_leaf=1,
                                   min_weight_fraction_leaf=0.0, max_depth=3, min_impurity_decrease=0.0,
                                   init=None, max_features=None, max_leaf_nodes=None, validation_fraction=0.1,
                                   n_iter_no_change=None, tol=1e-4)

# dlbench's fast DCI probe (not a reference protocol)
FAST_LOGISTIC_REGRESSION = dict(tol=1e-4, C=1.0, fit_intercept=True, solver="lbfgs", max_iter=1000)


def l2_penalty():
    """The L2 penalty of the logistic regressions, said the way the installed scikit-learn takes
    it: l1_ratio=0 from 1.8 on (where `penalty` is deprecated), penalty='l2' before."""
    import inspect

    import sklearn.linear_model

    default = inspect.signature(sklearn.linear_model.LogisticRegression).parameters["penalty"].default
    return {"l1_ratio": 0.0} if default == "deprecated" else {"penalty": "l2"}


def published_logistic_regression():
    """0.20's LogisticRegression(): a liblinear binary classifier per class (one-vs-rest; the
    current liblinear takes two classes only), probabilities normalised over classes as 0.20 did.
    The primal liblinear solver is deterministic; random_state only keeps scikit-learn from drawing
    a seed from numpy's global generator."""
    import sklearn.linear_model
    import sklearn.multiclass

    binary = sklearn.linear_model.LogisticRegression(**PUBLISHED_LOGISTIC_REGRESSION, **l2_penalty(), random_state=0)
    return sklearn.multiclass.OneVsRestClassifier(binary)


def sap_linear_svc():
    import sklearn.svm

    return sklearn.svm.LinearSVC(**SAP_LINEAR_SVC)


def published_gradient_boosting(seed):
    """random_state only breaks ties between equally good splits (subsample = 1, all features);
    disentanglement_lib leaves it unset, which makes duplicated codes non-deterministic."""
    import sklearn.ensemble

    return sklearn.ensemble.GradientBoostingClassifier(**PUBLISHED_GRADIENT_BOOSTING, random_state=seed)


def fast_logistic_regression(seed):
    import sklearn.linear_model

    return sklearn.linear_model.LogisticRegression(**FAST_LOGISTIC_REGRESSION, **l2_penalty(), random_state=seed)


def settings_text(name, settings, scheme=""):
    """What a result records of its classifier: 'LogisticRegression(C=1.0, ...) one-vs-rest'."""
    if name == "LogisticRegression":
        settings = {**settings, "penalty": "l2"}
    listed = ", ".join(f"{key}={value!r}" for key, value in sorted(settings.items()))
    return f"{name}({listed}){' ' + scheme if scheme else ''}"


PUBLISHED_LOGISTIC_TEXT = settings_text("LogisticRegression", PUBLISHED_LOGISTIC_REGRESSION,
                                        "one-vs-rest (scikit-learn 0.20 default, as published)")
SAP_TEXT = settings_text("LinearSVC", SAP_LINEAR_SVC)
GRADIENT_BOOSTING_TEXT = settings_text("GradientBoostingClassifier", PUBLISHED_GRADIENT_BOOSTING)
FAST_LOGISTIC_TEXT = settings_text("LogisticRegression", FAST_LOGISTIC_REGRESSION, "multinomial (dlbench's fast DCI)")
