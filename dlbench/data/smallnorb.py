"""smallNORB (LeCun, Huang & Bottou 2004): the published binary-matrix files and the dataset.

Six files (https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/), published gzip-compressed; the
decompressed files (disentanglement_lib's layout) and the .gz files are both read:
  smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat  (instances 4, 6, 7, 8, 9)
  smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat   (instances 0, 1, 2, 3, 5)
Binary-matrix format (the dataset page), little-endian int32s: a magic number giving the type
(0x1E3D4C55 uint8, 0x1E3D4C54 int32), the number of dimensions, then the dimensions (at least 3
stored; unused ones are 1), then the values:
  dat   uint8 (24300, 2, 96, 96)  the stereo pair, row 0 at the top
  cat   int32 (24300,)            category 0..4
  info  int32 (24300, 4)          instance 0..9, elevation 0..8, azimuth 0, 2, ..., 34, lighting 0..5

As disentanglement_lib (data/ground_truth/norb.py): training and test files concatenated
(training first), the first camera of each pair, resized to 64x64 with PIL's Lanczos filter
(its ANTIALIAS), factors category 5, elevation 9, azimuth 18 (the info value / 2), lighting 6.
The instance is not a factor: each factor combination has 10 images (one per instance), so this
is not a full grid; an observation for a combination is the image of an instance drawn with the
caller's random_state by random_state.randint(10, size=n) after the factors, as
disentanglement_lib's SplitDiscreteStateSpace does, so the same random_state picks the same images.
Pixels: disentanglement_lib read the images as int8, which PIL resizes in its 32-bit integer mode
(no clipping between the two passes); so does dlbench, then clips Lanczos overshoot to 0..255 for
uint8 storage (disentanglement_lib's floats could leave [0, 1] there), so the pixels are
disentanglement_lib's exactly wherever those lie in [0, 1].

Files: $DLBENCH_DATA/smallnorb/, or else $DISENTANGLEMENT_LIB_DATA/small_norb/. Held once as
uint8 (48600, 1, 64, 64); the dat files are read a block of images at a time.
"""

import gzip
from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.ground_truth import GroundTruthData
from dlbench.errors import UserError

NAME = "smallnorb"
DISENTANGLEMENT_LIB_FOLDER = "small_norb"
URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
CHUNKS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
KINDS = ("dat", "cat", "info")
# md5 of the published .gz files, as recorded by nmichlo/disent (SmallNorbData)
MD5 = {
    (CHUNKS[0], "dat"): "66054832f9accfe74a0f4c36a75bc0a2",
    (CHUNKS[0], "cat"): "23c8b86101fbf0904a000b43d3ed2fd9",
    (CHUNKS[0], "info"): "51dee1210a742582ff607dfd94e332e3",
    (CHUNKS[1], "dat"): "e4ad715691ed5a3a5f138751a4ceb071",
    (CHUNKS[1], "cat"): "5aa791cd7e6016cf957ce9bdb93b8603",
    (CHUNKS[1], "info"): "a9454f3864d7fd4bb3ea7fc3eb84924e",
}
UINT8_MAGIC = 0x1E3D4C55
INT32_MAGIC = 0x1E3D4C54
MAGIC_NAMES = {UINT8_MAGIC: "uint8", INT32_MAGIC: "int32", 0x1E3D4C51: "float32", 0x1E3D4C53: "float64",
               0x1E3D4C56: "int16"}
IMAGES_PER_FILE = 24_300
SOURCE_SIZE = 96
SIZE = 64
FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
FACTOR_SIZES = (5, 9, 18, 6)
NUM_INSTANCES = 10
READ_IMAGES = 2048  # images per read while loading (38 MB of buffer)


def filename(chunk, kind):
    return f"smallnorb-{chunk}-{kind}.mat"


def find_file(folder, chunk, kind):
    """The file in folder: the decompressed one when present, else the published .gz."""
    return files.raw_or_gz(Path(folder) / filename(chunk, kind))


def _has_files(folder):
    return any(find_file(folder, c, k).exists() for c in CHUNKS for k in KINDS)


def _fix(folder):
    return (f"run `dlb_data download {NAME}` (fetches the six .mat.gz files from {URL}), or place them "
            f"(or their decompressed .mat) in {folder} (or in $DISENTANGLEMENT_LIB_DATA/{DISENTANGLEMENT_LIB_FOLDER}/)")


