"""A study's compute floor (dlbench.flops): a training step's counted FLOPs against the closed form
of its layers, the measured peak's arithmetic, and the floor."""

import gin
import pytest
import torch
from torch import nn

import dlbench.data
from dlbench import flops
from dlbench.config import parse_gin, resolve_run_spec
from tests.conftest import TINY_PARAMS


def mlp_spec(batch_size):
    params = [p for p in TINY_PARAMS if not p.startswith(("model.architecture", "train.batch_size"))]
    try:
        parse_gin([], [*params, "model.architecture = 'mlp'", f"train.batch_size = {batch_size}"])
        return resolve_run_spec()
    finally:
        gin.clear_config()


def linear_layer_calls(spec, data):
    """(in, out, whether the input needs a gradient) of each linear layer a forward pass calls."""
    from dlbench.train.loop import Trainer

    trainer = Trainer(spec, data, torch.device("cpu"))
    calls = []
    for module in trainer.model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_hook(
                lambda layer, inputs, _: calls.append((layer.in_features, layer.out_features, inputs[0].requires_grad)))
    trainer.run(1, 10**9, lambda *_: None)
    return calls


def test_an_mlp_steps_flops_are_its_layers_products_forward_and_backward(tiny_dsprites):
    # each linear layer: 2 B in out forward, as many for its weights' gradient, and as many again for
    # its input's gradient where the input needs one (not for the observations the encoder starts at)
    batch = 8
    spec, data = mlp_spec(batch), dlbench.data.get_dataset("dsprites")
    calls = linear_layer_calls(spec, data)
    assert len(calls) == 4 + 4 and [needs for _, _, needs in calls].count(False) == 1  # encoder 2 + mean, logvar; decoder 4
    expected = sum(2 * batch * fan_in * fan_out * (3 if needs else 2) for fan_in, fan_out, needs in calls)
    assert flops.step_flops(spec, data, "cpu") == expected


def test_the_peak_is_two_n_cubed_over_the_fastest_product(monkeypatch):
    ticks = iter([0.0, 0.5, 1.0, 1.25, 2.0, 3.0, 4.0, 4.4, 5.0, 6.0])  # products of 0.5, 0.25, 1, 0.4, 1 s
    monkeypatch.setattr(flops.time, "perf_counter", lambda: next(ticks))
    n = flops.PEAK_SIZES["cpu"]
    assert flops.matmul_peak_tflops("cpu", torch.float32) == pytest.approx(2 * n ** 3 / 0.25 / 1e12)


def test_the_floor_is_the_arithmetic_at_the_peak():
    assert flops.floor_hours(3.6e15, 1.0) == pytest.approx(1.0)
    assert flops.floor_hours(7.2e15, 0.5) == pytest.approx(4.0)
