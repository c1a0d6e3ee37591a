"""Encode once, evaluate everything: serving the representation metrics from the dataset encoded
once gives the results of the ordinary path, where that is exact (a deterministic representation
of a dataset with one image per grid cell), and is used only there and only when cheaper."""

import json
import shutil

import numpy as np
import pytest

from dlbench.data.color_dsprites import ColorDSprites
from dlbench.data.noisy_dsprites import NoisyDSprites
from dlbench.data.smallnorb import SmallNorb
from dlbench.encode_once import (EncodedGrid, encoded, observations_are_grid_images, worth_encoding_once)
from dlbench.evaluation import compute_metrics, evaluate_run, metric_result_path
from tests.toy_data import ToyData, factors_of_observations

SMALL = {
    "active_units": {"num_points": 200},
    "beta_vae": {"num_train": 40, "num_eval": 20, "batch_size": 8},
    "dci": {"num_train": 100, "num_test": 50},
    "factor_vae": {"num_train": 40, "num_eval": 20, "batch_size": 8, "num_variance_estimate": 100},
    "hoyer_sparsity": {"num_points": 200},
    "mig": {"num_train": 200},
    "modularity_explicitness": {"num_train": 200, "num_test": 100},
    "sap": {"num_train": 100, "num_test": 50},
    "unsupervised": {"num_train": 200},
}
BOOKKEEPING = ("elapsed_seconds", "encoding")


def values(result):
    return {k: v for k, v in result.items() if k not in BOOKKEEPING}


def toy_representation(data):
    """A representation of each observation alone (so it cannot depend on the batch): a fixed
    nonlinear mix of the observation's factors, with noise fixed per grid cell."""
    rotation = np.linalg.qr(np.random.RandomState(0).randn(3, 3))[0]
    jitter = np.random.RandomState(1).randn(len(data), 3) * 0.05

    def representation_fn(observations):
        factors = factors_of_observations(data, observations)
        return (np.tanh(factors @ rotation) + jitter[data.index_of(factors)]).astype(np.float32)

    return representation_fn


def run_both(names, data, representation_fn):
    params = {name: SMALL[name] for name in names}
    nothing = lambda name: {}
    once = dict(compute_metrics(names, data, representation_fn, 3, params, True, nothing, lambda *_: None, "t", True))
    per_draw = dict(compute_metrics(names, data, representation_fn, 3, params, True, nothing, lambda *_: None, "t",
                                    False))
    return once, per_draw


def test_every_representation_metric_gives_the_same_result_bit_for_bit():
    data = ToyData((3, 4, 5))
    once, per_draw = run_both(sorted(SMALL), data, toy_representation(data))
    for name in SMALL:
        assert once[name]["encoding"] == "once" and per_draw[name]["encoding"] == "per_draw"
        assert values(once[name]) == values(per_draw[name]), name


def test_the_dataset_is_encoded_once_for_all_metrics():
    data = ToyData((3, 4, 5))
    representation_fn = toy_representation(data)
    calls = []
    counting = lambda obs: calls.append(len(obs)) or representation_fn(obs)
    run_both_once = dict(compute_metrics(sorted(SMALL), data, counting, 0, SMALL, True, lambda n: {},
                                         lambda *_: None, "t", True))
    assert len(run_both_once) == len(SMALL) and sum(calls) == len(data)


def test_an_encoded_grid_draws_what_the_dataset_draws():
    data = ToyData((3, 4, 5))
    grid = EncodedGrid(data)
    a, b = np.random.RandomState(5), np.random.RandomState(5)
    factors, indices = grid.sample(50, a)
    np.testing.assert_array_equal(factors, data.sample_factors(50, b))
    np.testing.assert_array_equal(indices, data.index_of(factors))
    assert a.randint(10**9) == b.randint(10**9)  # the same number of draws taken
    grid_data, lookup = encoded(data, toy_representation(data))
    np.testing.assert_array_equal(lookup(indices), toy_representation(data)(data.observations_at(indices)))


def test_encoding_once_is_chosen_only_where_exact_and_cheaper(tiny_dsprites):
    from dlbench.data import get_dataset

    dsprites = get_dataset("dsprites")  # 384 images
    many, few = {"mig": {"num_train": 1000}}, {"mig": {"num_train": 100}}
    assert observations_are_grid_images(dsprites)
    assert worth_encoding_once(dsprites, True, ["mig"], many)
    assert not worth_encoding_once(dsprites, True, ["mig"], few)             # fewer draws than images
    assert not worth_encoding_once(dsprites, False, ["mig"], many)           # sampled codes: not a function
    assert not worth_encoding_once(dsprites, True, ["recon_ll"], {})         # model-side: its own path
    for drawn in (ColorDSprites, NoisyDSprites, SmallNorb):  # colours, noise or an instance drawn per call
        assert not observations_are_grid_images(drawn.__new__(drawn))
    # the published default sets, at full dSprites size (737,280 images)
    full = type("FullDSprites", (ToyData,), {})((3, 6, 40, 32, 32))
    assert len(full) == 737_280
    assert worth_encoding_once(full, True, ["mig", "factor_vae", "recon_ll"], {})


def test_a_trained_run_gives_the_same_results_both_ways(trained_run, tmp_path):
    names = ["mig", "factor_vae", "sap", "modularity_explicitness", "beta_vae", "unsupervised"]
    params = {name: SMALL[name] for name in names}
    twin = shutil.copytree(trained_run, tmp_path / "twin")
    once = evaluate_run(trained_run, names, "mean", "cpu", 0, params, log=lambda *_: None, encode_once=True)
    per_draw = evaluate_run(twin, names, "mean", "cpu", 0, params, log=lambda *_: None, encode_once=False)
    for name in names:
        assert once[name]["encoding"] == "once" and per_draw[name]["encoding"] == "per_draw"
        # the conv encoder's code for an image may depend on the size of the batch it is in, in
        # float32's last bits (on a CPU with AVX-512, oneDNN rounds batches of 1, 7 or 200 other
        # than batches of 64: codes apart by 1e-8), and the two paths encode other batches: equal
        # within float32 rounding of the codes (the toy representation above checks bit for bit)
        assert values(once[name]) == pytest.approx(values(per_draw[name]), rel=1e-5, abs=1e-9), name
    stored = json.loads(metric_result_path(trained_run, "mean", "mig", params["mig"]).read_text())
    assert stored["encoding"] == "once"


def test_model_side_metrics_are_computed_once_per_run_not_per_mode(trained_run):
    params = {"recon_ll": {"num_points": 50}}
    first = evaluate_run(trained_run, ["recon_ll"], "mean", "cpu", 0, params, log=lambda *_: None)
    path = metric_result_path(trained_run, "mean", "recon_ll", params["recon_ll"])
    stamp = path.stat().st_mtime_ns
    again = evaluate_run(trained_run, ["recon_ll"], "sampled", "cpu", 0, params, log=lambda *_: None)
    assert again["recon_ll"] == first["recon_ll"] and path.stat().st_mtime_ns == stamp
    assert not (trained_run / "metrics" / "sampled").exists()


def test_a_terminal_gets_a_bar_with_the_total_from_the_start(capsys):
    data = ToyData((3, 4, 5))
    params = {"mig": {"num_train": 200}}
    for once in (False, True):
        dict(compute_metrics(["mig"], data, toy_representation(data), 0, params, True, lambda n: {},
                             lambda *_: None, "t", once, progress=True))
        err = capsys.readouterr().err
        # the total is known before the first observation is encoded, so the bar has an ETA
        assert ("encoding the dataset once" if once else "encoding for mig") in err
        assert ("/60" if once else "/200") in err
