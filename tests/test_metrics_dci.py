"""DCI: the disentanglement/completeness formulas against hand computations and scipy, the
end-to-end score on representations whose answer is known by construction."""

import inspect

import numpy as np
import pytest
import scipy.stats

from dlbench.errors import UserError
from dlbench.metrics import dci
from tests.toy_data import Recorder, ToyData

LOG2_3 = np.log(2) / np.log(3)          # entropy in base 3 of (1/2, 1/2, 0)


# ---- the formulas on given importance matrices ----------------------------------------------

@pytest.mark.parametrize("r", [np.eye(3), 0.2 * np.eye(4), np.eye(3)[[2, 0, 1]],
                               np.diag([0.1, 2.0, 5.0])])
def test_one_code_per_factor_scores_one(r):
    # identity, scaled identity, a permutation, unequal importances: every row and every
    # column has a single non-zero entry, entropy 0
    assert dci.disentanglement(r) == pytest.approx(1.0, abs=1e-12)
    assert dci.completeness(r) == pytest.approx(1.0, abs=1e-12)


def test_uniform_importance_scores_zero():
    r = np.ones((3, 4))
    assert dci.disentanglement(r) == pytest.approx(0.0, abs=1e-12)
    assert dci.completeness(r) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(1, 10), (3, 10), (10, 3), (7, 7)])
def test_a_uniform_row_or_column_scores_zero_never_below(shape):
    # its entropy is 1 but for rounding, which had made a score of -2.2e-16 (one code, ten equal importances)
    r = np.full(shape, 0.1)
    for score in (dci.disentanglement(r) if shape[1] > 1 else 0.0, dci.completeness(r) if shape[0] > 1 else 0.0):
        assert 0.0 <= score < 1e-12


def test_one_code_explaining_two_factors_lowers_disentanglement_only():
    # code 0 explains factors 0 and 1 equally, code 1 factor 2: rows (1/2, 1/2, 0) and
    # (0, 0, 1), weights 2/3 and 1/3; every column has one non-zero entry
    r = np.array([[1.0, 1.0, 0.0],
                  [0.0, 0.0, 1.0]])
    assert dci.disentanglement(r) == pytest.approx(2 / 3 * (1 - LOG2_3) + 1 / 3, abs=1e-12)
    assert dci.completeness(r) == pytest.approx(1.0, abs=1e-12)


def test_duplicated_code_lowers_completeness_only():
    # factor 0 shared equally by codes 0 and 1 (column (1/2, 1/2, 0), base 3 codes), factor 1
    # by code 2 alone; both columns sum to 1, so completeness is their plain mean
    r = np.array([[0.5, 0.0],
                  [0.5, 0.0],
                  [0.0, 1.0]])
    assert dci.completeness(r) == pytest.approx(((1 - LOG2_3) + 1) / 2, abs=1e-12)
    assert dci.disentanglement(r) == pytest.approx(1.0, abs=1e-12)


def test_zero_importance_codes_have_zero_weight_and_no_nan():
    r = np.array([[1.0, 0.0],
                  [0.0, 0.0],                # a dead code: weight 0
                  [0.0, 1.0]])
    assert dci.disentanglement(r) == pytest.approx(1.0, abs=1e-12)
    assert dci.completeness(r) == pytest.approx(1.0, abs=1e-12)
    assert dci.disentanglement(np.zeros((3, 2))) == 0.0
    assert dci.completeness(np.zeros((3, 2))) == 0.0


def test_single_factor_or_single_code_leaves_its_score_undefined_with_a_reason():
    # an entropy in base 1: scipy's, as disentanglement_lib computes it, is 0/0
    with np.errstate(invalid="ignore", divide="ignore"):
        assert np.isnan(scipy.stats.entropy([0.3], base=1))
    one_factor = dci.specificity_scores(np.array([[0.3], [0.7]]))
    assert set(one_factor) == {"disentanglement_missing_reason", "completeness"}
    one_code = dci.specificity_scores(np.array([[0.3, 0.7]]))
    assert set(one_code) == {"disentanglement", "completeness_missing_reason"}
    both = dci.specificity_scores(np.array([[1.0]]))
    assert set(both) == {"disentanglement_missing_reason", "completeness_missing_reason"}


def test_random_matrix_against_scipy_entropy():
    rs = np.random.RandomState(0)
    r = rs.uniform(size=(6, 4)) ** 3
    r[2] = 0.0                                 # a dead code
    d_codes, k_factors = r.shape
    rows = r.sum(1)
    d = sum(rows[i] / r.sum() * (1 - scipy.stats.entropy(r[i], base=k_factors))
            for i in range(d_codes) if rows[i] > 0)
    cols = r.sum(0)
    c = sum(cols[k] / r.sum() * (1 - scipy.stats.entropy(r[:, k], base=d_codes))
            for k in range(k_factors))
    assert dci.disentanglement(r) == pytest.approx(d, abs=1e-12)
    assert dci.completeness(r) == pytest.approx(c, abs=1e-12)


# ---- end to end --------------------------------------------------------------------------------

SMALL = dict(num_train=300, num_test=200)


def run(fn, data=None, seed=0, **params):
    data = data or ToyData((3, 4, 5))
    return dci.compute_dci(data, Recorder(data, fn), np.random.RandomState(seed), **{**SMALL, **params})


def test_the_factors_themselves_score_one():
    result = run(lambda f: f.astype(float))
    assert result["disentanglement"] > 0.99
    assert result["completeness"] > 0.99
    assert result["informativeness_train"] == 1.0
    assert result["informativeness_test"] == 1.0
    assert result["num_train"] == 300 and result["num_test"] == 200 and result["classifier"] == "gbt"
    assert set(result) == {"disentanglement", "completeness", "informativeness_train",
                           "informativeness_test", "num_train", "num_test", "classifier", "classifier_settings"}
    assert result["classifier_settings"].startswith("GradientBoostingClassifier(")


