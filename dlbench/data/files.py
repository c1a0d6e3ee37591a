"""Shared helpers for the real dataset files: where they are, checksums, downloads, error lines.

Every real-file loader (shapes3d, mpi3d, and later cars3d, smallnorb, fashion_mnist, the dSprites
variants) finds its file with `locate`, reports a problem with `file_problem`, checks a download
with `file_checksum`, and fetches with `download_file`. Writers make their folder with
`made_folder`, take `exclusive_lock` against a concurrent writer, and `check_can_write` before a
long job. `peak_memory_loading` measures the peak resident memory of loading a dataset, for the
README's memory figures.
"""

import contextlib
import fcntl
import gzip
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from dlbench.errors import UserError, broken_link, broken_link_advice, file_above

DISENTANGLEMENT_LIB_ENV = "DISENTANGLEMENT_LIB_DATA"


# ---------------------------------------------------------------------------------------------
# Where the files are


def dataset_folder(name):
    """dlbench's folder for a dataset: $DLBENCH_DATA/<name>/."""
    from dlbench.data import data_root
    return data_root() / name


def disentanglement_lib_path(relative):
    """The file at `relative` under $DISENTANGLEMENT_LIB_DATA, or None when that is not set."""
    root = os.environ.get(DISENTANGLEMENT_LIB_ENV)
    return Path(root).expanduser() / relative if root else None


def locate(name, filename, disentanglement_lib_relative=None):
    """Where a dataset's file is: $DLBENCH_DATA/<name>/<filename> when it is there; else the file
    in disentanglement_lib's layout under $DISENTANGLEMENT_LIB_DATA when that exists (existing
    downloads are reused in place); else the dlbench place (where a download puts it)."""
    return _own_or_theirs(dataset_folder(name) / filename, disentanglement_lib_relative, Path.exists)


def locate_folder(name, disentanglement_lib_folder, has_files):
    """Where a dataset's folder of files is: $DLBENCH_DATA/<name>/ when has_files(it); else the
    folder in disentanglement_lib's layout when that has them; else the dlbench folder."""
    return _own_or_theirs(dataset_folder(name), disentanglement_lib_folder, has_files)


def _own_or_theirs(own, disentanglement_lib_relative, present):
    if present(own) or disentanglement_lib_relative is None:
        return own
    theirs = disentanglement_lib_path(disentanglement_lib_relative)
    return theirs if theirs is not None and present(theirs) else own


def refuse_a_file_in_the_way(name, path, is_folder=False):
    """A UserError when a file stands where a folder of a dataset's path goes (one of path's folders, or
    path itself where the dataset is a folder of files), e.g. $DLBENCH_DATA/dsprites as a file: nothing
    can be found or written there, and the dataset had been called missing, with advice to make or
    download it that then failed on the file. A data root that is a file, or under one, is said as such:
    setting DLBENCH_DATA is the fix."""
    from dlbench.data import check_data_root, data_root

    path = Path(path)
    if data_root() in path.parents:
        check_data_root(writing=False)
    link = broken_link(path)
    if link:  # it had been called missing, with advice to make or download what then met the link
        where = "" if link[0] == path else f" ({name} belongs at {path})"
        raise UserError(f"{name}: {broken_link_advice(*link)}{where}")
    blocker = path if is_folder and path.exists() and not path.is_dir() else file_above(path)
    if blocker is None:
        return
    where = "" if blocker == path else f" ({name} belongs at {path})"
    raise UserError(f"{name}: {blocker} is a file where a folder goes{where}; move or remove it")


# ---------------------------------------------------------------------------------------------
# Writing safely: nothing half-made on disk, one writer at a time


def check_can_write(path):
    """Raises the OSError that writing at path would meet (a read-only or full file system, a
    folder one may not write to), found by making and dropping an unnamed file in the nearest
    existing folder of path: before a long render or download rather than after it. Leaves
    nothing on disk."""
    path = Path(path)
    folder = next(p for p in (path, *path.parents) if p.is_dir())
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:  # named by the folder, not by the probe's random name
        raise OSError(err.errno, err.strerror, str(folder)) from None


