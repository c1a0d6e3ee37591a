"""smallnorb: miniature binary-matrix files in the published format (little-endian int32 magic,
ndim and at least 3 dimensions, then uint8 stereo images or int32 labels), rows shuffled, whose
first-camera pixels encode their labels; loading, resizing against an independent resampler,
disentanglement_lib's instance draw, and the errors for missing, truncated and wrong files."""

import gzip
import struct

import numpy as np
import pytest
from PIL import Image
from scipy.stats import chisquare

from dlbench.data import files
from dlbench.data import smallnorb as S
from dlbench.errors import UserError
from tests.data_messages import assert_clear_line
from tests.test_data_fashion_mnist import pil_resample_reference

SIZES = (2, 2, 3, 2)  # category, elevation, azimuth, lighting
INSTANCES = 4
GRID = (2, INSTANCES, 2, 3, 2)  # category, instance, elevation, azimuth index, lighting
SPLIT = ([1, 3], [0, 2])  # instances in the training and the test file
TRAIN = "smallnorb-5x46789x9x18x6x2x96x96-training"
TEST = "smallnorb-5x01235x9x18x6x2x96x96-testing"


def _code(labels):
    """The grey level that marks an image: 1 + its cell number over GRID, computed by loops."""
    c, i, e, a, l = labels
    return 1 + ((((c * INSTANCES + i) * 2 + e) * 3 + a) * 2 + l)


def _chunk(instances, seed):
    """(images (n, 2, 96, 96), cat (n,), info (n, 4)) of one file, rows in a shuffled order."""
    rows = [(c, i, e, a, l) for c in range(2) for i in instances for e in range(2) for a in range(3)
            for l in range(2)]
    rows = [rows[k] for k in np.random.RandomState(seed).permutation(len(rows))]
    images = np.empty((len(rows), 2, 96, 96), dtype=np.uint8)
    for k, r in enumerate(rows):
        images[k, 0] = _code(r)
        images[k, 1] = 250 - _code(r)  # the second camera: must not be read
    cat = np.array([r[0] for r in rows], dtype=np.int32)
    info = np.array([[r[1], r[2], 2 * r[3], r[4]] for r in rows], dtype=np.int32)  # azimuth 0, 2, 4
    return images, cat, info


def _matrix(magic, array, dims=None, ndim=None):
    """Bytes of a binary-matrix file, written with struct (not by the module)."""
    dims = list(array.shape if dims is None else dims)
    ndim = len(dims) if ndim is None else ndim
    dims = dims + [1] * (3 - len(dims))
    return struct.pack(f"<{2 + len(dims)}i", magic, ndim, *dims) + array.tobytes()


def _contents():
    content = {}
    for chunk, instances, seed in ((TRAIN, SPLIT[0], 0), (TEST, SPLIT[1], 1)):
        images, cat, info = _chunk(instances, seed)
        content[f"{chunk}-dat.mat"] = _matrix(0x1E3D4C55, images)
        content[f"{chunk}-cat.mat"] = _matrix(0x1E3D4C54, cat)
        content[f"{chunk}-info.mat"] = _matrix(0x1E3D4C54, info)
    return content


