"""Cars3D (Reed, Zhang, Zhang & Lee, NeurIPS 2015, "Deep Visual Analogy-Making"): the published
.mat files and the dataset.

The archive nips2015-analogy-data.tar.gz (http://www.scottreed.info/) holds data/cars/: 183 files
car_*_mesh.mat (MATLAB v5, read with scipy.io.loadmat) and a list.txt. Each .mat holds
  im    uint8 (128, 128, 3, 24, 4)  RGB renders: row, column, channel, azimuth (24), elevation (4)
  mask  (128, 128, 24, 4)           not used
(the axis order is disentanglement_lib's: its loader moves the last two axes to the front as
(azimuth, elevation) and numbers the 96 views so elevation runs fastest).

As disentanglement_lib (data/ground_truth/cars3d.py): factors elevation 4, azimuth 24, object
183, a full grid with the last factor fastest (image index = (elevation * 24 + azimuth) * 183 +
object); every view resized from 128x128 to 64x64 with PIL's Lanczos filter on the RGB image
(its thumbnail(..., ANTIALIAS) does the same resize), so the pixels are disentanglement_lib's.
Objects are numbered in the sorted order of the file names (disentanglement_lib took the
directory listing's order, which the file system decides).

Files: $DLBENCH_DATA/cars3d/cars/, or else $DISENTANGLEMENT_LIB_DATA/cars/ (disentanglement_lib's
layout). Held once as uint8 (17568, 3, 64, 64); one .mat (4.7 MB of pixels) is read at a time.
"""

import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from dlbench.data import files
from dlbench.data.ground_truth import GroundTruthData
from dlbench.errors import UserError, shell_word

NAME = "cars3d"
FOLDER = "cars"
URL = "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"
ARCHIVE = "nips2015-analogy-data.tar.gz"
ARCHIVE_FOLDER = "data/cars/"
# md5 of the archive as recorded by nmichlo/disent (Cars3dData); none is published for the .mat files
ARCHIVE_MD5 = "4e866a7919c1beedf53964e6f7a23686"
FACTOR_NAMES = ("elevation", "azimuth", "object")
FACTOR_SIZES = (4, 24, 183)
KEY = "im"
MAT_SHAPE = (128, 128, 3, 24, 4)  # row, column, RGB, azimuth, elevation
SIZE = 64


def _fix(folder):
    return (f"run `dlb_data download {NAME}` (fetches {URL} and extracts its {ARCHIVE_FOLDER}), or place "
            f"the car_*_mesh.mat files in {folder} (or in $DISENTANGLEMENT_LIB_DATA/{FOLDER}/)")


def _check_sizes(factor_sizes):
    """The grid the folder must hold: the published one, or (test files only) fewer objects."""
    return files.reduced_sizes("cars3d factor_sizes", factor_sizes, FACTOR_SIZES, smallest=FACTOR_SIZES[:2] + (1,))


def resize_views(views):
    """uint8 (n, 128, 128, 3) -> uint8 (n, 3, 64, 64) with PIL's Lanczos filter on the RGB images."""
    from PIL import Image

    out = np.empty((len(views), 3, SIZE, SIZE), dtype=np.uint8)
    for i, view in enumerate(views):
        out[i] = np.asarray(Image.fromarray(view).resize((SIZE, SIZE), Image.LANCZOS)).transpose(2, 0, 1)
    return out


