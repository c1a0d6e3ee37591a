"""A product of independent standard Student-t distributions, p(z) = prod_d t_nu(z_d) (Mathieu et
al., 2019, Sec. 6): heavier-tailed than the Gaussian and not rotationally invariant for finite
nu, so rotations of the latent space change the objective; it tends to N(0, I) as nu -> inf.

    log t_nu(x) = lgamma((nu+1)/2) - lgamma(nu/2) - log(nu pi)/2 - (nu+1)/2 log(1 + x^2/nu)

The KL from a Gaussian posterior has no closed form: methods get the Monte Carlo one (Prior.kl).
"""

import math

import gin
import torch

from dlbench import checks
from dlbench.priors.base import Prior

# from here on lgamma(x + 1/2) - lgamma(x) is taken from its asymptotic series, whose next term is
# below 1e-16 of it there; the two lgammas, each about x log x, cancel and lose their digits as x
# grows (at nu = 1e16 the difference was off by 18 nats)
_SERIES_FROM = 50.0


def _lgamma_half_step(x):
    """lgamma(x + 1/2) - lgamma(x), in float64, for x > 0."""
    if x < _SERIES_FROM:
        return math.lgamma(x + 0.5) - math.lgamma(x)
    return 0.5 * math.log(x) - 1 / (8 * x) + 1 / (192 * x**3) - 1 / (640 * x**5) + 17 / (14336 * x**7)


# Bailey's polar method accepts a point of the square [-1, 1]^2 with probability pi/4.
_ACCEPT = math.pi / 4


@gin.configurable("student_t")
class StudentT(Prior):
    name = "student_t"

    def __init__(self, latent_dim, nu=3.0):
        super().__init__(latent_dim)
        self.nu = checks.divisor("student_t.nu", nu, "degrees of freedom, which divide z^2")

    def settings(self):
        return {"nu": self.nu}

    def log_prob(self, z):
        nu = self.nu
        log_norm = _lgamma_half_step(nu / 2) - 0.5 * math.log(nu * math.pi)
        return (log_norm - 0.5 * (nu + 1) * torch.log1p(z.pow(2) / nu)).sum(-1)

    def sample(self, n, generator=None):
        """Bailey's (1994) polar method: for (u, v) uniform on the unit disc and w = u^2 + v^2,
        u * sqrt(nu (w^(-2/nu) - 1) / w) is t_nu (nu -> inf gives Marsaglia's polar normal). It needs
        only uniforms, so it draws from `generator` (torch's gamma sampler takes none)."""
        count = n * self.latent_dim
        draws = []
        while count > 0:
            u, w = self._uniform_disc(int(count / _ACCEPT * 1.1) + 16, generator)
            draws.append(self._polar_t(u, w))
            count -= len(draws[-1])
        return torch.cat(draws)[: n * self.latent_dim].reshape(n, self.latent_dim)

    def _polar_t(self, u, w):
        """u * sqrt(nu (w^(-2/nu) - 1) / w), with w^(-2/nu) - 1 = e^a (1 - e^-a), a = -2/nu log w,
        taken through logs so that small nu does not overflow before the result does."""
        a = -2.0 / self.nu * torch.log(w)
        return u * torch.sqrt(self.nu / w) * torch.exp(0.5 * (a + torch.log(-torch.expm1(-a))))

    def _uniform_disc(self, m, generator):
        """First coordinates and squared radii of the points of m uniform draws on [-1, 1]^2 that
        fall inside the unit disc (w = 0 excluded)."""
        u, v = 2.0 * self._rand(2, m, generator=generator) - 1.0
        w = u * u + v * v
        inside = (w < 1) & (w > 0)
        return u[inside], w[inside]
