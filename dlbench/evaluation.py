"""The evaluation stage: metrics of one run directory, each written to
RUN_DIR/metrics/<mode>/<metric>/results.json (atomically; a complete result is not recomputed)."""

import contextlib
import errno
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch

import dlbench
import dlbench.data
from dlbench import checks, metrics, rundir
from dlbench.errors import CorruptFile, Interrupted, UserError, interrupt_signal, shell_word
from dlbench.encode_once import ONCE, PER_DRAW, encoded, observations_are_grid_images, worth_encoding_once
from dlbench.model_functions import MODEL_FUNCTIONS, model_functions
from dlbench.postprocess import (SAMPLED_NOISE, check_mode, encode_batch_size, load_representation,
                                 metrics_representation_fn, of_other_weights, postprocess, weights_digest)
from dlbench.signals import stop_asked
from dlbench.train import load_trained_model
from dlbench.train.device import out_of_memory_said, tf32

DEFAULT_METRICS = ("mig", "factor_vae", "recon_ll")
LESS_EVALUATION = ("free its memory (another process may hold it), or evaluate on the CPU (--device cpu); the metrics "
                   "computed are kept, and the same command computes the others")


def requested_protocol(metric, params, seed):
    """The protocol asked for (params overriding the metric's defaults, and the seed) in the form
    metrics.protocol_tag reads, as a result records it."""
    return {**params, **metrics.requested(metric, params), "seed": seed}


def protocol_name(metric, params, seed):
    """The metric with the tag of the protocol asked for, as its folder is named: 'mig',
    'mig[seed=1]', 'factor_vae[num_train=500]'."""
    return f"{metric}{metrics.protocol_tag(metric, requested_protocol(metric, params, seed))}"


def metric_result_path(run_dir, mode, metric, params=None, seed=0):
    """RUN_DIR/metrics/<mode>/<metric><tag>/results.json: the tag names the protocol parameters
    that differ from the metric's defaults (metrics.protocol_tag), so results of different
    protocols live side by side."""
    tag = metrics.protocol_tag(metric, requested_protocol(metric, params or {}, seed))
    return rundir.metric_results_path(run_dir, mode, f"{metric}{tag}")


def follows_protocol(result, metric, params, seed):
    """Whether a stored result was computed with the protocol asked for (the metric's defaults,
    overridden by params, and the seed); parameters a result does not record took their default."""
    return metrics.protocol_changes(metric, result) == metrics.protocol_changes(
        metric, requested_protocol(metric, params, seed))


def stored_result(run_dir, mode, metric, params, seed):
    """The stored result of exactly this protocol and of the metric's current version, or None; a
    CorruptFile when its file is damaged (unreadable, or without its headline value as a number:
    aggregation would leave it out). A result of another version (metrics.version_problem) is None,
    as one never computed: its value meant otherwise, and aggregation leaves it out."""
    result = _stored_of_protocol(run_dir, mode, metric, params, seed)
    return None if result is None or metrics.version_problem(metric, result) else result


def _stored_of_protocol(run_dir, mode, metric, params, seed):
    """The stored result of exactly this protocol, whatever its version, or None (a CorruptFile as
    stored_result). Results written before protocols were part of the path sit under the plain
    metric name; they count when their parameters match."""
    # the command that computes exactly this protocol again (the plain one would redo the default)
    fix = (f"compute it again with dlb_evaluate {shell_word(run_dir)} --metrics {metric} --mode {mode}"
           + "".join(f" --metric_param {metric}.{key}={value!r}" for key, value in params.items())
           + (f" --seed {seed}" if seed != 0 else "") + " --overwrite")
    wanted = metric_result_path(run_dir, mode, metric, params, seed)
    for path in dict.fromkeys([wanted, metric_result_path(run_dir, mode, metric)]):
        if path.is_file():
            try:
                result = _read_result(path, metric, fix)
            except CorruptFile:
                if path == wanted:
                    raise
                continue  # a damaged result of another protocol is no reason to refuse this one
            if follows_protocol(result, metric, params, seed):
                return result
    return None


def _read_result(path, metric, fix):
    """The result in path, checked as aggregation checks it (metrics.result_problem)."""
    result = rundir.read_json(path, fix=fix)
    problem = metrics.result_problem(metric, metrics.current_keys(metric, result))
    if problem:
        raise CorruptFile(path, problem, fix, state="unusable")
    return result


