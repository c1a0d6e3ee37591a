"""The measurements that decide how stacks compute (issue 15), on the device at hand.

layers: a stack's training step of disentanglement_lib's conv beta-VAE at batch 64 with vmap
(what stacks use) against batched layers (dlbench.train.batched_layers), images per second
summed over K runs, for each K.

encoding: the encoding of the dataset that a run's evaluation starts with (dlbench.encode_once),
for the K runs of a stack one run after another, as dlb_evaluate does it, against all K encoders
at once (vmap over their stacked weights, each batch of observations made and copied to the
device once for all K), seconds per run and whether both give the same codes. Batched evaluation
of a stack is worth building only where this pays.
"""

import dataclasses

import numpy as np
import torch

from dlbench.bench import BenchImages, bench_spec, best_images_per_second, device_name, sync
from dlbench.train.device import tf32


class _StackStepLoop:
    """The compute of a stack's training step on fixed inputs (one batch and noise per run, drawn
    once): its loss and gradients the stack's own way (vmap) or with batched layers, then the
    stack's masked Adam. What differs between the two is only how the network is computed."""

    def __init__(self, spec, k, data, device, way):
        from dlbench.train.stack import StackedTrainer

        specs = [dataclasses.replace(spec, train={**spec.train, "seed": seed}) for seed in range(k)]
        self.stack, self.way = StackedTrainer(specs, data, device), way
        self.x, self.eps, self.draws = self.stack._draw(spec.train["batch_size"])

    def steps(self, n):
        from dlbench.train.batched_layers import batched_loss_and_grads
        from dlbench.train.loop import float32_arithmetic
        from dlbench.train.stack import masked_step

        stack = self.stack
        with float32_arithmetic(stack.specs[0]):  # the arithmetic a stack's own steps run in
            for _ in range(n):
                params = {name: p.detach() for name, p in stack.params.items()}
                if self.way == "vmap":
                    grads, _ = stack._loss_and_grads(params, stack.buffers, self.x, self.eps, stack.hyperparameters,
                                                     self.draws, {}, stack.step_on_device)
                else:
                    _, grads = batched_loss_and_grads(stack.runs[0].model, params, self.x, self.eps,
                                                      stack.hyperparameters["beta"])
                masked_step(stack.optimizer, stack.params, grads, stack.alive)


def bench_layers(device, stacks=None, steps=None, warmup=None, rounds=3, batch_size=64):
    """Issue 15's choice between vmap and batched layers: images per second summed over K runs of
    the dlib conv beta-VAE at `batch_size`, each way, for each K in `stacks`, and the ratio
    batched / vmap (above 1: batched layers are faster); on CUDA also the memory a step takes
    beyond the parameters and Adam's state (activations, gradients) each way."""
    cpu = device.type == "cpu"
    stacks = stacks or ((1, 2, 4) if cpu else (1, 4, 16, 32, 64))
    steps = steps or (5 if cpu else 50)
    warmup = warmup or (2 if cpu else 10)
    data = BenchImages()
    spec = bench_spec("conv", batch_size)
    figures = {"device": device_name(device), "architecture": "conv", "batch_size": batch_size,
               "steps_per_round": steps, "rounds": rounds, "stacks": {}}
    for k in stacks:
        loops = {way: _StackStepLoop(spec, k, data, device, way) for way in ("vmap", "batched")}
        row = {}
        if device.type == "cuda":
            for way, loop in loops.items():
                loop.steps(1)  # Adam's state is allocated at the first step
                sync(device)
                torch.cuda.reset_peak_memory_stats(device)
                held = torch.cuda.memory_allocated(device)
                loop.steps(1)
                row[f"{way}_step_memory_gib"] = (torch.cuda.max_memory_allocated(device) - held) / 2**30
        rates = best_images_per_second(list(loops.values()), device, steps, warmup, rounds, batch_size * k)
        row.update({f"{way}_images_per_second": rate for way, rate in zip(loops, rates)})
        row["batched_over_vmap"] = row["batched_images_per_second"] / row["vmap_images_per_second"]
        figures["stacks"][f"K={k}"] = row
    return figures




