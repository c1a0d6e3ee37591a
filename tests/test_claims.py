"""The claim that makes one process the writer of a run directory: exclusive, leased and
renewed, broken only when stale (lease run out, or holder gone from this host), and a holder
whose claim was broken finds out."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dlbench import rundir
from dlbench.rundir import Claim, ClaimLost, RunHeld, claim_path, hold_run


def test_a_claim_is_exclusive_and_released(tmp_path):
    run_dir = tmp_path / "run"
    with hold_run(run_dir, "trained") as claim:
        record = json.loads(claim_path(run_dir).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["purpose"] == "trained" and record["token"] == claim.token
        with pytest.raises(RunHeld, match=f"is being trained by process {os.getpid()}") as held:
            Claim(run_dir, "evaluated").acquire()
        # a dead holder on this host is broken at once: waiting out the lease is said of one elsewhere only
        assert "expires" not in str(held.value), held.value
        elsewhere = {**record, "host": "elsewhere"}
        claim_path(run_dir).write_text(json.dumps(elsewhere))
        with pytest.raises(RunHeld, match=r"a claim whose holder died expires 60 s after its last renewal\)$"):
            Claim(run_dir, "evaluated").acquire()
        claim_path(run_dir).write_text(json.dumps(record))
        rundir.check_not_held(run_dir)  # this process is the holder
        (run_dir / "kept").write_text("work")
    assert not claim_path(run_dir).exists()
    assert (run_dir / "kept").is_file()


def test_holds_nest_within_a_process_and_an_unused_folder_is_removed(tmp_path):
    run_dir = tmp_path / "a" / "b" / "run"
    with hold_run(run_dir, "evaluated") as outer:
        with hold_run(run_dir, "postprocessed") as inner:
            assert inner is outer
        assert claim_path(run_dir).is_file()  # the inner block does not release the outer's claim
    assert not (tmp_path / "a").exists()  # made for the claim, left empty: removed, parents too


def test_only_one_of_many_threads_takes_a_free_claim(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    winners, barrier = [], threading.Barrier(8)

    def contend():
        barrier.wait()
        try:
            winners.append(Claim(run_dir, "trained").acquire())
        except RunHeld:
            pass

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    winners[0].release()


def test_a_claim_whose_holder_died_on_this_host_is_broken_at_once(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    claim_path(run_dir).write_text(json.dumps({"token": "x", "pid": int(dead.stdout), "host": socket.gethostname(),
                                               "purpose": "trained", "lease_seconds": 3600}))
    claim = Claim(run_dir, "trained").acquire()
    assert json.loads(claim_path(run_dir).read_text())["token"] == claim.token
    claim.release()
    assert sorted(os.listdir(run_dir)) == []  # the broken claim is not left lying around


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="zombies are found in Linux's /proc")
def test_a_holder_that_exited_but_was_not_waited_for_is_dead(tmp_path):
    """A dlb_train its parent has not waited for yet (a zombie) still answers signal 0: its claim had
    held the run until its lease ran out."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    try:
        claim_path(run_dir).write_text(json.dumps({"token": "x", "pid": child.pid, "host": socket.gethostname(),
                                                   "purpose": "trained", "lease_seconds": 3600}))
        Claim(run_dir, "trained").acquire().release()
    finally:
        child.wait()


def test_a_live_holder_elsewhere_keeps_its_claim_until_the_lease_runs_out(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    claim_path(run_dir).write_text(json.dumps({"token": "x", "pid": 1, "host": "another-host",
                                               "purpose": "trained", "lease_seconds": 60}))
    with pytest.raises(RunHeld, match="another-host"):
        Claim(run_dir, "trained").acquire()
    with pytest.raises(RunHeld, match="another-host"):
        rundir.check_not_held(run_dir)
    old = time.time() - 61
    os.utime(claim_path(run_dir), (old, old))  # not renewed for a whole lease: its holder is gone
    Claim(run_dir, "trained").acquire().release()


@pytest.mark.parametrize("content", [
    "",  # it had been reported as "process ? on ? since <now>"
    # JSON that is no claim of dlbench's had ended in a traceback (AttributeError, ValueError,
    # TypeError, OverflowError)
    "[1]", '"x"', '{"lease_seconds": "x"}', '{"lease_seconds": null, "pid": 1}', '{"lease_seconds": true}',
    '{"pid": 1, "host": "vm", "acquired": "yesterday"}', '{"acquired": 1e20}', '{"pid": "12"}'])
def test_an_unreadable_claim_is_said_so_and_expires_by_its_age(tmp_path, content):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    claim_path(run_dir).write_text(content)
    rundir.check_not_held(run_dir)  # the cheap first look leaves an unreadable claim to the claim itself
    with pytest.raises(RunHeld, match=f"holds an unreadable claim.json.*remove '{claim_path(run_dir)}' if no process"):
        Claim(run_dir, "trained", lease_seconds=60).acquire()
    old = time.time() - 61
    os.utime(claim_path(run_dir), (old, old))
    Claim(run_dir, "trained", lease_seconds=60).acquire().release()


def test_a_holder_renews_its_claim_and_one_that_could_not_finds_it_was_taken(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = Claim(run_dir, "trained", lease_seconds=0.4).acquire()
    time.sleep(1.0)  # renewed every 0.1 s: still held, well past one lease
    with pytest.raises(RunHeld):
        Claim(run_dir, "trained", lease_seconds=0.4).acquire()
    holder.renew = lambda: None  # a suspended process: no more renewals
    time.sleep(0.6)
    # on this host a live holder is known to be alive: pretend it is elsewhere, as on a cluster
    record = json.loads(claim_path(run_dir).read_text())
    record["host"] = "elsewhere"
    stamp = claim_path(run_dir).stat().st_mtime
    claim_path(run_dir).write_text(json.dumps(record))
    os.utime(claim_path(run_dir), (stamp, stamp))
    taker = Claim(run_dir, "trained", lease_seconds=0.4).acquire()
    assert not holder.still_held()
    with pytest.raises(ClaimLost, match=f"taken over by another process \\(pid {os.getpid()} on "):
        holder.check()
    holder.release()  # does not remove the taker's claim
    assert json.loads(claim_path(run_dir).read_text())["token"] == taker.token
    taker.release()


def test_a_claim_removed_by_hand_is_said_so_not_taken_over(tmp_path):
    # its holder had said the claim was taken over by another process, which nobody had
    claim = Claim(tmp_path, "trained").acquire()
    claim_path(tmp_path).unlink()
    with pytest.raises(ClaimLost, match=r"this process's claim on the run, was removed from under it .* the same "
                                        r"command resumes it from its last checkpoint$"):
        claim.check()
    claim.release()


def test_another_processs_claim_in_the_making_does_not_make_a_run_folder_foreign(tmp_path):
    # two dlb_study on one root: one prepared a run while the other's claim draft lay beside it, called
    # the folder "not a run", and the run was trained by neither
    from dlbench.errors import UserError
    from dlbench.rundir import Prepare, prepare

    run_dir = tmp_path / "run"
    with hold_run(run_dir, "trained"):
        for name in (".claim.json.0123abcd", "..claim.json.0123abcd.x8k2.tmp", ".claim.json.stale.99ff"):
            (run_dir / name).write_text("")
        assert prepare(run_dir, {}, overwrite=False) is Prepare.FRESH
        (run_dir / "notes.txt").write_text("mine")
        with pytest.raises(UserError, match="is not a run"):
            prepare(run_dir, {}, overwrite=False)
