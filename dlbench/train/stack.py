"""K runs trained together as one model, each exactly as if it were trained alone.

Runs that share everything but their seed and their method's tensor hyperparameters (same
dataset, architecture, likelihood, prior, method, batch size, steps and optimiser settings) are
first built one by one, as a run alone is (a Trainer each: its weights drawn from its own seed,
its own generator, its own method object); their parameters and buffers are then stacked along a
leading run dimension, and one training step of all K runs is one torch.func.vmap over a
functional call of a single run's forward pass and objective.

Each run keeps its identity:
- random numbers are drawn outside the vmap, run by run from each run's own generator, in the
  order a run alone draws them (its batch indices, the encoder noise, its method's draws), so each
  run sees exactly its own stream;
- its hyperparameters enter the objective as its own entries of (K,) tensors;
- one Adam over the stacked parameters is K independent Adams (Adam is elementwise);
- a run whose loss becomes non-finite is frozen at that step (its gradients and its Adam momentum
  are zeroed, so its weights stop moving exactly) and reported; the others train on;
- run_state(k) is a run's state in the format of Trainer.state_dict(), so a stacked run's
  checkpoints are those of a run alone (a stack resumes from solo checkpoints and back).

FactorVAE's discriminators are stacked the same way, with their own Adam; each run's VAE
objective reads its own discriminator (frozen), and each discriminator step sees its own run's
codes and a second batch drawn from that run's generator, as a run alone does.
"""

import copy
import time

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from dlbench.methods.base import Method, checked_objective
from dlbench.methods.factor_vae import discriminator_loss_and_accuracy
from dlbench.train.loop import (RESULT_STEPS, Trainer, autocast, build_optimizer, compiled, float32_arithmetic,
                                grown_window, open_window)


def stack_problem(specs):
    """Why these runs cannot be trained as one stack (a sentence), or None when they can."""
    from dlbench.nn.architectures import WITH_BATCH_STATISTICS

    first = specs[0]
    method = first.method
    if first.model["architecture"] in WITH_BATCH_STATISTICS:
        return f"the {first.model['architecture']} architecture has BatchNorm, whose batch statistics are not stacked"
    if type(method).after_step is not Method.after_step and not hasattr(method, "discriminator"):
        return f"{method.name} trains an auxiliary network that is not stacked"
    shared = shared_identity(first)
    for spec in specs[1:]:
        if shared_identity(spec) != shared:
            return "the runs differ in more than their seed and their method's tensor hyperparameters"
    return None


def shared_identity(spec):
    """A run's identity without what runs in one stack may differ in."""
    identity = dict(spec.identity())
    identity.pop("seed", None)
    identity["train"] = {k: v for k, v in identity["train"].items() if k != "seed"}
    identity["hyperparameters"] = {k: v for k, v in identity["hyperparameters"].items()
                                   if k not in spec.method.tensor_hyperparameters}
    return identity


def _functional_state(params, buffers):
    """One run's parameters and buffers, named as functional_call of a wrapper holding the model
    as `model` wants them."""
    return {f"model.{name}": value for name, value in [*params.items(), *buffers.items()]}


def _copy_run_slice(module, stacked, k, prefix=""):
    """Run k's slice of stacked tensors into a module's own parameters."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(stacked[prefix + name][k])


class _RunStep(nn.Module):
    """One run's forward pass and objective as one module call, so that functional_call puts the
    run's parameters in place for both (the objective reads the prior's parameters too)."""

    def __init__(self, model, with_codes=False):
        super().__init__()
        self.model, self.with_codes = model, with_codes

    def forward(self, x, eps, method, step, draws):
        outputs = self.model(x, eps=eps)
        loss, scalars = checked_objective(method, method.objective(outputs, step, draws))
        if self.with_codes:  # the step's codes, which the FactorVAE discriminator then learns from
            scalars = {**scalars, "_z": outputs.z.detach()}
        return loss, scalars


def _one_run(template_method, step_module):
    """One run's (loss, scalars) from its slice of the stack's tensors, its hyperparameters and
    its discriminator: the function the stack's step vmaps."""

    def one_run(params, buffers, x, eps, hyperparameters, draws, discriminator, step):
        method = copy.copy(template_method)
        for name, value in hyperparameters.items():
            setattr(method, name, value)
        if discriminator:
            method.discriminator_params = discriminator  # this run's, frozen (FactorVAE.frozen_logits)
        return functional_call(step_module, _functional_state(params, buffers), (x, eps, method, step, draws))

    return one_run


