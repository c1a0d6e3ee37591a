"""MPI3D (Gondal et al., NeurIPS 2019, CC-BY-4.0): mpi3d_toy, mpi3d_realistic and mpi3d_real.

Each variant is one npz (numpy's np.savez, members stored uncompressed) holding one array:
  images  uint8 (1036800, 64, 64, 3)  RGB, as the member images.npy
Factors, in grid order with the last fastest (the rr-learning/disentanglement_dataset README:
an image's index is the mixed-radix number of its factor indices):
  object_color 6, object_shape 6, object_size 2, camera_height 3, background_color 3,
  horizontal_axis 40, vertical_axis 40.
disentanglement_lib's `dlib_download_data` fetched the 2019 pre-release of mpi3d_toy instead
(460,800 images, 4 colours x 4 shapes, same order); a file of that size is read with those
sizes and reported as the pre-release (no published checksum is known for it).

Files: $DLBENCH_DATA/<variant>/<variant>.npz, or else
$DISENTANGLEMENT_LIB_DATA/<variant>/<variant>.npz (disentanglement_lib's layout).
Loading streams the npy member through zipfile (its CRC is checked at the end) into one
preallocated channel-first (N, 3, 64, 64) uint8 array, a few thousand images at a time, so peak
memory stays close to the array's 12.7 GB.
"""

import zipfile
from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.ground_truth import GroundTruthData
from dlbench.errors import UserError
from dlbench.rundir import atomic_path

FACTOR_NAMES = ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                "horizontal_axis", "vertical_axis")
FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)
PRE_RELEASE_SIZES = (4, 4, 2, 3, 3, 40, 40)
IMAGE_SHAPE = (64, 64, 3)
MEMBER = "images.npy"
READ_IMAGES = 4096  # images per read while loading (50 MB of buffer)

_BASE_URL = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/"
# md5 of the published files as recorded by nmichlo/disent (Mpi3dData); the toy one also by a
# second, independent loader.
VARIANTS = {
    "mpi3d_toy": {"url": _BASE_URL + "mpi3d_toy.npz", "md5": "55889cb7c7dfc655d6e0277beee88868"},
    "mpi3d_realistic": {"url": _BASE_URL + "mpi3d_realistic.npz", "md5": "59a6225b88b635365f70c91b3e52f70f"},
    "mpi3d_real": {"url": _BASE_URL + "mpi3d_real.npz", "md5": "0f33f609918fb5c97996692f91129802"},
}


def filename(variant):
    return variant + ".npz"


def _fix(variant, path):
    return files.missing_file_fix(variant, VARIANTS[variant]["url"], filename(variant), Path(path).parent)


def _releases(factor_sizes):
    """{number of images: factor sizes} a file may hold: the final release and the pre-release,
    or (test files only) just the reduced grid given."""
    if factor_sizes is None:
        return {int(np.prod(s)): s for s in (FACTOR_SIZES, PRE_RELEASE_SIZES)}
    sizes = files.reduced_sizes("MPI3D factor_sizes", factor_sizes, FACTOR_SIZES)
    return {int(np.prod(sizes)): sizes}


def _read_npy_header(member):
    """(shape, fortran_order, dtype) of an open npy stream, which is left at the data."""
    version = np.lib.format.read_magic(member)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(member)


class Mpi3dFile:
    """An MPI3D npz whose structure is checked (member, dtype, shape). Raises UserError if unusable.

    factor_sizes: None (the default) accepts the published final release (1,036,800 images) and
    the pre-release (460,800); miniature test files pass their reduced grid. Opening reads only
    the zip directory and the npy header.
    """

    def __init__(self, variant, path, factor_sizes=None):
        if variant not in VARIANTS:
            raise UserError(f"unknown MPI3D variant {variant!r}; variants are {', '.join(VARIANTS)}")
        self.variant = variant
        self.path = Path(path)
        releases = _releases(factor_sizes)
        if not self.path.exists():
            raise files.file_problem(self.path, f"{variant} file not found", _fix(variant, self.path))
        try:
            with zipfile.ZipFile(self.path) as zf:
                names = zf.namelist()
                if MEMBER not in names:
                    raise self.problem(f"has no 'images' array (members: {', '.join(names) or 'none'})")
                with zf.open(MEMBER) as member:
                    shape, fortran, dtype = _read_npy_header(member)
                    self.header_bytes = member.tell()
        except UserError:
            raise
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as err:  # truncated or damaged
            raise self.problem(f"not a complete npz ({type(err).__name__}: {files.one_line(err)})") from None
        count = shape[0] if len(shape) == 4 else None
        if dtype != np.uint8 or fortran or tuple(shape[1:]) != IMAGE_SHAPE or count not in releases:
            expected = " or ".join(f"({n}, 64, 64, 3)" for n in releases)
            raise self.problem(f"'images' is {dtype} {tuple(shape)}{' in Fortran order' if fortran else ''}, "
                               f"expected uint8 {expected}")
        self.num_images = count
        self.factor_sizes = releases[count]
        self.pre_release = factor_sizes is None and self.factor_sizes == PRE_RELEASE_SIZES

    def problem(self, what):
        return files.file_problem(self.path, f"{self.variant} file is unusable: {what}",
                                  f"delete it and {_fix(self.variant, self.path)}")

    def iter_images(self):
        """Yields (start, block): the images in file order, block uint8 (n, 64, 64, 3).

        Read as a stream through zipfile, which checks the member's CRC when its end is read."""
        per_image = int(np.prod(IMAGE_SHAPE))
        try:
            with zipfile.ZipFile(self.path) as zf, zf.open(MEMBER) as member:
                member.read(self.header_bytes)
                for start in range(0, self.num_images, READ_IMAGES):
                    n = min(READ_IMAGES, self.num_images - start)
                    data = member.read(n * per_image)
                    if len(data) != n * per_image:
                        raise ValueError(f"images end after {start + len(data) // per_image} of "
                                         f"{self.num_images} images")
                    yield start, np.frombuffer(data, dtype=np.uint8).reshape((n,) + IMAGE_SHAPE)
        except (OSError, zipfile.BadZipFile, ValueError, EOFError) as err:
            raise self.problem(f"cannot read images ({type(err).__name__}: {files.one_line(err)})") from None

    def load_images(self):
        """All images as one uint8 array (N, 3, 64, 64), filled block by block (no full-size copy)."""
        return files.channel_first(self.iter_images(), self.num_images, IMAGE_SHAPE)


