"""Choosing the device (CUDA when present, CPU otherwise), and how a GPU does float32 arithmetic."""

import re
from contextlib import contextmanager

import torch

from dlbench.errors import OutOfDeviceMemory, UserError


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


@contextmanager
def tf32(allowed):
    """Within the block, float32 convolutions (cuDNN) and matrix products on a GPU run on the tensor
    cores in TF32, a 10-bit mantissa (allowed), or in IEEE float32 (not allowed); the settings
    from before come back after. torch's own default is neither: TF32 for convolutions, IEEE for
    matrix products. The CPU computes in IEEE float32 either way."""
    # the allow_tf32 flags, which every torch since 1.7 reads (2.9's fp32_precision settings must
    # not be mixed with them, and dlbench sets only these)
    flags = (torch.backends.cudnn, torch.backends.cuda.matmul)
    before = [each.allow_tf32 for each in flags]
    for each in flags:
        each.allow_tf32 = allowed
    try:
        yield
    finally:
        for each, value in zip(flags, before):
            each.allow_tf32 = value


def out_of_memory_reason(step):
    """run.json's reason for a run (or each run of a stack) the GPU's memory stopped."""
    return f"the GPU ran out of memory after step {step}"


# what to do when training ran out of GPU memory
LESS_TRAINING = ("free its memory (another process may hold it) or ask for less: a smaller train.batch_size, or fewer "
                 "runs on the GPU at once (dlb_study's --stack and --workers); the runs keep their last checkpoint "
                 "and the same command resumes them")


@contextmanager
def out_of_memory_said(where, fix=LESS_TRAINING):
    """torch's CUDA out-of-memory error (a page of allocator figures) becomes OutOfDeviceMemory:
    one line naming `where`, how much was asked, and the fix."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as err:
        asked = re.search(r"Tried to allocate [\d.]+ \w+", str(err))
        raise OutOfDeviceMemory(f"{where}: the GPU ran out of memory{f' ({asked.group(0)})' if asked else ''}; "
                                f"{fix}") from None
