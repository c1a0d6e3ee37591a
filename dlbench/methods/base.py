"""What every method provides to the training loop."""

from abc import ABC, abstractmethod

import torch


class Method(ABC):
    """Base class. Subclasses set `name` and implement `objective` and `hyperparameters`.

    One training step, with every input passed explicitly (no state kept between the calls):

        outputs = model(batch, generator)
        draws = method.draw(model, len(batch), generator)
        loss, scalars = method.objective(outputs, step, draws)
        (the trainer backpropagates the loss and steps the model's optimiser)
        scalars.update(method.after_step(model, outputs, sample_batch, generator))

    after_step lets methods with auxiliary networks (the FactorVAE discriminator) take their own
    optimiser step on this step's outputs.
    """

    name = ""
    # the numeric hyperparameters the objective takes as tensors: runs trained together
    # (dlbench.train.stack) may differ in these, each run its own value
    tensor_hyperparameters = ()

    @abstractmethod
    def hyperparameters(self):
        """The method's hyperparameters as a flat dict of plain values (for run.json)."""

    @abstractmethod
    def objective(self, outputs, step=0, draws=None):
        """(loss, scalars) from one forward pass of the model (a VAEOutputs) at `step` (the number
        of updates done before, an int for a run alone and a 0-d integer tensor on the device for
        runs trained as a stack: schedules such as the annealed capacity use it) and the random
        numbers draw() gave. It draws none itself: given its inputs it is deterministic, so one
        function serves a run alone and many runs batched together. Every method takes the same
        arguments, used or not."""

    def min_batch_size(self):
        """The smallest batch the objective is defined for: refused at config time, not at step 1."""
        return 1

    def draw(self, model, batch_size, generator=None):
        """The random numbers objective() needs beyond the forward pass's (prior samples for the
        alpha-beta divergence), drawn from the run's generator after the forward pass; a dict."""
        return {}

    def prepare(self, model, num_observations):
        """Called once by the trainer before training (and before a checkpoint is loaded) with
        the model, on its device, and the dataset size: methods whose estimators need the size
        (beta-TCVAE's minibatch sampling) keep it; methods with auxiliary networks build them."""

    def loss(self, model, x, generator=None, step=0):
        """(loss, scalars) of the objective of one forward pass of the batch x."""
        outputs = model(x, generator)
        return self.objective(outputs, step, self.draw(model, len(x), generator))

    def after_step(self, model, outputs, sample_batch, generator=None):
        """Called after each model update with the step's forward pass `outputs`;
        `sample_batch()` draws a fresh batch. Returns extra scalars (a dict of tensors, the same
        names every step)."""
        return {}

    def state_dict(self):
        """State a method owns beyond the model (auxiliary networks, their optimisers)."""
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{self.name} has no state to load")


def checked_objective(method, returned):
    """(loss, scalars) as objective() returned them, or a TypeError naming the method where they are
    not a 0-d tensor and a dict of 0-d tensors (a new method's first mistakes, which had surfaced
    as torch's 'grad can be implicitly created only for scalar outputs' or 'stack expects each
    tensor to be equal size'). Shapes only: nothing is read from the device."""
    where = f"{type(method).__module__}.{type(method).__qualname__}.objective"
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise TypeError(f"{where} returned a {type(returned).__name__}; it must return (loss, scalars): a 0-d "
                        f"tensor and a dict of 0-d tensors")
    loss, scalars = returned
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        got = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else f"a {type(loss).__name__}"
        raise TypeError(f"{where} returned {got} as the loss; it must return a 0-d tensor (the batch's mean loss)")
    if not isinstance(scalars, dict):
        raise TypeError(f"{where} returned a {type(scalars).__name__} as its scalars; it must return a dict of 0-d "
                        f"tensors")
    for name, value in scalars.items():
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            got = f"of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else f"a {type(value).__name__}"
            raise TypeError(f"{where} returned the scalar {name!r} {got}; every scalar must be a 0-d tensor")
    return loss, scalars
