"""What must hold on a GPU: training and resume on cuda, stacked runs equal to runs alone on cuda
(with vmap, and with the batched layers that dlb_bench layers compares it with), compiled runs
(CUDA graphs) equal to eager ones, and evaluation on cuda equal to evaluation on the CPU.
Skipped where there is no GPU (CI has none); bin/dlb_gpu_check runs them on one."""

import gin
import pytest
import torch

import dlbench.data
from dlbench.train.loop import Trainer
from tests.conftest import TINY_PARAMS
from tests.test_batched_layers import assert_batched_layers_compute_runs_alone
from tests.test_stack import (METHODS, assert_same_log, assert_same_state, compiled_and_eager_losses, spec_of,
                              train_alone, train_stacked)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA GPU (none here); bin/dlb_gpu_check runs these on one")


@pytest.fixture
def data(tiny_dsprites):
    return dlbench.data.get_dataset("dsprites")


def test_a_run_trains_on_cuda_into_a_run_directory(tiny_dsprites, tmp_path):
    import json

    from dlbench.train.run import train_from_gin

    run_dir, status = train_from_gin([], TINY_PARAMS, tmp_path / "r", "cuda", progress=False)
    record = json.loads((run_dir / "run.json").read_text())
    assert status == "done" and record["device"].startswith("cuda")
    # loaded as any user would, without map_location: on the host, so that it loads without a GPU too
    weights = torch.load(run_dir / "model" / "checkpoint.pt", weights_only=True)["model"]
    assert all(w.device.type == "cpu" and torch.isfinite(w).all() for w in weights.values())


def test_a_run_resumed_on_cuda_ends_as_one_trained_at_once(data):
    spec = spec_of("beta_vae", [], 0, ["beta_vae.beta = 4.0"])
    straight = Trainer(spec, data, torch.device("cuda"))
    straight.run(20, 5, lambda *_: None)
    first = Trainer(spec, data, torch.device("cuda"))
    first.run(10, 5, lambda *_: None)
    state = first.state_dict()
    resumed = Trainer(spec, data, torch.device("cuda"))
    resumed.load_state_dict(state)
    resumed.run(20, 5, lambda *_: None)
    # cuDNN may pick other (equally exact) algorithms in another process: equal within float32 rounding
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6, msg=name)
    assert torch.equal(resumed.generator.get_state(), straight.generator.get_state())


@pytest.mark.parametrize("method", ["beta_vae", "beta_tcvae", "ab_vae"])
def test_a_run_in_a_stack_on_cuda_ends_as_it_does_alone(method, data, float64):
    shared, runs = METHODS[method]
    specs = [spec_of(method, shared, seed, own) for seed, own in runs]
    stack, stacked_logs = train_stacked(specs, data, "cuda")
    for k, spec in enumerate(specs):
        alone, alone_log = train_alone(spec, data, "cuda")
        assert_same_state(stack.run_state(k), alone.state_dict())
        assert_same_log([(step, means[k]) for step, means in stacked_logs], alone_log)


@pytest.mark.parametrize("architecture", ["conv", "mlp"])
def test_batched_layers_on_cuda_give_each_run_of_a_stack_its_own_loss_and_gradients(architecture, data, float64):
    assert_batched_layers_compute_runs_alone(architecture, data, "cuda")


def test_building_a_run_leaves_the_processs_gpu_random_state_as_it_was(data):
    # its weights are drawn in a forked RNG seeded with the run's seed, which seeds the GPU's too
    before = torch.cuda.get_rng_state()
    Trainer(spec_of("beta_vae", [], 0, []), data, torch.device("cuda"))
    assert torch.equal(torch.cuda.get_rng_state(), before)


def test_float32_arithmetic_on_cuda_is_ieee_float32_unless_tf32_is_asked_for():
    # a 'float32' run's convolutions and matrix products, as its trainer sets them (torch's default
    # would convolve in TF32, a 10-bit mantissa: errors of 1e-3 where IEEE float32 gives 1e-6)
    from dlbench.train.device import tf32

    generator = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(64, 32, 32, 32, device="cuda", generator=generator)
    w = torch.randn(64, 32, 4, 4, device="cuda", generator=generator)
    a, b = x.flatten(1)[:, :4096], w.flatten(1)[:, :512].T.repeat(8, 1)
    exact = torch.nn.functional.conv2d(x.double(), w.double()), a.double() @ b.double()
    with tf32(False):
        computed = torch.nn.functional.conv2d(x, w), a @ b
    for value, reference in zip(computed, exact):
        assert ((value.double() - reference).abs().max() / reference.abs().max()).item() < 1e-5


def test_stack_auto_fits_the_gpus_memory(tiny_dsprites):
    from dlbench.study.stacks import MAX_AUTO_STACK, fitting_stack_size

    said = []
    k = fitting_stack_size(spec_of("beta_vae", [], 0, []), torch.device("cuda"), log=said.append)
    # a tiny conv model at batch 4 takes a few MiB a run: on any GPU the limit fits
    assert k == MAX_AUTO_STACK and "runs per stack" in said[0]


