"""What every method provides to the training loop."""

from abc import ABC, abstractmethod


class Method(ABC):
    """Base class. Subclasses set `name` and implement `objective` and `hyperparameters`.

    One training step is: loss(model, batch, generator, step) -> (loss, scalars); the trainer
    backpropagates the loss and steps the model's optimiser; then after_step(...) lets methods
    with auxiliary networks (the FactorVAE discriminator) take their own optimiser step.
    """

    name = ""

    @abstractmethod
    def hyperparameters(self):
        """The method's hyperparameters as a flat dict of plain values (for run.json)."""

    @abstractmethod
    def objective(self, outputs):
        """(loss, scalars) from one forward pass of the model (a VAEOutputs)."""

    def prepare(self, model, num_observations):
        """Called once by the trainer before training (and before a checkpoint is loaded) with
        the model, on its device, and the dataset size: methods whose estimators need the size
        (beta-TCVAE's minibatch sampling) keep it; methods with auxiliary networks build them."""

    def loss(self, model, x, generator=None, step=0):
        """(loss, scalars) for the batch x at `step` (the number of updates done before)."""
        return self.objective(model(x, generator))

    def after_step(self, model, sample_batch, generator=None):
        """Called after each model update; `sample_batch()` draws a fresh batch. Returns extra
        scalars (a dict of tensors, the same names every step)."""
        return {}

    def state_dict(self):
        """State a method owns beyond the model (auxiliary networks, their optimisers)."""
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{self.name} has no state to load")
