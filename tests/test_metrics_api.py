"""evaluate(): registry, parameter checking, plain results, determinism."""

import json

import numpy as np
import pytest

from dlbench.errors import UserError
from dlbench.metrics import METRICS, REPRESENTATION_METRICS, available_metrics, evaluate, metric_params
from tests.toy_data import Recorder, ToyData


def test_available_metrics():
    assert {"factor_vae", "mig", "recon_ll"} <= set(available_metrics())
    assert available_metrics() == sorted(METRICS)


def test_unknown_metric():
    with pytest.raises(UserError) as err:
        evaluate("x", ToyData(), lambda x: x)
    assert str(err.value) == "unknown metric 'x'; available: " + ", ".join(sorted(METRICS))


@pytest.mark.parametrize("name,param", [("mig", "num_points"), ("factor_vae", "num_bins"),
                                        ("recon_ll", "num_train"),
                                        ("mig", "random_state")])
def test_unknown_parameter(name, param):
    with pytest.raises(UserError, match=f"unknown parameter.*{param}"):
        evaluate(name, ToyData(), lambda x: x, **{param: 10})


@pytest.mark.parametrize("name,params", [("mig", {"num_bins": 0}), ("mig", {"num_train": 2.5}),
                                         ("factor_vae", {"batch_size": 1}),
                                         ("factor_vae", {"prune_threshold": -1.0}),
                                         ("factor_vae", {"num_eval": True}),
                                         ("recon_ll", {"num_points": 0, "log_likelihood_fn": len})])
def test_bad_parameter_values(name, params):
    with pytest.raises(UserError):
        evaluate(name, ToyData(), lambda x: x.reshape(len(x), -1), **params)


def test_bad_seed():
    with pytest.raises(UserError, match="seed"):
        evaluate("mig", ToyData(), lambda x: x, seed="0")


def test_metric_params_lists_defaults():
    assert metric_params("mig") == {"num_train": 10000, "num_bins": 20, "batch_size": 1024}
    assert "representation_fn" not in metric_params("factor_vae")


def test_results_are_flat_plain_python_and_deterministic():
    data = ToyData((3, 4, 5), pixel_scale=0.25)
    runs = {
        "mig": dict(num_train=500),
        "factor_vae": dict(num_train=50, num_eval=50, num_variance_estimate=200),
        "recon_ll": dict(num_points=100, log_likelihood_fn=lambda x: -x.reshape(len(x), -1).sum(1)),
    }
    for name, params in runs.items():
        result = evaluate(name, data, Recorder(data, lambda f: f + 0.0), seed=7, **params)
        assert all(type(v) in (float, int, str, bool) for v in result.values()), result
        assert all(isinstance(k, str) for k in result)
        json.dumps(result, allow_nan=False)
        assert result == evaluate(name, data, Recorder(data, lambda f: f + 0.0), seed=7, **params)


def test_representation_output_is_checked():
    data = ToyData((3, 4))
    with pytest.raises(UserError, match="shape"):
        evaluate("mig", data, lambda x: np.zeros(len(x)), num_train=100)
    with pytest.raises(UserError, match="shape"):
        evaluate("mig", data, lambda x: np.zeros((len(x) + 1, 2)), num_train=100)
    with pytest.raises(UserError, match="non-finite"):
        evaluate("factor_vae", data, lambda x: np.full((len(x), 2), np.nan), num_variance_estimate=100)


@pytest.mark.parametrize("name", REPRESENTATION_METRICS)
def test_a_representation_of_no_columns_is_refused_as_the_command_line_refuses_it(name):
    # MIG and SAP had stopped with an IndexError, active_units with a ZeroDivisionError, others with
    # scikit-learn's ValueError; factor_vae and hoyer_sparsity had scored it
    small = {k: v for k, v in SMALL.items() if k in metric_params(name)}
    with pytest.raises(UserError, match=r"representation_fn returned codes of shape \(\d+, 0\), no columns, for "):
        evaluate(name, ToyData((3, 4)), lambda x: np.zeros((len(x), 0)), **small)


SMALL = {"num_train": 300, "num_eval": 150, "num_test": 150, "num_points": 300, "num_variance_estimate": 300,
         "num_samples": 200}


