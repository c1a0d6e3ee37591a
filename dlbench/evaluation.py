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
from dlbench.postprocess import (check_mode, encode_batch_size, load_representation, numpy_representation_fn,
                                 postprocess)
from dlbench.train import load_trained_model

DEFAULT_METRICS = ("mig", "factor_vae", "recon_ll")
MODEL_METRICS = ("recon_ll",)  # metrics that need the whole VAE, not only the representation


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
    postprocess(run_dir, mode)  # skips a representation that is already complete
    data = dlbench.data.get_dataset(record["dataset"])
    representation_fn = numpy_representation_fn(load_representation(run_dir, mode, device), device)
    for name in todo:
        extra = dict(params.get(name, {}))
        if name in MODEL_METRICS:
            extra.update(log_likelihood_params(load_trained_model(run_dir, device), device, seed))
        tick = time.perf_counter()
        values = metrics.evaluate(name, data, representation_fn, seed=seed, **extra)
        result = {**values, "metric": name, "mode": mode, "seed": seed, "elapsed_seconds": time.perf_counter() - tick,
                  "dlbench_version": dlbench.__version__, **library_versions()}
        rundir.write_json(metric_result_path(run_dir, mode, name), result)
        log(f"{run_dir}: {name} " + ", ".join(f"{k}={values[k]:.4g}" for k in metrics.value_keys(name, values)))
        results[name] = result
    return results


def library_versions():
    """The versions of the libraries a metric's value can depend on, recorded with each result."""
    import scipy
    import sklearn

    return {"torch_version": torch.__version__, "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "sklearn_version": sklearn.__version__}


def log_likelihood_params(model, device, seed):
    """recon_ll's parameters for a VAE: log p(x|z) per image with z drawn from q(z|x) (seeded)."""
    generator = torch.Generator(device=device).manual_seed(seed)

    batch_size = encode_batch_size(device)

    @torch.no_grad()
    def log_likelihood_fn(observations):
        out = []
        for start in range(0, len(observations), batch_size):
            x = torch.as_tensor(observations[start:start + batch_size], device=device, dtype=torch.float32)
            mean, logvar = model.encode(x)
            z = model.sample_z(mean, logvar, generator)
            out.append(model.likelihood.log_prob(model.decode(z), x).double().cpu().numpy())
        return np.concatenate(out)

    return {"log_likelihood_fn": log_likelihood_fn, "likelihood": model.config["likelihood"]}


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
