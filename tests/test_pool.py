"""The local pool whose workers serve themselves, and its routing policy: messages reach the
listener, work passes between workers within a backlog, a failing or killed worker breaks the
pool in one line, a stop is heard, and a new subtree goes to the worker whose subtrees the
fewest hunts have reached."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import pytest

import bisectlab.pool as pool_module
from bisectlab.pool import BACKLOG, Worker, WorkerPool
from bisectlab.subtrees import SubtreeOwners, subtree_key


def count_to_three(worker: Worker) -> None:
    for i in range(3):
        worker.post(("n", worker.me, i))


def test_every_worker_posts_and_the_listener_hears_all():
    heard = list(WorkerPool(3).serve(count_to_three))
    assert sorted(heard) == [("n", w, i) for w in range(3) for i in range(3)]
    for w in range(3):  # one worker's messages arrive in its order
        assert [m[2] for m in heard if m[1] == w] == [0, 1, 2]


def report_what_collections_walk(made_in_the_listener: list, worker: Worker) -> None:
    """Whether this worker's collections walk an object made in the listener, and one made here."""
    made_here: list = []
    walked = {id(o) for o in gc.get_objects()}
    worker.post(("walked", id(made_in_the_listener) in walked, id(made_here) in walked))


def test_a_workers_collections_leave_the_listeners_objects_alone():
    """A worker's collections walk what it makes, not what it inherited (frozen at its start)."""
    made_in_the_listener = ["before the fork"]
    heard = list(WorkerPool(2).serve(partial(report_what_collections_walk, made_in_the_listener)))
    assert heard == [("walked", False, True)] * 2
    assert any(o is made_in_the_listener for o in gc.get_objects())  # the listener's own: walked


def test_work_passes_to_another_worker_within_its_backlog():
    first, second = WorkerPool(2).open()
    assert [first.pass_to(1, ("item", i)) for i in range(BACKLOG + 1)] == [True] * BACKLOG + [False]
    assert first.take() is None and not first.leave_if_idle()  # something waits: it stays
    assert second.take() == ("item", 0)
    assert first.pass_to(1, ("item", BACKLOG))  # room again
    assert [second.take()[1] for _ in range(BACKLOG)] == list(range(1, BACKLOG + 1))
    assert second.take() is None


def test_an_idle_worker_takes_what_waits_for_another_and_leaves_when_nothing_does():
    first, second = WorkerPool(2).open()
    first.pass_to(1, "for the second")
    assert first.take() is None and first.take(anyone=True) == "for the second"
    assert first.leave_if_idle()
    assert not second.pass_to(0, "for the first")  # it left: nothing is passed to it
    assert second.take(anyone=True) is None and second.leave_if_idle()


def test_work_a_worker_keeps_waits_in_its_inbox_where_an_idle_worker_may_take_it():
    first, second = WorkerPool(2).open()
    first.pass_to(0, "passed before")  # from a third worker, say
    first.keep(["mine 1", "mine 2"] + [f"mine {i}" for i in range(3, BACKLOG + 2)])
    assert not first.pass_to(0, "no room")  # what it keeps counts towards its backlog
    assert first.take() == "passed before" and first.take() == "mine 1"  # in turn
    assert second.take() is None and not second.leave_if_idle()  # something waits: it stays
    assert second.take(anyone=True) == "mine 2"


def test_a_stop_is_heard_by_every_worker():
    pool = WorkerPool(2)
    workers = pool.open()
    assert not any(w.stopping for w in workers)
    pool.stop()
    assert all(w.stopping for w in workers)


def fail_in_one(worker: Worker) -> None:
    if worker.me == 1:
        raise ValueError("a bad hunt")


def test_a_failing_worker_raises_its_exception_in_the_listener():
    with pytest.raises(ValueError) as raised:
        list(WorkerPool(2).serve(fail_in_one))
    assert str(raised.value) == "a bad hunt"
    (note,) = raised.value.__notes__  # where the worker raised it, for a caller's traceback
    assert note.startswith("in pool worker 2:\nTraceback") and "in fail_in_one" in note


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


def fail_unpicklably(worker: Worker) -> None:
    raise Unpicklable("lost in transit")


