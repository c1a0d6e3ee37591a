"""Estimators shared by several methods."""

import torch


def kl_to_standard_normal(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, 1)) per latent dimension, in closed form."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def batch_mean(values):
    """Mean over the batch dimension (the one before the last for per-dimension values)."""
    return values.mean(dim=0)


def elbo_terms(outputs):
    """Reconstruction loss (-log p(x|z), batch mean) and KL per latent dimension (batch mean)."""
    reconstruction = -batch_mean(outputs.log_px)
    kl_per_dim = batch_mean(kl_to_standard_normal(outputs.mean, outputs.logvar))
    return reconstruction, kl_per_dim


def named_per_dim(prefix, values):
    """{'prefix_0': v0, 'prefix_1': v1, ...} for a 1-D tensor of per-dimension values."""
    return {f"{prefix}_{i}": v for i, v in enumerate(values.unbind(-1))}