def _write(folder, compress=False, **replace):
    """The six files, any replaced by given bytes (keys: 'train_dat', 'test_info', ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    content = _contents()
    for key, data in replace.items():
        split, kind = key.split("_")
        content[f"{TRAIN if split == 'train' else TEST}-{kind}.mat"] = data
    for name, data in content.items():
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data, compresslevel=1))
        else:
            (folder / name).write_bytes(data)
    return folder


def _file_labels():
    parts = [_chunk(SPLIT[0], 0), _chunk(SPLIT[1], 1)]
    return [tuple(int(v) for v in (c, *inf[:2], inf[2] // 2, inf[3]))
            for _, cats, infos in parts for c, inf in zip(cats, infos)]


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("norb") / "smallnorb")


def _data(folder):
    return S.SmallNorb(folder, factor_sizes=SIZES, num_instances=INSTANCES)


def test_module_writer_writes_the_same_bytes(tmp_path, mini):
    S.write_files(tmp_path, [_chunk(SPLIT[0], 0), _chunk(SPLIT[1], 1)])
    for name in _contents():
        assert (tmp_path / name).read_bytes() == (mini / name).read_bytes(), name


def test_images_are_the_first_camera_resized_in_file_order(mini):
    data = _data(mini)
    images = data.images
    assert images.dtype == np.uint8 and images.shape == (96, 1, 64, 64) and images.flags.c_contiguous
    codes = np.array([_code(r) for r in _file_labels()], dtype=np.uint8)
    np.testing.assert_array_equal(images, codes[:, None, None, None] * np.ones((1, 1, 64, 64), np.uint8))
    np.testing.assert_array_equal(data.labels, np.array(_file_labels()))
    assert len(data) == 96 and data.factors_num_values == list(SIZES) and not data.full_grid
    assert data.images is images


def test_gzip_files_load_the_same(tmp_path, mini):
    folder = _write(tmp_path / "gz", compress=True)
    assert S.find_file(folder, S.CHUNKS[0], "dat").suffix == ".gz"
    np.testing.assert_array_equal(_data(folder).images, _data(mini).images)
    assert S.verify_file(folder, factor_sizes=SIZES, num_instances=INSTANCES)["status"] == "real"


def _structured():
    rs = np.random.RandomState(0)
    y, x = np.mgrid[:96, :96]
    return np.stack([rs.randint(256, size=(96, 96)), (x * 3) % 256, np.where(y < 20, 255, 0),
                     np.where((x // 7 + y // 5) % 2, 255, 0)]).astype(np.uint8)


def test_resizing_matches_an_independent_lanczos_resampler():
    """PIL's 32-bit integer mode (unclipped passes) written out, then clipped to 0..255."""
    images = _structured()
    resized = S.resize_images(images)
    for image, got in zip(images, resized):
        reference = pil_resample_reference(image, 64, "lanczos", mode="int32")
        np.testing.assert_array_equal(got, np.clip(reference, 0, 255))
    assert np.all(resized[2, :12] > 240) and np.all(resized[2, 16:] < 15)  # top stays top


def test_resizing_is_disentanglement_libs_clipped_to_uint8():
    """disentanglement_lib read the pixels as int8, so PIL resized them in 32-bit integer mode."""
    images = _structured()
    theirs = np.stack([np.asarray(Image.fromarray(im.view(np.int8)).resize((64, 64), Image.LANCZOS))
                       for im in images]).astype(int)
    assert Image.fromarray(images[0].view(np.int8)).mode == "I"
    np.testing.assert_array_equal(S.resize_images(images), np.clip(theirs, 0, 255))
    assert theirs.max() > 255 and theirs.min() < 0  # Lanczos overshoot that uint8 storage clips
    eight_bit = np.stack([np.asarray(Image.fromarray(im).resize((64, 64), Image.LANCZOS)) for im in images])
    assert np.abs(eight_bit.astype(int) - np.clip(theirs, 0, 255)).max() > 1  # the mode matters


def test_sampling_draws_the_instance_as_disentanglement_lib(mini):
    data = _data(mini)
    rs = np.random.RandomState(3)
    factors, obs = data.sample(400, rs)
    mirror = np.random.RandomState(3)
    expected = np.stack([mirror.randint(n, size=400) for n in SIZES], axis=1)
    instances = mirror.randint(INSTANCES, size=400)
    np.testing.assert_array_equal(factors, expected)
    assert obs.dtype == np.float32 and obs.shape == (400, 1, 64, 64)
    codes = [_code((f[0], i, f[1], f[2], f[3])) for f, i in zip(factors, instances)]
    np.testing.assert_array_equal(np.rint(obs * 255), np.array(codes)[:, None, None, None] * np.ones((1, 1, 64, 64)))
    assert obs.max() <= 1
    assert len(set(instances)) == INSTANCES


