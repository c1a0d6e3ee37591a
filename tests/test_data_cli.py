"""dlb_data: list, make, verify, info, download, and its one-line errors."""

import hashlib
import io
import re
import shlex
import sys
import urllib.error
import urllib.request
import zipfile

import numpy as np
import pytest

import dlbench.data
from dlbench.cli.data import main, parse_keep
from dlbench.data import available_datasets, mpi3d, shapes3d
from dlbench.data import dsprites as D
from dlbench.data import scream_dsprites
from dlbench.data.color_dsprites import ColorDSprites
from dlbench.data.noisy_dsprites import NoisyDSprites
from dlbench.errors import UserError

KEEP = ["--keep", "scale=5", "--keep", "orientation=0,13", "--keep", "posX=0:32:8", "--keep", "posY=31"]
N = 3 * 1 * 2 * 4 * 1


@pytest.fixture
def target(root):
    return root / "dsprites" / D.FILENAME


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def user_error(capsys, *argv):
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dlb_data: error: ") and "Traceback" not in err
    return lines[0]


def _make_real_like(path):
    """A file in the real format without dlbench's synthetic marker (numpy's own writer)."""
    D.generate_npz(path, class_indices={"scale": [5], "orientation": [0], "posX": [0], "posY": [0, 31]})
    with np.load(path, allow_pickle=True) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = dict(arrays["metadata"][()])
    del meta["dlbench"]
    arrays["metadata"] = np.array(meta, dtype=object)
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def test_list_shows_missing_then_synthetic_then_corrupt(capsys, root, target):
    code, out, _ = run(capsys, "list")
    assert code == 0 and str(root) in out
    line = [l for l in out.splitlines() if l.startswith("dsprites")][0]
    assert line.split()[1] == "missing" and str(target) in line
    assert run(capsys, "make", "dsprites", *KEEP)[0] == 0
    out = run(capsys, "list")[1]
    assert [l for l in out.splitlines() if l.startswith("dsprites")][0].split()[1] == "synthetic"
    target.write_bytes(b"junk")
    out = run(capsys, "list")[1]
    assert [l for l in out.splitlines() if l.startswith("dsprites")][0].split()[1] == "corrupt"


def test_list_with_a_data_root_that_is_a_file_says_so(capsys, tmp_path, monkeypatch):
    # it had listed every dataset as missing, and not why
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "afile"))
    line = user_error(capsys, "list")
    assert f"the data folder '{tmp_path / 'afile'}' (DLBENCH_DATA) is a file; set DLBENCH_DATA to a folder" in line
    monkeypatch.setenv("DLBENCH_DATA", str(tmp_path / "nowhere" / "data"))  # not made yet: listed, all missing
    assert run(capsys, "list")[0] == 0


def test_make_writes_a_reduced_synthetic_grid(capsys, target):
    code, out, err = run(capsys, "make", "dsprites", *KEEP)
    assert code == 0 and "SYNTHETIC" in out and str(target) in out
    handle = D.DSpritesFile(target)
    assert handle.synthetic and not handle.compressed
    assert handle.latents_sizes.tolist() == [1, 3, 1, 2, 4, 1]
    np.testing.assert_allclose(handle.possible_values["posX"], np.array([0, 8, 16, 24]) / 31)
    assert "rendering dSprites" not in err  # no progress bar: standard error is not a terminal here
    # a second make refuses without --force, regenerates with it
    assert "--force" in user_error(capsys, "make", "dsprites", *KEEP)
    assert run(capsys, "make", "dsprites", "--force", "--compress", "--keep", "shape=2", *KEEP[2:])[0] == 0
    handle = D.DSpritesFile(target)
    assert handle.compressed and handle.latents_sizes.tolist() == [1, 1, 6, 2, 4, 1]


@pytest.mark.parametrize("terminal, flags, bar", [(True, [], True), (True, ["--no_progress"], False),
                                                  (False, [], False)])
def test_make_draws_its_progress_bar_only_into_a_terminal(capsys, root, monkeypatch, terminal, flags, bar):
    # it had drawn the bar into logs and pipes too, with no --no_progress to hide it
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    code, _, err = run(capsys, "make", "dsprites", *KEEP, *flags)
    assert code == 0 and ("rendering dSprites" in err) == bar


