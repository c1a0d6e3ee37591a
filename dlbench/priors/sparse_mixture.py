"""The sparse prior of Mathieu et al. (2019), Sec. 6 and App. B: each dimension is independently
a mixture of a standard normal ("on") and a narrow normal around 0 ("off"),

    p(z) = prod_d [(1 - gamma) N(z_d; 0, 1) + gamma N(z_d; 0, sigma0^2)],   sigma0^2 = 0.05,

gamma being the probability that a dimension is off. The paper's qualitative model uses gamma = 0.8.
"""

import math

import gin
import torch

from dlbench import checks
from dlbench.priors.base import Prior, log_normal_diag


@gin.configurable("sparse_mixture")
class SparseMixture(Prior):
    name = "sparse_mixture"

    def __init__(self, latent_dim, gamma=0.8, sigma0_sq=0.05):
        super().__init__(latent_dim)
        self.gamma = checks.number("sparse_mixture.gamma", gamma, minimum=0, maximum=1)
        self.sigma0_sq = checks.divisor("sparse_mixture.sigma0_sq", sigma0_sq)

    def settings(self):
        return {"gamma": self.gamma, "sigma0_sq": self.sigma0_sq}

    def log_prob(self, z):
        # log of 0 is -inf: gamma = 0 or 1 leaves a single Gaussian, which logsumexp handles
        # filled on the device: a tensor made on the host would be copied there, waiting for it
        log_on = torch.log(torch.full((), 1.0 - self.gamma, dtype=z.dtype, device=z.device))
        log_off = torch.log(torch.full((), self.gamma, dtype=z.dtype, device=z.device))
        zero = torch.zeros_like(z)
        on = log_on + log_normal_diag(z, zero, zero)
        off = log_off + log_normal_diag(z, zero, torch.full_like(z, math.log(self.sigma0_sq)))
        return torch.logsumexp(torch.stack([on, off]), dim=0).sum(-1)

    def sample(self, n, generator=None):
        off = self._rand(n, self.latent_dim, generator=generator) < self.gamma
        one = self._anchor.new_ones(())
        std = torch.where(off, math.sqrt(self.sigma0_sq) * one, one)
        return std * self._randn(n, self.latent_dim, generator=generator)
