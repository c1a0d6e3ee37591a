"""The evaluation stage: metrics of one run directory, each written to
RUN_DIR/metrics/<mode>/<metric>/results.json (atomically; a complete result is not recomputed)."""

import time
from pathlib import Path

import numpy as np
import torch

import dlbench
import dlbench.data
from dlbench import metrics, rundir
from dlbench.errors import CorruptFile, UserError
from dlbench.model_functions import MODEL_FUNCTIONS, model_functions
from dlbench.postprocess import check_mode, load_representation, numpy_representation_fn, postprocess
from dlbench.train import load_trained_model

DEFAULT_METRICS = ("mig", "factor_vae", "recon_ll")


def metric_result_path(run_dir, mode, metric, params=None, seed=0):
    """RUN_DIR/metrics/<mode>/<metric><tag>/results.json: the tag names the protocol parameters
    that differ from the metric's defaults (metrics.protocol_tag), so results of different
    protocols live side by side."""
    tag = metrics.protocol_tag(metric, {**(params or {}), "seed": seed})
    return Path(run_dir) / "metrics" / mode / f"{metric}{tag}" / "results.json"


def follows_protocol(result, metric, params, seed):
    """Whether a stored result was computed with the protocol asked for (the metric's defaults,
    overridden by params, and the seed); parameters a result does not record took their default."""
    for key, default in metrics.protocol_params(metric).items():
        wanted = params.get(key, default)
        if wanted is not None and result.get(key, default) != wanted:
            return False
    return result.get("seed", 0) == seed


def stored_result(run_dir, mode, metric, params, seed):
    """The stored result of exactly this protocol, or None. Results written before protocols were
    part of the path sit under the plain metric name; they count when their parameters match."""
    # the command that computes exactly this protocol again (the plain one would redo the default)
    fix = (f"compute it again with dlb_evaluate {run_dir} --metrics {metric} --mode {mode}"
           + "".join(f" --metric_param {metric}.{key}={value!r}" for key, value in params.items())
           + (f" --seed {seed}" if seed != 0 else "") + " --overwrite")
    wanted = metric_result_path(run_dir, mode, metric, params, seed)
    for path in dict.fromkeys([wanted, metric_result_path(run_dir, mode, metric)]):
        if path.is_file():
            try:
                result = rundir.read_json(path, fix=fix)
            except CorruptFile:
                if path == wanted:
                    raise
                continue  # a damaged result of another protocol is no reason to refuse this one
            if follows_protocol(result, metric, params, seed):
                return result
    return None


def check_request(metric_names, mode, params):
    """Every metric, parameter and value asked for, checked before anything is computed."""
    check_mode(mode)
    if not metric_names:
        raise UserError("no metrics given; name at least one, e.g. --metrics mig")
    for name in metric_names:
        metrics.metric_params(name)  # a UserError for an unknown metric
    for name, values in params.items():
        if name not in metric_names:
            raise UserError(f"metric parameters given for {name!r}, which is not among the metrics asked for "
                            f"({', '.join(metric_names)}); add it to the metrics or drop its parameters")
        metrics.check_params(name, values)


def evaluate_run(run_dir, metric_names=DEFAULT_METRICS, mode="mean", device="cpu", seed=0,
                 params=None, overwrite=False, log=print):
    """Compute the metrics of a finished run; returns {metric: results dict}. A result stored for
    the same protocol (parameters and seed) is reused; another protocol is computed beside it."""
    params = params or {}
    metric_names = list(dict.fromkeys(metric_names))
    check_request(metric_names, mode, params)
    record = rundir.require_finished_run(run_dir)
    results = {}
    if not overwrite:
        for name in metric_names:
            stored = stored_result(run_dir, mode, name, params.get(name, {}), seed)
            if stored is not None:
                results[name] = stored
    todo = [m for m in metric_names if m not in results]
    if not todo:
        return results
    # Every metric draws from its own seeded streams; forking keeps model construction from
    # moving torch's global generators, so evaluating inside a training script changes nothing there.
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), rundir.hold_run(run_dir, "evaluated"):
        data = dlbench.data.dataset_from_record(record)  # before postprocess: a bad record writes nothing
        postprocess(run_dir, mode)  # skips a representation that is already complete
        representation_fn = numpy_representation_fn(load_representation(run_dir, mode, device), device)
        _evaluate_each(run_dir, todo, data, representation_fn, mode, device, seed, params, results, log)
    return results


def _evaluate_each(run_dir, todo, data, representation_fn, mode, device, seed, params, results, log):
    for number, name in enumerate(todo, 1):
        extra = dict(params.get(name, {}))
        path = metric_result_path(run_dir, mode, name, extra, seed)
        log(f"{run_dir}: [{number}/{len(todo)}] computing {name}{metrics.protocol_tag(name, {**extra, 'seed': seed})}...")
        if needs_model(name):
            extra.update(model_params(name, load_trained_model(run_dir, device), device, seed))
        tick = time.perf_counter()
        values = metrics.evaluate(name, data, representation_fn, seed=seed, **extra)
        elapsed = time.perf_counter() - tick
        result = {**values, "metric": name, "mode": mode, "seed": seed, "elapsed_seconds": elapsed,
                  "dlbench_version": dlbench.__version__, **library_versions()}
        rundir.write_json(path, result)
        log(f"{run_dir}: {name} " + ", ".join(f"{k}={values[k]:.4g}" for k in metrics.value_keys(name, values))
            + f" ({elapsed:.1f} s)")
        results[name] = result


def library_versions():
    """The versions of the libraries a metric's value can depend on, recorded with each result."""
    import scipy
    import sklearn

    return {"torch_version": torch.__version__, "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "sklearn_version": sklearn.__version__}


def needs_model(name):
    """Whether metric `name` takes functions of the whole VAE (encoder Gaussian, decoder, prior),
    not only the representation."""
    return bool(set(metrics.metric_params(name)) & set(MODEL_FUNCTIONS))


def model_params(name, model, device, seed):
    """The model functions metric `name` takes (dlbench.model_functions), seeded with seed, and the
    device for metrics that compute on it."""
    accepted = metrics.metric_params(name)
    functions = model_functions(model, device, seed)
    extra = {key: fn for key, fn in functions.items() if key in accepted}
    if "device" in accepted:
        extra["device"] = str(device)
    return extra


def log_likelihood_params(model, device, seed):
    """recon_ll's parameters for a VAE: log p(x|z) per image with z drawn from q(z|x) (seeded)."""
    return model_params("recon_ll", model, device, seed)


def parse_metric_params(bindings):
    """['factor_vae.num_train=1000', ...] -> {'factor_vae': {'num_train': 1000}}."""
    import ast

    params = {}
    for binding in bindings:
        key, sep, value = binding.partition("=")
        metric, dot, param = key.strip().partition(".")
        if not sep or not dot or not param:
            raise UserError(f"bad --metric_param '{binding}'; write METRIC.PARAM=VALUE, e.g. factor_vae.num_train=1000")
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed = value.strip()
        params.setdefault(metric, {})[param.strip()] = parsed
    return params
