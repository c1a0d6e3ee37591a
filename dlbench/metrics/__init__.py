"""Disentanglement and reconstruction metrics.

Every metric is a pure function fn(data, representation_fn, random_state, **params) -> dict in
the METRICS registry; evaluate() is the one entry point: it seeds the random state, checks the
parameters and returns a flat dict of plain Python values.
"""

import inspect
import math

import numpy as np

from dlbench import checks
from dlbench.errors import UserError
from dlbench.metrics.active_units import compute_active_units
from dlbench.metrics.aggregate_kl import compute_aggregate_kl
from dlbench.metrics.beta_vae import compute_beta_vae
from dlbench.metrics.dci import CLASSIFIERS, compute_dci
from dlbench.metrics.elbo import compute_elbo
from dlbench.metrics.factor_vae import compute_factor_vae
from dlbench.metrics.hoyer_sparsity import compute_hoyer_sparsity
from dlbench.metrics.inference_error import compute_inference_error
from dlbench.metrics.iwae import compute_iwae
from dlbench.metrics.mig import compute_mig
from dlbench.metrics.mig_chen import compute_mig_chen
from dlbench.metrics.modularity_explicitness import compute_modularity_explicitness
from dlbench.metrics.recon_ll import compute_recon_ll
from dlbench.metrics.rotation import compute_rotation
from dlbench.metrics.sap import compute_sap
from dlbench.metrics.total_correlation import compute_total_correlation
from dlbench.metrics.unsupervised import compute_unsupervised

METRICS = {
    "active_units": compute_active_units,
    "aggregate_kl": compute_aggregate_kl,
    "beta_vae": compute_beta_vae,
    "dci": compute_dci,
    "elbo": compute_elbo,
    "factor_vae": compute_factor_vae,
    "hoyer_sparsity": compute_hoyer_sparsity,
    "inference_error": compute_inference_error,
    "iwae": compute_iwae,
    "mig": compute_mig,
    "mig_chen": compute_mig_chen,
    "modularity_explicitness": compute_modularity_explicitness,
    "recon_ll": compute_recon_ll,
    "rotation": compute_rotation,
    "sap": compute_sap,
    "total_correlation": compute_total_correlation,
    "unsupervised": compute_unsupervised,
}

_FIXED_ARGS = ("data", "representation_fn", "random_state")

# Metrics of the representation alone (not the model's encoder, decoder or prior), and how many
# observations each renders and encodes: the evaluation stage compares their sum with the
# dataset's size to decide whether encoding the whole dataset once is cheaper.
from dlbench.metrics import (active_units as _active_units, beta_vae as _beta_vae, dci as _dci,  # noqa: E402
                             factor_vae as _factor_vae, hoyer_sparsity as _hoyer_sparsity, mig as _mig,
                             modularity_explicitness as _modularity_explicitness, sap as _sap,
                             unsupervised as _unsupervised)

_ENCODED = {"active_units": _active_units, "beta_vae": _beta_vae, "dci": _dci, "factor_vae": _factor_vae,
            "hoyer_sparsity": _hoyer_sparsity, "mig": _mig, "modularity_explicitness": _modularity_explicitness,
            "sap": _sap, "unsupervised": _unsupervised}
REPRESENTATION_METRICS = tuple(sorted(_ENCODED))


def observations_encoded(name, params=None):
    """The number of observations metric `name` (a representation metric) encodes with its
    default protocol overridden by params."""
    return _ENCODED[name].observations_encoded({**metric_params(name), **(params or {})})


def available_metrics():
    """The registered metric names, sorted."""
    return sorted(METRICS)


def metric_params(name):
    """The parameters of metric `name` and their defaults."""
    fn = _lookup(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.name not in _FIXED_ARGS}


def _lookup(name):
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise UserError(f"unknown metric {name!r}; available: {', '.join(available_metrics())}") from None


