"""Ctrl-C, SIGTERM and SIGHUP held back while the store writes, git checks out or a pool forks
its workers, then delivered.

A write cut in the middle rolls back: a test that had finished (an adapter destroyed with it)
would be lost, and a connection cut inside its transaction can keep SQLite's lock from the stop
that must mark the hunts in flight (seen as 'database is locked' after a Ctrl-C, once in about
15 runs). A checkout cut in the middle leaves a worktree half one commit, half another; there
a second Ctrl-C is not held, so that a user who presses it again (a git hung on the network,
say) is not kept waiting. A write is held whole. A Ctrl-C raised in a fork's hooks is printed
and dropped by Python; a child forked within a hold is released from it (release_in_child).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_holding = threading.local()  # the main thread's hold, if one is on


@contextlib.contextmanager
def held(second_at_once: bool = False) -> Iterator[None]:
    """Within the block, those of HELD that Python handles (Ctrl-C's KeyboardInterrupt, a hunt's
    SIGTERM) only note their arrival; with ``second_at_once``, a second of one kind is handled
    at once (a git that hangs). When the block ends, even by an exception, each kind noted is
    handled, in the order they came, until one raises. A hold within a hold is the outer one's;
    a signal ignored or left to the system is not touched; nor is anything off the main thread,
    where Python does not run handlers."""
    if (threading.current_thread() is not threading.main_thread()
            or getattr(_holding, "on", False)):
        yield
        return
    saved: dict[int, Callable[[int, FrameType | None], Any]] = {}
    caught: dict[int, FrameType | None] = {}
    holding = True

    def note(signum: int, frame: FrameType | None) -> None:
        if holding and not (second_at_once and signum in caught):
            caught.setdefault(signum, frame)
        else:  # pressed again, or the block is over and this handler not yet put back
            saved[signum](signum, frame)

    _holding.on, _holding.saved = True, saved
    try:
        for signum in HELD:
            handler = signal.getsignal(signum)
            if callable(handler):
                saved[signum] = handler
                signal.signal(signum, note)
        yield
    finally:
        holding = _holding.on = False
        _holding.saved = {}
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        for signum, frame in caught.items():
            saved[signum](signum, frame)


def release_in_child() -> None:
    """In a process forked within a hold: the handlers the hold replaced put back and the hold
    over, as if there had been none (what it noted is the parent's to deliver)."""
    for signum, handler in getattr(_holding, "saved", {}).items():
        signal.signal(signum, handler)
    _holding.on, _holding.saved = False, {}
