"""3dshapes (Burgess & Kim, DeepMind 2018, Apache-2.0): the published HDF5 file and the dataset.

File `3dshapes.h5` (https://github.com/deepmind/3d-shapes), 267,573,662 bytes:
  images  uint8   (480000, 64, 64, 3)  RGB, row 0 at the top
  labels  float64 (480000, 6)          the factor values of each image
Factors, in the file's order, with their values (the dataset's README and loading notebook):
  floor_hue 10 (0, 0.1, ..., 0.9), wall_hue 10, object_hue 10 (same values),
  scale 8 (linspace(0.75, 1.25, 8)), shape 4 (0, 1, 2, 3), orientation 15 (linspace(-30, 30, 15)).
Every combination appears once, in grid order with the last factor (orientation) fastest: the
README's get_index gives an image's row as the mixed-radix number of its factor indices, which
is GroundTruthData.index_of. verify_file checks this on the labels.

dlbench reads the file from $DLBENCH_DATA/shapes3d/3dshapes.h5, or else from
$DISENTANGLEMENT_LIB_DATA/3dshapes/3dshapes.h5. (disentanglement_lib's own loader reads an
internal npz, 3dshapes/look-at-object-room_...npz, that was never published; it is not read here.)
The images are held once, channel-first: loading fills a preallocated (N, 3, 64, 64) uint8 array
a few thousand images at a time, so peak memory stays close to the array's 5.9 GB.
"""

from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.ground_truth import GroundTruthData
from dlbench.rundir import atomic_path

NAME = "shapes3d"
FILENAME = "3dshapes.h5"
DISENTANGLEMENT_LIB_RELATIVE = "3dshapes/3dshapes.h5"
URL = "https://storage.googleapis.com/3d-shapes/3dshapes.h5"
# md5 and size of the published file as recorded by two independent projects
# (nmichlo/disent's Shapes3dData and a Shapes3D loader that pins md5, sha256 and size).
MD5 = "099a2078d58cec4daad0702c55d06868"
FILE_BYTES = 267_573_662

FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES = (10, 10, 10, 8, 4, 15)
FACTOR_VALUES = (np.arange(10) / 10, np.arange(10) / 10, np.arange(10) / 10,
                 np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30.0, 30.0, 15))
# labels are matched to the nearest published value; float noise is far below this, the spacing
# of the values (>= 0.07) far above
LABEL_TOLERANCE = 1e-3
IMAGE_SHAPE = (64, 64, 3)
READ_IMAGES = 4096  # images per read while loading (50 MB of buffer)


def _fix(path):
    return files.missing_file_fix(NAME, URL, FILENAME, Path(path).parent)


def _check_sizes(factor_sizes):
    """The grid a file must hold: the published one, or (test files only) a reduced one."""
    return files.reduced_sizes("3dshapes factor_sizes", factor_sizes, FACTOR_SIZES)


