"""The evaluation random stream: seeded, independent of training and of global random state."""

import numpy as np
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
