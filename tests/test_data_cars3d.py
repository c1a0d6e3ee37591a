"""cars3d: a miniature cars/ folder of MATLAB v5 files in the published layout ('im' uint8
(128, 128, 3, 24, 4), 'mask'), three cars instead of 183, whose pixels encode elevation, azimuth
and car; loading, the factor grid, resizing against an independent resampler and
disentanglement_lib's thumbnail, archive extraction, and the errors for missing and wrong files."""

import io
import tarfile

import numpy as np
import pytest
import scipy.io
from PIL import Image
from scipy.stats import chisquare

from dlbench.data import cars3d as C
from dlbench.data import files
from dlbench.errors import UserError
from tests.data_messages import assert_clear_line
from tests.test_data_fashion_mnist import pil_resample_reference

CARS = 3
SIZES = [4, 24, CARS]
N = 4 * 24 * CARS


def _views(car):
    """'im' of one car: every view constant, red 10 + elevation, green 20 + azimuth, blue 100 + car."""
    im = np.empty((128, 128, 3, 24, 4), dtype=np.uint8)
    for azimuth in range(24):
        for elevation in range(4):
            im[:, :, 0, azimuth, elevation] = 10 + elevation
            im[:, :, 1, azimuth, elevation] = 20 + azimuth
            im[:, :, 2, azimuth, elevation] = 100 + car
    return im


def _save(path, **content):
    scipy.io.savemat(path, content, format="5")


def _write(folder, cars=CARS):
    folder.mkdir(parents=True, exist_ok=True)
    for car in range(cars):
        _save(folder / f"car_{car + 1:03d}_mesh.mat", im=_views(car), mask=np.zeros((128, 128, 24, 4), np.uint8))
    return folder


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("cars3d") / "cars")


def test_module_writer_gives_the_published_layout(tmp_path, mini):
    C.write_mat(tmp_path / "car.mat", _views(0))
    ours, theirs = scipy.io.loadmat(tmp_path / "car.mat"), scipy.io.loadmat(mini / "car_001_mesh.mat")
    for key in ("im", "mask"):
        assert ours[key].dtype == theirs[key].dtype and ours[key].shape == theirs[key].shape
    np.testing.assert_array_equal(ours["im"], theirs["im"])


def test_images_hold_each_view_at_its_factor_index(mini):
    data = C.Cars3D(mini, factor_sizes=SIZES)
    images = data.images
    assert images.dtype == np.uint8 and images.shape == (N, 3, 64, 64) and images.flags.c_contiguous
    assert len(data) == N and data.images is images
    for elevation in range(4):
        for azimuth in range(24):
            for car in range(CARS):
                row = (elevation * 24 + azimuth) * CARS + car  # last factor fastest, written out
                assert data.index_of([[elevation, azimuth, car]])[0] == row
                for channel, value in enumerate((10 + elevation, 20 + azimuth, 100 + car)):
                    assert np.all(images[row, channel] == value), (elevation, azimuth, car, channel)


def test_sample_observations_from_factors_matches_index_of(mini):
    data = C.Cars3D(mini, factor_sizes=SIZES)
    rs = np.random.RandomState(0)
    factors = data.sample_factors(300, rs)
    obs = data.sample_observations_from_factors(factors, rs)
    assert obs.dtype == np.float32 and obs.shape == (300, 3, 64, 64)
    np.testing.assert_array_equal(np.rint(obs[:, :, 0, 0] * 255), np.stack(
        [10 + factors[:, 0], 20 + factors[:, 1], 100 + factors[:, 2]], axis=1))
    cells = data.index_of(data.sample_factors(N * 50, np.random.RandomState(3)))
    assert chisquare(np.bincount(cells, minlength=N)).pvalue > 1e-3


def _structured_views():
    rs = np.random.RandomState(1)
    y, x = np.mgrid[:128, :128]
    views = np.stack([rs.randint(256, size=(128, 128, 3)),
                      np.stack([np.where(y < 32, 255, 0), (x * 2) % 256, np.where((x // 9 + y // 5) % 2, 250, 5)],
                               axis=-1)]).astype(np.uint8)
    return views


def test_resizing_matches_an_independent_lanczos_resampler():
    views = _structured_views()
    resized = C.resize_views(views)
    assert resized.shape == (2, 3, 64, 64)
    for view, got in zip(views, resized):
        np.testing.assert_array_equal(got.transpose(1, 2, 0), pil_resample_reference(view, 64, "lanczos"))
    assert np.all(resized[1, 0, :14] > 240) and np.all(resized[1, 0, 18:] < 15)  # top (red) stays top


def test_resizing_is_disentanglement_libs_thumbnail():
    for view, got in zip(_structured_views(), C.resize_views(_structured_views())):
        picture = Image.fromarray(view)
        picture.thumbnail((64, 64), Image.LANCZOS)
        np.testing.assert_array_equal(got.transpose(1, 2, 0), np.asarray(picture))


def test_verify_and_describe_accept_the_miniature_folder(mini):
    report = C.verify_file(mini, factor_sizes=SIZES)
    assert report["status"] == "real" and report["problems"] == []
    assert C.file_status(mini, factor_sizes=SIZES) == "real"
    info = C.describe(mini, factor_sizes=SIZES)
    assert info["num_images"] == N and info["factors_num_values"] == SIZES and info["grid"] == "reduced"


def test_the_class_demands_183_cars_without_the_test_hook(mini):
    with pytest.raises(UserError) as err:
        C.Cars3D(mini)
    assert_clear_line("cars3d", err, mini, "holds 3 .mat files, expected 183")
    assert C.file_status(mini) == "corrupt"


def test_missing_folder_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path))
    monkeypatch.delenv(files.DISENTANGLEMENT_LIB_ENV, raising=False)
    folder = tmp_path / "cars3d" / "cars"
    assert C.default_path() == folder and C.file_status() == "missing"
    assert C.verify_file()["status"] == "missing"
    with pytest.raises(UserError) as err:
        C.Cars3D()
    assert_clear_line("cars3d", err, folder, "not found", C.URL)


def test_disentanglement_lib_layout_is_used_when_dlbench_has_no_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "ours"))
    monkeypatch.setenv(files.DISENTANGLEMENT_LIB_ENV, str(tmp_path / "theirs"))
    theirs = _write(tmp_path / "theirs" / "cars", cars=1)
    assert C.default_path() == theirs
    assert C.Cars3D(factor_sizes=[4, 24, 1]).images.shape == (96, 3, 64, 64)