class StackedTrainer:
    """K runs (RunSpecs accepted by stack_problem) on one device, trained together: new ones, or
    `trainers` already built (and resumed from their checkpoints: all at the same step)."""

    def __init__(self, specs, data=None, device=None, trainers=None):
        problem = stack_problem(specs)
        if problem:
            raise ValueError(f"these runs cannot be stacked: {problem}")
        self.specs = list(specs)
        self.runs = list(trainers) if trainers is not None else [Trainer(spec, data, device) for spec in specs]
        self.device = self.runs[0].device
        if len({run.step for run in self.runs}) != 1:
            raise ValueError("the runs of a stack must be at the same step")
        device = self.device
        self.template_method = self.runs[0].method
        self.step_module = _RunStep(self.runs[0].model, with_codes=hasattr(self.template_method, "discriminator"))
        self.hyperparameters = {
            name: torch.tensor([float(getattr(run.method, name)) for run in self.runs], device=device)
            for name in self.template_method.tensor_hyperparameters}
        self.params = {name: torch.stack([dict(run.model.named_parameters())[name].detach() for run in self.runs])
                       .requires_grad_(True) for name, _ in self.runs[0].model.named_parameters()}
        self.buffers = {name: torch.stack([dict(run.model.named_buffers())[name] for run in self.runs])
                        for name, _ in self.runs[0].model.named_buffers()}
        self.optimizer = build_optimizer(self.specs[0], _ParameterList(self.params.values()))
        _stack_adam_state(self.optimizer, self.params, [run.optimizer for run in self.runs])
        self.alive = torch.ones(len(self.runs), dtype=torch.bool, device=device)
        self.failed_at = torch.full((len(self.runs),), -1, device=device)
        self.step = self.runs[0].step
        self.log_window = _stacked_windows([run.log_window for run in self.runs])
        self.result_window = _stacked_windows([run.result_window for run in self.runs])
        # the step as the objectives see it: a tensor on the device, counted there, so that a
        # compiled step is traced once (a Python number that changes makes torch.compile trace
        # it again as a symbol) and no host value is copied over at each step
        self.step_on_device = torch.full((), self.step, dtype=torch.long, device=device)
        # every run's batch taken from the shared images in one gather, not K (fewer kernel launches)
        self.one_gather = (self.runs[0].finish_batch is None
                           and all(run.images is self.runs[0].images for run in self.runs))
        self.discriminators = _Discriminators(self) if hasattr(self.template_method, "discriminator") else None
        # a function of the template alone, not a bound method: the trainer holding a function that
        # holds it back would make a cycle, kept (with the stack's device memory) until the cycle
        # collector runs rather than freed when the last reference goes
        self._loss_and_grads = compiled(vmap(grad_and_value(_one_run(self.template_method, self.step_module),
                                                            has_aux=True),
                                             in_dims=(0, 0, 0, 0, 0, 0, 0, None)), self.specs[0], device)

    def __len__(self):
        return len(self.runs)

    # --- one step -------------------------------------------------------------------------------

    def _draw(self, batch_size):
        """Each run's batch, encoder noise and method draws from its own generator, in a solo run's order."""
        picks, eps, draws = [], [], []
        for k, run in enumerate(self.runs):
            picks.append(self.pick_batch(run, batch_size))
            eps.append(run.sample_noise(batch_size, run.dtype))
            if type(run.method).draw is not Method.draw:
                _copy_run_slice(run.model.prior, self.params, k, prefix="prior.")  # draws from the current prior
            draws.append(run.method.draw(run.model, batch_size, run.generator))
        stacked_draws = {name: torch.stack([d[name] for d in draws]) for name in draws[0]}
        return self.batches(picks), torch.stack(eps), stacked_draws

    def pick_batch(self, run, batch_size):
        """A run's next batch as batches() takes it: its indices, gathered later for every run at
        once, or, where the dataset finishes each batch with the run's generator (the dSprites
        variants), the batch itself."""
        return run.sample_indices(batch_size) if self.one_gather else run.sample_batch(batch_size)

    def batches(self, picks):
        """(K, B, ...) observations from each run's pick_batch."""
        return self.runs[0].images_at(torch.stack(picks)) if self.one_gather else torch.stack(picks)

    def train_step(self, batch_size):
        """One update of every live run; returns (losses (K,), scalars {name: (K,)}) on the device."""
        x, eps, draws = self._draw(batch_size)
        # FactorVAE's second batch: a run alone draws it after its VAE update, but from its own
        # generator, so drawing it now gives each run the same numbers
        second = self.discriminators.draw(self, batch_size) if self.discriminators else None
        params = {name: p.detach() for name, p in self.params.items()}
        frozen = self.discriminators.frozen() if self.discriminators else {}
        with autocast(self.specs[0], self.device):
            grads, (losses, scalars) = self._loss_and_grads(params, self.buffers, x, eps, self.hyperparameters,
                                                            draws, frozen, self.step_on_device)
        finite = torch.isfinite(losses.detach())
        # the step as a Python number, not a tensor copied to the device (which waits for it)
        self.failed_at = torch.where(self.alive & ~finite, self.step + 1, self.failed_at)
        self.alive = self.alive & finite
        masked_step(self.optimizer, self.params, grads, self.alive)
        scalars = {name: value.detach() for name, value in scalars.items()}
        if self.discriminators:
            scalars.update(self.discriminators.step(self, scalars.pop("_z"), *second))
        self.step += 1
        self.step_on_device.add_(1)
        return losses.detach(), scalars

    def run(self, until, log_every, on_log, after_step=None):
        """Train up to step `until`; on_log(step, [means of run k], images_per_second) at log steps,
        with None for a run that has failed (its step: failed_steps()); after_step(step) after every
        update, training stopping early when it returns True (an interruption)."""
        with float32_arithmetic(self.specs[0]):
            self._train(until, log_every, on_log, after_step)

    def _train(self, until, log_every, on_log, after_step):
        batch_size = self.specs[0].train["batch_size"]
        (names, sums, window), timed, tick = open_window(self.log_window), 0, time.perf_counter()
        while self.step < until:
            _, scalars = self.train_step(batch_size)
            names = names or list(scalars)
            # (K, scalars), in float64 as dlbench.train.loop sums them
            values = torch.stack([scalars[n].double() for n in names], dim=1)
            sums = values if sums is None else sums + values
            window, timed = window + 1, timed + 1
            self.log_window = {"names": names, "sums": sums, "steps": window}
            if self.step > self.specs[0].train["steps"] - RESULT_STEPS:
                self.result_window = grown_window(self.result_window, names, values)
            if self.step % log_every == 0 or self.step == until:
                elapsed = time.perf_counter() - tick
                alive = self.alive.tolist()
                means = (sums / window).tolist()
                on_log(self.step, [dict(zip(names, m)) if a else None for m, a in zip(means, alive)],
                       timed * batch_size / elapsed)
                sums, window, timed, tick, self.log_window = None, 0, 0, time.perf_counter(), None
            if after_step is not None and after_step(self.step):
                return

    def failed_steps(self):
        """[the step at which run k's loss became non-finite, or None]."""
        return [None if step < 0 else step for step in self.failed_at.tolist()]

    # --- a run's own state ----------------------------------------------------------------------

    def run_state(self, k):
        """Run k's state as Trainer.state_dict() gives it for a run alone (its checkpoint)."""
        run = self.runs[k]
        self._load_run_state(k, run)
        run.step = self.step
        run.log_window, run.result_window = (window and {**window, "sums": window["sums"][k].clone()}  # its row
                                             for window in (self.log_window, self.result_window))
        return run.state_dict()

    def _load_run_state(self, k, run):
        _copy_run_slice(run.model, self.params, k)
        with torch.no_grad():
            for name, b in run.model.named_buffers():
                b.copy_(self.buffers[name][k])
        run.optimizer.load_state_dict(_run_adam_state(k, self.optimizer, self.params, run.optimizer))
        if self.discriminators:
            self.discriminators.load_run_state(k, run.method)


