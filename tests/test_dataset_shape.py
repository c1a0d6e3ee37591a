"""A run records the shape of the data it trained on (run.json's dataset_shape), and every later
stage refuses other data of the same name: a reduced grid (dlb_data make --keep) or DLBENCH_DATA
pointed elsewhere had been evaluated, or trained on further, without a word, its results stored
as the run's."""

import json
import signal

import pytest

from dlbench.cli import evaluate as evaluate_cli
from dlbench.cli import train as train_cli
from dlbench.data.dsprites import FILENAME, generate_npz
from tests.commands import tree
from tests.conftest import TINY_GRID, TINY_PARAMS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# one scale fewer than the tiny grid: 192 images
OTHER_GRID = {**TINY_GRID, "scale": [0]}
NEEDLE = "point DLBENCH_DATA at the data it trained on"


@pytest.fixture(scope="module")
def other_data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("other_data")
    generate_npz(root / "dsprites" / FILENAME, class_indices=OTHER_GRID)
    return root


def test_a_run_records_the_grid_it_trained_on(trained_run):
    # the tiny grid: 3 shapes, 2 scales, 4 orientations, 4 x 4 positions (colour has one value, and no factor)
    shape = json.loads((trained_run / "run.json").read_text())["dataset_shape"]
    # and the class indices (of the published grid) of the factors it reduces: the shape's own shape is kept
    assert shape == {"observations": 3 * 2 * 4 * 4 * 4, "factor_sizes": [3, 2, 4, 4, 4],
                     "kept": {name: TINY_GRID[name] for name in ("scale", "orientation", "posX", "posY")}}


@pytest.fixture(scope="module")
def same_shape_data_root(tmp_path_factory):
    """Another reduced grid of the tiny grid's very shape: scales 1 and 3 instead of 0 and 5."""
    root = tmp_path_factory.mktemp("same_shape_data")
    generate_npz(root / "dsprites" / FILENAME, class_indices={**TINY_GRID, "scale": [1, 3]})
    return root


