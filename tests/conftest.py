"""Shared fixtures: a tiny reduced-grid dSprites file in the real format, in a private
$DLBENCH_DATA, and tiny training configs."""

import pytest


def pytest_configure(config):
    # TorchScript is the representation contract; its deprecation notice is not a test failure.
    config.addinivalue_line("filterwarnings", "ignore:`torch.jit.:DeprecationWarning")

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
