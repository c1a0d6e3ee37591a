"""dlb_data: list, make, verify, info, download, and its one-line errors."""

import hashlib
import io
import urllib.error
import urllib.request

import numpy as np
import pytest

from dlbench.cli.data import main, parse_keep
from dlbench.data import dsprites as D
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


def test_make_writes_a_reduced_synthetic_grid(capsys, target):
    code, out, err = run(capsys, "make", "dsprites", *KEEP)
    assert code == 0 and "SYNTHETIC" in out and str(target) in out
    handle = D.DSpritesFile(target)
    assert handle.synthetic and not handle.compressed
    assert handle.latents_sizes.tolist() == [1, 3, 1, 2, 4, 1]
    np.testing.assert_allclose(handle.possible_values["posX"], np.array([0, 8, 16, 24]) / 31)
    assert "rendering dSprites" in err  # the progress bar
    # a second make refuses without --force, regenerates with it
    assert "--force" in user_error(capsys, "make", "dsprites", *KEEP)
    assert run(capsys, "make", "dsprites", "--force", "--compress", "--keep", "shape=2", *KEEP[2:])[0] == 0
    handle = D.DSpritesFile(target)
    assert handle.compressed and handle.latents_sizes.tolist() == [1, 1, 6, 2, 4, 1]


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
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 1 and "missing" in out and "dlb_data make dsprites" in out
    run(capsys, "make", "dsprites", *KEEP)
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 0 and "OK, synthetic" in out
    _make_real_like(target)
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 1 and "corrupt" in out and "md5" in out
    monkeypatch.setattr(D, "MD5", hashlib.md5(target.read_bytes()).hexdigest())
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 0 and "OK, real" in out and "md5 matches" in out
    target.write_bytes(target.read_bytes()[:1000])
    code, out, _ = run(capsys, "verify", "dsprites")
    assert code == 1 and "corrupt" in out


def test_info(capsys, target):
    assert "not found" in user_error(capsys, "info", "dsprites")
    run(capsys, "make", "dsprites", *KEEP)
    code, out, _ = run(capsys, "info", "dsprites")
    assert code == 0
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert fields["path"] == str(target) and fields["source"] == "synthetic" and fields["grid"] == "reduced"
    assert fields["factor_names"] == "['shape', 'scale', 'orientation', 'posX', 'posY']"
    assert fields["factors_num_values"] == "[3, 1, 2, 4, 1]" and fields["num_images"] == str(N)


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_without_network_says_what_to_do(capsys, target, monkeypatch):
    def offline(url, timeout=None):
        assert url == D.URL
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    message = user_error(capsys, "download", "dsprites")
    assert "could not download" in message and str(target.parent) in message
    assert "dlb_data make dsprites" in message
    assert not target.exists()


def test_download_checks_the_md5_and_writes_atomically(capsys, target, tmp_path, monkeypatch):
    payload = _make_real_like(tmp_path / "served.npz").read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _Response(payload))
    assert "md5" in user_error(capsys, "download", "dsprites")
    assert not target.exists() and not (target.parent.exists() and any(target.parent.iterdir()))
    monkeypatch.setattr(D, "MD5", hashlib.md5(payload).hexdigest())
    code, out, _ = run(capsys, "download", "dsprites")
    assert code == 0 and target.read_bytes() == payload
    assert [p for p in target.parent.iterdir() if p.name != target.name] == []
    assert run(capsys, "verify", "dsprites")[1].startswith("dsprites: OK, real")


def test_bad_input_is_one_line_and_exit_2(capsys, root):
    assert user_error(capsys, "info", "x").endswith("unknown dataset 'x'; available: dsprites")
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


def test_parse_keep():
    assert parse_keep(["scale=5", "posX=0:32:8", "shape=0,2", "posY=:3"]) == {
        "scale": [5], "posX": [0, 8, 16, 24], "shape": [0, 2], "posY": [0, 1, 2]}
    for bad in (["scale"], ["=1"], ["scale="], ["posX=1:2:3:4"], ["posX=3:"], ["scale=1", "scale=2"]):
        with pytest.raises(UserError):
            parse_keep(bad)


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("list", "make", "verify", "info", "download"):
        assert command in out
