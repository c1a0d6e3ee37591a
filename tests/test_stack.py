"""Runs trained together as one model (dlbench.train.stack) end as the same runs trained alone.

Tolerance. A stacked step computes what a run alone computes, but through batched kernels (vmap
turns each matmul and convolution into a batched one) that sum in another order. In float32 one
step's gradients agree to about 1e-6 relative (tested below); but Adam divides each update by the
gradient's running RMS, so the absolute error of a gradient near zero becomes an error of order
lr * error / eps in its weight, and 50 steps of training amplify differences several hundredfold
(measured: 1e-4 of a weight after one step, up to 7e-2 after 50 on the tiny protocol). Float32
rounding therefore cannot show whether a stacked run is the same run after 50 steps. So the
50-step equivalence runs in float64, where rounding is 1e-16 and the same amplification leaves
differences below 1e-9: agreement to RTOL = 1e-7 there means the stack computes the same function
with each run's own random numbers (checked exactly: the generators' states are equal),
hyperparameters and Adam.
"""

import gc
import weakref

import gin
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dlbench.data
from dlbench.config import parse_gin, resolve_run_spec
from dlbench.train.loop import Trainer, float32_arithmetic
from dlbench.train.stack import StackedTrainer, stack_problem
from tests.conftest import TINY_PARAMS

STEPS, LOG_EVERY = 50, 10
RTOL, ATOL = 1e-7, 1e-9  # float64 (see above)

# per method: its bindings, and the three runs' (seed, hyperparameter bindings)
METHODS = {
    "beta_vae": ([], [(0, ["beta_vae.beta = 1.0"]), (1, ["beta_vae.beta = 4.0"]), (2, ["beta_vae.beta = 16.0"])]),
    "beta_tcvae": ([], [(0, ["beta_tcvae.beta = 1.0"]), (3, ["beta_tcvae.beta = 6.0", "beta_tcvae.alpha = 0.5"]),
                        (5, ["beta_tcvae.beta = 10.0", "beta_tcvae.gamma = 2.0"])]),
    "isa_vae": (["model.prior = 'lp_nested_isa'", "lp_nested_isa.subspace_sizes = [2, 2]"],
                [(0, ["isa_vae.beta = 1.0"]), (1, ["isa_vae.beta = 2.5"]), (2, ["isa_vae.beta = 6.0"])]),
    "ab_vae": (["model.prior = 'anisotropic_gaussian'", "anisotropic_gaussian.learned = True"],
               [(0, ["ab_vae.alpha = 0.0", "ab_vae.beta = 1.0"]), (1, ["ab_vae.alpha = 10.0", "ab_vae.beta = 2.0"]),
                (2, ["ab_vae.alpha = 100.0", "ab_vae.beta = 4.0"])]),
    "dip_vae": (["dip_vae.dip_type = 'ii'"], [(0, ["dip_vae.lambda_od = 1.0"]), (1, ["dip_vae.lambda_od = 5.0"]),
                                             (2, ["dip_vae.lambda_od = 20.0", "dip_vae.lambda_d = 3.0"])]),
    "factor_vae": (["factor_vae.discriminator_width = 32", "factor_vae.discriminator_layers = 2"],
                   [(0, ["factor_vae.gamma = 1.0"]), (1, ["factor_vae.gamma = 10.0"]), (2, ["factor_vae.gamma = 40.0"])]),
    "annealed_vae": (["annealed_vae.iteration_threshold = 30"],
                     [(0, ["annealed_vae.c_max = 5.0"]), (1, ["annealed_vae.c_max = 25.0", "annealed_vae.gamma = 100.0"]),
                      (2, ["annealed_vae.c_max = 50.0"])]),
}


def spec_of(method, shared, seed, own):
    # the tiny protocol at batch 4: 50 steps of six runs per method, in float64, in seconds
    params = [p for p in TINY_PARAMS if not p.startswith(("train.method", "beta_vae.beta", "train.batch_size"))]
    try:
        parse_gin([], [*params, "train.batch_size = 4", f"train.method = @{method}()", f"train.seed = {seed}",
                       *shared, *own])
        return resolve_run_spec()
    finally:
        gin.clear_config()


