"""DIP-VAE (Kumar, Sattigeri and Balakrishnan, 2018): the negative ELBO plus a penalty that
pushes a covariance of the latents towards the identity,

    loss = reconstruction + KL(q(z|x) || p(z))
           + lambda_od * sum_{i != j} Cov[i, j]^2 + lambda_d * sum_i (Cov[i, i] - 1)^2.

DIP-VAE-I penalises Cov = Cov_p(x)[mu(x)], the covariance of the encoder means; DIP-VAE-II
penalises the covariance of the aggregate posterior q(z) = E_p(x)[q(z|x)],
Cov = E_p(x)[diag(sigma^2(x))] + Cov_p(x)[mu(x)]. Both are estimated on the minibatch with the
biased (1/B) estimator E[mu mu^T] - E[mu] E[mu]^T, as disentanglement_lib does, so its lambda grids
mean the same here.

The penalty targets the identity, the covariance of the standard normal prior the paper matches;
with another prior (model.prior) the KL term uses that prior but the target stays the identity.
"""

import gin
import torch

from dlbench.errors import UserError
from dlbench import checks
from dlbench.methods.base import Method
from dlbench.methods.estimators import elbo_terms, vae_scalars

DIP_TYPES = ("i", "ii")


def _check_dip_type(dip_type):
    if dip_type not in DIP_TYPES:
        raise UserError(f"unknown DIP-VAE type {dip_type!r}; set dip_vae.dip_type to 'i' or 'ii'")


def covariance_over_batch(values):
    """Covariance over the batch (dimension 0) of (B, ..., D) values: (..., D, D), with the
    1/B normalisation, E[v v^T] - E[v] E[v]^T."""
    second_moment = (values.unsqueeze(-1) * values.unsqueeze(-2)).mean(0)
    first_moment = values.mean(0)
    return second_moment - first_moment.unsqueeze(-1) * first_moment.unsqueeze(-2)


def dip_covariance(mean, logvar, dip_type):
    """The covariance DIP-VAE regularises: of the encoder means (type 'i'), or of the aggregate
    posterior, E[diag(sigma^2)] + Cov[mu] (type 'ii')."""
    _check_dip_type(dip_type)
    covariance = covariance_over_batch(mean)
    if dip_type == "ii":
        covariance = covariance + torch.diag_embed(logvar.exp().mean(0))
    return covariance


def dip_penalties(covariance):
    """(sum_{i != j} Cov[i, j]^2, sum_i (Cov[i, i] - 1)^2) of a (..., D, D) covariance."""
    diagonal = torch.diagonal(covariance, dim1=-2, dim2=-1)
    off_diagonal = covariance - torch.diag_embed(diagonal)
    return off_diagonal.pow(2).sum((-2, -1)), (diagonal - 1.0).pow(2).sum(-1)


def dip_vae_objective(outputs, lambda_od, lambda_d, dip_type="i"):
    """Loss and scalars of DIP-VAE for one forward pass; lambda_od and lambda_d may be tensors.
    The scalars cov_offdiag and cov_diag are the penalties before weighting."""
    reconstruction, kl, kl_per_dim = elbo_terms(outputs)
    cov_offdiag, cov_diag = dip_penalties(dip_covariance(outputs.mean, outputs.logvar, dip_type))
    loss = reconstruction + kl + lambda_od * cov_offdiag + lambda_d * cov_diag
    return loss, vae_scalars(loss, reconstruction, kl, kl_per_dim, cov_offdiag=cov_offdiag, cov_diag=cov_diag)


def default_lambda_d(lambda_od, dip_type):
    """disentanglement_lib's study: lambda_d = 10 lambda_od for DIP-VAE-I, lambda_od for -II."""
    return (10.0 if dip_type == "i" else 1.0) * lambda_od


@gin.configurable("dip_vae")
class DipVAE(Method):
    """lambda_od = 10 by default, the middle of the study's grid [1, 2, 5, 10, 20, 50];
    lambda_d, when not given, follows the study's factor for the type."""

    name = "dip_vae"
    tensor_hyperparameters = ("lambda_od", "lambda_d")

    def __init__(self, lambda_od=10.0, lambda_d=None, dip_type="i"):
        self.dip_type = checks.one_of("dip_vae.dip_type", dip_type, list(DIP_TYPES))
        self.lambda_od = checks.hyperparameter("dip_vae.lambda_od", lambda_od, minimum=0)
        if lambda_d is None:
            lambda_d = default_lambda_d(self.lambda_od, dip_type)
        self.lambda_d = checks.hyperparameter("dip_vae.lambda_d", lambda_d, minimum=0)

    def min_batch_size(self):
        return 2  # over one observation the covariance of the encoder means is zero: the penalty would not see them

    def hyperparameters(self):
        return {"lambda_od": float(self.lambda_od), "lambda_d": float(self.lambda_d), "dip_type": self.dip_type}

    def objective(self, outputs, step=0, draws=None):
        return dip_vae_objective(outputs, self.lambda_od, self.lambda_d, self.dip_type)
