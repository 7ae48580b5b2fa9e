"""A local pool of worker processes that serve themselves.

Each worker runs a ``serve`` function of its own (a campaign's: claim slots, run hunts, write
them) and posts short messages to the process that started the pool, which, once the workers
have started, only listens: it hands nothing out and writes nothing, so the cores are the
workers' (before the fork it may put each worker's first work in its inbox). A worker
may pass an item of work to another through that worker's inbox (a hunt that belongs in the
other's decision tree), and keeps the work it takes on in its own; an idle worker takes what
waits in any inbox. A worker that dies without saying goodbye breaks the pool: the listener
raises BrokenProcessPool, after the messages the others had posted. Each worker posts through a
pipe of its own, whose write end only it holds, so that a worker killed halfway through a
message leaves an end of file, not a listener waiting for the rest.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait
from typing import Any

from bisectlab.interrupts import held, release_in_child

_FORK = multiprocessing.get_context("fork")  # workers share the parent's loaded history
BACKLOG = 12  # a worker with this many items waiting in its inbox (passed or kept) is passed no
# more: room for a campaign's claim (campaign.CLAIMS) and a few passed hunts besides
JOIN_S = 10.0  # how long shutdown waits for a worker to finish its item before killing it
LOCK_POLL_S = 0.05  # how often a worker waiting for a pool lock checks whether the pool stops


def shared_counter() -> Any:
    """A whole number the workers share (inherited at the fork), 0 at first; ``.value``."""
    return _FORK.RawValue("q", 0)


class Inbox:
    """Items for one worker: any process may put, any take (a pipe and its two locks)."""

    def __init__(self) -> None:
        self.reader, self._writer = _FORK.Pipe(duplex=False)
        self._reading, self._writing = _FORK.Lock(), _FORK.Lock()

    def put(self, item: Any) -> None:
        data = pickle.dumps(item)
        with self._writing:
            self._writer.send_bytes(data)

    def take(self) -> Any | None:
        """The next item, or None if there is none now (never waits for one)."""
        with self._reading:
            if not self.reader.poll(0):
                return None
            data = self.reader.recv_bytes()
        return pickle.loads(data)


class Worker:
    """A worker's side of the pool: post to the listener, pass work on, take work."""

    def __init__(self, me: int, pool: WorkerPool):
        self.me, self._pool = me, pool
        self.listener = os.getpid()  # made in the listener, before the fork

    @property
    def workers(self) -> int:
        return self._pool.workers

    @property
    def stopping(self) -> bool:
        """Whether the listener has asked the workers to stop."""
        return bool(self._pool._stop.value)

    def post(self, message: tuple) -> None:
        """Tell the listener something (a tuple whose first item says what)."""
        self._pool._posts[self.me][1].send_bytes(pickle.dumps(message))

    def _own_ends_only(self) -> None:
        """Close, in this worker, the ends of the listener's pipes that are not its to use."""
        for w, (reader, writer) in enumerate(self._pool._posts):
            reader.close()
            if w != self.me:
                writer.close()

    def pass_to(self, other: int, item: Any) -> bool:
        """Put ``item`` in worker ``other``'s inbox, unless that worker has left or already
        has BACKLOG items waiting (passed to it or kept): whether it was passed."""
        pool = self._pool
        with pool._lock:
            if pool._left[other] or pool._waiting[other] >= BACKLOG:
                return False
            pool._waiting[other] += 1
            pool._inboxes[other].put(item)
        return True

    def keep(self, items: list[Any]) -> None:
        """Put work this worker took on in its own inbox, behind what waits there (BACKLOG
        aside): it takes them in turn, and a worker with nothing else left may take them."""
        pool = self._pool
        with pool._lock:
            pool._waiting[self.me] += len(items)
            for item in items:
                pool._inboxes[self.me].put(item)

    def take(self, anyone: bool = False) -> Any | None:
        """An item from this worker's inbox, or with ``anyone`` from any inbox (this one's
        first); None if none waits."""
        order = [self.me] + ([w for w in range(self.workers) if w != self.me] if anyone else [])
        for w in order:
            item = self._pool._inboxes[w].take()
            if item is not None:
                with self._pool._lock:
                    self._pool._waiting[w] -= 1
                return item
        return None

    def leave_if_idle(self) -> bool:
        """Leave the pool if no inbox holds anything (nobody passes to a worker that left):
        whether it left."""
        pool = self._pool
        with pool._lock:
            if any(pool._waiting):
                return False
            pool._left[self.me] = 1
            return True

    def writing(self) -> UntilStopped:
        """The lock the workers write under, one at a time (SQLite's busy handler would sleep
        1, 2, 5 ms and more between tries); once the pool stops, SQLite's own locks suffice."""
        return UntilStopped(self._pool._writes, self)

    def claiming(self) -> UntilStopped:
        """A lock under which a worker claims work, one worker at a time; once the pool is
        stopping, a worker waiting for it goes on without it, to claim nothing."""
        return UntilStopped(self._pool._claims, self)


class UntilStopped:
    """A pool lock a worker waits for until it is free or the pool is stopping, whichever
    comes first (a worker killed holding it would keep the others waiting for ever): a
    context manager, which releases the lock only if it got it."""

    def __init__(self, lock: Any, worker: Worker):
        self._lock, self._worker = lock, worker
        self._held = False

    def __enter__(self) -> bool:
        """Whether the lock is held (if not, the pool is stopping)."""
        while not (got := self._lock.acquire(timeout=LOCK_POLL_S)) and not self._worker.stopping:
            pass
        self._held = got
        return got

    def __exit__(self, *_: object) -> None:
        if self._held:
            self._held = False
            self._lock.release()