def resize_images(images):
    """uint8 (n, 96, 96) -> uint8 (n, 64, 64) with PIL's Lanczos filter (disentanglement_lib's
    ANTIALIAS) in PIL's 32-bit integer mode, as disentanglement_lib (it read the pixels as int8,
    which PIL takes as 32-bit), then clipped to 0..255: its pixels exactly, where they lie in range.
    (PIL's 8-bit mode would clip between the two passes and differ by several grey levels at edges.)"""
    from PIL import Image

    out = np.empty((len(images), SIZE, SIZE), dtype=np.uint8)
    for i, image in enumerate(images):
        resized = Image.fromarray(image.astype(np.int32)).resize((SIZE, SIZE), Image.LANCZOS)
        np.clip(np.asarray(resized), 0, 255, out=out[i], casting="unsafe")
    return out


class MatrixFile(files.RowsFile):
    """One binary-matrix file whose header is checked (magic, dimensions). Raises UserError if unusable.

    magic: the expected type; dims: the expected dimensions, None for 'any count' in the first."""

    def __init__(self, path, magic, dims):
        self.path = Path(path)
        if not self.path.exists():
            raise files.file_problem(self.path, "smallNORB file not found", _fix(self.path.parent))
        try:
            with files.open_raw_or_gz(self.path) as f:
                head = f.read(8)
                if len(head) == 8:
                    ndim = int.from_bytes(head[4:8], "little", signed=True)
                    stored = max(3, ndim) if 0 <= ndim <= 16 else 0
                    head += f.read(4 * stored)
        except files.GZIP_ERRORS as err:
            raise self.cannot_read(err) from None
        if len(head) < 8:
            raise self.problem(f"ends after {len(head)} bytes, inside the header")
        got = int.from_bytes(head[:4], "little")
        if got != magic:
            kind = MAGIC_NAMES.get(got, "not a binary-matrix magic number")
            raise self.problem(f"magic number 0x{got:08X} ({kind}) is not 0x{magic:08X} ({MAGIC_NAMES[magic]})")
        if not 1 <= ndim <= 16:
            raise self.problem(f"header gives {ndim} dimensions")
        if len(head) != 8 + 4 * stored:
            raise self.problem(f"ends after {len(head)} bytes, inside the header")
        shape = tuple(int.from_bytes(head[8 + 4 * i:12 + 4 * i], "little", signed=True) for i in range(ndim))
        expected = tuple(shape[0] if d is None else d for d in dims)
        if shape != expected:
            raise self.problem(f"dimensions {shape} are not the expected {expected}")
        self.shape = shape
        self.header_bytes = len(head)
        self.dtype = np.dtype("u1") if magic == UINT8_MAGIC else np.dtype("<i4")

    def problem(self, what):
        return files.file_problem(self.path, f"smallNORB file is unusable: {what}",
                                  f"delete it and {_fix(self.path.parent)}")


def _check_grid(factor_sizes, num_instances):
    """The grid the files must hold: (category, instance, elevation, azimuth, lighting) sizes, the
    published ones or (test files only) a reduced grid."""
    sizes = files.reduced_sizes("smallnorb factor_sizes", factor_sizes, FACTOR_SIZES)
    instances = NUM_INSTANCES if num_instances is None else int(num_instances)
    if not 1 <= instances <= NUM_INSTANCES:
        raise UserError(f"smallnorb num_instances {instances} must be within 1..{NUM_INSTANCES}")
    return (sizes[0], instances) + sizes[1:]


