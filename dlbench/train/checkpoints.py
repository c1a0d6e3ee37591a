"""Periodic checkpoints for resume, and the final weights."""

import io
from pathlib import Path

import torch

from dlbench.rundir import atomic_write_bytes


def checkpoint_dir(run_dir):
    return Path(run_dir) / "model" / "checkpoints"


def save_atomic(obj, path):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def save_checkpoint(run_dir, state):
    """Write the checkpoint of state['step'], then drop older ones (resume needs only the last)."""
    folder = checkpoint_dir(run_dir)
    path = folder / f"step_{state['step']:09d}.pt"
    save_atomic(state, path)
    for old in folder.glob("step_*.pt"):
        if old != path:
            old.unlink()


def latest_checkpoint(run_dir):
    paths = sorted(checkpoint_dir(run_dir).glob("step_*.pt"))
    return paths[-1] if paths else None


def load(path, device="cpu"):
    return torch.load(path, map_location=device, weights_only=True)
