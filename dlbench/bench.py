"""Benchmarks: figures, not pass/fail.

train: training images per second of dlbench's loop per architecture, and, in the same run,
of a straightforward PyTorch loop of the same model fed by a per-sample Dataset and DataLoader
with a per-step loss.item() (the way the public PyTorch code of the field trains), at batch 64.
metrics: seconds per metric at default settings on dSprites (a) with an untrained conv encoder
(codes standardised so that no dimension is pruned; recon_ll with the model's log-likelihood), and
(b) on a cheap lookup representation that isolates the metric's own cost: FactorsAsObservations wraps the
dataset so that the observation of a point is its factor vector (the same factor draws as the
dataset, no image gather) and ExactLinearMap maps it by a fixed random matrix (exact arithmetic,
so the codes do not depend on the batching).
On (b) each metric with a straightforward baseline (dlbench.metrics.baselines: one
representation_fn call per vote / per point batch and Python loops, the way disentanglement_lib's
code works) is also timed, with the speed-up baseline / vectorised and a check that both give the
same result for the seed.
"""

import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from dlbench.config import RunSpec
from dlbench.data.ground_truth import GroundTruthData
from dlbench.errors import UserError
from dlbench.methods import BetaVAE
from dlbench.train.device import tf32
from dlbench.train.loop import Trainer, build_model, build_optimizer, float32_arithmetic

BENCH_IMAGES = 8192


class BenchImages:
    """Random dSprites images, enough to benchmark training without the full file."""

    def __init__(self, num=BENCH_IMAGES, seed=0):
        from dlbench.data.dsprites import render

        rs = np.random.RandomState(seed)
        sizes = [1, 3, 6, 40, 32, 32]
        classes = np.stack([rs.randint(n, size=num) for n in sizes], axis=1)
        self.images = render(classes)[:, None]
        self.observation_shape = (1, 64, 64)
        self.pixel_scale = 1.0

    def release_images(self):
        """Kept: a run's device copy (on a GPU) would release a dataset's host images, but the
        DataLoader loop compared with it reads them."""


def bench_spec(architecture, batch_size):
    """A beta-VAE run (beta 4, latent 10, Bernoulli) of `architecture` on BenchImages."""
    train = dict(method=BetaVAE(4.0), steps=0, batch_size=batch_size, lr=1e-4, seed=0, checkpoint_every=10 ** 9,
                 log_every=10 ** 9, adam_betas=[0.9, 0.999], adam_eps=1e-8)
    return RunSpec(method=train["method"], train=train, dataset={"name": "bench"},
                   model={"architecture": architecture, "latent_dim": 10, "likelihood": "bernoulli"})


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class _DlbenchLoop:
    def __init__(self, spec, data, device):
        self.trainer = Trainer(spec, data, device)

    def steps(self, n):
        self.trainer.run(self.trainer.step + n, log_every=10 ** 9, on_log=lambda *a: None)


