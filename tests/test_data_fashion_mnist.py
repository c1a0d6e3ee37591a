"""fashion_mnist: miniature idx files in the published format (big-endian headers, uint8 data,
gzip-compressed or raw) whose pixels encode their row and class; loading, resizing to 32x32
checked against an independent implementation of PIL's resampling, sampling by class, and the
errors for missing, truncated and wrong files.

`pil_resample_reference` is also used by the cars3d and smallnorb tests."""

import gzip
import math

import numpy as np
import pytest
from scipy.stats import chisquare

from dlbench.data import fashion_mnist as F
from dlbench.data import files
from dlbench.errors import UserError
from tests.data_messages import assert_clear_line

COUNTS = (30, 20)
N = sum(COUNTS)


# ---------------------------------------------------------------------------------------------
# An independent resampler: PIL's published algorithm for 8-bit images, written out in numpy


def _bilinear(x):
    return np.maximum(0.0, 1.0 - np.abs(x))


def _lanczos(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)


KERNELS = {"bilinear": (_bilinear, 1.0), "lanczos": (_lanczos, 3.0)}
PRECISION_BITS = 22  # PIL's fixed point for 8-bit images: 32 - 8 - 2


def _weights(in_size, out_size, kernel):
    """(out_size, in_size) float weights: the kernel stretched by the scale when shrinking, centred
    on each output pixel's centre mapped back, normalised to sum 1."""
    function, support = KERNELS[kernel]
    scale = in_size / out_size
    stretch = max(scale, 1.0)
    reach = support * stretch
    matrix = np.zeros((out_size, in_size))
    for i in range(out_size):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - reach + 0.5), 0), min(int(centre + reach + 0.5), in_size)
        w = function((np.arange(lo, hi) - centre + 0.5) / stretch)
        matrix[i, lo:hi] = w / w.sum()
    return matrix


def _pass(image, matrix, mode):
    """Resample axis 1 of an (h, w, c) array. '8bit' (PIL's L and RGB images): weights in fixed point,
    each pass rounded and clipped to 0..255; 'int32' (PIL's I images): float sums rounded half away
    from zero, not clipped."""
    if mode == "int32":
        total = np.einsum("ow,hwc->hoc", matrix, image.astype(np.float64))
        return (np.sign(total) * np.floor(np.abs(total) + 0.5)).astype(np.int64)
    fixed = np.array([[math.trunc(v * (1 << PRECISION_BITS) + (0.5 if v >= 0 else -0.5)) for v in row]
                      for row in matrix], dtype=np.int64)
    total = np.einsum("ow,hwc->hoc", fixed, image.astype(np.int64)) + (1 << (PRECISION_BITS - 1))
    return np.clip(total >> PRECISION_BITS, 0, 255).astype(np.uint8)


def pil_resample_reference(image, size, kernel, mode="8bit"):
    """(h, w) or (h, w, c) image resized to (size, size): horizontal pass, then vertical."""
    flat = image.ndim == 2
    x = image[..., None] if flat else image
    x = _pass(x, _weights(x.shape[1], size, kernel), mode)
    x = _pass(x.transpose(1, 0, 2), _weights(x.shape[0], size, kernel), mode).transpose(1, 0, 2)
    return x[..., 0] if flat else x


# ---------------------------------------------------------------------------------------------
# Miniature files


def _labels():
    rs = np.random.RandomState(5)
    labels = np.concatenate([np.arange(10), rs.randint(10, size=N - 10)])  # every class present
    return labels.astype(np.uint8)


def _images():
    """Constant images (a constant stays exact through resampling): row r has value 100 + r, so an
    observation's row, and through _labels its class, can be read back from any pixel."""
    images = (100 + np.arange(N, dtype=np.uint8))[:, None, None] * np.ones((1, 28, 28), dtype=np.uint8)
    return images


def _idx(magic, array, dims=None):
    """Bytes of an idx file written by hand: big-endian magic and dimensions, then the uint8 data."""
    dims = array.shape if dims is None else dims
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims) + array.tobytes()


