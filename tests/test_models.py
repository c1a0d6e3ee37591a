"""Architectures, the Bernoulli likelihood and the beta-VAE objective against closed forms."""

import math

import numpy as np
import pytest
import torch

from dlbench.methods import BetaVAE, beta_vae_objective
from dlbench.nn import VAE
from dlbench.nn.likelihoods import Bernoulli
from tests.fake_outputs import fake_outputs


def conv_shapes(module, x):
    shapes = []
    for layer in module:
        x = layer(x)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            shapes.append(tuple(x.shape[1:]))
    return shapes


def test_conv_architecture_matches_disentanglement_lib():
    vae = VAE("conv", (3, 64, 64), 10, "bernoulli")
    assert conv_shapes(vae.encoder.features, torch.zeros(2, 3, 64, 64)) == [
        (32, 32, 32), (32, 16, 16), (64, 8, 8), (64, 4, 4), (256,)]
    kernels = [(m.kernel_size, m.stride) for m in vae.encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert kernels == [((4, 4), (2, 2)), ((4, 4), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2))]
    assert conv_shapes(vae.decoder.net, torch.zeros(2, 10)) == [
        (256,), (1024,), (64, 8, 8), (32, 16, 16), (32, 32, 32), (3, 64, 64)]
    mean, logvar = vae.encode(torch.zeros(2, 3, 64, 64))
    assert mean.shape == logvar.shape == (2, 10)


def test_mlp_architecture_matches_chen_et_al():
    vae = VAE("mlp", (1, 64, 64), 10, "bernoulli")
    linear = [m for m in vae.encoder.features if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(4096, 1200), (1200, 1200)]
    dec = [m for m in vae.decoder.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in dec] == [(10, 1200), (1200, 1200), (1200, 1200), (1200, 4096)]
    assert sum(isinstance(m, torch.nn.Tanh) for m in vae.decoder.net) == 3
    assert vae.decode(torch.zeros(3, 10)).shape == (3, 1, 64, 64)


def test_bernoulli_log_prob_is_the_sum_over_pixels_of_the_closed_form():
    rng = np.random.RandomState(0)
    logits = rng.randn(4, 1, 8, 8)
    x = (rng.rand(4, 1, 8, 8) < 0.3).astype(np.float64)
    p = 1 / (1 + np.exp(-logits))
    expected = (x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(4, -1).sum(1)
    got = Bernoulli.log_prob(torch.tensor(logits), torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_beta_vae_kl_equals_the_gaussian_closed_form():
    torch.manual_seed(0)
    mean, logvar = torch.randn(32, 5, dtype=torch.float64), torch.randn(32, 5, dtype=torch.float64)
    log_px = -torch.rand(32, dtype=torch.float64) * 100
    loss, s = beta_vae_objective(fake_outputs(mean, logvar, log_px=log_px), beta=3.0)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    # summed over latents, averaged over the batch (disentanglement_lib's convention)
    torch.testing.assert_close(s["kl"], kl.sum(1).mean())
    for d in range(5):
        torch.testing.assert_close(s[f"kl_{d}"], kl[:, d].mean())
    torch.testing.assert_close(s["reconstruction"], -log_px.mean())
    torch.testing.assert_close(loss, -log_px.mean() + 3.0 * kl.sum(1).mean())
    torch.testing.assert_close(s["elbo"], (log_px - kl.sum(1)).mean())


def test_beta_vae_kl_is_zero_at_the_prior():
    out = fake_outputs(torch.zeros(8, 3), torch.zeros(8, 3), log_px=torch.full((8,), -5.0))
    loss, s = beta_vae_objective(out, beta=10.0)
    assert float(s["kl"]) == 0.0 and float(loss) == 5.0


def test_beta_vae_objective_takes_tensor_hyperparameters():
    torch.manual_seed(1)
    out = fake_outputs(torch.randn(8, 3), torch.randn(8, 3), log_px=-torch.rand(8))
    betas = torch.tensor([1.0, 4.0, 16.0])
    losses, _ = beta_vae_objective(out, betas)
    singles = torch.stack([beta_vae_objective(out, float(b))[0] for b in betas])
    torch.testing.assert_close(losses, singles)


def test_beta_vae_reports_its_hyperparameters():
    assert BetaVAE(beta=6).hyperparameters() == {"beta": 6.0}


def test_vae_log_px_with_a_constant_decoder_equals_the_closed_form():
    """Zero decoder weights make p(x|z) independent of z: log p(x|z) = sum x log s(b) + (1-x) log(1-s(b))."""
    vae = VAE("conv", (1, 64, 64), 4, "bernoulli")
    with torch.no_grad():
        for p in vae.decoder.parameters():
            p.zero_()
        vae.decoder.net[-1].bias.fill_(-1.5)
    x = (torch.rand(5, 1, 64, 64, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    out = vae(x, torch.Generator().manual_seed(1))
    s = 1 / (1 + math.exp(1.5))
    ones = x.flatten(1).sum(1).double()
    expected = ones * math.log(s) + (4096 - ones) * math.log(1 - s)
    torch.testing.assert_close(out.log_px.double(), expected, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("bad", [("arch", "conv9"), ("like", "poisson")])
def test_unknown_architecture_or_likelihood_is_a_user_error(bad):
    from dlbench.errors import UserError

    kind, name = bad
    with pytest.raises(UserError, match=name):
        VAE(name if kind == "arch" else "conv", (1, 64, 64), 4, name if kind == "like" else "bernoulli")
