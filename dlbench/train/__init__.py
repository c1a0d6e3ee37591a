"""Training: the loop, checkpoints and resume, and the run directory it fills."""

from dlbench.train.device import resolve_device
from dlbench.train.run import load_trained_model, train_run

__all__ = ["load_trained_model", "resolve_device", "train_run"]
