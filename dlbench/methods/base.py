"""What every method provides to the training loop."""

from abc import ABC, abstractmethod


class Method(ABC):
    """Base class. Subclasses set `name` and implement `objective` and `hyperparameters`."""

    name = ""

    @abstractmethod
    def hyperparameters(self):
        """The method's hyperparameters as a flat dict of plain values (for run.json)."""

    @abstractmethod
    def objective(self, outputs):
        """(loss, scalars) from one forward pass of the model (a VAEOutputs)."""

    def bind_dataset(self, num_observations):
        """Called once by the trainer before training: methods whose estimators need the dataset
        size (beta-TCVAE's minibatch sampling) keep it; others ignore it."""

    def loss(self, model, x, generator=None):
        return self.objective(model(x, generator))

    def state_dict(self):
        """State a method owns beyond the model (auxiliary networks, their optimisers)."""
        return {}

    def load_state_dict(self, state):
        if state:
            raise ValueError(f"{self.name} has no state to load")