def _plain(value, name, key):
    """A metric's value as a plain Python one (a 0-d array as its element); a TypeError, naming the
    metric and the value, for any other kind."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _plain(value.item(), name, key)
    raise TypeError(f"metric {name!r} returned {key!r} as a {type(value).__name__}; a metric's values are numbers "
                    f"or text")


def evaluate(name, data, representation_fn, seed=0, **params):
    """Run metric `name` with np.random.RandomState(seed); a flat dict of plain Python values."""
    fn = _lookup(name)
    accepted = metric_params(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UserError(f"unknown parameter(s) {', '.join(unknown)} for metric {name!r}; "
                        f"accepted: {', '.join(accepted)}")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise UserError(f"seed must be an integer, got {seed!r}")
    problem = dataset_problem(name, params, data)
    if problem:
        raise UserError(problem)
    result = fn(data, representation_fn, np.random.RandomState(seed), **params)
    if not isinstance(result, dict):  # a metric's author's mistake: said in the metric's name
        raise TypeError(f"metric {name!r} returned a {type(result).__name__}; a metric returns a dict "
                        f"{{value name: number or text}}")
    return {str(key): _plain(value, name, key) for key, value in result.items()}


# Parameters that say where or in what chunks a metric computes, not what: not part of its protocol.
EXECUTION_PARAMS = ("device", "representation_batch_size")

# The metrics whose batch_size only chunks the encoding (their docstrings say it does not change the
# result; in beta_vae and factor_vae it is the protocol's points per vote): a user may set it, but
# it is left out of the protocol, so a stored result is reused whatever batch_size computed it.
CHUNKING_BATCH_SIZE = ("dci", "mig", "modularity_explicitness", "sap", "unsupervised")


def settable_params(name):
    """{parameter: default} of the parameters of metric `name` a user may set (--metric_param):
    every parameter but the functions of a model (defaults None, passed by the evaluation stage)
    and execution ones."""
    from dlbench.model_functions import MODEL_FUNCTIONS

    return {key: default for key, default in metric_params(name).items()
            if key not in MODEL_FUNCTIONS and key not in EXECUTION_PARAMS}


def protocol_params(name):
    """{parameter: default} of the parameters that make metric `name`'s protocol: the settable
    ones but a batch_size that only chunks the encoding (CHUNKING_BATCH_SIZE)."""
    neutral = ("batch_size",) if name in CHUNKING_BATCH_SIZE else ()
    return {key: default for key, default in settable_params(name).items() if key not in neutral}


# The key under which a result records what was asked for of the parameters whose default is
# None (see requested): the value under the parameter's own name is the one the metric derived.
REQUESTED = "requested"


def requested(name, params):
    """{REQUESTED: {parameter: value asked for, or None}} of metric `name`'s parameters whose
    default is None, for a result and a request alike ({} when it has none). Such a parameter is
    derived from the data when not given (a grid's size) and the result holds the derived value
    under its name, which therefore cannot tell "not given" (the default) from "given 384"."""
    keys = [key for key, default in protocol_params(name).items() if default is None]
    return {REQUESTED: {key: params.get(key) for key in keys}} if keys else {}


def protocol_changes(name, values):
    """{parameter: value} of the protocol parameters and 'seed' in which `values` differ from
    metric `name`'s default protocol. `values` is a result, or requested parameters with their
    'seed' and requested(name, params). A parameter whose default is None counts as given only
    by its REQUESTED record; results written before that record existed took the default."""
    if name not in METRICS:
        return {}
    asked = values.get(REQUESTED, {})
    changed = {}
    for key, default in protocol_params(name).items():
        value = asked.get(key) if default is None else _typed_like(values.get(key, default), default)
        if value != default:
            changed[key] = value
    if values.get("seed", 0) != 0:
        changed["seed"] = values["seed"]
    return changed


def _typed_like(value, default):
    """A whole number given for a float parameter as that float (0 as 0.0): the metric computes
    with, and its result records, the float, so a tag made from the number given would name
    another folder than the one aggregation finds from the result (which it had left out)."""
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def protocol_tag(name, values):
    """'' when `values` (see protocol_changes) follow metric `name`'s default protocol, else the
    ones that differ, as '[num_train=500,seed=1]'. Results of other protocols are stored and
    aggregated under their own names, so they are never mixed."""
    changed = protocol_changes(name, values)
    return f"[{','.join(f'{key}={value}' for key, value in changed.items())}]" if changed else ""


# the metrics that treat factor values as classes (each calls require_discrete_factors on its data;
# sap only without continuous_factors)
DISCRETE_FACTOR_METRICS = {"beta_vae", "dci", "factor_vae", "mig", "mig_chen", "modularity_explicitness", "rotation"}


def dataset_problem(name, params, dataset, latent_dim=None, setting="set {}"):
    """Why metric `name` with params cannot score models of `dataset` with latent_dim latents, or
    None. `dataset` is the data, or before any model is trained its class (facts its options
    decide, such as its number of sources, are then left out); `setting` says how to set a
    parameter, e.g. "set {} in study.metric_params". evaluate() asks it too, so the check before
    the work and the one at evaluation are the same rule."""
    from dlbench.data.ground_truth import continuous_factors_problem, full_grid_problem
    from dlbench.metrics.aggregate_posterior import no_grid_problem
    from dlbench.metrics.inference_error import latent_dim_problem, no_exact_posterior

    shown = getattr(dataset, "name", "?")
    discrete = name in DISCRETE_FACTOR_METRICS or (name == "sap" and not params.get("continuous_factors", False))
    if discrete and getattr(dataset, "continuous_factors", False):
        return continuous_factors_problem(name, shown)
    if name == "mig_chen" and not getattr(dataset, "full_grid", True):
        return f"{full_grid_problem(name, shown)}; choose a metric that draws observations (e.g. mig)"
    if name == "total_correlation":
        return no_grid_problem(dataset, params.get("num_points"), setting.format(f"{name}.num_points"))
    if name == "inference_error" and not hasattr(dataset, "exact_posterior"):
        return no_exact_posterior(shown)
    if name == "beta_vae" and not isinstance(dataset, type) and getattr(dataset, "factors_num_values", None):
        from dlbench.metrics.beta_vae import too_few_factors_problem
        return too_few_factors_problem(dataset)
    sources = getattr(dataset, "num_factors", None)  # a property of the class: known from the data only
    if name == "inference_error" and isinstance(latent_dim, int) and isinstance(sources, int) and latent_dim != sources:
        return latent_dim_problem(latent_dim, sources)
    return None


def metrics_problem(names, params, dataset, latent_dim=None, setting="set {}"):
    """dataset_problem of every metric of `names` in one line (params: {name: its params}), or None:
    refused one at a time, a metric list on data few metrics fit had taken a run of the command for
    each metric to drop."""
    found = [(name, problem) for name in names
             if (problem := dataset_problem(name, params.get(name, {}), dataset, latent_dim, setting))]
    if len(found) < 2:
        return found[0][1] if found else None
    said = {}  # the same reason of several metrics, said once for them all
    for name, problem in found:
        said.setdefault(problem.replace(f"metric {name} ", "metric \0 ", 1), []).append(name)
    lines = []
    for text, group in said.items():
        if len(group) > 1:
            text = text.replace("metric \0 needs ", "metrics \0 need ").replace("metric \0 ", "metrics \0 ")
        lines.append(text.replace("\0", ", ".join(group)))
    return f"{len(found)} of the metrics asked for cannot score it: " + " | ".join(lines)


def check_params(name, params):
    """Refuse unknown parameters of metric `name`, and values it would refuse (of another type
    than the default's, or out of range), before anything is computed."""
    accepted = settable_params(name)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise UserError(f"unknown parameter(s) {', '.join(unknown)} for metric {name!r}; "
                        f"accepted: {', '.join(accepted)}")
    for key, value in params.items():
        binding = f"{name}.{key}"
        if accepted[key] is None and value is None:
            continue  # asked for the default: derived from the data
        if binding in _VALUE_CHECKS:
            _VALUE_CHECKS[binding](binding, value)
        else:
            _check_like_default(binding, value, accepted[key])


# more points, samples or repeats than any metric is computed on (a 10^9-point mean needs 40 GB):
# a larger count is a mistake, which numpy would meet with a traceback or petabytes asked for
MOST_COUNT = 10**9


def _check_like_default(binding, value, default):
    if isinstance(default, bool):
        checks.flag(binding, value)
    elif isinstance(default, int):
        checks.integer(binding, value, minimum=1 if default > 0 else 0, maximum=MOST_COUNT)
    elif isinstance(default, float):
        checks.number(binding, value, minimum=0)
    elif isinstance(default, str):
        checks.text(binding, value)


def _at_least_two(binding, value):
    checks.integer(binding, value, minimum=2, maximum=MOST_COUNT)


# Values narrower than "like the default": counts a metric needs two of (a variance, a split, a
# pair, histogram bins), a string's choices, and every parameter whose default is None (no type to go by). The
# metrics check them again themselves; listed here so that a bad value is refused before any
# metric is computed, not after the ones before it.
_VALUE_CHECKS = {
    **dict.fromkeys(["active_units.num_points", "aggregate_kl.num_points", "aggregate_kl.num_samples",
                     "dci.num_train", "elbo.num_points", "factor_vae.batch_size", "factor_vae.num_variance_estimate",
                     "hoyer_sparsity.num_points", "inference_error.num_points", "iwae.num_points", "mig.num_train",
                     "modularity_explicitness.num_train", "modularity_explicitness.num_test", "recon_ll.num_points",
                     # one bin puts every code in it: every mutual information, so the score, is 0 whatever the codes
                     "mig.num_bins", "modularity_explicitness.num_bins", "unsupervised.num_bins",
                     "rotation.num_points", "rotation.mig_num_train", "rotation.factor_vae_num_variance_estimate",
                     "sap.num_train", "total_correlation.num_points", "total_correlation.num_samples",
                     "unsupervised.num_train"], _at_least_two),
    "dci.classifier": lambda binding, value: checks.one_of(binding, value, CLASSIFIERS),
}


# Result keys renamed since results were first written: {metric: {old key: new key}}. Readers of
# stored results (the aggregate) apply them, so runs already on disk keep aggregating.
LEGACY_KEYS = {"elbo": {"log_px": "recon_ll"}}  # log_px read as log p(x), the marginal: it is E_q[log p(x|z)]


def current_keys(name, result):
    """A stored result with its legacy keys under their current names."""
    renamed = LEGACY_KEYS.get(name, {})
    return {renamed.get(key, key) if renamed.get(key, key) not in result else key: value
            for key, value in result.items()}


# The value a metric is known by, where it reports several (what `--rank_by NAME` ranks by). A
# stored result without it as a number is damaged: aggregation would leave it out, so evaluation
# must not reuse it.
HEADLINE_KEYS = {
    "active_units": "active_units", "aggregate_kl": "kl_qz_pz", "beta_vae": "eval_accuracy", "dci": "disentanglement",
    "elbo": "elbo", "factor_vae": "eval_accuracy", "hoyer_sparsity": "hoyer_sparsity",
    "inference_error": "true_inference_error", "iwae": "iwae", "mig": "discrete_mig", "mig_chen": "mig_chen",
    "modularity_explicitness": "modularity_score", "recon_ll": "recon_ll", "sap": "SAP_score",
    "total_correlation": "total_correlation",
}


# the metrics whose headline is a score from 0 to 1 by its definition (an accuracy, a normalised gap or
# entropy): a stored value outside it was not written by the metric
UNIT_INTERVAL_HEADLINES = ("beta_vae", "dci", "factor_vae", "hoyer_sparsity", "mig", "mig_chen",
                           "modularity_explicitness", "sap")


def result_problem(name, result):
    """Why a stored result of metric `name` (its keys current) cannot be used, or None: its headline
    value missing or not a finite number, where the result gives no reason for its absence, or a
    score of UNIT_INTERVAL_HEADLINES outside [0, 1] (beyond float rounding)."""
    headline = HEADLINE_KEYS.get(name)
    if headline is None or f"{headline}_missing_reason" in result:
        return None
    value = result.get(headline)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value):
        if name in UNIT_INTERVAL_HEADLINES and not -1e-9 <= value <= 1 + 1e-9:
            return f"its {headline} is {value!r}, outside the score's range from 0 to 1"
        return None
    return f"its {headline} is {result.get(headline, 'missing')!r}, not a {'finite ' if number else ''}number"


# The version of each metric whose stored values have changed meaning since results were first
# written (a metric not listed is at version 1). A result records its metric's version under
# VERSION_KEY; one without it is of version 1. A result of another version is computed again, never
# reused nor aggregated beside the current ones: its value answers another question.
VERSION_KEY = "metric_version"
VERSIONS = {
    # where a single factor varies, eval_accuracy is missing with a reason, not the 1 any representation scored
    "factor_vae": 2,
    "rotation": 2,  # its factor_vae_r<r> and factor_vae summaries, as factor_vae's
    # one scored factor or one code: disentanglement or completeness missing with a reason, not 1 (its
    # normalised entropy capped at 1 too, which moved a uniform row's score by 2e-16 only)
    "dci": 2,
    # a constant code is fitted as disentanglement_lib does (it had scored 0, which raised a collapsed model's SAP);
    # 3: a single code dimension is missing with a reason (its second-best had been taken as 0)
    "sap": 3,
    # one label among the training points: missing with a reason, not that label's frequency; one varying
    # factor is refused (it had scored 1 for any representation)
    "beta_vae": 2,
    # a single code dimension is missing with a reason (its second-best had been taken as 0, which scored a
    # one-latent model up to 1). Its `factors` naming the factors varying in the sample, not in the dataset,
    # had changed no number (discrete_mig already averaged over those)
    "mig": 2,
    "mig_chen": 2,  # a single code dimension, as mig's
}


def metric_version(name):
    """The version of metric `name` this dlbench computes (VERSIONS)."""
    return VERSIONS.get(name, 1)


def version_problem(name, result):
    """Why a stored result of metric `name` is not of the version this dlbench computes, or None:
    one of an earlier version holds a value of another meaning."""
    recorded, current = result.get(VERSION_KEY, 1), metric_version(name)
    if recorded == current and not isinstance(recorded, bool):
        return None
    if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded < current:
        return (f"it is of {name} version {recorded}, before its values changed meaning (dlbench now computes "
                f"version {current})")
    return f"its {VERSION_KEY} is {recorded!r}, not {current}, the version of {name} this dlbench computes"


# the key of a run's result that records the sha256 of the weights it was computed from
WEIGHTS_DIGEST = "weights_sha256"
_BOOKKEEPING = {"seed", "elapsed_seconds", "dlbench_version", "metric", "mode", VERSION_KEY, WEIGHTS_DIGEST}


def value_keys(name, result):
    """The keys of a result of metric `name` that are measured numbers, not its parameters or
    bookkeeping (for a metric this version does not know, every number)."""
    params = set(metric_params(name)) if name in METRICS else set()
    return [k for k, v in result.items() if k not in params and k not in _BOOKKEEPING
            and isinstance(v, (int, float)) and not isinstance(v, bool)]