def reusable_result(run_dir, mode, metric, params, seed, log, digest=None):
    """stored_result, where a damaged one is None too (it is computed again, as the line logged says,
    and so is one of another version, or of other weights than the run's now): a result is derived
    from the run's weights, so nothing is lost by replacing it. digest: the weights' (weights_digest)."""
    try:
        result = _stored_of_protocol(run_dir, mode, metric, params, seed)
    except CorruptFile as err:
        log(f"{run_dir}: '{err.path}' is damaged ({err.problem}); computing {metric} again")
        return None
    outdated = result is not None and metrics.version_problem(metric, result)
    if outdated:
        log(f"{run_dir}: the stored result of {protocol_name(metric, params, seed)} is outdated: {outdated}; "
            f"computing it again")
        return None
    if result is not None and of_other_weights(result, run_dir, digest):
        log(f"{run_dir}: the stored result of {protocol_name(metric, params, seed)} was computed from other weights "
            f"than {rundir.weights_path(run_dir)} holds now; computing it again")
        return None
    return result


def check_request(metric_names, mode, params, seed=0):
    """Every metric, parameter and value asked for, checked before anything is computed."""
    check_mode(mode)
    checks.integer("--seed", seed, minimum=0, maximum=2**32 - 1)  # what numpy's RandomState takes
    if not metric_names:
        raise UserError("no metrics given; name at least one, e.g. --metrics mig")
    for name in metric_names:
        metrics.metric_params(name)  # a UserError for an unknown metric
    for name, values in params.items():
        if name not in metric_names:
            raise UserError(f"metric parameters given for {name!r}, which is not among the metrics asked for "
                            f"({', '.join(metric_names)}); add it to the metrics or drop its parameters")
        metrics.check_params(name, values)


def result_mode(name, mode):
    """The mode folder a result of metric `name` lives in: model-side metrics do not depend on the
    representation mode (they use the encoder's Gaussian, the decoder and the prior), so they are
    computed once per run and kept under mean, whichever mode is evaluated."""
    return "mean" if needs_model(name) else mode


def evaluate_run(run_dir, metric_names=DEFAULT_METRICS, mode="mean", device="cpu", seed=0,
                 params=None, overwrite=False, log=print, encode_once=None, say_kept=True):
    """Compute the metrics of a finished run; returns {metric: results dict}. A result stored for
    the same protocol (parameters and seed) is reused; another protocol is computed beside it.
    encode_once: None decides by counting (dlbench.encode_once), True or False forces it.
    say_kept: a line naming the stored results reused (a study's rerun reuses every run's: its
    summary counts them, where a line each had advised dlb_evaluate's --overwrite to dlb_study)."""
    params = params or {}
    metric_names = list(dict.fromkeys(metric_names))
    check_request(metric_names, mode, params, seed)
    record = rundir.require_finished_run(run_dir)
    results = {}
    digest = weights_digest(run_dir)  # what the results computed here come from
    if not overwrite:
        for name in metric_names:
            stored = reusable_result(run_dir, result_mode(name, mode), name, params.get(name, {}), seed, log, digest)
            if stored is not None and result_mode(name, mode) == "sampled" and stored.get("noise") != SAMPLED_NOISE:
                log(f"{run_dir}: the stored sampled result of {protocol_name(name, params.get(name, {}), seed)} drew "
                    f"its noise call by call, which made it depend on the batch size; computing it again")
            elif stored is not None:
                results[name] = stored
    todo = [m for m in metric_names if m not in results]
    if results and say_kept:  # said, as for a --representation: a run evaluated already had printed nothing at all
        # of the protocols kept: a plain "mig" after --seed 1 read as the default protocol's
        kept = ", ".join(protocol_name(name, params.get(name, {}), seed) for name in results)
        log(f"{run_dir}: kept the stored results of {kept} (--overwrite computes them again)")
    if not todo:
        return results
    for name in todo:  # found now, not once the metric is computed
        _check_result_place(run_dir, name, metric_result_path(run_dir, result_mode(name, mode), name,
                                                              params.get(name, {}), seed))
    if not isinstance(record.get("dataset"), str):  # the one field of run.json the data needs without a default
        raise UserError(f"'{rundir.run_json_path(run_dir)}' does not name the dataset the run trained on; restore it "
                        f"from a copy, or train the run again with {rundir.retrain_command(run_dir)}")
    with _evaluating(run_dir, device, run_dir):
        data = dlbench.data.dataset_from_record(record)  # before postprocess: a bad record writes nothing
        model = record.get("model")
        _check_metrics_fit(todo, params, data, model.get("latent_dim") if isinstance(model, dict) else None)
        postprocess(run_dir, mode, digest=digest)  # skips a representation that is already complete
        representation_fn = metrics_representation_fn(load_representation(run_dir, mode, device), mode, device)
        model = _LazyModel(run_dir, device, seed)
        computed = {}  # the stop's line counts these: results also holds those kept from before (said above)
        _stop_if_asked(run_dir, computed, len(todo))
        with _saying_what_was_kept(run_dir, computed, len(todo)):
            for done, (name, result) in enumerate(compute_metrics(todo, data, representation_fn, seed, params,
                                                                  mode == "mean", model.params, log, str(run_dir),
                                                                  encode_once), start=1):
                result["mode"] = result_mode(name, mode)
                if result["mode"] == "sampled":
                    result["noise"] = SAMPLED_NOISE
                if digest is not None:
                    result[metrics.WEIGHTS_DIGEST] = digest
                rundir.write_json(metric_result_path(run_dir, result["mode"], name, params.get(name, {}), seed),
                                  result)
                results[name] = computed[name] = result
                if done < len(todo):
                    _stop_if_asked(run_dir, computed, len(todo))
    return results


