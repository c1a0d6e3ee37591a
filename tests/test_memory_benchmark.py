"""dlb_bench memory: full-size files in the published formats, written to scratch, measured in a
fresh process, deleted. fashion_mnist is small enough to measure at full size here."""

import numpy as np
import pytest

from dlbench.cli import bench as bench_cli
from dlbench.data import memory_benchmark as M


def test_synthetic_blocks_have_the_shape_and_vary(tmp_path):
    blocks = list(M.synthetic_images(M.BLOCK + 5, (28, 28)))
    assert [b.shape for b in blocks] == [(M.BLOCK, 28, 28), (5, 28, 28)]
    assert all(b.dtype == np.uint8 for b in blocks)
    first = blocks[0]
    assert len(np.unique(first[0])) > 1 and not np.array_equal(first[0], first[1])


def test_full_size_fashion_mnist_loads_within_the_bound(root, tmp_path):
    figures = M.measure("fashion_mnist", scratch=tmp_path)
    assert figures["source"] == "synthetic pixels, published format"
    assert figures["image_bytes"] == (60_000 + 10_000) * 32 * 32  # the published counts at 32x32, uint8
    assert 0.9 < figures["ratio"] < 1.5
    assert list(tmp_path.iterdir()) == []  # the full-size files are gone


def test_a_real_file_is_measured_in_place(root, tmp_path, monkeypatch):
    from dlbench.data import fashion_mnist

    M._write_fashion_mnist(root / "fashion_mnist")
    assert fashion_mnist.file_status() == "real"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(M, "WRITERS", {})  # nothing may be written
    assert M.measure("fashion_mnist", scratch=scratch)["source"] == "real"


@pytest.mark.parametrize("argv, message", [
    (["memory", "--datasets", "nope"], "unknown dataset nope"),
    (["memory", "--datasets", "fashion_mnist", "--scratch", "/no/such/folder"], "is not an existing folder"),
    (["memory", "--datasets", "fashion_mnist", "--scratch", __file__], "is a file; give an existing folder"),
    (["memory", "--datasets", "fashion_mnist", "--scratch", ""], "an empty path"),
])
def test_bad_arguments_are_one_line(argv, message, capsys):
    assert bench_cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