def test_evaluation_on_cuda_equals_evaluation_on_the_cpu(trained_run, tmp_path):
    import shutil

    from dlbench.evaluation import evaluate_run

    params = {"factor_vae": {"num_train": 500, "num_eval": 300, "num_variance_estimate": 2000},
              "mig": {"num_train": 300}, "recon_ll": {"num_points": 300}}
    on_gpu = tmp_path / "gpu"
    shutil.copytree(trained_run, on_gpu)
    names = ["mig", "factor_vae", "recon_ll"]
    cpu = evaluate_run(trained_run, names, "mean", "cpu", params=params, log=lambda *_: None)
    gpu = evaluate_run(on_gpu, names, "mean", "cuda", params=params, log=lambda *_: None)
    gin.clear_config()
    # the same codes to float32 rounding: a discretised or argmin-voted score moves only where a
    # code sits on a bin edge or two variances tie, so allow one vote or one bin's worth
    assert gpu["mig"]["discrete_mig"] == pytest.approx(cpu["mig"]["discrete_mig"], abs=0.02)
    assert gpu["factor_vae"]["eval_accuracy"] == pytest.approx(cpu["factor_vae"]["eval_accuracy"], abs=0.01)
    # (z is sampled, from the device's own generator on cuda: equal within the estimate's error)
    stderr = max(gpu["recon_ll"]["recon_ll_stderr"], cpu["recon_ll"]["recon_ll_stderr"])
    assert gpu["recon_ll"]["recon_ll"] == pytest.approx(cpu["recon_ll"]["recon_ll"], abs=3 * stderr)


def test_stack_auto_counts_the_datasets_copy_as_no_runs_memory(data):
    # the GPU copy of the data is every stack's: counted in the stack of one only, a dataset larger
    # than a run made the bytes per run negative, and auto then took the limit (64) on any GPU
    import copy

    import numpy as np

    from dlbench.study.stacks import stack_step_peaks

    spec = spec_of("beta_vae", [], 0, [])
    large = copy.copy(data)
    large.__dict__.pop("_device_copies", None)
    large._images = np.tile(data.images, (max(1, 2**29 // data.images.nbytes), 1, 1, 1))  # about 512 MiB
    one, two = stack_step_peaks(spec, large, torch.device("cuda"))
    parameters = sum(p.numel() * p.element_size() for p in Trainer(spec, data, torch.device("cpu")).model.parameters())
    # the second run's weights, gradients and Adam's two moments at least; far less than the data
    assert 4 * parameters <= two - one < 2**29, (one, two, parameters)


def synchronisations(step):
    """How many times calling step() made the host wait for the GPU (torch's sync debug mode)."""
    import warnings

    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("stacked", [False, True], ids=["alone", "stacked"])
@pytest.mark.parametrize("method", METHODS)
def test_training_steps_between_logs_never_wait_for_the_gpu(method, stacked, data):
    # a wait per step leaves the GPU idle while Python launches the next step's kernels; only a
    # log step (the means to the host) may wait. 10 steps must wait as often as 5: never per step.
    from dlbench.train.stack import StackedTrainer

    shared, runs = METHODS[method]
    specs = [spec_of(method, shared, seed, own) for seed, own in runs]
    trainer = StackedTrainer(specs, data, torch.device("cuda")) if stacked else Trainer(specs[0], data, torch.device("cuda"))
    trainer.run(2, 10**9, lambda *_: None)  # first steps: Adam's state, the allocator, cached constants
    waits = [synchronisations(lambda: trainer.run(trainer.step + steps, 10**9, lambda *_: None)) for steps in (5, 10)]
    assert waits[0] == waits[1], waits


@pytest.mark.parametrize("method", ["beta_vae", "factor_vae"])
def test_a_run_resumed_from_its_checkpoint_file_never_waits_for_the_gpu_between_logs(method, data, tmp_path):
    # a checkpoint read onto the GPU puts Adam's step counts there (load_state_dict leaves them
    # where they are), and Adam then reads them back to the host every step
    from dlbench import rundir
    from dlbench.train import checkpoints
    from dlbench.train.run import resume_from_newest_checkpoint

    shared, runs = METHODS[method]
    first = Trainer(spec_of(method, shared, *runs[0]), data, torch.device("cuda"))
    first.run(4, 10**9, lambda *_: None)
    rundir.checkpoints_dir(tmp_path).mkdir(parents=True)
    checkpoints.save_checkpoint(tmp_path, first.state_dict())
    # a spec of its own: a spec's method object holds the FactorVAE discriminator its trainer built
    resumed = Trainer(spec_of(method, shared, *runs[0]), data, torch.device("cuda"))
    resume_from_newest_checkpoint(tmp_path, resumed, lambda *_: None)
    resumed.run(6, 10**9, lambda *_: None)  # the allocator and cached constants, as a fresh run's first steps
    waits = [synchronisations(lambda: resumed.run(resumed.step + steps, 10**9, lambda *_: None)) for steps in (5, 10)]
    assert waits[0] == waits[1], waits


# last of this file: a fresh machine compiles for tens of seconds, which must not keep the tests
# above from running within dlb_gpu_check's time
def test_compiled_runs_on_cuda_take_the_steps_of_eager_ones(data):
    # on cuda, train.compile also captures CUDA graphs (mode reduce-overhead)
    losses = compiled_and_eager_losses(data, "cuda")
    torch.testing.assert_close(losses[True][0], losses[False][0], rtol=1e-4, atol=0)
    torch.testing.assert_close(losses[True][1], losses[False][1], rtol=1e-4, atol=0)
