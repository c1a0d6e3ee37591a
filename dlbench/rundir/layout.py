"""Every path of a run directory, each named by one function here. Nothing else in dlbench builds a
run path by hand (tests/test_rundir_layout.py checks), so the layout below is this file alone:

RUN_DIR/
  run.json                      identity and status (dlbench.rundir.record)
  claim.json                    the claim of the process writing here now (dlbench.rundir.claims)
  model/config.gin              operative gin config
  model/checkpoint.pt           final weights
  model/checkpoints/            periodic checkpoints for resume (step_<step>.pt, newest two)
  model/train_log.csv           step-wise scalars
  model/results.json            final training scalars
  model/samples/                PNG reconstructions and traversals
  postprocessed/<mode>/         representation function (representation.pt) and results.json
  metrics/<mode>/<metric>/results.json   (<metric> carries the protocol tag: mig[seed=3])
"""

import hashlib
import json
from pathlib import Path

RUN_JSON = "run.json"
CLAIM_JSON = "claim.json"
RESULTS_JSON = "results.json"


def run_json_path(run_dir):
    return Path(run_dir) / RUN_JSON


def claim_path(run_dir):
    return Path(run_dir) / CLAIM_JSON


def is_claim_file(name):
    """Whether a file of a run directory is a claim's: the claim, a claim being made (its draft and
    the draft's temporary file) or one being broken. Another process's may appear at any moment."""
    return name == CLAIM_JSON or name.lstrip(".").startswith(f"{CLAIM_JSON}.")


# training: model/


def model_dir(run_dir):
    """Everything training writes."""
    return Path(run_dir) / "model"


def config_gin_path(run_dir):
    """The operative gin config the run was started with (every bound value)."""
    return model_dir(run_dir) / "config.gin"


def weights_path(run_dir):
    """The final weights, written when training finishes."""
    return model_dir(run_dir) / "checkpoint.pt"


def checkpoints_dir(run_dir):
    """The periodic checkpoints resume starts from; removed when training finishes."""
    return model_dir(run_dir) / "checkpoints"


def checkpoint_path(run_dir, step):
    # zero-padded, so that sorting the names sorts the steps
    return checkpoints_dir(run_dir) / f"step_{step:09d}.pt"


def checkpoint_paths(run_dir):
    """The periodic checkpoints present, newest first."""
    return sorted(checkpoints_dir(run_dir).glob("step_*.pt"), reverse=True)


def train_log_path(run_dir):
    return model_dir(run_dir) / "train_log.csv"


def train_results_path(run_dir):
    """The final training scalars (written when training finishes)."""
    return model_dir(run_dir) / RESULTS_JSON


def samples_dir(run_dir):
    return model_dir(run_dir) / "samples"


# postprocessing: postprocessed/<mode>/


def postprocessed_dir(run_dir, mode):
    return Path(run_dir) / "postprocessed" / mode


def representation_path(run_dir, mode):
    """The TorchScript representation function of `mode`."""
    return postprocessed_dir(run_dir, mode) / "representation.pt"


def postprocess_results_path(run_dir, mode):
    """Written after the representation: its presence marks the representation complete."""
    return postprocessed_dir(run_dir, mode) / RESULTS_JSON


# evaluation: metrics/<mode>/<metric folder>/


def metric_results_path(run_dir, mode, folder):
    """The result of one metric; `folder` is the metric's name with its protocol tag
    (dlbench.evaluation.metric_result_path builds it)."""
    return Path(run_dir) / "metrics" / mode / folder / RESULTS_JSON


def metric_results(run_dir):
    """(mode, folder, path) of every metric result present, sorted by path."""
    paths = sorted(Path(run_dir).glob(f"metrics/*/*/{RESULTS_JSON}"))
    return [(path.parent.parent.name, path.parent.name, path) for path in paths]


def study_run_dir(runs_root, name):
    """The run directory of a study's run `name` (<method>/<values>/seed=<n>) under its runs root."""
    return Path(runs_root) / name


def default_run_dir(identity, root="runs"):
    """runs/<method>_<dataset>_seed<seed>_<hash of the whole identity>."""
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / f"{identity['method']}_{identity['dataset']}_seed{identity['seed']}_{digest}"
