"""Benchmarks: figures, not pass/fail.

train: training images per second of dlbench's loop per architecture, and, in the same run,
of a straightforward PyTorch loop of the same model fed by a per-sample Dataset and DataLoader
with a per-step loss.item() (the way the public PyTorch code of the field trains), at batch 64.
metrics: seconds per metric at default settings on dSprites with an untrained conv encoder
(codes standardised so that no dimension is pruned).
"""

import time

import numpy as np
import torch

from dlbench.config import RunSpec
from dlbench.methods import BetaVAE
from dlbench.train.loop import Trainer, build_model, build_optimizer

BENCH_IMAGES = 8192


class _InMemoryData:
    """Random dSprites images, enough to benchmark training without the full file."""

    def __init__(self, num=BENCH_IMAGES, seed=0):
        from dlbench.data.dsprites import render

        rs = np.random.RandomState(seed)
        sizes = [1, 3, 6, 40, 32, 32]
        classes = np.stack([rs.randint(n, size=num) for n in sizes], axis=1)
        self.images = render(classes)[:, None]
        self.observation_shape = (1, 64, 64)
        self.pixel_scale = 1.0


def _spec(architecture, batch_size):
    train = dict(method=BetaVAE(4.0), steps=0, batch_size=batch_size, lr=1e-4, seed=0, checkpoint_every=10 ** 9,
                 log_every=10 ** 9, adam_betas=[0.9, 0.999], adam_eps=1e-8)
    return RunSpec(method=train["method"], train=train, dataset={"name": "bench"},
                   model={"architecture": architecture, "latent_dim": 10, "likelihood": "bernoulli"})


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class _DlbenchLoop:
    def __init__(self, spec, data, device):
        self.trainer = Trainer(spec, data, device)

    def steps(self, n):
        self.trainer.run(self.trainer.step + n, log_every=10 ** 9, on_log=lambda *a: None)


class _PerSampleDataset(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].astype(np.float32))


class _DataLoaderLoop:
    """The way the public PyTorch code of the field trains: a per-sample Dataset, a DataLoader,
    a host-to-device copy and a loss.item() every step."""

    def __init__(self, spec, data, device):
        torch.manual_seed(0)
        self.device, self.method = device, spec.method
        self.model = build_model(spec, data).to(device)
        self.optimizer = build_optimizer(spec, self.model)
        loader = torch.utils.data.DataLoader(_PerSampleDataset(data.images), batch_size=spec.train["batch_size"],
                                             shuffle=True, drop_last=True)
        self.batches = (x for _ in iter(int, 1) for x in loader)

    def steps(self, n):
        for _ in range(n):
            loss, _ = self.method.loss(self.model, next(self.batches).to(self.device))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss.item()


def best_images_per_second(loops, device, steps, warmup, rounds, batch_size):
    """Best throughput of each loop over `rounds` alternating timed blocks (alternating and taking
    the best keeps background noise from favouring either loop)."""
    for loop in loops:
        loop.steps(warmup)
    best = [0.0] * len(loops)
    for _ in range(rounds):
        for i, loop in enumerate(loops):
            _sync(device)
            tick = time.perf_counter()
            loop.steps(steps)
            _sync(device)
            best[i] = max(best[i], steps * batch_size / (time.perf_counter() - tick))
    return best


def bench_train(device, steps=None, warmup=None, rounds=3, batch_size=64, architectures=("conv", "mlp")):
    cpu = device.type == "cpu"
    steps = steps or (20 if cpu else 300)
    warmup = warmup or (5 if cpu else 50)
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)  # the comparison the README quotes is single-threaded
    try:
        data = _InMemoryData()
        figures = {"device": _device_name(device), "batch_size": batch_size, "steps_per_round": steps,
                   "rounds": rounds, "cpu_threads": torch.get_num_threads() if cpu else None}
        for arch in architectures:
            spec = _spec(arch, batch_size)
            loops = [_DlbenchLoop(spec, data, device), _DataLoaderLoop(spec, data, device)]
            ours, theirs = best_images_per_second(loops, device, steps, warmup, rounds, batch_size)
            figures[arch] = {"dlbench_images_per_second": ours, "dataloader_images_per_second": theirs,
                             "ratio": ours / theirs}
        return figures
    finally:
        torch.set_num_threads(threads)


def bench_metrics(device, names=("mig", "factor_vae", "recon_ll"), dataset="dsprites"):
    import dlbench.data
    from dlbench.evaluation import log_likelihood_params
    from dlbench.metrics import evaluate
    from dlbench.nn import VAE
    from dlbench.postprocess import MeanRepresentation, numpy_representation_fn

    data = dlbench.data.get_dataset(dataset)
    torch.manual_seed(0)
    model = VAE("conv", data.observation_shape, 10, "bernoulli").to(device).eval()
    encode = numpy_representation_fn(MeanRepresentation(model.encoder), device)
    reference = encode(data.sample_observations(1000, np.random.RandomState(1)))
    center, spread = reference.mean(0), reference.std(0) + 1e-8

    def representation_fn(observations):
        # An untrained encoder's codes barely vary, so the FactorVAE score would prune every
        # dimension and stop early; standardising costs nothing and makes it do the full work.
        return (encode(observations) - center) / spread

    data.images  # read the file before the clock starts
    figures = {"device": _device_name(device), "dataset": dataset}
    for name in names:
        extra = log_likelihood_params(model, device, seed=0) if name == "recon_ll" else {}
        tick = time.perf_counter()
        evaluate(name, data, representation_fn, seed=0, **extra)
        figures[f"{name}_seconds"] = time.perf_counter() - tick
    return figures


def _device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
