"""Peak resident memory of loading each full-size dataset (`dlb_bench memory`).

For each dataset the benchmark loads the real file when it is present and intact; otherwise it
writes a full-size file in the published format (same members, dtypes, shapes and compression)
whose pixels are synthetic, into a scratch folder, and deletes it afterwards. Memory does not
depend on what the pixels show; load times do a little (decompression of real photographs is
slower than of the synthetic patterns), which the printout says by naming the source.

Each load runs in a fresh process (files.peak_memory_loading); the figure is
(peak RSS - RSS before loading) / the uint8 array's size. The issue's bound is 1.5.
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np

from dlbench.data import files

DATASETS = ("dsprites", "shapes3d", "mpi3d", "cars3d", "smallnorb", "fashion_mnist")
BLOCK = 8192  # images generated per block while writing


def synthetic_images(count, shape, seed=0):
    """Blocks of uint8 images (n, *shape) of a coarse random pattern (4 x 4 patches), so pixels
    vary within and across images and compressed formats still compress them."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, BLOCK):
        n = min(BLOCK, count - start)
        coarse = rng.integers(0, 256, size=(n, 4, 4) + tuple(shape[2:]), dtype=np.uint8)
        block = np.repeat(np.repeat(coarse, -(-shape[0] // 4), axis=1), -(-shape[1] // 4), axis=2)
        block = block[:, :shape[0], :shape[1]]
        yield block.reshape((n,) + tuple(shape))


def _all_images(count, shape):
    """All count images in one array: the format writers take whole arrays. It lives in the
    benchmark's own process and is freed once written, before the measured process starts."""
    out = np.empty((count,) + tuple(shape), dtype=np.uint8)
    start = 0
    for block in synthetic_images(count, shape):
        out[start:start + len(block)] = block
        start += len(block)
    return out


def _write_dsprites(folder):
    from dlbench.data import dsprites

    # the published file is np.savez_compressed's: deflated members, decompressed on load
    path = dsprites.generate_npz(folder / dsprites.FILENAME, compress=True)
    return dsprites.DSprites, path, {"generate": False}


def _write_shapes3d(folder):
    from dlbench.data import shapes3d

    n = int(np.prod(shapes3d.FACTOR_SIZES))
    labels = shapes3d.grid_labels([np.arange(k) for k in shapes3d.FACTOR_SIZES])
    path = shapes3d.write_file(folder / shapes3d.FILENAME, _all_images(n, shapes3d.IMAGE_SHAPE), labels)
    return shapes3d.Shapes3D, path, {}


def _write_mpi3d(folder):
    from dlbench.data import mpi3d

    n = int(np.prod(mpi3d.FACTOR_SIZES))
    path = mpi3d.write_file(folder / mpi3d.filename("mpi3d_toy"), _all_images(n, mpi3d.IMAGE_SHAPE))
    return mpi3d.Mpi3dToy, path, {}


def _write_cars3d(folder):
    from dlbench.data import cars3d

    cars = folder / cars3d.FOLDER
    cars.mkdir(parents=True)
    views_per_car = int(np.prod(cars3d.MAT_SHAPE[3:]))
    for car in range(cars3d.FACTOR_SIZES[2]):
        views = next(synthetic_images(views_per_car, cars3d.MAT_SHAPE[:3], seed=car))
        # (elevation, azimuth, 128, 128, 3) -> the file's (128, 128, 3, azimuth, elevation)
        im = views.reshape(cars3d.MAT_SHAPE[4], cars3d.MAT_SHAPE[3], *cars3d.MAT_SHAPE[:3]).transpose(2, 3, 4, 1, 0)
        cars3d.write_mat(cars / f"car_{car:03d}_mesh.mat", im)
    return cars3d.Cars3D, cars, {}


def _write_smallnorb(folder):
    from dlbench.data import smallnorb

    chunks = []
    for instances in ((4, 6, 7, 8, 9), (0, 1, 2, 3, 5)):
        grid = np.stack(np.meshgrid(np.arange(5), instances, np.arange(9), np.arange(0, 36, 2), np.arange(6),
                                    indexing="ij"), axis=-1).reshape(-1, 5)
        images = _all_images(len(grid), (2, 96, 96))
        chunks.append((images, grid[:, 0], grid[:, 1:]))
    smallnorb.write_files(folder, chunks)
    return smallnorb.SmallNorb, folder, {}


def _write_fashion_mnist(folder):
    from dlbench.data import fashion_mnist

    train, test = fashion_mnist.NUM_IMAGES
    rng = np.random.default_rng(0)
    fashion_mnist.write_files(folder, _all_images(train, (28, 28)), rng.integers(0, 10, train),
                              _all_images(test, (28, 28)), rng.integers(0, 10, test))
    return fashion_mnist.FashionMnist, folder, {}


WRITERS = {"dsprites": _write_dsprites, "shapes3d": _write_shapes3d, "mpi3d": _write_mpi3d,
           "cars3d": _write_cars3d, "smallnorb": _write_smallnorb, "fashion_mnist": _write_fashion_mnist}
REAL_NAME = {"mpi3d": "mpi3d_toy"}
GENERATED_SOURCE = {"dsprites": "dlbench's renders, published format (deflated)"}  # the three MPI3D variants share one loader and size


def _real_file(name):
    """(class, path, kwargs) of the real file in the data folders when it is there and intact."""
    import dlbench.data

    cls = dlbench.data.get_dataset_class(REAL_NAME.get(name, name))
    path = cls.default_path()
    if path is None or cls.file_status(path) != "real":
        return None
    return cls, path, ({"generate": False} if name == "dsprites" else {})


def measure(name, scratch=None, use_real=True):
    """The memory figures (files.peak_memory_loading's dict) of loading one full-size dataset, with
    'dataset' and 'source' ('real' or 'synthetic pixels, published format') added."""
    found = _real_file(name) if use_real else None
    if found is not None:
        return {"dataset": name, "source": "real", **files.peak_memory_loading(*found[:2], **found[2])}
    folder = Path(tempfile.mkdtemp(prefix=f"dlbench-memory-{name}-", dir=scratch))
    try:
        cls, path, kwargs = WRITERS[name](folder)
        figures = files.peak_memory_loading(cls, path, **kwargs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"dataset": name, "source": GENERATED_SOURCE.get(name, "synthetic pixels, published format"), **figures}


def format_row(figures):
    return (f"{figures['dataset']:14s} {figures['image_bytes'] / 2**30:7.2f} GiB uint8  peak +"
            f"{(figures['peak_bytes'] - figures['baseline_bytes']) / 2**30:6.2f} GiB  "
            f"ratio {figures['ratio']:.3f}  {figures['seconds']:6.1f} s  ({figures['source']})")
