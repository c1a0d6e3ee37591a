"""The dataset registry, the data root, and DSprites as GroundTruthData (first-use generation)."""

from pathlib import Path

import numpy as np
import pytest

import dlbench.data as data
from dlbench.data import dsprites as D
from dlbench.errors import UserError

GRID = {"shape": [1, 2], "scale": [0, 3, 5], "orientation": [0, 20], "posX": [0, 9, 31], "posY": [4, 31]}
SIZES = [2, 3, 2, 3, 2]


@pytest.fixture
def small(root):
    return D.generate_npz(root / "dsprites" / D.FILENAME, class_indices=GRID)


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "x"))
    assert data.data_root() == tmp_path / "x"
    monkeypatch.delenv("DLBENCH_DATA")
    assert data.data_root() == Path.home() / ".cache" / "dlbench"
    monkeypatch.setenv("DLBENCH_DATA", "")
    assert data.data_root() == Path.home() / ".cache" / "dlbench"


def test_registry():
    assert data.DATASETS["dsprites"] is D.DSprites
    assert "dsprites" in data.available_datasets()
    assert data.available_datasets() == sorted(data.DATASETS)
    with pytest.raises(UserError) as info:
        data.get_dataset("x")
    assert str(info.value) == "unknown dataset 'x'; available: " + ", ".join(data.available_datasets())


def test_dsprites_reads_the_file_in_the_data_root(small):
    ds = data.get_dataset("dsprites")
    assert isinstance(ds, D.DSprites) and ds.name == "dsprites"
    assert ds.path == small and ds.source == "synthetic"
    assert ds.factor_names == ["shape", "scale", "orientation", "posX", "posY"]
    assert ds.factors_num_values == SIZES and ds.num_factors == 5
    assert ds.observation_shape == (1, 64, 64) and ds.pixel_scale == 1.0
    assert len(ds) == int(np.prod(SIZES))
    images = ds.images
    assert images.dtype == np.uint8 and images.shape == (len(ds), 1, 64, 64)
    np.testing.assert_allclose(ds.factor_values[1], np.linspace(0.5, 1, 6)[[0, 3, 5]])


def test_index_of_and_factors_of_follow_the_file_layout(small):
    ds = D.DSprites()
    classes = ds.latents_classes
    np.testing.assert_array_equal(ds.index_of(classes[:, 1:]), np.arange(len(ds)))
    np.testing.assert_array_equal(ds.factors_of(np.arange(len(ds))), classes[:, 1:])


def test_observations_are_the_rendered_sprites(small):
    ds = D.DSprites()
    rng = np.random.RandomState(0)
    factors = ds.sample_factors(50, rng)
    assert factors.shape == (50, 5) and (factors < np.array(SIZES)).all()
    obs = ds.sample_observations_from_factors(factors, rng)
    assert obs.dtype == np.float32 and obs.shape == (50, 1, 64, 64)
    assert obs.min() == 0.0 and obs.max() == 1.0
    # map the reduced-grid classes back to full-grid classes and render them independently
    full = np.stack([np.zeros(50, int)] + [np.asarray(GRID[n])[factors[:, i]] for i, n in enumerate(ds.factor_names)],
                    axis=1)
    np.testing.assert_array_equal(obs[:, 0], D.render(full).astype(np.float32))


def _small_generator(monkeypatch):
    """First use renders the full grid; in tests it renders GRID instead."""
    real = D.generate_npz
    monkeypatch.setattr(D, "generate_npz", lambda path, **kw: real(path, class_indices=GRID, **kw))


def test_first_use_generates_a_synthetic_file_and_says_so(root, monkeypatch, capsys):
    _small_generator(monkeypatch)
    ds = D.DSprites()
    err = capsys.readouterr().err
    assert "SYNTHETIC" in err and "not the DeepMind file" in err and str(ds.path) in err
    assert ds.path == root / "dsprites" / D.FILENAME and ds.path.exists()
    assert ds.source == "synthetic" and ds.factors_num_values == SIZES
    assert [p.name for p in ds.path.parent.iterdir() if p.suffix == ".tmp"] == []
    D.DSprites()  # the second use reads the file quietly
    assert "SYNTHETIC" not in capsys.readouterr().err


def test_a_real_file_is_used_as_is(root, monkeypatch, small, capsys):
    with np.load(small, allow_pickle=True) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = dict(arrays["metadata"][()])
    del meta["dlbench"]
    arrays["metadata"] = np.array(meta, dtype=object)
    np.savez_compressed(small, **arrays)
    monkeypatch.setattr(D, "generate_npz", lambda *a, **k: pytest.fail("must not generate"))
    ds = D.DSprites()
    assert ds.source == "real" and ds.images.shape == (int(np.prod(SIZES)), 1, 64, 64)
    assert capsys.readouterr().err == ""


def test_an_explicit_missing_path_is_an_error_not_a_generation(root, monkeypatch):
    monkeypatch.setattr(D, "generate_npz", lambda *a, **k: pytest.fail("must not generate"))
    with pytest.raises(UserError, match="not found"):
        D.DSprites(path=root / "elsewhere.npz")
    with pytest.raises(UserError, match="not found"):
        D.DSprites(generate=False)


def test_an_unwritable_data_root_is_a_user_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the data root's folder should be")
    monkeypatch.setenv("DLBENCH_DATA", str(blocker))
    with pytest.raises(UserError, match="DLBENCH_DATA"):
        D.DSprites()
