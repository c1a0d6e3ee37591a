"""Studies: a gin file naming a base config, fixed bindings and a sweep, expanded into run
specs (one per combination of swept values) and run by an executor.

A study file binds the `study` configurable, e.g.:

    study.base_gin = ['beta_vae.gin']
    study.fixed = {'train.steps': 300}
    study.sweep = {'beta_vae.beta': [1.0, 4.0], 'train.seed': [0, 1]}
    study.metrics = ['mig', 'factor_vae', 'recon_ll']
    study.metric_params = {'factor_vae': {'num_train': 1000}}
"""

import dataclasses
import itertools
import re
from pathlib import Path

import gin

from dlbench.config import gin_dir
from dlbench.errors import UserError


@gin.configurable("study")
def study_settings(base_gin=gin.REQUIRED, fixed=None, sweep=None, metrics=("mig", "factor_vae", "recon_ll"),
                   metric_params=None):
    base_gin = [base_gin] if isinstance(base_gin, str) else base_gin
    _require(isinstance(base_gin, (list, tuple)) and base_gin and all(isinstance(f, str) for f in base_gin),
             "study.base_gin", "a list of gin file names, e.g. ['beta_vae.gin']", base_gin)
    _require(fixed is None or isinstance(fixed, dict), "study.fixed", "a dict of bindings, e.g. {'train.steps': 300}", fixed)
    _require(sweep is None or (isinstance(sweep, dict) and all(isinstance(v, (list, tuple)) and v for v in sweep.values())),
             "study.sweep", "a dict of non-empty lists, e.g. {'beta_vae.beta': [1.0, 4.0]}", sweep)
    _require(isinstance(metrics, (list, tuple)) and metrics and all(isinstance(m, str) for m in metrics),
             "study.metrics", "a non-empty list of metric names, e.g. ['mig', 'factor_vae']", metrics)
    _require(metric_params is None or (isinstance(metric_params, dict) and all(isinstance(v, dict) for v in metric_params.values())),
             "study.metric_params", "a dict of dicts, e.g. {'factor_vae': {'num_train': 1000}}", metric_params)
    return dict(base_gin=list(base_gin), fixed=dict(fixed or {}), sweep=dict(sweep or {}),
                metrics=list(metrics), metric_params=dict(metric_params or {}))


def _require(ok, binding, expected, value):
    if not ok:
        raise UserError(f"{binding} must be {expected}, got {value!r}")


@dataclasses.dataclass
class RunSpec:
    name: str                 # the run directory's name under the runs root
    gin_files: list
    gin_params: list          # bindings, fixed ones first, then this run's swept values


@dataclasses.dataclass
class Study:
    name: str
    runs: list
    metrics: list
    metric_params: dict


def study_file(name_or_gin):
    """A study by name (gin/studies/NAME.gin) or by path."""
    path = Path(name_or_gin)
    if path.suffix == ".gin":
        if not path.is_file():
            raise UserError(f"study file '{path}' not found; give an existing .gin file or a study name")
        return path
    named = gin_dir() / "studies" / f"{name_or_gin}.gin"
    if not named.is_file():
        known = sorted(p.stem for p in (gin_dir() / "studies").glob("*.gin"))
        raise UserError(f"unknown study '{name_or_gin}'; available: {', '.join(known)} (or give a .gin path)")
    return named


def load_study(name_or_gin):
    path = study_file(name_or_gin)
    gin.clear_config()
    try:
        gin.parse_config_file(str(path))
        settings = study_settings()
    except UserError as err:
        raise UserError(f"bad study file '{path}': {str(err).splitlines()[0]}") from None
    except Exception as err:  # gin's parse errors come as several exception types
        raise UserError(f"bad study file '{path}': {str(err).splitlines()[0]}") from None
    finally:
        gin.clear_config()
    base = [str(_base_file(f, path)) for f in settings["base_gin"]]
    fixed = [_binding(k, v) for k, v in settings["fixed"].items()]
    keys = list(settings["sweep"])
    runs = []
    for index, values in enumerate(itertools.product(*(settings["sweep"][k] for k in keys))):
        swept = [_binding(k, v) for k, v in zip(keys, values)]
        label = "_".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(keys, values))
        runs.append(RunSpec(name=re.sub(r"[^A-Za-z0-9_.=-]", "", f"{index:04d}_{label}".rstrip("_")),
                            gin_files=base, gin_params=fixed + swept))
    return Study(name=path.stem, runs=runs, metrics=settings["metrics"], metric_params=settings["metric_params"])


def shard(runs, spec):
    """The runs of shard 'I/N' (0-based I): every N-th run starting at I."""
    match = re.fullmatch(r"(\d+)/(\d+)", spec or "")
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise UserError(f"bad --shard '{spec}'; write I/N with 0 <= I < N, e.g. 0/4")
    return runs[int(match[1])::int(match[2])]


def _base_file(name, study_path):
    for candidate in (study_path.parent / name, gin_dir() / name):
        if candidate.is_file():
            return candidate
    raise UserError(f"base gin file '{name}' of study '{study_path}' not found")


def _binding(key, value):
    return f"{key} = {value!r}"


def validate_study(study, runs):
    """Resolve every run's config and check every metric and parameter before anything runs, so
    a mistake in run 900 is found now, not after 899 runs have trained. A UserError names the run."""
    from dlbench.config import parse_gin, resolve_run_spec
    from dlbench.evaluation import check_request

    from dlbench import metrics

    for name in study.metrics:
        try:
            metrics.metric_params(name)  # a UserError for an unknown metric
        except UserError as err:
            raise UserError(f"study {study.name}: study.metrics: {err}") from None
    try:
        check_request(study.metrics, "mean", study.metric_params)
    except UserError as err:
        raise UserError(f"study {study.name}: study.metric_params: {err}") from None
    try:
        for spec in runs:
            try:
                parse_gin(spec.gin_files, spec.gin_params)
                resolve_run_spec()
            except UserError as err:
                raise UserError(f"study {study.name}, run {spec.name}: {err}") from None
    finally:
        gin.clear_config()