def _bad(kind):
    def write(path):
        if kind == "no_im":
            _save(path, mask=np.zeros((128, 128, 24, 4), np.uint8))
        elif kind == "transposed":
            _save(path, im=_views(1).transpose(0, 1, 2, 4, 3).copy())
        elif kind == "float":
            _save(path, im=_views(1).astype(np.float64))
        elif kind == "truncated":
            _save(path, im=_views(1))
            path.write_bytes(path.read_bytes()[:100_000])
        elif kind == "not_mat":
            path.write_bytes(b"<html>404 not found</html>")
    return write


@pytest.mark.parametrize("kind, words", [
    ("no_im", ["has no 'im' variable"]),
    ("transposed", ["'im' is uint8 (128, 128, 3, 4, 24), expected uint8 (128, 128, 3, 24, 4)"]),
    ("float", ["'im' is float64"]),
    ("truncated", ["not a readable MATLAB file"]),
    ("not_mat", ["not a readable MATLAB file"]),
])
def test_wrong_or_truncated_file_is_one_clear_error(tmp_path, kind, words):
    folder = _write(tmp_path / "cars")
    path = folder / "car_002_mesh.mat"
    _bad(kind)(path)
    with pytest.raises(UserError) as err:
        C.Cars3D(folder, factor_sizes=SIZES).images
    assert_clear_line("cars3d", err, path, *words)
    report = C.verify_file(folder, factor_sizes=SIZES)
    assert report["status"] == "corrupt" and len(report["problems"]) == 1
    assert_clear_line("cars3d", report["problems"][0], path, *words)


def _archive(path, cars=2):
    """A nips2015-analogy-data.tar.gz: data/cars/*.mat and list.txt, plus another folder."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for car in range(cars):
            buffer = io.BytesIO()
            scipy.io.savemat(buffer, {"im": _views(car)}, format="5")
            add(f"data/cars/car_{car + 1:03d}_mesh.mat", buffer.getvalue())
        add("data/cars/list.txt", b"".join(b"car_%03d_mesh\n" % (c + 1) for c in range(cars)))
        add("data/shapes48.mat", b"other data")
    return path


def test_download_fetches_and_extracts_the_cars_folder(tmp_path, monkeypatch):
    archive = _archive(tmp_path / "served.tar.gz")
    monkeypatch.setattr(C, "ARCHIVE_MD5", files.file_checksum(archive))
    folder = C.download(tmp_path / "data" / "cars", url=archive.as_uri(), progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["car_001_mesh.mat", "car_002_mesh.mat", "list.txt"]
    assert not (tmp_path / "data" / C.ARCHIVE).exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["cars"]
    images = C.Cars3D(folder, factor_sizes=[4, 24, 2]).images
    assert np.all(images[C.Cars3D(folder, factor_sizes=[4, 24, 2]).index_of([[3, 5, 1]])[0], 2] == 101)


def test_a_damaged_archive_writes_nothing(tmp_path):
    archive = _archive(tmp_path / C.ARCHIVE)
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(UserError) as err:
        C.extract_cars(archive, tmp_path / "cars")
    assert "cannot extract" in str(err.value) and "nothing written" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [C.ARCHIVE]


def test_make_from_a_hand_downloaded_archive(tmp_path, monkeypatch, capsys):
    """dlb_data make cars3d --from ARCHIVE: md5 checked, data/cars/ extracted into the data root,
    the archive left in place; a wrong archive or an existing folder writes nothing."""
    from dlbench.cli.data import main

    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "root"))
    archive = _archive(tmp_path / C.ARCHIVE)
    folder = tmp_path / "root" / "cars3d" / "cars"
    assert main(["make", "cars3d", "--from", str(archive)]) == 2  # md5 is not the published one
    err = capsys.readouterr().err.strip()
    assert "not the published" in err and len(err.splitlines()) == 1 and not folder.exists()
    monkeypatch.setattr(C, "ARCHIVE_MD5", files.file_checksum(archive))
    assert main(["make", "cars3d", "--from", str(archive)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["car_001_mesh.mat", "car_002_mesh.mat", "list.txt"]
    assert archive.exists()
    assert main(["make", "cars3d", "--from", str(archive)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["make", "shapes3d", "--from", str(archive)]) == 2
    assert "no archive to convert" in capsys.readouterr().err
    assert main(["make", "cars3d", "--from", str(tmp_path / "nope.tar.gz")]) == 2
    assert "no such archive" in capsys.readouterr().err