def test_factor_sampling_is_uniform(mini):
    data = _data(mini)
    factors = data.sample_factors(24 * 300, np.random.RandomState(9))
    counts = np.bincount(np.ravel_multi_index(factors.T, SIZES), minlength=24)
    assert chisquare(counts).pvalue > 1e-3
    with pytest.raises(UserError, match="full factor grid"):
        data.index_of(factors)
    with pytest.raises(UserError, match="within"):
        data.sample_observations_from_factors(np.array([[0, 0, 3, 0]]), np.random.RandomState(0))


def test_verify_and_describe_accept_the_miniature_files(mini):
    kwargs = dict(factor_sizes=SIZES, num_instances=INSTANCES)
    report = S.verify_file(mini, **kwargs)
    assert report["status"] == "real" and report["problems"] == []
    assert report["checksum"].startswith("not checked")
    assert S.file_status(mini, **kwargs) == "real"
    info = S.describe(mini, **kwargs)
    assert info["num_images"] == 96 and info["factors_num_values"] == list(SIZES)
    assert info["factor_names"] == ["category", "elevation", "azimuth", "lighting"]


def test_published_size_is_demanded_without_the_test_hook(mini):
    with pytest.raises(UserError) as err:
        S.SmallNorb(mini)
    assert_clear_line("smallnorb", err, mini / f"{TRAIN}-dat.mat", "dimensions (48, 2, 96, 96)", "(24300, 2, 96, 96)")
    assert S.file_status(mini) == "corrupt"


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))
    monkeypatch.delenv(files.DISENTANGLEMENT_LIB_ENV, raising=False)
    folder = tmp_path / "smallnorb"
    assert S.default_path() == folder and S.file_status() == "missing"
    assert S.verify_file()["status"] == "missing"
    with pytest.raises(UserError) as err:
        S.SmallNorb()
    assert_clear_line("smallnorb", err, folder / f"{TRAIN}-dat.mat", "not found", S.URL)


def test_disentanglement_lib_layout_is_used_when_dlbench_has_no_files(tmp_path, monkeypatch, mini):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "ours"))
    monkeypatch.setenv(files.DISENTANGLEMENT_LIB_ENV, str(tmp_path / "theirs"))
    theirs = _write(tmp_path / "theirs" / "small_norb")
    assert S.default_path() == theirs
    assert S.SmallNorb(factor_sizes=SIZES, num_instances=INSTANCES).images.shape == (96, 1, 64, 64)


def _train(kind, **changes):
    images, cat, info = _chunk(SPLIT[0], 0)
    array = {"dat": images, "cat": cat, "info": info}[kind]
    return _matrix(0x1E3D4C55 if kind == "dat" else 0x1E3D4C54, array, **changes)


def _info_with(row, column, value):
    _, _, info = _chunk(SPLIT[0], 0)
    info[row, column] = value
    return _matrix(0x1E3D4C54, info)


def _duplicate_row():
    _, _, info = _chunk(SPLIT[0], 0)
    info[1] = info[0]
    return _matrix(0x1E3D4C54, info)


