"""A VAE with a diagonal Gaussian encoder: encoder, decoder and likelihood joined."""

from dataclasses import dataclass

import torch
from torch import nn

from dlbench.nn.architectures import build_decoder, build_encoder
from dlbench.nn.likelihoods import get_likelihood
from dlbench.priors import DEFAULT_PRIOR, Prior, build_prior


@dataclass
class VAEOutputs:
    """What a method's objective sees of one forward pass (batch dimension first)."""

    x: torch.Tensor        # the batch, float in [0, 1]
    mean: torch.Tensor     # (B, D) encoder mean
    logvar: torch.Tensor   # (B, D) encoder log-variance
    z: torch.Tensor        # (B, D) one reparameterised sample from q(z|x)
    x_params: torch.Tensor  # decoder output at z (logits for Bernoulli)
    log_px: torch.Tensor   # (B,) log p(x|z), summed over pixels
    prior: Prior           # the model's p(z) (its parameters may be learned)


class VAE(nn.Module):
    """`prior` is a Prior module or its config() dict; None gives the standard normal."""

    def __init__(self, architecture, observation_shape, latent_dim, likelihood, prior=None):
        super().__init__()
        self._config = {
            "architecture": architecture, "observation_shape": list(observation_shape),
            "latent_dim": int(latent_dim), "likelihood": likelihood,
        }
        self.likelihood = get_likelihood(likelihood, observation_shape)
        self.encoder = build_encoder(architecture, observation_shape, latent_dim)
        self.decoder = build_decoder(architecture, observation_shape, latent_dim, self.likelihood.params_per_value)
        if not isinstance(prior, Prior):
            prior = build_prior(prior or {"name": DEFAULT_PRIOR}, latent_dim)
        if prior.latent_dim != int(latent_dim):
            raise ValueError(f"the prior has {prior.latent_dim} dimensions, the model {latent_dim}")
        self.prior = prior

    @property
    def config(self):
        """What rebuilds this model before its state_dict is loaded (stored in checkpoints)."""
        return {**self._config, "prior": self.prior.config()}

    def encode(self, x):
        return self.encoder(x)

    def decode(self, z):
        return self.decoder(z)

    def sample_z(self, mean, logvar, generator=None, eps=None):
        """The reparameterised sample mean + std * eps, eps standard normal from `generator`, or
        the given eps (drawn beforehand, as runs trained together do: dlbench.train.stack)."""
        if eps is None:
            eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps

    def forward(self, x, generator=None, eps=None):
        mean, logvar = self.encode(x)
        z = self.sample_z(mean, logvar, generator, eps)
        x_params = self.decode(z)
        return VAEOutputs(x=x, mean=mean, logvar=logvar, z=z, x_params=x_params,
                          log_px=self.likelihood.log_prob(x_params, x), prior=self.prior)


def build_vae(config):
    """Rebuild a VAE from its `config` dict (as stored in checkpoints)."""
    return VAE(config["architecture"], config["observation_shape"], config["latent_dim"], config["likelihood"],
               config.get("prior"))
