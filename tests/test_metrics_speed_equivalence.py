"""The vectorised metrics give the same dict as straightforward per-vote / per-point loops of the
same protocol (dlbench.metrics.baselines), and the bincount mutual information equals sklearn's."""

import json

import numpy as np
import pytest
import torch
import sklearn.metrics

from dlbench.metrics import evaluate, utils
from dlbench.metrics.baselines import BASELINES, evaluate_baseline
from tests.toy_data import Recorder, ToyData

SIZES = (3, 4, 1, 5)   # a single-valued factor too: every metric must leave it out the same way

# settings small enough for a few seconds per metric, large enough that every vote / point loop
# and every estimator runs (the 20-bin histograms see hundreds of points)
SMALL = {
    "factor_vae": dict(num_train=150, num_eval=100, num_variance_estimate=500),
    "beta_vae": dict(num_train=120, num_eval=60, batch_size=16),
    "mig": dict(num_train=600),
    "sap": dict(num_train=300, num_test=200),
    "dci": dict(num_train=300, num_test=200, classifier="logistic"),
    "modularity_explicitness": dict(num_train=300, num_test=200),
    "unsupervised": dict(num_train=600),
    "hoyer_sparsity": dict(num_points=600),
    "active_units": dict(num_points=600),
}


def identity(factors):
    return factors


def noisy_linear_mix(factors):
    """A fixed random linear map of the factors plus noise that is a fixed function of the grid
    cell (so a point's code does not depend on the batch it is encoded in), and a dead dimension."""
    data = ToyData(SIZES)
    rs = np.random.RandomState(7)
    weights = rs.normal(size=(len(SIZES), 6))
    cell_noise = 0.3 * rs.normal(size=(len(data), 6))
    mixed = (factors[:, :, None] * weights[None]).sum(axis=1) + cell_noise[data.index_of(factors)]
    return np.concatenate([mixed, np.zeros((len(factors), 1))], axis=1)


def sorted_rows(array):
    return array[np.lexsort(array.T[::-1])]


def test_every_baseline_mirrors_a_registered_metric():
    from dlbench.metrics import METRICS
    assert set(BASELINES) <= set(METRICS)
    assert set(SMALL) == set(BASELINES)


@pytest.mark.parametrize("representation", [identity, noisy_linear_mix], ids=["identity", "noisy_mix"])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_vectorised_metric_equals_its_straightforward_loop(name, representation):
    data = ToyData(SIZES)
    fast_fn, slow_fn = Recorder(data, representation), Recorder(data, representation)
    fast = evaluate(name, data, fast_fn, seed=3, **SMALL[name])
    slow = evaluate_baseline(name, data, slow_fn, seed=3, **SMALL[name])
    assert json.dumps(fast, sort_keys=True) == json.dumps(slow, sort_keys=True)   # bit for bit
    # the same points were encoded (beta_vae's baseline interleaves the two halves of the pairs
    # point by point, the metric stacks them per call), in more, smaller calls
    np.testing.assert_array_equal(sorted_rows(fast_fn.all_factors), sorted_rows(slow_fn.all_factors))
    assert len(slow_fn.call_sizes) > len(fast_fn.call_sizes)


@pytest.mark.parametrize("name, reason", [("mig", "discrete_mig_missing_reason"), ("sap", "SAP_score_missing_reason")])
def test_a_baseline_of_a_single_code_dimension_gives_the_metrics_reason(name, reason):
    # mig's baseline had kept the second-best-as-0 score the metric no longer gives; sap's had raised IndexError
    data = ToyData(SIZES)
    fast = evaluate(name, data, Recorder(data, lambda f: f[:, :1]), seed=3, **SMALL[name])
    slow = evaluate_baseline(name, data, Recorder(data, lambda f: f[:, :1]), seed=3, **SMALL[name])
    assert fast == slow and reason in slow


def test_baseline_encodes_one_vote_per_call():
    data = ToyData(SIZES)
    rep = Recorder(data, identity)
    evaluate_baseline("factor_vae", data, rep, seed=0, **SMALL["factor_vae"])
    # the variance estimate 64 at a time (disentanglement_lib's batching), then one call per vote
    assert rep.call_sizes == [64] * 7 + [52] + [64] * 250
    for batch in rep.batches[8:]:
        assert any(len(np.unique(batch[:, k])) == 1 for k in (0, 1, 3))   # one factor held fixed


def test_mutual_info_equals_sklearn_on_random_inputs():
    rs = np.random.RandomState(0)
    for _ in range(100):
        n = rs.randint(1, 400)
        codes = rs.randint(rs.randint(1, 25), size=(n, 3)) * 5 - 7       # arbitrary, unsorted labels
        factors = rs.randint(rs.randint(1, 40), size=(n, 2))
        m = utils.discrete_mutual_info(codes, factors)
        h = utils.discrete_entropy(factors)
        for k in range(2):
            for i in range(3):
                expected = sklearn.metrics.mutual_info_score(factors[:, k], codes[:, i])
                assert m[i, k] == pytest.approx(expected, rel=0, abs=1e-12)
            assert h[k] == pytest.approx(sklearn.metrics.mutual_info_score(factors[:, k], factors[:, k]),
                                         rel=0, abs=1e-12)


