"""beta-VAE (Higgins et al., 2017): reconstruction + beta * KL(q(z|x) || p(z)), p(z) the
model's prior (model.prior; the standard normal by default).

The KL is summed over latent dimensions and averaged over the batch, as in
disentanglement_lib, so published beta grids mean the same here.
"""

import gin

from dlbench import checks
from dlbench.methods.base import Method
from dlbench.methods.estimators import elbo_terms, vae_scalars


def beta_vae_objective(outputs, beta):
    """Loss and scalars of the beta-VAE for one forward pass; beta may be a tensor."""
    reconstruction, kl, kl_per_dim = elbo_terms(outputs)
    loss = reconstruction + beta * kl
    return loss, vae_scalars(loss, reconstruction, kl, kl_per_dim)


@gin.configurable("beta_vae")
class BetaVAE(Method):
    name = "beta_vae"
    tensor_hyperparameters = ("beta",)

    def __init__(self, beta=1.0):
        self.beta = checks.hyperparameter(f"{self.name}.beta", beta, minimum=0)

    def hyperparameters(self):
        return {"beta": float(self.beta)}

    def objective(self, outputs, step=0, draws=None):
        return beta_vae_objective(outputs, self.beta)
