"""Batched layers: the other way to compute K stacked runs' forward pass, kept for one measurement.

A stack (dlbench.train.stack) computes its K runs with torch.func.vmap over one run's functional
call. The other way is to write the stacked network directly: a convolution of K runs is one
grouped convolution (the runs' channels side by side, groups = K) and a linear layer of K runs
one baddbmm. Issue 15 asks to measure both on a GPU and to keep the faster one. This module is
the second, for the beta-VAE of the conv and mlp pairs: `dlb_bench layers` times it against the
stack's own vmap step on the same inputs, and tests/test_batched_layers.py checks that both
compute the same losses and gradients. Training does not use it; whichever way loses on a GPU is
to be removed.

Layouts: a stack's batch is (K, B, ...). Between grouped convolutions the activations stay in the
layout those take, (B, K*C, H, W), run k's channels at [k*C, (k+1)*C), and return to (K, B, ...)
where a flatten or the network's end needs them.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import vmap

from dlbench.methods.beta_vae import beta_vae_objective
from dlbench.nn.vae import VAEOutputs

ARCHITECTURES = ("conv", "mlp")
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.LeakyReLU)


def batched_problem(spec):
    """Why a run's stack cannot be computed with batched layers here (a sentence), or None."""
    if spec.method.name != "beta_vae":
        return f"batched layers are written for beta_vae only, not {spec.method.name}"
    if spec.model["architecture"] not in ARCHITECTURES:
        return f"batched layers are written for the {' and '.join(ARCHITECTURES)} pairs only"
    return None


def batched_losses(model, params, x, eps, beta):
    """(K,) beta-VAE losses of K runs of `model`'s architecture whose parameters are `params`
    (stacked along a leading K, named as model.named_parameters() names them) on their batches
    x (K, B, ...) with encoder noise eps (K, B, D) and betas (K,): each the loss that
    BetaVAE.objective gives for that run alone."""
    h = batched_sequential(model.encoder.features, params, "encoder.features", x)
    mean = batched_linear(params["encoder.mean.weight"], params["encoder.mean.bias"], h)
    logvar = batched_linear(params["encoder.logvar.weight"], params["encoder.logvar.bias"], h)
    z = model.sample_z(mean, logvar, eps=eps)
    x_params = batched_sequential(model.decoder.net, params, "decoder.net", z)

    def one_run_loss(x, mean, logvar, z, x_params, beta):
        # the objective is elementwise work: vmapped, it is one run's own code
        outputs = VAEOutputs(x=x, mean=mean, logvar=logvar, z=z, x_params=x_params,
                             log_px=model.likelihood.log_prob(x_params, x), prior=model.prior)
        return beta_vae_objective(outputs, beta)[0]

    return vmap(one_run_loss)(x, mean, logvar, z, x_params, beta)


def batched_sequential(layers, params, prefix, h):
    """h (K, B, ...) through an nn.Sequential of the stackable pairs' layers, every layer applied
    to the K runs at once with run k's own parameters (params[f'{prefix}.{index}.weight'][k])."""
    k = h.shape[0]
    grouped = False  # whether h is in the grouped convolutions' layout (B, K*C, H, W)
    for index, layer in enumerate(layers):
        weight, bias = params.get(f"{prefix}.{index}.weight"), params.get(f"{prefix}.{index}.bias")
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            if not grouped:
                h, grouped = _to_grouped(h), True
            h = _grouped_convolution(layer, weight, bias, h)
        elif isinstance(layer, nn.Linear):
            h = batched_linear(weight, bias, h)
        elif isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) == (1, -1):
            if grouped:
                h, grouped = _to_stacked(h, k), False
            h = h.flatten(2)
        elif isinstance(layer, nn.Unflatten) and layer.dim == 1:
            h = h.unflatten(2, layer.unflattened_size)
        elif isinstance(layer, ELEMENTWISE):
            h = layer(h)
        else:
            raise ValueError(f"no batched form of {layer!r}")
    return _to_stacked(h, k) if grouped else h


def batched_linear(weight, bias, h):
    """K linear layers at once: h (K, B, in), weight (K, out, in), bias (K, out) -> (K, B, out)."""
    return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))


def _grouped_convolution(layer, weight, bias, h):
    """K convolutions (or transposed convolutions) like `layer` as one grouped one: weight
    (K, out, in, kh, kw) for a convolution, (K, in, out, kh, kw) for a transposed one, both
    flattened to the K groups' blocks of rows that grouped convolutions read."""
    if layer.groups != 1:
        raise ValueError(f"no batched form of the grouped {layer!r}")
    k = weight.shape[0]
    weight = weight.flatten(0, 1)
    bias = None if bias is None else bias.flatten()
    if isinstance(layer, nn.Conv2d):
        return F.conv2d(h, weight, bias, layer.stride, layer.padding, layer.dilation, groups=k)
    return F.conv_transpose2d(h, weight, bias, layer.stride, layer.padding, layer.output_padding, groups=k,
                              dilation=layer.dilation)


def _to_grouped(h):
    """(K, B, C, H, W) -> (B, K*C, H, W)."""
    k, b, c, height, width = h.shape
    return h.transpose(0, 1).reshape(b, k * c, height, width)


def _to_stacked(h, k):
    """(B, K*C, H, W) -> (K, B, C, H, W)."""
    b, channels, height, width = h.shape
    return h.reshape(b, k, channels // k, height, width).transpose(0, 1)


def batched_loss_and_grads(model, params, x, eps, beta):
    """(losses (K,), {name: gradient of run k's loss in [k]}): one backward pass of the summed
    losses, since run k's loss depends only on run k's parameters."""
    leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    losses = batched_losses(model, leaves, x, eps, beta)
    grads = torch.autograd.grad(losses.sum(), list(leaves.values()))
    return losses.detach(), dict(zip(leaves, grads))