def metric_inputs(name):
    """(data, representation_fn, model functions) for the generic test of metric `name`: a toy
    linear-Gaussian model (fresh, so its sampling starts from its seed) where the metric needs one."""
    from dlbench.data.linear_gaussian import LinearGaussian
    from dlbench.evaluation import needs_model
    from dlbench.metrics import metric_params
    from tests.toy_model import LinearGaussianModel

    weights = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    data = LinearGaussian(mixing_matrix=np.diag(weights).tolist()) if name == "inference_error" else ToyData((3, 4, 5))
    functions = LinearGaussianModel(np.diag(weights)).functions() if needs_model(name) else {}
    return (data, lambda x: x.reshape(len(x), -1) * weights,
            {k: v for k, v in functions.items() if k in metric_params(name)})


@pytest.mark.parametrize("name", [m for m in sorted(METRICS) if m != "recon_ll"])
def test_every_metric_runs_through_evaluate_records_its_protocol_and_is_seeded(name):
    from dlbench.metrics import metric_params

    small = {k: v for k, v in SMALL.items() if k in metric_params(name)}
    data, fn, model = metric_inputs(name)
    first = evaluate(name, data, fn, seed=3, **small, **model)
    data, fn, model = metric_inputs(name)
    assert first == evaluate(name, data, fn, seed=3, **small, **model)
    assert all(isinstance(v, (bool, int, float, str)) for v in first.values())
    assert all(v == v for v in first.values() if isinstance(v, float))  # no NaN passed off as a score
    for key, value in small.items():
        assert first.get(key) == value, f"{name} does not record {key}"


@pytest.mark.parametrize("name", ["mig", "mig_chen", "factor_vae", "beta_vae", "dci", "modularity_explicitness", "sap"])
def test_metrics_for_discrete_factors_refuse_continuous_ones(name):
    from dlbench.data.linear_gaussian import LinearGaussian

    data = LinearGaussian()
    with pytest.raises(UserError, match=f"metric {name} needs discrete factors; dataset linear_gaussian"):
        model = {"encode_fn": lambda x: (x, x)} if name == "mig_chen" else {}
        evaluate(name, data, lambda x: x, **model)


def test_continuous_sap_runs_on_continuous_factors():
    from dlbench.data.linear_gaussian import LinearGaussian

    result = evaluate("sap", LinearGaussian(), lambda x: x, continuous_factors=True, num_train=200, num_test=100)
    assert 0 <= result["SAP_score"] <= 1


def test_mig_states_its_estimator_and_factor_set():
    from tests.toy_data import ToyData as Toy

    result = evaluate("mig", Toy((1, 4, 5)), lambda x: x.reshape(len(x), -1), num_train=200)
    assert (result["estimator"], result["normalisation"], result["factors"]) == ("histogram", "factor_entropy", "f1,f2")


def metric_returning(value):
    def returns(data, representation_fn, random_state, num_points=10):
        return value
    return returns


@pytest.mark.parametrize("returned,said", [(0.5, "metric 'mine' returned a float; a metric returns a dict"),
                                           ({"score": np.ones(3)}, "metric 'mine' returned 'score' as a ndarray"),
                                           ({"score": [0.5]}, "metric 'mine' returned 'score' as a list")])
def test_a_metric_that_returns_what_no_result_holds_is_named_with_what_it_returned(monkeypatch, returned, said):
    # a float had ended in "'float' object has no attribute 'items'", an array in a message naming no metric
    monkeypatch.setitem(METRICS, "mine", metric_returning(returned))
    with pytest.raises(TypeError, match=said):
        evaluate("mine", ToyData(), lambda x: x)


def test_a_metric_value_held_in_a_zero_dimensional_array_is_its_number(monkeypatch):
    monkeypatch.setitem(METRICS, "mine", metric_returning({"score": np.array(0.25), "count": np.array(3)}))
    result = evaluate("mine", ToyData(), lambda x: x)
    assert result == {"score": 0.25, "count": 3} and type(result["count"]) is int


def test_a_metric_value_named_as_a_key_of_the_results_record_is_refused(monkeypatch):
    # the record's seed had replaced the metric's own 'seed' value without a word
    from dlbench.evaluation import compute_metrics

    monkeypatch.setitem(METRICS, "mine", metric_returning({"score": 0.5, "seed": 7.0}))
    computed = compute_metrics(["mine"], ToyData(), lambda x: x, 0, {}, True, lambda name: {}, lambda *_: None,
                               "label", False)
    with pytest.raises(TypeError, match="metric 'mine' returned 'seed', which its result's record uses"):
        next(computed)
