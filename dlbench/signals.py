"""Signal handlers set for the length of a block (layer 0: every layer may use it)."""

import os
import signal
import threading
from contextlib import contextmanager

# what a scheduler sends to stop a job (SIGTERM) and what a closed terminal sends (SIGHUP)
STOPS = (signal.SIGTERM, signal.SIGHUP)


@contextmanager
def handling(signums, handler):
    """Within the block, handler(signum, frame) handles each of signums; the handlers from before
    come back after. Only the main thread may set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


@contextmanager
def blocking(signums):
    """Within the block, each of signums waits (blocked in this thread) and arrives as the block ends.
    A process started within it starts with them blocked too, which it keeps across exec until it
    unblocks them itself."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# checks that ask a training or an evaluation to stop as a signal would, without one reaching
# it: a Ray task cancelled by the study's process (Ray can only flag a task, and the flag reads in
# the task's thread), Slurm's warning to a job that submitit would answer by exiting mid-step, a
# signal a pool's worker took note of outside training
_stop_checks = []


@contextmanager
def stop_asked_by(check):
    """Within the block, check() returns the signal a stop stands for, or None: once it returns
    one, a training in this process stops at the end of its step, checkpointed, and an evaluation
    before its next metric, as if that signal had reached them. check is called once a step."""
    _stop_checks.append(check)
    try:
        yield
    finally:
        _stop_checks.remove(check)


def stop_asked():
    """The signal of the first check given to stop_asked_by that asks for a stop, or None."""
    return next((signum for signum in (check() for check in _stop_checks) if signum), None)


@contextmanager
def noting(signums):
    """Within the block, each of signums is noted rather than acted on where it lands, and stands
    for a stop asked (stop_asked): a training stops at the end of its step, an evaluation before
    its next metric. Yields the list of the signals noted, in order."""
    noted = []
    with handling(signums, lambda signum, frame: noted.append(signum)), \
            stop_asked_by(lambda: noted[0] if noted else None):
        yield noted


_finished = False


def finished():
    """Said by a command once its work is done (dlbench.cli.common.run_main), before its own
    handlers go: a signal then, while it prints its last lines and Python exits, had ended it
    at once as "interrupted while starting", with 128 + the signal, its pool's shutdown cut short."""
    global _finished
    _finished = True


def exit_quietly(main):
    """Exit with main()'s status, Ctrl-C, SIGTERM and SIGHUP ignored once main has returned (or
    raised: argparse's --help exits inside it). The command's work is done and said; as Python
    exits it puts back the default action of a signal it handles, and a stop in the half second it
    then spends freeing modules (torch's) had ended the command with 128 + the signal and no word,
    so a script took a finished command for a failed one."""
    try:
        code = main()
    finally:
        for signum in (signal.SIGINT, *STOPS):
            signal.signal(signum, signal.SIG_IGN)
    raise SystemExit(code)


def quit_while_starting(prog):
    """Until a command's own handlers are in place (dlbench.cli.common.run_main), Ctrl-C, SIGTERM
    and SIGHUP end it at once, with one line. Raised inside the imports of numpy or torch, a
    KeyboardInterrupt had left them half imported, and the command ended in pages of errors
    unrelated to the stop ("module 'numpy' has no attribute 'matrix'"); nothing is written yet."""
    global _finished
    _finished = False

    def quit_now(signum, frame):
        if _finished:  # the command's work is done and it is exiting: a stop changes nothing now
            return
        os.write(2, f"{prog}: interrupted by {signal.Signals(signum).name} while starting\n".encode())
        os._exit(128 + signum)

    for signum in (signal.SIGINT, *STOPS):
        # one started ignoring it keeps ignoring it: nohup's SIGHUP (a study's workers, which run this
        # script again as they start, hold the stops blocked until they ignore them)
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, quit_now)


def after_imports(handler):
    """handler, put off while the signalled thread is importing a module: raised inside numpy's or
    torch's imports (commands import them lazily, when first needed), a KeyboardInterrupt had left
    them half imported and the command ended in pages of errors unrelated to the stop. The signal
    is sent again a moment later, until it arrives outside an import."""
    def deferring(signum, frame):
        if importing(frame):
            timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
            timer.daemon = True
            timer.start()
            return
        handler(signum, frame)

    return deferring


def importing(frame):
    """Whether Python's import machinery is on the stack of frame."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False