class SmallNorbFiles:
    """The six files of a folder, headers checked. factor_sizes / num_instances: for miniature test
    files only (a reduced grid); by default each dat file must hold 24,300 image pairs."""

    def __init__(self, folder, factor_sizes=None, num_instances=None):
        self.folder = Path(folder)
        self.grid = _check_grid(factor_sizes, num_instances)
        full = self.grid == _check_grid(None, None)
        count = IMAGES_PER_FILE if full else None
        self.chunks = []
        for chunk in CHUNKS:
            dat = MatrixFile(find_file(self.folder, chunk, "dat"), UINT8_MAGIC, (count, 2, SOURCE_SIZE, SOURCE_SIZE))
            n = dat.shape[0]
            cat = MatrixFile(find_file(self.folder, chunk, "cat"), INT32_MAGIC, (n,))
            info = MatrixFile(find_file(self.folder, chunk, "info"), INT32_MAGIC, (n, 4))
            self.chunks.append((dat, cat, info))
        self.num_images = sum(dat.shape[0] for dat, _, _ in self.chunks)
        if self.num_images != int(np.prod(self.grid)):
            raise self.chunks[0][0].problem(
                f"the training and test files hold {self.num_images} images together, expected "
                f"{int(np.prod(self.grid))} (one per category, instance, elevation, azimuth, lighting)")

    def load_labels(self):
        """(N, 5) int64 labels (category, instance, elevation, azimuth index, lighting), training
        then test; raises unless they cover the grid once each."""
        parts = []
        names = ("category", "instance", "elevation", "azimuth", "lighting")
        for dat, cat, info in self.chunks:
            labels = np.column_stack([cat.read_all(), info.read_all()]).astype(np.int64)
            odd = np.flatnonzero(labels[:, 3] % 2)
            if odd.size:
                raise info.problem(f"row {odd[0]} has azimuth {labels[odd[0], 3]}, not one of 0, 2, ..., 34")
            labels[:, 3] //= 2  # published azimuths are 0, 2, ..., 34
            for j, (name, size) in enumerate(zip(names, self.grid)):
                bad = np.flatnonzero((labels[:, j] < 0) | (labels[:, j] >= size))
                if bad.size:
                    value = labels[bad[0], j] * (2 if j == 3 else 1)
                    raise (cat if j == 0 else info).problem(f"row {bad[0]} has {name} {value}, outside "
                                                            f"0..{(size - 1) * (2 if j == 3 else 1)}")
            parts.append(labels)
        labels = np.concatenate(parts)
        counts = np.bincount(self.cells(labels), minlength=int(np.prod(self.grid)))
        if np.any(counts != 1):
            cell = int(np.flatnonzero(counts > 1)[0] if np.any(counts > 1) else np.flatnonzero(counts == 0)[0])
            combo = dict(zip(names, np.unravel_index(cell, self.grid)))
            combo["azimuth"] *= 2
            raise self.chunks[0][2].problem(
                f"the labels of training and test files do not hold each (category, instance, elevation, "
                f"azimuth, lighting) once: {', '.join(f'{k} {int(v)}' for k, v in combo.items())} appears "
                f"{counts[cell]} times")
        return labels

    def cells(self, labels):
        """Mixed-radix number of each (category, instance, elevation, azimuth index, lighting) row."""
        return np.ravel_multi_index(tuple(np.asarray(labels).T), self.grid)

    def iter_image_blocks(self):
        """Yields (start, uint8 (n, 96, 96)): the first camera's images, training then test."""
        offset = 0
        for dat, _, _ in self.chunks:
            for start, block in dat.iter_blocks(READ_IMAGES):
                yield offset + start, block[:, 0]
            offset += dat.shape[0]

    def load_images(self):
        """All first-camera images resized to 64x64, uint8 (N, 1, 64, 64), block by block."""
        out = np.empty((self.num_images, 1, SIZE, SIZE), dtype=np.uint8)
        for start, block in self.iter_image_blocks():
            out[start:start + len(block), 0] = resize_images(block)
        return out


