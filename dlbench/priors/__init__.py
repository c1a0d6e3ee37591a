"""Priors p(z): one file each, each a gin-configurable torch module with `log_prob(z)` (the
joint log-density of each row of an (n, d) tensor, an (n,) tensor) and `sample(n)` (an (n, d)
tensor). A model names its prior with `model.prior = '<name>'`; the prior's own settings are
bound through its configurable, e.g. `lp_nested_isa.p0 = 2.1`. Importing this package imports
every module in it, so a new prior is a new file."""

import importlib
import pkgutil

from dlbench.errors import UserError
from dlbench.priors.base import Prior
from dlbench.priors.isotropic_gaussian import IsotropicGaussian

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from dlbench.priors.anisotropic_gaussian import AnisotropicGaussian  # noqa: E402
from dlbench.priors.gaussian_mixture import GaussianMixture  # noqa: E402
from dlbench.priors.lp_nested_isa import LpNestedISA  # noqa: E402
from dlbench.priors.sparse_mixture import SparseMixture  # noqa: E402
from dlbench.priors.student_t import StudentT  # noqa: E402

PRIORS = {cls.name: cls for cls in Prior.__subclasses__() if cls.name}

DEFAULT_PRIOR = "isotropic_gaussian"


def prior_class(name):
    if name not in PRIORS:
        raise UserError(f"unknown prior '{name}' (model.prior); available: {', '.join(sorted(PRIORS))}")
    return PRIORS[name]


def make_prior(name, latent_dim):
    """The named prior with its gin-bound settings (what model.prior = NAME gives)."""
    try:
        return prior_class(name)(latent_dim=latent_dim)
    except (TypeError, ValueError) as err:
        raise UserError(f"bad settings for prior '{name}': {err}") from None


def build_prior(config, latent_dim):
    """Rebuild a prior from its config() dict, ignoring gin (checkpoints load without it)."""
    settings = dict(config)
    return prior_class(settings.pop("name"))(latent_dim=latent_dim, **settings)


__all__ = ["DEFAULT_PRIOR", "PRIORS", "AnisotropicGaussian", "GaussianMixture", "IsotropicGaussian", "LpNestedISA",
           "Prior", "SparseMixture", "StudentT", "build_prior", "make_prior", "prior_class"]