def _stacked_windows(windows):
    """The runs' open log windows as the stack's ((K, scalars) sums), where every run kept one of
    the same steps (runs resumed at one step with one protocol do), else None."""
    if any(window is None for window in windows) or len({window["steps"] for window in windows}) != 1:
        return None
    return {**windows[0], "sums": torch.stack([window["sums"] for window in windows])}


def _stack_adam_state(optimizer, params, optimizers):
    """Put the Adam state of resumed runs (their own optimizers), stacked as their parameters are,
    into the stack's optimizer (fresh runs have none)."""
    states = [own.state_dict()["state"] for own in optimizers]
    if not any(states):
        return
    for index, p in enumerate(params.values()):
        per_run = [state[index] for state in states]
        optimizer.state[p] = {"step": per_run[0]["step"].clone(),
                              **{key: torch.stack([s[key] for s in per_run]) for key in per_run[0] if key != "step"}}


def _run_adam_state(k, optimizer, params, own):
    """Run k's slice of the stacked Adam state, as the state_dict of its own optimizer `own`."""
    state = {}
    for index, p in enumerate(params.values()):
        stacked = optimizer.state.get(p)
        if stacked:
            state[index] = {key: value if key == "step" else value[k].clone() for key, value in stacked.items()}
    return {"state": state, "param_groups": own.state_dict()["param_groups"]}