def _check_metrics_fit(names, params, data, latent_dim=None):
    """Refuse the metrics that cannot score a model of `latent_dim` latents on `data`, all in one
    line, before the first is computed: each metric's own check had come after the ones before it
    were computed."""
    problem = metrics.metrics_problem(names, params, data, latent_dim, "pass --metric_param {}=N")
    if problem:
        raise UserError(problem)


def _check_result_place(top, name, path):
    """A folder where the result goes, a file where a folder above it (up to `top`) goes, or a
    folder it cannot be written in: found once the metric had been computed (minutes on a whole
    dataset), it had been said only then."""
    if path.exists() and not path.is_file():
        raise UserError(f"'{path}' is not a file, where {name}'s result goes; move it away and run the command again")
    obstacle = rundir.obstacle_to_folder(path.parent, top, writable=True)
    if obstacle and obstacle.is_dir():  # what writing the result would have met, said the same way
        code = errno.EROFS if os.statvfs(obstacle).f_flag & os.ST_RDONLY else errno.EACCES
        raise OSError(code, os.strerror(code), str(obstacle))
    if obstacle:
        raise UserError(f"'{obstacle}' is a file, where the folder of {name}'s result goes; move it away and run "
                        f"the command again")


def _stop_if_asked(run_dir, kept, count):
    """Interrupted, between two metrics, when a stop was asked without a signal reaching this
    thread (dlbench.signals.stop_asked_by: a pool's worker, a cancelled Ray task, a Slurm job
    warned of its end); the metrics done (kept) are kept."""
    signum = stop_asked()
    if signum:
        raise _evaluation_stopped(run_dir, kept, count, signum)


@contextlib.contextmanager
def _saying_what_was_kept(where, kept, count):
    """A Ctrl-C (or a signal turned into one) during the block ends it as Interrupted, saying which
    of the count metrics were computed and kept (kept fills as they are): the line had said only
    "interrupted by SIGINT"."""
    try:
        yield
    except KeyboardInterrupt as err:
        raise _evaluation_stopped(where, kept, count, interrupt_signal(err)) from None


def _evaluation_stopped(where, kept, count, signum):
    stopped = f"{where}: evaluation stopped by {signal.Signals(signum).name}"
    if not kept:
        which = "its metric was" if count == 1 else f"the first of its {count} metrics was"
        return Interrupted(f"{stopped} before {which} computed; the same command computes "
                           f"{'it' if count == 1 else 'them'}", signum)
    return Interrupted(f"{stopped} after {len(kept)} of {count} metrics ({', '.join(kept)}), kept; the same command "
                       f"computes the others", signum)


