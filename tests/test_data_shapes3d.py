"""shapes3d: a miniature 3dshapes.h5 in the published format (datasets 'images' uint8 (N, 64, 64, 3)
and 'labels' float64 (N, 6), a reduced grid of the published label values) holding real 3dshapes
pixels; loading, factor indexing, sampling, and the errors for missing, truncated and wrong files."""

import h5py
import numpy as np
import pytest
from scipy.stats import chisquare

from dlbench.data import files
from dlbench.data import shapes3d as S
from dlbench.errors import UserError
from tests.data_messages import assert_clear_line

REAL = "/work/shared/data/real_reference/shapes3d/3dshapes_notebook_50_samples_approx.npz"
# class indices kept per factor (floor_hue, wall_hue, object_hue, scale, shape, orientation)
KEPT = [[0, 9], [3], [0, 5], [2, 7], [0, 1, 2, 3], [0, 6, 14]]
SIZES = [len(k) for k in KEPT]
N = int(np.prod(SIZES))  # 96


def _published_values():
    """The label values from the 3dshapes README, written out independently of the module."""
    hue = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    return [hue, hue, hue, [0.75 + 0.5 * i / 7 for i in range(8)], [0.0, 1.0, 2.0, 3.0],
            [-30.0 + 60.0 * i / 14 for i in range(15)]]


def _labels():
    """Grid labels in file order by nested loops (last factor fastest), not by the module."""
    values = _published_values()
    rows = []
    for a in KEPT[0]:
        for b in KEPT[1]:
            for c in KEPT[2]:
                for d in KEPT[3]:
                    for e in KEPT[4]:
                        for f in KEPT[5]:
                            rows.append([values[i][k] for i, k in enumerate((a, b, c, d, e, f))])
    return np.array(rows, dtype=np.float64)


def _images():
    """Real 3dshapes pixels (the 50 notebook samples, cycled), each row marked by its index."""
    with np.load(REAL) as npz:
        real = npz["images"]
    images = real[np.arange(N) % len(real)].copy()
    images[:, 0, 0, 0] = np.arange(N)  # makes every image distinct: row r holds r at pixel (0, 0, R)
    return images


def _write(path, drop=(), **replace):
    """A 3dshapes.h5 written directly with h5py (the published layout), or with datasets replaced,
    added or dropped."""
    path.parent.mkdir(parents=True, exist_ok=True)
    content = {"images": _images(), "labels": _labels()}
    content.update(replace)
    with h5py.File(path, "w") as f:
        for key, value in content.items():
            if key not in drop:
                f.create_dataset(key, data=value, chunks=(7,) + value.shape[1:] if key == "images" else None,
                                 compression="gzip" if key == "images" else None)
    return path


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("s3") / "3dshapes.h5")


def test_module_writer_gives_the_published_layout(tmp_path, mini):
    path = S.write_file(tmp_path / "3dshapes.h5", _images(), S.grid_labels(KEPT))
    with h5py.File(path, "r") as f, h5py.File(mini, "r") as g:
        assert sorted(f.keys()) == sorted(g.keys()) == ["images", "labels"]
        for key in ("images", "labels"):
            assert f[key].dtype == g[key].dtype and f[key].shape == g[key].shape
        assert f["images"].dtype == np.uint8 and f["images"].shape == (N, 64, 64, 3)
        assert f["labels"].dtype == np.dtype("<f8") and f["labels"].shape == (N, 6)
        np.testing.assert_allclose(f["labels"][()], _labels(), rtol=0, atol=1e-12)
        np.testing.assert_array_equal(f["images"][()], g["images"][()])


def test_images_are_channel_first_copies_of_the_file(mini):
    data = S.Shapes3D(mini, factor_sizes=SIZES)
    images = data.images
    assert images.dtype == np.uint8 and images.shape == (N, 3, 64, 64) and images.flags.c_contiguous
    source = _images()
    np.testing.assert_array_equal(images.transpose(0, 2, 3, 1), source)  # and back
    np.testing.assert_array_equal(images[:, 0, 0, 0], np.arange(N))
    assert data.images is images  # held once


