"""The evaluation random stream: seeded, independent of training and of global random state."""

import numpy as np
import pytest
import torch

from dlbench.evaluation import evaluate_run

METRICS = ("mig", "recon_ll", "iwae")
PARAMS = {"mig": {"num_train": 300}, "recon_ll": {"num_points": 100},
          "iwae": {"num_points": 20, "num_samples": 5}}


def results(run_dir, seed):
    out = evaluate_run(run_dir, METRICS, seed=seed, params=PARAMS, overwrite=True, log=lambda *a: None)
    return {m: {k: v for k, v in r.items() if k != "elapsed_seconds"} for m, r in out.items()}


def test_seeded_independent_of_global_random_state_which_it_leaves_alone(trained_run):
    torch.manual_seed(1)
    np.random.seed(1)
    first = results(trained_run, seed=0)
    torch.manual_seed(12345)  # another global state, as training would leave it
    np.random.seed(54321)
    expected_next = torch.rand(3), np.random.rand(3)
    torch.manual_seed(12345)
    np.random.seed(54321)
    assert results(trained_run, seed=0) == first
    assert torch.equal(torch.rand(3), expected_next[0]) and np.array_equal(np.random.rand(3), expected_next[1])
    second = results(trained_run, seed=1)
    assert first["recon_ll"]["recon_ll"] != second["recon_ll"]["recon_ll"]
    assert first["iwae"]["iwae"] != second["iwae"]["iwae"]


def test_evaluation_encodes_in_ieee_float32_and_leaves_the_processs_tf32_flags_alone(trained_run):
    # torch's default convolves float32 in TF32 on a GPU, which would make a metric depend on the GPU
    from tests.test_stack import TF32AtEachConvolution

    torch.backends.cuda.matmul.allow_tf32 = True  # as a user's script may have set it
    try:
        with TF32AtEachConvolution() as flags:
            results(trained_run, seed=0)
        assert flags.seen == {(False, False)}
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False


def test_the_sampled_representation_draws_from_the_metrics_seed(trained_run):
    # its noise came from torch's global generator: the same seed gave another MIG at each call
    def sampled(metrics, seed=0):
        params = {name: PARAMS[name] for name in metrics}
        out = evaluate_run(trained_run, metrics, "sampled", seed=seed, params=params, overwrite=True,
                           log=lambda *a: None)
        return {m: {k: v for k, v in r.items() if k != "elapsed_seconds"} for m, r in out.items()}

    torch.manual_seed(1)
    first = sampled(["mig"])
    torch.manual_seed(2)  # another global state
    np.random.seed(2)
    state = torch.get_rng_state()
    assert sampled(["mig"]) == first
    assert torch.equal(torch.get_rng_state(), state)  # left as it was
    assert sampled(["recon_ll", "mig"])["mig"] == first["mig"]  # whatever metric came before it
    assert sampled(["mig"], seed=1)["mig"]["discrete_mig"] != first["mig"]["discrete_mig"]
    mean = evaluate_run(trained_run, ["mig"], "mean", params={"mig": PARAMS["mig"]}, log=lambda *a: None)["mig"]
    assert mean["discrete_mig"] != first["mig"]["discrete_mig"]  # the codes are drawn, not the means


CHUNKED = {"mig": {"num_train": 3000}, "unsupervised": {"num_train": 3000},
           "sap": {"num_train": 300, "num_test": 200}}


