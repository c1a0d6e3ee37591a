"""A trained VAE as the numpy functions that the model-side metrics take as parameters.

Metrics stay pure functions of arrays (so each can be tested on a toy model whose answer is known
in closed form); this module is the one place that turns a torch VAE into those functions:

  encode_fn(x)                 -> (mean, logvar), each (n, d): the encoder's Gaussian q(z|x)
  log_likelihood_fn(x)         -> (n,) log p(x|z), one z ~ q(z|x) per observation
  elbo_terms_fn(x)             -> {'log_px': (n,), 'kl': (n,), 'kl_per_dim': (n, d) (closed-form
                                  priors only)}: the two ELBO terms per observation
  log_weights_fn(x, K)         -> (n, K) log p(x|z_k) + log p(z_k) - log q(z_k|x), z_k ~ q(z|x)
  decode_log_likelihood_fn(x, z) -> (n,) log p(x|z) at the given codes z (n, d): the decoder alone
  log_prior_fn(z)              -> (n,) log p(z) of the model's prior, computed in float64
  prior_sample_fn(n)           -> (n, d) draws from the model's prior
  likelihood                   -> the decoder likelihood's name (recorded with results)

All sampling uses one torch generator seeded with the evaluation seed, created per metric call, so
a metric's result is a function of the model and the seed and never of the training stream.
Everything runs batched on the model's device with autograd off; results come back as float64.
"""

import copy

import numpy as np
import torch

from dlbench.postprocess import encode_batch_size
from dlbench.priors.base import log_normal_diag

MODEL_FUNCTIONS = ("encode_fn", "log_likelihood_fn", "elbo_terms_fn", "log_weights_fn", "decode_log_likelihood_fn",
                   "log_prior_fn", "prior_sample_fn", "likelihood")


def _batches(observations, batch_size, device):
    for start in range(0, len(observations), batch_size):
        yield torch.as_tensor(observations[start:start + batch_size], device=device, dtype=torch.float32)


def _numpy(tensor):
    return tensor.double().cpu().numpy()


def model_functions(model, device, seed):
    """The functions above for `model` (put in eval mode), sampling from a generator seeded with seed."""
    model = model.to(device).eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    batch_size = encode_batch_size(device)

    @torch.no_grad()
    def encode_fn(observations):
        parts = [model.encode(x) for x in _batches(observations, batch_size, device)]
        return tuple(np.concatenate([_numpy(p[i]) for p in parts]) for i in (0, 1))

    @torch.no_grad()
    def log_likelihood_fn(observations):
        out = []
        for x in _batches(observations, batch_size, device):
            mean, logvar = model.encode(x)
            z = model.sample_z(mean, logvar, generator)
            out.append(_numpy(model.likelihood.log_prob(model.decode(z), x)))
        return np.concatenate(out)

    @torch.no_grad()
    def elbo_terms_fn(observations):
        terms = {"log_px": [], "kl": [], "kl_per_dim": []}
        for x in _batches(observations, batch_size, device):
            outputs = model(x, generator)
            terms["log_px"].append(_numpy(outputs.log_px))
            per_dim = model.prior.kl_per_dim(outputs.mean, outputs.logvar)
            if per_dim is None:
                terms["kl"].append(_numpy(model.prior.kl(outputs.mean, outputs.logvar, outputs.z)))
            else:
                terms["kl"].append(_numpy(per_dim.sum(-1)))
                terms["kl_per_dim"].append(_numpy(per_dim))
        return {key: np.concatenate(value) for key, value in terms.items() if value}

    @torch.no_grad()
    def log_weights_fn(observations, num_samples):
        per_call = max(1, batch_size // num_samples)  # observations whose K samples fit one decoder batch
        out = []
        for x in _batches(observations, per_call, device):
            mean, logvar = model.encode(x)
            mean, logvar = (t.repeat_interleave(num_samples, dim=0) for t in (mean, logvar))
            z = model.sample_z(mean, logvar, generator)
            x_rep = x.repeat_interleave(num_samples, dim=0)
            log_px = model.likelihood.log_prob(model.decode(z), x_rep)
            log_w = log_px + model.prior.log_prob(z) - log_normal_diag(z, mean, logvar).sum(-1)
            out.append(_numpy(log_w.reshape(len(x), num_samples)))
        return np.concatenate(out)

    @torch.no_grad()
    def decode_log_likelihood_fn(observations, codes):
        out = []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size], device=device, dtype=torch.float32)
            z = torch.as_tensor(codes[start:start + batch_size], device=device, dtype=torch.float32)
            out.append(_numpy(model.likelihood.log_prob(model.decode(z), x)))
        return np.concatenate(out)

    # a float64 copy of the prior, so that a density compared across codes (the rotation metric's
    # log p(Rz) against log p(z)) is not limited by float32 rounding
    prior64 = copy.deepcopy(model.prior).double()

    @torch.no_grad()
    def log_prior_fn(codes):
        return _numpy(prior64.log_prob(torch.as_tensor(codes, device=device, dtype=torch.float64)))

    @torch.no_grad()
    def prior_sample_fn(num):
        return _numpy(model.prior.sample(int(num), generator))

    return {"encode_fn": encode_fn, "log_likelihood_fn": log_likelihood_fn, "elbo_terms_fn": elbo_terms_fn,
            "log_weights_fn": log_weights_fn, "decode_log_likelihood_fn": decode_log_likelihood_fn,
            "log_prior_fn": log_prior_fn, "prior_sample_fn": prior_sample_fn, "likelihood": model.config["likelihood"]}
