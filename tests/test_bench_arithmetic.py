"""Benchmarks compute in the arithmetic of what they measure: training steps as a float32 run trains
(dlbench.train.loop.float32_arithmetic), encodings as dlb_evaluate encodes (IEEE float32). Under
torch's default a GPU convolves float32 in TF32, so a ratio against dlbench's own loop compared
TF32 with IEEE float32. On a CPU both are float32: what is checked is the flags a GPU would read."""

import pytest
import torch

import dlbench.data
from dlbench.bench import BenchImages, _DataLoaderLoop, bench_metrics_conv, bench_per_run, bench_spec
from dlbench.stack_benchmark import _StackStepLoop, bench_encoding
from tests.test_stack import TF32AtEachConvolution

IEEE = {(False, False)}  # (cuDNN, matrix product) allow_tf32 at every convolution and product


@pytest.fixture
def images():
    return BenchImages(num=16)


def test_the_dataloader_baseline_trains_in_the_arithmetic_of_dlbenchs_loop(images):
    loop = _DataLoaderLoop(bench_spec("conv", 4), images, torch.device("cpu"))
    with TF32AtEachConvolution() as flags:
        loop.steps(1)
    assert flags.seen == IEEE


@pytest.mark.parametrize("way", ["vmap", "batched"])
def test_bench_layers_steps_in_the_arithmetic_of_a_stacks_steps(way, images):
    loop = _StackStepLoop(bench_spec("conv", 4), 2, images, torch.device("cpu"), way)
    with TF32AtEachConvolution() as flags:
        loop.steps(1)
    assert flags.seen == IEEE


def test_bench_encoding_encodes_as_dlb_evaluate_does(tiny_dsprites):
    with TF32AtEachConvolution() as flags:
        bench_encoding(torch.device("cpu"), dlbench.data.get_dataset("dsprites"), stacks=(2,), images=8)
    assert flags.seen == IEEE


def test_bench_metrics_encodes_as_dlb_evaluate_does(tiny_dsprites):
    with TF32AtEachConvolution() as flags:
        bench_metrics_conv(dlbench.data.get_dataset("dsprites"), ["recon_ll"], torch.device("cpu"),
                           {"recon_ll": {"num_points": 8}})
    assert flags.seen == IEEE


def test_bench_per_run_encodes_as_dlb_evaluate_does(tiny_dsprites):
    with TF32AtEachConvolution() as flags:
        bench_per_run(torch.device("cpu"), data=dlbench.data.get_dataset("dsprites"), sets={"tiny": ["recon_ll"]},
                      log=lambda *_: None, params={"recon_ll": {"num_points": 8}})
    assert flags.seen == IEEE