class _FirstImages:
    """The first `num` images of a dataset, as encode_dataset reads a dataset."""

    def __init__(self, data, num):
        self.data, self.num = data, num

    def __len__(self):
        return self.num

    def observations_at(self, index):
        return self.data.observations_at(index)


def _conv_encoder(seed, observation_shape, device):
    """An untrained conv encoder's mean (the representation dlb_evaluate encodes with), from `seed`."""
    from dlbench.nn import VAE
    from dlbench.postprocess import MeanRepresentation

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MeanRepresentation(VAE("conv", observation_shape, 10, "bernoulli").encoder).to(device).eval()


@torch.no_grad()
def encode_stacked(data, representations, device, batch_size=None):
    """Codes (K, N, D) of every image of `data` under each of K representations of one
    architecture: each batch of observations made and copied to the device once, and the K
    applied to it with one vmap over their stacked weights."""
    from torch.func import functional_call, stack_module_state, vmap

    from dlbench.postprocess import encode_batch_size

    params, buffers = stack_module_state(representations)
    template = representations[0]
    encode = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)), in_dims=(0, 0, None))
    batch_size = batch_size or encode_batch_size(device)
    parts = []
    for start in range(0, len(data), batch_size):
        index = np.arange(start, min(start + batch_size, len(data)))
        x = torch.as_tensor(data.observations_at(index), device=device, dtype=torch.float32)
        parts.append(encode(params, buffers, x).cpu().numpy())
    return np.concatenate(parts, axis=1)


# fewer images time mostly a call's fixed cost, which scaling to the whole dataset multiplies: 64
# images on a CPU had given 9 times the seconds per run of the whole grid, and stacks looking faster
MIN_ENCODING_IMAGES = 1024


def bench_encoding(device, data, stacks=None, images=None):
    """Seconds per run to encode the whole of `data` for evaluation, for a stack of K runs
    encoded one run after another (dlb_evaluate's way) and all at once (encode_stacked), from
    the first `images` images; their ratio, and the largest difference between the codes."""
    cpu = device.type == "cpu"
    stacks = stacks or ((1, 2, 4) if cpu else (1, 4, 16, 32))
    subset = _FirstImages(data, min(images or (2048 if cpu else 65536), len(data)))
    figures = {"device": device_name(device), "dataset_images": len(data), "timed_images": len(subset), "stacks": {}}
    with tf32(False):  # as dlb_evaluate encodes: IEEE float32 on a GPU too
        for k in stacks:
            figures["stacks"][f"K={k}"] = _encoding_figures(data, subset, k, device)
    return figures


def _encoding_figures(data, subset, k, device):
    """bench_encoding's figures of a stack of k runs."""
    import time

    from dlbench.encode_once import encode_dataset
    from dlbench.postprocess import numpy_representation_fn

    scale = len(data) / len(subset)  # to the whole dataset, as a run's evaluation encodes it
    representations = [_conv_encoder(seed, data.observation_shape, device) for seed in range(k)]
    warm_up = _FirstImages(data, min(len(subset), 4096))  # untimed: kernels chosen, memory allocated
    encode_dataset(warm_up, numpy_representation_fn(representations[0], device))
    encode_stacked(warm_up, representations, device)
    sync(device)
    tick = time.perf_counter()
    alone = [encode_dataset(subset, numpy_representation_fn(r, device)) for r in representations]
    sync(device)
    alone_seconds = time.perf_counter() - tick
    together = encode_stacked(subset, representations, device)
    sync(device)
    together_seconds = time.perf_counter() - alone_seconds - tick
    return {
        "alone_seconds_per_run": scale * alone_seconds / k, "stacked_seconds_per_run": scale * together_seconds / k,
        "alone_over_stacked": alone_seconds / together_seconds,
        "max_code_difference": float(np.abs(np.stack(alone) - together).max())}
