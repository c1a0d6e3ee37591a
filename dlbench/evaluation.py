"""The evaluation stage: metrics of one run directory, each written to
RUN_DIR/metrics/<mode>/<metric>/results.json (atomically; a complete result is not recomputed)."""

import time
from pathlib import Path

import numpy as np
import torch

import dlbench
import dlbench.data
from dlbench import metrics, rundir
from dlbench.errors import UserError
from dlbench.model_functions import MODEL_FUNCTIONS, model_functions
from dlbench.postprocess import check_mode, load_representation, numpy_representation_fn, postprocess
from dlbench.train import load_trained_model

DEFAULT_METRICS = ("mig", "factor_vae", "recon_ll")


def metric_result_path(run_dir, mode, metric):
    return Path(run_dir) / "metrics" / mode / metric / "results.json"


def evaluate_run(run_dir, metric_names=DEFAULT_METRICS, mode="mean", device="cpu", seed=0,
                 params=None, overwrite=False, log=print):
    """Compute the metrics of a finished run; returns {metric: results dict}."""
    params = params or {}
    check_mode(mode)
    for name in [*metric_names, *params]:
        metrics.metric_params(name)  # a UserError for an unknown metric, before anything is written
    record = rundir.require_finished_run(run_dir)
    todo = [m for m in metric_names if overwrite or not metric_result_path(run_dir, mode, m).is_file()]
    results = {m: rundir.read_json(metric_result_path(run_dir, mode, m)) for m in metric_names if m not in todo}
    if not todo:
        return results
    # Every metric draws from its own seeded streams; forking keeps model construction from
    # moving torch's global generators, so evaluating inside a training script changes nothing there.
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        data = dlbench.data.dataset_from_record(record)  # before postprocess: a bad record writes nothing
        postprocess(run_dir, mode)  # skips a representation that is already complete
        representation_fn = numpy_representation_fn(load_representation(run_dir, mode, device), device)
        _evaluate_each(run_dir, todo, data, representation_fn, mode, device, seed, params, results, log)
    return results


def _evaluate_each(run_dir, todo, data, representation_fn, mode, device, seed, params, results, log):
    for name in todo:
        extra = dict(params.get(name, {}))
        if needs_model(name):
            extra.update(model_params(name, load_trained_model(run_dir, device), device, seed))
        tick = time.perf_counter()
        values = metrics.evaluate(name, data, representation_fn, seed=seed, **extra)
        result = {**values, "metric": name, "mode": mode, "seed": seed, "elapsed_seconds": time.perf_counter() - tick,
                  "dlbench_version": dlbench.__version__, **library_versions()}
        rundir.write_json(metric_result_path(run_dir, mode, name), result)
        log(f"{run_dir}: {name} " + ", ".join(f"{k}={values[k]:.4g}" for k in metrics.value_keys(name, values)))
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
