"""The alpha-beta decomposition objective (Mathieu, Rainforth, Siddharth and Teh, 2019, eq. 7),
as a loss to minimise:

    -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)) + alpha * D(q(z), p(z))

beta controls the overlap of the encodings, alpha how closely the aggregate posterior q(z)
matches the prior p(z) (the model's prior, model.prior). D is one of
  'mmd'           the dimension-wise MMD with a sum of Cauchy kernels (eq. 10), between the
                  batch's posterior samples and as many prior samples; used for sparsity;
  'inclusive_kl'  KL(p(z) || q(z)) with q(z) the batch's aggregate encoding (Appendix B); used for
                  clustering, with the whole dataset as the batch.
The reconstruction and KL are batch means (the KL closed form where the prior has one, Monte
Carlo otherwise), so alpha = 0 is the beta-VAE and alpha = 0, beta = 1 the ELBO.

The B prior samples are drawn (draw()) with the training generator after the forward pass; they
are not differentiable with respect to the prior's parameters, so D trains the encoder (the priors the
paper uses with D, the sparse and Gaussian mixtures, are fixed).
"""

import gin

from dlbench.errors import UserError
from dlbench import checks
from dlbench.methods.base import Method
from dlbench.methods.estimators import elbo_terms, inclusive_kl, mmd_squared, vae_scalars

DIVERGENCES = ("mmd", "inclusive_kl")


def _check_divergence(divergence):
    if divergence not in DIVERGENCES:
        raise UserError(f"unknown ab_vae.divergence '{divergence}'; choose one of {', '.join(DIVERGENCES)}")


def aggregate_divergence(outputs, divergence, prior_samples):
    """D(q(z), p(z)) estimated from one batch and fresh prior samples (as many)."""
    _check_divergence(divergence)
    if divergence == "mmd":
        return mmd_squared(outputs.z, prior_samples)
    return inclusive_kl(prior_samples, outputs.prior.log_prob(prior_samples), outputs.mean, outputs.logvar)


def ab_vae_objective(outputs, alpha, beta, divergence, prior_samples):
    """Loss and scalars of eq. 7 for one forward pass and prior samples; alpha and beta may be
    tensors."""
    reconstruction, kl, kl_per_dim = elbo_terms(outputs)
    estimate = aggregate_divergence(outputs, divergence, prior_samples)
    loss = reconstruction + beta * kl + alpha * estimate
    return loss, vae_scalars(loss, reconstruction, kl, kl_per_dim, divergence=estimate)


@gin.configurable("ab_vae")
class ABVAE(Method):
    """alpha = 1000, beta = 1 with the MMD by default: the sparse Fashion-MNIST model Mathieu et
    al. analyse in Sec. 6.3 (Figure 5, Figure 7)."""

    name = "ab_vae"
    tensor_hyperparameters = ("alpha", "beta")

    def __init__(self, alpha=1000.0, beta=1.0, divergence="mmd"):
        self.alpha = checks.hyperparameter("ab_vae.alpha", alpha, minimum=0)
        self.beta = checks.hyperparameter("ab_vae.beta", beta, minimum=0)
        self.divergence = checks.one_of("ab_vae.divergence", divergence, list(DIVERGENCES))

    def hyperparameters(self):
        return {"alpha": float(self.alpha), "beta": float(self.beta), "divergence": self.divergence}

    def min_batch_size(self):
        return 2 if self.divergence == "mmd" else 1  # the unbiased MMD leaves each sample's own pair out

    def draw(self, model, batch_size, generator=None):
        return {"prior_samples": model.prior.sample(batch_size, generator)}

    def objective(self, outputs, step=0, draws=None):
        if not draws:
            raise ValueError("ab_vae's objective needs the prior samples of draw()")
        return ab_vae_objective(outputs, self.alpha, self.beta, self.divergence, draws["prior_samples"])