def test_an_exception_that_does_not_pickle_arrives_as_its_line():
    with pytest.raises(RuntimeError) as raised:
        list(WorkerPool(1).serve(fail_unpicklably))
    assert str(raised.value) == "Unpicklable: lost in transit"
    assert "in fail_unpicklably" in raised.value.__notes__[0]


def die_in_one(worker: Worker) -> None:
    worker.post(("alive", worker.me))
    if worker.me == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    while not worker.stopping:
        time.sleep(0.001)


def test_a_killed_worker_breaks_the_pool_after_its_last_words():
    pool, heard = WorkerPool(2), []
    with pytest.raises(BrokenProcessPool, match="^worker 1 killed by signal 9$"):
        for message in pool.serve(die_in_one):
            heard.append(message)
    pool.shutdown()
    assert ("alive", 0) in heard


def die_holding_a_lock(which: str, done: str, worker: Worker) -> None:
    """Worker 1 dies holding the pool's ``which`` lock; worker 2 waits for it once it is taken,
    and writes to ``done`` whether it got it and whether the pool was stopping."""
    lock = getattr(worker, which)()
    if worker.me == 0:
        with lock:
            os.kill(os.getpid(), signal.SIGKILL)
    raw = worker._pool._writes if which == "writing" else worker._pool._claims
    while raw.acquire(block=False):  # until the first worker holds it
        raw.release()
        time.sleep(0.001)
    with lock as ours, open(done, "w") as out:
        out.write(f"held: {ours}, stopping: {worker.stopping}")


@pytest.mark.parametrize("which", ["writing", "claiming"])
def test_a_worker_killed_holding_a_pool_lock_keeps_no_other_waiting(which, tmp_path):
    """The others wait for the lock until the pool stops, then go on without it: else they
    would wait until the shutdown kills them, JOIN_S later, with the hunts they held unwritten."""
    done = tmp_path / "done"
    with pytest.raises(BrokenProcessPool, match="^worker 1 killed by signal 9$"):
        list(WorkerPool(2).serve(partial(die_holding_a_lock, which, str(done))))
    assert done.read_text() == "held: False, stopping: True"


def wait_for_the_stop(worker: Worker) -> None:
    worker.post(("started", worker.me))
    while not worker.stopping:
        time.sleep(0.001)
    worker.post(("stopped", worker.me))


def test_closing_the_listener_stops_the_workers():
    pool = WorkerPool(2)
    messages = pool.serve(wait_for_the_stop)
    assert next(messages)[0] == "started"
    procs = list(pool._procs)
    messages.close()  # returns once both have finished
    assert [proc.exitcode for proc in procs] == [0, 0]


def test_work_put_in_the_inboxes_before_the_fork_reaches_the_workers():
    def fill(workers: list[Worker]) -> None:
        for worker in workers:
            worker.keep([("for", worker.me)])

    def report(worker: Worker) -> None:
        worker.post(("took", worker.me, worker.take()))

    heard = sorted(WorkerPool(2).serve(report, before_start=fill))
    assert heard == [("took", 0, ("for", 0)), ("took", 1, ("for", 1))]


def test_a_failure_before_the_fork_starts_no_worker_and_is_raised():
    pool = WorkerPool(2)

    def fail(workers: list[Worker]) -> None:
        assert multiprocessing.active_children() == []  # nothing forked yet
        raise RuntimeError("the database is gone")

    with pytest.raises(RuntimeError, match="the database is gone"):
        list(pool.serve(count_to_three, before_start=fail))
    assert multiprocessing.active_children() == []
    assert all(reader.closed and writer.closed for reader, writer in pool._posts)


def test_ctrl_c_while_the_workers_start_stops_those_started_and_is_raised(monkeypatch):
    """Ctrl-C between two workers' starts: the one started is stopped and waited for, and the
    KeyboardInterrupt reaches the caller (a worker never started is not waited for)."""
    pool, started = WorkerPool(2), []
    start = type(pool_module._FORK.Process()).start

    def start_once(proc: multiprocessing.process.BaseProcess) -> None:
        if started:
            raise KeyboardInterrupt
        start(proc)
        started.append(proc)

    monkeypatch.setattr(type(pool_module._FORK.Process()), "start", start_once)
    with pytest.raises(KeyboardInterrupt):
        list(pool.serve(count_to_three))
    assert started[0].exitcode == 0 and pool._procs == []
    assert multiprocessing.active_children() == []


