"""Gin configuration: the bindings users type, parsing with clear errors, and the spec of a
run that the bindings resolve to.

The configurables `train`, `dataset` and `model` only collect settings; the training loop
reads them through `resolve_run_spec()`, so a config can be checked before anything is written.
"""

import dataclasses
from pathlib import Path
import sys

import gin

import dlbench.data
import dlbench.methods  # noqa: F401  (registers the methods with gin)
from dlbench.errors import UserError
from dlbench.priors import DEFAULT_PRIOR, make_prior


def gin_dir():
    """The folder of dlbench's own gin files (the checkout's gin/, or the installed copy)."""
    checkout = Path(__file__).resolve().parent.parent / "gin"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "dlbench" / "gin"


@gin.configurable("train")
def train_settings(method=gin.REQUIRED, steps=300000, batch_size=64, lr=1e-4, seed=0,
                   checkpoint_every=10000, log_every=100, adam_betas=(0.9, 0.999), adam_eps=1e-8):
    return dict(method=method, steps=int(steps), batch_size=int(batch_size), lr=float(lr),
                seed=int(seed), checkpoint_every=int(checkpoint_every), log_every=int(log_every),
                adam_betas=[float(b) for b in adam_betas], adam_eps=float(adam_eps))


@gin.configurable("dataset")
def dataset_settings(name=gin.REQUIRED, options=None):
    """`options`: constructor arguments of the dataset, e.g. {'seed': 3} (the ones its class lists)."""
    return dict(name=name, options={} if options is None else options)


@gin.configurable("model")
def model_settings(architecture="conv", latent_dim=10, likelihood="bernoulli", prior=DEFAULT_PRIOR):
    """`prior` names a prior in dlbench.priors; its settings come from its own configurable."""
    return dict(architecture=architecture, latent_dim=int(latent_dim), likelihood=likelihood,
                prior=make_prior(prior, latent_dim).config())


@dataclasses.dataclass
class RunSpec:
    """Everything a training run is a function of."""

    method: object
    train: dict
    dataset: dict
    model: dict

    def identity(self):
        """The run's identity as plain values: what run.json records and resume compares."""
        train = {k: v for k, v in self.train.items() if k != "method"}
        identity = {"method": self.method.name, "hyperparameters": self.method.hyperparameters(),
                    "dataset": self.dataset["name"], "seed": train["seed"], "train": train, "model": self.model}
        if self.dataset.get("options"):
            # only when set, so runs recorded before options existed keep their identity (and hash)
            identity["dataset_options"] = self.dataset["options"]
        return identity


def resolve_gin_file(path):
    """A gin file given on the command line: as a path, or by name in dlbench's gin folder."""
    candidates = [Path(path), gin_dir() / path, gin_dir() / f"{path}.gin"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UserError(f"gin file '{path}' not found; give a path to an existing .gin file "
                    f"or the name of one in {gin_dir()}")


def parse_gin(gin_files=(), gin_params=()):
    """Clear gin and parse the files and bindings; any mistake becomes a one-line UserError."""
    gin.clear_config()
    gin.add_config_file_search_path(str(gin_dir()))
    files = [str(resolve_gin_file(f)) for f in gin_files]
    for f in files:
        gin.add_config_file_search_path(str(Path(f).parent))
    try:
        gin.parse_config_files_and_bindings(files, list(gin_params), finalize_config=False)
    except Exception as err:  # gin reports with ValueError, SyntaxError, TokenError, ...
        raise UserError(f"bad gin config: {_one_line(err)}; check the configurable and parameter names "
                        f"(e.g. train.steps, beta_vae.beta)") from None


def resolve_run_spec():
    """Call the configurables and return the RunSpec they describe."""
    try:
        train = train_settings()
        dataset = dataset_settings()
        model = model_settings()
    except Exception as err:
        raise UserError(f"bad gin config: {_one_line(err)}") from None
    method = train["method"]
    if not isinstance(method, dlbench.methods.Method):
        raise UserError("train.method must be a method reference such as @beta_vae()")
    _check_positive(train, ("steps", "batch_size", "checkpoint_every", "log_every"))
    if train["lr"] <= 0:
        raise UserError(f"train.lr must be positive, got {train['lr']}")
    dataset["options"] = dlbench.data.checked_dataset_options(dataset["name"], dataset["options"])
    return RunSpec(method=method, train=train, dataset=dataset, model=model)


def operative_config():
    return gin.operative_config_str()


def _check_positive(settings, names):
    for name in names:
        if settings[name] <= 0:
            raise UserError(f"train.{name} must be a positive integer, got {settings[name]}")


def _one_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    where = [line for line in lines[1:] if line.startswith("In ")]
    return f"{text} ({where[0]})" if where else text
