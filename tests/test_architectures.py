"""The pairs of Mathieu et al. (2019), Table 1 (dcgan, pinwheel), the decoders' params_per_value
layout, and the Gaussian and Laplace likelihoods against scipy and numerical quadrature."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dlbench.errors import UserError
from dlbench.nn.architectures import (ConvDecoder, DCGANDecoder, DCGANEncoder, MLPDecoder, PinwheelDecoder,
                                      PinwheelEncoder, build_decoder, build_encoder)
from dlbench.nn.likelihoods import Bernoulli, Gaussian, Laplace, get_likelihood


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def output_shapes(module, x, kinds):
    """The per-example shape after each layer of one of the given kinds."""
    shapes = []
    for layer in module:
        x = layer(x)
        if isinstance(layer, kinds):
            shapes.append(tuple(x.shape[1:]))
    return shapes


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


# ---------------------------------------------------------------------------------------- dcgan

@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("latent_dim", [2, 10, 50])
def test_dcgan_shapes(channels, latent_dim):
    torch.manual_seed(0)
    encoder = build_encoder("dcgan", (channels, 32, 32), latent_dim)
    decoder = build_decoder("dcgan", (channels, 32, 32), latent_dim)
    x = torch.rand(4, channels, 32, 32)
    assert output_shapes(encoder.features, x, torch.nn.Conv2d) == [(32, 16, 16), (64, 8, 8), (128, 4, 4)]
    mean, logvar = encoder(x)
    assert mean.shape == logvar.shape == (4, latent_dim)
    z = torch.randn(4, latent_dim)
    assert output_shapes(decoder.net, z, torch.nn.ConvTranspose2d) == [
        (128, 4, 4), (64, 8, 8), (32, 16, 16), (channels, 32, 32)]
    assert decoder(z).shape == (4, channels, 32, 32)
    assert DCGANDecoder((channels, 32, 32), latent_dim, params_per_value=2)(z).shape == (4, 2 * channels, 32, 32)


def test_dcgan_layers_are_table_1c():
    encoder, decoder = DCGANEncoder((1, 32, 32), 50), DCGANDecoder((1, 32, 32), 50)
    convs = [m for m in encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size, m.stride, m.padding) for m in convs] == [
        (32, (4, 4), (2, 2), (1, 1)), (64, (4, 4), (2, 2), (1, 1)), (128, (4, 4), (2, 2), (1, 1))]
    assert [type(m).__name__ for m in encoder.features] == ["Conv2d", "BatchNorm2d", "LeakyReLU"] * 3
    assert all(m.negative_slope == 0.2 for m in encoder.features if isinstance(m, torch.nn.LeakyReLU))
    for head in (encoder.mean, encoder.logvar):
        assert (head.in_channels, head.out_channels, head.kernel_size, head.padding) == (128, 50, (4, 4), (0, 0))
    upconvs = [m for m in decoder.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.out_channels, m.kernel_size, m.stride, m.padding) for m in upconvs] == [
        (128, (4, 4), (1, 1), (0, 0)), (64, (4, 4), (2, 2), (1, 1)), (32, (4, 4), (2, 2), (1, 1)),
        (1, (4, 4), (2, 2), (1, 1))]
    assert [type(m).__name__ for m in decoder.net][1:] == ["ConvTranspose2d", "BatchNorm2d", "ReLU"] * 3 + [
        "ConvTranspose2d"]
    # No bias where BatchNorm follows; the heads and the last layer keep theirs.
    assert all(m.bias is None for m in convs + upconvs[:3])
    assert encoder.mean.bias is not None and encoder.logvar.bias is not None and upconvs[3].bias is not None


@pytest.mark.parametrize("shape", [(1, 64, 64), (1, 28, 28), (3, 32, 16), (2,), (32, 32)])
def test_dcgan_needs_32x32_images(shape):
    for build in (build_encoder, build_decoder):
        with pytest.raises(UserError, match="needs 32x32 images.*resize"):
            build("dcgan", shape, 10)


# ------------------------------------------------------------------------------------- pinwheel

@pytest.mark.parametrize("n", [2, 5])
def test_pinwheel_shapes_and_layers(n):
    torch.manual_seed(0)
    encoder = build_encoder("pinwheel", (n,), 2)
    mean, logvar = encoder(torch.randn(7, n))
    assert mean.shape == logvar.shape == (7, 2)
    linear = [m for m in encoder.features if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(n, 100)]
    assert (encoder.mean.in_features, encoder.mean.out_features) == (100, 2)
    assert (encoder.logvar.in_features, encoder.logvar.out_features) == (100, 2)
    z = torch.randn(7, 2)
    assert build_decoder("pinwheel", (n,), 2)(z).shape == (7, n)
    decoder = build_decoder("pinwheel", (n,), 2, params_per_value=2)
    assert [(m.in_features, m.out_features) for m in decoder.net if isinstance(m, torch.nn.Linear)] == [
        (2, 100), (100, 2 * n)]
    assert [type(m).__name__ for m in decoder.net] == ["Linear", "ReLU", "Linear"]
    assert decoder(z).shape == (7, 2 * n)


@pytest.mark.parametrize("shape", [(1, 64, 64), (2, 2)])
def test_pinwheel_needs_vectors(shape):
    for build in (build_encoder, build_decoder):
        with pytest.raises(UserError, match=r"needs vector observations of shape \(n,\)"):
            build("pinwheel", shape, 2)


# ----------------------------------------------------------------------- params_per_value layout

def test_conv_and_mlp_decoders_stack_parameters_along_channels():
    z = torch.randn(2, 4)
    assert ConvDecoder((3, 64, 64), 4, params_per_value=2)(z).shape == (2, 6, 64, 64)
    assert MLPDecoder((1, 64, 64), 4, params_per_value=2)(z).shape == (2, 2, 64, 64)
    assert MLPDecoder((5,), 4, params_per_value=2)(z).shape == (2, 10)
    # The default is one parameter per value, with the same layers (and checkpoints) as before.
    for name, shape in [("conv", (3, 64, 64)), ("mlp", (1, 64, 64)), ("dcgan", (1, 32, 32)), ("pinwheel", (2,))]:
        default = build_decoder(name, shape, 4).state_dict()
        explicit = build_decoder(name, shape, 4, params_per_value=1).state_dict()
        assert {k: v.shape for k, v in default.items()} == {k: v.shape for k, v in explicit.items()}
        assert build_decoder(name, shape, 4)(z).shape == (2, *shape)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_params_per_value_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="positive integer"):
        PinwheelDecoder((2,), 2, params_per_value=bad)


def test_decoders_built_with_the_likelihoods_count_feed_the_likelihood():
    torch.manual_seed(0)
    for name, shape in [("dcgan", (3, 32, 32)), ("pinwheel", (2,)), ("mlp", (4,))]:
        for likelihood in (Gaussian, Laplace):
            decoder = build_decoder(name, shape, 3, params_per_value=likelihood.params_per_value).eval()
            x_params = decoder(torch.randn(5, 3))
            x = torch.rand(5, *shape)
            assert likelihood.log_prob(x_params, x).shape == (5,)
            assert likelihood.mean(x_params).shape == x.shape


# ---------------------------------------------------------------------------------- likelihoods

def test_registry_and_params_per_value():
    assert get_likelihood("gaussian") is Gaussian and get_likelihood("laplace") is Laplace
    assert (Bernoulli.params_per_value, Gaussian.params_per_value, Laplace.params_per_value) == (1, 2, 1)
    assert Laplace.scale == 0.1


@pytest.mark.parametrize("data_shape", [(3, 2, 4, 5), (6, 3)])
def test_gaussian_log_prob_matches_scipy_and_torch(data_shape):
    rs = np.random.RandomState(0)
    mean, logvar, x = rs.randn(*data_shape), rs.uniform(-3, 2, data_shape), rs.randn(*data_shape)
    x_params = np.concatenate([mean, logvar], axis=1)  # the documented layout: mean first, along dim 1
    got = Gaussian.log_prob(t(x_params), t(x)).numpy()
    expected = stats.norm.logpdf(x, mean, np.exp(0.5 * logvar)).reshape(len(x), -1).sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    normal = torch.distributions.Normal(t(mean), torch.exp(0.5 * t(logvar)))
    np.testing.assert_allclose(got, normal.log_prob(t(x)).flatten(1).sum(1).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(Gaussian.mean(t(x_params)).numpy(), mean)


@pytest.mark.parametrize("data_shape", [(3, 2, 4, 5), (6, 3)])
def test_laplace_log_prob_matches_scipy_and_torch(data_shape):
    rs = np.random.RandomState(1)
    loc, x = rs.rand(*data_shape), rs.rand(*data_shape)
    got = Laplace.log_prob(t(loc), t(x)).numpy()
    expected = stats.laplace.logpdf(x, loc, 0.1).reshape(len(x), -1).sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    laplace = torch.distributions.Laplace(t(loc), 0.1)
    np.testing.assert_allclose(got, laplace.log_prob(t(x)).flatten(1).sum(1).numpy(), rtol=1e-12)
    np.testing.assert_array_equal(Laplace.mean(t(loc)).numpy(), loc)


def test_laplace_scale_is_the_class_attribute():
    class WideLaplace(Laplace):
        scale = 0.5

    rs = np.random.RandomState(2)
    loc, x = rs.rand(4, 3), rs.rand(4, 3)
    np.testing.assert_allclose(WideLaplace.log_prob(t(loc), t(x)).numpy(),
                               stats.laplace.logpdf(x, loc, 0.5).sum(1), rtol=1e-12)


@pytest.mark.parametrize("likelihood, x_params, spread", [
    (Gaussian, [[0.3, np.log(0.2 ** 2)]], 0.2), (Laplace, [[0.3]], Laplace.scale)])
def test_mean_is_the_expectation_of_the_density(likelihood, x_params, spread):
    """Quadrature of exp(log_prob) over one value: the density integrates to 1 and its first
    moment is mean(x_params)."""
    params = t(x_params)

    def density(value):
        return float(torch.exp(likelihood.log_prob(params, t([[value]]))))

    centre, limit = 0.3, 40 * spread
    mass = integrate.quad(density, centre - limit, centre + limit, points=[centre], limit=200)[0]
    first_moment = integrate.quad(lambda v: v * density(v), centre - limit, centre + limit, points=[centre],
                                  limit=200)[0]
    assert mass == pytest.approx(1.0, abs=1e-8)
    assert first_moment == pytest.approx(float(likelihood.mean(params)), abs=1e-8)


def test_gaussian_needs_a_decoder_with_two_parameters_per_value():
    x = torch.rand(2, 1, 32, 32)
    with pytest.raises(UserError, match="params_per_value=2"):
        Gaussian.log_prob(DCGANDecoder((1, 32, 32), 4)(torch.randn(2, 4)), x)
    with pytest.raises(UserError, match="params_per_value=2"):
        Gaussian.log_prob(torch.zeros(2, 2, 8, 8), torch.zeros(2, 2, 8, 8))  # one parameter per channel of 2
    with pytest.raises(UserError, match="params_per_value=2"):
        Gaussian.mean(torch.zeros(2, 3))


def test_laplace_refuses_mismatched_shapes():
    with pytest.raises(UserError, match="params_per_value=1"):
        Laplace.log_prob(torch.zeros(2, 2, 8, 8), torch.zeros(2, 1, 8, 8))


# -------------------------------------------------------------------------------- trainability


def reconstruction_run(encoder, decoder, likelihood, x, steps, lr):
    """Adam on -log p(x | z = encoder mean); returns the losses (nats per example) and the mean
    absolute error of mean() before and after."""
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=lr)
    losses, errors = [], []
    for _ in range(steps):
        x_params = decoder(encoder(x)[0])
        loss = -likelihood.log_prob(x_params, x).mean()
        errors.append(float((likelihood.mean(x_params.detach()) - x).abs().mean()))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses, errors


def smooth_images(n, seed):
    """Gaussian blobs at random places on 32x32: structured data an autoencoder can compress."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g) * 20 + 6
    grid = torch.arange(32.0)
    dy = (grid[None, :] - centres[:, :1]) ** 2
    dx = (grid[None, :] - centres[:, 1:]) ** 2
    return torch.exp(-(dy[:, :, None] + dx[:, None, :]) / 18.0)[:, None]