@contextlib.contextmanager
def _evaluating(out, device, what):
    """The context of computing metrics of `what` into folder `out` on device: the folder held.
    Every metric draws from its own seeded streams; forking keeps model construction from moving
    torch's global generators, so evaluating inside a training script changes nothing there. A GPU
    encodes in IEEE float32, as the CPU does (torch's default would convolve in TF32), and running
    out of its memory is one line."""
    cuda = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda), tf32(False), rundir.hold_run(out, "evaluated"), \
            out_of_memory_said(what, LESS_EVALUATION):
        yield


class _LazyModel:
    """The run's VAE, loaded when the first model-side metric needs it."""

    def __init__(self, run_dir, device, seed):
        self.run_dir, self.device, self.seed, self.model = run_dir, device, seed, None

    def params(self, name):
        if self.model is None:
            self.model = load_trained_model(self.run_dir, self.device)
        return model_params(name, self.model, self.device, self.seed)


def compute_metrics(names, data, representation_fn, seed, params, deterministic, model_params_of, log, label,
                    encode_once=None, progress=None):
    """Yield (name, result dict) for each metric in turn, saying which it computes and how long it
    took. Representation metrics are served from the dataset encoded once when that is exact and
    cheaper (encode_once None: decided by counting; see dlbench.encode_once); model-side metrics
    get model_params_of(name) (the functions of the model they take) and the dataset itself.
    progress (default: when stderr is a terminal) shows a bar with an ETA while observations are
    encoded (their number is known up front); a log or a pipe gets the lines only."""
    import sys

    progress = sys.stderr.isatty() if progress is None else progress
    if encode_once is None:
        encode_once = worth_encoding_once(data, deterministic, names, params)
    elif encode_once and not (deterministic and observations_are_grid_images(data)):
        raise UserError("encoding once is exact only for the mean representation of a dataset with one image per "
                        "grid cell")
    served = {}  # the representation metrics' (data, representation_fn), encoded on first use
    for number, name in enumerate(names, 1):
        extra = dict(params.get(name, {}))
        log(f"{label}: [{number}/{len(names)}] computing {protocol_name(name, extra, seed)}...")
        encoding = PER_DRAW
        if needs_model(name):
            metric_data, metric_fn = data, representation_fn
            extra.update(model_params_of(name))
        elif encode_once:
            if not served:
                tick = time.perf_counter()
                served["pair"] = encoded(data, representation_fn, progress)
                log(f"{label}: encoded all {len(data)} observations once ({time.perf_counter() - tick:.1f} s)")
            metric_data, metric_fn = served["pair"]
            encoding = ONCE
        else:
            metric_data, metric_fn = data, _CountingRepresentation(representation_fn, name, extra, progress)
        # a user's callable may draw from torch's global generator, the sampled representation draws
        # per observation from the seed (SampledCodes): both start afresh for each metric, so a
        # result is a function of its protocol, whatever came before it
        torch.manual_seed(seed)
        getattr(representation_fn, "restart", lambda seed: None)(seed)
        tick = time.perf_counter()
        values = metrics.evaluate(name, metric_data, metric_fn, seed=seed, **extra)
        getattr(metric_fn, "close", lambda: None)()
        elapsed = time.perf_counter() - tick
        record = {**metrics.requested(name, params.get(name, {})), "metric": name,
                  metrics.VERSION_KEY: metrics.metric_version(name), "seed": seed, "encoding": encoding,
                  "elapsed_seconds": elapsed, "dlbench_version": dlbench.__version__, **library_versions()}
        # a model-side metric is kept under mean, with no noise of a sampled representation (rotation's
        # 'noise' says how its Monte-Carlo noise is shared)
        after = set(RECORDED_AFTER) - ({"noise"} if needs_model(name) else set())
        clash = sorted(set(values) & (set(record) | after))
        if clash:  # the record's would have replaced the metric's values without a word
            raise TypeError(f"metric {name!r} returned {', '.join(map(repr, clash))}, which its result's record "
                            f"uses; give the values other names")
        log(f"{label}: {name} {_values_said(name, values)} ({elapsed:.1f} s)")
        yield name, {**values, **record}


