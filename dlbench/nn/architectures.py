"""Encoder/decoder pairs. Encoders return the mean and log-variance of q(z|x), each (B, latent_dim).

The standard pairs have no BatchNorm, so many models can be stacked:

- conv: the convolutional pair of disentanglement_lib's unsupervised study (Locatello et al.),
  for 64x64 images with C channels.
- mlp: the fully connected pair of Chen et al. (beta-TCVAE), 4096-1200-1200 encoder with ReLU,
  1200-1200-1200-4096 decoder with tanh.

The pairs of Mathieu et al. (2019), Table 1:

- dcgan (Table 1c, Fashion-MNIST): DCGAN-style convolutions for 32x32 images with C channels.
  Unlike the standard pairs it HAS BatchNorm, as in the paper, so its outputs depend on the batch
  in train mode (use model.eval() to encode or decode) and it cannot be stacked with the others.
- pinwheel (Table 1b): one hidden layer of 100 ReLU units each way, for vectors of shape (n,).

Decoder outputs. A likelihood may need several parameters per data value (the Gaussian: a mean
and a log-variance); the decoders take `params_per_value` (k, default 1) and stack the k
parameter blocks along dimension 1, the channel dimension for images: a decoder for
observations of shape (C, H, W) returns (B, k*C, H, W) with x_params[:, :C] the first parameter,
x_params[:, C:2C] the second, and so on; for vectors of shape (n,) it returns (B, k*n) laid out
the same way.
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
    def __init__(self, observation_shape, latent_dim, params_per_value=1):
        super().__init__()
        channels = observation_shape[0] * _checked_params_per_value(params_per_value)
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
    def __init__(self, observation_shape, latent_dim, params_per_value=1):
        super().__init__()
        output_shape = _decoder_output_shape(observation_shape, params_per_value)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 1200), nn.Tanh(),
            nn.Linear(1200, 1200), nn.Tanh(),
            nn.Linear(1200, 1200), nn.Tanh(),
            nn.Linear(1200, math.prod(output_shape)),
            nn.Unflatten(1, output_shape),
        )

    def forward(self, z):
        return self.net(z)


# Mathieu et al. (2019), Table 1c. BatchNorm follows all three encoder convolutions, as the table
# says (the authors' code skips it after the first). Convolutions followed by BatchNorm have no
# bias (BatchNorm's shift replaces it, as in the authors' code); the two encoder heads and the
# decoder's last layer keep theirs (the authors' last layer has none; a free per-channel offset
# matters for a log-variance output). Weights start from N(0, 0.02), the initialisation of DCGAN
# (Radford et al.), as in the authors' code.
DCGAN_INIT_STD = 0.02


def _down(in_channels, out_channels):
    """4x4 convolution, stride 2, padding 1 (halves the side), BatchNorm, LeakyReLU(0.2)."""
    return [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.2)]


def _up(in_channels, out_channels, stride=2, padding=1):
    """4x4 transposed convolution (doubles the side with stride 2, padding 1), BatchNorm, ReLU."""
    return [nn.ConvTranspose2d(in_channels, out_channels, 4, stride, padding, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU()]


def _dcgan_init(module):
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(layer.weight, 0.0, DCGAN_INIT_STD)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class DCGANEncoder(nn.Module):
    """32x32 -> 16 -> 8 -> 4 with 32, 64, 128 channels; two 4x4 convolutions (no padding) map the
    4x4x128 features to the mean and the log-variance (1x1 x latent_dim each)."""

    def __init__(self, observation_shape, latent_dim):
        super().__init__()
        _require_32x32("dcgan", observation_shape)
        self.features = nn.Sequential(*_down(observation_shape[0], 32), *_down(32, 64), *_down(64, 128))
        self.mean = nn.Conv2d(128, latent_dim, 4)
        self.logvar = nn.Conv2d(128, latent_dim, 4)
        _dcgan_init(self)

    def forward(self, x):
        h = self.features(x)
        return self.mean(h).flatten(1), self.logvar(h).flatten(1)


class DCGANDecoder(nn.Module):
    """z as a 1x1 image -> 4x4x128 -> 8x8x64 -> 16x16x32 -> 32x32 x (params_per_value * C)."""

    def __init__(self, observation_shape, latent_dim, params_per_value=1):
        super().__init__()
        _require_32x32("dcgan", observation_shape)
        channels = observation_shape[0] * _checked_params_per_value(params_per_value)
        self.net = nn.Sequential(
            nn.Unflatten(1, (latent_dim, 1, 1)),
            *_up(latent_dim, 128, stride=1, padding=0),
            *_up(128, 64),
            *_up(64, 32),
            nn.ConvTranspose2d(32, channels, 4, 2, 1),
        )
        _dcgan_init(self)

    def forward(self, z):
        return self.net(z)


# Mathieu et al. (2019), Table 1b: "FC 100 & ReLU, FC 2x2" each way. Both networks output
# log-variances as raw linear outputs (the authors' code uses a softplus standard deviation).
PINWHEEL_HIDDEN = 100


class PinwheelEncoder(GaussianEncoder):
    def __init__(self, observation_shape, latent_dim):
        size = _require_vector("pinwheel", observation_shape)
        features = nn.Sequential(nn.Linear(size, PINWHEEL_HIDDEN), nn.ReLU())
        super().__init__(features, PINWHEEL_HIDDEN, latent_dim)


class PinwheelDecoder(nn.Module):
    def __init__(self, observation_shape, latent_dim, params_per_value=1):
        super().__init__()
        size = _require_vector("pinwheel", observation_shape)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, PINWHEEL_HIDDEN), nn.ReLU(),
            nn.Linear(PINWHEEL_HIDDEN, _checked_params_per_value(params_per_value) * size),
        )

    def forward(self, z):
        return self.net(z)


ARCHITECTURES = {
    "conv": (ConvEncoder, ConvDecoder),
    "mlp": (MLPEncoder, MLPDecoder),
    "dcgan": (DCGANEncoder, DCGANDecoder),
    "pinwheel": (PinwheelEncoder, PinwheelDecoder),
}


# architectures whose outputs depend on the batch (BatchNorm): their runs cannot be trained as a
# stack, whose batched functional call has no per-run running statistics (dlbench.train.stack)
WITH_BATCH_STATISTICS = ("dcgan",)


def _architecture(name):
    if name not in ARCHITECTURES:
        raise UserError(
            f"unknown architecture '{name}' (model.architecture); available: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def build_encoder(name, observation_shape, latent_dim):
    return _architecture(name)[0](tuple(observation_shape), latent_dim)


def build_decoder(name, observation_shape, latent_dim, params_per_value=1):
    """`params_per_value`: the likelihood's parameters per data value (its params_per_value)."""
    return _architecture(name)[1](tuple(observation_shape), latent_dim, params_per_value)


