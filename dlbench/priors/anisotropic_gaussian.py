"""The anisotropic Gaussian prior N(0, diag(sigma^2)) of Mathieu et al. (2019), Sec. 6: fixed,
learned, or initialised from the data's principal components.

The variances are parametrised by D logits as sigma^2 = D * softmax(logits), so they always sum
to D, as the standard normal's do: a prior that only redistributes variance between dimensions
does not silently rescale beta (the paper's App. B). With `learned=True` the logits are trained
with the model ("a log-variance parametrisation": log sigma^2 = logits - logsumexp(logits) + log D).

Initialisations:
- init='pca': the standard deviations are proportional to the first D singular values s_1 >=
  ... >= s_D of the centred data matrix (as in the paper's App. B, and its public code, which
  softmaxes log s^2), i.e. logits = 2 log s and sigma_d^2 = D s_d^2 / sum_k s_k^2. They are
  computed in `prepare(data)` on a fixed subsample of the dataset (for the dSprites variants,
  which have no fixed array, a seeded sample of observations) and recorded in the settings
  (`pca_singular_values`), so the prior is rebuilt from its config without the data.
- init='given': `variances` is a list of D positive numbers; they are normalised to sum to D.
"""

import math

import gin
import numpy as np
import torch
from torch import nn

from dlbench import checks
from dlbench.data.ground_truth import fixed_or_sampled_images
from dlbench.errors import UserError
from dlbench.priors.base import Prior, log_normal_diag

INITS = ("pca", "given")
PCA_MAX_IMAGES = 10_000  # PCA uses at most this many images ...
PCA_SEED = 0             # ... chosen with this numpy seed, so the values are a function of the dataset


@gin.configurable("anisotropic_gaussian")
class AnisotropicGaussian(Prior):
    name = "anisotropic_gaussian"

    def __init__(self, latent_dim, init="pca", variances=None, learned=False, pca_singular_values=None):
        super().__init__(latent_dim)
        self.init = init
        self.learned = checks.flag("anisotropic_gaussian.learned", learned)
        self.given_variances = _check_init(init, variances, pca_singular_values, self.latent_dim)
        self.pca_singular_values = None
        # parameters in torch's default dtype, like any module's (.double() later cannot undo float32 rounding)
        logits = torch.zeros(self.latent_dim)
        if init == "given":
            logits = torch.log(torch.tensor(self.given_variances, dtype=torch.float64)).to(logits.dtype)
        if self.learned:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)
        if pca_singular_values is not None:
            self._set_singular_values(pca_singular_values)

    def settings(self):
        return {"init": self.init, "variances": self.given_variances, "learned": self.learned,
                "pca_singular_values": self.pca_singular_values}

    # --- initialisation from data --------------------------------------------------------------

    def prepare(self, data):
        """Compute the PCA initialisation from the dataset (init='pca' only). A prior rebuilt
        from a config that already holds the singular values keeps them."""
        if self.init != "pca" or self.pca_singular_values is not None:
            return
        self._set_singular_values(data_singular_values(data, self.latent_dim))

    def _set_singular_values(self, values):
        self.pca_singular_values = [float(s) for s in values]
        # std proportional to s, so logits = log s^2 (the softmax removes the scale)
        logits = 2.0 * torch.log(torch.tensor(self.pca_singular_values, dtype=torch.float64))
        with torch.no_grad():
            self.logits.copy_(logits.to(self.logits.dtype))

    def _require_ready(self):
        if self.init == "pca" and self.pca_singular_values is None:
            raise RuntimeError("anisotropic_gaussian with init='pca' is used before prepare(data) "
                               "computed its principal components")

    # --- the distribution ----------------------------------------------------------------------

    def logvar(self):
        """(D,) log-variances log(D * softmax(logits))."""
        self._require_ready()
        return torch.log_softmax(self.logits, dim=-1) + math.log(self.latent_dim)

    def variances(self):
        """(D,) variances, summing to D."""
        return self.logvar().exp()

    def log_prob(self, z):
        logvar = self.logvar()
        return log_normal_diag(z, torch.zeros_like(z), logvar.expand_as(z)).sum(-1)

    def sample(self, n, generator=None):
        std = torch.exp(0.5 * self.logvar().detach())
        return std * self._randn(n, self.latent_dim, generator=generator)

    def kl_per_dim(self, mean, logvar):
        """KL(N(mean, e^logvar) || N(0, sigma^2)) = (log sigma^2 - logvar + (e^logvar + mean^2)/sigma^2 - 1)/2."""
        prior_logvar = self.logvar()
        return 0.5 * (prior_logvar - logvar + (logvar.exp() + mean.pow(2)) * torch.exp(-prior_logvar) - 1.0)


