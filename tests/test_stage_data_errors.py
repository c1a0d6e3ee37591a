"""A stage that needs a dataset file that is missing, truncated or of the wrong shape stops with
one line naming the file and what is wrong, exit status 2, and writes nothing: dlb_train before
the run directory exists, dlb_evaluate before any result."""

import json
import shutil

import numpy as np
import pytest

from dlbench.cli import evaluate, train
from dlbench.data import shapes3d

from tests.test_cli_errors import assert_user_error, tiny_train_args

# dataset -> the path the one line must name when $DLBENCH_DATA is empty
MISSING = {
    "shapes3d": "shapes3d/3dshapes.h5",
    "mpi3d_toy": "mpi3d_toy/mpi3d_toy.npz",
    "mpi3d_realistic": "mpi3d_realistic/mpi3d_realistic.npz",
    "mpi3d_real": "mpi3d_real/mpi3d_real.npz",
    "cars3d": "cars3d/cars",
    "smallnorb": "smallnorb",
    "fashion_mnist": "fashion_mnist",
    "scream_dsprites": "scream",
}


@pytest.mark.parametrize("name", sorted(MISSING))
def test_training_on_a_missing_file_is_one_line_and_writes_nothing(root, tmp_path, capsys, name, monkeypatch):
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    run_dir = tmp_path / "run"
    fits = ["model.architecture = 'dcgan'"] if name == "fashion_mnist" else []  # its 32x32 images: not conv's 64x64
    code = train.main(tiny_train_args(run_dir, f"dataset.name = '{name}'", *fits))
    assert_user_error(capsys, code, str(root / MISSING[name]))
    assert not run_dir.exists()


@pytest.mark.parametrize("name", sorted([*MISSING, "dsprites", "color_dsprites"]))
def test_training_where_a_file_takes_the_datasets_folder_says_so(root, tmp_path, capsys, name, monkeypatch):
    # each loader had called the dataset missing, or failed to generate dSprites under the file, and
    # advised `dlb_data download` or `make`, which then met the file too
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    blocker = root / MISSING.get(name, "dsprites").split("/")[0]
    blocker.write_text("not a folder")
    run_dir = tmp_path / "run"
    fits = ["model.architecture = 'dcgan'"] if name == "fashion_mnist" else []
    code = train.main(tiny_train_args(run_dir, f"dataset.name = '{name}'", *fits))
    line = assert_user_error(capsys, code, f"{name}: {blocker} is a file where a folder goes", "move or remove it")
    assert "dlb_data" not in line
    assert not run_dir.exists() and sorted(root.iterdir()) == [blocker]


def _write_shapes3d(path, images):
    sizes = (1, 1, 1, 1, 2, 2)
    return shapes3d.write_file(path, images, shapes3d.grid_labels([np.arange(n) for n in sizes]))


@pytest.mark.parametrize("damage, needle", [
    ("truncate", "not a readable HDF5 file"),
    ("wrong_shape", "'images' is uint8 (4, 64, 64, 3), expected uint8 (480000, 64, 64, 3)"),
])
def test_training_on_a_damaged_file_is_one_line_and_writes_nothing(root, tmp_path, capsys, damage, needle):
    path = _write_shapes3d(root / "shapes3d" / shapes3d.FILENAME, np.zeros((4, 64, 64, 3), np.uint8))
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    run_dir = tmp_path / "run"
    code = train.main(tiny_train_args(run_dir, "dataset.name = 'shapes3d'"))
    assert_user_error(capsys, code, str(path), needle)
    assert not run_dir.exists()


def test_evaluating_without_the_file_is_one_line_and_writes_no_result(trained_run, root, capsys):
    """A run directory brought to a machine that lacks its dataset's file (the record says
    shapes3d; $DLBENCH_DATA is empty)."""
    record = json.loads((trained_run / "run.json").read_text())
    (trained_run / "run.json").write_text(json.dumps({**record, "dataset": "shapes3d"}))
    shutil.rmtree(trained_run / "metrics", ignore_errors=True)
    code = evaluate.main([str(trained_run), "--metrics", "mig", "--device", "cpu"])
    assert_user_error(capsys, code, str(root / MISSING["shapes3d"]), "not found")
    assert not (trained_run / "metrics" / "mean" / "mig").exists()


def test_a_run_json_naming_a_dataset_this_dlbench_lacks_says_it_is_the_runs(trained_run, capsys):
    # 'unknown dataset' had read as a mistyped --dataset, though the command names none
    record = json.loads((trained_run / "run.json").read_text())
    (trained_run / "run.json").write_text(json.dumps({**record, "dataset": "foo"}))
    shutil.rmtree(trained_run / "metrics", ignore_errors=True)
    code = evaluate.main([str(trained_run), "--metrics", "mig", "--device", "cpu"])
    assert_user_error(capsys, code, "the run's dataset 'foo' (its run.json) is none of this dlbench's: ",
                      "use the dlbench version that trained it, or mend run.json")
    assert not (trained_run / "metrics" / "mean" / "mig").exists()