@pytest.mark.parametrize("replace, words", [
    (dict(train_dat=_train("dat")[:-5000]), ["dat.mat", "data end after 47 of 48 rows", "truncated"]),
    (dict(train_dat=_train("dat") + b"\0"), ["dat.mat", "bytes after the 48 rows"]),
    (dict(train_dat=_train("dat")[:6]), ["dat.mat", "ends after 6 bytes, inside the header"]),
    (dict(train_dat=_train("dat")[:14]), ["dat.mat", "ends after 14 bytes, inside the header"]),
    (dict(train_dat=struct.pack("<i", 0x1E3D4C54) + _train("dat")[4:]),
     ["dat.mat", "magic number 0x1E3D4C54 (int32) is not 0x1E3D4C55 (uint8)"]),
    (dict(test_cat=b"\x89PNG" + _train("cat")[4:]), ["testing-cat.mat", "not a binary-matrix magic number"]),
    (dict(train_dat=_matrix(0x1E3D4C55, _chunk(SPLIT[0], 0)[0][:, :, :95].copy())),
     ["dat.mat", "dimensions (48, 2, 95, 96) are not the expected (48, 2, 96, 96)"]),
    (dict(train_cat=_matrix(0x1E3D4C54, _chunk(SPLIT[0], 0)[1][:40].copy())),
     ["training-cat.mat", "dimensions (40,) are not the expected (48,)"]),
    (dict(train_info=_matrix(0x1E3D4C54, _chunk(SPLIT[0], 0)[2][:, :3].copy())),
     ["training-info.mat", "dimensions (48, 3) are not the expected (48, 4)"]),
    (dict(train_info=_info_with(5, 2, 3)), ["training-info.mat", "row 5 has azimuth 3, not one of 0, 2"]),
    (dict(train_info=_info_with(7, 1, 2)), ["training-info.mat", "row 7 has elevation 2, outside 0..1"]),
    (dict(train_info=_info_with(2, 2, 6)), ["training-info.mat", "row 2 has azimuth 6, outside 0..4"]),
    (dict(train_info=_duplicate_row()), ["training-info.mat", "appears 2 times"]),
])
def test_wrong_or_truncated_files_are_one_clear_error(tmp_path, replace, words):
    folder = _write(tmp_path / "f", **replace)
    kwargs = dict(factor_sizes=SIZES, num_instances=INSTANCES)
    with pytest.raises(UserError) as err:
        S.SmallNorb(folder, **kwargs).images
    assert_clear_line("smallnorb", err, folder, *words)
    report = S.verify_file(folder, **kwargs)
    assert report["status"] == "corrupt" and len(report["problems"]) == 1
    assert_clear_line("smallnorb", report["problems"][0], folder, *words)


def test_too_few_images_for_the_grid_is_an_error(tmp_path):
    """A grid of 3 instances declared for files that hold 4: the image count gives it away."""
    folder = _write(tmp_path / "f")
    with pytest.raises(UserError) as err:
        S.SmallNorb(folder, factor_sizes=SIZES, num_instances=3)
    assert_clear_line("smallnorb", err, folder / f"{TRAIN}-dat.mat", "hold 96 images together, expected 72")


def test_damaged_gzip_is_one_clear_error(tmp_path):
    folder = _write(tmp_path / "f", compress=True)
    path = folder / f"{TEST}-dat.mat.gz"
    path.write_bytes(path.read_bytes()[:-200])
    kwargs = dict(factor_sizes=SIZES, num_instances=INSTANCES)
    with pytest.raises(UserError) as err:
        S.SmallNorb(folder, **kwargs).images
    assert_clear_line("smallnorb", err, path, "cannot read it", "EOFError")
    assert_clear_line("smallnorb", S.verify_file(folder, **kwargs)["problems"][0], path, "cannot read it")


def test_full_size_verification_compares_the_published_md5(tmp_path, monkeypatch):
    folder = _write(tmp_path / "f", compress=True)
    monkeypatch.setattr(S, "FACTOR_SIZES", SIZES)
    monkeypatch.setattr(S, "NUM_INSTANCES", INSTANCES)
    monkeypatch.setattr(S, "IMAGES_PER_FILE", 48)
    report = S.verify_file(folder)
    assert report["status"] == "corrupt"
    assert_clear_line("smallnorb", report["problems"][0], folder, f"is not the published {S.MD5[(S.CHUNKS[0], 'dat')]}")
    monkeypatch.setattr(S, "MD5", {key: files.file_checksum(S.find_file(folder, *key)) for key in S.MD5})
    report = S.verify_file(folder)
    assert report["status"] == "real" and "md5 of 6 .gz files match" in report["checksum"]