def _check_init(init, variances, pca_singular_values, latent_dim):
    """Validate the settings; returns the given variances as a list of floats (or None)."""
    if init not in INITS:
        raise UserError(f"anisotropic_gaussian.init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "pca" and variances is not None:
        raise UserError("anisotropic_gaussian.variances is only used with init='given'; "
                        "set anisotropic_gaussian.init = 'given' or drop the variances")
    if init == "given" and pca_singular_values is not None:
        raise UserError("anisotropic_gaussian.pca_singular_values is only used with init='pca'")
    if init == "given":
        if variances is None:
            raise UserError("anisotropic_gaussian.init = 'given' needs anisotropic_gaussian.variances "
                            f"(a list of {latent_dim} positive numbers)")
        return checks.normalised_divisors("anisotropic_gaussian.variances",
                                          _positive_list(variances, latent_dim, "variances"), "the prior's variances")
    if pca_singular_values is not None:
        _positive_list(pca_singular_values, latent_dim, "pca_singular_values")
    return None


def _positive_list(values, latent_dim, setting):
    """One positive number per latent dimension (checks.numbers: not strings or bools, within float32)."""
    return checks.numbers(f"anisotropic_gaussian.{setting}", values, length=latent_dim, positive=True)


def data_singular_values(data, count):
    """pca_singular_values of the dataset, computed once per dataset object and count: the runs
    of a stack, and a study worker's runs on its one loaded dataset, would each compute the same
    values (seconds each, on a CPU thread) again."""
    computed = data.__dict__.setdefault("_pca_singular_values", {})
    if count not in computed:
        images, pixel_scale = fixed_or_sampled_images(data, PCA_MAX_IMAGES, PCA_SEED)
        computed[count] = pca_singular_values(images, pixel_scale, count)
    return computed[count]


def pca_singular_values(images, pixel_scale, count, max_images=PCA_MAX_IMAGES, seed=PCA_SEED):
    """The `count` largest singular values (descending) of the centred (n, C*H*W) matrix of at most
    `max_images` images (a fixed random subsample when there are more), pixels in [0, 1]."""
    n = len(images)
    if n > max_images:
        index = np.sort(np.random.default_rng(seed).choice(n, size=max_images, replace=False))
        images = images[index]
    x = np.asarray(images).reshape(len(images), -1).astype(np.float32) * np.float32(pixel_scale)
    x -= x.mean(axis=0)
    if count >= min(x.shape):
        raise UserError(f"PCA initialisation of {count} latent dimensions needs more than {count} images "
                        f"and pixels, the data has {x.shape[0]} images of {x.shape[1]} pixels; "
                        "use anisotropic_gaussian.init = 'given'")
    # Lanczos (ARPACK) finds the top singular values only, fast on 10,000 x 4096; a fixed start
    # vector makes it deterministic. (Imported here: scipy's import would slow every command's start.)
    from scipy.sparse.linalg import svds

    start = np.random.RandomState(seed).standard_normal(min(x.shape))
    values = np.sort(svds(x, k=count, v0=start, return_singular_vectors=False))[::-1]
    if not values[-1] > 0:
        raise UserError(f"the data has fewer than {count} principal directions with non-zero variance; "
                        "use anisotropic_gaussian.init = 'given'")
    return [float(s) for s in values]