class _PerSampleDataset(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return torch.from_numpy(self.images[i].astype(np.float32))


class _DataLoaderLoop:
    """The way the public PyTorch code of the field trains: a per-sample Dataset, a DataLoader,
    a host-to-device copy and a loss.item() every step."""

    def __init__(self, spec, data, device):
        torch.manual_seed(0)
        self.spec, self.device, self.method = spec, device, spec.method
        self.model = build_model(spec, data).to(device)
        self.optimizer = build_optimizer(spec, self.model)
        loader = torch.utils.data.DataLoader(_PerSampleDataset(data.images), batch_size=spec.train["batch_size"],
                                             shuffle=True, drop_last=True)
        self.batches = (x for _ in iter(int, 1) for x in loader)

    def steps(self, n):
        # in the arithmetic dlbench's loop trains in (IEEE float32 on a GPU too), so that the ratio
        # compares the loops, not TF32 against float32
        with float32_arithmetic(self.spec):
            for _ in range(n):
                loss, _ = self.method.loss(self.model, next(self.batches).to(self.device))
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                loss.item()


def best_images_per_second(loops, device, steps, warmup, rounds, batch_size):
    """Best throughput of each loop over `rounds` alternating timed blocks (alternating and taking
    the best keeps background noise from favouring either loop)."""
    for loop in loops:
        loop.steps(warmup)
    best = [0.0] * len(loops)
    for _ in range(rounds):
        for i, loop in enumerate(loops):
            sync(device)
            tick = time.perf_counter()
            loop.steps(steps)
            sync(device)
            best[i] = max(best[i], steps * batch_size / (time.perf_counter() - tick))
    return best


def bench_train(device, steps=None, warmup=None, rounds=3, batch_size=64, architectures=("conv", "mlp")):
    cpu = device.type == "cpu"
    steps = steps or (20 if cpu else 300)
    warmup = warmup or (5 if cpu else 50)
    threads = torch.get_num_threads()
    if cpu:
        torch.set_num_threads(1)  # the comparison the README quotes is single-threaded
    try:
        data = BenchImages()
        figures = {"device": device_name(device), "batch_size": batch_size, "steps_per_round": steps,
                   "rounds": rounds, "cpu_threads": torch.get_num_threads() if cpu else None}
        for arch in architectures:
            spec = bench_spec(arch, batch_size)
            loops = [_DlbenchLoop(spec, data, device), _DataLoaderLoop(spec, data, device)]
            ours, theirs = best_images_per_second(loops, device, steps, warmup, rounds, batch_size)
            figures[arch] = {"dlbench_images_per_second": ours, "dataloader_images_per_second": theirs,
                             "ratio": ours / theirs}
        return figures
    finally:
        torch.set_num_threads(threads)


class FactorsAsObservations(GroundTruthData):
    """A dataset's factor grid whose observation of a point is its own factor vector (float32).

    It samples factors exactly as the wrapped dataset does (the same random numbers), but
    rendering is a cast instead of an image gather, and with ExactLinearMap encoding is one small
    matrix product: the time measured is the metric's own (sampling, batching, votes,
    discretisation, estimators, classifiers), not the data's or the encoder's.
    """

    def __init__(self, data):
        self.data = data
        self.name = f"{data.name}-factors"
        self.factor_names = list(data.factor_names)
        self.factors_num_values = list(data.factors_num_values)
        self.observation_shape = (len(self.factors_num_values),)

    @property
    def images(self):
        return self.factors_of(np.arange(len(self))).astype(np.float32)

    def sample_factors(self, num, random_state):
        return self.data.sample_factors(num, random_state)

    def sample_observations_from_factors(self, factors, random_state):
        del random_state
        return np.asarray(factors, dtype=np.float32)


class ExactLinearMap:
    """The lookup representation: codes = factors @ W for FactorsAsObservations observations,
    W a fixed (num_factors, num_codes) matrix drawn from a standard normal and rounded to
    multiples of 2^-10. With integer factors every product and partial sum is then exactly
    representable, so the BLAS product is exact whatever its blocking, and a point's code never
    depends on the batch it is encoded in (the baselines batch differently and must agree
    bit for bit). With more codes than factors the codes are linearly dependent (rank
    num_factors): the Gaussian total correlation of `unsupervised` is then reported missing."""

    def __init__(self, num_factors, num_codes=10, seed=0):
        normal = np.random.RandomState(seed).standard_normal((num_factors, num_codes))
        self.weights = np.round(normal * 1024) / 1024

    def __call__(self, observations):
        return np.asarray(observations, dtype=np.float64) @ self.weights


HEADLINE_METRICS = ("mig", "factor_vae", "recon_ll")


def representation_only(name):
    """Whether metric `name` needs nothing but a representation function (no model functions)."""
    from dlbench.metrics import metric_params

    return not any(param.endswith("_fn") for param in metric_params(name))


def benchmark_metric_names(names=None, lookup_only=False):
    """The metrics to time: `names` checked, or every registered representation-only metric and
    (with the conv model) recon_ll, the one model metric the benchmark builds the function for."""
    from dlbench.metrics import available_metrics, metric_params

    if names is None:
        return [n for n in available_metrics() if representation_only(n) or (n == "recon_ll" and not lookup_only)]
    for name in names:
        metric_params(name)  # a UserError naming the available metrics
        if lookup_only and not representation_only(name):
            raise UserError(f"metric {name} needs the model, which --lookup-only skips; drop --lookup-only "
                            "or the metric")
        if not (representation_only(name) or name == "recon_ll"):
            raise UserError(f"metric {name} needs the model's functions; dlb_bench metrics times the "
                            "representation-only metrics and recon_ll")
    return list(names)


def _seconds(fn, *args, **kwargs):
    tick = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - tick, result


def conv_representation(data, device):
    """(model, representation_fn): an untrained conv VAE and its mean codes, standardised."""
    from dlbench.nn import VAE
    from dlbench.postprocess import MeanRepresentation, numpy_representation_fn

    torch.manual_seed(0)
    model = VAE("conv", data.observation_shape, 10, "bernoulli").to(device).eval()
    encode = numpy_representation_fn(MeanRepresentation(model.encoder), device)
    reference = encode(data.sample_observations(1000, np.random.RandomState(1)))
    center, spread = reference.mean(0), reference.std(0) + 1e-8

    def representation_fn(observations):
        # An untrained encoder's codes barely vary, so the FactorVAE score would prune every
        # dimension and stop early; standardising costs nothing and makes it do the full work.
        return (encode(observations) - center) / spread

    return model, representation_fn


def bench_metrics_conv(data, names, device, params):
    """Seconds per metric with an untrained conv encoder (codes standardised so that no dimension
    is pruned) on data; recon_ll with the model's log-likelihood."""
    from dlbench.evaluation import log_likelihood_params
    from dlbench.metrics import evaluate

    with tf32(False):  # as dlb_evaluate encodes: IEEE float32 on a GPU too
        model, representation_fn = conv_representation(data, device)
        data.images  # read the file before the clock starts
        seconds = {}
        for name in names:
            extra = log_likelihood_params(model, device, seed=0) if name == "recon_ll" else {}
            seconds[name] = _seconds(evaluate, name, data, representation_fn, seed=0,
                                     **extra, **params.get(name, {}))[0]
    return seconds


def bench_metrics_lookup(data, names, params, repeats=1):
    """Per metric on the lookup representation: seconds of the metric, of its straightforward
    baseline (dlbench.metrics.baselines) where there is one, their ratio, and whether the two
    results are identical. The best of `repeats` alternating runs of each (so that background
    load does not favour either)."""
    from dlbench.metrics import evaluate
    from dlbench.metrics.baselines import BASELINES, evaluate_baseline

    lookup = FactorsAsObservations(data)
    representation_fn = ExactLinearMap(lookup.num_factors)
    figures = {}
    for name in names:
        if not representation_only(name):
            continue
        args = (name, lookup, representation_fn)
        runs = [evaluate] + ([evaluate_baseline] if name in BASELINES else [])
        best, results = [float("inf")] * len(runs), [None] * len(runs)
        with warnings.catch_warnings():
            # the classifiers' convergence notices say nothing about speed
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(repeats):
                for i, run in enumerate(runs):
                    seconds, results[i] = _seconds(run, *args, seed=0, **params.get(name, {}))
                    best[i] = min(best[i], seconds)
        row = {"seconds": best[0]}
        if len(runs) > 1:
            row.update(baseline_seconds=best[1], speedup=best[1] / best[0], same_result=results[0] == results[1])
        figures[name] = row
    return figures


def bench_metrics(device, names=None, dataset="dsprites", lookup_only=False, params=None, data=None, repeats=1):
    """Figures of `dlb_bench metrics`: seconds per metric at default settings (overridden by
    params, {metric: {param: value}}) with the untrained conv model (unless lookup_only) and on
    the lookup representation against the baselines."""
    import dlbench.data

    from dlbench.evaluation import check_request
    from dlbench.metrics import metric_params
    from dlbench.metrics.utils import check_int

    names = benchmark_metric_names(names, lookup_only)
    repeats = check_int("repeats", repeats)
    params = params or {}
    for name in params:
        metric_params(name)  # a UserError for a setting of an unknown metric
    # as dlb_evaluate: settings of a metric not timed, or not of its protocol, are refused before any timing
    check_request(names, "mean", params)
    data = data if data is not None else dlbench.data.get_dataset(dataset)
    # how many observations the file holds: a reduced grid's figures (dlb_data make --keep) read as the
    # whole dataset's otherwise
    figures = {"device": device_name(device), "dataset": dataset, "observations": len(data),
               "cpu_threads": torch.get_num_threads()}
    if not lookup_only:
        figures["conv_seconds"] = bench_metrics_conv(data, names, device, params)
    figures["lookup"] = bench_metrics_lookup(data, names, params, repeats)
    return figures


# What one run's evaluation computes: dlb_evaluate's default set, and disentanglement_lib's
# unsupervised-study set without DCI (whose gradient-boosted trees take minutes on their own).
EVALUATION_SETS = {"default": ["mig", "factor_vae", "recon_ll"],
                   "disentanglement_lib": ["mig", "factor_vae", "beta_vae", "sap", "modularity_explicitness",
                                           "unsupervised", "recon_ll"]}


def bench_per_run(device, dataset="dsprites", sets=None, data=None, log=print, params=None):
    """A run's evaluation both ways, for each set of EVALUATION_SETS at the metrics' default
    protocols with the untrained conv model: seconds drawing and encoding per metric as the
    metrics do, and with the dataset encoded once; where the time goes; whether the results agree.
    params ({metric: {param: value}}) shrinks the protocols, for tests."""
    import dlbench.data

    data = data if data is not None else dlbench.data.get_dataset(dataset)
    with tf32(False):  # as dlb_evaluate encodes: IEEE float32 on a GPU too
        return _per_run_figures(data, dataset, device, sets or EVALUATION_SETS, log, params)


def _per_run_figures(data, dataset, device, sets, log, params):
    """bench_per_run's figures, in the arithmetic of the caller's choosing."""
    from dlbench.evaluation import compute_metrics, log_likelihood_params, needs_model
    from dlbench.metrics import REPRESENTATION_METRICS, observations_encoded

    model, representation_fn = conv_representation(data, device)
    data.images  # read the file before the clock starts
    model_params_of = lambda name: log_likelihood_params(model, device, seed=0) if needs_model(name) else {}
    figures = {"device": device_name(device), "dataset": dataset, "observations": len(data),
               "cpu_threads": torch.get_num_threads()}
    for set_name, names in sets.items():
        params = params or {}
        row = {"metrics": ",".join(names), "observations_drawn": sum(
            observations_encoded(n, params.get(n)) for n in names if n in REPRESENTATION_METRICS)}
        results = {}
        for way, once in (("per_draw", False), ("once", True)):
            log(f"{set_name}: {way}...")
            seconds, results[way] = _seconds(lambda: dict(compute_metrics(
                names, data, representation_fn, 0, params, True, model_params_of, lambda *_: None, set_name, once)))
            row[f"{way}_seconds"] = seconds
            row[f"{way}_metric_seconds"] = {n: r["elapsed_seconds"] for n, r in results[way].items()}
        # the once path's time outside the metrics is the one encoding of the dataset
        row["encode_once_seconds"] = row["once_seconds"] - sum(row["once_metric_seconds"].values())
        row["speedup"] = row["per_draw_seconds"] / row["once_seconds"]
        row["same_results"] = all(_values(results["once"][n]) == _values(results["per_draw"][n]) for n in names)
        figures[set_name] = row
    return figures


def _values(result):
    return {k: v for k, v in result.items() if k not in ("elapsed_seconds", "encoding")}


def device_name(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import os
    import platform

    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
