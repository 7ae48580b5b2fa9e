"""Ctrl-C, SIGTERM and SIGHUP held back while the store writes, then delivered.

A write cut in the middle rolls back: a test that had finished (an adapter destroyed with it)
would be lost, and a connection cut inside its transaction can keep SQLite's lock from the stop
that must mark the hunts in flight (seen as 'database is locked' after a Ctrl-C, once in about
15 runs).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Within the block, those of HELD that Python handles (Ctrl-C's KeyboardInterrupt, a hunt's
    SIGTERM) only note their arrival; the first one noted is handled once the block ends. A
    signal ignored or left to the system is not touched; nor is anything off the main thread,
    where Python does not run handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[tuple[int, FrameType | None]] = []
    saved = {signum: handler for signum in HELD
             if callable(handler := signal.getsignal(signum))}
    for signum in saved:
        signal.signal(signum, lambda got, frame: caught.append((got, frame)))
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    if caught:
        signum, frame = caught[0]
        saved[signum](signum, frame)