_CTRL_C_IN_FORK: list[int] = []  # the pid to send SIGINT to as it forks, while the test runs


def _ctrl_c_before_a_fork() -> None:
    if _CTRL_C_IN_FORK and _CTRL_C_IN_FORK[0] == os.getpid():
        _CTRL_C_IN_FORK.clear()
        os.kill(os.getpid(), signal.SIGINT)


os.register_at_fork(before=_ctrl_c_before_a_fork)  # a hook cannot be taken back: it is armed above


def test_ctrl_c_during_a_fork_stops_the_pool():
    """A Ctrl-C that comes while a worker is forked is not lost in the fork's hooks (Python
    prints an exception raised there and goes on): it stops the pool once the workers started."""
    another_thread = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
    another_thread.start()  # a progress bar's, say: the kernel may give it the signal
    _CTRL_C_IN_FORK.append(os.getpid())
    try:
        with pytest.raises(KeyboardInterrupt):
            list(WorkerPool(2).serve(count_to_three))
    finally:
        _CTRL_C_IN_FORK.clear()
    assert multiprocessing.active_children() == []


def test_a_new_subtree_goes_to_the_worker_whose_subtrees_hunts_reached_least_and_stays():
    owners = SubtreeOwners(3)
    busy = subtree_key("lane", ("a", 1, True, False))
    assert [owners.owner(busy, me=w) for w in (0, 1, 2)] == [0, 0, 0]  # 3 hunts reached it
    second = subtree_key("lane", ("b", 1, False, False))
    assert owners.owner(second, me=0) == 1  # none reached the second's or the third's
    assert owners.owner(second, me=2) == 1
    assert owners.owner(subtree_key("lane", ("c", 2, False, False)), me=1) == 2
    assert owners.owner(subtree_key("lane", ("d", 1, True, False)), me=0) == 2  # reached: 3, 2, 1
    assert owners.owner(busy, me=2) == 0  # its owner, however many hunts reached it since


def test_among_workers_whose_subtrees_as_many_hunts_reached_the_asker_keeps_a_new_subtree():
    assert SubtreeOwners(2).owner(subtree_key("x"), me=1) == 1
    assert SubtreeOwners(2).owner(subtree_key("y"), me=0) == 0


def test_a_worker_that_left_gets_no_new_subtree():
    owners = SubtreeOwners(2)
    for _ in range(5):
        owners.owner(subtree_key("old"), me=0)
    owners.leave(1)
    assert owners.owner(subtree_key("new"), me=1) == 0


def test_a_full_table_leaves_new_subtrees_where_they_are():
    owners = SubtreeOwners(2, slots=2)
    assert owners.owner(subtree_key("x"), me=1) == 1
    assert owners.owner(subtree_key("y"), me=1) == 0
    assert owners.owner(subtree_key("x"), me=0) == 1  # reached: the first one hunt, the second 2
    assert owners.owner(subtree_key("z"), me=1) == 1  # no room: stays with the asker
    assert owners.owner(subtree_key("y"), me=1) == 0  # the ones held still answer


def test_subtree_keys_are_stable_and_never_the_free_mark():
    assert subtree_key("lane", [("abc", 2, True, False)]) == subtree_key(
        "lane", [("abc", 2, True, False)])
    assert subtree_key("lane", [("abc", 2, True, False)]) != subtree_key(
        "lane", [("abc", 2, False, False)])
    assert all(subtree_key(i) != 0 for i in range(1000))


def die_halfway_through_a_message(worker: Worker) -> None:
    """A message's frame (its length, then a tenth of its bytes), then death."""
    import struct

    os.write(worker._pool._posts[worker.me][1].fileno(), struct.pack("!i", 1000) + b"x" * 100)
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_halfway_through_a_message_breaks_the_pool_without_a_hang():
    def hung(*_):
        raise AssertionError("the listener waited for the rest of a dead worker's message")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        pool = WorkerPool(2)
        with pytest.raises(BrokenProcessPool, match="^worker 1 killed by signal 9$"):
            list(pool.serve(lambda w: die_halfway_through_a_message(w) if w.me == 0 else None))
        pool.shutdown()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, before)
