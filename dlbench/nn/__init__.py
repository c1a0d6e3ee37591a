"""Architectures (encoders giving mean and log-variance, decoders giving likelihood
parameters), likelihoods, and the VAE that joins them."""

from dlbench.nn.architectures import ARCHITECTURES, build_decoder, build_encoder
from dlbench.nn.likelihoods import LIKELIHOODS, get_likelihood
from dlbench.nn.vae import VAE, VAEOutputs, build_vae

__all__ = [
    "ARCHITECTURES", "LIKELIHOODS", "VAE", "VAEOutputs", "build_decoder", "build_encoder",
    "build_vae", "get_likelihood",
]