@contextlib.contextmanager
def made_folder(folder):
    """The block runs with folder made (and its missing parents); when it fails, the folders
    made here are removed again while still empty, so a failed write leaves the disk as it was."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield folder
    except BaseException:
        for p in made:
            try:
                p.rmdir()
            except FileNotFoundError:  # mkdir stopped before making it
                continue
            except OSError:  # not empty: something else was put there meanwhile
                break
        raise


@contextlib.contextmanager
def exclusive_lock(path):
    """Holds an exclusive flock on the file at path (made if needed) for the block: a second
    process waits until the first is done. The file is removed at the end, while still locked,
    so no empty lock file is left behind. A process that was waiting then holds a lock on a file
    no longer at path (and a newcomer may have made a new one there), so after each wait the
    lock counts only if its file is still the one at path; else it tries again."""
    path = Path(path)
    while True:
        lock = open(path, "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _is_file_at(lock, path):
                break
        except BaseException:
            lock.close()
            raise
        lock.close()
    try:
        yield
    finally:
        try:
            path.unlink(missing_ok=True)
        finally:
            lock.close()  # releases the lock


def _is_file_at(opened, path):
    """Whether the open file is the one now linked at path (not removed or replaced since)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(opened.fileno())
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


# ---------------------------------------------------------------------------------------------
# Files published gzip-compressed, read raw or compressed

GZIP_ERRORS = (OSError, EOFError, zlib.error)  # not gzip, truncated, damaged


def raw_or_gz(path):
    """The decompressed file at path when it is there, else the published path + '.gz' when that is."""
    path = Path(path)
    gz = path.with_name(path.name + ".gz")
    return path if path.exists() or not gz.exists() else gz


def open_raw_or_gz(path):
    return gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")


class RowsFile:
    """A file, raw or gzip-compressed, of a header and then `shape[0]` rows of `shape[1:]` values
    (smallNORB's binary matrices, Fashion-MNIST's idx files). Subclasses check the header and set
    path, shape, dtype, header_bytes, and define problem(what) (the UserError for this file);
    row_noun names the rows in messages."""

    row_noun = "rows"

    def cannot_read(self, err):
        return self.problem(f"cannot read it ({type(err).__name__}: {one_line(err)})")

    def iter_blocks(self, rows):
        """Yields (start, array of up to `rows` rows); checks the data is exactly as long as the
        header says (none missing, none left over)."""
        count = self.shape[0]
        per_row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        try:
            with open_raw_or_gz(self.path) as f:
                f.read(self.header_bytes)
                for start in range(0, count, rows):
                    n = min(rows, count - start)
                    data = f.read(n * per_row)
                    if len(data) != n * per_row:
                        raise self.problem(f"data end after {start + len(data) // per_row} of {count} "
                                           f"{self.row_noun} (file truncated)")
                    yield start, np.frombuffer(data, dtype=self.dtype).reshape((n,) + self.shape[1:])
                if f.read(1):
                    raise self.problem(f"has bytes after the {count} {self.row_noun} its header declares")
        except GZIP_ERRORS as err:
            raise self.cannot_read(err) from None

    def read_all(self):
        out = np.empty(self.shape, dtype=self.dtype)
        for start, block in self.iter_blocks(max(1, self.shape[0])):
            out[start:start + len(block)] = block
        return out


# ---------------------------------------------------------------------------------------------
# Messages


def one_line(err):
    """An exception's text on one line, at most 200 characters."""
    return " ".join(str(err).split())[:200]


def file_problem(path, what, fix=None):
    """The UserError for an unusable file: one line naming the file, what is wrong, and the fix."""
    message = f"{path}: {what}"
    return UserError(f"{message}; {fix}" if fix else message)


def missing_file_fix(name, url, filename, folder):
    """How to get a dataset's file: the dlb_data command, or where to put a copy by hand."""
    return (f"run `dlb_data download {name}` (fetches {url}), or place {filename} in {folder} "
            f"(or under ${DISENTANGLEMENT_LIB_ENV} in disentanglement_lib's layout)")


# ---------------------------------------------------------------------------------------------
# dlb_data's status and verification reports


def status_of(present, open_files):
    """dlb_data's quick status of a dataset's files: 'missing' when not present, 'corrupt' when
    open_files() (the loader's structural check) raises a UserError, else 'real'."""
    if not present:
        return "missing"
    try:
        open_files()
    except UserError:
        return "corrupt"
    return "real"


def verification(path, present, check, **fields):
    """dlb_data's full check as a report {'path', 'status', 'problems', **fields}: status 'missing'
    when the files are not present; else check(report) runs, adding what it checked (such as
    'checksum') and raising a UserError at the first problem. Status is then 'corrupt' with the
    problem's line, else what check returned ('real' when it returns nothing)."""
    report = {"path": str(path), "status": "missing", "problems": [], **fields}
    if not present:
        return report
    try:
        report["status"] = check(report) or "real"
    except UserError as err:
        report["status"] = "corrupt"
        report["problems"].append(str(err))
    return report


