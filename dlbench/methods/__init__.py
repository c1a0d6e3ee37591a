"""Methods: one file each, each a gin-configurable objective.

A method maps (model, batch) to a loss and a dict of named scalar tensors. Its objective is a
pure function of (model outputs, hyperparameters) with hyperparameters that may be tensors, so
the stacked trainer can reuse it unchanged. Importing this package registers every method with
gin.
"""

from dlbench.methods.base import Method
from dlbench.methods.beta_tcvae import BetaTCVAE, beta_tcvae_objective
from dlbench.methods.beta_vae import BetaVAE, beta_vae_objective

__all__ = ["BetaTCVAE", "BetaVAE", "Method", "beta_tcvae_objective", "beta_vae_objective"]