def refused_evaluation(run_dir, data_root, monkeypatch, capsys):
    """The one line dlb_evaluate refuses run_dir with on the data under data_root, nothing written."""
    monkeypatch.setenv("DLBENCH_DATA", str(data_root))
    before = tree(run_dir)
    assert evaluate_cli.main([str(run_dir), "--metrics", "mig", "--metric_param", "mig.num_train=200"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and NEEDLE in err[0], err
    assert tree(run_dir) == before
    return err[0]


def test_evaluation_on_another_grid_of_the_same_shape_is_refused(trained_run, same_shape_data_root, monkeypatch,
                                                                capsys):
    # the counts and factor sizes agree, so its MIG had been computed on images the model never saw
    line = refused_evaluation(trained_run, same_shape_data_root, monkeypatch, capsys)
    kept = "the grid kept orientation=0,10,20,30 posX=0,10,21,31 posY=0,10,21,31 scale="
    assert f"{kept}0,5, but" in line and f"{kept}1,3;" in line


def test_a_run_recorded_before_kept_classes_were_is_evaluated_as_before(trained_run, tmp_path, monkeypatch, capsys):
    """Runs whose dataset_shape has no 'kept' are compared on the count and the factor sizes alone."""
    import shutil

    run_dir = tmp_path / "older"
    shutil.copytree(trained_run, run_dir)
    record = json.loads((run_dir / "run.json").read_text())
    del record["dataset_shape"]["kept"]
    (run_dir / "run.json").write_text(json.dumps(record))
    assert evaluate_cli.main([str(run_dir), "--metrics", "mig", "--metric_param", "mig.num_train=200"]) == 0
    capsys.readouterr()


def test_evaluation_on_other_data_is_refused_with_nothing_written(trained_run, other_data_root, monkeypatch,
                                                                  capsys):
    line = refused_evaluation(trained_run, other_data_root, monkeypatch, capsys)
    assert "of 384 observations (factor sizes [3, 2, 4, 4, 4])" in line and "has 192 observations" in line


@pytest.fixture
def interrupted_run(tiny_dsprites, tmp_path, capsys):
    """A tiny-grid run stopped at its first step, checkpointed."""
    from dlbench.signals import stop_asked_by

    run_dir = tmp_path / "run"
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for binding in TINY_PARAMS:
        args += ["--gin_param", binding]
    with stop_asked_by(lambda: signal.SIGTERM):
        assert train_cli.main(args) == 128 + signal.SIGTERM
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    capsys.readouterr()
    return run_dir


def test_a_resume_on_other_data_is_refused_and_the_run_left_as_it_was(interrupted_run, tiny_dsprites, other_data_root,
                                                                      monkeypatch, capsys):
    run_dir = interrupted_run
    files = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    monkeypatch.setenv("DLBENCH_DATA", str(other_data_root))
    assert train_cli.main(["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and NEEDLE in err[0], err
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == files
    monkeypatch.setenv("DLBENCH_DATA", str(tiny_dsprites))  # its own data: it resumes
    assert train_cli.main(["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]) == 0


@pytest.mark.parametrize("shape", [[384], {"observations": "384"}, {"observations": 384, "factor_sizes": 5}])
def test_a_damaged_recorded_shape_is_refused_in_one_line(trained_run, capsys, shape):
    """A run.json whose dataset_shape is not one dataset_shape writes had ended in a traceback."""
    run_dir = trained_run
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "dataset_shape": shape}))
    before = tree(run_dir)
    assert evaluate_cli.main([str(run_dir), "--metrics", "mig", "--metric_param", "mig.num_train=200"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset_shape" in err[0] and "damaged" in err[0] and "restore run.json" in err[0], err
    assert tree(run_dir) == before


# a missing dSprites is generated on first use, the published grid: resumed or evaluated with an
# empty DLBENCH_DATA, a tiny-grid run had first generated all 737,280 images (3 GB), then been refused them

def test_a_resume_with_an_empty_data_folder_is_refused_before_data_is_generated(interrupted_run, tmp_path,
                                                                                 monkeypatch, capsys):
    empty = empty_data_folder(tmp_path, monkeypatch)
    before = tree(interrupted_run)
    assert train_cli.main(["--run_dir", str(interrupted_run), "--device", "cpu", "--no_progress"]) == 2
    assert_refused_before_generating(capsys, empty)
    assert tree(interrupted_run) == before


def test_an_evaluation_with_an_empty_data_folder_is_refused_before_data_is_generated(trained_run, tmp_path,
                                                                                     monkeypatch, capsys):
    empty = empty_data_folder(tmp_path, monkeypatch)
    before = tree(trained_run)
    assert evaluate_cli.main([str(trained_run), "--metrics", "mig"]) == 2
    assert_refused_before_generating(capsys, empty)
    assert tree(trained_run) == before


def empty_data_folder(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("DLBENCH_DATA", str(empty))
    return empty


def assert_refused_before_generating(capsys, empty):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and NEEDLE in err[0], err
    assert "of 384 observations" in err[0] and f"the synthetic dsprites that would be generated under {empty}" in err[0]
    assert "has 737,280 observations (factor sizes [3, 6, 40, 32, 32])" in err[0]
    assert tree(empty) == []


@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])  # in this process, in a pool
def test_a_study_on_other_data_stops_at_its_first_run_in_one_line(tiny_dsprites, other_data_root, tmp_path,
                                                                  monkeypatch, workers):
    # every run had failed in turn, each recording a reason that --status still gave once DLBENCH_DATA was mended
    from tests.commands import assert_one_line_error, run_in_process
    from tests.test_study import write_study

    study = write_study(tmp_path / "s.gin", "{'beta_vae.beta': [1.0, 8.0]}")
    runs = tmp_path / "runs"
    args = [study, "--runs_root", runs, "--device", "cpu", "--no_progress", "--workers", workers]
    assert run_in_process("dlb_study", *args).returncode == 0
    study.write_text(study.read_text().replace("study.metrics = ['mig']", "study.metrics = ['mig', 'active_units']"))
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file() and p.name != "study.json"}
    result = run_in_process("dlb_study", *args, data_root=other_data_root)
    assert_one_line_error(result, NEEDLE, "has 192 observations")
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file() and p.name != "study.json"} == before
    status = run_in_process("dlb_study", study, "--runs_root", runs, "--status")
    assert status.stdout.strip().endswith("2 runs: 2 trained, not evaluated"), status.stdout  # no reason recorded


def test_aggregation_keeps_runs_of_two_grids_apart(trained_run, tiny_dsprites, other_data_root, tmp_path,
                                                   monkeypatch):
    """The same config and seed trained on the tiny grid and on a grid with one scale fewer: two
    settings, each with its own MIG, neither left out as a copy of the other (dlb_aggregate had
    averaged the two grids' MIG, after dropping the second run as a duplicate)."""
    from dlbench.aggregate import aggregate_runs

    root = tmp_path / "runs"
    root.mkdir()
    runs = {tiny_dsprites: trained_run.rename(root / "tiny"), other_data_root: root / "other"}
    monkeypatch.setenv("DLBENCH_DATA", str(other_data_root))
    args = ["--run_dir", str(runs[other_data_root]), "--device", "cpu", "--no_progress"]
    for binding in TINY_PARAMS:
        args += ["--gin_param", binding]
    assert train_cli.main(args) == 0
    mig = {}
    for data_root, run_dir in runs.items():
        monkeypatch.setenv("DLBENCH_DATA", str(data_root))
        assert evaluate_cli.main([str(run_dir), "--metrics", "mig", "--metric_param", "mig.num_train=200"]) == 0
        result = json.loads((run_dir / "metrics" / "mean" / "mig[num_train=200]" / "results.json").read_text())
        mig[run_dir.name] = result["discrete_mig"]

    aggregation = aggregate_runs(root, tmp_path / "report")

    assert aggregation.duplicates == []
    board = aggregation.board.set_index("dataset")
    assert sorted(board.index) == ["dsprites[observations=192,factor_sizes=3x1x4x4x4]",
                                   "dsprites[observations=384,factor_sizes=3x2x4x4x4]"]
    assert board.loc["dsprites[observations=384,factor_sizes=3x2x4x4x4]",
                     "mig[num_train=200].discrete_mig.mean"] == mig["tiny"]
    assert board.loc["dsprites[observations=192,factor_sizes=3x1x4x4x4]",
                     "mig[num_train=200].discrete_mig.mean"] == mig["other"]