def description(name, path, grid, num_images, observation_shape, factors, file_bytes, url, md5, **extra):
    """dlb_data's describe() of a dataset read from real files: factors is {name: number of values};
    uint8_bytes is what the images take held as uint8 arrays of observation_shape; extra fields
    (such as mpi3d's release) follow grid."""
    return {"name": name, "path": str(path), "source": "real", "grid": grid, **extra, "num_images": num_images,
            "observation_shape": list(observation_shape), "factor_names": list(factors),
            "factors_num_values": [int(n) for n in factors.values()], "file_bytes": file_bytes,
            "uint8_bytes": num_images * int(np.prod(observation_shape)), "url": url, "md5": md5}


# ---------------------------------------------------------------------------------------------
# Reduced grids (miniature test files)


def reduced_sizes(label, given, published, smallest=None):
    """The sizes a file must hold: `published` when `given` is None, else `given` (miniature test
    files only), one per entry of `published`, each between `smallest` (default 1) and the
    published size. A UserError starting with `label` otherwise."""
    if given is None:
        return tuple(published)
    sizes = tuple(int(n) for n in given)
    smallest = tuple(smallest) if smallest is not None else (1,) * len(published)
    if len(sizes) != len(published) or any(not low <= n <= high for n, low, high in zip(sizes, smallest, published)):
        raise UserError(f"{label} {list(sizes)} must be {len(published)} sizes between {list(smallest)} and "
                        f"{list(published)}")
    return sizes


# ---------------------------------------------------------------------------------------------
# Checksums


