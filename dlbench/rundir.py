"""The run-directory contract: paths, atomic writes and run status.

RUN_DIR/
  run.json                      identity and status
  model/config.gin              operative gin config
  model/checkpoint.pt           final weights
  model/checkpoints/            periodic checkpoints for resume
  model/train_log.csv           step-wise scalars
  model/results.json            final training scalars
  model/samples/                PNG reconstructions and traversals
  postprocessed/<mode>/         representation function and results.json
  metrics/<mode>/<metric>/results.json
"""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask():
    mask = os.umask(0)  # the only way to read it is to set it, so this runs once, at import,
    os.umask(mask)      # not per write while other threads may be creating files
    return mask


FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path):
    """A temporary path beside `path` for writers that need a file name (h5py, zipfile). When the
    block ends without error the file is synced and renamed onto path; on any error it is
    deleted, so path is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp made it private; give it an ordinary file's permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path, data):
    """Write data to path through a temporary file in the same folder and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path, fix=None):
    """The JSON object in path; a CorruptFile naming the file (and `fix`, what to do) when it is
    truncated, not JSON or not an object."""
    from dlbench.errors import CorruptFile

    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFile(path, f"not valid JSON: {err}", fix or "delete it, or restore it from a copy") from None
    if not isinstance(value, dict):
        raise CorruptFile(path, f"a JSON {type(value).__name__}, not an object", fix or "delete it, or restore it from a copy")
    return value


def _json_default(value):
    if hasattr(value, "tolist"):  # numpy and torch scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


RUN_JSON = "run.json"

# train.* settings that change how a run is logged and saved, not what it computes: they are not
# part of a setting (runs differing only in them are pooled in a leaderboard).
BOOKKEEPING_TRAIN_SETTINGS = ("checkpoint_every", "log_every", "checkpoint_minutes")


def run_json_path(run_dir):
    return Path(run_dir) / RUN_JSON


def is_run(run_dir):
    return run_json_path(run_dir).is_file()


def read_run(run_dir):
    return read_json(run_json_path(run_dir), fix="restore it from a copy, or train the run again with "
                     "dlb_train --overwrite (its other files cannot be trusted without it)")


def update_run(run_dir, **fields):
    """Merge fields into run.json (atomically)."""
    path = run_json_path(run_dir)
    record = read_json(path) if path.is_file() else {}
    record.update(fields)
    write_json(path, record)
    return record


def require_finished_run(run_dir):
    """run.json of a run whose training finished; a UserError naming the problem otherwise."""
    from dlbench.errors import UserError

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run directory '{run_dir}' does not exist; give the RUN_DIR that dlb_train wrote")
    if not is_run(run_dir):
        raise UserError(f"'{run_dir}' is not a run directory (no run.json); give the RUN_DIR that dlb_train wrote")
    record = read_run(run_dir)
    if record.get("status") != "done":
        raise UserError(f"training of '{run_dir}' has not finished (status: {record.get('status')}); "
                        f"finish it with dlb_train --run_dir {run_dir} first")
    return record


def git_revision():
    """The git commit of the dlbench checkout, or None when it is not a checkout."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def default_run_dir(identity, root="runs"):
    """runs/<method>_<dataset>_seed<seed>_<hash of the whole identity>."""
    import hashlib

    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return Path(root) / f"{identity['method']}_{identity['dataset']}_seed{identity['seed']}_{digest}"
