"""Atomic writes: a crash while writing leaves neither a partial file nor a temporary one."""

import json
import os

import pytest

from dlbench import rundir


def test_write_json_round_trips_numpy_and_torch_scalars(tmp_path):
    import numpy as np
    import torch

    rundir.write_json(tmp_path / "a" / "results.json", {"x": np.float32(1.5), "n": np.int64(3),
                                                        "t": torch.tensor(2.0), "v": np.arange(2)})
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == {"x": 1.5, "n": 3, "t": 2.0, "v": [0, 1]}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    rundir.write_json(path, {"old": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        rundir.write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_update_run_merges_fields(tmp_path):
    rundir.update_run(tmp_path, status="running", step=0)
    rundir.update_run(tmp_path, step=10)
    assert rundir.read_run(tmp_path) == {"status": "running", "step": 10}
