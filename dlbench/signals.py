"""Signal handlers set for the length of a block (layer 0: every layer may use it)."""

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
