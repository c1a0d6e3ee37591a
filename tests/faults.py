"""Fault injection for the command tests: run a script with a filesystem fault.

    python tests/faults.py ERRNO_NAME:PATTERN[:AFTER] SCRIPT [ARGS ...]

Every attempt to open for writing, create or make a folder at a path matching the fnmatch
PATTERN raises OSError(ERRNO_NAME) (ENOSPC for a full disk, EROFS for a read-only folder,
EACCES, EIO), after the first AFTER matching attempts succeed (default 0); with EACCES, EPERM or
EROFS, asking first whether one may write there (os.access with W_OK) is answered no, and with
EROFS os.statvfs says the file system is mounted read-only. As root,
permission bits do not stop writes, and a real full disk cannot be made on CI, so this is how
those faults are made testable.
"""

import builtins
import errno
import fnmatch
import io
import os
import runpy
import sys
import types


def install(spec):
    name, pattern, *after = spec.split(":")
    code = getattr(errno, name)
    remaining = [int(after[0]) if after else 0]

    def fails(path):
        try:
            path = os.path.abspath(os.fsdecode(path))
        except TypeError:  # a file descriptor
            return False
        if not fnmatch.fnmatch(path, pattern):
            return False
        if remaining[0] > 0:
            remaining[0] -= 1
            return False
        return True

    def fault(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open, real_mkdir, real_access, real_statvfs = io.open, os.open, os.mkdir, os.access, os.statvfs

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and fails(file):
            fault(file)
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and fails(path):
            fault(path)
        return real_os_open(path, flags, *args, **kwargs)

    def mkdir(path, *args, **kwargs):
        if fails(path):
            fault(path)
        return real_mkdir(path, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        # a permission fault or a read-only disk only: a full or failing disk still lets one ask
        if code in (errno.EACCES, errno.EPERM, errno.EROFS) and mode & os.W_OK and fails(path):
            return False
        return real_access(path, mode, *args, **kwargs)

    def statvfs(path):
        result = real_statvfs(path)
        if code != errno.EROFS or not fails(path):
            return result
        fields = {name: getattr(result, name) for name in dir(result) if name.startswith("f_")}
        return types.SimpleNamespace(**{**fields, "f_flag": result.f_flag | os.ST_RDONLY})

    builtins.open = io.open = open_
    os.open, os.mkdir, os.access, os.statvfs = os_open, mkdir, access, statvfs


if __name__ == "__main__":
    install(sys.argv[1])
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")