def test_orientation_and_colour_order_on_real_pixels(mini):
    """Group 1 of the notebook samples has floor_hue 0: a red floor at the bottom of the image."""
    with np.load(REAL) as npz:
        group = npz["group"]
    images = S.Shapes3D(mini, factor_sizes=SIZES).images
    rows = np.flatnonzero(group[np.arange(N) % 50] == 1)
    bottom = images[rows][:, :, 60:, :].astype(float).mean(axis=(2, 3))  # (n, RGB) of the lowest rows
    assert np.all(bottom[:, 0] > 200) and np.all(bottom[:, 1] < 80) and np.all(bottom[:, 2] < 80)
    top, low = images[rows][:, :, :8].astype(float).mean(), images[rows][:, :, 56:].astype(float).mean()
    assert abs(top - low) > 1  # top and bottom differ: not a flipped or transposed copy of itself


def test_index_of_finds_the_image_with_those_labels(mini):
    data = S.Shapes3D(mini, factor_sizes=SIZES)
    labels = _labels()
    values = _published_values()
    rs = np.random.RandomState(1)
    for _ in range(50):
        factors = np.array([rs.randint(n) for n in SIZES])
        wanted = [values[i][KEPT[i][f]] for i, f in enumerate(factors)]
        row = int(np.flatnonzero(np.all(np.isclose(labels, wanted), axis=1))[0])
        assert data.index_of(factors[None])[0] == row
        assert data.images[row, 0, 0, 0] == row


def test_sample_observations_from_factors_matches_index_of(mini):
    data = S.Shapes3D(mini, factor_sizes=SIZES)
    rs = np.random.RandomState(0)
    factors = data.sample_factors(200, rs)
    obs = data.sample_observations_from_factors(factors, rs)
    source = _images().transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    assert obs.dtype == np.float32 and obs.shape == (200, 3, 64, 64)
    np.testing.assert_allclose(obs, source[data.index_of(factors)], rtol=0, atol=1e-7)
    assert obs.min() >= 0 and obs.max() <= 1


def test_factor_sampling_is_uniform_over_the_grid(mini):
    data = S.Shapes3D(mini, factor_sizes=SIZES)
    cells = data.index_of(data.sample_factors(96 * 200, np.random.RandomState(3)))
    counts = np.bincount(cells, minlength=N)
    assert chisquare(counts).pvalue > 1e-3


def test_verify_accepts_the_miniature_file(mini):
    report = S.verify_file(mini, factor_sizes=SIZES)
    assert report["status"] == "real" and report["problems"] == []
    assert report["checksum"].startswith("not checked")
    assert S.file_status(mini, factor_sizes=SIZES) == "real"
    info = S.describe(mini, factor_sizes=SIZES)
    assert info["num_images"] == N and info["factors_num_values"] == SIZES and info["grid"] == "reduced"


def test_the_class_demands_the_published_shape_without_the_test_hook(mini):
    with pytest.raises(UserError) as err:
        S.Shapes3D(mini)
    assert str(mini) in str(err.value) and "(480000, 64, 64, 3)" in str(err.value)
    assert S.file_status(mini) == "corrupt"


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))
    monkeypatch.delenv(files.DISENTANGLEMENT_LIB_ENV, raising=False)
    path = tmp_path / "shapes3d" / "3dshapes.h5"
    assert S.default_path() == path and S.file_status() == "missing"
    assert S.verify_file()["status"] == "missing"
    with pytest.raises(UserError) as err:
        S.Shapes3D()
    assert_clear_line("shapes3d", err, path, "not found", S.URL)


def test_disentanglement_lib_layout_is_used_when_dlbench_has_no_file(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "ours"))
    monkeypatch.setenv(files.DISENTANGLEMENT_LIB_ENV, str(tmp_path / "theirs"))
    theirs = tmp_path / "theirs" / "3dshapes" / "3dshapes.h5"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(mini.read_bytes())
    assert S.default_path() == theirs
    assert S.Shapes3D(factor_sizes=SIZES).images.shape == (N, 3, 64, 64)