def test_a_sampled_result_does_not_depend_on_the_batch_size_that_chunks_the_encoding(trained_run):
    # the noise came from torch's generator call by call, whose draws depend on a call's size: mig.batch_size=7
    # gave another MIG than 1000, stored in the same folder (batch_size is no protocol) and reused for either
    def evaluated(mode, batch_size):
        params = {name: {**given, "batch_size": batch_size} for name, given in CHUNKED.items()}
        out = evaluate_run(trained_run, list(CHUNKED), mode, params=params, overwrite=True, log=lambda *a: None)
        return {m: {k: v for k, v in r.items() if k != "elapsed_seconds"} for m, r in out.items()}

    for mode in ("sampled", "mean"):
        small, large = evaluated(mode, 7), evaluated(mode, 1000)
        for name in CHUNKED:  # the conv encoder rounds some batch sizes differently in float32: within that
            assert small[name] == pytest.approx(large[name], rel=1e-6, abs=0), (mode, name)
    assert evaluated("sampled", 7)["mig"]["discrete_mig"] != evaluated("mean", 7)["mig"]["discrete_mig"]


def test_a_sampled_result_stored_before_its_noise_was_drawn_per_observation_is_computed_again(trained_run):
    import json

    from dlbench.evaluation import metric_result_path

    params = {"mig": {"num_train": 300}}
    first = evaluate_run(trained_run, ["mig"], "sampled", params=params, log=lambda *a: None)["mig"]
    assert first["noise"] == "per observation from the seed, in blocks of 1024"
    lines = []
    assert evaluate_run(trained_run, ["mig"], "sampled", params=params, log=lines.append)["mig"] == first
    assert lines and "kept the stored results of mig[num_train=300]" in lines[0]
    path = metric_result_path(trained_run, "sampled", "mig", params["mig"])
    older = {key: value for key, value in first.items() if key != "noise"}
    path.write_text(json.dumps({**older, "discrete_mig": 0.123}))  # as one written before the noise was recorded
    lines.clear()
    again = evaluate_run(trained_run, ["mig"], "sampled", params=params, log=lines.append)["mig"]
    assert again["discrete_mig"] == first["discrete_mig"] and json.loads(path.read_text())["noise"]
    assert lines[0] == (f"{trained_run}: the stored sampled result of mig[num_train=300] drew its noise call by call, "
                        f"which made it depend on the batch size; computing it again")
    # the mean representation has no noise: its results are reused as before
    evaluate_run(trained_run, ["mig"], "mean", params=params, log=lambda *a: None)
    assert "noise" not in json.loads(metric_result_path(trained_run, "mean", "mig", params["mig"]).read_text())


def test_sampled_codes_are_draws_from_the_encoders_gaussian_that_depend_on_the_seed_and_place_alone(trained_run):
    import dlbench.data
    from dlbench import rundir
    from dlbench.postprocess import SampledCodes, load_representation, postprocess
    from dlbench.train import load_trained_model

    postprocess(trained_run, "sampled")
    codes = SampledCodes(load_representation(trained_run, "sampled"), "cpu", batch_size=50)
    data = dlbench.data.dataset_from_record(rundir.read_json(rundir.run_json_path(trained_run)))
    x = np.concatenate([data.observations_at(np.arange(len(data)))] * 6)  # 2304: three noise blocks
    codes.restart(3)
    whole = codes(x)
    codes.restart(3)
    pieces = np.concatenate([codes(x[start:stop]) for start, stop in [(0, 1), (1, 8), (8, 1500), (1500, len(x))]])
    np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-6)  # the encoder's float32 rounding of a batch
    codes.restart(4)
    assert not np.allclose(codes(x[:100]), whole[:100])
    with torch.no_grad():
        mean, logvar = load_trained_model(trained_run).encode(torch.as_tensor(x, dtype=torch.float32))
    eps = (whole - mean.numpy()) / np.exp(0.5 * logvar.numpy())  # standard normal, independent across draws
    assert abs(eps.mean()) < 4 / np.sqrt(eps.size) and abs(eps.std() - 1) < 4 / np.sqrt(2 * eps.size)
    same_image = eps.reshape(6, len(data), -1)  # the copies of an image get their own draws
    assert abs(np.corrcoef(same_image[0].ravel(), same_image[1].ravel())[0, 1]) < 4 / np.sqrt(same_image[0].size)
