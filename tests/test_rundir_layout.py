"""The run directory's layout lives in dlbench.rundir.layout alone: its functions name the paths of
the contract (README, DESIGN.md), a trained, postprocessed and evaluated run holds exactly the
files they name, and no other source file builds a run path by hand."""

import ast
from pathlib import Path

import pytest

import dlbench
from dlbench import rundir
from dlbench.evaluation import evaluate_run, metric_result_path
from dlbench.postprocess import postprocess

# The contract, spelled out once more on purpose: a change of the layout must change this test.
CONTRACT = {
    "run.json": rundir.run_json_path,
    "claim.json": rundir.claim_path,
    "model": rundir.model_dir,
    "model/config.gin": rundir.config_gin_path,
    "model/checkpoint.pt": rundir.weights_path,
    "model/checkpoints": rundir.checkpoints_dir,
    "model/train_log.csv": rundir.train_log_path,
    "model/results.json": rundir.train_results_path,
    "model/samples": rundir.samples_dir,
}
PER_MODE = {
    "postprocessed/{mode}": rundir.postprocessed_dir,
    "postprocessed/{mode}/representation.pt": rundir.representation_path,
    "postprocessed/{mode}/results.json": rundir.postprocess_results_path,
}


@pytest.mark.parametrize("relative, path_of", CONTRACT.items())
def test_the_layout_functions_name_the_paths_of_the_contract(relative, path_of, tmp_path):
    assert path_of(tmp_path) == tmp_path / relative
    assert path_of(str(tmp_path)) == tmp_path / relative  # a run_dir may be given as a string


@pytest.mark.parametrize("relative, path_of", PER_MODE.items())
@pytest.mark.parametrize("mode", ["mean", "sampled"])
def test_the_postprocessed_paths_are_per_mode(relative, path_of, mode, tmp_path):
    assert path_of(tmp_path, mode) == tmp_path / relative.format(mode=mode)


def test_metric_results_and_checkpoints_are_named_and_found_by_the_layout(tmp_path):
    assert rundir.metric_results_path(tmp_path, "mean", "mig[seed=3]") == tmp_path / "metrics/mean/mig[seed=3]/results.json"
    for mode, folder in [("sampled", "sap"), ("mean", "mig[seed=3]"), ("mean", "mig")]:
        rundir.write_json(rundir.metric_results_path(tmp_path, mode, folder), {})
    assert rundir.metric_results(tmp_path) == [
        (mode, folder, rundir.metric_results_path(tmp_path, mode, folder))
        for mode, folder in [("mean", "mig"), ("mean", "mig[seed=3]"), ("sampled", "sap")]]

    assert rundir.checkpoint_path(tmp_path, 20) == tmp_path / "model/checkpoints/step_000000020.pt"
    for step in (5, 20, 100):
        rundir.atomic_write_bytes(rundir.checkpoint_path(tmp_path, step), b"")
    assert rundir.checkpoint_paths(tmp_path) == [rundir.checkpoint_path(tmp_path, s) for s in (100, 20, 5)]


def files_under(folder):
    return {path for path in Path(folder).rglob("*") if path.is_file()}


def test_a_finished_run_holds_exactly_the_files_the_layout_names(trained_run):
    mig = {"num_train": 200}
    postprocess(trained_run, "sampled")
    evaluate_run(trained_run, ["mig"], "mean", params={"mig": mig}, log=lambda *_: None)

    samples = files_under(rundir.samples_dir(trained_run))
    assert samples and all(path.suffix == ".png" for path in samples)
    named = {rundir.run_json_path(trained_run), rundir.config_gin_path(trained_run), rundir.weights_path(trained_run),
             rundir.train_log_path(trained_run), rundir.train_results_path(trained_run),
             metric_result_path(trained_run, "mean", "mig", mig), *samples}
    for mode in ("mean", "sampled"):
        named |= {rundir.representation_path(trained_run, mode), rundir.postprocess_results_path(trained_run, mode)}
    assert files_under(trained_run) == named
    assert not rundir.checkpoints_dir(trained_run).exists()  # only resume needs them: removed when training ends
    assert rundir.read_run(trained_run)["status"] == rundir.Status.DONE


# The pieces of a run path, and the calls that take a path piece as an argument.
RUN_PATH_PIECES = {"run.json", "claim.json", "model", "config.gin", "checkpoint.pt", "checkpoints", "train_log.csv",
                   "results.json", "samples", "postprocessed", "representation.pt", "metrics"}
PATH_CALLS = {"Path", "PurePath", "join", "joinpath", "glob", "rglob", "with_name"}


def _pieces(node):
    """The run-path pieces in a string constant or f-string (split on '/', so 'metrics/*/x' counts)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        texts = [node.value]
    elif isinstance(node, ast.JoinedStr):
        texts = [part.value for part in node.values if isinstance(part, ast.Constant)]
    else:
        return set()
    found = set()
    for text in texts:
        for part in text.split("/"):
            if part in RUN_PATH_PIECES or part.startswith("step_"):
                found.add(part)
    return found


def hand_built_run_paths(source):
    """(line, pieces) of each place in source that joins a run-path piece into a path: an operand
    of `/`, or an argument of Path(), os.path.join, glob and the like, or a file name of the
    layout kept in a variable of its own (REPRESENTATION_FILE = "representation.pt"), to be joined
    later. Docstrings, messages and dict keys are not path joins."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            operands = [node.left, node.right]
        elif isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            operands = list(node.args) if name in PATH_CALLS else []
        elif isinstance(node, ast.Assign):
            value = getattr(node.value, "value", None)
            operands = [node.value] if isinstance(value, str) and "." in value else []  # file names, not 'model'
        else:
            continue
        pieces = set().union(*(_pieces(operand) for operand in operands))
        if pieces:
            found.append((node.lineno, sorted(pieces)))
    return sorted(found)


def test_the_scan_finds_hand_built_run_paths():
    bad = ('p = run_dir / "model" / "checkpoint.pt"\n'
           'q = os.path.join(run_dir, "postprocessed", mode)\n'
           'r = sorted(run_dir.glob("metrics/*/*/results.json"))\n'
           'c = folder / f"step_{step:09d}.pt"\n'
           'REPRESENTATION_FILE = "representation.pt"\n')
    assert [line for line, _ in hand_built_run_paths(bad)] == [1, 1, 2, 3, 4, 5]  # 1 twice: two joins
    fine = ('"""Writes RUN_DIR/model/checkpoint.pt."""\n'
            'row = {"model": 1, "metrics": names}\n'
            'raise UserError(f"{run_dir}/model/config.gin is missing")\n'
            'p = rundir.weights_path(run_dir)\n'
            'MODES, KEEP = ("mean", "sampled"), 2\n'
            'KEEP = 2\n')
    assert hand_built_run_paths(fine) == []


def test_no_source_file_outside_rundir_builds_a_run_path_by_hand():
    package = Path(dlbench.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if package / "rundir" in path.parents:
            continue
        for line, pieces in hand_built_run_paths(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(package.parent)}:{line} joins {', '.join(pieces)}")
    assert not offenders, "build run paths with dlbench.rundir's layout functions:\n" + "\n".join(offenders)