class Shapes3DFile:
    """A 3dshapes.h5 whose structure is checked (keys, dtypes, shapes). Raises UserError if unusable.

    factor_sizes: the grid the file must hold; None (the default) means the published one, so a
    real file must be exactly (480000, 64, 64, 3). Miniature test files pass a reduced grid.
    Opening reads only the HDF5 metadata.
    """

    def __init__(self, path, factor_sizes=None):
        import h5py

        self.path = Path(path)
        self.factor_sizes = _check_sizes(factor_sizes)
        self.num_images = int(np.prod(self.factor_sizes))
        if not self.path.exists():
            raise files.file_problem(self.path, "3dshapes file not found", _fix(self.path))
        try:
            with h5py.File(self.path, "r") as f:
                found = {key: (f[key].dtype, f[key].shape) for key in ("images", "labels") if key in f}
                self.chunk_rows = f["images"].chunks[0] if "images" in f and f["images"].chunks else None
        except OSError as err:  # not HDF5, truncated (HDF5 checks the stored end of file), damaged
            raise self.problem(f"not a readable HDF5 file ({files.one_line(err)})") from None
        expected = {"images": ("uint8", (self.num_images,) + IMAGE_SHAPE), "labels": ("float64", (self.num_images, 6))}
        for key, (dtype, shape) in expected.items():
            if key not in found:
                raise self.problem(f"has no '{key}' dataset (expected 'images' and 'labels')")
            got_dtype, got_shape = found[key]
            # any byte order: the label values are what matter
            if got_dtype.kind != np.dtype(dtype).kind or got_dtype.itemsize != np.dtype(dtype).itemsize \
                    or tuple(got_shape) != shape:
                raise self.problem(f"'{key}' is {got_dtype} {tuple(got_shape)}, expected {dtype} {shape}")

    def problem(self, what):
        return files.file_problem(self.path, f"3dshapes file is unusable: {what}",
                                  f"delete it and {_fix(self.path)}")

    def _batches(self):
        """(start, stop) rows read at a time: whole HDF5 chunks, so each is decompressed once."""
        step = READ_IMAGES
        if self.chunk_rows:
            step = self.chunk_rows * max(1, READ_IMAGES // self.chunk_rows)
        return [(start, min(start + step, self.num_images)) for start in range(0, self.num_images, step)]

    def iter_images(self):
        """Yields (start, block): the images in file order, block uint8 (n, 64, 64, 3) (reused)."""
        import h5py

        batches = self._batches()
        buffer = np.empty((batches[0][1] - batches[0][0],) + IMAGE_SHAPE, dtype=np.uint8)
        try:
            with h5py.File(self.path, "r") as f:
                dataset = f["images"]
                for start, stop in batches:
                    block = buffer[:stop - start]
                    dataset.read_direct(block, np.s_[start:stop])
                    yield start, block
        except OSError as err:  # a damaged chunk
            raise self.problem(f"cannot read images ({files.one_line(err)})") from None

    def load_images(self):
        """All images as one uint8 array (N, 3, 64, 64), filled block by block (no full-size copy)."""
        return files.channel_first(self.iter_images(), self.num_images, IMAGE_SHAPE)

    def load_labels(self):
        import h5py

        try:
            with h5py.File(self.path, "r") as f:
                return f["labels"][()].astype(np.float64)
        except OSError as err:
            raise self.problem(f"cannot read labels ({files.one_line(err)})") from None


def labels_to_classes(labels):
    """Factor class indices (n, 6) of label rows, or raise ValueError naming a label that is not
    a published factor value."""
    labels = np.asarray(labels, dtype=np.float64)
    classes = np.empty(labels.shape, dtype=np.int64)
    for i, (name, values) in enumerate(zip(FACTOR_NAMES, FACTOR_VALUES)):
        distance = np.abs(labels[:, i, None] - values[None, :])
        classes[:, i] = np.argmin(distance, axis=1)
        worst = int(np.argmax(distance[np.arange(len(labels)), classes[:, i]]))
        if len(labels) and distance[worst, classes[worst, i]] > LABEL_TOLERANCE:
            raise ValueError(f"row {worst} has {name} = {float(labels[worst, i])!r}, not one of the published values")
    return classes


def grid_classes(kept):
    """Class indices (n, 6) of every cell of the grid kept[0] x ... x kept[5], last factor fastest."""
    mesh = np.meshgrid(*[np.asarray(k, dtype=np.int64) for k in kept], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def grid_labels(kept):
    """The labels (n, 6) float64 of the grid of class indices kept (one index list per factor)."""
    classes = grid_classes(kept)
    return np.stack([FACTOR_VALUES[i][classes[:, i]] for i in range(6)], axis=1)


def grid_problem(labels, factor_sizes):
    """None when labels are a complete grid of factor_sizes in file order, else what is wrong."""
    try:
        classes = labels_to_classes(labels)
    except ValueError as err:
        return f"labels: {err}"
    kept = [np.unique(classes[:, i]) for i in range(6)]
    for name, k, n in zip(FACTOR_NAMES, kept, factor_sizes):
        if len(k) != n:
            return f"labels hold {len(k)} values of {name}, expected {n}"
    expected = grid_classes(kept)
    if not np.array_equal(classes, expected):
        row = int(np.flatnonzero(np.any(classes != expected, axis=1))[0])
        return (f"labels are not the complete factor grid in order (orientation fastest): row {row} has "
                f"classes {classes[row].tolist()}, expected {expected[row].tolist()}")
    return None


def write_file(path, images, labels, chunk_rows=1000):
    """Write images (n, 64, 64, 3) uint8 and labels (n, 6) float64 as a 3dshapes.h5 (the
    published datasets, gzip-compressed chunks), atomically. For miniature test files and the
    memory benchmark."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        rows = max(1, min(chunk_rows, len(images)))
        f.create_dataset("images", data=np.asarray(images, dtype=np.uint8), chunks=(rows,) + IMAGE_SHAPE,
                         compression="gzip")
        f.create_dataset("labels", data=np.asarray(labels, dtype="<f8"))
    return Path(path)


# ---------------------------------------------------------------------------------------------
# What dlb_data uses


def default_path():
    return files.locate(NAME, FILENAME, DISENTANGLEMENT_LIB_RELATIVE)


def file_status(path=None, factor_sizes=None):
    """'real', 'missing' or 'corrupt' (a quick check of the structure; verify_file checks all)."""
    path = Path(path) if path is not None else default_path()
    return files.status_of(path.exists(), lambda: Shapes3DFile(path, factor_sizes))


def verify_file(path=None, factor_sizes=None):
    """Full check: structure, the published md5 (full-size file), the labels form the complete
    grid in order, and every image chunk decompresses. Returns {'path', 'status' ('real' |
    'missing' | 'corrupt'), 'problems' (one-line strings), 'checksum'}."""
    path = Path(path) if path is not None else default_path()

    def check(report):
        handle = Shapes3DFile(path, factor_sizes)
        report["checksum"] = files.published_md5_line(path, MD5, handle.factor_sizes == FACTOR_SIZES, handle.problem)
        problem = grid_problem(handle.load_labels(), handle.factor_sizes)
        if problem:
            raise handle.problem(problem)
        for _ in handle.iter_images():
            pass

    return files.verification(path, path.exists(), check)


def describe(path=None, factor_sizes=None):
    """What the file holds (structure checked, images not read)."""
    path = Path(path) if path is not None else default_path()
    handle = Shapes3DFile(path, factor_sizes)
    grid = "full" if handle.factor_sizes == FACTOR_SIZES else "reduced"
    return files.description(NAME, path, grid, handle.num_images, Shapes3D.observation_shape,
                             dict(zip(FACTOR_NAMES, handle.factor_sizes)), path.stat().st_size, URL, MD5)


def download(path=None, url=URL, timeout=60, progress=True):
    """Fetch 3dshapes.h5 (resumable, md5-checked) to path (default $DLBENCH_DATA/shapes3d/)."""
    return files.download_one_file(NAME, FILENAME, url, MD5, path, default_path(), timeout, progress)


class Shapes3D(files.ReadFromFiles, GroundTruthData):
    """3dshapes as ground-truth data: 6 factors, 480,000 RGB images held as uint8 (N, 3, 64, 64).

    path: the file (default: see default_path). factor_sizes: for miniature test files only,
    the reduced grid the file holds; by default the file must be the published full grid.
    """

    name = NAME
    factor_names = list(FACTOR_NAMES)
    factors_num_values = list(FACTOR_SIZES)  # the published grid; an instance has its file's
    observation_shape = (3, 64, 64)
    pixel_scale = 1.0 / 255.0

    def __init__(self, path=None, factor_sizes=None):
        self.file = Shapes3DFile(Path(path) if path is not None else default_path(), factor_sizes)
        self.path = self.file.path
        self.factors_num_values = list(self.file.factor_sizes)

    def _read_images(self):
        """All observations, uint8 (N, 3, 64, 64), read from the file."""
        return self.file.load_images()

    default_path = staticmethod(default_path)
    file_status = staticmethod(file_status)
    verify_file = staticmethod(verify_file)
    describe = staticmethod(describe)
    download = staticmethod(download)