def file_checksum(path, algorithm="md5", block=1 << 22):
    """Hex digest of a file, read in blocks (constant memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_problem(path, checksums):
    """None when the file matches every published checksum in `checksums` ({'md5': hex, ...}),
    else a one-line description of the mismatch."""
    for algorithm, expected in checksums.items():
        got = file_checksum(path, algorithm)
        if got != expected:
            return f"{algorithm} {got} is not the published {expected}"
    return None


def published_md5_line(path, md5, full, problem):
    """The 'checksum' entry of a one-file dataset's verification: a full-size file must have the
    published md5 (else the UserError problem(what) is raised); a reduced-grid test file is not
    checked."""
    if not full:
        return "not checked: a reduced-grid test file"
    mismatch = checksum_problem(path, {"md5": md5})
    if mismatch:
        raise problem(mismatch)
    return f"md5 {md5} matches the published file"


# ---------------------------------------------------------------------------------------------
# Downloads


def _part_path(path):
    return path.with_name(path.name + ".part")


def _open_from(url, offset, timeout):
    """The HTTP response for url from byte `offset`, and whether the server honoured the range."""
    request = urllib.request.Request(url, headers={"User-Agent": "dlbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    response = urllib.request.urlopen(request, timeout=timeout)
    return response, offset > 0 and response.status == 206


def download_file(url, path, checksums=None, by_hand="", timeout=60, progress=True, block=1 << 20):
    """Fetch url to path: bytes go to `<path>.part` (a later call resumes it with an HTTP Range
    request), the finished .part is checked against `checksums` ({'md5': hex, ...}) and only
    then renamed onto path. On any failure: one UserError naming the URL and `by_hand` (how to
    place the file by hand), or the OSError of a folder that cannot be made; path itself is never
    half-written. Returns path.
    """
    path = Path(path)
    with made_folder(path.parent):  # a fault making it is an OSError the command reports
        return _download(url, path, checksums, by_hand, timeout, progress, block)


def _download(url, path, checksums, by_hand, timeout, progress, block):
    part = _part_path(path)
    failed = f"could not download {url}"
    offset = part.stat().st_size if part.exists() else 0
    try:
        try:
            response, resumed = _open_from(url, offset, timeout)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not offset:
                raise
            response, resumed = None, True  # 416: nothing past offset, the .part is complete
        if response is not None:
            with response, open(part, "ab" if resumed else "wb") as out:
                total = response.headers.get("Content-Length")
                total = int(total) + (offset if resumed else 0) if total else None
                _copy(response, out, offset if resumed else 0, total, url, progress, block)
    except UserError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as err:  # URLError is an OSError
        kept = f"; the partial file {part} is kept and a rerun resumes it" if part.exists() else ""
        raise UserError(f"{failed} ({one_line(err)}){kept}; {by_hand}") from None
    problem = checksum_problem(part, checksums or {})
    if problem:
        part.unlink()
        raise UserError(f"{failed}: the downloaded file's {problem}; it was deleted, nothing written "
                        f"to {path}; {by_hand}")
    os.replace(part, path)
    return path


def has_checksum(path, md5):
    """Whether the file at path is there and has this md5."""
    return Path(path).exists() and file_checksum(path) == md5


def fetch(url, path, md5, by_hand, timeout=60, progress=True):
    """download_file with an md5 check, skipped when path already holds that file. Returns path."""
    if not has_checksum(path, md5):
        download_file(url, path, {"md5": md5}, by_hand=by_hand, timeout=timeout, progress=progress)
    return path


def download_one_file(name, filename, url, md5, path, found, timeout=60, progress=True):
    """Fetch a one-file dataset to path (default $DLBENCH_DATA/<name>/<filename>). Without a
    path, the file dlbench would read (found) is kept when it already has the published md5."""
    if path is None and has_checksum(found, md5):
        return found
    path = Path(path) if path is not None else dataset_folder(name) / filename
    by_hand = f"download {filename} with a browser or gsutil and save it as {path}"
    return fetch(url, path, md5, by_hand, timeout, progress)


def _copy(response, out, done, total, url, progress, block):
    from tqdm import tqdm

    with tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=Path(url).name,
              disable=not progress, file=sys.stderr) as bar:
        while chunk := response.read(block):
            out.write(chunk)
            bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if total is not None and out.tell() != total:
        raise ValueError(f"connection closed after {out.tell()} of {total} bytes")


# ---------------------------------------------------------------------------------------------
# The dataset classes


def channel_first(blocks, num_images, image_shape):
    """One uint8 (N, C, H, W) array of the (start, block) pairs of channel-last uint8 blocks
    (n, H, W, C) of image_shape (H, W, C), filled block by block (no full-size copy)."""
    height, width, channels = image_shape
    out = np.empty((num_images, channels, height, width), dtype=np.uint8)
    for start, block in blocks:
        out[start:start + len(block)] = block.transpose(0, 3, 1, 2)
    return out


class ReadFromFiles:
    """For dataset classes read from real files (mix in before GroundTruthData): source 'real',
    and `images`, the uint8 (N, C, H, W) observations, read by the class's _read_images() on
    first use and then held."""

    source = "real"
    _images = None

    @property
    def images(self):
        if self._images is None:
            self._images = self._read_images()
        return self._images


# ---------------------------------------------------------------------------------------------
# Memory benchmark


_CHILD = """
import importlib, json, sys, time
def peak_rss():  # VmHWM: this address space's peak; unlike ru_maxrss it does not inherit the parent's
    with open('/proc/self/status') as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith('VmHWM:'))
module, _, qualname = sys.argv[1].partition(":")
cls = getattr(importlib.import_module(module), qualname)
kwargs = json.loads(sys.argv[3])
before = peak_rss()
start = time.time()
images = cls(path=sys.argv[2], **kwargs).images
seconds = time.time() - start
print(before, peak_rss(), images.nbytes, seconds)
"""


def peak_memory_loading(dataset_class, path, **kwargs):
    """Peak resident memory of loading `dataset_class(path=path, **kwargs).images` in a fresh process.

    Returns a dict: image_bytes (the uint8 array), baseline_bytes (peak RSS after the imports,
    before loading), peak_bytes (peak RSS after loading), ratio = (peak - baseline) / image_bytes
    (what loading costs, per byte of data; the issue asks < 1.5) and seconds. kwargs go to the
    dataset class (e.g. factor_sizes for a miniature file). Linux (reads /proc/self/status).
    """
    target = f"{dataset_class.__module__}:{dataset_class.__qualname__}"
    out = subprocess.run([sys.executable, "-c", _CHILD, target, str(path), json.dumps(kwargs)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"loading {target} from {path} failed: {out.stderr.strip()[-500:]}")
    before, peak, nbytes, seconds = out.stdout.split()[-4:]
    before, peak, nbytes = int(before), int(peak), int(nbytes)
    return {"image_bytes": nbytes, "baseline_bytes": before, "peak_bytes": peak,
            "ratio": (peak - before) / nbytes, "seconds": float(seconds)}

