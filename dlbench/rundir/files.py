"""Atomic writes and JSON files: the bottom layer every other may use. Nothing here knows of runs.

A write goes to a temporary file beside its target, is synced, then renamed onto it, so a crash
never leaves a half-written file (and a reader sees the old contents or the new, nothing between).
"""

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask():
    mask = os.umask(0)  # the only way to read it is to set it, so this runs once, at import,
    os.umask(mask)      # not per write while other threads may be creating files
    return mask


FILE_MODE = 0o666 & ~_umask()


@contextmanager
def atomic_path(path):
    """A temporary path beside `path` for writers that need a file name (h5py, zipfile). When the
    block ends without error the file is synced and renamed onto path; on any error it is
    deleted, so path is never half-written. A filesystem fault is reported as one on `path`
    (the temporary name means nothing to the user)."""
    path = Path(path)
    tmp, prefix = None, "." + path.name + "."
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        os.close(fd)
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp made it private; give it an ordinary file's permissions
        os.replace(tmp, path)
    except OSError as err:
        _remove(tmp)
        if err.filename is None or isinstance(err.filename, str) and os.path.basename(err.filename).startswith(prefix):
            raise OSError(err.errno, err.strerror, str(path)) from None  # the temporary file's fault, or a write's
        raise
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp):
    if tmp is not None and os.path.exists(tmp):
        os.unlink(tmp)


def make_folders(path):
    """mkdir -p path; returns the topmost folder it made (None when path existed), for
    remove_empty_folders to undo."""
    missing = []
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing.append(folder)
    path.mkdir(parents=True, exist_ok=True)
    return missing[-1] if missing else None


def obstacle_to_folder(folder, top, writable=False):
    """The file standing where `folder`, or a folder between it and `top` (`top` left out), goes;
    with `writable`, else the nearest existing folder on that path (`top` included) that this
    process may not write in, where the missing folders or the file would be made. None when
    there is none: found before any work, not when the first write meets it."""
    folder, top = Path(folder), Path(top)
    for place in [folder, *folder.parents]:
        if place.is_dir():  # the folders above it are folders too
            return place if writable and not os.access(place, os.W_OK | os.X_OK) else None
        if place == top:
            return None
        if place.exists():
            return place
    return None


def remove_empty_folders(path, top):
    """Remove path and its parents up to `top` (inclusive) while they are empty."""
    for folder in [path, *path.parents]:
        try:
            folder.rmdir()
        except OSError:  # not empty (work was kept), or gone
            return
        if folder == top:
            return


def atomic_write_bytes(path, data):
    """Write data to path through a temporary file in the same folder and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path, fix=None):
    """The JSON object in path; a CorruptFile naming the file (and `fix`, what to do) when it is
    truncated, not JSON or not an object."""
    from dlbench.errors import CorruptFile

    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFile(path, f"not valid JSON: {err}", fix or "delete it, or restore it from a copy") from None
    if not isinstance(value, dict):
        raise CorruptFile(path, f"a JSON {type(value).__name__}, not an object", fix or "delete it, or restore it from a copy")
    return value


def _json_default(value):
    if hasattr(value, "tolist"):  # numpy and torch scalars and arrays
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
