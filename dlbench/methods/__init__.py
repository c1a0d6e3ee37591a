"""Methods: one file each, each a gin-configurable objective.

A method maps (model, batch) to a loss and a dict of named scalar tensors. Its objective is a
pure function of (model outputs, hyperparameters) with hyperparameters that may be tensors, so
the stacked trainer can reuse it unchanged. Importing this package imports every module in it,
which registers every method with gin: a new method is a new file.
"""

import importlib
import pkgutil

from dlbench.methods.base import Method
from dlbench.methods.beta_tcvae import BetaTCVAE, beta_tcvae_objective
from dlbench.methods.beta_vae import BetaVAE, beta_vae_objective

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


METHODS = {cls.name: cls for cls in _all_subclasses(Method) if cls.name}

__all__ = ["METHODS", "BetaTCVAE", "BetaVAE", "Method", "beta_tcvae_objective", "beta_vae_objective"]