class Cars3dFiles:
    """The folder of .mat files, counted (one per object). Raises UserError if unusable.

    factor_sizes: None (the default) demands the published 183 objects; miniature test folders
    pass [4, 24, objects]. Opening lists the folder only; each file is checked when read.
    """

    def __init__(self, folder, factor_sizes=None):
        self.folder = Path(folder)
        self.factor_sizes = _check_sizes(factor_sizes)
        if not self.folder.is_dir():
            raise files.file_problem(self.folder, "Cars3D folder not found", _fix(self.folder))
        self.paths = sorted(p for p in self.folder.glob("*.mat") if p.is_file())
        if len(self.paths) != self.factor_sizes[2]:
            raise files.file_problem(self.folder, f"Cars3D folder holds {len(self.paths)} .mat files, expected "
                                     f"{self.factor_sizes[2]} (one per car)", f"delete it and {_fix(self.folder)}")
        self.num_images = int(np.prod(self.factor_sizes))

    def problem(self, path, what):
        return files.file_problem(path, f"Cars3D file is unusable: {what}", f"delete it and {_fix(self.folder)}")

    def read_views(self, path):
        """The 'im' array of one .mat, checked: uint8 (128, 128, 3, 24, 4)."""
        import scipy.io

        try:
            im = scipy.io.loadmat(path, variable_names=[KEY]).get(KEY)
        except (OSError, ValueError, TypeError, IndexError, KeyError, EOFError, NotImplementedError, zlib.error,
                scipy.io.matlab.MatReadError) as err:  # not MATLAB v5 (v7.3 is HDF5), truncated, damaged
            raise self.problem(path, f"not a readable MATLAB file ({type(err).__name__}: "
                                     f"{files.one_line(err)})") from None
        if im is None:
            raise self.problem(path, f"has no '{KEY}' variable")
        if im.dtype != np.uint8 or im.shape != MAT_SHAPE:
            raise self.problem(path, f"'{KEY}' is {im.dtype} {im.shape}, expected uint8 {MAT_SHAPE}")
        return im

    def load_images(self):
        """All views resized, uint8 (N, 3, 64, 64), index (elevation * 24 + azimuth) * objects + object."""
        elevations, azimuths, objects = self.factor_sizes
        out = np.empty((self.num_images, 3, SIZE, SIZE), dtype=np.uint8)
        rows = np.arange(elevations * azimuths).reshape(elevations, azimuths) * objects
        for k, path in enumerate(self.paths):
            im = self.read_views(path)
            # views in (elevation, azimuth) order, each (128, 128, 3)
            views = im.transpose(4, 3, 0, 1, 2).reshape(-1, *MAT_SHAPE[:3])
            out[rows.ravel() + k] = resize_views(views)
        return out


def write_mat(path, views, mask=None):
    """Write one car's views (uint8 (128, 128, 3, 24, 4)) as a MATLAB v5 .mat with 'im' and 'mask'.
    For miniature test folders."""
    import scipy.io

    views = np.asarray(views, dtype=np.uint8)
    mask = np.zeros(MAT_SHAPE[:2] + MAT_SHAPE[3:], dtype=np.uint8) if mask is None else mask
    scipy.io.savemat(path, {KEY: views, "mask": mask}, format="5")
    return path


# ---------------------------------------------------------------------------------------------
# What dlb_data uses (path: the folder of .mat files)


def default_path():
    return files.locate(NAME, FOLDER, FOLDER)


def file_status(path=None, factor_sizes=None):
    """'real', 'missing' or 'corrupt' (the file count; verify_file reads every file)."""
    folder = Path(path) if path is not None else default_path()
    return files.status_of(folder.exists(), lambda: Cars3dFiles(folder, factor_sizes))


def verify_file(path=None, factor_sizes=None):
    """Full check: the file count and every file's 'im' (key, dtype, shape). No checksum is published
    for the .mat files (download checks the archive's). Returns {'path', 'status', 'problems',
    'checksum'}."""
    folder = Path(path) if path is not None else default_path()

    def check(report):
        handle = Cars3dFiles(folder, factor_sizes)
        for mat in handle.paths:
            handle.read_views(mat)

    return files.verification(folder, folder.exists(), check,
                              checksum="not checked: an md5 is known only for the archive (download checks it)")


def describe(path=None, factor_sizes=None):
    """What the folder holds (files counted, not read)."""
    folder = Path(path) if path is not None else default_path()
    handle = Cars3dFiles(folder, factor_sizes)
    grid = "full" if handle.factor_sizes == FACTOR_SIZES else "reduced"
    return files.description(NAME, folder, grid, handle.num_images, (3, SIZE, SIZE),
                             dict(zip(FACTOR_NAMES, handle.factor_sizes)),
                             sum(p.stat().st_size for p in handle.paths), URL, {ARCHIVE: ARCHIVE_MD5})


