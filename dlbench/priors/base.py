"""What every prior provides: a normalised joint log-density, a sampler, and the KL from a
diagonal Gaussian posterior (closed form where the prior allows it, Monte Carlo otherwise)."""

from abc import ABC, abstractmethod
import math

import torch
from torch import nn


_LOG_2PI = math.log(2.0 * math.pi)


def log_normal_diag(z, mean, logvar):
    """log N(z; mean, diag(exp(logvar))) per dimension (broadcasting, no sum)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mean).pow(2) * torch.exp(-logvar))


class Prior(nn.Module, ABC):
    """A distribution over R^latent_dim. Subclasses set `name`, implement `log_prob`, `sample`
    and `settings`, and may override `kl_per_dim` where the KL has a closed form.

    Learnable parameters are nn.Parameters, so they train with the model and are saved in its
    state_dict; `settings()` holds what rebuilds the prior before the state_dict is loaded."""

    name = ""

    def __init__(self, latent_dim):
        super().__init__()
        self.latent_dim = int(latent_dim)
        # Parameter-free priors still need to know their device and dtype for sampling.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @abstractmethod
    def log_prob(self, z):
        """Joint log-density of each row of an (n, d) tensor: an (n,) tensor."""

    @abstractmethod
    def sample(self, n, generator=None):
        """n independent draws: an (n, d) tensor (not differentiable w.r.t. the prior's parameters)."""

    @abstractmethod
    def settings(self):
        """Constructor arguments (plain values, latent_dim excluded) that rebuild this prior."""

    def config(self):
        """{'name': ..., **settings}: what the model config and run.json record."""
        return {"name": self.name, **self.settings()}

    def kl_per_dim(self, mean, logvar):
        """(B, D) closed-form KL(q(z|x) || p(z)) per latent dimension, or None where the prior
        has none (it does not factorise into Gaussians)."""
        return None

    def kl(self, mean, logvar, z):
        """(B,) KL(q(z|x) || p(z)) for q = N(mean, diag(exp(logvar))): closed form where
        kl_per_dim has one, else the one-sample Monte Carlo estimate log q(z|x) - log p(z) at the
        reparameterised z (Stuehmer et al., eq. 12)."""
        per_dim = self.kl_per_dim(mean, logvar)
        if per_dim is not None:
            return per_dim.sum(-1)
        return log_normal_diag(z, mean, logvar).sum(-1) - self.log_prob(z)

    def _randn(self, *shape, generator=None):
        return torch.randn(shape, generator=generator, device=self._anchor.device, dtype=self._anchor.dtype)

    def _rand(self, *shape, generator=None):
        return torch.rand(shape, generator=generator, device=self._anchor.device, dtype=self._anchor.dtype)

    def prepare(self, data):
        """Called once before training with the dataset, for priors initialised from data (the
        PCA-initialised Gaussian); the others ignore it."""

    def extra_repr(self):
        return ", ".join(f"{k}={v}" for k, v in self.config().items())
