"""Annealed VAE (Burgess et al., 2018, eq. 8): reconstruction + gamma * |KL(q(z|x) || p(z)) - C|,
with the capacity C raised linearly from 0 to c_max over the first iteration_threshold updates,
C = min(c_max, c_max * step / iteration_threshold), step the number of updates done before
this one (so C = 0 at the first update), as disentanglement_lib does with its global step.

The KL is summed over latent dimensions and averaged over the batch, as in disentanglement_lib,
so its grids (c_max in nats, gamma = 1000) mean the same here.
"""

import gin
import torch

from dlbench import checks
from dlbench.methods.base import Method
from dlbench.methods.estimators import elbo_terms, vae_scalars


def annealed_capacity(step, c_max, iteration_threshold):
    """C = min(c_max, c_max * step / iteration_threshold); c_max and step may be tensors."""
    if torch.is_tensor(step):  # a stack's step, on the device: no host value to take the minimum of
        return c_max * (step / iteration_threshold).clamp(max=1.0)
    return c_max * min(1.0, step / iteration_threshold)


def annealed_vae_objective(outputs, gamma, capacity):
    """Loss and scalars of the annealed VAE for one forward pass at capacity C; gamma and the
    capacity may be tensors."""
    reconstruction, kl, kl_per_dim = elbo_terms(outputs)
    if not torch.is_tensor(capacity):  # filled on the device: a tensor made on the host would wait for it
        capacity = torch.full_like(kl, capacity)
    loss = reconstruction + gamma * (kl - capacity).abs()
    return loss, vae_scalars(loss, reconstruction, kl, kl_per_dim, capacity=capacity)


@gin.configurable("annealed_vae")
class AnnealedVAE(Method):
    """Defaults: gamma = 1000 and iteration_threshold = 100,000 as in disentanglement_lib's
    study; c_max = 25 nats, the middle of its grid [5, 10, 25, 50, 75, 100]."""

    name = "annealed_vae"
    tensor_hyperparameters = ("gamma", "c_max")

    def __init__(self, gamma=1000.0, c_max=25.0, iteration_threshold=100000):
        self.gamma = checks.hyperparameter("annealed_vae.gamma", gamma, minimum=0)
        self.c_max = checks.hyperparameter("annealed_vae.c_max", c_max, minimum=0)
        self.iteration_threshold = checks.integer("annealed_vae.iteration_threshold", iteration_threshold, minimum=1)

    def hyperparameters(self):
        return {"gamma": float(self.gamma), "c_max": float(self.c_max),
                "iteration_threshold": int(self.iteration_threshold)}

    def capacity(self, step):
        return annealed_capacity(step, self.c_max, self.iteration_threshold)

    def objective(self, outputs, step=0, draws=None):
        return annealed_vae_objective(outputs, self.gamma, self.capacity(step))
