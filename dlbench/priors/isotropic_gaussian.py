"""The isotropic Gaussian prior N(0, sigma^2 I); sigma = 1 is the standard VAE prior."""

import math

import gin
import torch

from dlbench import checks
from dlbench.priors.base import Prior, log_normal_diag


@gin.configurable("isotropic_gaussian")
class IsotropicGaussian(Prior):
    name = "isotropic_gaussian"

    def __init__(self, latent_dim, scale=1.0):
        super().__init__(latent_dim)
        self.scale = checks.scale("isotropic_gaussian.scale", scale)

    def settings(self):
        return {"scale": self.scale}

    def _logvar(self, like):
        return torch.full_like(like, 2.0 * math.log(self.scale))

    def log_prob(self, z):
        return log_normal_diag(z, torch.zeros_like(z), self._logvar(z)).sum(-1)

    def sample(self, n, generator=None):
        return self.scale * self._randn(n, self.latent_dim, generator=generator)

    def kl_per_dim(self, mean, logvar):
        prior_logvar = 2.0 * math.log(self.scale)
        return 0.5 * ((mean.pow(2) + logvar.exp()) / self.scale ** 2 - 1.0 - logvar + prior_logvar)