def _write(folder, compress=True, **replace):
    """The four files written byte by byte (not by the module), any of them replaced by given bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = _images(), _labels()
    content = {
        "train-images-idx3-ubyte": _idx(0x803, images[:COUNTS[0]]),
        "train-labels-idx1-ubyte": _idx(0x801, labels[:COUNTS[0]]),
        "t10k-images-idx3-ubyte": _idx(0x803, images[COUNTS[0]:]),
        "t10k-labels-idx1-ubyte": _idx(0x801, labels[COUNTS[0]:]),
    }
    content.update({k.replace("_", "-"): v for k, v in replace.items()})
    for name, data in content.items():
        if compress:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("fm") / "fashion_mnist")


def test_module_writer_writes_the_same_bytes(tmp_path, mini):
    images, labels = _images(), _labels()
    F.write_files(tmp_path, images[:COUNTS[0]], labels[:COUNTS[0]], images[COUNTS[0]:], labels[COUNTS[0]:])
    for name in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert gzip.decompress((tmp_path / (name + ".gz")).read_bytes()) == \
            gzip.decompress((mini / (name + ".gz")).read_bytes())


@pytest.mark.parametrize("compress", [True, False])
def test_images_are_resized_copies_with_their_labels(tmp_path, compress):
    folder = _write(tmp_path / "f", compress=compress)
    data = F.FashionMnist(folder, num_images=COUNTS)
    images = data.images
    assert images.dtype == np.uint8 and images.shape == (N, 1, 32, 32) and images.flags.c_contiguous
    np.testing.assert_array_equal(images, (100 + np.arange(N, dtype=np.uint8))[:, None, None, None]
                                  * np.ones((1, 1, 32, 32), dtype=np.uint8))
    np.testing.assert_array_equal(data.labels, _labels())
    assert len(data) == N and data.images is images and not data.full_grid


def test_resizing_matches_an_independent_bilinear_resampler():
    """Structured 28x28 images (gradients, edges, noise) against PIL's algorithm written out."""
    rs = np.random.RandomState(0)
    y, x = np.mgrid[:28, :28]
    images = np.stack([rs.randint(256, size=(28, 28)), (x * 9) % 256, np.where(y < 7, 255, 0),
                       np.where((x // 4 + y // 4) % 2, 250, 3)]).astype(np.uint8)
    resized = F.resize_images(images)
    assert resized.shape == (4, 32, 32)
    for image, got in zip(images, resized):
        np.testing.assert_array_equal(got, pil_resample_reference(image, 32, "bilinear"))
    assert np.all(resized[2, :7] == 255) and np.all(resized[2, 10:] == 0)  # top stays top


def test_the_reference_resampler_is_a_resampler():
    """Sanity of the reference itself: constants stay constant, a linear ramp stays linear inside."""
    assert np.all(pil_resample_reference(np.full((28, 28), 77, np.uint8), 32, "bilinear") == 77)
    assert np.all(pil_resample_reference(np.full((96, 96), 200, np.uint8), 64, "lanczos") == 200)
    ramp = np.tile(np.arange(0, 224, 8, dtype=np.uint8), (28, 1))  # value 8 * column
    out = pil_resample_reference(ramp, 32, "bilinear").astype(float)
    centres = (np.arange(32) + 0.5) * 28 / 32 - 0.5  # output pixel centres in input columns
    np.testing.assert_allclose(out[0, 2:-2], 8 * centres[2:-2], atol=0.5)


def test_sampling_draws_an_image_of_the_requested_class(mini):
    data = F.FashionMnist(mini, num_images=COUNTS)
    labels = _labels()
    factors = data.sample_factors(500, np.random.RandomState(1))
    obs = data.sample_observations_from_factors(factors, np.random.RandomState(2))
    assert obs.dtype == np.float32 and obs.shape == (500, 1, 32, 32)
    rows = np.rint(obs[:, 0, 0, 0] * 255).astype(int) - 100
    np.testing.assert_array_equal(labels[rows], factors[:, 0])
    # every image of a class is drawn, uniformly: chi-square over the rows of class 3
    many = data.sample_observations_from_factors(np.full((3000, 1), 3), np.random.RandomState(4))
    drawn = np.rint(many[:, 0, 0, 0] * 255).astype(int) - 100
    members = np.flatnonzero(labels == 3)
    assert set(drawn) == set(members)
    assert chisquare(np.bincount(drawn, minlength=N)[members]).pvalue > 1e-3


def test_sampling_follows_the_random_state(mini):
    data = F.FashionMnist(mini, num_images=COUNTS)
    factors = np.arange(10)[:, None].repeat(5, axis=0)
    a = data.sample_observations_from_factors(factors, np.random.RandomState(7))
    b = data.sample_observations_from_factors(factors, np.random.RandomState(7))
    c = data.sample_observations_from_factors(factors, np.random.RandomState(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(UserError, match="classes are 0..9"):
        data.sample_observations_from_factors(np.array([[10]]), np.random.RandomState(0))
    with pytest.raises(UserError, match="full factor grid"):
        data.index_of(factors)


def test_verify_and_describe_accept_the_miniature_files(mini):
    report = F.verify_file(mini, num_images=COUNTS)
    assert report["status"] == "real" and report["problems"] == []
    assert report["checksum"].startswith("not checked")
    assert F.file_status(mini, num_images=COUNTS) == "real"
    info = F.describe(mini, num_images=COUNTS)
    assert info["num_images"] == N and info["factors_num_values"] == [10]
    assert info["observation_shape"] == [1, 32, 32]


def test_published_counts_are_demanded_without_the_test_hook(mini):
    with pytest.raises(UserError) as err:
        F.FashionMnist(mini)
    assert_clear_line("fashion_mnist", err, mini / "train-images-idx3-ubyte.gz", "dimensions (30, 28, 28)", "(60000, 28, 28)")
    assert F.file_status(mini) == "corrupt"


def test_missing_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))
    folder = tmp_path / "fashion_mnist"
    assert F.default_path() == folder and F.file_status() == "missing"
    assert F.verify_file()["status"] == "missing"
    with pytest.raises(UserError) as err:
        F.FashionMnist()
    assert_clear_line("fashion_mnist", err, folder / "train-images-idx3-ubyte", "not found", "train-labels-idx1-ubyte.gz", F.URL)


def test_one_missing_file_is_named(tmp_path, mini):
    folder = _write(tmp_path / "f")
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as err:
        F.FashionMnist(folder, num_images=COUNTS)
    assert_clear_line("fashion_mnist", err, folder / "t10k-labels-idx1-ubyte", "label file not found")
    assert F.file_status(folder, num_images=COUNTS) == "corrupt"


def _train_images(images=None):
    return _idx(0x803, _images()[:COUNTS[0]] if images is None else images)


@pytest.mark.parametrize("replace, name, words", [
    (dict(train_images_idx3_ubyte=_train_images()[:-100]), "train-images-idx3-ubyte",
     ["data end after 29 of 30 images", "truncated"]),
    (dict(train_images_idx3_ubyte=_train_images()[:10]), "train-images-idx3-ubyte", ["ends after 10 bytes"]),
    (dict(train_images_idx3_ubyte=_train_images() + b"\0"), "train-images-idx3-ubyte", ["bytes after the 30 images"]),
    (dict(train_images_idx3_ubyte=b"\0\0\x08\x01" + _train_images()[4:]), "train-images-idx3-ubyte",
     ["magic number 0x00000801 is not 0x00000803"]),
    (dict(t10k_labels_idx1_ubyte=_idx(0x803, _labels()[COUNTS[0]:])), "t10k-labels-idx1-ubyte",
     ["magic number 0x00000803 is not 0x00000801"]),
    (dict(train_images_idx3_ubyte=_idx(0x803, _images()[:COUNTS[0], :, :27].copy())), "train-images-idx3-ubyte",
     ["dimensions (30, 28, 27) are not the expected (30, 28, 28)"]),
    (dict(t10k_labels_idx1_ubyte=_idx(0x801, np.full(COUNTS[1], 12, np.uint8))), "t10k-labels-idx1-ubyte",
     ["label 12 at row 0 is not a class 0..9"]),
])
def test_wrong_or_truncated_files_are_one_clear_error(tmp_path, replace, name, words):
    folder = _write(tmp_path / "f", **replace)
    path = folder / (name + ".gz")
    with pytest.raises(UserError) as err:
        F.FashionMnist(folder, num_images=COUNTS).images
    assert_clear_line("fashion_mnist", err, path, *words)
    report = F.verify_file(folder, num_images=COUNTS)
    assert report["status"] == "corrupt" and len(report["problems"]) == 1
    assert_clear_line("fashion_mnist", report["problems"][0], path, *words)


def test_a_class_with_no_image_is_an_error(tmp_path):
    labels = _labels()
    labels[labels == 4] = 5
    folder = _write(tmp_path / "f", **{"train-labels-idx1-ubyte": _idx(0x801, labels[:COUNTS[0]]),
                                       "t10k-labels-idx1-ubyte": _idx(0x801, labels[COUNTS[0]:])})
    with pytest.raises(UserError) as err:
        F.FashionMnist(folder, num_images=COUNTS)
    assert_clear_line("fashion_mnist", err, folder / "train-labels-idx1-ubyte.gz", "no image of class 4")


def test_damaged_gzip_is_one_clear_error(tmp_path):
    folder = _write(tmp_path / "f")
    path = folder / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2:len(data) // 2 + 20] = b"\xff" * 20
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        F.FashionMnist(folder, num_images=COUNTS).images
    assert_clear_line("fashion_mnist", err, path, "cannot read it")
    path.write_bytes(gzip.compress(_train_images())[:-30])  # the compressed stream cut short
    assert_clear_line("fashion_mnist", F.verify_file(folder, num_images=COUNTS)["problems"][0], path, "cannot read it", "EOFError")
    path.write_bytes(b"not gzip at all")
    assert F.file_status(folder, num_images=COUNTS) == "corrupt"
    assert_clear_line("fashion_mnist", F.verify_file(folder, num_images=COUNTS)["problems"][0], path, "cannot read it")


def test_full_size_verification_compares_the_published_md5(tmp_path, monkeypatch, mini):
    monkeypatch.setattr(F, "NUM_IMAGES", COUNTS)
    report = F.verify_file(mini)
    assert report["status"] == "corrupt"
    path = mini / "train-images-idx3-ubyte.gz"
    assert_clear_line("fashion_mnist", report["problems"][0], path, f"is not the published {F.FILES['train_images'][1]}")
    published = {role: (name, files.file_checksum(mini / (name + ".gz"))) for role, (name, _) in F.FILES.items()}
    monkeypatch.setattr(F, "FILES", published)
    report = F.verify_file(mini)
    assert report["status"] == "real" and "match the published" in report["checksum"]