def test_a_dcgan_pair_reduces_a_laplace_reconstruction_loss():
    torch.manual_seed(0)
    x = smooth_images(8, seed=0)
    losses, errors = reconstruction_run(DCGANEncoder((1, 32, 32), 8), DCGANDecoder((1, 32, 32), 8), Laplace, x,
                                        steps=30, lr=2e-3)
    assert np.isfinite(losses).all()
    assert errors[-1] < 0.5 * errors[0]
    assert losses[-1] < losses[0] - 10.0 * 0.5 * 1024 * errors[0]  # half the initial |error| / b, in nats


def test_a_pinwheel_pair_reduces_a_gaussian_reconstruction_loss():
    torch.manual_seed(0)
    rs = np.random.RandomState(0)
    # Four noisy spiral arms, as in pinwheel data.
    radius = rs.uniform(0.3, 1.5, 64)
    angle = np.repeat(np.arange(4) * np.pi / 2, 16) + 0.8 * radius
    x = torch.tensor(np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1), dtype=torch.float32)
    losses, errors = reconstruction_run(PinwheelEncoder((2,), 2), PinwheelDecoder((2,), 2, params_per_value=2),
                                        Gaussian, x, steps=60, lr=1e-2)
    assert np.isfinite(losses).all()
    assert errors[-1] < 0.5 * errors[0]
    assert losses[-1] < losses[0] - 1.0


