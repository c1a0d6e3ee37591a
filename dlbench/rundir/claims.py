"""One writer per run. A process holds a run directory while it writes there (training,
postprocessing, evaluation) through RUN_DIR/claim.json, created exclusively (a hard link, which
fails where the name exists, also on NFS). The claim is leased: its holder touches it every
quarter lease, and a claim not touched for a whole lease, or whose holder process is gone from
this host, is stale and may be broken (renamed away, so only one contender breaks it). A
holder checks before each renewal that the claim still holds its token, so a holder whose
lease ran out (a suspended process) finds out and stops instead of writing beside the new one.
"""

import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from dlbench.errors import UserError
from dlbench.rundir.files import atomic_path, make_folders, remove_empty_folders
from dlbench.rundir.layout import CLAIM_JSON, claim_path

LEASE_SECONDS = 60.0


HELD = "held"  # what a run held by another process is to the one that left it to it


class RunHeld(UserError):
    """Another live process holds the run directory."""


class ClaimLost(UserError):
    """This process's claim was broken by another (its lease had run out)."""


class Claim:
    """An exclusive, leased, heartbeated hold on a run directory (see this module's docstring). Use hold_run()."""

    def __init__(self, run_dir, purpose, lease_seconds=LEASE_SECONDS):
        self.run_dir, self.purpose, self.lease_seconds = Path(run_dir), purpose, float(lease_seconds)
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._thread = None
        self._lost = False
        self._found = None  # the claim file's record when this one was found lost (None: no file)

    @property
    def path(self):
        return claim_path(self.run_dir)

    def acquire(self):
        """Take the claim or raise RunHeld; a stale claim is broken first."""
        for _ in range(3):  # a claim broken by us can be retaken by a third process before us
            if self._try_create():
                self._start_heartbeat()
                return self
            holder = _read_claim(self.path)
            if holder is None:  # released between our attempt and our look
                continue
            if not _is_stale(self.path, holder):
                raise RunHeld(_held_message(self.run_dir, holder, self.lease_seconds))
            _break_stale(self.path, holder)
        raise RunHeld(f"'{self.run_dir}' is being claimed by other processes right now; try again in a moment")

    def _try_create(self):
        record = {"token": self.token, "purpose": self.purpose, "host": socket.gethostname(), "pid": os.getpid(),
                  "acquired": time.time(), "lease_seconds": self.lease_seconds}
        draft = self.path.with_name(f".{CLAIM_JSON}.{self.token}")
        try:
            with atomic_path(draft) as tmp:  # complete before it is linked: nobody reads a half-written claim
                tmp.write_text(json.dumps(record, indent=2) + "\n")
        except OSError as err:  # named by the claim, not by its draft
            raise OSError(err.errno, err.strerror, str(self.path)) from None
        try:
            os.link(draft, self.path)
        except FileExistsError:
            return False
        finally:
            draft.unlink()
        return True

    @property
    def lost(self):
        """What the last renewal found (no file access: cheap enough to ask every training step)."""
        return self._lost

    def still_held(self):
        """Whether the claim file is still ours (not broken and retaken by another process)."""
        if self._lost:
            return False
        # by token, not by inode: a file system may give a new claim the inode of the one broken
        holder = _read_claim(self.path)
        self._lost = holder is None or holder.get("token") != self.token
        self._found = holder
        return not self._lost

    def check(self):
        """Raise ClaimLost when another process has taken the run over: call before each commit."""
        if self.still_held():
            return
        if self._found is None:  # nobody took it: the file went (a cleanup, a hand)
            raise ClaimLost(f"'{self.path}', this process's claim on the run, was removed from under it (by hand, or "
                            f"a cleanup of the folder?); stopped without writing more, as another process may now "
                            f"train it; the same command resumes it from its last checkpoint")
        who = f" (pid {self._found['pid']} on {self._found['host']})" if {"pid", "host"} <= set(self._found) else ""
        raise ClaimLost(f"the claim on '{self.run_dir}' was taken over by another process{who} (this one did not "
                        f"renew it for {self.lease_seconds:.0f} s: was it suspended?); stopped without writing more")

    def renew(self):
        if self.still_held():
            os.utime(self.path)

    def _start_heartbeat(self):
        def beat():
            while not self._stop.wait(self.lease_seconds / 4):
                try:
                    self.renew()
                except OSError:  # a full disk or a lost mount: the next beat tries again
                    pass

        self._thread = threading.Thread(target=beat, name=f"claim {self.run_dir}", daemon=True)
        self._thread.start()

    def release(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.still_held():
            self.path.unlink()


_HELD = {}  # resolved run dir -> the Claim this process holds on it (claims nest within a process)


@contextmanager
def hold_run(run_dir, purpose, lease_seconds=LEASE_SECONDS):
    """Hold run_dir exclusively for the block (creating the folder if needed); yields the Claim.
    A block inside another block on the same run in this process shares its claim. If the block
    created the folder and leaves nothing in it, the folder is removed again."""
    run_dir = Path(run_dir)
    key = os.path.abspath(run_dir)
    if key in _HELD:
        yield _HELD[key]
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"'{run_dir}' exists and is not a directory; choose another --run_dir")
    created = make_folders(run_dir)
    try:
        claim = Claim(run_dir, purpose, lease_seconds).acquire()
    except BaseException:
        if created:
            remove_empty_folders(run_dir, created)
        raise
    _HELD[key] = claim
    try:
        yield claim
    finally:
        del _HELD[key]
        claim.release()
        if created:
            remove_empty_folders(run_dir, created)


