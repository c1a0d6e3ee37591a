"""Choosing the device: CUDA when present, CPU otherwise."""

import torch

from dlbench.errors import UserError


def check_device_name(name):
    """A --device that is none of auto, cpu and cuda, refused whether or not this machine has CUDA."""
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown device '{name}'; use auto, cpu or cuda")


def resolve_device(name="auto"):
    if isinstance(name, torch.device):
        return name
    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but CUDA is not available here; use --device cpu or auto")
    return torch.device(name)