# --------------------------------------------------------------------------------- BatchNorm

def test_dcgan_in_eval_mode_is_per_example_and_deterministic():
    torch.manual_seed(0)
    encoder, decoder = DCGANEncoder((1, 32, 32), 6), DCGANDecoder((1, 32, 32), 6)
    x = torch.rand(8, 1, 32, 32)
    with torch.no_grad():
        for _ in range(3):  # train-mode passes move the running statistics away from (0, 1)
            decoder(encoder(x * 2)[0])
        train_whole, train_part = encoder(x)[0], encoder(x[:3])[0]
        encoder.eval(), decoder.eval()
        running_mean = encoder.features[1].running_mean.clone()
        whole = encoder(x)
        part = encoder(x[:3])
        shuffled = encoder(x[torch.tensor([5, 2, 7, 0, 1])])
        again = encoder(x)
        z = torch.randn(8, 6)
        decoded, decoded_part = decoder(z), decoder(z[4:6])
    # In train mode BatchNorm mixes the batch: the same images encode differently in another batch.
    assert not torch.allclose(train_whole[:3], train_part, atol=1e-3)
    for a, b in zip(whole, part):
        torch.testing.assert_close(a[:3], b, rtol=1e-4, atol=1e-5)
    for a, b in zip(whole, shuffled):
        torch.testing.assert_close(a[torch.tensor([5, 2, 7, 0, 1])], b, rtol=1e-4, atol=1e-5)
    for a, b in zip(whole, again):
        assert torch.equal(a, b)
    torch.testing.assert_close(decoded[4:6], decoded_part, rtol=1e-4, atol=1e-5)
    assert torch.equal(encoder.features[1].running_mean, running_mean)  # eval does not update them
