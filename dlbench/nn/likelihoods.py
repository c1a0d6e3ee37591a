"""Observation likelihoods p(x|z): each maps decoder outputs and data to log p(x|z) per image,
summed over pixels (nats)."""

import torch
import torch.nn.functional as F

from dlbench.errors import UserError


class Bernoulli:
    """Pixels are independent Bernoulli variables; the decoder outputs logits.

    Targets may be grey levels in [0, 1] (the cross-entropy form, as disentanglement_lib uses).
    """

    name = "bernoulli"

    @staticmethod
    def log_prob(logits, x):
        per_pixel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return per_pixel.flatten(start_dim=-3).sum(-1)

    @staticmethod
    def mean(logits):
        return torch.sigmoid(logits)


LIKELIHOODS = {"bernoulli": Bernoulli}


def get_likelihood(name):
    if name not in LIKELIHOODS:
        raise UserError(
            f"unknown likelihood '{name}' (model.likelihood); available: {', '.join(sorted(LIKELIHOODS))}")
    return LIKELIHOODS[name]
