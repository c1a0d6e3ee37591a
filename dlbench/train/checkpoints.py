"""Periodic checkpoints for resume, and the final weights."""

import io

import torch

from dlbench import rundir
from dlbench.errors import CorruptFile

KEEP = 2  # the newest two, so that resume can fall back when the newest is damaged


def save_atomic(obj, path):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    rundir.atomic_write_bytes(path, buffer.getvalue())


def save_checkpoint(run_dir, state):
    """Write the checkpoint of state['step'], then drop all but the newest KEEP."""
    save_atomic(state, rundir.checkpoint_path(run_dir, state["step"]))
    for old in rundir.checkpoint_paths(run_dir)[KEEP:]:
        old.unlink()


def load(path, device="cpu", fix="delete it and run the command again"):
    """A checkpoint's contents (tensors and plain values only); a CorruptFile naming the file when
    it is truncated or is not a file dlbench wrote. torch's own message is not passed on: it can
    suggest loading with weights_only=False, which would run whatever code the file holds."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except (FileNotFoundError, torch.cuda.OutOfMemoryError):  # the second is the GPU's state, not the file's
        raise
    except Exception as err:  # truncation and garbage surface as many types (zip, pickle, EOF, Runtime)
        raise CorruptFile(path, f"not a complete checkpoint: {type(err).__name__}", fix) from None


class OtherModel(ValueError):
    """A checkpoint of a model other than its run's (one copied from another run, say)."""


def require_model(expected, state):
    """Raise OtherModel naming the first setting of `expected` (a model config as run.json records
    it) that the checkpoint's model_config differs in. A setting `expected` leaves None is filled in
    when training starts (the PCA prior's singular values), so it is not compared. A state without
    a model_config is left to fail where it is used."""
    stored = state.get("model_config") if isinstance(state, dict) else None
    if not isinstance(stored, dict):
        return
    flat_stored = rundir.flat_settings(stored)
    for key, value in rundir.flat_settings(expected).items():
        if value is not None and not rundir.same_setting(value, flat_stored.get(key)):
            raise OtherModel(f"model.{key} is {value!r} in the run's config but {flat_stored.get(key)!r} in the "
                             "checkpoint")

