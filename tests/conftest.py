"""Shared fixtures: a tiny reduced-grid dSprites file in the real format, in a private
$DLBENCH_DATA, and tiny training configs."""

import os
from pathlib import Path

import pytest


def pytest_configure(config):
    # TorchScript is the representation contract; its deprecation notice is not a test failure.
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.:DeprecationWarning")
    # CI runs everything; `pytest -m 'not slow'` is the quick loop while working
    config.addinivalue_line("markers", "slow: fault injection, signals and other tests that start many processes")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # one core per worker (`-n 2` on 2 cores): torch's threads on top would oversubscribe them
        os.environ["OMP_NUM_THREADS"] = "1"

TINY_GRID = {"scale": [0, 5], "orientation": [0, 10, 20, 30], "posX": [0, 10, 21, 31], "posY": [0, 10, 21, 31]}

# A config that trains in a couple of seconds on CPU.
TINY_PARAMS = [
    "train.method = @beta_vae()",
    "dataset.name = 'dsprites'",
    "model.architecture = 'conv'",
    "model.latent_dim = 4",
    "train.steps = 20",
    "train.batch_size = 16",
    "train.checkpoint_every = 10",
    "train.log_every = 5",
    "train.lr = 1e-3",
    "beta_vae.beta = 4.0",
]


def tiny_params(*overrides):
    """TINY_PARAMS with overrides in place of the bindings of the same names: dlb_train refuses a
    binding that --gin_param gives twice with two values."""
    names = {binding.partition("=")[0].strip() for binding in overrides}
    return [p for p in TINY_PARAMS if p.partition("=")[0].strip() not in names] + list(overrides)


@pytest.fixture(scope="session", autouse=True)
def no_data_at_home(tmp_path_factory):
    """An empty $DLBENCH_DATA for every test that does not set its own, which must stay empty: a
    test that reached for the default data folder had written a 3 GB synthetic dSprites to
    ~/.cache (a minute of CI), and others had resumed tiny-grid runs on it."""
    import os

    folder = tmp_path_factory.mktemp("no_data_at_home")
    previous = os.environ.get("DLBENCH_DATA")
    os.environ["DLBENCH_DATA"] = str(folder)
    yield
    if previous is None:
        del os.environ["DLBENCH_DATA"]
    else:
        os.environ["DLBENCH_DATA"] = previous
    written = sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))
    assert not written, f"a test used the default data folder (give it tiny_dsprites): it wrote {written}"


@pytest.fixture
def one_torch_thread():
    """For modules of tiny networks: they gain nothing from intra-op threads and lose much to
    them on a shared CPU (use with pytestmark = pytest.mark.usefixtures("one_torch_thread"))."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty $DLBENCH_DATA."""
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory):
    from dlbench.data.dsprites import FILENAME, generate_npz

    root = tmp_path_factory.mktemp("dlbench_data")
    generate_npz(root / "dsprites" / FILENAME, class_indices=TINY_GRID)
    return root


@pytest.fixture
def tiny_dsprites(tiny_data_root, monkeypatch):
    """$DLBENCH_DATA pointing at a 384-image dSprites grid (all shapes, 2 scales, 4 of the rest)."""
    monkeypatch.setenv("DLBENCH_DATA", str(tiny_data_root))
    return tiny_data_root


STACKED_STUDY_OPTIONS = ["--device", "cpu", "--no_progress", "--stack", "2"]


@pytest.fixture(scope="session")
def local_stacked_study(tiny_data_root, tmp_path_factory):
    """(study file, runs root): three tiny runs in stacks of two (a stack and a run alone), done once
    per session by the local executor with STACKED_STUDY_OPTIONS: what the Ray and Slurm
    executors must give too (read it, do not write into it)."""
    from tests.commands import run_command
    from tests.test_study import write_study

    folder = tmp_path_factory.mktemp("local_stacked_study")
    study = write_study(folder / "s.gin", "{'beta_vae.beta': [1.0, 8.0, 16.0]}")
    result = run_command("dlb_study", study, "--runs_root", folder / "local", *STACKED_STUDY_OPTIONS,
                         data_root=tiny_data_root)
    assert result.returncode == 0, result.stderr
    return study, folder / "local"


@pytest.fixture(scope="session")
def tiny_trained_run(tiny_data_root, tmp_path_factory):
    """A finished run of TINY_PARAMS on the tiny dSprites grid (trained once per session; copy it
    before writing into it)."""
    import os

    from dlbench.cli import train as train_cli

    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    args = ["--run_dir", str(run_dir), "--device", "cpu", "--no_progress"]
    for p in TINY_PARAMS:
        args += ["--gin_param", p]
    previous = os.environ.get("DLBENCH_DATA")
    os.environ["DLBENCH_DATA"] = str(tiny_data_root)
    try:
        assert train_cli.main(args) == 0
    finally:
        if previous is None:
            del os.environ["DLBENCH_DATA"]
        else:
            os.environ["DLBENCH_DATA"] = previous
    return run_dir


@pytest.fixture
def trained_run(tiny_trained_run, tiny_dsprites, tmp_path):
    """A private copy of the tiny trained run, with $DLBENCH_DATA at the tiny grid."""
    import shutil

    return Path(shutil.copytree(tiny_trained_run, tmp_path / "run"))


@pytest.fixture
def float64():
    """torch's default dtype float64 for the test: arithmetic whose rounding is far below what a
    test compares (tests/test_stack.py says why stacked training is compared in float64)."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)