def train_alone(spec, data, device="cpu"):
    trainer = Trainer(spec, data, torch.device(device))
    logs = []
    trainer.run(STEPS, LOG_EVERY, lambda step, means, _: logs.append((step, means)))
    return trainer, logs


def train_stacked(specs, data, device="cpu"):
    stack = StackedTrainer(specs, data, torch.device(device))
    logs = []
    stack.run(STEPS, LOG_EVERY, lambda step, means, _: logs.append((step, means)))
    return stack, logs


def assert_same_state(stacked_state, alone_state):
    assert stacked_state["step"] == alone_state["step"]
    if alone_state.get("method"):  # FactorVAE's discriminator and its Adam
        assert_same_state({"step": 0, "model": stacked_state["method"]["discriminator"], "generator": torch.zeros(1),
                           "optimizer": stacked_state["method"]["discriminator_optimizer"]},
                          {"step": 0, "model": alone_state["method"]["discriminator"], "generator": torch.zeros(1),
                           "optimizer": alone_state["method"]["discriminator_optimizer"]})
    assert stacked_state["model"].keys() == alone_state["model"].keys()
    for name, value in alone_state["model"].items():
        torch.testing.assert_close(stacked_state["model"][name], value, rtol=RTOL, atol=ATOL, msg=name)
    assert torch.equal(stacked_state["generator"], alone_state["generator"])  # the same draws, exactly
    alone_adam, stacked_adam = alone_state["optimizer"]["state"], stacked_state["optimizer"]["state"]
    assert alone_adam.keys() == stacked_adam.keys()
    for index in alone_adam:
        torch.testing.assert_close(stacked_adam[index]["exp_avg"], alone_adam[index]["exp_avg"], rtol=RTOL, atol=ATOL)


def assert_same_log(stacked_log, alone_log):
    assert [step for step, _ in stacked_log] == [step for step, _ in alone_log]
    for (_, stacked), (_, alone) in zip(stacked_log, alone_log):
        assert stacked.keys() == alone.keys()
        for name in alone:
            assert stacked[name] == pytest.approx(alone[name], rel=1e-7, abs=1e-9), name


@pytest.fixture
def data(tiny_dsprites):
    return dlbench.data.get_dataset("dsprites")


def test_in_float32_one_stacked_step_gives_each_run_its_gradients(data):
    shared, runs = METHODS["beta_tcvae"]
    specs = [spec_of("beta_tcvae", shared, seed, own) for seed, own in runs]
    stack = StackedTrainer(specs, data, torch.device("cpu"))
    x, eps, draws = stack._draw(4)
    params = {name: p.detach() for name, p in stack.params.items()}
    grads, (losses, _) = stack._loss_and_grads(params, stack.buffers, x, eps, stack.hyperparameters, draws, {}, 0)
    for k, spec in enumerate(specs):
        alone = Trainer(spec, data, torch.device("cpu"))
        loss, _ = alone.method.objective(alone.model(x[k], eps=eps[k]), 0, {})
        loss.backward()
        torch.testing.assert_close(losses[k], loss.detach(), rtol=1e-6, atol=0)
        for name, p in alone.model.named_parameters():
            scale = p.grad.abs().max()
            torch.testing.assert_close(grads[name][k], p.grad, rtol=0, atol=1e-5 * float(scale), msg=name)


