"""Signals held back while the store writes (interrupts.held)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from bisectlab.interrupts import held, release_in_child


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


def test_a_hunts_sigterm_is_held_back_and_handled_by_its_own_handler():
    """A hunt turns SIGTERM into KeyboardInterrupt: held in the write, its own handler after."""
    heard = []

    def hunt_handler(signum, frame):
        heard.append(signum)
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, hunt_handler)
    try:
        written = []
        with pytest.raises(KeyboardInterrupt), held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            written.append("the whole write")
        assert written == ["the whole write"] and heard == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is hunt_handler
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_second_ctrl_c_is_not_held_around_git_but_a_write_is_held_whole():
    """A user who presses Ctrl-C again (git hung on the network, say) is not kept waiting; a
    write cut in the middle could keep the database locked, so it is held whole."""
    for second_at_once, expected in ((True, ["held"]), (False, ["held", "still held"])):
        written = []
        with pytest.raises(KeyboardInterrupt), held(second_at_once=second_at_once):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            written.append("held")
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            written.append("still held")
        assert written == expected
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_hold_within_a_hold_is_the_outer_ones():
    """A round's finished tests logged under one hold, each write under its own: the outer
    hold's rule counts (the first Ctrl-C outlasts the inner hold; here a second comes at once)."""
    written = []
    with pytest.raises(KeyboardInterrupt), held(second_at_once=True):
        with held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            written.append("inner done")
        written.append("outer goes on")
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        written.append("not reached")
    assert written == ["inner done", "outer goes on"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_signal_held_in_a_block_that_raises_is_still_delivered():
    """A write that fails after a Ctrl-C came: the Ctrl-C wins (exit 130, rigs killed), the
    failure kept as its context."""
    with pytest.raises(KeyboardInterrupt) as stopped, held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        raise ValueError("the database failed")
    assert isinstance(stopped.value.__context__, ValueError)


def test_every_kind_of_signal_held_is_delivered_in_order():
    """A SIGHUP whose handler returns, then a Ctrl-C: both are handled."""
    heard = []
    before = signal.signal(signal.SIGHUP, lambda signum, frame: heard.append(signum))
    try:
        with pytest.raises(KeyboardInterrupt), held():
            os.kill(os.getpid(), signal.SIGHUP)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        assert heard == [signal.SIGHUP]
    finally:
        signal.signal(signal.SIGHUP, before)


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


def test_a_child_forked_within_a_hold_is_released_from_it():
    """A pool's worker, forked within the listener's hold, holds its own writes again: a Ctrl-C
    in its hold comes after the block, not noted for the parent and lost."""
    with held():
        pid = os.fork()
        if pid == 0:  # the child: report by exit status only
            release_in_child()
            order = []
            try:
                with held():
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.05)
                    order.append("the block went on")
            except KeyboardInterrupt:
                order.append("raised after it")
            os._exit(0 if order == ["the block went on", "raised after it"] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0

