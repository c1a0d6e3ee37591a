"""beta-VAE (Higgins et al., 2017): reconstruction + beta * KL(q(z|x) || N(0, I)).

The KL is summed over latent dimensions and averaged over the batch, as in
disentanglement_lib, so published beta grids mean the same here.
"""

import gin

from dlbench.methods.base import Method
from dlbench.methods.estimators import elbo_terms, named_per_dim


def beta_vae_objective(outputs, beta):
    """Loss and scalars of the beta-VAE for one forward pass; beta may be a tensor."""
    reconstruction, kl_per_dim = elbo_terms(outputs)
    kl = kl_per_dim.sum(-1)
    loss = reconstruction + beta * kl
    scalars = {"loss": loss, "reconstruction": reconstruction, "kl": kl, "elbo": -(reconstruction + kl)}
    scalars.update(named_per_dim("kl", kl_per_dim))
    return loss, scalars


@gin.configurable("beta_vae")
class BetaVAE(Method):
    name = "beta_vae"

    def __init__(self, beta=1.0):
        self.beta = beta

    def hyperparameters(self):
        return {"beta": float(self.beta)}

    def objective(self, outputs):
        return beta_vae_objective(outputs, self.beta)