def test_scaled_permuted_factors_and_a_dead_dimension_score_one_without_nan():
    result = run(lambda f: np.c_[np.zeros(len(f)), 3.0 * f[:, 2], -0.5 * f[:, 0], f[:, 1] + 7.0])
    assert all(np.isfinite(v) for k, v in result.items() if not k.startswith("classifier"))
    assert result["disentanglement"] > 0.99 and result["completeness"] > 0.99
    assert result["informativeness_test"] == 1.0


def test_pure_noise_is_uninformative():
    # codes independent of the factors: a test prediction is right with probability 1/n_k for
    # a uniform factor with n_k values, so the expected test accuracy is mean(1/3, 1/4, 1/5)
    # = 0.261; 200 test points per factor give an sd of ~0.018
    rng = np.random.RandomState(5)
    result = run(lambda f: rng.standard_normal((len(f), 3)))
    assert abs(result["informativeness_test"] - np.mean([1 / 3, 1 / 4, 1 / 5])) < 0.08
    assert result["informativeness_test"] < 0.4


def test_two_factors_in_one_code_lower_disentanglement():
    # code 0 = 4 f0 + f1 holds factors 0 and 1 bijectively, code 1 = f2: both are predicted
    # perfectly, each factor uses one code (completeness ~1), but code 0 serves two factors:
    # importance ~[[1, 1, 0], [0, 0, 1]], whose disentanglement is 2/3 (1 - log 2 / log 3) + 1/3
    result = run(lambda f: np.c_[4 * f[:, 0] + f[:, 1], f[:, 2]].astype(float))
    assert result["informativeness_test"] == 1.0
    assert result["completeness"] > 0.99
    assert result["disentanglement"] == pytest.approx(2 / 3 * (1 - LOG2_3) + 1 / 3, abs=0.01)


def test_duplicated_dimension_lowers_completeness():
    result = run(lambda f: f[:, [0, 0, 1, 2]].astype(float))
    assert result["disentanglement"] > 0.99
    assert result["completeness"] < 0.95


def test_fully_mixing_rotation_scores_low():
    data = ToyData((4, 4, 4, 4))
    h = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0
    rotated = run(lambda f: (f - 1.5) @ h, data=data)
    identity = run(lambda f: f.astype(float), data=data)
    assert rotated["disentanglement"] < 0.5 and rotated["completeness"] < 0.5
    assert identity["disentanglement"] > 0.99 and identity["completeness"] > 0.99


def test_single_valued_factor_is_left_out():
    result = run(lambda f: f.astype(float), data=ToyData((1, 4, 5)))
    assert result["disentanglement"] > 0.99 and result["completeness"] > 0.99
    assert result["informativeness_test"] == 1.0


def test_same_seed_same_dict_and_batch_size_changes_nothing():
    fn = lambda f: np.sin(f @ np.array([[1.0, 0.3, 0.0], [0.2, 1.0, 0.1], [0.5, -0.4, 1.0]]))
    first = run(fn, seed=3)
    assert run(fn, seed=3, batch_size=50) == first
    assert run(fn, seed=4) != first


def test_logistic_option_on_factors_duplicates_and_noise():
    ident = run(lambda f: f.astype(float), classifier="logistic", num_train=3000)
    assert ident["classifier"] == "logistic"
    assert ident["informativeness_test"] == 1.0
    assert ident["disentanglement"] > 0.95 and ident["completeness"] > 0.95
    dup = run(lambda f: f[:, [0, 0, 1, 2]].astype(float), classifier="logistic", num_train=3000)
    assert dup["completeness"] < ident["completeness"] - 0.1
    # importances do not depend on the scale of a code dimension (codes are standardised)
    scaled = run(lambda f: f * np.array([100.0, 0.01, 1.0]), classifier="logistic", num_train=3000)
    assert scaled["disentanglement"] == pytest.approx(ident["disentanglement"], abs=1e-6)
    rng = np.random.RandomState(1)
    noise = run(lambda f: rng.standard_normal((len(f), 3)), classifier="logistic")
    assert noise["informativeness_test"] < 0.4
    assert run(lambda f: f.astype(float), classifier="logistic", seed=2) == \
        run(lambda f: f.astype(float), classifier="logistic", seed=2)


def test_bad_settings_raise_user_error():
    for bad in (dict(classifier="forest"), dict(num_train=1), dict(num_test=0), dict(batch_size=0)):
        with pytest.raises(UserError):
            run(lambda f: f.astype(float), **bad)


def test_default_parameters_are_disentanglement_lib_ones():
    params = inspect.signature(dci.compute_dci).parameters
    assert params["num_train"].default == 10000
    assert params["num_test"].default == 5000
    assert params["classifier"].default == "gbt"


def test_one_varying_factor_or_one_code_end_to_end_gives_reasons_not_perfect_scores():
    one_factor = run(lambda f: np.c_[f, -f].astype(float), data=ToyData((2,)))
    assert "disentanglement" not in one_factor and "single factor" in one_factor["disentanglement_missing_reason"]
    assert one_factor["informativeness_test"] == 1.0
    one_code = run(lambda f: f[:, :1].astype(float))
    assert "completeness" not in one_code and "single code" in one_code["completeness_missing_reason"]
    assert 0 <= one_code["disentanglement"] <= 1
    from dlbench.metrics import result_problem
    assert result_problem("dci", one_factor) is None        # stored and reused, not computed again
