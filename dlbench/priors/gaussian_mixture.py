"""The Gaussian mixture prior of Mathieu et al. (2019), eq. 9, for clustered latent spaces:

    p(z) = sum_c pi_c prod_d N(z_d | mu_cd, sigma^2)

with C components sharing the covariance Sigma_c = sigma^2 I. The paper's setting (D = 2) is the
default: C = 4, Sigma_c = 0.03 I (0.03 is the variance), pi_c = 1/C and mu_cd in {0, 1}, the four
corners of the unit square. Other dimensions need explicit means. The components are fixed.
"""

import math

import gin
import torch

from dlbench import checks
from dlbench.errors import UserError
from dlbench.priors.base import Prior, log_normal_diag

PAPER_MEANS_2D = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]


@gin.configurable("gaussian_mixture")
class GaussianMixture(Prior):
    """`means`: C lists of D numbers (default: the corners of the unit square when D = 2);
    `variance`: sigma^2 of every component; `weights`: C non-negative numbers, normalised to
    sum to 1 (default: uniform)."""

    name = "gaussian_mixture"

    def __init__(self, latent_dim, means=None, variance=0.03, weights=None):
        super().__init__(latent_dim)
        self.given_means = _check_means(means, self.latent_dim)
        self.variance = checks.divisor("gaussian_mixture.variance", variance)
        self.given_weights = _check_weights(weights, len(self._means_list()))
        # buffers in torch's default dtype, like any module's parameters
        self.register_buffer("means", torch.tensor(self._means_list(), dtype=torch.get_default_dtype()))
        probabilities = torch.tensor(self.given_weights or [1.0] * len(self._means_list()), dtype=torch.float64)
        self.register_buffer("log_weights", torch.log(probabilities / probabilities.sum()).to(self.means.dtype))

    def _means_list(self):
        return self.given_means if self.given_means is not None else PAPER_MEANS_2D

    def settings(self):
        return {"means": self.given_means, "variance": self.variance, "weights": self.given_weights}

    @property
    def num_components(self):
        return self.means.shape[0]

    def log_prob(self, z):
        logvar = torch.full_like(z, math.log(self.variance))
        per_component = log_normal_diag(z[:, None, :], self.means, logvar[:, None, :]).sum(-1)  # (n, C)
        return torch.logsumexp(per_component + self.log_weights, dim=-1)

    def sample(self, n, generator=None):
        component = self.sample_components(n, generator)
        return self.means[component] + math.sqrt(self.variance) * self._randn(n, self.latent_dim, generator=generator)

    def sample_components(self, n, generator=None):
        """(n,) component indices drawn with probabilities pi (the first step of `sample`)."""
        return torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)


def _check_means(means, latent_dim):
    if means is None:
        if latent_dim != 2:
            raise UserError(f"gaussian_mixture has default means (the corners of the unit square) only for "
                            f"latent_dim = 2; with latent_dim = {latent_dim} set gaussian_mixture.means to a list "
                            f"of C lists of {latent_dim} numbers")
        return None
    try:  # checks.numbers: not strings or bools, finite within float32
        rows = [checks.numbers("gaussian_mixture.means", row, length=latent_dim)
                for row in (means if isinstance(means, (list, tuple)) else [])]
    except UserError:  # said of the whole setting
        rows = []
    if not rows:
        raise UserError(f"gaussian_mixture.means must be a non-empty list of lists of {latent_dim} finite numbers "
                        "(one list per component)")
    return rows


def _check_weights(weights, num_components):
    if weights is None:
        return None
    try:
        weights = checks.numbers("gaussian_mixture.weights", weights, length=num_components, minimum=0)
    except UserError:
        weights = []
    if not weights or sum(weights) <= 0:
        raise UserError(f"gaussian_mixture.weights must be {num_components} non-negative numbers "
                        "(one per component, not all zero)")
    return weights