def write_file(path, images):
    """Write images (n, 64, 64, 3) uint8 as an MPI3D npz (np.savez's layout: one stored member
    images.npy), atomically. For miniature test files and the memory benchmark."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(MEMBER, "w", force_zip64=True) as member:
            np.lib.format.write_array(member, np.ascontiguousarray(images, dtype=np.uint8), allow_pickle=False)
    return Path(path)


# ---------------------------------------------------------------------------------------------
# What dlb_data uses (each variant's class binds its name)


def default_path(variant):
    return files.locate(variant, filename(variant), f"{variant}/{filename(variant)}")


def file_status(variant, path=None, factor_sizes=None):
    """'real', 'missing' or 'corrupt' (a quick check of the structure; verify_file checks all)."""
    path = Path(path) if path is not None else default_path(variant)
    return files.status_of(path.exists(), lambda: Mpi3dFile(variant, path, factor_sizes))


def verify_file(variant, path=None, factor_sizes=None):
    """Full check: structure, the published md5 (final release), and a full read of the images
    with the zip CRC. Returns {'path', 'status' ('real' | 'missing' | 'corrupt'), 'problems',
    'checksum'}."""
    path = Path(path) if path is not None else default_path(variant)

    def check(report):
        handle = Mpi3dFile(variant, path, factor_sizes)
        md5 = VARIANTS[variant]["md5"]
        if handle.pre_release:
            report["checksum"] = "not checked: the 2019 pre-release (460,800 images) has no published checksum"
        else:
            full = handle.factor_sizes == FACTOR_SIZES
            report["checksum"] = files.published_md5_line(path, md5, full, handle.problem)
        for _ in handle.iter_images():
            pass

    return files.verification(path, path.exists(), check)


def describe(variant, path=None, factor_sizes=None):
    """What the file holds (structure checked, images not read)."""
    path = Path(path) if path is not None else default_path(variant)
    handle = Mpi3dFile(variant, path, factor_sizes)
    grid = "full" if handle.factor_sizes in (FACTOR_SIZES, PRE_RELEASE_SIZES) else "reduced"
    return files.description(variant, path, grid, handle.num_images, (3, 64, 64),
                             dict(zip(FACTOR_NAMES, handle.factor_sizes)), path.stat().st_size,
                             VARIANTS[variant]["url"], VARIANTS[variant]["md5"],
                             release="2019 pre-release" if handle.pre_release else "final")


def download(variant, path=None, timeout=60, progress=True):
    """Fetch a variant's npz (resumable, md5-checked) to path (default $DLBENCH_DATA/<variant>/)."""
    url, md5 = VARIANTS[variant]["url"], VARIANTS[variant]["md5"]
    return files.download_one_file(variant, filename(variant), url, md5, path, default_path(variant), timeout,
                                   progress)


class Mpi3d(files.ReadFromFiles, GroundTruthData):
    """One MPI3D variant as ground-truth data: 7 factors, RGB images held as uint8 (N, 3, 64, 64).

    Use the subclasses Mpi3dToy, Mpi3dRealistic, Mpi3dReal (registered as mpi3d_toy, ...).
    path: the file (default: see default_path). factor_sizes: for miniature test files only,
    the reduced grid the file holds.
    """

    name = ""
    factor_names = list(FACTOR_NAMES)
    factors_num_values = list(FACTOR_SIZES)  # the final release; an instance has its file's
    observation_shape = (3, 64, 64)
    pixel_scale = 1.0 / 255.0

    def __init__(self, path=None, factor_sizes=None):
        if self.name not in VARIANTS:
            raise TypeError("use Mpi3dToy, Mpi3dRealistic or Mpi3dReal")
        path = Path(path) if path is not None else default_path(self.name)
        self.file = Mpi3dFile(self.name, path, factor_sizes)
        self.path = self.file.path
        self.factors_num_values = list(self.file.factor_sizes)

    def _read_images(self):
        """All observations, uint8 (N, 3, 64, 64), read from the file."""
        return self.file.load_images()

    # dlb_data's protocol, bound to the class's variant
    @classmethod
    def default_path(cls):
        return default_path(cls.name)

    @classmethod
    def file_status(cls, path=None, factor_sizes=None):
        return file_status(cls.name, path, factor_sizes)

    @classmethod
    def verify_file(cls, path=None, factor_sizes=None):
        return verify_file(cls.name, path, factor_sizes)

    @classmethod
    def describe(cls, path=None, factor_sizes=None):
        return describe(cls.name, path, factor_sizes)

    @classmethod
    def download(cls, path=None, timeout=60, progress=True):
        return download(cls.name, path, timeout=timeout, progress=progress)


class Mpi3dToy(Mpi3d):
    """MPI3D simplistic rendered images."""
    name = "mpi3d_toy"


class Mpi3dRealistic(Mpi3d):
    """MPI3D realistic rendered images."""
    name = "mpi3d_realistic"


class Mpi3dReal(Mpi3d):
    """MPI3D real-world camera images."""
    name = "mpi3d_real"