class WorkerPool:
    """``workers`` forked processes, each running ``serve(worker)`` until it returns."""

    def __init__(self, workers: int):
        self.workers = workers
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._opened = False

    def open(self) -> list[Worker]:
        """Fresh inboxes, locks and counters for a run of the pool (the workers inherit them at
        the fork); the workers' handles."""
        self._posts = [_FORK.Pipe(duplex=False) for _ in range(self.workers)]
        self._lock, self._claims, self._writes = _FORK.Lock(), _FORK.Lock(), _FORK.Lock()
        self._stopped = False
        self._inboxes = [Inbox() for _ in range(self.workers)]
        self._waiting = _FORK.RawArray("q", self.workers)
        self._left = _FORK.RawArray("b", self.workers)
        self._stop = _FORK.RawValue("b", 0)
        self._opened = True
        return [Worker(w, self) for w in range(self.workers)]

    def serve(self, serve: Callable[[Worker], None],
              before_start: Callable[[list[Worker]], None] | None = None) -> Iterator[tuple]:
        """Start the workers on ``serve`` and yield what they post until every one has
        returned; BrokenProcessPool if one dies first, or an exception a worker raised.
        ``before_start(workers)`` runs just before the fork, their inboxes open (to fill).
        Closing the iterator early (the listener stopped) stops the workers and waits for
        each to finish its item, so that nothing it writes comes after the caller's next step."""
        workers = self.open()
        try:
            if before_start is not None:
                before_start(workers)
            self._procs = [_FORK.Process(target=_run, args=(serve, worker), daemon=True)
                           for worker in workers]
            with held():  # a Ctrl-C raised in a fork's hooks would be printed and dropped
                for proc in self._procs:
                    proc.start()
            self._close_posting_ends()
            yield from self._listen()
        finally:  # none outlives the listener: a stopped run's last writes land before it ends
            self._close_posting_ends()
            self.shutdown()

    def _close_posting_ends(self) -> None:
        """Close the listener's copies of the workers' posting ends (once they are forked, or
        none will be): a worker's end then closes with it, an end of file for the listener."""
        for _, writer in self._posts:
            writer.close()

    def _listen(self) -> Iterator[tuple]:
        readers = {reader: w for w, (reader, _) in enumerate(self._posts)}
        while readers:
            for reader in wait(list(readers)):
                w = readers[reader]
                try:
                    message = pickle.loads(reader.recv_bytes())
                except (EOFError, OSError):  # it is gone without a goodbye
                    self._procs[w].join()
                    raise BrokenProcessPool(
                        f"worker {w + 1} {_death(self._procs[w].exitcode)}") from None
                if message[0] == "bye":
                    del readers[reader]
                elif message[0] == "failed":
                    raise message[1]
                else:
                    yield message

    def _drain(self) -> None:
        """Read and drop what the workers still post (none must wait on a full pipe)."""
        for reader, _ in self._posts:
            try:
                while not reader.closed and reader.poll(0):
                    reader.recv_bytes()
            except (EOFError, OSError):
                reader.close()

    def stop(self) -> None:
        """Ask the workers to stop after their current item, without waiting: a worker claims
        nothing once it knows, and one whose claim was under way marks what it got interrupted."""
        if not self._opened or self._stopped:
            return
        self._stopped = True
        self._stop.value = 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers; with ``wait``, wait for each to finish its item (JOIN_S at most,
        then kill it), reading what they still post so that none waits on a full pipe. The
        signature is an Executor's: callers shut any executor down alike."""
        self.stop()
        self._procs = [proc for proc in self._procs if proc.pid is not None]  # those started
        deadline = time.monotonic() + JOIN_S
        while wait and any(proc.exitcode is None for proc in self._procs):
            self._drain()
            if time.monotonic() > deadline:
                for proc in self._procs:
                    proc.kill()
            for proc in self._procs:
                proc.join(0.01)
        if wait:
            for reader, _ in self._posts if self._opened else []:
                reader.close()
        self._procs = []


def _run(serve: Callable[[Worker], None], worker: Worker) -> None:
    """A worker's life: Ctrl-C left to the listener, dying with it; ``serve``, then goodbye,
    or the exception that ended it."""
    gc.freeze()  # collections here never walk (write to) the listener's objects: fewer pages copied
    release_in_child()  # forked within the listener's hold
    ignore_sigint(worker.listener)
    worker._own_ends_only()
    try:
        serve(worker)
    except BaseException as exc:  # the listener decides what it means
        with contextlib.suppress(Exception):  # where it was raised, for a caller's traceback
            exc.add_note(f"in pool worker {worker.me + 1}:\n{traceback.format_exc().rstrip()}")
        with contextlib.suppress(OSError):  # a listener gone has stopped listening
            worker.post(("failed", _portable(exc)))
        raise SystemExit(1) from None
    with contextlib.suppress(OSError):
        worker.post(("bye", worker.me))


def ignore_sigint(parent: int | None = None) -> None:
    """Workers leave Ctrl-C to the parent, which marks what they were doing as interrupted, and
    die with it: a parent killed outright (kill -9) must not leave them simulating on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel to kill this process when its parent (pid ``parent``, if known) dies
    (Linux; elsewhere nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    adopted = os.getppid() == 1 or parent not in (None, os.getppid())
    if adopted:  # the parent died before the request: init, or a subreaper, took this process
        os._exit(1)


def _portable(exc: BaseException) -> BaseException:
    """The exception, if it survives pickling both ways; else a RuntimeError with its line
    (and its notes: where in the worker it was raised)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        portable = RuntimeError(f"{type(exc).__name__}: {exc}")
        for note in getattr(exc, "__notes__", []):
            portable.add_note(note)
        return portable


def _death(exitcode: int) -> str:
    return f"killed by signal {-exitcode}" if exitcode < 0 else f"exited with status {exitcode}"