@pytest.mark.parametrize("flags, bar", [([], True), (["--no_progress"], False)])
def test_download_draws_its_progress_bar_as_make_does(capsys, target, tmp_path, monkeypatch, flags, bar):
    payload = _make_real_like(tmp_path / "served.npz").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", _served(payload))
    monkeypatch.setattr(D, "MD5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = run(capsys, "download", "dsprites", *flags)
    assert code == 0 and target.read_bytes() == payload
    assert (D.URL.rsplit("/", 1)[-1] in err) == bar, err  # the bar is named after the file it fetches


def test_make_to_an_explicit_path(capsys, root, tmp_path):
    path = tmp_path / "elsewhere" / "tiny.npz"
    assert run(capsys, "make", "dsprites", "--path", str(path), *KEEP)[0] == 0
    assert D.DSpritesFile(path).num_images == N
    assert not (root / "dsprites" / D.FILENAME).exists()


def test_make_never_overwrites_a_real_file(capsys, target):
    _make_real_like(target)
    before = target.read_bytes()
    for extra in ([], ["--force"]):
        message = user_error(capsys, "make", "dsprites", *extra, *KEEP)
        assert "real dSprites" in message and "refusing" in message
    assert target.read_bytes() == before


def test_verify(capsys, target, monkeypatch):
    message = user_error(capsys, "verify", "dsprites")  # exit code 2, one line
    assert str(target) in message and "dlb_data make dsprites" in message and "dlb_data download dsprites" in message
    run(capsys, "make", "dsprites", *KEEP)
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 0 and "OK, synthetic" in out
    _make_real_like(target)
    message = user_error(capsys, "verify", "dsprites")
    assert "md5" in message and "DeepMind" in message and str(target) in message
    monkeypatch.setattr(D, "MD5", hashlib.md5(target.read_bytes()).hexdigest())
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 0 and "OK, real" in out and f"md5 {D.MD5} matches the published file" in out
    target.write_bytes(target.read_bytes()[:1000])
    assert str(target) in user_error(capsys, "verify", "dsprites")
    # damaged inside (a zip member's CRC): the line had said what was wrong but not what to do
    run(capsys, "make", "dsprites", "--force", *KEEP)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 100] = bytes(255 - b for b in data[middle:middle + 100])
    target.write_bytes(bytes(data))
    message = user_error(capsys, "verify", "dsprites")
    assert str(target) in message and "fails its CRC check" in message and message.endswith(
        "; run `dlb_data make dsprites --force --keep scale=5 --keep orientation=0,13 --keep posX=0:32:8 "
        "--keep posY=31` to make it again")  # the reduced grid it held: without its --keep, the full 3 GB one