def write_files(folder, chunks, compress=False):
    """Write smallNORB files into folder: chunks is [(images (n, 2, 96, 96) uint8, categories (n,),
    info (n, 4)), ...] for training then testing. For miniature test files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for chunk, (images, categories, info) in zip(CHUNKS, chunks):
        for kind, magic, array in (("dat", UINT8_MAGIC, np.asarray(images, dtype="u1")),
                                   ("cat", INT32_MAGIC, np.asarray(categories, dtype="<i4")),
                                   ("info", INT32_MAGIC, np.asarray(info, dtype="<i4"))):
            dims = list(array.shape) + [1] * (3 - array.ndim)
            data = b"".join(int(v).to_bytes(4, "little") for v in [magic, array.ndim] + dims) + array.tobytes()
            name = filename(chunk, kind) + (".gz" if compress else "")
            (folder / name).write_bytes(gzip.compress(data) if compress else data)
    return folder


# ---------------------------------------------------------------------------------------------
# What dlb_data uses (path: the folder holding the six files)


def default_path():
    """$DLBENCH_DATA/smallnorb/ when it has smallNORB files, else $DISENTANGLEMENT_LIB_DATA/small_norb/
    when that has them, else the dlbench folder (where a download puts them)."""
    return files.locate_folder(NAME, DISENTANGLEMENT_LIB_FOLDER, _has_files)


def file_status(path=None, factor_sizes=None, num_instances=None):
    """'real', 'missing' (no file there) or 'corrupt' (headers checked; verify_file checks all)."""
    folder = Path(path) if path is not None else default_path()
    return files.status_of(_has_files(folder), lambda: SmallNorbFiles(folder, factor_sizes, num_instances))


def verify_file(path=None, factor_sizes=None, num_instances=None):
    """Full check: headers, the published md5 of each .gz file, the labels cover the grid once each,
    every byte of every file. Returns {'path', 'status', 'problems', 'checksum'}."""
    folder = Path(path) if path is not None else default_path()

    def check(report):
        handle = SmallNorbFiles(folder, factor_sizes, num_instances)
        full = handle.grid == _check_grid(None, None)
        checked = []
        for (chunk, kind), md5 in MD5.items():
            path = find_file(folder, chunk, kind)
            if path.suffix == ".gz" and full:
                problem = files.checksum_problem(path, {"md5": md5})
                if problem:
                    raise files.file_problem(path, f"smallNORB file is not the published one: {problem}",
                                             f"delete it and {_fix(folder)}")
                checked.append(path.name)
        report["checksum"] = (f"md5 of {len(checked)} .gz files match the published ones" if checked else
                              "not checked: published md5s are for the .gz files" if full
                              else "not checked: a reduced-grid test file")
        handle.load_labels()
        for _ in handle.iter_image_blocks():
            pass

    return files.verification(folder, _has_files(folder), check)


def describe(path=None, factor_sizes=None, num_instances=None):
    """What the files hold (headers checked, images not read)."""
    folder = Path(path) if path is not None else default_path()
    handle = SmallNorbFiles(folder, factor_sizes, num_instances)
    grid = handle.grid
    return files.description(
        NAME, folder, f"not a full grid: {grid[1]} instances (not a factor) per factor combination",
        handle.num_images, (1, SIZE, SIZE), dict(zip(FACTOR_NAMES, (grid[0],) + grid[2:])),
        sum(find_file(folder, c, k).stat().st_size for c in CHUNKS for k in KINDS), URL,
        {filename(c, k) + ".gz": md5 for (c, k), md5 in MD5.items()})


def download(path=None, url=URL, timeout=60, progress=True):
    """Fetch the six .mat.gz files (resumable, md5-checked) into path (default $DLBENCH_DATA/smallnorb/)."""
    folder = Path(path) if path is not None else files.dataset_folder(NAME)
    for (chunk, kind), md5 in MD5.items():
        name = filename(chunk, kind) + ".gz"
        by_hand = f"download {name} from {URL} with a browser and place it in {folder}"
        files.fetch(url + name, folder / name, md5, by_hand, timeout, progress)
    return folder


class SmallNorb(files.ReadFromFiles, GroundTruthData):
    """smallNORB as ground-truth data: 48,600 greyscale images held as uint8 (N, 1, 64, 64), factors
    category, elevation, azimuth, lighting; 10 instances per factor combination (not a full grid).

    path: the folder with the six files (default: see default_path). factor_sizes, num_instances:
    for miniature test files only, the reduced grid they hold.
    """

    name = NAME
    path_is_folder = True  # dlb_data's --path names the folder of the six files
    factor_names = list(FACTOR_NAMES)
    factors_num_values = list(FACTOR_SIZES)  # the published grid; an instance has its files'
    observation_shape = (1, SIZE, SIZE)
    pixel_scale = 1.0 / 255.0
    full_grid = False

    def __init__(self, path=None, factor_sizes=None, num_instances=None):
        self.path = Path(path) if path is not None else default_path()
        self.files = SmallNorbFiles(self.path, factor_sizes, num_instances)
        grid = self.files.grid
        self.factors_num_values = [grid[0]] + list(grid[2:])
        self.num_instances = grid[1]
        self.labels = self.files.load_labels()
        self._row_of_cell = np.empty(len(self.labels), dtype=np.int64)
        self._row_of_cell[self.files.cells(self.labels)] = np.arange(len(self.labels))

    def _read_images(self):
        """All observations, uint8 (N, 1, 64, 64), read and resized."""
        return self.files.load_images()

    def __len__(self):
        return len(self.labels)

    def rows_for_factors(self, factors, random_state):
        """Rows of images with the given (category, elevation, azimuth, lighting), each of an
        instance drawn by random_state.randint(num_instances, size=n)."""
        factors = np.asarray(factors, dtype=np.int64).reshape(-1, len(FACTOR_NAMES))
        if np.any(factors < 0) or np.any(factors >= np.array(self.factors_num_values)):
            raise UserError(f"smallnorb factors must lie within {self.factors_num_values}")
        instances = random_state.randint(self.num_instances, size=len(factors))
        labels = np.column_stack([factors[:, 0], instances, factors[:, 1:]])
        return self._row_of_cell[self.files.cells(labels)]

    def sample_observations_from_factors(self, factors, random_state):
        rows = self.rows_for_factors(factors, random_state)
        return self.images[rows].astype(np.float32) * np.float32(self.pixel_scale)

    default_path = staticmethod(default_path)
    file_status = staticmethod(file_status)
    verify_file = staticmethod(verify_file)
    describe = staticmethod(describe)
    download = staticmethod(download)
