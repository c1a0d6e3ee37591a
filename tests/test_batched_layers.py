"""Batched layers (dlbench.train.batched_layers), the way of computing a stack that `dlb_bench
layers` times against vmap, compute for each run what the run alone computes: its beta-VAE loss
and its gradients. Compared in float64 (tests/test_stack.py says why), where summing in another
order changes results by about 1e-15 relative."""

import json

import gin
import pytest
import torch

import dlbench.data
from dlbench.config import parse_gin, resolve_run_spec
from dlbench.train.batched_layers import batched_loss_and_grads, batched_problem, batched_sequential
from dlbench.train.loop import Trainer
from dlbench.train.stack import StackedTrainer
from tests.commands import assert_one_line_error, run_command, run_in_process
from tests.conftest import TINY_PARAMS

BETAS = {0: 1.0, 1: 4.0, 2: 16.0}  # seed: beta


def spec_of(architecture, seed, beta, method="beta_vae"):
    params = [p for p in TINY_PARAMS if not p.startswith(("model.architecture", "beta_vae.beta", "train.batch_size"))]
    # the pinwheel architecture takes the pinwheel's 2-d points (refused with the config on images)
    dataset = ["dataset.name = 'pinwheel'", "model.likelihood = 'gaussian'"] if architecture == "pinwheel" else []
    try:
        parse_gin([], [*params, f"model.architecture = '{architecture}'", "train.batch_size = 4",
                       f"train.seed = {seed}", f"beta_vae.beta = {beta}", f"train.method = @{method}()", *dataset])
        return resolve_run_spec()
    finally:
        gin.clear_config()


@pytest.fixture
def data(tiny_dsprites):
    return dlbench.data.get_dataset("dsprites")


@pytest.mark.parametrize("architecture", ["conv", "mlp"])
def test_batched_layers_give_each_run_of_a_stack_its_own_loss_and_gradients(architecture, data, float64):
    assert_batched_layers_compute_runs_alone(architecture, data, "cpu")


def assert_batched_layers_compute_runs_alone(architecture, data, device):
    """Three runs of `architecture` with their own seeds and betas, in float64 on `device`."""
    specs = [spec_of(architecture, seed, beta) for seed, beta in BETAS.items()]
    assert batched_problem(specs[0]) is None
    stack = StackedTrainer(specs, data, torch.device(device))
    x, eps, _ = stack._draw(4)
    losses, grads = batched_loss_and_grads(stack.runs[0].model, stack.params, x, eps, stack.hyperparameters["beta"])
    for k, spec in enumerate(specs):
        alone = Trainer(spec, data, torch.device(device))  # the same seed: the same initial weights
        loss, _ = alone.method.objective(alone.model(x[k], eps=eps[k]))
        loss.backward()
        torch.testing.assert_close(losses[k], loss.detach(), rtol=1e-12, atol=0)
        for name, p in alone.model.named_parameters():
            torch.testing.assert_close(grads[name][k], p.grad, rtol=1e-10, atol=1e-12 * float(p.grad.abs().max()),
                                       msg=name)


def test_a_grouped_convolution_keeps_each_runs_channels_to_its_own_weights():
    # two runs whose 1x1 convolutions copy their input channel 0 and 1 respectively: mixing the
    # runs' channel blocks (a wrong grouped layout) would give each the other's result
    layer = torch.nn.Conv2d(2, 1, 1, bias=False)
    weight = torch.tensor([[[[[1.0]], [[0.0]]]], [[[[0.0]], [[1.0]]]]])  # (K=2, out=1, in=2, 1, 1)
    h = torch.arange(2 * 3 * 2 * 4 * 4, dtype=torch.float32).reshape(2, 3, 2, 4, 4)  # (K, B, C, H, W)
    out = batched_sequential([layer], {"net.0.weight": weight}, "net", h)
    assert torch.equal(out[0], h[0, :, :1]) and torch.equal(out[1], h[1, :, 1:])


def test_batched_layers_say_what_they_are_not_written_for():
    assert "beta_vae only" in batched_problem(spec_of("conv", 0, 1.0, method="beta_tcvae"))
    assert "conv and mlp" in batched_problem(spec_of("pinwheel", 0, 1.0))
    with pytest.raises(ValueError, match="no batched form"):
        batched_sequential([torch.nn.Sigmoid()], {}, "net", torch.zeros(2, 3, 4))


def test_dlb_bench_layers_times_both_ways_for_each_stack_size():
    result = run_command("dlb_bench", "layers", "--device", "cpu", "--stack", "1,2", "--steps", "1", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert list(figures["stacks"]) == ["K=1", "K=2"]
    for row in figures["stacks"].values():
        assert row["vmap_images_per_second"] > 0 and row["batched_images_per_second"] > 0
        assert row["batched_over_vmap"] == pytest.approx(row["batched_images_per_second"] / row["vmap_images_per_second"])


@pytest.mark.parametrize("option, value, needle", [("--stack", "0", "bad --stack '0'"),
                                                   ("--steps", "0", "--steps must be at least 1")])
def test_dlb_bench_layers_refuses_bad_counts_in_one_line(option, value, needle):
    result = run_in_process("dlb_bench", "layers", "--device", "cpu", option, value)
    assert_one_line_error(result, "dlb_bench layers", needle)

