"""Exceptions shared by every layer.

A UserError is a mistake the user can fix (bad flag, missing file, unknown name). The
command-line front ends print its message as one line and exit with status 2, without a
traceback. A filesystem fault (an OSError: full disk, read-only folder, a path under a file) is
reported the same way, since the user fixes it, not the code. Anything else is a bug and keeps
its traceback.
"""

import errno
import os
import shlex
import signal
from pathlib import Path


class UserError(Exception):
    """A problem in the user's input; the message names the problem and the fix."""


def reason(err):
    """What went wrong, for a log line or run.json: a user's mistake or a fault in its own words,
    anything else (a bug) with its type, which is half of what it says."""
    return str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"


class CorruptFile(UserError):
    """A file dlbench wrote earlier cannot be read back (truncated, garbage, wrong shape)."""

    def __init__(self, path, problem, fix, state="unreadable"):
        super().__init__(f"'{path}' is {state} ({problem}); {fix}")
        self.path, self.problem = path, problem


# What to do about the filesystem faults users meet, by errno.
_OS_ADVICE = {
    errno.ENOSPC: "free some space (or choose a folder on another disk) and run the command again",
    errno.EDQUOT: "free some space within your quota and run the command again",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "choose a folder you may write to, or change its permissions",
    errno.EPERM: "choose a folder you may write to, or change its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "a folder is where a file goes; move it away, or give a file's path",
    errno.ENOENT: "check the path",
    errno.EEXIST: "something is in the way there (a file where a folder goes); move it away, or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EIO: "the disk reported an input/output error; check it and run the command again",
}


# the file name of an OSError met writing to standard output (dlbench.cli.common)
STANDARD_OUTPUT = "<stdout>"


def describe_os_error(err):
    """One line for an OSError: what failed, on which path, and what to do."""
    reason = (err.strerror or os.strerror(err.errno)) if err.errno else str(err)
    if err.filename == STANDARD_OUTPUT:
        return f"cannot write to standard output: {reason}; {_OS_ADVICE.get(err.errno, 'check where it goes')}"
    where = f" '{err.filename}'" if err.filename else ""
    if err.filename2:
        where += f" -> '{err.filename2}'"
    advice = _OS_ADVICE.get(err.errno, "check the path and the disk, then run the command again")
    blocker = file_in_the_way(err)
    if blocker:
        advice = f"'{blocker}' is a file, not a folder; move it away, or choose another path"
    link = broken_link(err.filename) if isinstance(err.filename, str) else None
    if link:  # "a file where a folder goes" had been said of it
        advice = broken_link_advice(*link)
    return f"cannot use{where}: {reason}; {advice}"


def file_in_the_way(err):
    """For a path under a file (ENOTDIR), that file: the system names only the path asked for."""
    if err.errno != errno.ENOTDIR or not isinstance(err.filename, str):
        return None
    return file_above(err.filename)


def file_above(path):
    """The file that stands where one of path's folders goes, else None (path itself is not looked at):
    the nearest of its folders that exists is the only one that can be a file."""
    for folder in Path(path).parents:
        if folder.exists():
            return folder if not folder.is_dir() else None
    return None


def broken_link(path):
    """(link, its target) for path or the nearest of its folders that is a symbolic link to nothing
    (a disk not mounted, a folder moved), else None."""
    for candidate in (Path(path), *Path(path).parents):
        if candidate.is_symlink() and not candidate.exists():
            return candidate, os.readlink(candidate)
        if candidate.exists():
            return None
    return None


def broken_link_advice(link, target):
    return (f"'{link}' is a symbolic link to '{target}', which does not exist; make it exist (mount it?), or "
            f"remove the link")


# faults every later write meets too (a full disk, a read-only one): work that writes many files
# stops at the first, where a file it cannot read only leaves out what needed it
DISK_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


def is_disk_fault(err):
    return isinstance(err, OSError) and err.errno in DISK_FAULTS


class OtherDataFound(UserError):
    """The data found (under DLBENCH_DATA) is not the shape of the data a run trained on. Every run
    of a study on that dataset would meet it too, so it stops a study, as a full disk does, rather
    than failing run after run (each recording a reason that outlived the fix)."""


class DataUnavailable(UserError):
    """A run's dataset cannot be loaded (missing, damaged, a file where its folder goes). Every run of
    a study on that dataset would meet it too, so it stops the study with its one line: under a pool,
    whose workers keep their lines to themselves, the study had said only "0 runs finished, 4 failed",
    and --status "not started" (nothing had been written)."""


class OutOfDeviceMemory(Exception):
    """The GPU had not the memory a step asked for. The machine's state (memory other processes
    hold, a batch or stack too large for it) is at fault, not the run, which is never marked failed
    for it; like a full disk it stops a study. The message says what was kept and what to change."""


class Interrupted(Exception):
    """Work stopped by a signal (Ctrl-C, SIGTERM from a scheduler, SIGHUP) after keeping what it
    had; the message says what was kept and how to go on. The exit status is 128 + the signal
    number, as a shell reports a process the signal ended."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum

    def __reduce__(self):  # a pool's worker sends it to the study's process: it must unpickle whole
        return type(self), (str(self), self.signum)


def interrupt_signal(interrupt):
    """The signal a KeyboardInterrupt stands for: a StopSignal's own, else Ctrl-C's (SIGINT)."""
    return getattr(interrupt, "signum", signal.SIGINT)


class StopSignal(KeyboardInterrupt):
    """SIGTERM (a scheduler) or SIGHUP (a closed terminal) to a command, raised where the command
    was working so that it unwinds as after Ctrl-C: claims are released and half-written files
    removed. A KeyboardInterrupt, so that what handles Ctrl-C handles it too."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def shell_word(value):
    """value (a path) as one word of a command a message tells the user to run: quoted where a shell
    would split or expand it (a space in a folder's name), and bytes that are not UTF-8 (which
    Python keeps as surrogate escapes and cannot print) as bash's $'\\xNN'."""
    text = str(value)
    if not any("\udc80" <= char <= "\udcff" for char in text):
        return shlex.quote(text)
    printable = (chr(byte) if 32 <= byte < 127 and chr(byte) not in "'\\" else f"\\x{byte:02x}"
                 for byte in os.fsencode(text))
    return f"$'{''.join(printable)}'"
