"""VAEOutputs built by hand, to test objectives on chosen posteriors without a network."""

import torch

from dlbench.nn import VAEOutputs
from dlbench.priors import IsotropicGaussian


def fake_outputs(mean, logvar, z=None, log_px=None, prior=None):
    """Outputs of a pass with these posteriors; z defaults to zeros, log p(x|z) to zeros, the
    prior to the standard normal (in mean's dtype)."""
    z = torch.zeros_like(mean) if z is None else z
    log_px = torch.zeros(mean.shape[0], dtype=mean.dtype) if log_px is None else log_px
    prior = IsotropicGaussian(mean.shape[-1]).to(mean.dtype) if prior is None else prior
    return VAEOutputs(x=None, mean=mean, logvar=logvar, z=z, x_params=None, log_px=log_px, prior=prior)