def _overwrite_image_bytes(path):
    """Damage a dSprites file inside its images, leaving the zip directory and npy headers that
    the quick check (and file_status) reads intact."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("imgs.npy")
    with open(path, "rb") as raw:
        start = D._local_data_offset(raw, info) + 200  # past imgs.npy's npy header
    data = bytearray(path.read_bytes())
    data[start:start + 100] = bytes(255 - b for b in data[start:start + 100])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compress", [[], ["--compress"]])
def test_make_on_a_damaged_synthetic_file_says_so_and_gives_the_command_that_remakes_it(capsys, tmp_path, compress):
    # "a synthetic dSprites file already exists" had sent the user off with a file that fails every use
    path = tmp_path / "my data" / "tiny.npz"
    assert run(capsys, "make", "dsprites", "--path", str(path), *KEEP, *compress)[0] == 0
    _overwrite_image_bytes(path)
    assert D.file_status(path) == "synthetic"  # its headers read well
    damaged = path.read_bytes()
    message = user_error(capsys, "make", "dsprites", "--path", str(path), *KEEP, *compress)
    command = (f"dlb_data make dsprites --force --path '{path}' --keep scale=5 --keep orientation=0,13 "
               f"--keep posX=0:32:8 --keep posY=31{' --compress' if compress else ''}")
    assert f"the synthetic dSprites file at {path} is damaged (" in message and "already exists" not in message
    assert message.endswith(f"; run `{command}` to make it again"), message
    assert path.read_bytes() == damaged and sorted(p.name for p in path.parent.iterdir()) == ["tiny.npz"]
    assert run(capsys, "make", *shlex.split(command)[2:])[0] == 0
    assert run(capsys, "verify", "dsprites", "--path", str(path))[0] == 0


KEEP_FLAGS = "--keep scale=5 --keep orientation=0,13 --keep posX=0:32:8 --keep posY=31"


@pytest.mark.parametrize("compress", [[], ["--compress"]])
def test_a_truncated_reduced_file_is_made_again_with_its_keep(capsys, tmp_path, compress):
    # "delete it and run `dlb_data make dsprites --path X`" had been said of it: the full 3 GB grid
    path = tmp_path / "my data" / "tiny.npz"
    assert run(capsys, "make", "dsprites", "--path", str(path), *KEEP, *compress)[0] == 0
    path.write_bytes(path.read_bytes()[:3000])  # the zip's directory, at its end, is gone
    command = f"dlb_data make dsprites --force --path '{path}' {KEEP_FLAGS}{' --compress' if compress else ''}"
    for argv in (("verify", "dsprites", "--path", str(path)), ("info", "dsprites", "--path", str(path))):
        message = user_error(capsys, *argv)
        assert f"dSprites file {path} is corrupt" in message and message.endswith(f"; run `{command}` to make it again")
        assert "check that --path names" not in message  # dlbench's own file: its metadata says so
    with pytest.raises(UserError, match=re.escape(f"run `{command}`")):
        D.DSprites(path)  # as every stage that loads it says
    assert run(capsys, "make", *shlex.split(command)[2:])[0] == 0
    assert run(capsys, "verify", "dsprites", "--path", str(path))[0] == 0
    assert D.DSpritesFile(path).num_images == N and D.DSpritesFile(path).compressed == bool(compress)


def _rewrite_as_made_before(path):
    """The file as make wrote it before it recorded 'compressed' and put the metadata first: numpy's
    own writer, stored, the metadata last."""
    with np.load(path, allow_pickle=True) as npz:
        arrays = {name: npz[name] for name in ("imgs", "latents_classes", "latents_values", "metadata")}
    meta = arrays["metadata"][()]
    del meta["dlbench"]["compressed"]
    arrays["metadata"] = np.array(meta, dtype=object)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_files_made_before_the_metadata_came_first_still_work(capsys, target):
    run(capsys, "make", "dsprites", *KEEP)
    _rewrite_as_made_before(target)
    assert run(capsys, "verify", "dsprites")[1].startswith("dsprites: OK, synthetic")
    _overwrite_image_bytes(target)  # its metadata, read from its directory, still tells its --keep
    assert user_error(capsys, "verify", "dsprites").endswith(
        f"; run `dlb_data make dsprites --force {KEEP_FLAGS}` to make it again")
    # truncated, nothing says how it was made: the --keep must be given again, which the line says
    target.write_bytes(target.read_bytes()[:3000])
    message = user_error(capsys, "verify", "dsprites")
    assert "run `dlb_data make dsprites` (synthetic)" in message and message.endswith(
        "a reduced grid needs the --keep it was made with given again, which this file is too damaged to tell: "
        "`dlb_data make dsprites --force --keep FACTOR=INDICES ...`")


@pytest.mark.parametrize("grid", [{"scale": [5]}, {"posX": [0, 8, 16, 24], "posY": [3, 4, 5, 6]},
                                  {"orientation": [0, 13], "posX": [0, 10, 20, 30], "shape": [0, 2]},
                                  {"posY": [1, 2, 4]}, {}])
def test_keep_flags_make_the_same_grid_again(grid):
    kept = D.normalize_class_indices(grid)
    words = shlex.split(D.keep_flags(kept))
    assert words[::2] == ["--keep"] * len(grid)
    np.testing.assert_equal(D.normalize_class_indices(parse_keep(words[1::2])), kept)


def test_info(capsys, target):
    code, out, _ = run(capsys, "info", "dsprites")  # what is known without the file
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert code == 0 and fields["status"] == "missing" and fields["path"] == str(target)
    assert "not found" in fields["problem"] and "dlb_data make dsprites" in fields["get it"]
    assert fields["factors"] == "shape 3, scale 6, orientation 40, posX 32, posY 32 (published)"
    run(capsys, "make", "dsprites", *KEEP)
    code, out, _ = run(capsys, "info", "dsprites")
    assert code == 0
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert fields["path"] == str(target) and fields["source"] == "synthetic" and fields["grid"] == "reduced"
    assert fields["factor_names"] == "['shape', 'scale', 'orientation', 'posX', 'posY']"
    assert fields["factors_num_values"] == "[3, 1, 2, 4, 1]" and fields["num_images"] == str(N)


def test_info_on_a_corrupt_file_shows_what_it_can_and_exits_2(capsys, target):
    # it had exited 0, where verify exits 2: a script asking info took the corrupt file for a good one
    run(capsys, "make", "dsprites", *KEEP)
    target.write_bytes(target.read_bytes()[:20000])
    code, out, err = run(capsys, "info", "dsprites")
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert fields["status"] == "corrupt" and fields["path"] == str(target) and "problem" not in fields
    message = user_error(capsys, "info", "dsprites")
    assert message.startswith(f"dlb_data: error: dsprites: dSprites file {target} is corrupt")
    assert "dlb_data make dsprites" in message


def test_download_without_network_says_what_to_do(capsys, target, monkeypatch):
    def offline(request, timeout=None):
        assert request.full_url == D.URL
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    message = user_error(capsys, "download", "dsprites")
    assert "could not download" in message and str(target.parent) in message
    assert "dlb_data make dsprites" in message
    assert not target.exists()


def test_download_checks_the_md5_and_writes_atomically(capsys, target, tmp_path, monkeypatch):
    payload = _make_real_like(tmp_path / "served.npz").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", _served(payload))
    code, _, err = run(capsys, "download", "dsprites")
    message = err.strip().splitlines()[-1]  # after the progress bar
    assert code == 2 and message.startswith("dlb_data: error: ") and "Traceback" not in err
    assert "md5" in message and "deleted" in message
    assert not target.exists() and not (target.parent.exists() and any(target.parent.iterdir()))
    D.generate_npz(target, class_indices={"posX": [0], "posY": [0]})  # a synthetic file is replaced
    monkeypatch.setattr(D, "MD5", hashlib.md5(payload).hexdigest())
    code, out, _ = run(capsys, "download", "dsprites")
    assert code == 0 and target.read_bytes() == payload
    assert [p for p in target.parent.iterdir() if p.name != target.name] == []
    assert run(capsys, "verify", "dsprites")[1].startswith("dsprites: OK, real")


def test_bad_input_is_one_line_and_exit_2(capsys, root):
    assert user_error(capsys, "info", "x").endswith(f"unknown dataset 'x'; available: {', '.join(available_datasets())}")
    user_error(capsys, "make", "mnist")
    user_error(capsys, "frobnicate")
    user_error(capsys)
    user_error(capsys, "make")
    user_error(capsys, "list", "--bogus")
    assert "unknown dSprites factor 'size'" in user_error(capsys, "make", "dsprites", "--keep", "size=1")
    assert "out of range" in user_error(capsys, "make", "dsprites", "--keep", "posX=40")
    assert "bad --keep" in user_error(capsys, "make", "dsprites", "--keep", "posX")
    assert "bad --keep" in user_error(capsys, "make", "dsprites", "--keep", "posX=a")
    assert not (root / "dsprites" / D.FILENAME).exists()


def refuse_to_render(*args, **kwargs):
    raise AssertionError("rendering started: the full grid (3 GB) would have been written")


@pytest.mark.parametrize("keep, named", [
    (["color=0"], "every value of color (its 1 value), "),  # colour has one value: keeping it reduces nothing
    (["posX=0:32"], "every value of posX (its 32 values), "),
    (["color=0", "posX=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31"],
     "every value of color (its 1 value) and posX (its 32 values), "),
])
def test_a_keep_that_reduces_nothing_is_refused_before_rendering(capsys, root, monkeypatch, keep, named):
    # it had written the full 3 GB grid, though --keep is there for a reduced one
    monkeypatch.setattr(D, "generate_npz", refuse_to_render)
    argv = [arg for item in keep for arg in ("--keep", item)]
    line = user_error(capsys, "make", "dsprites", *argv)
    assert named in line and "keep fewer values of some factor" in line
    assert list(root.iterdir()) == []


def test_a_keep_of_every_value_beside_one_that_reduces_is_fine(capsys, root):
    assert run(capsys, "make", "dsprites", "--keep", "posX=0:32", "--keep", "color=0", "--keep", "scale=0",
               "--keep", "orientation=0", "--keep", "posY=3")[0] == 0
    assert D.DSpritesFile(root / "dsprites" / D.FILENAME).latents_sizes.tolist() == [1, 3, 1, 1, 32, 1]


def test_parse_keep():
    assert parse_keep(["scale=5", "posX=0:32:8", "shape=0,2", "posY=:3"]) == {
        "scale": [5], "posX": [0, 8, 16, 24], "shape": [0, 2], "posY": [0, 1, 2]}
    for bad in (["scale"], ["=1"], ["scale="], ["posX=1:2:3:4"], ["posX=3:"], ["scale=1", "scale=2"]):
        with pytest.raises(UserError):
            parse_keep(bad)
    # indices no factor has: refused at once (a traceback of OverflowError, or minutes and gigabytes
    # spent listing a range before the dataset refused it)
    for bad in ("posX=0:99999999999999999999", "posX=99999999999999999999", "posX=0:50000000",
                "posX=-99999999999999999999:0:-1", "posX=1,2,123456789"):
        with pytest.raises(UserError, match="far beyond any factor's classes"):
            parse_keep([bad])
    # a reversed range had got the dataset's "no class indices kept", which did not say why
    with pytest.raises(UserError, match=r"'scale=5:0': the range keeps no index .*; e\.g\. scale=0:6$"):
        parse_keep(["scale=5:0"])
    assert parse_keep(["scale=5:0:-2"]) == {"scale": [5, 3, 1]}  # a step down reaches it
    # a repeated index had been merged without a word
    with pytest.raises(UserError, match=r"'scale=0,0,1': 0 given more than once; give each index once$"):
        parse_keep(["scale=0,0,1"])


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("list", "make", "verify", "info", "download"):
        assert command in out


# --- every kind of dataset: generated in memory, real-only files, the dSprites variants ---------

MINI_KEPT = [[0, 9], [3], [0], [2], [0, 1], [0, 14]]  # a reduced 3dshapes grid for a test file
MINI_SIZES = [len(k) for k in MINI_KEPT]


class MiniShapes3D(shapes3d.Shapes3D):
    """Shapes3D whose dlb_data methods expect the miniature grid (a test file, not the published one)."""
    file_status = staticmethod(lambda path=None: shapes3d.file_status(path, MINI_SIZES))
    verify_file = staticmethod(lambda path=None: shapes3d.verify_file(path, MINI_SIZES))
    describe = staticmethod(lambda path=None: shapes3d.describe(path, MINI_SIZES))


class FakeRealOnly:
    """A real-only dataset (no make) whose verify report is set by the test."""
    name = "fake_real"
    factor_names = ["a", "b"]
    report = {}

    @classmethod
    def default_path(cls):
        return dlbench.data.data_root() / "fake_real" / "fake.bin"

    @classmethod
    def file_status(cls, path=None):
        return cls.report.get("status", "missing")

    @classmethod
    def verify_file(cls, path=None):
        return {"path": str(path), "status": "missing", "problems": [], **cls.report}

    @staticmethod
    def download(path=None):
        raise AssertionError("not called")


@pytest.fixture
def catalogue(root, monkeypatch):
    """The registry with every kind of dataset (whatever dlbench.data registers today)."""
    monkeypatch.delenv("DISENTANGLEMENT_LIB_DATA", raising=False)
    registry = dict(dlbench.data.DATASETS, shapes3d=MiniShapes3D, mpi3d_toy=mpi3d.Mpi3dToy,
                    color_dsprites=ColorDSprites, noisy_dsprites=NoisyDSprites,
                    scream_dsprites=scream_dsprites.ScreamDSprites, fake_real=FakeRealOnly)
    monkeypatch.setattr(dlbench.data, "DATASETS", registry)
    return root


def list_rows(capsys):
    code, out, err = run(capsys, "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["NAME", "STATUS", "OBSERVATIONS"]
    return {line.split()[0]: line for line in lines[2:]}


def test_list_shows_every_dataset(capsys, catalogue):
    rows = list_rows(capsys)
    assert set(rows) == set(dlbench.data.DATASETS)
    assert rows["pinwheel"].split()[1:3] == ["generated", "400"] and "cluster 4" in rows["pinwheel"]
    assert "(no file: generated in memory)" in rows["pinwheel"]
    assert rows["linear_gaussian"].split()[1] == "generated" and "continuous sources" in rows["linear_gaussian"]
    shapes = rows["shapes3d"]
    assert shapes.split()[1:3] == ["missing", "-"] and str(catalogue / "shapes3d" / "3dshapes.h5") in shapes
    assert "floor_hue 10, wall_hue 10, object_hue 10, scale 8, shape 4, orientation 15 (published)" in shapes
    assert rows["mpi3d_toy"].split()[1] == "missing" and str(catalogue / "mpi3d_toy") in rows["mpi3d_toy"]
    assert rows["scream_dsprites"].split()[1] == "missing"
    assert str(catalogue / "scream" / "scream.jpg") in rows["scream_dsprites"]
    for name in ("dsprites", "color_dsprites", "noisy_dsprites"):
        assert rows[name].split()[1] == "missing" and str(catalogue / "dsprites" / D.FILENAME) in rows[name]
    # files appear: counts and factor sizes from the files themselves
    assert run(capsys, "make", "color_dsprites", *KEEP)[0] == 0
    shapes3d.write_file(catalogue / "shapes3d" / "3dshapes.h5", np.zeros((8, 64, 64, 3), np.uint8),
                        shapes3d.grid_labels(MINI_KEPT))
    rows = list_rows(capsys)
    for name in ("dsprites", "color_dsprites", "noisy_dsprites"):
        assert rows[name].split()[1:3] == ["synthetic", str(N)]
        assert "shape 3, scale 1, orientation 2, posX 4, posY 1" in rows[name]
    assert rows["shapes3d"].split()[1:3] == ["real", "8"]
    assert "floor_hue 2, wall_hue 1, object_hue 1, scale 1, shape 2, orientation 2" in rows["shapes3d"]


def test_list_names_disentanglement_lib_folder(capsys, catalogue, tmp_path, monkeypatch):
    assert "not set" in run(capsys, "list")[1].splitlines()[0]
    monkeypatch.setenv("DISENTANGLEMENT_LIB_DATA", str(tmp_path / "dl"))
    (tmp_path / "dl" / "scream").mkdir(parents=True)
    (tmp_path / "dl" / "scream" / "scream.jpg").write_bytes(b"junk")
    code, out, _ = run(capsys, "list")
    assert str(tmp_path / "dl") in out.splitlines()[0]
    row = [line for line in out.splitlines() if line.startswith("scream_dsprites")][0]
    assert row.split()[1] == "corrupt" and str(tmp_path / "dl" / "scream" / "scream.jpg") in row


def test_verify_real_only_datasets_suggest_download_and_print_their_checksum(capsys, catalogue, monkeypatch):
    for name in ("shapes3d", "mpi3d_toy", "scream_dsprites", "fake_real"):
        message = user_error(capsys, "verify", name)
        assert f"dlb_data download {name}" in message and "make" not in message
    path = catalogue / "shapes3d" / "3dshapes.h5"
    shapes3d.write_file(path, np.zeros((8, 64, 64, 3), np.uint8), shapes3d.grid_labels(MINI_KEPT))
    code, out, _ = run(capsys, "verify", "shapes3d")
    assert code == 0 and out.strip() == f"shapes3d: OK, real (not checked: a reduced-grid test file); {path}"
    monkeypatch.setattr(FakeRealOnly, "report", {"status": "real", "checksum": "sha256 abc matches the published file"})
    out = run(capsys, "verify", "fake_real")[1]
    assert "(sha256 abc matches the published file)" in out and "md5" not in out
    monkeypatch.setattr(FakeRealOnly, "report", {"status": "real"})
    assert "(no published checksum to compare with)" in run(capsys, "verify", "fake_real")[1]
    monkeypatch.setattr(FakeRealOnly, "report", {"status": "corrupt", "problems": ["labels\n are wrong", "x"]})
    message = user_error(capsys, "verify", "fake_real")
    assert message.endswith(f"fake_real: {FakeRealOnly.default_path()}: labels are wrong; x; delete it; run "
                            f"`dlb_data download fake_real`")
    path.write_bytes(path.read_bytes()[:5000])
    assert str(path) in user_error(capsys, "verify", "shapes3d")


def test_verify_and_info_for_generated_datasets(capsys, catalogue):
    for name in ("pinwheel", "linear_gaussian"):
        code, out, _ = run(capsys, "verify", name)
        assert code == 0 and out.strip() == f"{name}: OK, generated in memory on use (no file to check)"
        code, out, _ = run(capsys, "info", name)
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
        assert code == 0 and fields["name"] == name and "generated in memory" in fields["source"]
        assert "no file" in user_error(capsys, "make", name)
        assert "nothing to download" in user_error(capsys, "download", name)


def test_info_for_missing_real_files_and_variants(capsys, catalogue):
    code, out, _ = run(capsys, "info", "mpi3d_toy")
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert code == 0 and fields["status"] == "missing" and fields["get it"] == "run `dlb_data download mpi3d_toy`"
    assert fields["factors"] == ", ".join(f"{n} {k}" for n, k in zip(mpi3d.FACTOR_NAMES, (6, 6, 2, 3, 3, 40, 40))) \
        + " (published)"
    run(capsys, "make", "noisy_dsprites", *KEEP)
    fields = dict(line.split(": ", 1) for line in run(capsys, "info", "noisy_dsprites")[1].strip().splitlines())
    assert fields["name"] == "noisy_dsprites" and fields["observation_shape"] == "[3, 64, 64]"
    assert fields["num_images"] == str(N)
    assert "cannot be generated" in user_error(capsys, "make", "scream_dsprites")
    assert "cannot be generated" in user_error(capsys, "make", "shapes3d")


def _served(payload):
    class Response(io.BytesIO):
        status = 200
        headers = {"Content-Length": str(len(payload))}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    return lambda request, timeout=None: Response(payload)


def test_scream_download_verify_info(capsys, catalogue, monkeypatch):
    from PIL import Image

    picture = np.random.RandomState(0).randint(0, 256, size=(548, 700, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="JPEG")
    target = catalogue / "scream" / "scream.jpg"
    monkeypatch.setattr(urllib.request, "urlopen", _served(b"<html>not an image</html>"))
    code, _, err = run(capsys, "download", "scream_dsprites")
    message = err.strip().splitlines()[-1]  # after the progress bar
    assert code == 2 and message.startswith("dlb_data: error: ") and "Traceback" not in err
    assert "unusable" in message and "deleted" in message and not target.exists()
    monkeypatch.setattr(urllib.request, "urlopen", _served(buffer.getvalue()))
    code, out, _ = run(capsys, "download", "scream_dsprites")
    assert code == 0 and target.read_bytes() == buffer.getvalue()
    code, out, _ = run(capsys, "verify", "scream_dsprites")
    assert code == 0 and "no checksum" in out and str(target) in out
    fields = dict(line.split(": ", 1) for line in run(capsys, "info", "scream_dsprites")[1].strip().splitlines())
    assert fields["image_size_after_shrinking"] == "350 x 274" and "not there yet" in fields["dsprites_path"]


def test_a_damaged_file_elsewhere_is_made_again_where_it_is(capsys, target, tmp_path):
    # the advice had named the default place: following it left the damaged file where it was
    elsewhere = tmp_path / "mine" / "g.npz"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"not a zip file" * 100)
    message = user_error(capsys, "verify", "dsprites", "--path", str(elsewhere))
    assert f"run `dlb_data make dsprites --path {elsewhere}` (synthetic)" in message
    assert f"`dlb_data download dsprites --path {elsewhere}`" in message
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"not a zip file" * 100)  # the default place needs no --path
    assert "run `dlb_data make dsprites` (synthetic)" in user_error(capsys, "verify", "dsprites")
