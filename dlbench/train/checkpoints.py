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