MISSING = "_missing_reason"


def _values_said(name, values):
    """A result's numbers, then each value left out with its reason: a headline missing would
    otherwise go unsaid."""
    numbers = [f"{k}={values[k]}" if isinstance(values[k], int) else f"{k}={values[k]:.4g}"
               for k in metrics.value_keys(name, values)]
    missing = [f"{k[:-len(MISSING)]} missing ({v})" for k, v in values.items() if k.endswith(MISSING)]
    return "; ".join(part for part in (", ".join(numbers), "; ".join(missing)) if part)


class _CountingRepresentation:
    """representation_fn with a progress bar over the observations metric `name` will encode."""

    def __init__(self, representation_fn, name, params, progress):
        from tqdm import tqdm

        total = metrics.observations_encoded(name, params) if name in metrics.REPRESENTATION_METRICS else None
        self.fn = representation_fn
        self.bar = tqdm(total=total, desc=f"encoding for {name}", unit="img", disable=not progress, leave=False)

    def __call__(self, observations):
        codes = self.fn(observations)
        self.bar.update(len(observations))
        return codes

    def close(self):
        self.bar.close()


# model-side metrics an external encoder serves: they take the encoder's Gaussian and nothing else
ENCODER_METRICS = ("mig_chen", "total_correlation")


def evaluate_representation(representation, dataset, out, metric_names=DEFAULT_METRICS, device="cpu", seed=0,
                            params=None, overwrite=False, encoder=None, log=print):
    """Metrics of a representation dlbench did not train (dlbench.external: a TorchScript file or
    module.path:function) on a registered dataset, written to OUT/metrics/mean/<metric>/results.json
    like a run's, each as it is computed. Everything is checked first, the module on a few
    observations. A stored result is reused only for the same representation and dataset (its grid
    too), and encoder for the metrics that read it, their files unchanged. `out` is made absolute
    before the user's code runs, which may os.chdir. Returns {metric: results dict} of the metrics computed."""
    from dlbench import external

    params = params or {}
    metric_names = list(dict.fromkeys(metric_names))
    check_request(metric_names, "mean", params, seed)
    _check_encoder_read(encoder, metric_names)
    said, out = out, Path(out).absolute()  # the user's code may os.chdir: results and the claim stay where asked
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{said}' is a file, not a folder; choose another --out")
    run = rundir.enclosing_run(out)  # its metrics are its own model's: another representation's would pass for them
    if run is not None:
        where = "is a run directory" if run == out else f"is inside '{run}', a run directory"
        raise UserError(f"--out '{said}' {where} of dlb_train; choose another --out for the representation")
    study_root = _enclosing_study_root(out)  # where its results would be read by nothing, or clash with a run's
    if study_root is not None:
        where = "is the runs root" if study_root == out else f"is inside '{study_root}', the runs root"
        raise UserError(f"--out '{said}' {where} of a study, which holds runs only; choose another --out for the "
                        f"representation")
    run = rundir.first_run_under(out)  # dlb_aggregate reads the runs there, never a representation's results
    if run is not None:
        raise UserError(f"--out '{said}' holds dlb_train runs ('{Path(said) / run.relative_to(out)}'), whose "
                        f"aggregation would not read the representation's results beside them; choose another "
                        f"--out for the representation")
    for name in metric_names:
        if needs_model(name) and not (name in ENCODER_METRICS and encoder):
            needed = "--encoder (a module giving (mean, logvar))" if name in ENCODER_METRICS else \
                f"the model's {model_parts(name)}"
            raise UserError(f"{name} needs the model ({needed}), which a --representation does not give; evaluate "
                            f"a dlbench run for it, or choose metrics of the representation alone")
    for name in metric_names:  # found now, not once the metric is computed
        _check_result_place(out.anchor, name, metric_result_path(out, "mean", name, params.get(name, {}), seed))
    data = dlbench.data.get_dataset(dataset)
    _check_metrics_fit(metric_names, params, data)
    batch_size = encode_batch_size(device)
    # each file's digest as soon as it is loaded: an --encoder's import may os.chdir away from a relative path
    representation_fn = external.numpy_codes_fn(external.load_callable(representation), device, batch_size)
    representation_sha256 = external.source_digest(representation)
    encode_fn = encoder_sha256 = None
    if encoder:
        encode_fn = external.numpy_encode_fn(external.load_callable(encoder, "--encoder"), device, batch_size)
        encoder_sha256 = external.source_digest(encoder)
    with _evaluating(out, device, representation):
        external.probe(representation_fn, data)
        if encode_fn is not None:
            external.probe(encode_fn, data)
        described = {"representation": str(representation), "representation_sha256": representation_sha256,
                     "encoder": encoder, "encoder_sha256": encoder_sha256, "dataset": dataset,
                     "dataset_shape": dlbench.data.dataset_shape(data)}  # another grid: other results
        others = _results_of_others(out, described)
        if others and not overwrite:
            raise UserError(f"--out '{said}' holds results of {_whose(others[0][1], described)} "
                            f"({_folders(others)}); pass --overwrite to replace them with "
                            f"these, or choose another --out: one folder holds one representation's results")
        todo = [name for name in metric_names
                if overwrite or not _stored_for(reusable_result(out, "mean", name, params.get(name, {}), seed, log),
                                                _described_for(name, described))]
        kept = [protocol_name(name, params.get(name, {}), seed) for name in metric_names if name not in todo]
        if kept:
            log(f"{representation}: kept the results stored for it of {', '.join(kept)} (--overwrite computes them "
                f"again)")
        if others:  # --overwrite, every check passed: gone before the first new result is written, not after
            _remove_results_of_others(others, described, log)  # the last, so a stop had left both side by side
        model_fns = lambda name: {"encode_fn": encode_fn, **({"device": str(device)} if "device" in
                                                              metrics.metric_params(name) else {})}
        # a user's module may draw at random: its codes are not assumed to be a function of the image
        computed = {}
        with _saying_what_was_kept(said, computed, len(todo)):
            for name, result in compute_metrics(todo, data, representation_fn, seed, params, False, model_fns, log,
                                                str(representation)):
                result.update(_described_for(name, described), mode="mean")
                rundir.write_json(metric_result_path(out, "mean", name, params.get(name, {}), seed), result)
                computed[name] = result
    return computed


