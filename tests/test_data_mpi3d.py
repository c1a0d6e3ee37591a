"""mpi3d_toy / mpi3d_realistic / mpi3d_real: miniature npz files in the published format (np.savez:
one stored member images.npy, uint8 (N, 64, 64, 3)) holding real MPI3D pixels; loading, factor
indexing, sampling, and the errors for missing, truncated, damaged and wrong files."""

import zipfile

import numpy as np
import pytest
from scipy.stats import chisquare

from dlbench.data import files
from dlbench.data import mpi3d as M
from dlbench.errors import UserError

REAL = "/work/shared/data/real_reference/mpi3d/mpi3d_gif_panels.npz"
SIZES = [2, 2, 1, 3, 1, 2, 5]
N = int(np.prod(SIZES))  # 120
CLASSES = [M.Mpi3dToy, M.Mpi3dRealistic, M.Mpi3dReal]
PANELS = {"mpi3d_toy": "toy1", "mpi3d_realistic": "realistic1", "mpi3d_real": "real1"}


def _images(variant="mpi3d_toy"):
    """Real MPI3D pixels (the variant's gif panels, cycled), row r marked with r at pixel (0, 0, R)."""
    with np.load(REAL) as npz:
        panels = npz[PANELS[variant]].reshape(-1, 64, 64, 3)
    images = panels[np.arange(N) % len(panels)].copy()
    images[:, 0, 0, 0] = np.arange(N)
    return images


def _savez(path, **arrays):
    """The published files were written by np.savez."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.fixture(scope="module")
def minis(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mpi3d")
    return {cls.name: _savez(folder / f"{cls.name}.npz", images=_images(cls.name)) for cls in CLASSES}


def test_module_writer_matches_np_savez_byte_layout(tmp_path, minis):
    ours = M.write_file(tmp_path / "a.npz", _images())
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(minis["mpi3d_toy"]) as b:
        assert a.namelist() == b.namelist() == ["images.npy"]
        assert a.getinfo("images.npy").compress_type == b.getinfo("images.npy").compress_type == zipfile.ZIP_STORED
        assert a.read("images.npy") == b.read("images.npy")
    with np.load(ours) as npz:
        assert npz["images"].dtype == np.uint8 and npz["images"].shape == (N, 64, 64, 3)


@pytest.mark.parametrize("cls", CLASSES)
def test_images_are_channel_first_copies_of_the_file(cls, minis):
    data = cls(minis[cls.name], factor_sizes=SIZES)
    assert data.name == cls.name and data.factors_num_values == SIZES and len(data) == N
    images = data.images
    assert images.dtype == np.uint8 and images.shape == (N, 3, 64, 64) and images.flags.c_contiguous
    np.testing.assert_array_equal(images.transpose(0, 2, 3, 1), _images(cls.name))
    assert data.images is images


def test_colour_channels_keep_their_order(minis):
    """RGB stays RGB: each loaded channel is the file's channel of that index."""
    images = M.Mpi3dToy(minis["mpi3d_toy"], factor_sizes=SIZES).images
    source = _images()
    for channel in range(3):
        np.testing.assert_array_equal(images[:, channel], source[..., channel])
    assert len({tuple(source[..., c].mean(axis=(0, 1, 2)).round(3).ravel()) for c in range(3)}) == 3


def test_index_of_is_the_published_mixed_radix_index(minis):
    """rr-learning README: index = object_color * (6*2*3*3*40*40) + ... + vertical_axis, here for SIZES."""
    data = M.Mpi3dToy(minis["mpi3d_toy"], factor_sizes=SIZES)
    rs = np.random.RandomState(0)
    for _ in range(50):
        factors = [rs.randint(n) for n in SIZES]
        index, base = 0, 1
        for f, n in zip(reversed(factors), reversed(SIZES)):
            index, base = index + f * base, base * n
        assert data.index_of(np.array([factors]))[0] == index
        assert data.images[index, 0, 0, 0] == index


def test_sample_observations_from_factors_matches_index_of(minis):
    data = M.Mpi3dReal(minis["mpi3d_real"], factor_sizes=SIZES)
    rs = np.random.RandomState(1)
    factors = data.sample_factors(300, rs)
    obs = data.sample_observations_from_factors(factors, rs)
    source = _images("mpi3d_real").transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    assert obs.dtype == np.float32 and obs.shape == (300, 3, 64, 64)
    np.testing.assert_allclose(obs, source[data.index_of(factors)], rtol=0, atol=1e-7)


def test_factor_sampling_is_uniform_over_the_grid(minis):
    data = M.Mpi3dToy(minis["mpi3d_toy"], factor_sizes=SIZES)
    cells = data.index_of(data.sample_factors(N * 200, np.random.RandomState(5)))
    assert chisquare(np.bincount(cells, minlength=N)).pvalue > 1e-3


@pytest.mark.parametrize("cls", CLASSES)
def test_verify_and_describe_accept_the_miniature_file(cls, minis):
    report = cls.verify_file(minis[cls.name], factor_sizes=SIZES)
    assert report["status"] == "real" and report["problems"] == [] and report["checksum"].startswith("not checked")
    assert cls.file_status(minis[cls.name], factor_sizes=SIZES) == "real"
    info = cls.describe(minis[cls.name], factor_sizes=SIZES)
    assert info["name"] == cls.name and info["num_images"] == N and info["grid"] == "reduced"
    assert info["url"].endswith(f"/{cls.name}.npz")