def check_not_held(run_dir):
    """Raise RunHeld at once when a live process holds run_dir: a cheap first look, before a
    command loads torch and the data (hold_run still decides, exclusively)."""
    path = claim_path(run_dir)
    holder = _read_claim(path)
    if holder and os.path.abspath(run_dir) not in _HELD and not _is_stale(path, holder):
        raise RunHeld(_held_message(run_dir, holder, float(holder.get("lease_seconds", LEASE_SECONDS))))


def held_by(run_dir):
    """The line saying who holds the folder run_dir, an unreadable claim too (as acquire() judges
    it, by its age), or None where no live claim does."""
    path = claim_path(run_dir)
    holder = _read_claim(path)
    if holder is None or _is_stale(path, holder):
        return None
    return _held_message(run_dir, holder, float(holder.get("lease_seconds", LEASE_SECONDS)))


def _read_claim(path):
    """The claim's record; None where there is none; {} where it is unreadable or not a claim
    dlbench writes (judged by its age alone)."""
    try:
        with open(path, encoding="utf-8") as f:
            holder = json.load(f)
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        return {}
    return holder if _is_claim_record(holder) else {}


# the fields of a claim and what each must be; a claim need not have them all (an older one)
_CLAIM_FIELDS = {"token": str, "purpose": str, "host": str, "pid": int, "acquired": float, "lease_seconds": float}
_LATEST_TIME = 1e11  # seconds since 1970 (the year 5138): far beyond any real claim, short of localtime's limit


def _is_claim_record(holder):
    """Whether holder has only fields of their kinds: a JSON list, a string or null lease or an
    acquired time of 1e20 s had ended a command in a traceback."""
    if not isinstance(holder, dict):
        return False
    for key, kind in _CLAIM_FIELDS.items():
        if key not in holder:
            continue
        value = holder[key]
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < _LATEST_TIME:
                return False
        elif isinstance(value, bool) or not isinstance(value, kind):
            return False
    return True


def _is_stale(path, holder):
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return True
    if age > float(holder.get("lease_seconds", LEASE_SECONDS)):
        return True
    # on this host a dead holder is known at once, without waiting for its lease to run out
    return holder.get("host") == socket.gethostname() and not _process_alive(holder.get("pid"))


def _process_alive(pid):
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return not _exited_unreaped(pid)


def _exited_unreaped(pid):
    """Whether pid has exited but its parent has not waited for it yet (a zombie, as Linux's /proc
    says): signal 0 still reaches it, though it holds nothing. Elsewhere, False."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rpartition(")")[2].split()[:1]  # the name in parentheses may hold spaces
    return state in (["Z"], ["X"])


def _break_stale(path, holder):
    """Rename the stale claim away; if what was renamed is not the claim judged stale (it was
    broken and retaken in between), put it back."""
    grave = path.with_name(f".{CLAIM_JSON}.stale.{uuid.uuid4().hex}")
    try:
        os.rename(path, grave)
    except FileNotFoundError:
        return
    moved = _read_claim(grave)
    if moved is not None and moved.get("token") != holder.get("token"):
        try:
            os.link(grave, path)
        except FileExistsError:
            pass  # a third process claimed it meanwhile; the one we moved notices at its next renewal
    grave.unlink()


def _held_message(run_dir, holder, lease_seconds):
    if not holder:  # dlbench writes claims whole: this one was made or emptied by something else
        return (f"'{run_dir}' holds an unreadable {CLAIM_JSON}, taken as another process's claim until it is "
                f"{lease_seconds:.0f} s old; wait, or remove '{claim_path(run_dir)}' if no process uses the run")
    what = holder.get("purpose", "used")
    who = f"process {holder.get('pid', '?')} on {holder.get('host', '?')}"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("acquired", time.time())))
    # a dead holder on this host is known dead at once (_is_stale): only one elsewhere waits out its lease
    expires = ("" if holder.get("host") == socket.gethostname()
               else f" (a claim whose holder died expires {lease_seconds:.0f} s after its last renewal)")
    return (f"'{run_dir}' is being {what} by {who} since {since}; wait for it to finish or stop that process"
            f"{expires}")
