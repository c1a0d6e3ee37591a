"""The standard encoder/decoder pairs. No BatchNorm, so many models can be stacked.

- conv: the convolutional pair of disentanglement_lib's unsupervised study (Locatello et al.),
  for 64x64 images with C channels.
- mlp: the fully connected pair of Chen et al. (beta-TCVAE), 4096-1200-1200 encoder with ReLU,
  1200-1200-1200-4096 decoder with tanh.
"""

import math

from torch import nn

from dlbench.errors import UserError


class GaussianEncoder(nn.Module):
    """A feature network followed by two linear heads: the mean and log-variance of q(z|x)."""

    def __init__(self, features, feature_dim, latent_dim):
        super().__init__()
        self.features = features
        self.mean = nn.Linear(feature_dim, latent_dim)
        self.logvar = nn.Linear(feature_dim, latent_dim)

    def forward(self, x):
        h = self.features(x)
        return self.mean(h), self.logvar(h)


class ConvEncoder(GaussianEncoder):
    def __init__(self, observation_shape, latent_dim):
        channels = observation_shape[0]
        _require_64x64("conv", observation_shape)
        # "same" padding of the TF original: k4 s2 needs padding 1, k2 s2 needs none.
        features = nn.Sequential(
            nn.Conv2d(channels, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 2, 2), nn.ReLU(),
            nn.Conv2d(64, 64, 2, 2), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 4 * 64, 256), nn.ReLU(),
        )
        super().__init__(features, 256, latent_dim)


class ConvDecoder(nn.Module):
    def __init__(self, observation_shape, latent_dim):
        super().__init__()
        channels = observation_shape[0]
        _require_64x64("conv", observation_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(),
            nn.Linear(256, 1024), nn.ReLU(),
            nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 4, 2, 1),
        )

    def forward(self, z):
        return self.net(z)


class MLPEncoder(GaussianEncoder):
    def __init__(self, observation_shape, latent_dim):
        size = math.prod(observation_shape)
        features = nn.Sequential(
            nn.Flatten(), nn.Linear(size, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(),
        )
        super().__init__(features, 1200, latent_dim)


class MLPDecoder(nn.Module):
    def __init__(self, observation_shape, latent_dim):
        super().__init__()
        size = math.prod(observation_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 1200), nn.Tanh(),
            nn.Linear(1200, 1200), nn.Tanh(),
            nn.Linear(1200, 1200), nn.Tanh(),
            nn.Linear(1200, size),
            nn.Unflatten(1, tuple(observation_shape)),
        )

    def forward(self, z):
        return self.net(z)


ARCHITECTURES = {"conv": (ConvEncoder, ConvDecoder), "mlp": (MLPEncoder, MLPDecoder)}


def _architecture(name):
    if name not in ARCHITECTURES:
        raise UserError(
            f"unknown architecture '{name}' (model.architecture); available: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def build_encoder(name, observation_shape, latent_dim):
    return _architecture(name)[0](tuple(observation_shape), latent_dim)


def build_decoder(name, observation_shape, latent_dim):
    return _architecture(name)[1](tuple(observation_shape), latent_dim)


def _require_64x64(name, observation_shape):
    if tuple(observation_shape[1:]) != (64, 64):
        raise UserError(f"the {name} architecture needs 64x64 images, the dataset has "
                        f"{tuple(observation_shape)}; use model.architecture = 'mlp'")