class CountIndexSelects(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += func.overloadpacket is torch.ops.aten.index_select
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("dataset, gathers", [("dsprites", 1), ("color_dsprites", 3)])
def test_a_stack_draws_each_runs_own_batches_gathering_them_at_once_where_it_can(dataset, gathers, tiny_dsprites):
    # dSprites: the three runs' batches in one gather; color_dsprites finishes each batch with its
    # run's generator (the colour), so its batches are drawn run by run
    data = dlbench.data.get_dataset(dataset)
    shared, runs = METHODS["factor_vae"]  # two batches a step: the VAE's and the discriminator's
    specs = [spec_of("factor_vae", shared, seed, own) for seed, own in runs]
    stack = StackedTrainer(specs, data, torch.device("cpu"))
    with CountIndexSelects() as counted:
        x, eps, _ = stack._draw(4)
    second_x, second_eps, noise = stack.discriminators.draw(stack, 4)
    assert counted.count == gathers
    for k, spec in enumerate(specs):
        alone = Trainer(spec, data, torch.device("cpu"))
        assert torch.equal(x[k], alone.sample_batch(4)) and torch.equal(eps[k], alone.sample_noise(4, torch.float32))
        assert torch.equal(second_x[k], alone.sample_batch(4))
        assert torch.equal(second_eps[k], alone.sample_noise(4, torch.float32))
        assert torch.equal(noise[k], torch.rand(noise[k].shape, generator=alone.generator))


@pytest.mark.parametrize("method", METHODS)
def test_a_run_in_a_stack_of_three_ends_as_it_does_alone(method, data, float64):
    shared, runs = METHODS[method]
    specs = [spec_of(method, shared, seed, own) for seed, own in runs]
    assert stack_problem(specs) is None
    stack, stacked_logs = train_stacked(specs, data)
    for k, spec in enumerate(specs):
        alone, alone_log = train_alone(spec, data)
        assert_same_state(stack.run_state(k), alone.state_dict())
        assert_same_log([(step, means[k]) for step, means in stacked_logs], alone_log)
    assert stack.failed_steps() == [None, None, None]


def test_a_run_that_diverges_is_frozen_and_the_others_train_on_as_alone(data, float64, monkeypatch):
    from dlbench.methods.beta_vae import BetaVAE

    shared, runs = METHODS["beta_vae"]
    specs = [spec_of("beta_vae", shared, seed, own) for seed, own in runs]
    original = BetaVAE.objective

    def nan_for_beta_4_from_step_7(self, outputs, step=0, draws=None):
        loss, scalars = original(self, outputs, step, draws)
        poisoned = (self.beta == 4.0) & (torch.as_tensor(step) >= 6)  # the 7th update
        # added, not multiplied: torch.where would carry nan * 0 = nan into every run's gradient
        return loss + torch.where(poisoned, float("nan"), 0.0), scalars

    monkeypatch.setattr(BetaVAE, "objective", nan_for_beta_4_from_step_7)
    stack = StackedTrainer(specs, data, torch.device("cpu"))
    stack.run(6, LOG_EVERY, lambda *_: None)
    frozen = {k: v.clone() for k, v in stack.run_state(1)["model"].items()}
    logs = []
    stack.run(STEPS, LOG_EVERY, lambda step, means, _: logs.append((step, means)))
    assert stack.failed_steps() == [None, 7, None]
    assert all(means[1] is None for _, means in logs)  # a failed run logs nothing more
    for name, value in stack.run_state(1)["model"].items():
        assert torch.equal(value, frozen[name]), name  # frozen where its loss went non-finite
    monkeypatch.setattr(BetaVAE, "objective", original)
    for k in (0, 2):
        alone, _ = train_alone(specs[k], data)
        assert_same_state(stack.run_state(k), alone.state_dict())


def test_runs_that_differ_in_more_than_seed_and_hyperparameters_are_not_stacked(tiny_dsprites):
    a = spec_of("beta_vae", [], 0, ["beta_vae.beta = 1.0"])
    assert stack_problem([a, spec_of("beta_vae", [], 1, ["beta_vae.beta = 2.0"])]) is None
    assert "differ" in stack_problem([a, spec_of("beta_vae", ["train.lr = 1e-4"], 1, [])])
    assert "differ" in stack_problem([a, spec_of("beta_tcvae", [], 1, [])])
    assert "differ" in stack_problem([spec_of("beta_tcvae", [], 0, []),
                                      spec_of("beta_tcvae", ["beta_tcvae.estimator = 'mss'"], 1, [])])
    assert stack_problem([spec_of("factor_vae", [], 0, []), spec_of("factor_vae", [], 1, ["factor_vae.gamma = 5.0"])]) is None
    dcgan = ["dataset.name = 'fashion_mnist'", "model.architecture = 'dcgan'"]
    assert "BatchNorm" in stack_problem([spec_of("beta_vae", dcgan, 0, [])])
    assert "differ" in stack_problem([spec_of("factor_vae", [], 0, []),
                                      spec_of("factor_vae", ["factor_vae.discriminator_width = 8"], 1, [])])


@pytest.mark.parametrize("method", ["beta_vae", "factor_vae"])
def test_a_stack_is_freed_when_its_last_reference_goes(method, data):
    # a stack in a reference cycle kept its device memory until the cycle collector ran, so a
    # benchmark's next measurement (or a study's next stack) met the last one's tensors
    shared, runs = METHODS[method]
    stack = StackedTrainer([spec_of(method, shared, seed, own) for seed, own in runs[:2]], data, torch.device("cpu"))
    stack.run(2, 10, lambda *_: None)
    held = [weakref.ref(stack), weakref.ref(stack.runs[0]), weakref.ref(next(iter(stack.params.values())))]
    gc.disable()  # what a del frees at once, not what the collector finds later
    try:
        del stack
        assert [ref() for ref in held] == [None] * len(held)
    finally:
        gc.enable()


def test_the_runs_of_a_stack_share_one_pca_of_the_data_and_start_from_a_solo_runs_prior(tiny_dsprites, monkeypatch):
    # each run's prior had computed the same PCA again: seconds a run, 64 of them at K = 64
    from dlbench.priors import anisotropic_gaussian

    calls = []
    pca = anisotropic_gaussian.pca_singular_values
    monkeypatch.setattr(anisotropic_gaussian, "pca_singular_values", lambda *a, **k: calls.append(1) or pca(*a, **k))
    shared, runs = METHODS["ab_vae"]
    specs = [spec_of("ab_vae", shared, seed, own) for seed, own in runs]
    stack = StackedTrainer(specs, dlbench.data.get_dataset("dsprites"), torch.device("cpu"))
    assert len(calls) == 1
    alone = Trainer(specs[2], dlbench.data.get_dataset("dsprites"), torch.device("cpu"))  # data of its own
    assert len(calls) == 2
    assert stack.runs[2].model.prior.settings() == alone.model.prior.settings()
    assert torch.equal(stack.params["prior.logits"][2], alone.model.prior.logits.detach())


def test_a_stack_trains_in_bfloat16_where_asked(data):
    runs = METHODS["beta_vae"][1][:2]
    finals = {}
    for precision in ("float32", "bfloat16"):
        specs = [spec_of("beta_vae", [f"train.precision = '{precision}'"], seed, own) for seed, own in runs]
        stack = StackedTrainer(specs, data, torch.device("cpu"))
        losses = [stack.train_step(4)[0] for _ in range(5)]
        assert all(torch.isfinite(loss).all() for loss in losses)
        finals[precision] = stack.run_state(0)["model"]
    # the same runs, the same random numbers: only the arithmetic's precision differs, and it shows
    assert any(not torch.equal(finals["float32"][name], finals["bfloat16"][name]) for name in finals["float32"])


def logged(trainer, until, stop_after=None, log_every=5):
    """The log rows of training to `until`, stopped after step stop_after as a signal stops it."""
    rows = []
    trainer.run(until, log_every, lambda step, means, _: rows.append((step, means)), lambda step: step == stop_after)
    return rows


@pytest.mark.parametrize("stacked", [False, True], ids=["alone", "stacked"])
def test_a_run_resumed_between_log_steps_logs_what_it_would_have_uninterrupted(stacked, data):
    # the first log row after a resume had averaged only the steps after it (a stop is at any step)
    shared, runs = METHODS["beta_tcvae"]
    specs = [spec_of("beta_tcvae", shared, seed, own) for seed, own in runs]
    cpu = torch.device("cpu")

    def fresh(states=None):
        trainers = [Trainer(spec, data, cpu) for spec in specs]
        for trainer, state in zip(trainers, states or []):
            trainer.load_state_dict(state)
        return StackedTrainer(specs, trainers=trainers) if stacked else trainers[0]

    def states_of(trainer):
        return [trainer.run_state(k) for k in range(len(specs))] if stacked else [trainer.state_dict()]

    straight = logged(fresh(), 15)
    first = fresh()
    before = logged(first, 15, stop_after=7)  # two steps past a log step
    after = logged(fresh(states_of(first)), 15)
    assert [step for step, _ in before + after] == [5, 10, 15]
    assert before + after == straight  # bit for bit


class TF32AtEachConvolution(TorchDispatchMode):
    """The set of (cuDNN, matrix product) allow_tf32 flags seen by every convolution and matrix
    product, forward and backward: the flags a GPU would have computed them under."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket in (torch.ops.aten.convolution, torch.ops.aten.convolution_backward,
                                   torch.ops.aten.mm, torch.ops.aten.addmm, torch.ops.aten.bmm):
            self.seen.add((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("stacked", [False, True], ids=["alone", "stacked"])
@pytest.mark.parametrize("precision, allowed", [("float32", False), ("tf32", True), ("bfloat16", False)])
def test_tf32_is_used_where_the_precision_says_and_nowhere_else(precision, allowed, stacked, data):
    # torch's own default (TF32 convolutions, IEEE matrix products) would make a float32 run on a GPU
    # neither; the trainer sets both flags for its steps and gives the process's back after
    runs = METHODS["beta_vae"][1][:2]
    specs = [spec_of("beta_vae", [f"train.precision = '{precision}'"], seed, own) for seed, own in runs]
    trainer = StackedTrainer(specs, data, torch.device("cpu")) if stacked else Trainer(specs[0], data, torch.device("cpu"))
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    with TF32AtEachConvolution() as flags:
        trainer.run(3, 10**9, lambda *_: None)
    assert flags.seen == {(allowed, allowed)}
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == before


def compiled_and_eager_losses(data, device, method="beta_vae"):
    """{compile: (a stack's losses over three steps (3, 2), a run's alone (3,))}; by default for
    beta-VAE (the method with the fewest operations: compiling costs seconds per operation on a
    fresh machine)."""
    shared, runs = METHODS[method][0], METHODS[method][1][:2]
    losses = {}
    for compile in (False, True):
        specs = [spec_of(method, [*shared, f"train.compile = {compile}"], seed, own) for seed, own in runs]
        stack = StackedTrainer(specs, data, torch.device(device))
        alone = Trainer(specs[0], data, torch.device(device))
        with float32_arithmetic(specs[0]):  # as stack.run steps: on a GPU, no TF32 convolutions
            stacked_losses = [stack.train_step(4)[0].cpu() for _ in range(3)]
        alone_losses = []
        alone.run(3, 1, lambda step, means, _: alone_losses.append(means["loss"]))
        losses[compile] = torch.stack(stacked_losses), torch.tensor(alone_losses)
        assert (alone.forward is not alone.model) == compile  # compiled only where asked
    return losses


@pytest.mark.slow  # compiling takes seconds
# annealed_vae: the one objective that reads the step, which changes at every step (a number that
# changes is traced again as a symbol, which the compiled stack once failed on)
@pytest.mark.parametrize("method", ["beta_vae", "annealed_vae"])
def test_a_compiled_stack_and_a_compiled_run_take_the_steps_of_eager_ones(method, data):
    # torch.compile fuses the arithmetic, so the compiled runs agree with the eager ones within
    # float32 rounding of a few steps (three: the compiled graph is reused, not rebuilt)
    losses = compiled_and_eager_losses(data, "cpu", method)
    torch.testing.assert_close(losses[True][0], losses[False][0], rtol=1e-4, atol=0)
    torch.testing.assert_close(losses[True][1], losses[False][1], rtol=1e-4, atol=0)