def _check_encoder_read(encoder, metric_names):
    """An --encoder that none of the metrics asked for reads is refused, as parameters of a metric
    not asked for are: it had been taken, and recorded in every result, so that the same command
    without it was refused as another representation's."""
    if encoder and not set(metric_names) & set(ENCODER_METRICS):
        raise UserError(f"--encoder is read only by {' and '.join(ENCODER_METRICS)}, neither of which is among the "
                        f"metrics asked for ({', '.join(metric_names)}); add one of them to --metrics, or drop "
                        f"--encoder")


# what a --representation result records of what it scored: a folder's results all share these...
_DESCRIBING = ("representation", "representation_sha256", "dataset", "dataset_shape")
# ...and a result of a metric that reads the encoder (ENCODER_METRICS) these too
_DESCRIBING_ENCODER = ("encoder", "encoder_sha256")
# what the evaluation of a run or a --representation adds to a result after compute_metrics
RECORDED_AFTER = ("mode", "noise", metrics.WEIGHTS_DIGEST, *_DESCRIBING, *_DESCRIBING_ENCODER)


def _described_for(name, described):
    """What a result of metric `name` records of what it scored: the encoder only where the metric
    reads it, so that the representation's other results are its own whichever encoder came along."""
    return described if name in ENCODER_METRICS else {key: described[key] for key in _DESCRIBING}


def _results_of_others(out, described):
    """[(folder, result)] of the results under out/metrics/ of another representation or dataset (or
    grid, or the same path's file since changed), and of another encoder when one is given, among
    the metrics that read it (results written before recorded it on every metric). Damaged ones
    are left to the reuse check, which says so and computes them again."""
    others = []
    for _, _, path in rundir.metric_results(out):
        try:
            result = rundir.read_json(path)
        except (CorruptFile, OSError):
            continue
        keys = _DESCRIBING
        if described["encoder"] and result.get("metric") in ENCODER_METRICS:
            keys += _DESCRIBING_ENCODER
        if any(key in result and not _same(key, result[key], described[key]) for key in keys):
            others.append((path.parent, result))
    return others


