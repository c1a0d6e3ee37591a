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
from pathlib import Path


def atomic_write_bytes(path, data):
    """Write data to path through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def _json_default(value):
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