def test_the_published_sizes_are_required_without_the_test_hook(minis):
    with pytest.raises(UserError) as err:
        M.Mpi3dToy(minis["mpi3d_toy"])
    assert str(minis["mpi3d_toy"]) in str(err.value) and "(1036800, 64, 64, 3)" in str(err.value)
    assert M.Mpi3dToy.file_status(minis["mpi3d_toy"]) == "corrupt"


def test_the_two_releases_have_their_published_sizes():
    assert int(np.prod(M.FACTOR_SIZES)) == 1_036_800
    assert M._releases(None) == {1_036_800: (6, 6, 2, 3, 3, 40, 40), 460_800: (4, 4, 2, 3, 3, 40, 40)}


def _assert_clear(message, path, variant, *words):
    assert str(path) in message and "\n" not in message and f"dlb_data download {variant}" in message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize("cls", CLASSES)
def test_missing_file_says_how_to_get_it(cls, tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))
    monkeypatch.delenv(files.DISENTANGLEMENT_LIB_ENV, raising=False)
    path = tmp_path / cls.name / f"{cls.name}.npz"
    assert cls.default_path() == path and cls.file_status() == "missing" and cls.verify_file()["status"] == "missing"
    with pytest.raises(UserError) as err:
        cls()
    _assert_clear(str(err.value), path, cls.name, "not found", M.VARIANTS[cls.name]["url"])


def test_disentanglement_lib_layout_is_used_when_dlbench_has_no_file(tmp_path, monkeypatch, minis):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "ours"))
    monkeypatch.setenv(files.DISENTANGLEMENT_LIB_ENV, str(tmp_path / "theirs"))
    theirs = tmp_path / "theirs" / "mpi3d_realistic" / "mpi3d_realistic.npz"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(minis["mpi3d_realistic"].read_bytes())
    assert M.Mpi3dRealistic.default_path() == theirs
    assert M.Mpi3dToy.default_path() == tmp_path / "ours" / "mpi3d_toy" / "mpi3d_toy.npz"
    assert M.Mpi3dRealistic(factor_sizes=SIZES).images.shape == (N, 3, 64, 64)


@pytest.mark.parametrize("cut", [1, 22, 1000, "half"])
def test_truncated_file_is_one_clear_error(tmp_path, minis, cut):
    data = minis["mpi3d_toy"].read_bytes()
    path = tmp_path / "mpi3d_toy.npz"
    path.write_bytes(data[:len(data) // 2] if cut == "half" else data[:-cut])
    with pytest.raises(UserError) as err:
        M.Mpi3dToy(path, factor_sizes=SIZES).images
    _assert_clear(str(err.value), path, "mpi3d_toy", "not a complete npz")
    report = M.Mpi3dToy.verify_file(path, factor_sizes=SIZES)
    assert report["status"] == "corrupt"
    _assert_clear(report["problems"][0], path, "mpi3d_toy", "not a complete npz")


def test_damaged_pixels_fail_the_zip_crc(tmp_path, minis):
    path = tmp_path / "mpi3d_toy.npz"
    data = bytearray(minis["mpi3d_toy"].read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the stored image bytes
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        M.Mpi3dToy(path, factor_sizes=SIZES).images
    _assert_clear(str(err.value), path, "mpi3d_toy", "cannot read images", "CRC")
    assert M.Mpi3dToy.verify_file(path, factor_sizes=SIZES)["status"] == "corrupt"


@pytest.mark.parametrize("arrays, words", [
    (dict(images=_images()[:-1]), ["'images' is uint8 (119, 64, 64, 3)", "(120, 64, 64, 3)"]),
    (dict(images=_images()[..., :1]), ["'images' is uint8 (120, 64, 64, 1)"]),
    (dict(images=_images().astype(np.float32)), ["'images' is float32", "expected uint8"]),
    (dict(images=np.asfortranarray(_images())), ["in Fortran order"]),
    (dict(imgs=_images()), ["has no 'images' array (members: imgs.npy)"]),
])
def test_wrong_structure_is_one_clear_error(tmp_path, arrays, words):
    path = _savez(tmp_path / "mpi3d_toy.npz", **arrays)
    with pytest.raises(UserError) as err:
        M.Mpi3dToy(path, factor_sizes=SIZES)
    _assert_clear(str(err.value), path, "mpi3d_toy", *words)
    report = M.Mpi3dToy.verify_file(path, factor_sizes=SIZES)
    assert report["status"] == "corrupt" and len(report["problems"]) == 1


def test_not_a_zip_is_one_clear_error(tmp_path):
    path = tmp_path / "mpi3d_toy.npz"
    np.save(path.with_suffix(".npy"), _images())  # an .npy renamed to .npz
    path.write_bytes(path.with_suffix(".npy").read_bytes())
    with pytest.raises(UserError) as err:
        M.Mpi3dToy(path, factor_sizes=SIZES)
    _assert_clear(str(err.value), path, "mpi3d_toy", "not a complete npz")


def test_full_size_verification_compares_the_published_md5(monkeypatch, minis):
    path = minis["mpi3d_toy"]
    monkeypatch.setattr(M, "FACTOR_SIZES", tuple(SIZES))
    report = M.Mpi3dToy.verify_file(path, factor_sizes=SIZES)
    md5 = M.VARIANTS["mpi3d_toy"]["md5"]
    assert report["status"] == "corrupt"
    _assert_clear(report["problems"][0], path, "mpi3d_toy", f"is not the published {md5}")
    monkeypatch.setitem(M.VARIANTS["mpi3d_toy"], "md5", files.file_checksum(path))
    assert M.Mpi3dToy.verify_file(path, factor_sizes=SIZES)["status"] == "real"


def test_the_base_class_needs_a_variant():
    with pytest.raises(TypeError):
        M.Mpi3d()