def _same(key, stored, now):
    """Whether a stored result's `key` describes what is scored now."""
    if key == "dataset_shape" and isinstance(stored, dict) and isinstance(now, dict):
        return dlbench.data.same_grid(stored, now)
    return stored == now


def _folders(others):
    return ", ".join(folder.name for folder, _ in others)


def _whose(result, described):
    """What a stored result scored, said against `described`."""
    representation = result.get("representation")
    if representation == described["representation"] and \
            result.get("representation_sha256") != described["representation_sha256"]:
        representation = f"an earlier {representation} (the file has changed since)"
    stored_grid = result.get("dataset_shape")
    grid = "" if result.get("dataset") != described["dataset"] or stored_grid is None or _same(
        "dataset_shape", stored_grid, described["dataset_shape"]) else " (another grid of it)"
    encoder = "" if result.get("encoder") is None or (result["encoder"], result.get("encoder_sha256")) == (
        described["encoder"], described["encoder_sha256"]) else f" with the encoder {result['encoder']}"
    return f"{representation} on {result.get('dataset')}{grid}{encoder}"


def _remove_results_of_others(others, described, log):
    """With --overwrite: the results of another representation (_results_of_others) go before any
    of this one's are written, so that the folder never holds two representations' results side by
    side, however the evaluation ends."""
    for folder, _ in others:
        shutil.rmtree(folder)
    log(f"removed the results of {_whose(others[0][1], described)} (--overwrite; one folder holds one "
        f"representation's results): {_folders(others)}")


def _enclosing_study_root(path):
    """The study runs root that path is, or lies in (the nearest), or None."""
    from dlbench.study import STUDY_JSON

    path = Path(path).absolute()
    return next((folder for folder in (path, *path.parents) if (folder / STUDY_JSON).is_file()), None)


def _stored_for(result, described):
    """Whether a stored result is of the representation `described` (_described_for its metric:
    its files unchanged since; a module without a file is never taken to be unchanged)."""
    digests = [described[key] for key in ("representation_sha256", "encoder_sha256") if key in described]
    return (result is not None and None not in digests
            and all(result.get(key) == value for key, value in described.items()))


def library_versions():
    """The versions of the libraries a metric's value can depend on, recorded with each result.
    Read from the installed packages' metadata: importing scikit-learn only to ask would add more
    than a second to evaluating with metrics that do not use it."""
    from importlib.metadata import version

    return {"torch_version": torch.__version__, "numpy_version": np.__version__,
            "scipy_version": version("scipy"), "sklearn_version": version("scikit-learn")}


def needs_model(name):
    """Whether metric `name` takes functions of the whole VAE (encoder Gaussian, decoder, prior),
    not only the representation."""
    return bool(set(metrics.metric_params(name)) & set(MODEL_FUNCTIONS))


# the parts of a VAE each model function (dlbench.model_functions) runs, to say what a metric needs
MODEL_PARTS = {"encode_fn": ("encoder",), "log_likelihood_fn": ("encoder", "decoder"),
               "elbo_terms_fn": ("encoder", "decoder", "prior"), "log_weights_fn": ("encoder", "decoder", "prior"),
               "decode_log_likelihood_fn": ("decoder",), "likelihood": ("decoder",),
               "log_prior_fn": ("prior",), "prior_sample_fn": ("prior",)}


def model_parts(name):
    """The parts of the VAE metric `name` runs, in the order encoder, decoder, prior: e.g. 'encoder
    and prior'."""
    accepted = metrics.metric_params(name)
    used = {part for key, parts in MODEL_PARTS.items() if key in accepted for part in parts}
    parts = [part for part in ("encoder", "decoder", "prior") if part in used]
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 1 else parts)


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
        metric, dot, param = (part.strip() for part in key.partition("."))
        if not sep or not dot or not metric or not param:
            raise UserError(f"bad --metric_param '{binding}'; write METRIC.PARAM=VALUE, e.g. factor_vae.num_train=1000")
        try:
            parsed = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            parsed = value.strip()
        given = params.setdefault(metric, {})
        if param in given and given[param] != parsed:  # which one was meant is a guess
            raise UserError(f"--metric_param gives {metric}.{param} twice ({given[param]!r} and {parsed!r}); "
                            f"give it once")
        given[param] = parsed
    return params