def extract_cars(archive, folder):
    """Extract the archive's data/cars/ files into folder, atomically: into a temporary folder
    beside it, renamed onto folder only when complete. A damaged archive is a UserError; a disk
    fault (read-only, full) stays the OSError it is, for the command to report. Returns folder."""
    folder = Path(folder)
    with files.made_folder(folder.parent):
        temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix="." + folder.name + "."))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(ARCHIVE_FOLDER)
                           and "/" not in m.name[len(ARCHIVE_FOLDER):]]
                for member in members:
                    member.name = member.name[len(ARCHIVE_FOLDER):]
                    tar.extract(member, temporary, filter="data")
            if not any(temporary.glob("*.mat")):
                raise UserError(f"{archive}: holds no {ARCHIVE_FOLDER}*.mat files; delete it and {_fix(folder)}")
            os.replace(temporary, folder)
        except (tarfile.TarError, gzip.BadGzipFile, EOFError, zlib.error) as err:
            raise UserError(f"{archive}: cannot extract {ARCHIVE_FOLDER} ({type(err).__name__}: "
                            f"{files.one_line(err)}); nothing written to {folder}; delete it and "
                            f"{_fix(folder)}") from None
        finally:
            if temporary.exists():
                shutil.rmtree(temporary)
    return folder


def download(path=None, url=URL, timeout=60, progress=True):
    """Fetch the archive (resumable, md5-checked) beside path (default $DLBENCH_DATA/cars3d/cars/),
    extract its cars/ folder there atomically, then delete the archive."""
    folder = Path(path) if path is not None else files.dataset_folder(NAME) / FOLDER
    if path is None and file_status(default_path()) == "real":
        return default_path()
    if file_status(folder) == "real":
        return folder
    if folder.exists():
        raise UserError(f"{folder}: exists but is not a complete Cars3D folder ({file_status(folder)}); "
                        f"delete it and rerun `dlb_data download {NAME}`")
    archive = folder.parent / ARCHIVE
    where = f" --path {shell_word(folder)}" if path is not None else ""
    # make --from checks the archive's md5 and extracts it whole, where extracting by hand does neither
    by_hand = (f"download {URL} with a browser and run `dlb_data make {NAME} --from ARCHIVE{where}`, or extract its "
               f"{ARCHIVE_FOLDER} into {folder}")
    files.download_file(url, archive, {"md5": ARCHIVE_MD5}, by_hand=by_hand, timeout=timeout, progress=progress)
    extract_cars(archive, folder)
    archive.unlink()
    return folder


def convert(archive, path=None):
    """`dlb_data make cars3d --from ARCHIVE`: a hand-downloaded nips2015-analogy-data.tar.gz,
    md5-checked, extracted into path (default $DLBENCH_DATA/cars3d/cars/) atomically; the archive
    is left where it is. Returns the folder."""
    archive = Path(archive)
    folder = Path(path) if path is not None else files.dataset_folder(NAME) / FOLDER
    if not archive.is_file():
        raise UserError(f"{archive}: no such archive; give the path of the downloaded {ARCHIVE}")
    problem = files.checksum_problem(archive, {"md5": ARCHIVE_MD5})
    if problem:
        raise UserError(f"{archive}: not the published {ARCHIVE} ({problem}); download it again from {URL}")
    if folder.exists():
        raise UserError(f"{folder}: already exists ({file_status(folder)}); delete it to extract the archive there")
    return extract_cars(archive, folder)


class Cars3D(files.ReadFromFiles, GroundTruthData):
    """Cars3D as ground-truth data: factors elevation 4, azimuth 24, object 183 (a full grid),
    17,568 RGB images held as uint8 (N, 3, 64, 64).

    path: the folder of .mat files (default: see default_path). factor_sizes: for miniature test
    folders only, [4, 24, objects].
    """

    name = NAME
    path_is_folder = True  # dlb_data's --path names the folder of .mat files
    factor_names = list(FACTOR_NAMES)
    factors_num_values = list(FACTOR_SIZES)  # the published grid; an instance has its folder's
    observation_shape = (3, SIZE, SIZE)
    pixel_scale = 1.0 / 255.0

    def __init__(self, path=None, factor_sizes=None):
        self.files = Cars3dFiles(Path(path) if path is not None else default_path(), factor_sizes)
        self.path = self.files.folder
        self.factors_num_values = list(self.files.factor_sizes)

    def _read_images(self):
        """All observations, uint8 (N, 3, 64, 64), read and resized."""
        return self.files.load_images()

    default_path = staticmethod(default_path)
    file_status = staticmethod(file_status)
    verify_file = staticmethod(verify_file)
    describe = staticmethod(describe)
    download = staticmethod(download)
    convert = staticmethod(convert)
