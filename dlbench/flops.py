"""A study's compute floor: the arithmetic of its training against the device's measured peak.

The arithmetic counted is that of matrix products and convolutions (torch's FlopCounterMode:
forward and backward passes), which is what a GPU's peak throughput describes. The elementwise
work (activations, the objectives' terms such as beta-TCVAE's (B, B, D) log-densities, Adam) is
not counted: it is bound by memory traffic, and is one of the things that keep a study above its
floor. The peak is measured, not taken from a data sheet: the best of a few large square products.
"""

import time

import torch

PEAK_SIZES = {"cuda": 8192, "cpu": 512}  # square products large enough to reach the device's peak
PEAK_REPEATS = 5


def step_flops(spec, data, device):
    """FLOPs of matrix products and convolutions in one training step (forward and backward, with
    FactorVAE's discriminator step) of a run like spec trained alone."""
    from torch.utils.flop_counter import FlopCounterMode

    from dlbench.train.loop import Trainer

    trainer = Trainer(spec, data, torch.device(device))
    with FlopCounterMode(display=False) as counter:
        trainer.run(1, 10**9, lambda *_: None)
    return counter.get_total_flops()


def matmul_peak_tflops(device, dtype):
    """The device's measured throughput of square matrix products in dtype, TFLOP/s: the fastest
    of PEAK_REPEATS after one untimed product."""
    from dlbench.bench import sync

    device = torch.device(device)
    n = PEAK_SIZES[device.type]
    generator = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(n, n, generator=generator, device=device).to(dtype) for _ in range(2))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(PEAK_REPEATS):
        sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * n ** 3 / best / 1e12


def floor_hours(total_flops, peak_tflops):
    """Hours the arithmetic takes at the peak: the time no implementation can beat."""
    return total_flops / (peak_tflops * 1e12) / 3600
