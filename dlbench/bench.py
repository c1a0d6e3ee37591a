"""Benchmarks: figures, not pass/fail.

train: training images per second of dlbench's loop per architecture, and, in the same run,
of a straightforward PyTorch loop of the same model fed by a per-sample Dataset and DataLoader
with a per-step loss.item() (the way the public PyTorch code of the field trains), at batch 64.
metrics: seconds per metric at default settings on dSprites with an untrained conv encoder.
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


def time_dlbench_loop(spec, data, device, steps, warmup):
    trainer = Trainer(spec, data, device)
    trainer.run(warmup, log_every=10 ** 9, on_log=lambda *a: None)
    _sync(device)
    tick = time.perf_counter()
    trainer.run(warmup + steps, log_every=10 ** 9, on_log=lambda *a: None)
    _sync(device)
    return steps * spec.train["batch_size"] / (time.perf_counter() - tick)


class _PerSampleDataset(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].astype(np.float32))


def time_dataloader_loop(spec, data, device, steps, warmup):
    torch.manual_seed(0)
    model = build_model(spec, data).to(device)
    optimizer = build_optimizer(spec, model)
    method = spec.method
    loader = torch.utils.data.DataLoader(_PerSampleDataset(data.images), batch_size=spec.train["batch_size"],
                                         shuffle=True, drop_last=True)
    done, tick = 0, None
    while done < warmup + steps:
        for x in loader:
            if done == warmup:
                _sync(device)
                tick = time.perf_counter()
            loss, _ = method.loss(model, x.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()  # the per-step logging read that synchronises
            done += 1
            if done == warmup + steps:
                break
    _sync(device)
    return steps * spec.train["batch_size"] / (time.perf_counter() - tick)


def bench_train(device, steps=None, warmup=None, batch_size=64, architectures=("conv", "mlp")):
    cpu = device.type == "cpu"
    steps = steps or (30 if cpu else 500)
    warmup = warmup or (5 if cpu else 50)
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)  # the comparison the README quotes is single-threaded
    try:
        data = _InMemoryData()
        figures = {"device": _device_name(device), "batch_size": batch_size, "steps": steps,
                   "cpu_threads": torch.get_num_threads() if cpu else None}
        for arch in architectures:
            spec = _spec(arch, batch_size)
            ours = time_dlbench_loop(spec, data, device, steps, warmup)
            theirs = time_dataloader_loop(spec, data, device, steps, warmup)
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
    representation_fn = numpy_representation_fn(MeanRepresentation(model.encoder), device)
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
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads available)"
