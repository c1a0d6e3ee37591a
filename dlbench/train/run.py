"""One training run into a run directory: fresh, resumed, or left alone when finished."""

import csv
import io
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

import dlbench
from dlbench import rundir
import dlbench.data
from dlbench.errors import UserError
from dlbench.nn import build_vae
from dlbench.train import checkpoints
from dlbench.train.loop import NonFiniteLoss, Trainer
from dlbench.train.samples import write_samples

RESUMABLE = ("running", "interrupted")


def train_run(run_dir, spec, device, config_text="", overwrite=False, progress=True):
    """Train spec into run_dir and return the final status ('done', 'failed' or 'skipped')."""
    run_dir = Path(run_dir)
    identity = spec.identity()
    resume = _prepare_run_dir(run_dir, identity, overwrite)
    if resume == "skip":
        print(f"{run_dir}: training already finished; left alone (use --overwrite to train again)",
              file=sys.stderr)
        return "skipped"
    data = dlbench.data.dataset_from_record(identity)  # a bad dataset stops us before anything is removed
    if resume == "restart":
        shutil.rmtree(run_dir)
        resume = None
    trainer = Trainer(spec, data, device)
    if resume:
        state = checkpoints.load(resume, device)
        trainer.load_state_dict(state)
        _truncate_log(run_dir, trainer.step)
    else:
        rundir.atomic_write_text(run_dir / "model" / "config.gin", config_text)
    started = time.time()
    # Settings that follow from the identity, recorded but not compared on resume: those the prior
    # took from the data (PCA values), and everything the dataset resolved to (a drawn mixing matrix).
    prepared = {}
    if trainer.model.config["prior"] != spec.model["prior"]:
        prepared["prepared_prior"] = trainer.model.config["prior"]
    if hasattr(data, "settings"):
        prepared["dataset_settings"] = data.settings()
    rundir.update_run(run_dir, **identity, **prepared, status="running", device=str(device), step=trainer.step,
                      dlbench_version=dlbench.__version__, git_revision=rundir.git_revision(),
                      started=rundir.read_run(run_dir).get("started", started) if resume else started)
    return _train_to_end(run_dir, trainer, spec, progress, started)


def _train_to_end(run_dir, trainer, spec, progress, started):
    t = spec.train
    log = _LogWriter(run_dir / "model" / "train_log.csv")
    bar = tqdm(total=t["steps"], initial=trainer.step, disable=not progress, desc=run_dir.name, unit="step")
    last = {}

    def on_log(step, means, images_per_second):
        last.clear()
        last.update(means)
        log.write({"step": step, "images_per_second": round(images_per_second, 1), **means})
        bar.set_postfix(loss=f"{means['loss']:.2f}", refresh=False)
        bar.update(step - bar.n)

    def on_checkpoint():
        checkpoints.save_checkpoint(run_dir, trainer.state_dict())
        rundir.update_run(run_dir, step=trainer.step)

    tick = time.perf_counter()
    first_step = trainer.step
    try:
        trainer.run(t["steps"], t["log_every"], on_log, on_checkpoint, t["checkpoint_every"])
    except NonFiniteLoss as err:
        rundir.update_run(run_dir, status="failed", error=str(err), failed_step=err.step)
        print(f"{run_dir}: {err}; run marked failed", file=sys.stderr)
        return "failed"
    except KeyboardInterrupt:
        rundir.update_run(run_dir, status="interrupted")
        raise
    finally:
        bar.close()
    train_seconds = time.perf_counter() - tick
    _finish(run_dir, trainer, last, train_seconds, trainer.step - first_step, started)
    return "done"


def _finish(run_dir, trainer, last, train_seconds, steps_done, started):
    model_dir = run_dir / "model"
    checkpoints.save_atomic({"model": trainer.model.state_dict(), "model_config": trainer.model.config},
                            model_dir / "checkpoint.pt")
    shown, scale = trainer.shown_images()
    write_samples(trainer.model, shown, scale, model_dir / "samples")
    images_per_second = steps_done * trainer.spec.train["batch_size"] / max(train_seconds, 1e-9)
    rundir.write_json(model_dir / "results.json", {
        **last, "steps": trainer.step, "train_seconds_this_session": train_seconds,
        "images_per_second": images_per_second, "dlbench_version": dlbench.__version__})
    shutil.rmtree(checkpoints.checkpoint_dir(run_dir), ignore_errors=True)
    rundir.update_run(run_dir, status="done", step=trainer.step, finished=time.time(),
                      elapsed_seconds=time.time() - started)


def _prepare_run_dir(run_dir, identity, overwrite):
    """Decide, without touching the disk, what to do with run_dir: None (fresh), 'restart'
    (remove the old run, then fresh), a checkpoint path (resume) or 'skip'."""
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"'{run_dir}' exists and is not a directory; choose another --run_dir")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not rundir.is_run(run_dir):
        raise UserError(f"'{run_dir}' exists, is not empty and is not a run; choose another --run_dir")
    if not rundir.is_run(run_dir):
        return None
    if overwrite:
        return "restart"
    record = rundir.read_run(run_dir)
    if record.get("status") in ("done", "failed"):
        return "skip"
    if _comparable(record) != _comparable(identity):
        raise UserError(f"'{run_dir}' holds an unfinished run with a different config; "
                        f"use the same config to resume it, --overwrite to replace it, or another --run_dir")
    latest = checkpoints.latest_checkpoint(run_dir)
    return latest or "restart"  # interrupted before the first checkpoint: start again


def _comparable(record):
    """The identity keys of a record or identity; dataset_options is absent (None) in both where unset."""
    keys = ("method", "hyperparameters", "dataset", "dataset_options", "seed", "train", "model")
    return {k: record.get(k) for k in keys}


def _truncate_log(run_dir, step):
    """Drop log rows written after the checkpoint a resumed run restarts from."""
    path = run_dir / "model" / "train_log.csv"
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
        fields = rows[0].keys() if rows else []
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(fields))
    writer.writeheader()
    writer.writerows(row for row in rows if int(row["step"]) <= step)
    rundir.atomic_write_text(path, buffer.getvalue() if rows else "")


class _LogWriter:
    """Appends rows to train_log.csv, writing the header once."""

    def __init__(self, path):
        self.path = path
        self.has_header = path.is_file() and path.stat().st_size > 0

    def write(self, row):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if not self.has_header:
                writer.writeheader()
                self.has_header = True
            writer.writerow(row)


def load_trained_model(run_dir, device="cpu"):
    """The VAE of a finished run, on device, in eval mode."""
    state = checkpoints.load(Path(run_dir) / "model" / "checkpoint.pt", device)
    model = build_vae(state["model_config"]).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


def train_from_gin(gin_files=(), gin_params=(), run_dir=None, device="auto", overwrite=False, progress=True):
    """Parse the config, check it, and train; returns (run_dir, status)."""
    from dlbench.config import operative_config, parse_gin, resolve_run_spec
    from dlbench.train.device import resolve_device

    parse_gin(gin_files, gin_params)
    spec = resolve_run_spec()
    device = resolve_device(device)
    run_dir = Path(run_dir) if run_dir else rundir.default_run_dir(spec.identity())
    return run_dir, train_run(run_dir, spec, device, operative_config(), overwrite, progress)
