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

Methods with auxiliary networks (FactorVAE's discriminator) and architectures with batch
statistics (BatchNorm: dcgan) are not stackable yet; stack_problem() says why.
"""

import copy
import time

import torch
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from dlbench.methods.base import Method
from dlbench.train.loop import Trainer, build_optimizer


def stack_problem(specs):
    """Why these runs cannot be trained as one stack (a sentence), or None when they can."""
    first = specs[0]
    method = first.method
    if type(method).after_step is not Method.after_step:
        return f"{method.name} trains an auxiliary network, which is not stacked yet"
    shared = _shared_identity(first)
    for spec in specs[1:]:
        if _shared_identity(spec) != shared:
            return "the runs differ in more than their seed and their method's tensor hyperparameters"
    return None


def _shared_identity(spec):
    """A run's identity without what runs in one stack may differ in."""
    identity = dict(spec.identity())
    identity.pop("seed", None)
    identity["train"] = {k: v for k, v in identity["train"].items() if k != "seed"}
    identity["hyperparameters"] = {k: v for k, v in identity["hyperparameters"].items()
                                   if k not in spec.method.tensor_hyperparameters}
    return identity


class _RunStep(nn.Module):
    """One run's forward pass and objective as one module call, so that functional_call puts the
    run's parameters in place for both (the objective reads the prior's parameters too)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, eps, method, step, draws):
        return method.objective(self.model(x, eps=eps), step, draws)


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
        self.step_module = _RunStep(self.runs[0].model)
        self.template_method = self.runs[0].method
        self.hyperparameters = {
            name: torch.tensor([float(getattr(run.method, name)) for run in self.runs], device=device)
            for name in self.template_method.tensor_hyperparameters}
        self.params = {name: torch.stack([dict(run.model.named_parameters())[name].detach() for run in self.runs])
                       .requires_grad_(True) for name, _ in self.runs[0].model.named_parameters()}
        self.buffers = {name: torch.stack([dict(run.model.named_buffers())[name] for run in self.runs])
                        for name, _ in self.runs[0].model.named_buffers()}
        self.optimizer = build_optimizer(self.specs[0], _ParameterList(self.params.values()))
        self._stack_optimizer_state()
        self.alive = torch.ones(len(self.runs), dtype=torch.bool, device=device)
        self.failed_at = torch.full((len(self.runs),), -1, device=device)
        self.step = self.runs[0].step
        self._loss_and_grads = vmap(grad_and_value(self._one_run, has_aux=True), in_dims=(0, 0, 0, 0, 0, 0, None))

    def __len__(self):
        return len(self.runs)

    # --- one step -------------------------------------------------------------------------------

    def _one_run(self, params, buffers, x, eps, hyperparameters, draws, step):
        method = copy.copy(self.template_method)
        for name, value in hyperparameters.items():
            setattr(method, name, value)
        state = {**{f"model.{k}": v for k, v in params.items()}, **{f"model.{k}": v for k, v in buffers.items()}}
        loss, scalars = functional_call(self.step_module, state, (x, eps, method, step, draws))
        return loss, scalars

    def _draw(self, batch_size):
        """Each run's batch, encoder noise and method draws from its own generator, in a solo run's order."""
        xs, eps, draws = [], [], []
        latent_dim = self.runs[0].model.prior.latent_dim
        for k, run in enumerate(self.runs):
            xs.append(run.sample_batch(batch_size))
            eps.append(torch.randn((batch_size, latent_dim), generator=run.generator, device=self.device,
                                   dtype=xs[-1].dtype))
            if type(run.method).draw is not Method.draw:
                self._load_run_parameters(k, run.model.prior, prefix="prior.")  # draws from the current prior
            draws.append(run.method.draw(run.model, batch_size, run.generator))
        stacked_draws = {name: torch.stack([d[name] for d in draws]) for name in draws[0]}
        return torch.stack(xs), torch.stack(eps), stacked_draws

    def train_step(self, batch_size):
        """One update of every live run; returns (losses (K,), scalars {name: (K,)}) on the device."""
        x, eps, draws = self._draw(batch_size)
        params = {name: p.detach() for name, p in self.params.items()}
        grads, (losses, scalars) = self._loss_and_grads(params, self.buffers, x, eps, self.hyperparameters,
                                                        draws, self.step)
        finite = torch.isfinite(losses.detach())
        self.failed_at = torch.where(self.alive & ~finite, torch.tensor(self.step + 1, device=self.device),
                                     self.failed_at)
        self.alive = self.alive & finite
        for name, p in self.params.items():
            mask = self.alive.view(-1, *[1] * (p.dim() - 1))
            p.grad = torch.where(mask, grads[name], torch.zeros((), device=self.device))
            state = self.optimizer.state.get(p)
            if state:  # a frozen run's momentum is zeroed too, so Adam's update for it is exactly 0
                state["exp_avg"].mul_(mask)
        self.optimizer.step()
        self.step += 1
        return losses.detach(), {name: value.detach() for name, value in scalars.items()}

    def run(self, until, log_every, on_log, after_step=None):
        """Train up to step `until`; on_log(step, [means of run k], images_per_second) at log steps,
        with None for a run that has failed (its step: failed_steps()); after_step(step) after every
        update, training stopping early when it returns True (an interruption)."""
        batch_size = self.specs[0].train["batch_size"]
        names, sums, window, tick = None, None, 0, time.perf_counter()
        while self.step < until:
            _, scalars = self.train_step(batch_size)
            names = names or list(scalars)
            values = torch.stack([scalars[n].float() for n in names], dim=1)  # (K, scalars)
            sums = values if sums is None else sums + values
            window += 1
            if self.step % log_every == 0 or self.step == until:
                elapsed = time.perf_counter() - tick
                alive = self.alive.tolist()
                means = (sums / window).tolist()
                on_log(self.step, [dict(zip(names, m)) if a else None for m, a in zip(means, alive)],
                       window * batch_size / elapsed)
                sums, window, tick = None, 0, time.perf_counter()
            if after_step is not None and after_step(self.step):
                return

    def failed_steps(self):
        """[the step at which run k's loss became non-finite, or None]."""
        return [None if step < 0 else step for step in self.failed_at.tolist()]

    # --- a run's own state ----------------------------------------------------------------------

    def _load_run_parameters(self, k, module, prefix=""):
        with torch.no_grad():
            for name, p in module.named_parameters():
                p.copy_(self.params[prefix + name][k])

    def run_state(self, k):
        """Run k's state as Trainer.state_dict() gives it for a run alone (its checkpoint)."""
        run = self.runs[k]
        with torch.no_grad():
            for name, p in run.model.named_parameters():
                p.copy_(self.params[name][k])
            for name, b in run.model.named_buffers():
                b.copy_(self.buffers[name][k])
        run.optimizer.load_state_dict(self._optimizer_state(k, run.optimizer))
        run.step = self.step
        return run.state_dict()

    def _stack_optimizer_state(self):
        """Adam's state of resumed runs, stacked as their parameters are (fresh runs have none)."""
        states = [run.optimizer.state_dict()["state"] for run in self.runs]
        if not any(states):
            return
        for index, p in enumerate(self.params.values()):
            own = [state[index] for state in states]
            self.optimizer.state[p] = {"step": own[0]["step"].clone(),
                                       **{key: torch.stack([s[key] for s in own]) for key in own[0] if key != "step"}}

    def _optimizer_state(self, k, optimizer):
        own = optimizer.state_dict()
        state = {}
        for index, p in enumerate(self.params.values()):
            stacked = self.optimizer.state.get(p)
            if stacked:
                state[index] = {key: value if key == "step" else value[k].clone() for key, value in stacked.items()}
        return {"state": state, "param_groups": own["param_groups"]}


class _ParameterList:
    """The stacked tensors as an iterable for torch.optim (they are leaves, not nn.Parameters)."""

    def __init__(self, tensors):
        self.tensors = list(tensors)

    def parameters(self):
        return iter(self.tensors)
