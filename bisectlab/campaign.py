"""Campaigns: many simulated hunts of one scenario in one lab, strategies side by side.

A campaign answers a lab's planning question ("4 rigs, a box of 50 adapters: which strategy, how
long, how sure?") by running H hunts per strategy. Hunt i of every strategy has the same seed, so
strategies face the same boots (common random numbers) and a hunt's result does not depend on
which worker ran it. Finished hunts are written under the campaign's row, each whole: by the
local worker process that ran them, a few in one transaction (see Unwritten), or, from a Dask
cluster or into an in-memory database, by this process as they come back. A hunt's slot
(strategy, index) is claimed in the database before it runs (by a local pool's workers
themselves), so several processes can share a campaign, and a re-run of the same command runs
only the slots that are missing or were interrupted. A local pool's workers pass each other
hunts whose first results lead into the other's decision tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future
from concurrent.futures import wait as futures_wait
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

from bisectlab.bench import spread, wilson
from bisectlab.driver import HuntSetup, KnownRange, drive, logged_test, logged_verdict
from bisectlab.errors import BisectlabError
from bisectlab.history import History, load_history
from bisectlab.interrupts import held
from bisectlab.lab import Costs
from bisectlab.lanes import Lane, current_slot, lane_from_dict
from bisectlab.pool import Worker, WorkerPool, shared_counter
from bisectlab.store import Store, StoreError, claimant, process_gone
from bisectlab.strategies import Strategy
from bisectlab.strategies.memo import DecisionTree
from bisectlab.subtrees import SubtreeOwners, subtree_key
from bisectlab.words import counted

FINISHED = ("found", "aborted", "inconclusive")
MINUTES_PER_DAY = 24 * 60


class CampaignInterrupted(BisectlabError):
    """The campaign stopped early; finished hunts are kept, unfinished ones marked."""


@dataclass(frozen=True)
class CampaignSpec:
    """A scenario, a range, a lab and the strategies to compare."""

    name: str
    history: str
    good: str
    bad: str
    lanes: tuple[Lane, ...]
    hunts: int = 100
    seed: int = 0
    rigs: int = 1
    adapters: int | None = 50
    arch: str = "i386"
    costs: Costs = field(default_factory=Costs)

    def key(self, h: History) -> str:
        """What makes two campaigns the same one: scenario, bug, range, lab and seed.

        Strategies and the hunt count are not part of it: re-running with more hunts or another
        strategy extends the campaign, its hunts sharing seeds with the ones already run.
        """
        ident = {"history": h.name, "commits": len(h), "bug": repr(h.bug),
                 "good": h.shas[h.resolve(self.good)], "bad": h.shas[h.resolve(self.bad)],
                 "seed": self.seed, "rigs": self.rigs, "adapters": self.adapters,
                 "arch": self.arch, "costs": asdict(self.costs)}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]

    def as_dict(self) -> dict[str, Any]:
        """The spec as plain data (logged with the campaign)."""
        d = asdict(self)
        d["lanes"] = [{"label": ln.label, "strategy": ln.strategy, "options": dict(ln.options)}
                      for ln in self.lanes]
        return d

    def task(self, lane: Lane, index: int) -> HuntTask:
        """What a worker needs to run hunt ``index`` of a lane."""
        return HuntTask(self.history, self.good, self.bad, lane.strategy, lane.options,
                        campaign_hunt_seed(self.seed, index), self.rigs, self.adapters,
                        self.arch, self.costs)


def campaign_hunt_seed(seed: int, index: int) -> int:
    """The seed of hunt ``index`` of a campaign (the same for every strategy)."""
    digest = hashlib.blake2b(f"campaign:{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass(frozen=True)
class HuntTask:
    """One hunt to simulate, in plain picklable data."""

    history: str
    good: str
    bad: str
    strategy: str
    options: tuple[tuple[str, Any], ...]
    seed: int
    rigs: int
    adapters: int | None
    arch: str
    costs: Costs
    run: str = ""  # the campaign run it belongs to: its hunts of a lane share a decision tree

    def setup(self) -> HuntSetup:
        key = history_key(self.history)  # once: the history and its range of one version
        return HuntSetup(_loaded(*key), self.good, self.bad,
                         strategy=self.strategy, options=dict(self.options), seed=self.seed,
                         rigs=self.rigs, arch=self.arch, adapters=self.adapters,
                         costs=self.costs, known=known_range(key, self.good, self.bad, self.arch))


def cached_history(ref: str) -> History:
    """A history loaded once per worker process: a file's once per version of it, whatever
    the working directory it was named from (a process may run several commands)."""
    return _loaded(*history_key(ref))


HistoryKey = tuple[str, tuple[int, ...] | None]


def history_key(ref: str) -> HistoryKey:
    """What tells a history apart: a file's resolved path and its version (inode, size,
    modification and change times: a copy that keeps the modification time still changes
    the rest), else the name (a shipped scenario's, or one load_history will refuse)."""
    path = Path(ref)
    try:
        stat = path.stat() if path.is_file() else None
    except OSError:
        stat = None
    if stat is None:
        return ref, None
    return str(path.resolve()), (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@lru_cache(maxsize=4)
def _loaded(ref: str, version: tuple[int, ...] | None) -> History:
    return load_history(ref)


@lru_cache(maxsize=16)
def known_range(key: HistoryKey, good: str, bad: str, arch: str) -> KnownRange:
    """A range's search space and true culprit, built once per worker process (per version
    of a history file: ``key``, from :func:`history_key`)."""
    h = _loaded(*key)
    good_at, bad_at = h.resolve(good), h.resolve(bad)
    h.check_range(good_at, bad_at)
    return KnownRange.of(h, good_at, bad_at, arch)


def decision_tree(lane: HuntTask, fresh: Callable[[], Strategy]) -> DecisionTree:
    """The decision tree the hunts of one lane share in this worker process (``lane``: a task
    with its seed left out; ``fresh``: builds the strategy that starts the tree if it is new)."""
    with _trees_lock:  # a Dask worker may run hunts on several threads
        tree = _trees.get(lane)
        if tree is None:
            for other in [other for other in _trees if other.run != lane.run]:
                del _trees[other]  # another run's, over (or sharing this worker with this one)
            if len(_trees) >= TREES_KEPT:
                del _trees[next(iter(_trees))]
            tree = _trees[lane] = DecisionTree(fresh())
        return tree


TREES_KEPT = 2  # a campaign runs its lanes one after the other
_trees: dict[HuntTask, DecisionTree] = {}
_trees_lock = threading.Lock()


def drop_trees(run: str) -> None:
    """Forget the decision trees of a campaign run that ended (hunts run in this process; a
    Dask worker forgets them at its next campaign's first hunt)."""
    with _trees_lock:
        for lane in [lane for lane in _trees if lane.run == run]:
            del _trees[lane]


def run_hunt(task: HuntTask, watch: Callable[[list[dict[str, Any]]], None] | None = None
             ) -> dict[str, Any]:
    """Simulate one hunt to its verdict: every test as the store logs it, the verdict, totals.
    ``watch`` sees the tests so far after each one (it may raise to end the hunt there)."""
    setup = task.setup()
    tree = decision_tree(replace(task, seed=0), lambda: setup.prepare().strategy)
    prepared = setup.prepared or setup.prepare(strategy=tree.root.state)  # one strategy a lane
    h, lab = setup.history, prepared.runner
    tests: list[dict[str, Any]] = []

    def logged(seq: int, result: Any) -> None:
        tests.append(logged_test(h, seq, result))
        if watch is not None:
            watch(tests)

    strategy = tree.walker()
    verdict, totals = drive(strategy, lab, logged)
    serials = lab.box.serials
    if lab.box.count is None:  # a bottomless box: log the adapters that were used
        serials = list(dict.fromkeys(b["adapter_serial"] for t in tests for b in t["boots"]))
    return {"adapter_serials": serials, "tests": tests,
            "verdict": {**logged_verdict(h, verdict, prepared.truth),
                        "lab_minutes": totals.lab_minutes}}


@dataclass(frozen=True)
class Recorded:
    """A hunt that the process which ran it wrote to the store, and its share of the seconds
    the write took."""

    db_seconds: float


def _write(store: Store, finished: list[tuple[int, dict[str, Any]]], claimed_by: str
           ) -> list[tuple[int, Recorded]]:
    """Write finished hunts in one transaction if they are still the claimant's, Ctrl-C held
    until it is over: each hunt id with its share of the seconds."""
    start = time.perf_counter()
    with held():
        store.record_hunts(finished, claimed_by)
    share = Recorded((time.perf_counter() - start) / max(1, len(finished)))
    return [(hunt_id, share) for hunt_id, _ in finished]


# The most a worker claims at once (fewer at the end: claim_size), and the fewest the campaign's
# own process claims at once for an executor (_fill)
CLAIMS = 8

# A process holds its finished hunts until it has WRITES of them, or the first has waited
# WRITE_WAIT_S, then writes them in one transaction (see Unwritten)
WRITES = 8
WRITE_WAIT_S = 0.5


class Unwritten:
    """Finished hunts a process holds until it writes them together (``write`` is given the
    batch): ``most`` of them (WRITES, or 1), or any that has waited WRITE_WAIT_S, checked as each
    hunt ends and, through :meth:`watch`, after each test of the next: a transaction of eight
    costs far less than eight of one. As a context manager it writes what it holds when the
    block ends, however it ends (an exception on its way out stays the one raised). What a
    process killed outright held stays claimed and unfinished, and the next run of the
    campaign runs it again, the same hunt."""

    def __init__(self, write: Callable[[list[tuple[int, dict[str, Any]]]], None], most: int,
                 clock: Callable[[], float] = time.monotonic):
        self._write, self._most, self._clock = write, most, clock
        self._hunts: list[tuple[int, dict[str, Any]]] = []
        self._since = 0.0

    def __enter__(self) -> Unwritten:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            with contextlib.suppress(Exception):
                self.flush()

    def add(self, hunt_id: int, outcome: dict[str, Any]) -> None:
        if not self._hunts:
            self._since = self._clock()
        self._hunts.append((hunt_id, outcome))
        self.watch()

    def watch(self, _tests: object = None) -> None:
        """Write what is held if it is due (a running hunt's ``watch``, after each test)."""
        if len(self._hunts) >= self._most or (
                self._hunts and self._clock() - self._since >= WRITE_WAIT_S):
            self.flush()

    def flush(self) -> None:
        """Write what is held, now; a write that fails leaves it held (a transaction: nothing
        of it was written)."""
        if self._hunts:
            self._write(self._hunts)
            self._hunts = []


class InlineExecutor(Executor):
    """One worker, this process (no pickling, no processes): a campaign given it hands nothing
    on, but claims, runs and writes its hunts itself (:func:`_inline`)."""


def local_executor(workers: int) -> tuple[Executor | WorkerPool, int]:
    """An executor for ``workers`` local processes (0 = all cores) and how many tasks to queue
    (a pool's workers serve themselves: none)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        return InlineExecutor(), 1
    return WorkerPool(workers), 0


class DaskExecutor(Executor):
    """Hunts on an existing Dask distributed cluster; shutting down closes the client. A hunt's
    result is gathered by the client, which reruns a result lost with its worker (distributed's
    ClientExecutor read the status after its gather and turned such a result into an error)."""

    def __init__(self, address: str):
        try:
            from distributed import Client
        except ImportError:
            raise BisectlabError("--scheduler needs dask distributed: pip install "
                                 "'bisectlab[dask]'") from None
        try:
            self.client = Client(address, timeout=10)
        except (OSError, TimeoutError, ValueError) as exc:
            raise BisectlabError(f"cannot reach the Dask scheduler at {address}: "
                                 f"{exc}") from None
        # each concurrent Future's Dask future, until it is set (dict operations hold the GIL)
        self._running: dict[Future, Any] = {}

    @property
    def threads(self) -> int:
        return sum(self.client.nthreads().values()) or 1

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        on_cluster = self.client.submit(fn, *args, pure=False, **kwargs)
        done: Future = Future()
        self._running[done] = on_cluster
        done.add_done_callback(self._forget)
        self.client.loop.add_callback(self._gather_into, done, on_cluster)
        return done

    async def _gather_into(self, done: Future, on_cluster: Any) -> None:
        """Set ``done`` from the Dask future, on the client's event loop: its result, gathered
        (again if need be), or the exception the task raised; nothing if it was cancelled."""
        try:
            value = await self.client.gather(on_cluster, asynchronous=True)
        except BaseException as exc:
            if done.set_running_or_notify_cancel():
                done.set_exception(exc)
            return
        if done.set_running_or_notify_cancel():
            done.set_result(value)

    def _forget(self, done: Future) -> None:
        on_cluster = self._running.pop(done, None)
        if done.cancelled() and on_cluster is not None:
            on_cluster.cancel()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """As an Executor's; without ``wait``, what is not done is cancelled, as a closed
        client would never set it."""
        if cancel_futures or not wait:
            for done in list(self._running):
                done.cancel()
        if wait:
            futures_wait(list(self._running))
        self.client.close()


def dask_executor(address: str) -> tuple[Executor, int]:
    """An executor on an existing Dask distributed cluster (``--scheduler ADDRESS``)."""
    if not address.strip():
        raise BisectlabError("--scheduler is empty: give the Dask scheduler's address "
                             "(tcp://host:port)")
    executor = DaskExecutor(address)
    return executor, 2 * executor.threads


@dataclass
class CampaignRun:
    """What one run of a campaign did, and where its time went."""

    campaign_id: int
    ran: int = 0
    kept: int = 0
    held_elsewhere: int = 0
    wall_seconds: float = 0.0  # from the plan to its trees' release (a pool's: its workers' exit)
    db_seconds: float = 0.0  # claiming and writing hunts, summed over the processes that wrote
    token: str = field(default_factory=lambda: uuid.uuid4().hex)  # names this run's hunts' trees

    @property
    def hunts_per_second(self) -> float:
        return self.ran / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def db_share(self) -> float:
        """The database's seconds over the wall time (over 1 where several workers write at once)."""
        return self.db_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def db_ms_per_hunt(self) -> float:
        return 1e3 * self.db_seconds / self.ran if self.ran else 0.0

    def count_claim(self, held_elsewhere: int, seconds: float) -> None:
        """A claim made for this run, by this process or a worker: the slots another process
        held, and its seconds in the database."""
        self.held_elsewhere += held_elsewhere
        self.db_seconds += seconds


def plan(spec: CampaignSpec, rows: list[dict[str, Any]], store: Store,
         reclaim: bool = False) -> tuple[list[tuple[Lane, int]], int, int]:
    """The slots still to run; unfinished hunts of dead runs are dropped to run again.

    A running hunt claimed by a live process, or by another host, is left to it unless
    ``reclaim`` (the user knows no other process works on the campaign any more).
    Returns (slots to run, finished hunts kept, hunts held by other processes).
    """
    by_slot = slot_rows(rows)
    todo, kept, held, stale = [], 0, 0, []
    for lane in spec.lanes:
        slot = current_slot(lane.slot)
        for index in range(spec.hunts):
            row = by_slot.get((slot, index))
            if row is None:
                todo.append((lane, index))
            elif row["status"] in FINISHED:
                kept += 1
            elif row["status"] == "interrupted" or reclaim or process_gone(row["claimed_by"]):
                stale.append(row["id"])
                todo.append((lane, index))
            else:
                held += 1
    store.drop_hunts(stale)
    return todo, kept, held


def run_campaign(spec: CampaignSpec, store: Store, executor: Executor | WorkerPool | None = None,
                 queue: int = 1, on_hunt: Callable[[int, int], None] | None = None,
                 reclaim: bool = False) -> CampaignRun:
    """Run the campaign's missing hunts; finished ones are written a few at a time (Unwritten),
    or as they come back from a Dask cluster.

    ``on_hunt(done, total)`` is called as hunts are written (for a progress bar). On Ctrl-C, a
    dead worker or any error, the hunts it claimed and did not finish are marked interrupted
    and CampaignInterrupted is raised: a re-run of the same campaign finishes them.
    """
    h = cached_history(spec.history)
    campaign_id = store.open_campaign(name=spec.name, key=spec.key(h), spec=spec.as_dict(),
                                      hunts=spec.hunts, lane_key=logged_lane_slot)
    run = CampaignRun(campaign_id)
    start = time.perf_counter()
    rows = store.campaign_hunts(campaign_id)
    finished_before = _finished_by_this_process(rows)
    todo, run.kept, run.held_elsewhere = plan(spec, rows, store, reclaim)
    logged = _logged_fields(spec, h)
    if on_hunt is not None:
        on_hunt(0, len(todo))
    pending: dict[Future, int] = {}
    if isinstance(executor, WorkerPool):
        batches = _pooled(executor, spec, store, todo, logged, run)
    elif executor is None or isinstance(executor, InlineExecutor):
        batches = _inline(spec, store, todo, logged, run)
    else:
        batches = _submitted(executor, queue, spec, store, todo, logged, run, pending)
    try:
        for finished in batches:
            _record(store, finished, run)
            run.ran += len(finished)
            if on_hunt is not None:
                on_hunt(run.ran, len(todo))
    except BaseException as exc:
        batches.close()  # a pool's workers told to stop: no claim after the marking below
        for future in pending:
            future.cancel()
        marked = store.interrupt_claims(campaign_id, claimant())
        finished, marked = _stopped_counts(store, campaign_id, finished_before, run.ran, marked)
        kept = run.kept + finished
        message = (f"campaign {campaign_id} stopped ({_reason(exc)}): "
                   f"{counted(kept, 'hunt')} kept, {marked} marked interrupted; run the same "
                   "command again to finish it")
        raise CampaignInterrupted(message) from exc
    finally:  # the clock counts this process's trees' release, as a pool's counts its workers' exit
        drop_trees(run.token)
        run.wall_seconds = time.perf_counter() - start
    return run


def _inline(spec: CampaignSpec, store: Store, todo: list[tuple[Lane, int]],
            logged: dict[str, Any], run: CampaignRun) -> Iterator[list[tuple[int, Recorded]]]:
    """Hunts this process claims, runs and writes itself (one worker): up to CLAIMS slots
    claimed in one transaction (fewer at the end: claim_size), their hunts run in turn and
    written together (:class:`Unwritten`); each batch once it is written. Whatever stops it
    (Ctrl-C, an error) first writes the hunts it finished."""
    written: list[tuple[int, Recorded]] = []
    slots = deque(todo)
    with Unwritten(lambda batch: written.extend(_write(store, batch, claimant())),
                   WRITES) as unwritten:
        while claimed := _claim(spec, store, slots, claim_size(len(slots), 1), logged, run):
            for task, hunt_id in claimed:
                unwritten.add(hunt_id, run_hunt(task, unwritten.watch))
                if written:
                    yield written.copy()
                    written.clear()
    if written:
        yield written


def _submitted(executor: Executor, queue: int, spec: CampaignSpec, store: Store,
               todo: list[tuple[Lane, int]], logged: dict[str, Any], run: CampaignRun,
               pending: dict[Future, int]) -> Iterator[list[tuple[int, Any]]]:
    """Hunts this process claims and hands to an executor (a Dask cluster's), up to ``queue``
    in flight (in ``pending``): each batch that comes back, to be written here."""
    submit = partial(executor.submit, run_hunt)
    slots, claimed = deque(todo), deque[tuple[HuntTask, int]]()
    fill = partial(_fill, spec, store, submit, pending, slots, claimed, queue, logged, run)
    fill()
    while pending:
        done, _ = futures_wait(pending, return_when=FIRST_COMPLETED)
        finished = [(pending[f], f.result()) for f in done]
        for future in done:
            del pending[future]
        yield finished
        if len(pending) <= queue // 2:
            fill()


def _pooled(pool: WorkerPool, spec: CampaignSpec, store: Store, todo: list[tuple[Lane, int]],
            logged: dict[str, Any], run: CampaignRun) -> Iterator[list[tuple[int, Any]]]:
    """Hunts a local pool's workers claim, run and write themselves (this process claims
    each one's first hunts before the fork, then only listens): each batch as it is written.
    Into a database in this process's memory, which no worker can open, every slot is claimed
    here first and the hunts come back to be written here."""
    shared = store.reachable_elsewhere
    for lane in spec.lanes:  # set up once here (bad options fail here), inherited at the fork
        lane_params(spec.task(lane, 0))
    claimed: list[tuple[HuntTask, int]] = []
    if not shared:
        slots = deque(todo)
        while got := _claim(spec, store, slots, len(slots), logged, run):
            claimed.extend(got)
    work = PoolWork(spec, todo if shared else [], claimed, logged, run.campaign_id, run.token,
                    store if shared else None, claimant(), SubtreeOwners(pool.workers),
                    shared_counter())

    def before_fork(workers: list[Worker]) -> None:
        if shared:
            _first_claims(workers, work, run)
        store.before_fork()

    for message in pool.serve(partial(serve_hunts, work=work), before_start=before_fork):
        if message[0] == "claimed":
            _, held_elsewhere, seconds = message
            run.count_claim(held_elsewhere, seconds)
        else:
            yield message[1]


@dataclass(frozen=True)
class PoolWork:
    """What a local pool's workers share, inherited at the fork: the slots to claim (or the
    hunts claimed for them), where they stand in them, where to write and who claims."""

    spec: CampaignSpec
    slots: list[tuple[Lane, int]]  # to claim, where the workers reach the database (store)
    claimed: list[tuple[HuntTask, int]]  # claimed by the listener, where they do not
    logged: dict[str, Any]
    campaign_id: int
    token: str
    store: Store | None  # the listener's, no connection open at the fork (before_fork);
    # None: hunts go back to the listener to be written
    claimed_by: str
    owners: SubtreeOwners
    taken: Any  # a shared counter: the slots (or claimed hunts) handed out so far


class Passed(Exception):
    """A hunt passed to the worker that owns the subtree its first results lead into."""


class Stopped(Exception):
    """A hunt left after the test under way because the pool is stopping (Ctrl-C, an error):
    the campaign marks it interrupted, and a re-run runs it again."""


ROUTE_DEPTH = 3  # the results that name a hunt's subtree (experiments/routing.py)


def serve_hunts(worker: Worker, work: PoolWork) -> None:
    """A pool worker's loop: the hunts in its inbox, in turn (passed to it, or of the slots
    claimed for it: its first ones by the listener before the fork, the rest by itself; kept
    there so that another worker may take them at the end), claiming more when it is empty;
    with no slot left, hunts waiting for another worker. Each is run and written a few at a
    time (:class:`Unwritten`), or passed on to the worker whose decision tree holds the subtree
    it leads into (see :class:`Router`): a hunt of its own slots, not one passed to it or
    taken. A stop leaves the hunt once the test under way ends; whatever ends the loop, the
    hunts it finished are written first."""
    # hunts posted back to the listener go one by one: once it stops, it drops what comes after
    most = 1 if work.store is None else WRITES
    with Unwritten(partial(_write_posted, worker, work), most) as unwritten:
        while not worker.stopping:
            if (item := worker.take()) is not None:
                _finish(worker, work, unwritten, *item)
            elif _take_slots(worker, work):
                continue  # in its inbox now
            elif worker.stopping:
                return
            elif (waiting := worker.take(anyone=True)) is not None:
                task, hunt_id, _ = waiting  # another's, none left to claim: run here as it is
                _finish(worker, work, unwritten, task, hunt_id)
            elif worker.leave_if_idle():
                work.owners.leave(worker.me)
                return


def _write_posted(worker: Worker, work: PoolWork, finished: list[tuple[int, dict[str, Any]]]
                  ) -> None:
    """Write a worker's finished hunts in one transaction, the workers' writes one at a time,
    and tell the listener; where no worker reaches the database, post them to be written
    there."""
    if work.store is None:
        worker.post(("done", finished))
        return
    with worker.writing():
        written = _write(work.store, finished, work.claimed_by)
    worker.post(("done", written))


def _take_slots(worker: Worker, work: PoolWork) -> list[tuple[HuntTask, int]]:
    """The next hunts for this worker, put in its inbox to be routed: up to claim_size slots of
    one lane claimed in one transaction (the next ones if another process holds all of those),
    or the next of the hunts claimed for the workers; none when every one is taken. They reach
    the inbox under the claims lock, so that no other worker finds nothing left to claim and
    nothing waiting while they are on their way."""
    with worker.claiming() as ours:
        if not ours or worker.stopping:
            return []
        store = work.store
        if store is None:  # a database no worker reaches: the listener claimed every slot
            start = work.taken.value
            work.taken.value = end = start + claim_size(len(work.claimed) - start, worker.workers)
            return _kept(worker, work.claimed[start:end])
        got, held_elsewhere, seconds = _claim_next(work, worker.workers, worker.writing())
        if got and worker.stopping:  # a stop that came during this claim
            with worker.writing():  # these only: the workers still hold finished hunts
                store.interrupt_claims(work.campaign_id, work.claimed_by,
                                       hunt_ids=[hunt_id for _, hunt_id in got])
            got = []
        _kept(worker, got)
    worker.post(("claimed", held_elsewhere, seconds))
    return got


Claimed = tuple[list[tuple[HuntTask, int]], int, float]  # hunts, slots held elsewhere, seconds


def _claim_next(work: PoolWork, workers: int, lock: Any = None) -> Claimed:
    """Claim a pool's next slots (see :func:`_claim_first`), under ``lock`` if any."""
    return _claim_first(
        iter(partial(_next_slots, work, workers), []),
        lambda batch: _claim_batch(work.spec, work.store, batch, work.logged, work.campaign_id,
                                   work.token, work.claimed_by, lock))


def _first_claims(workers: list[Worker], work: PoolWork, run: CampaignRun) -> None:
    """Each worker's first hunts, claimed here before the fork as it would claim them, and put
    in its inbox: the workers start on them at once, and inherit the claim's compiled SQL (a
    worker's own first claim took 15 ms, the second worker waiting for the first's)."""
    for worker in workers:
        got, held_elsewhere, seconds = _claim_next(work, len(workers))
        run.count_claim(held_elsewhere, seconds)
        _kept(worker, got)


def _kept(worker: Worker, hunts: list[tuple[HuntTask, int]]) -> list[tuple[HuntTask, int]]:
    """The hunts, put in the worker's inbox, each to be routed (with another worker to route
    to)."""
    worker.keep([(task, hunt_id, worker.workers > 1) for task, hunt_id in hunts])
    return hunts


def _next_slots(work: PoolWork, workers: int) -> list[tuple[Lane, int]]:
    """The next slots to claim, up to claim_size of one lane, taken from the workers' shared
    list (under the claims lock)."""
    start = work.taken.value
    most = claim_size(len(work.slots) - start, workers)
    batch = _one_lane(deque(work.slots[start:start + most]), most)
    work.taken.value = start + len(batch)
    return batch


def claim_size(left: int, workers: int) -> int:
    """How many of the ``left`` slots a worker takes at once: CLAIMS, and fewer towards the end
    (a quarter of what is left, with 2 workers), so that a worker rarely idles at the end while
    another (or another process) still holds hunts it has not started."""
    return max(1, min(CLAIMS, left // (2 * workers)))


def _finish(worker: Worker, work: PoolWork, unwritten: Unwritten, task: HuntTask, hunt_id: int,
            route: bool = False) -> None:
    """Run a hunt and hand it to ``unwritten``, unless the pool stops before it ends, or, with
    ``route`` (a hunt of this worker's slots), the :class:`Router` passes it on."""
    router = Router(worker, work.owners, task, hunt_id) if route else None

    def watch(tests: list[dict[str, Any]]) -> None:
        if worker.stopping:
            raise Stopped
        unwritten.watch()
        if router is not None:
            router(tests)

    try:
        outcome = run_hunt(task, watch)
    except (Passed, Stopped):
        return
    unwritten.add(hunt_id, outcome)


class Router:
    """Where a running hunt belongs (run_hunt's ``watch``): at its ROUTE_DEPTH-th result, with
    the worker that owns the subtree it leads into, unless that worker has left or already has
    BACKLOG hunts waiting, passed to it or claimed (the hunt then stays). A hunt passed on runs
    there from its start, the same hunt, boot for boot, and is not routed again."""

    def __init__(self, worker: Worker, owners: SubtreeOwners, task: HuntTask, hunt_id: int):
        self.worker, self.owners, self.task, self.hunt_id = worker, owners, task, hunt_id

    def __call__(self, tests: list[dict[str, Any]]) -> None:
        """Raise Passed if the hunt, ``tests`` so far, went to another worker's inbox."""
        if len(tests) != ROUTE_DEPTH:
            return
        key = subtree_key(replace(self.task, seed=0), [
            (t["commit_sha"], len(t["boots"]), t["failed"], t["skipped"]) for t in tests])
        owner = self.owners.owner(key, self.worker.me)
        passed = (self.task, self.hunt_id, False)  # run there from its start, not routed again
        if owner != self.worker.me and self.worker.pass_to(owner, passed):
            raise Passed


def _record(store: Store, finished: list[tuple[int, Any]], run: CampaignRun) -> None:
    """Write the hunts that came back as outcomes; count the time the workers took to write
    the rest."""
    outcomes = [(hunt_id, out) for hunt_id, out in finished if not isinstance(out, Recorded)]
    recorded = [out for _, out in finished if isinstance(out, Recorded)]
    if outcomes:
        recorded += [share for _, share in _write(store, outcomes, claimant())]
    run.db_seconds += sum(out.db_seconds for out in recorded)


def _stopped_counts(store: Store, campaign_id: int, before: int, collected: int, marked: int
                    ) -> tuple[int, int]:
    """How many hunts this run finished and left interrupted, as the store counts them once
    the campaign stopped (a worker's last writes and own markings included); if it cannot
    say, the ``collected`` and ``marked`` the listener knows of."""
    try:
        rows = store.campaign_hunts(campaign_id)
    except StoreError:
        return collected, marked
    me = claimant()
    interrupted = sum(row["claimed_by"] == me and row["status"] == "interrupted" for row in rows)
    # at least the listener's marking: another process may have taken some over since
    return _finished_by_this_process(rows) - before, max(marked, interrupted)


def _finished_by_this_process(rows: list[dict[str, Any]]) -> int:
    """The finished hunts among a campaign's rows that this process claimed."""
    me = claimant()
    return sum(row["claimed_by"] == me and row["status"] in FINISHED for row in rows)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'}"


def _logged_fields(spec: CampaignSpec, h: History) -> dict[str, Any]:
    """The hunt-row fields shared by every hunt of the campaign."""
    good, bad = h.resolve(spec.good), h.resolve(spec.bad)
    h.check_range(good, bad)
    truth = h.true_culprit(good, bad, spec.arch)
    return {"history": h.name, "history_source": h.source, "good": spec.good, "bad": spec.bad,
            "good_sha": h.shas[good], "bad_sha": h.shas[bad],
            "true_culprit_sha": h.shas[truth] if truth is not None else None}


def _fill(spec: CampaignSpec, store: Store, submit: Callable[[HuntTask], Future],
          pending: dict[Future, int], slots: deque[tuple[Lane, int]],
          claimed: deque[tuple[HuntTask, int]], queue: int, logged: dict[str, Any],
          run: CampaignRun) -> None:
    """Hand claimed slots to ``submit``, up to ``queue`` in flight, claiming more when none is
    left: at least CLAIMS at a time, half the queue if more."""
    while len(pending) < queue:
        if not claimed:
            claimed.extend(_claim(spec, store, slots, max(queue // 2, CLAIMS), logged, run))
            if not claimed:
                return
        task, hunt_id = claimed.popleft()
        pending[submit(task)] = hunt_id


def _claim(spec: CampaignSpec, store: Store, slots: deque[tuple[Lane, int]], most: int,
           logged: dict[str, Any], run: CampaignRun) -> list[tuple[HuntTask, int]]:
    """Claim up to ``most`` slots of one lane in one transaction (the next lane's if every one
    is another process's): their tasks and hunt ids; none when no slot is left."""
    got, held_elsewhere, seconds = _claim_first(
        iter(partial(_one_lane, slots, most), []),
        lambda batch: _claim_batch(spec, store, batch, logged, run.campaign_id, run.token,
                                   claimant()))
    run.count_claim(held_elsewhere, seconds)
    return got


def _claim_first(batches: Iterator[list[tuple[Lane, int]]],
                 claim: Callable[[list[tuple[Lane, int]]], Claimed]) -> Claimed:
    """Claim batch after batch until one gives hunts (a batch another process holds all of is
    passed over): those hunts, how many slots other processes held, and the seconds it took."""
    got, held_elsewhere, seconds = [], 0, 0.0
    for batch in batches:
        got, held_now, took = claim(batch)
        held_elsewhere, seconds = held_elsewhere + held_now, seconds + took
        if got:
            break
    return got, held_elsewhere, seconds


def _claim_batch(spec: CampaignSpec, store: Store, batch: list[tuple[Lane, int]],
                 logged: dict[str, Any], campaign_id: int, token: str, claimed_by: str,
                 lock: Any = None) -> Claimed:
    """Claim these slots in one transaction (under ``lock``, if any): the tasks and hunt ids
    of those claimed, how many another process holds, and the seconds it took."""
    tasks = [replace(spec.task(lane, index), run=token) for lane, index in batch]
    claims = [{**logged, "campaign_id": campaign_id, "campaign_label": lane.slot,
               "campaign_index": index, "claimed_by": claimed_by, "strategy": lane.strategy,
               "params": lane_params(task), "seed": task.seed}
              for (lane, index), task in zip(batch, tasks, strict=True)]
    t0 = time.perf_counter()
    with held(), lock or contextlib.nullcontext():
        ids = store.claim_hunts(claims)
    got = [(task, hunt_id) for task, hunt_id in zip(tasks, ids, strict=True)
           if hunt_id is not None]
    return got, ids.count(None), time.perf_counter() - t0


def _one_lane(slots: deque[tuple[Lane, int]], most: int) -> list[tuple[Lane, int]]:
    """The next slots to claim, up to ``most``, all of one lane: a claim inserts its rows in one
    key order (every process's), so a batch across lanes would number their hunts out of the
    lanes' order."""
    batch: list[tuple[Lane, int]] = []
    while slots and len(batch) < most and (not batch or slots[0][0] is batch[0][0]):
        batch.append(slots.popleft())
    return batch


def lane_params(task: HuntTask) -> dict[str, Any]:
    """The hunt's logged parameters (the same for every hunt of a lane, built once).

    Building them sets the strategy up, so bad options fail here, before any hunt runs.
    """
    return _lane_params(replace(task, seed=0, run=""))


@lru_cache(maxsize=64)
def _lane_params(task: HuntTask) -> dict[str, Any]:
    setup = task.setup()
    return setup.params(setup.prepare().strategy)


# the table --------------------------------------------------------------------------------------

def logged_lane_slot(lane: dict[str, Any]) -> str:
    """A lane of a campaign's logged spec, by its key as today's code spells it."""
    return current_slot(lane_from_dict(lane).slot)


def slot_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    """A campaign's hunts by slot: the lane's key as today's code spells it, and the index. A
    slot logged under two spellings (before and after an option was added) is its first hunt."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        out.setdefault((current_slot(r["campaign_label"]), r["campaign_index"]), r)
    return out


def lane_rows(spec: CampaignSpec, rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The finished hunts of each lane of the spec (by label), from the hunts table, a slot
    each (:func:`slot_rows`)."""
    out: dict[str, list[dict[str, Any]]] = {}
    labels = [lane.label for lane in spec.lanes]
    by_slot = slot_rows(rows)
    for lane in spec.lanes:
        label = lane.label if labels.count(lane.label) == 1 else f"{lane.label} {lane.slot}"
        slot = current_slot(lane.slot)
        out[label] = [r for (s, index), r in by_slot.items()
                      if s == slot and index < spec.hunts and r["status"] in FINISHED]
    return out


def summarise_hunts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (95% interval), tests, boots, installs, adapters, aborts and lab days; a lane
    with no finished hunt (a campaign stopped early) has no accuracy (None), not 0."""
    n = len(rows)
    correct = sum(bool(r["correct"]) for r in rows)
    lo, hi = wilson(correct, n)
    out: dict[str, Any] = {"hunts": n, "accuracy": correct / n if n else None,
                           "accuracy_95": [lo, hi] if n else None,
                           "aborted": sum(r["status"] == "aborted" for r in rows),
                           "inconclusive": sum(r["status"] == "inconclusive" for r in rows)}
    for key in ("tests", "boots", "installs", "adapters"):
        out.update(spread(key, [r[key] for r in rows]))
    out.update(spread("lab_days", [r["lab_minutes"] / MINUTES_PER_DAY for r in rows]))
    if not n:
        out.update({k: None for k in out if k.endswith(("_mean", "_p90", "_max"))})
    return out


def campaign_table(spec: CampaignSpec, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One summary per strategy of the spec, from the database's hunts."""
    return [{"strategy": label, **summarise_hunts(hunts)}
            for label, hunts in lane_rows(spec, rows).items()]


def spec_from_dict(d: dict[str, Any]) -> CampaignSpec:
    """A spec back from its logged form (``query campaigns`` rebuilds the table with it)."""
    by_slot: dict[str, Lane] = {}  # a lane logged twice (before and after an option was added)
    for logged in d["lanes"]:        # is one lane
        by_slot.setdefault(logged_lane_slot(logged), lane_from_dict(logged))
    lanes = tuple(by_slot.values())
    return CampaignSpec(d["name"], d["history"], d["good"], d["bad"], lanes,
                        d["hunts"], d["seed"], d["rigs"], d["adapters"], d["arch"],
                        Costs(**d["costs"]))
