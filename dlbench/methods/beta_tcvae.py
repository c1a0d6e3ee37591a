"""beta-TCVAE (Chen et al., 2018): reconstruction + alpha * index-code MI + beta * total
correlation + gamma * dimension-wise KL, the terms of the ELBO's KL decomposition (eq. 2, 4).

q(z) and the marginals q(z_j) are estimated on the minibatch with minibatch-weighted sampling
('mws', eq. 3) or minibatch stratified sampling ('mss'); both need the dataset size, which the
trainer gives through prepare. The estimates include the log(N M) constants, so the
reported tc/mi/dimwise_kl estimate the quantities themselves, not only their gradients.

With a prior that does not factorise over dimensions (the Lp-nested ISA prior of isa_tcvae) the
last term is E[log prod_j q(z_j) - log p(z)], so mi + tc + dimwise_kl is still
KL(q(z) || p(z)) + the index-code MI, and alpha = beta = gamma = 1 is still the ELBO.
"""

import gin

from dlbench.errors import UserError
from dlbench import checks
from dlbench.methods.base import Method
from dlbench.methods.estimators import LOG_QZ_ESTIMATORS, elbo_terms, log_density_gaussian, vae_scalars

ESTIMATORS = tuple(LOG_QZ_ESTIMATORS)


def _check_estimator(estimator):
    if estimator not in LOG_QZ_ESTIMATORS:
        raise UserError(f"unknown beta-TCVAE estimator '{estimator}'; choose one of {', '.join(ESTIMATORS)}")


def beta_tcvae_objective(outputs, alpha, beta, gamma, dataset_size, estimator="mws"):
    """Loss and scalars of the beta-TCVAE for one forward pass; alpha, beta, gamma may be tensors."""
    _check_estimator(estimator)
    reconstruction, kl, kl_per_dim = elbo_terms(outputs)
    z = outputs.z
    log_qz_x = log_density_gaussian(z, outputs.mean, outputs.logvar).sum(-1)
    log_pz = outputs.prior.log_prob(z)
    log_qz, log_prod_qzi = LOG_QZ_ESTIMATORS[estimator](z, outputs.mean, outputs.logvar, dataset_size)
    mi = (log_qz_x - log_qz).mean(0)
    tc = (log_qz - log_prod_qzi).mean(0)
    dimwise_kl = (log_prod_qzi - log_pz).mean(0)
    loss = reconstruction + alpha * mi + beta * tc + gamma * dimwise_kl
    return loss, vae_scalars(loss, reconstruction, kl, kl_per_dim, mi=mi, tc=tc, dimwise_kl=dimwise_kl)


@gin.configurable("beta_tcvae")
class BetaTCVAE(Method):
    """beta = 6 by default: Chen et al. use beta = 6 for beta-TCVAE on dSprites (Sec. 6,
    'Quantitative comparisons', the mode of their Figure 2 sweep), with alpha = gamma = 1."""

    name = "beta_tcvae"
    tensor_hyperparameters = ("alpha", "beta", "gamma")

    def __init__(self, alpha=1.0, beta=6.0, gamma=1.0, estimator="mws"):
        self.alpha, self.beta, self.gamma = (checks.hyperparameter(f"{self.name}.{label}", value, minimum=0)
                                             for label, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma)))
        self.estimator = checks.one_of(f"{self.name}.estimator", estimator, list(ESTIMATORS))
        self.dataset_size = None

    def prepare(self, model, num_observations):
        self.dataset_size = int(num_observations)

    def min_batch_size(self):
        # both estimators weigh q(z | x) over the other batch members: with one, log q(z) and the
        # product of its marginals are q(z | x) and its own marginals, and the total correlation a
        # constant (stratified sampling is not even defined)
        return 2

    def hyperparameters(self):
        return {"alpha": float(self.alpha), "beta": float(self.beta), "gamma": float(self.gamma),
                "estimator": self.estimator}

    def objective(self, outputs, step=0, draws=None):
        if self.dataset_size is None:
            raise RuntimeError("beta_tcvae needs the dataset size: call prepare before objective")
        return beta_tcvae_objective(outputs, self.alpha, self.beta, self.gamma, self.dataset_size,
                                    self.estimator)