@pytest.mark.parametrize("cut", [1, 5000, "half"])
def test_truncated_file_is_one_clear_error(tmp_path, mini, cut):
    data = mini.read_bytes()
    path = tmp_path / "3dshapes.h5"
    path.write_bytes(data[:len(data) // 2] if cut == "half" else data[:-cut])
    with pytest.raises(UserError) as err:
        S.Shapes3D(path, factor_sizes=SIZES).images
    assert_clear_line("shapes3d", err, path, "HDF5")
    report = S.verify_file(path, factor_sizes=SIZES)
    assert report["status"] == "corrupt"
    assert_clear_line("shapes3d", report["problems"][0], path, "HDF5")


def test_damaged_image_chunk_is_one_clear_error(tmp_path, mini):
    path = tmp_path / "3dshapes.h5"
    path.write_bytes(mini.read_bytes())
    with h5py.File(path, "r") as f:
        chunk = f["images"].id.get_chunk_info(3)
    with open(path, "r+b") as f:
        f.seek(chunk.byte_offset)
        f.write(b"\x00" * chunk.size)
    with pytest.raises(UserError) as err:
        S.Shapes3D(path, factor_sizes=SIZES).images
    assert_clear_line("shapes3d", err, path, "cannot read images")
    assert S.verify_file(path, factor_sizes=SIZES)["status"] == "corrupt"


@pytest.mark.parametrize("change, words", [
    (dict(images=_images()[..., :1].copy()), ["'images' is uint8 (96, 64, 64, 1)", "(96, 64, 64, 3)"]),
    (dict(images=_images().astype(np.float32)), ["'images' is float32", "expected uint8"]),
    (dict(labels=_labels().astype(np.float32)), ["'labels' is float32", "expected float64"]),
    (dict(labels=_labels()[:-1]), ["'labels' is float64 (95, 6)"]),
    (dict(drop=("labels",)), ["no 'labels' dataset"]),
    (dict(drop=("images",), imgs=_images()), ["no 'images' dataset"]),
])
def test_wrong_structure_is_one_clear_error(tmp_path, change, words):
    path = _write(tmp_path / "3dshapes.h5", **change)
    with pytest.raises(UserError) as err:
        S.Shapes3D(path, factor_sizes=SIZES)
    assert_clear_line("shapes3d", err, path, *words)
    report = S.verify_file(path, factor_sizes=SIZES)
    assert report["status"] == "corrupt" and len(report["problems"]) == 1
    assert_clear_line("shapes3d", report["problems"][0], path, *words)


def _swapped_rows():
    labels = _labels()
    labels[[10, 11]] = labels[[11, 10]]
    return labels


def _off_value():
    labels = _labels()
    labels[5, 3] = 0.8  # scale between the published 0.75 and 0.8214
    return labels


def _missing_value():
    labels = _labels()
    labels[:, 5] = _published_values()[5][6]  # orientation constant: 1 value where 3 are expected
    return labels


@pytest.mark.parametrize("labels, words", [
    (_swapped_rows(), ["not the complete factor grid in order", "row 10"]),
    (_off_value(), ["row 5 has scale = 0.8"]),
    (_missing_value(), ["1 values of orientation, expected 3"]),
])
def test_verify_checks_the_labels_form_the_grid(tmp_path, labels, words):
    path = _write(tmp_path / "3dshapes.h5", labels=labels)
    report = S.verify_file(path, factor_sizes=SIZES)
    assert report["status"] == "corrupt"
    assert_clear_line("shapes3d", report["problems"][0], path, *words)


def test_labels_to_classes_and_grid_helpers_agree_with_the_written_out_grid():
    classes = S.labels_to_classes(_labels())
    expected = np.array([[KEPT[i][k] for i, k in enumerate(np.unravel_index(r, SIZES))] for r in range(N)])
    np.testing.assert_array_equal(classes, expected)
    np.testing.assert_allclose(S.grid_labels(KEPT), _labels(), rtol=0, atol=1e-12)
    assert S.grid_problem(_labels(), SIZES) is None


def test_full_size_verification_compares_the_published_md5(tmp_path, monkeypatch, mini):
    """With the test grid declared the published one, verify computes and compares the md5."""
    monkeypatch.setattr(S, "FACTOR_SIZES", tuple(SIZES))
    report = S.verify_file(mini, factor_sizes=SIZES)
    assert report["status"] == "corrupt"
    assert_clear_line("shapes3d", report["problems"][0], mini, f"is not the published {S.MD5}", files.file_checksum(mini))
    monkeypatch.setattr(S, "MD5", files.file_checksum(mini))
    assert S.verify_file(mini, factor_sizes=SIZES)["status"] == "real"


def test_peak_memory_of_loading_is_measured(mini):
    figures = files.peak_memory_loading(S.Shapes3D, mini, factor_sizes=SIZES)
    assert figures["image_bytes"] == N * 3 * 64 * 64
    assert figures["peak_bytes"] >= figures["baseline_bytes"] > 0
