"""Observation likelihoods p(x|z): each maps decoder outputs and data to log p(x|z) per example,
summed over all values of the example (pixels, or vector entries) (nats).

Interface (static): `log_prob(x_params, x)` -> (B,), `mean(x_params)` -> the mean in data space,
and `params_per_value`: how many decoder outputs each data value needs. The decoder is built with
that count (build_decoder(..., params_per_value=likelihood.params_per_value)) and stacks the
parameter blocks along dimension 1: for data x of shape (B, C, ...) the decoder output has shape
(B, params_per_value * C, ...), with x_params[:, :C] the first parameter, x_params[:, C:2C] the
second.
"""

import math

import torch
import torch.nn.functional as F

from dlbench.errors import UserError


class Bernoulli:
    """Pixels are independent Bernoulli variables; the decoder outputs logits.

    Targets may be grey levels in [0, 1] (the cross-entropy form, as disentanglement_lib uses).
    """

    name = "bernoulli"
    params_per_value = 1

    @staticmethod
    def log_prob(logits, x):
        per_pixel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return per_pixel.flatten(start_dim=-3).sum(-1)

    @staticmethod
    def mean(logits):
        return torch.sigmoid(logits)


class Gaussian:
    """Values are independent Gaussians N(x; mean, exp(logvar)); the decoder outputs both.

    Layout (params_per_value = 2): for data of shape (B, C, ...) the decoder output is
    (B, 2C, ...), the mean in channels [:C] and the log-variance in channels [C:]; for vectors of
    shape (B, n) it is (B, 2n), the mean in [:, :n] and the log-variance in [:, n:].
    """

    name = "gaussian"
    params_per_value = 2

    @staticmethod
    def log_prob(x_params, x):
        mean, logvar = Gaussian.split(x_params)
        _require_same_shape("gaussian", mean, x)
        per_value = -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))
        return _sum_per_example(per_value)

    @staticmethod
    def mean(x_params):
        return Gaussian.split(x_params)[0]

    @staticmethod
    def split(x_params):
        """The mean and the log-variance halves of a decoder output."""
        if x_params.shape[1] % 2:
            raise UserError(f"the gaussian likelihood needs a mean and a log-variance per value, but the decoder "
                            f"output {tuple(x_params.shape)} has an odd size {x_params.shape[1]} along dimension 1; "
                            f"build the decoder with params_per_value=2")
        return x_params.chunk(2, dim=1)


class UnitGaussian:
    """Values are independent Gaussians with the decoder output as mean and unit variance:
    log p(x|z) = sum over values of -0.5 (log 2 pi + (x - mean)^2).

    Sikka et al.'s linear-Gaussian model fixes the decoder's noise at sigma_y^2 = 1, the noise of
    the data. With a learned variance and continuous data the beta-VAE objective has no maximum for
    beta < 1 (coding one value ever more precisely gains (1 - beta) nats per nat of KL), so its
    optimum in beta, which the paper's propositions are about, exists only with a fixed variance.
    """

    name = "gaussian_unit"
    params_per_value = 1

    @staticmethod
    def log_prob(x_params, x):
        _require_same_shape("gaussian_unit", x_params, x)
        return _sum_per_example(-0.5 * (LOG_2PI + (x - x_params) ** 2))

    @staticmethod
    def mean(x_params):
        return x_params


class Laplace:
    """Values are independent Laplace variables with the decoder output as location and a fixed
    scale: log p(x|z) = sum over values of -log(2 b) - |x - mean| / b.

    Mathieu et al. (2019) use [0, 1]-normalised Fashion-MNIST images "as targets for the mean of a
    Laplace distribution with fixed scaling of 0.1": `scale` (b) is that 0.1, a class attribute
    (a subclass may set another). The decoder output is the mean itself (no sigmoid, as in the
    authors' code), so it may leave [0, 1].
    """

    name = "laplace"
    params_per_value = 1
    scale = 0.1

    @classmethod
    def log_prob(cls, x_params, x):
        _require_same_shape("laplace", x_params, x)
        per_value = -math.log(2 * cls.scale) - (x - x_params).abs() / cls.scale
        return _sum_per_example(per_value)

    @staticmethod
    def mean(x_params):
        return x_params


LOG_2PI = math.log(2 * math.pi)

LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian, "gaussian_unit": UnitGaussian, "laplace": Laplace}


def get_likelihood(name, observation_shape=None):
    """The likelihood class of that name; given the observations' shape, one that can score them:
    Bernoulli's are pixel values in [0, 1], of images (C, H, W). Real-valued vectors (pinwheel,
    linear_gaussian) had ended training in an IndexError."""
    if name == Bernoulli.name and observation_shape is not None and len(observation_shape) != 3:
        raise UserError(f"the bernoulli likelihood (model.likelihood) is for images of values in [0, 1]; these "
                        f"observations are vectors of shape {tuple(observation_shape)}: use model.likelihood = "
                        f"'gaussian'")
    if name not in LIKELIHOODS:
        raise UserError(
            f"unknown likelihood '{name}' (model.likelihood); available: {', '.join(sorted(LIKELIHOODS))}")
    return LIKELIHOODS[name]


def _sum_per_example(per_value):
    return per_value.flatten(start_dim=1).sum(-1)


def _require_same_shape(name, params, x):
    """Decoder output and data must match value for value (no silent broadcasting)."""
    if params.shape != x.shape:
        needed = LIKELIHOODS[name].params_per_value
        raise UserError(f"the {name} likelihood got decoder parameters of shape {tuple(params.shape)} for data of "
                        f"shape {tuple(x.shape)}; build the decoder with params_per_value={needed} for this likelihood")
