"""Periodic checkpoints for resume, and the final weights."""

import io
from pathlib import Path

import torch

from dlbench.errors import CorruptFile
from dlbench.rundir import atomic_write_bytes

KEEP = 2  # the newest two, so that resume can fall back when the newest is damaged


def checkpoint_dir(run_dir):
    return Path(run_dir) / "model" / "checkpoints"


def save_atomic(obj, path):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_checkpoint(run_dir, state):
    """Write the checkpoint of state['step'], then drop all but the newest KEEP."""
    path = checkpoint_dir(run_dir) / f"step_{state['step']:09d}.pt"
    save_atomic(state, path)
    for old in checkpoints_newest_first(run_dir)[KEEP:]:
        old.unlink()


def checkpoints_newest_first(run_dir):
    return sorted(checkpoint_dir(run_dir).glob("step_*.pt"), reverse=True)


def latest_checkpoint(run_dir):
    paths = checkpoints_newest_first(run_dir)
    return paths[0] if paths else None


def load(path, device="cpu", fix="delete it and run the command again"):
    """A checkpoint's contents (tensors and plain values only); a CorruptFile naming the file when
    it is truncated or is not a file dlbench wrote. torch's own message is not passed on: it can
    suggest loading with weights_only=False, which would run whatever code the file holds."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncation and garbage surface as many types (zip, pickle, EOF, Runtime)
        raise CorruptFile(path, f"not a complete checkpoint: {type(err).__name__}", fix) from None