# ---- the benchmark's lookup representation and `dlb_bench metrics` ------------------------

def test_lookup_representation_is_the_exact_linear_map_of_the_factors():
    from dlbench.bench import ExactLinearMap, FactorsAsObservations

    base = ToyData(SIZES)
    lookup = FactorsAsObservations(base)
    # the same factor draws as the wrapped dataset
    np.testing.assert_array_equal(lookup.sample_factors(50, np.random.RandomState(4)),
                                  base.sample_factors(50, np.random.RandomState(4)))
    factors = lookup.sample_factors(300, np.random.RandomState(5))
    representation = ExactLinearMap(lookup.num_factors, num_codes=6, seed=1)
    codes = representation(lookup.sample_observations_from_factors(factors, None))
    # integer arithmetic on the weights in units of 2^-10: the float product must be exact
    units = (representation.weights * 1024).astype(np.int64)
    np.testing.assert_array_equal(units / 1024, representation.weights)
    np.testing.assert_array_equal(codes, (factors @ units) / 1024)
    # so a point's code does not depend on its batch
    np.testing.assert_array_equal(np.concatenate([representation(lookup.sample_observations_from_factors(f, None))
                                                  for f in np.array_split(factors, 7)]), codes)


@pytest.fixture
def toy_dataset(monkeypatch):
    import dlbench.data
    monkeypatch.setattr(dlbench.data, "get_dataset", lambda name, **kwargs: ToyData(SIZES))


def test_dlb_bench_metrics_lookup_only_runs_mig(toy_dataset, capsys):
    from dlbench.cli.bench import main

    assert main(["metrics", "--lookup-only", "--metrics", "mig", "--metric_param", "mig.num_train=500",
                 "--repeats", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert "conv_seconds" not in figures and set(figures["lookup"]) == {"mig"}
    assert figures["observations"] == int(np.prod(SIZES))  # a reduced grid's figures say that they are
    row = figures["lookup"]["mig"]
    assert row["same_result"] is True
    assert row["seconds"] > 0 and row["baseline_seconds"] > 0
    assert row["speedup"] == pytest.approx(row["baseline_seconds"] / row["seconds"])

    assert main(["metrics", "--lookup-only", "--metrics", "mig,active_units",
                 "--metric_param", "mig.num_train=500", "--metric_param", "active_units.num_points=500"]) == 0
    table = capsys.readouterr().out
    assert "speedup" in table and table.count("True") == 2


@pytest.mark.parametrize("argv, message", [
    (["--metrics", "nope"], "unknown metric 'nope'"),
    (["--metrics", "recon_ll"], "drop --lookup-only"),
    (["--metrics", "mig", "--metric_param", "nope.x=1"], "unknown metric 'nope'"),
    (["--metrics", "mig", "--repeats", "0"], "--repeats must be at least 1, got 0"),
])
def test_dlb_bench_metrics_bad_input_is_one_line(toy_dataset, capsys, argv, message):
    from dlbench.cli.bench import main

    assert main(["metrics", "--lookup-only", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_the_per_run_benchmark_times_both_ways_and_finds_the_same_results(tiny_dsprites):
    from dlbench.bench import bench_per_run
    from dlbench.data import get_dataset

    params = {"mig": {"num_train": 500}, "recon_ll": {"num_points": 50}}
    figures = bench_per_run(torch.device("cpu"), data=get_dataset("dsprites"), sets={"tiny": ["mig", "recon_ll"]},
                            log=lambda *_: None, params=params)
    row = figures["tiny"]
    assert figures["observations"] == 384 and row["observations_drawn"] == 500
    assert row["same_results"] is True
    assert set(row["once_metric_seconds"]) == set(row["per_draw_metric_seconds"]) == {"mig", "recon_ll"}
    assert row["speedup"] == row["per_draw_seconds"] / row["once_seconds"] and row["encode_once_seconds"] >= 0


@pytest.mark.parametrize("argv, message", [
    (["metrics", "--dataset", "pinwheel", "--metrics", "mig"], "on 64x64 images, which pinwheel has not; give"),
    (["encoding", "--dataset", "linear_gaussian", "--images", "1024", "--stack", "1"],
     "a fixed array of 64x64 images, which linear_gaussian has not"),
    (["encoding", "--dataset", "noisy_dsprites", "--images", "1024", "--stack", "1"],
     "a fixed array of 64x64 images, which noisy_dsprites has not"),
])
def test_dlb_bench_names_the_datasets_its_conv_encoder_can_time(capsys, argv, message):
    # the lines had given a training's advice ("use model.architecture = 'mlp'", internal function
    # names), which dlb_bench has no way to follow
    from dlbench.cli.bench import main

    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line and "--dataset dsprites" in line and "architecture" not in line