def masked_step(optimizer, params, grads, alive):
    """One optimiser step of stacked parameters with the runs not `alive` frozen: their gradients
    and Adam momentum are zeroed, so Adam's update for them is exactly 0."""
    for name, p in params.items():
        mask = alive.view(-1, *[1] * (p.dim() - 1))
        p.grad = torch.where(mask, grads[name], torch.zeros((), dtype=p.dtype, device=p.device))
        state = optimizer.state.get(p)
        if state:
            state["exp_avg"].mul_(mask)
    optimizer.step()


class _Encode(nn.Module):
    """One run's reparameterised codes of a batch (for functional calls)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, eps):
        mean, logvar = self.model.encode(x)
        return self.model.sample_z(mean, logvar, eps=eps)


class _Discriminators:
    """The K FactorVAE discriminators of a stack, stacked, with their own Adam: each trained, after
    its run's VAE update, on that run's codes against permuted codes of a second batch. The stack
    is handed to each call rather than kept (a reference back to it would make a cycle)."""

    def __init__(self, stack):
        methods = [run.method for run in stack.runs]
        self.module = methods[0].discriminator
        self.params = {name: torch.stack([dict(m.discriminator.named_parameters())[name].detach() for m in methods])
                       .requires_grad_(True) for name, _ in self.module.named_parameters()}
        template = methods[0]
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=template.discriminator_lr,
                                          betas=template.discriminator_betas, eps=1e-8)
        _stack_adam_state(self.optimizer, self.params, [m.discriminator_optimizer for m in methods])
        encode, module = _Encode(stack.runs[0].model), self.module  # not self: no cycle through self._step

        def one_run(params, buffers, disc, z_joint, x, eps, noise):
            with torch.no_grad():  # the discriminator's update must never reach the encoder
                z = functional_call(encode, _functional_state(params, buffers), (x, eps))
                z_permuted = torch.gather(z, 0, noise.argsort(dim=0))
            return _discriminator_loss(module, disc, z_joint, z_permuted)

        self._step = vmap(grad_and_value(one_run, argnums=2, has_aux=True))

    def frozen(self):
        return {name: p.detach() for name, p in self.params.items()}

    def load_run_state(self, k, method):
        """Run k's discriminator and its Adam state into its own method object."""
        _copy_run_slice(method.discriminator, self.params, k)
        method.discriminator_optimizer.load_state_dict(
            _run_adam_state(k, self.optimizer, self.params, method.discriminator_optimizer))

    def draw(self, stack, batch_size):
        """Each run's second batch, its encoder noise and the permutations' noise, from its own
        generator, in the order a run alone draws them (FactorVAE.after_step)."""
        picks, eps, noise = [], [], []
        for run in stack.runs:
            picks.append(stack.pick_batch(run, batch_size))
            eps.append(run.sample_noise(batch_size, run.dtype))
            noise.append(torch.rand(eps[-1].shape, generator=run.generator, device=run.device))
        return stack.batches(picks), torch.stack(eps), torch.stack(noise)

    def step(self, stack, z_joint, xs, eps, noise):
        params = {name: p.detach() for name, p in stack.params.items()}
        grads, (_, (loss, accuracy)) = self._step(params, stack.buffers, self.frozen(), z_joint.detach(),
                                                  xs, eps, noise)
        masked_step(self.optimizer, self.params, grads, stack.alive)
        return {"discriminator_loss": loss.detach(), "discriminator_accuracy": accuracy.detach()}


def _discriminator_loss(module, disc, z_joint, z_permuted):
    """A discriminator's loss on codes against permuted codes, with (loss, accuracy) as aux."""
    logits = functional_call(module, disc, (torch.cat([z_joint, z_permuted]),))
    loss, accuracy = discriminator_loss_and_accuracy(logits[:len(z_joint)], logits[len(z_joint):])
    return loss, (loss, accuracy)


class _ParameterList:
    """The stacked tensors as an iterable for torch.optim (they are leaves, not nn.Parameters)."""

    def __init__(self, tensors):
        self.tensors = list(tensors)

    def parameters(self):
        return iter(self.tensors)
