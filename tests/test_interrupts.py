"""Signals held back while the store writes (interrupts.held)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from bisectlab.interrupts import held


def test_ctrl_c_is_held_back_until_the_write_is_done():
    """A Ctrl-C during a write lands after it (a write cut in the middle rolls back a finished
    test, or keeps the database locked for the stop that must mark the hunts in flight)."""
    written = []
    with pytest.raises(KeyboardInterrupt), held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        written.append("the whole write")
    assert written == ["the whole write"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_hunts_sigterm_is_held_back_and_handled_by_its_own_handler_once():
    """A hunt turns SIGTERM into KeyboardInterrupt; two arrive in the write, one is handled."""
    heard = []

    def hunt_handler(signum, frame):
        heard.append(signum)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, hunt_handler)
    try:
        written = []
        with pytest.raises(KeyboardInterrupt), held():
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            written.append("the whole write")
        assert written == ["the whole write"] and heard == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is hunt_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_an_ignored_signal_stays_ignored():
    """`nohup` ignores SIGHUP: a write leaves it ignored, and nothing is raised after."""
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with held():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.05)
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)