def check_fits(name, observation_shape):
    """A UserError when architecture `name` cannot take observations of this shape: what its
    encoder and decoder check when built, found before any run of a study is built."""
    require = {"conv": _require_64x64, "dcgan": _require_32x32, "pinwheel": _require_vector}.get(name)
    if require is not None:
        require(name, tuple(observation_shape))


def _require_64x64(name, observation_shape):
    if tuple(observation_shape[1:]) != (64, 64):
        raise UserError(f"the {name} architecture needs 64x64 images, the dataset has "
                        f"{tuple(observation_shape)}; use model.architecture = 'mlp'")


def _require_32x32(name, observation_shape):
    if len(observation_shape) != 3 or tuple(observation_shape[1:]) != (32, 32):
        raise UserError(f"the {name} architecture needs 32x32 images (channels, 32, 32), the dataset has "
                        f"{tuple(observation_shape)}; resize the images to 32x32 or use model.architecture = "
                        f"'conv' (64x64) or 'mlp'")


def _require_vector(name, observation_shape):
    """The size n of vector observations of shape (n,)."""
    if len(observation_shape) != 1:
        raise UserError(f"the {name} architecture needs vector observations of shape (n,), the dataset has "
                        f"{tuple(observation_shape)}; use model.architecture = 'mlp' for images")
    return int(observation_shape[0])


def _checked_params_per_value(params_per_value):
    if isinstance(params_per_value, bool) or not isinstance(params_per_value, int) or params_per_value < 1:
        raise ValueError(f"params_per_value must be a positive integer, got {params_per_value!r}")
    return params_per_value


def _decoder_output_shape(observation_shape, params_per_value):
    """The k parameter blocks stacked along the first (channel) dimension."""
    first, *rest = observation_shape
    return (_checked_params_per_value(params_per_value) * first, *rest)
