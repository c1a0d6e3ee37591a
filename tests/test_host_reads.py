"""Training steps between log steps never read a tensor's value into Python. On a GPU each such
read (item(), bool(), int(), a mask's nonzero) makes the host wait for the device, which then
idles while Python launches the next step's kernels; tests/test_cuda.py counts those waits with
CUDA's sync debug mode, on a GPU only. Here, on the CPU and so in CI, the same reads are caught
as they pass torch's dispatcher."""

import collections
import traceback

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import dlbench.data
from dlbench.train.loop import Trainer
from dlbench.train.stack import StackedTrainer
from tests.test_stack import METHODS, spec_of

aten = torch.ops.aten
# ops whose result the host needs before it can go on: a value, or a size that depends on values
VALUE_READS = {aten._local_scalar_dense.default, aten.is_nonzero.default, aten.equal.default, aten.nonzero.default,
               aten.masked_select.default, aten._unique2.default, aten.unique_consecutive.default,
               aten.unique_dim.default, aten.repeat_interleave.Tensor}


def boolean_index(func, args):
    return func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1])


class ValueReads(TorchDispatchMode):
    """Counts value reads by where in dlbench they were made. Adam's reads of its step counts are
    left out: those counts are host tensors on a GPU too, so reading them waits for nothing."""

    def __init__(self):
        super().__init__()
        self.where = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in VALUE_READS or boolean_index(func, args):
            stack = traceback.extract_stack()
            if not any("/torch/optim/" in frame.filename for frame in stack):
                ours = [frame for frame in stack if "/dlbench/" in frame.filename]
                self.where[f"{ours[-1].filename.rsplit('/dlbench/', 1)[-1]}:{ours[-1].lineno}" if ours else "?"] += 1
        return func(*args, **(kwargs or {}))


def reads_while_training(trainer, steps):
    """The value reads of training `steps` more steps, with no log step before the last."""
    with ValueReads() as reads:
        trainer.run(trainer.step + steps, 10**9, lambda *_: None)
    return reads.where


@pytest.mark.parametrize("stacked", [False, True], ids=["alone", "stacked"])
@pytest.mark.parametrize("method", METHODS)
def test_training_steps_between_logs_read_no_value(method, stacked, tiny_dsprites):
    data = dlbench.data.get_dataset("dsprites")
    shared, runs = METHODS[method]
    specs = [spec_of(method, shared, seed, own) for seed, own in runs]
    cpu = torch.device("cpu")
    trainer = StackedTrainer(specs, data, cpu) if stacked else Trainer(specs[0], data, cpu)
    trainer.run(2, 10**9, lambda *_: None)  # first steps: Adam's state
    # the last step of each call is a log step, which may read (the means go to the host); the
    # steps before it may not: 9 steps must read as often as 3
    few, many = reads_while_training(trainer, 3), reads_while_training(trainer, 9)
    assert few == many, (few, many)
