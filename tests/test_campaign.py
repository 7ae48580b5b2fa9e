"""Campaigns (`replay intel-lab`, `replay campaign`), `replay hunt` and `report`, as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import replace
from pathlib import Path

import pytest

from bisectlab.campaign import (
    CLAIMS,
    ROUTE_DEPTH,
    WRITE_WAIT_S,
    WRITES,
    CampaignInterrupted,
    CampaignRun,
    CampaignSpec,
    Lane,
    Passed,
    PoolWork,
    Router,
    Unwritten,
    _next_slots,
    _take_slots,
    cached_history,
    campaign_hunt_seed,
    claim_size,
    history_key,
    known_range,
    local_executor,
    run_campaign,
)
from bisectlab.history import load_history
from bisectlab.pool import BACKLOG, Worker, WorkerPool, shared_counter
from bisectlab.store import Store
from bisectlab.subtrees import SubtreeOwners, subtree_key

SLOT_COLUMNS = ("campaign_label", "campaign_index", "seed", "status", "culprit_sha", "correct",
                "confidence", "tests", "boots", "installs", "adapters", "lab_minutes")


@pytest.fixture
def small(run, tmp_path) -> Path:
    """A generated 400-commit history with a rate bug (p = 0.5), as a scenario file."""
    path = tmp_path / "k400.toml"
    result = run("history", "generate", "--commits", "400", "--seed", "3", "--bug", "rate",
                 "--detect", "0.5", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    return path


def campaign(run, history: Path, *extra: str, db: str = "c.sqlite"):
    return run("replay", "campaign", "--history", str(history), "--rigs", "2", "--adapters", "30",
               "--db", db, "-q", *extra)


def slots(db: Path) -> list[tuple]:
    """Every campaign hunt's slot and results, in slot order (ids and times left out)."""
    with sqlite3.connect(db) as con:
        rows = con.execute(f"SELECT {', '.join(SLOT_COLUMNS)} FROM hunts "
                           "ORDER BY campaign_label, campaign_index").fetchall()
    return rows


def boots_by_slot(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT h.campaign_label, h.campaign_index, t.seq, t.commit_sha, b.attempt, b.seed, "
            "b.bricked, b.adapter_serial FROM boots b JOIN tests t ON b.test_id = t.id "
            "JOIN hunts h ON t.hunt_id = h.id ORDER BY 1, 2, 3, 5").fetchall()


def test_campaign_table_matches_query(run, small):
    result = campaign(run, small, "--hunts", "6", "--strategy", "git", "--strategy", "bayes",
                      "--workers", "1", "--json")
    assert result.exit_code == 0, result.stderr
    table = [json.loads(line) for line in result.stdout.splitlines()]
    assert [t["strategy"] for t in table] == ["git", "bayes"]
    assert all(t["hunts"] == 6 for t in table)
    assert result.stderr.rstrip().endswith(
        "logged in c.sqlite (bisectlab query hunts --campaign 1 --db c.sqlite)")
    queried = json.loads(run("query", "campaigns", "--campaign", "1", "--db", "c.sqlite",
                             "--format", "json").stdout)
    assert [{k: v for k, v in t.items() if k != "campaign"} for t in table] == queried
    hunts = json.loads(run("query", "hunts", "--campaign", "1", "--db", "c.sqlite",
                           "--format", "json").stdout)
    assert len(hunts) == 12 and {h["status"] for h in hunts} <= {"found", "aborted"}
    bayes = [h for h in hunts if h["strategy"] == "bayes"]
    assert table[1]["boots_mean"] == pytest.approx(sum(h["boots"] for h in bayes) / 6)
    assert table[1]["accuracy"] == sum(bool(h["correct"]) for h in bayes) / 6
    listed = run("query", "campaigns", "--db", "c.sqlite").stdout
    assert "kernel-400-s3" in listed and "git bayes" in listed



def test_a_lane_with_no_finished_hunt_shows_no_accuracy_and_no_costs(run, small, tmp_path):
    """A campaign stopped before a lane finished any hunt: '-' and null, not 0.000 and 0 tests."""
    assert campaign(run, small, "--hunts", "1", "--strategy", "git", "--strategy", "bayes",
                    "--workers", "1").exit_code == 0
    with sqlite3.connect(tmp_path / "c.sqlite") as db:
        db.execute("UPDATE hunts SET status = 'interrupted' WHERE strategy = 'git'")
    git, bayes = json.loads(run("query", "campaigns", "--campaign", "1", "--db", "c.sqlite",
                                "--format", "json").stdout)
    assert (git["hunts"], git["accuracy"], git["accuracy_95"], git["tests_mean"]) == (
        0, None, None, None)
    assert bayes["hunts"] == 1 and bayes["tests_mean"] > 0
    text = run("query", "campaigns", "--campaign", "1", "--db", "c.sqlite").stdout
    git_row = next(line for line in text.splitlines() if line.split()[:1] == ["git"])
    assert git_row.split() == ["git", "0", *["-"] * 7]

@pytest.mark.parametrize("workers", ["2", "3"])
def test_same_results_whatever_the_workers(run, small, tmp_path, workers):
    """Hunts passed between workers (by their first results' subtree) run again from their
    start: the same hunts as one worker runs."""
    args = ("--hunts", "6", "--strategy", "git", "--strategy", "bayes:boots-per-install=3")
    assert campaign(run, small, *args, "--workers", "1", db="one.sqlite").exit_code == 0
    assert campaign(run, small, *args, "--workers", workers, db="more.sqlite").exit_code == 0
    assert slots(tmp_path / "one.sqlite") == slots(tmp_path / "more.sqlite")
    assert boots_by_slot(tmp_path / "one.sqlite") == boots_by_slot(tmp_path / "more.sqlite")
    assert len(slots(tmp_path / "one.sqlite")) == 12


def _route_case(small):
    """A task, two workers of a pool, their subtree table (a hunt has reached the first
    worker's subtrees and none the second's, so the second gets the next subtree seen) and a
    hunt's results, deeper than routing goes."""
    spec = CampaignSpec("route", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=2, seed=1, rigs=1, adapters=30)
    first, second = WorkerPool(2).open()
    owners = SubtreeOwners(2)
    owners.owner(subtree_key("elsewhere"), me=0)
    tests = [{"commit_sha": f"c{i}", "boots": [{}], "failed": False, "skipped": False}
             for i in range(ROUTE_DEPTH + 3)]
    return spec.task(spec.lanes[0], 0), first, second, owners, tests


def test_a_hunt_reaching_another_workers_subtree_is_passed_to_it(small):
    """At its ROUTE_DEPTH-th result a hunt whose subtree belongs to another worker goes to that
    worker's inbox, whole; one in its own worker's subtree, or before that result, goes on, and
    so does one whose subtree's owner already has BACKLOG hunts waiting (never routed after)."""
    task, first, second, owners, tests = _route_case(small)
    route = Router(first, owners, task, 7)
    route(tests[:ROUTE_DEPTH - 1])  # too early to tell
    with pytest.raises(Passed):
        route(tests[:ROUTE_DEPTH])
    assert second.take() == (task, 7, False)  # run there from its start, not routed again
    for depth in range(ROUTE_DEPTH, len(tests) + 1):  # its own subtree, all the way down
        Router(second, owners, task, 8)(tests[:depth])
    assert first.take() is None and second.take() is None
    for i in range(BACKLOG):  # the owner, the second worker, is busy
        assert first.pass_to(1, ("other", i))
    stays = Router(first, owners, task, 9)
    stays(tests[:ROUTE_DEPTH])  # no room: it stays
    assert [second.take() for _ in range(BACKLOG)] == [("other", i) for i in range(BACKLOG)]
    for depth in range(ROUTE_DEPTH + 1, len(tests) + 1):  # and is not routed further down,
        stays(tests[:depth])  # though the owner has room now
    assert second.take() is None


def test_a_pool_worker_takes_fewer_slots_as_the_last_ones_go():
    """Never more than its share of what is left (but one), so that at the end a worker rarely
    idles while another holds hunts it has not started."""
    for workers in (2, 3, 8):
        sizes = [claim_size(left, workers) for left in range(1, 200)]
        assert sizes == sorted(sizes) and set(sizes) == set(range(1, CLAIMS + 1))
        assert all(size == 1 or size * workers < left for left, size in enumerate(sizes, 1))


def test_a_pools_workers_take_their_last_slots_one_at_a_time():
    """Both ways a worker takes slots: the hunts claimed for it, and slots it claims itself."""
    worker, _ = WorkerPool(2).open()
    lane = Lane("bayes", "bayes")
    work = PoolWork(None, [], [(f"task {i}", i) for i in range(12)], {}, 1, "run", None, "me",
                    SubtreeOwners(2), shared_counter())
    taken = []
    while got := _take_slots(worker, work):
        taken.append([hunt_id for _, hunt_id in got])
    slots = replace(work, slots=[(lane, i) for i in range(12)], claimed=[], taken=shared_counter())
    claimed = []
    while batch := _next_slots(slots, 2):
        claimed.append([index for _, index in batch])
    assert taken == claimed == [[0, 1, 2], [3, 4]] + [[i] for i in range(5, 12)]
    assert [worker.take() for _ in range(12)] == [(f"task {i}", i, True) for i in range(12)]


def test_hunts_a_busy_worker_claimed_go_to_a_worker_with_nothing_left(monkeypatch):
    """A worker keeps the hunts it claimed in its inbox: while it is busy on one, another worker
    that has run every other slot takes the rest (not routed: the campaign is ending), where a
    worker holding them to itself would leave the other idle at the end."""
    import bisectlab.campaign as campaign

    first, second = WorkerPool(2).open()
    work = PoolWork(None, [], [(f"task {i}", i) for i in range(12)], {}, 1, "run", None, "me",
                    SubtreeOwners(2), shared_counter())
    ran: list[tuple[int, int, bool]] = []

    def finish(worker, work, unwritten, task, hunt_id, route=False):
        ran.append((worker.me, hunt_id, route))
        if hunt_id == 0:  # the first worker's first hunt lasts while the second runs the rest
            campaign.serve_hunts(second, work)

    monkeypatch.setattr(campaign, "_finish", finish)
    idle_checks = iter(range(100))  # a worker that never finds itself idle fails, not hangs
    leave_if_idle = Worker.leave_if_idle
    monkeypatch.setattr(Worker, "leave_if_idle",
                        lambda worker: next(idle_checks) is not None and leave_if_idle(worker))
    campaign.serve_hunts(first, work)
    assert sorted(hunt_id for _, hunt_id, _ in ran) == list(range(12))  # each once
    assert ran[0] == (0, 0, True) and all(me == 1 for me, _, _ in ran[1:])
    assert [(hunt_id, route) for _, hunt_id, route in ran[-2:]] == [(1, False), (2, False)]


def test_finished_hunts_are_written_together_when_enough_or_one_has_waited():
    """Unwritten holds finished hunts until it has WRITES of them, or the first has waited
    WRITE_WAIT_S (checked as a hunt ends and after each test of the next); what a failed write
    held it holds still; as a context manager it writes what it holds at the end, and an
    exception on its way out stays the one raised."""
    writes: list[list[int]] = []
    now = [0.0]
    unwritten = Unwritten(lambda batch: writes.append([hunt_id for hunt_id, _ in batch]), WRITES,
                          clock=lambda: now[0])
    for hunt_id in range(WRITES + 1):
        unwritten.add(hunt_id, {})
    assert writes == [list(range(WRITES))]  # the last one held
    now[0] = WRITE_WAIT_S - 0.01
    unwritten.watch()  # after a test of the next hunt: it has not waited long enough
    assert len(writes) == 1
    now[0] = WRITE_WAIT_S
    unwritten.watch()
    assert writes[-1] == [WRITES]
    unwritten.flush()  # nothing held: nothing written
    assert len(writes) == 2

    def failing(batch):
        writes.append([hunt_id for hunt_id, _ in batch])
        raise RuntimeError("disk full")

    with pytest.raises(KeyError), Unwritten(failing, WRITES) as broken:
        broken.add(30, {})
        with pytest.raises(RuntimeError):
            broken.flush()
        broken.add(31, {})
        raise KeyError("the hunt's own error")  # the write at the end fails too, unseen
    assert writes[2:] == [[30], [30, 31]]

    def write(batch):
        writes.append([hunt_id for hunt_id, _ in batch])

    with Unwritten(write, 1) as one_at_a_time:
        one_at_a_time.add(39, {})
        assert writes[-1] == [39]  # written at once
    with Unwritten(write, WRITES) as ending:
        ending.add(40, {})
        assert writes[-1] == [39]  # held
    assert writes[-1] == [40]  # written as the block ends


def test_pool_workers_write_their_own_hunts(small, tmp_path):
    """A local pool's workers claim and write the hunts they ran (the campaign's process only
    listens), the same hunts as one process writes; into a database in this process's memory,
    which a worker cannot open, the slots are claimed here and the hunts come back to be
    written here."""
    lanes = (Lane("bayes", "bayes", (("boots_per_install", 3),)),)
    spec = CampaignSpec("pool", str(small), "v1.0", "v1.1", lanes, hunts=5, seed=2, rigs=2,
                        adapters=30)

    listener = os.getpid()

    with Store(f"sqlite:///{tmp_path / 'pool.sqlite'}") as store:
        record = store.record_hunts

        def workers_only(outcomes, *args):  # the workers write through it, inherited at the fork
            if os.getpid() == listener:
                raise AssertionError("the campaign's process wrote a hunt")
            with open(tmp_path / "writers", "a") as writers:
                writers.write("".join(f"{os.getpid()} {hunt_id}\n" for hunt_id, _ in outcomes))
            return record(outcomes, *args)

        store.record_hunts = workers_only
        executor, queue = local_executor(2)
        try:
            ran = run_campaign(spec, store, executor, queue)
        finally:
            executor.shutdown()
        assert ran.ran == 5 and ran.db_seconds > 0
    written = [int(line.split()[1]) for line in (tmp_path / "writers").read_text().splitlines()]
    assert sorted(written) == [1, 2, 3, 4, 5]  # each hunt once, by a worker
    with Store(f"sqlite:///{tmp_path / 'one.sqlite'}") as store:
        run_campaign(spec, store)
    assert slots(tmp_path / "pool.sqlite") == slots(tmp_path / "one.sqlite")
    assert boots_by_slot(tmp_path / "pool.sqlite") == boots_by_slot(tmp_path / "one.sqlite")
    with Store("sqlite://") as store:
        executor, queue = local_executor(2)
        try:
            run_campaign(spec, store, executor, queue)
        finally:
            executor.shutdown()
        in_memory = sorted((h["campaign_index"], h["culprit_sha"], h["tests"], h["boots"])
                           for h in store.hunts())
    with sqlite3.connect(tmp_path / "one.sqlite") as con:
        assert in_memory == con.execute("SELECT campaign_index, culprit_sha, tests, boots FROM "
                                        "hunts ORDER BY campaign_index").fetchall()


def test_a_pools_first_hunts_are_claimed_before_the_fork_as_its_workers_would(small, tmp_path,
                                                                              monkeypatch):
    """The campaign's process claims each worker's first slots before the fork, the batches the
    workers would claim in turn, and puts them in their inboxes: the workers start hunting at
    once. The workers claim the rest, and the hunts are the ones a single process runs."""
    import bisectlab.campaign as campaign_module

    real, listener = campaign_module._claim_batch, os.getpid()

    def logged(spec, store, batch, *args):  # the forked workers' too
        with open(tmp_path / "claims", "a") as claims:
            claims.write(json.dumps([os.getpid() == listener, [i for _, i in batch]]) + "\n")
        return real(spec, store, batch, *args)

    def before_fork(store):  # the listener's connections closed after its claims
        with open(tmp_path / "claims", "a") as claims:
            claims.write(json.dumps("before the fork") + "\n")
        real_before_fork(store)

    real_before_fork = Store.before_fork
    monkeypatch.setattr(campaign_module, "_claim_batch", logged)
    monkeypatch.setattr(Store, "before_fork", before_fork)
    spec = CampaignSpec("first", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=12, seed=3, rigs=2, adapters=30)
    with Store(f"sqlite:///{tmp_path / 'pool.sqlite'}") as store:
        executor, queue = local_executor(2)
        try:
            assert run_campaign(spec, store, executor, queue).ran == 12
        finally:
            executor.shutdown()
    claims = [json.loads(line) for line in (tmp_path / "claims").read_text().splitlines()]
    assert claims[:3] == [[True, [0, 1, 2]], [True, [3, 4]], "before the fork"]  # claim_size's
    assert [by_listener for by_listener, _ in claims[3:]] == [False] * 7
    assert sorted(i for _, batch in claims[3:] for i in batch) == list(range(5, 12))
    with Store(f"sqlite:///{tmp_path / 'one.sqlite'}") as store:
        run_campaign(spec, store)
    assert boots_by_slot(tmp_path / "pool.sqlite") == boots_by_slot(tmp_path / "one.sqlite")


def test_the_first_claims_go_one_batch_to_each_workers_inbox(monkeypatch):
    import bisectlab.campaign as campaign

    batches = iter([[("task 0", 0), ("task 1", 1)], [("task 2", 2)]])
    monkeypatch.setattr(campaign, "_claim_next", lambda work, workers: (next(batches), 1, 0.5))
    workers, run = WorkerPool(2).open(), CampaignRun(1)
    campaign._first_claims(workers, None, run)
    assert [workers[0].take(), workers[0].take(), workers[0].take()] == [
        ("task 0", 0, True), ("task 1", 1, True), None]
    assert [workers[1].take(), workers[1].take()] == [("task 2", 2, True), None]
    assert (run.held_elsewhere, run.db_seconds) == (2, 1.0)


def test_pool_workers_claim_past_slots_another_process_holds(small, tmp_path, monkeypatch):
    """Slots another process claimed since this one planned (here the first eight, as the
    database answers) are skipped, not taken for the end of the campaign: the workers claim
    on and run the rest."""
    real = Store.claim_hunts

    def taken_elsewhere(self, claims):
        mine = [c for c in claims if c["campaign_index"] >= 8]
        ids = iter(real(self, mine) if mine else [])
        return [next(ids) if c["campaign_index"] >= 8 else None for c in claims]

    monkeypatch.setattr(Store, "claim_hunts", taken_elsewhere)  # the forked workers' too
    spec = CampaignSpec("held", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=12, seed=6, rigs=2, adapters=30)
    with Store(f"sqlite:///{tmp_path / 'held.sqlite'}") as store:
        pool, _ = local_executor(2)
        try:
            ran = run_campaign(spec, store, pool)
        finally:
            pool.shutdown()
        assert (ran.ran, ran.held_elsewhere) == (4, 8)
        assert sorted(h["campaign_index"] for h in store.hunts() if h["status"] == "found") == [
            8, 9, 10, 11]


def stopped_pool_campaign(spec: CampaignSpec, db: Path, after: int, wait: bool = True,
                          then: Callable[[Store], object] | None = None
                          ) -> tuple[list[str], str]:
    """Run ``spec`` on a 2-worker pool into ``db``, stopped as Ctrl-C stops it once ``after``
    hunts are back, the pool then shut down (waiting for it or not, as the CLI does), and
    ``then`` run on the same open store at once: the hunts' statuses and the stop's message."""
    def stop(done: int, total: int) -> None:
        if done >= after:
            raise KeyboardInterrupt

    with Store(f"sqlite:///{db}") as store:
        pool, _ = local_executor(2)
        with pytest.raises(CampaignInterrupted) as stopped:
            run_campaign(spec, store, pool, on_hunt=stop)
        pool.shutdown(wait=wait)
        if then is not None:
            then(store)
        statuses = [h["status"] for h in store.hunts()]
    return statuses, str(stopped.value)


def test_a_claim_that_outlasts_the_stop_is_marked_interrupted_too(small, tmp_path, monkeypatch):
    """A claim under way when the pool stops (a database busy with another process) runs none
    of its hunts: they end marked interrupted (by the worker that made it, and by the campaign
    after its workers are gone), and no hunt is left running."""
    import bisectlab.campaign as campaign_module

    real, slowed = campaign_module._next_slots, tmp_path / "slowed"

    def slow(work, workers):
        batch = real(work, workers)
        if any(index >= 4 for _, index in batch):
            slowed.write_text(json.dumps([index for _, index in batch]))
            time.sleep(3)
        return batch

    monkeypatch.setattr(campaign_module, "_next_slots", slow)  # the forked workers' too
    # the workers claim their first hunts themselves, the stop coming during a worker's claim
    monkeypatch.setattr(campaign_module, "_first_claims", lambda workers, work, run: None)
    spec = CampaignSpec("slow", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=12, seed=7, rigs=2, adapters=30)
    rows: list[dict] = []
    statuses, message = stopped_pool_campaign(spec, tmp_path / "slow.sqlite", after=1,
                                              then=lambda store: rows.extend(store.hunts()))
    assert "running" not in statuses
    late = json.loads(slowed.read_text())
    assert [h["status"] for h in rows if h["campaign_index"] in late] == ["interrupted"] * len(late)
    assert f", {statuses.count('interrupted')} marked interrupted;" in message  # the worker's too


def test_a_stop_leaves_the_pools_running_hunts_at_their_next_test(small, tmp_path, monkeypatch):
    """Ctrl-C does not wait for the hunts the workers are running, as it does not with one
    worker: each ends at its next test, marked interrupted (here every hunt but the first takes
    a fifth of a second a test, so that one would still be running when the first is back)."""
    import bisectlab.campaign as campaign_module

    real = campaign_module.run_hunt
    first = campaign_hunt_seed(9, 0)

    def slow_after_the_first(task, watch=None):
        def slowed(tests):
            if task.seed != first:
                time.sleep(0.2)
            if watch is not None:
                watch(tests)
        return real(task, slowed)

    monkeypatch.setattr(campaign_module, "run_hunt", slow_after_the_first)  # in the workers too
    spec = CampaignSpec("prompt", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=6, seed=9, rigs=2, adapters=30)
    rows: list[dict] = []
    statuses, message = stopped_pool_campaign(spec, tmp_path / "prompt.sqlite", after=1,
                                              then=lambda store: rows.extend(store.hunts()))
    kept = {h["campaign_index"]: h["status"] for h in rows}
    assert kept[0] == "found" and set(kept) > {0}
    assert {status for index, status in kept.items() if index > 0} == {"interrupted"}
    assert f"1 hunt kept, {len(kept) - 1} marked interrupted" in message


def test_a_stopped_pools_workers_first_write_the_hunts_they_hold(small, tmp_path, monkeypatch):
    """A pool's workers hold their finished hunts (three at a time here, with no time limit):
    a stop, once the first three are back, writes every hunt a worker had finished, each found
    and counted as kept, and marks the unfinished ones interrupted."""
    import bisectlab.campaign as campaign_module

    monkeypatch.setattr(campaign_module, "WRITES", 3)  # the forked workers inherit these
    monkeypatch.setattr(campaign_module, "WRITE_WAIT_S", 60.0)
    finished, add = tmp_path / "finished", campaign_module.Unwritten.add

    def logged(unwritten, hunt_id, outcome):
        with open(finished, "a") as log:
            log.write(f"{hunt_id}\n")
        add(unwritten, hunt_id, outcome)

    monkeypatch.setattr(campaign_module.Unwritten, "add", logged)
    spec = CampaignSpec("held", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=40, seed=6, rigs=2, adapters=30)
    rows: list[dict] = []
    _, message = stopped_pool_campaign(spec, tmp_path / "held.sqlite", after=3,
                                       then=lambda store: rows.extend(store.hunts()))
    held = {int(line) for line in finished.read_text().split()}
    status = {h["id"]: h["status"] for h in rows}
    assert len(held) >= 3 and {status[hunt_id] for hunt_id in held} == {"found"}
    assert {s for hunt_id, s in status.items() if hunt_id not in held} <= {"interrupted"}
    assert f"{len(held)} hunts kept" in message


def test_a_stopped_pool_counts_the_hunts_it_kept_from_the_database(small, tmp_path,
                                                                    monkeypatch):
    """The stop's "N hunts kept" is the database's count, hunts the listener never heard of
    included (here every message of the second worker is lost, and the first is slow)."""
    import bisectlab.campaign as campaign_module
    import bisectlab.pool as pool_module

    post, finish = pool_module.Worker.post, campaign_module._finish

    def lose_the_second(worker, message):
        if worker.me == 0 or message[0] in ("bye", "failed"):
            post(worker, message)

    def slow_first(worker, *args, **kwargs):
        if worker.me == 0:
            time.sleep(1)
        finish(worker, *args, **kwargs)

    monkeypatch.setattr(pool_module.Worker, "post", lose_the_second)  # in the forked workers
    monkeypatch.setattr(campaign_module, "_finish", slow_first)
    spec = CampaignSpec("unheard", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=40, seed=8, rigs=2, adapters=30)

    statuses, message = stopped_pool_campaign(spec, tmp_path / "unheard.sqlite", after=1)
    kept = len(statuses) - statuses.count("interrupted")
    assert kept > 1 and "running" not in statuses
    assert f"{kept} hunts kept, {statuses.count('interrupted')} marked interrupted" in message


def test_a_stopped_pool_leaves_no_worker_to_write_into_the_next_run(small, tmp_path,
                                                                    monkeypatch):
    """A stop returns once the pool's workers are done, even shut down without waiting (as the
    CLI does): a worker still finishing a slow hunt must not write it into a row the next run,
    in the same process, has claimed since under a reused id."""
    import bisectlab.campaign as campaign_module

    listener, real = os.getpid(), campaign_module.run_hunt

    def late_in_workers(task, *args, **kwargs):
        outcome = real(task, *args, **kwargs)
        if os.getpid() != listener:
            time.sleep(0.4)  # its write comes late
        return outcome

    monkeypatch.setattr(campaign_module, "run_hunt", late_in_workers)
    spec = CampaignSpec("again", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=16, seed=5, rigs=2, adapters=30)

    stopped_pool_campaign(spec, tmp_path / "again.sqlite", after=2, wait=False,
                          then=lambda store: run_campaign(
                              spec, store, on_hunt=lambda done, total: time.sleep(0.05)))
    monkeypatch.setattr(campaign_module, "run_hunt", real)
    with Store(f"sqlite:///{tmp_path / 'clean.sqlite'}") as store:
        run_campaign(spec, store)
    assert boots_by_slot(tmp_path / "again.sqlite") == boots_by_slot(tmp_path / "clean.sqlite")


def test_pool_workers_write_to_postgresql_as_one_process_does(small, tmp_path,
                                                              fresh_postgres_url):
    """A pool's workers each open their own connection to the server (none inherited from the
    campaign process) and write the same hunts as one process writes into SQLite."""
    lanes = (Lane("git", "git"), Lane("bayes", "bayes", (("boots_per_install", 3),)))
    spec = CampaignSpec("pg", str(small), "v1.0", "v1.1", lanes, hunts=4, seed=3, rigs=2,
                        adapters=30)
    with Store(fresh_postgres_url) as store:
        executor, queue = local_executor(2)
        try:
            assert run_campaign(spec, store, executor, queue).ran == 8
        finally:
            executor.shutdown()
        pooled = sorted((h["campaign_label"], h["campaign_index"], h["status"], h["culprit_sha"],
                         h["tests"], h["boots"], h["adapters"]) for h in store.hunts())
        assert [h["id"] for h in store.hunts()] == list(range(1, 9))
    with Store(f"sqlite:///{tmp_path / 'one.sqlite'}") as store:
        run_campaign(spec, store)
        alone = sorted((h["campaign_label"], h["campaign_index"], h["status"], h["culprit_sha"],
                        h["tests"], h["boots"], h["adapters"]) for h in store.hunts())
    assert pooled == alone


def test_one_worker_stopped_mid_claim_counts_what_it_wrote(small, tmp_path, monkeypatch):
    """One worker claims several slots at a time (four of eight: fewer at the end) and holds
    the hunts it finished to write them together: a Ctrl-C in the third hunt writes the two
    finished, marks the third and the unstarted fourth interrupted, and says so."""
    import bisectlab.campaign as campaign_module

    spec = CampaignSpec("cut", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),), hunts=8,
                        seed=4, rigs=2, adapters=30)
    real, calls = campaign_module.run_hunt, []
    monkeypatch.setattr(campaign_module, "WRITE_WAIT_S", 60.0)  # held until the Ctrl-C

    def stop_in_the_third(task, watch=None):
        calls.append(task.seed)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task, watch)

    monkeypatch.setattr(campaign_module, "run_hunt", stop_in_the_third)
    with Store(f"sqlite:///{tmp_path / 'cut.sqlite'}") as store:
        executor, queue = local_executor(1)
        with pytest.raises(CampaignInterrupted) as stopped:
            run_campaign(spec, store, executor, queue)
        assert "(interrupted): 2 hunts kept, 2 marked interrupted" in str(stopped.value)
        assert [h["status"] for h in store.hunts()] == ["found"] * 2 + ["interrupted"] * 2


def test_one_worker_writes_its_hunts_together_and_stops_at_a_failing_one(small, tmp_path,
                                                                          monkeypatch):
    """One worker writes its finished hunts WRITES at a time, or as soon as the first has
    waited WRITE_WAIT_S, and the rest at the end: progress moves as they are written. A hunt
    that fails stops the campaign before the next one runs, the hunts finished before it
    written, the rest of its claim marked interrupted."""
    import bisectlab.campaign as campaign_module

    spec = CampaignSpec("one", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),),
                        hunts=WRITES + 1, seed=4, rigs=2, adapters=30)
    for wait, progress in ((60.0, [0, WRITES, WRITES + 1]), (0.0, list(range(WRITES + 2)))):
        monkeypatch.setattr(campaign_module, "WRITE_WAIT_S", wait)
        seen: list[int] = []
        with Store(f"sqlite:///{tmp_path / f'one-{wait}.sqlite'}") as store:
            run_campaign(spec, store, *local_executor(1),
                         on_hunt=lambda done, _, seen=seen: seen.append(done))
        assert seen == progress
    assert boots_by_slot(tmp_path / "one-60.0.sqlite") == boots_by_slot(tmp_path / "one-0.0.sqlite")
    real, calls = campaign_module.run_hunt, []

    def fail_the_second(task, watch=None):
        calls.append(task.seed)
        if len(calls) == 2:
            raise RuntimeError("lab on fire")
        return real(task, watch)

    monkeypatch.setattr(campaign_module, "WRITE_WAIT_S", 60.0)
    monkeypatch.setattr(campaign_module, "run_hunt", fail_the_second)
    with Store(f"sqlite:///{tmp_path / 'fail.sqlite'}") as store:
        with pytest.raises(CampaignInterrupted) as stopped:
            run_campaign(spec, store, *local_executor(1))
        assert "(RuntimeError: lab on fire): 1 hunt kept, 3 marked interrupted" in str(
            stopped.value)
        assert [h["status"] for h in store.hunts()] == ["found"] + ["interrupted"] * 3
    assert len(calls) == 2


def test_a_runs_wall_time_ends_once_its_decision_trees_are_released(small, tmp_path,
                                                                     monkeypatch):
    """One worker's clock runs until its decision trees are released, as a pool's runs until
    its workers (which hold theirs) have exited: hunts per second count the release both ways."""
    import bisectlab.campaign as campaign_module

    runs, clock_running = [], []

    class Watched(campaign_module.CampaignRun):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runs.append(self)

    def release(token, real=campaign_module.drop_trees):
        clock_running.append(runs[0].wall_seconds == 0.0)
        real(token)

    monkeypatch.setattr(campaign_module, "CampaignRun", Watched)
    monkeypatch.setattr(campaign_module, "drop_trees", release)
    spec = CampaignSpec("wall", str(small), "v1.0", "v1.1", (Lane("bayes", "bayes"),), hunts=1,
                        seed=4, rigs=2, adapters=30)
    with Store(f"sqlite:///{tmp_path / 'wall.sqlite'}") as store:
        run = run_campaign(spec, store, *local_executor(1))
    assert runs == [run] and clock_running == [True] and run.wall_seconds > 0


def test_hunts_are_numbered_in_the_lanes_order(run, small):
    """Slots are claimed several at a time, never across lanes: hunt ids follow the lanes as
    given, then the index, whatever the labels' sort order."""
    result = campaign(run, small, "--hunts", "3", "--strategy", "retry:k=3", "--strategy", "git",
                      "--strategy", "bayes", "--workers", "1")
    assert result.exit_code == 0, result.stderr
    hunts = json.loads(run("query", "hunts", "--db", "c.sqlite", "--format", "json").stdout)
    assert [(h["id"], h["strategy"]) for h in hunts] == [
        (i + 1, strategy) for i, strategy in enumerate(
            ["retry"] * 3 + ["git"] * 3 + ["bayes"] * 3)]


def test_dask_cluster_gives_the_same_hunts(run, small, tmp_path):
    distributed = pytest.importorskip("distributed")
    args = ("--hunts", "3", "--strategy", "bayes:boots-per-install=3")
    assert campaign(run, small, *args, "--workers", "1", db="local.sqlite").exit_code == 0
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        result = campaign(run, small, *args, "--scheduler", cluster.scheduler_address,
                          db="dask.sqlite")
    assert result.exit_code == 0, result.stderr
    assert slots(tmp_path / "local.sqlite") == slots(tmp_path / "dask.sqlite")
    assert boots_by_slot(tmp_path / "local.sqlite") == boots_by_slot(tmp_path / "dask.sqlite")


def test_rerun_runs_only_what_is_missing(run, small, tmp_path):
    first = campaign(run, small, "--hunts", "3", "--strategy", "git", "--workers", "1")
    assert "3 hunts run now (0 kept" in first.stderr
    again = campaign(run, small, "--hunts", "3", "--strategy", "git", "--workers", "1")
    assert "0 hunts run now (3 kept" in again.stderr
    more = campaign(run, small, "--hunts", "5", "--strategy", "git", "--strategy", "retry:k=4",
                    "--workers", "1")
    assert "7 hunts run now (3 kept" in more.stderr
    assert len(slots(tmp_path / "c.sqlite")) == 10
    campaigns = json.loads(run("query", "campaigns", "--db", "c.sqlite", "--format",
                               "json").stdout)
    assert len(campaigns) == 1 and campaigns[0]["hunts"] == 5
    assert campaigns[0]["strategies"] == "git retry:k=4"


def test_a_campaign_begun_before_an_option_existed_goes_on_after_it(run, small, tmp_path):
    """Its hunts logged every option of their day; an option added since takes the value they
    ran with (its legacy value), so the same lane keeps them rather than running them again."""
    campaign(run, small, "--hunts", "2", "--strategy", "bayes", "--workers", "1")
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        for hunt_id, label in con.execute("SELECT id, campaign_label FROM hunts").fetchall():
            strategy, _, options = label.partition(":")
            older = {k: v for k, v in json.loads(options).items() if k != "plan_quantile"}
            con.execute("UPDATE hunts SET campaign_label = ? WHERE id = ?",
                        (f"{strategy}:{json.dumps(older, sort_keys=True)}", hunt_id))
        spec = json.loads(con.execute("SELECT spec FROM campaigns").fetchone()[0])
        for lane in spec["lanes"]:
            del lane["options"]["plan_quantile"]
        con.execute("UPDATE campaigns SET spec = ?", (json.dumps(spec),))
    again = campaign(run, small, "--hunts", "3", "--strategy", "bayes", "--workers", "1")
    assert "1 hunt run now (2 kept" in again.stderr
    assert len(slots(tmp_path / "c.sqlite")) == 3
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        assert len(json.loads(con.execute("SELECT spec FROM campaigns").fetchone()[0])["lanes"]) == 1
    listed = json.loads(run("query", "campaigns", "--db", "c.sqlite", "--format", "json").stdout)
    assert listed[0]["strategies"] == "bayes"
    table = json.loads(run("query", "campaigns", "--db", "c.sqlite", "--campaign", "1",
                           "--format", "json").stdout)
    assert [(row["strategy"], row["hunts"]) for row in table] == [("bayes", 3)]


class StallingExecutor(Executor):
    """Runs the first ``runs`` tasks at once and leaves the rest in flight, as busy workers
    would, so that an interruption always finds hunts to mark."""

    def __init__(self, runs: int):
        self.left = runs

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        if self.left > 0:
            self.left -= 1
            future.set_result(fn(*args, **kwargs))
        return future


@pytest.mark.parametrize("workers", ["stalled", 2])
def test_interrupted_campaign_is_consistent_and_finishes_on_rerun(small, tmp_path, workers):
    """A stop while hunts are in flight marks them interrupted; a rerun finishes the campaign as
    an uninterrupted one. With a real pool, whether any hunt is still in flight at the stop is a
    matter of timing (every claimed hunt may have come back at once), so the stalled executor
    holds two of the eight claimed ones (four never sent to it)."""
    lanes = (Lane("bayes", "bayes", (("boots_per_install", 3),)),)
    spec = CampaignSpec("kernel-400-s3", str(small), "v1.0", "v1.1", lanes, hunts=8, seed=5, rigs=2,
                        adapters=30)

    def stop_after_two(done: int, total: int) -> None:
        if done >= 2:
            raise KeyboardInterrupt

    with Store(f"sqlite:///{tmp_path / 'cut.sqlite'}") as store:
        executor, queue = (StallingExecutor(2), 4) if workers == "stalled" else local_executor(2)
        with pytest.raises(CampaignInterrupted) as stopped:
            run_campaign(spec, store, executor, queue, on_hunt=stop_after_two)
        executor.shutdown(cancel_futures=True)
        statuses = [h["status"] for h in store.hunts()]
        done = len([s for s in statuses if s != "interrupted"])
        assert f"{done} hunts kept, {statuses.count('interrupted')} marked interrupted" in str(
            stopped.value)
        assert "running" not in statuses and done >= 2
        if workers == "stalled":
            assert statuses.count("interrupted") == 6 and done == 2
        finished = run_campaign(spec, store)
        assert (finished.ran, finished.kept) == (8 - done, done)
    with Store(f"sqlite:///{tmp_path / 'clean.sqlite'}") as store:
        run_campaign(spec, store)
    assert slots(tmp_path / "cut.sqlite") == slots(tmp_path / "clean.sqlite")
    assert boots_by_slot(tmp_path / "cut.sqlite") == boots_by_slot(tmp_path / "clean.sqlite")


def test_replay_hunt_identical_for_bisect_and_campaign_hunts(run, small, tmp_path):
    bisected = run("bisect", "v1.0", "v1.1", "--history", str(small), "--seed", "11",
                   "--rigs", "2", "--boots-per-install", "2", "--db", "c.sqlite", "-q")
    assert bisected.exit_code in (0, 1), bisected.stderr
    assert campaign(run, small, "--hunts", "2", "--strategy", "bayes", "--strategy", "retry:k=3",
                    "--workers", "1").exit_code == 0
    for hunt_id in range(1, 6):
        result = run("replay", "hunt", str(hunt_id), "--db", "c.sqlite")
        assert result.exit_code == 0, result.stdout
        assert result.stdout.startswith(f"hunt {hunt_id}: identical (")


def test_replay_hunt_reports_a_changed_boot_at_its_step(run, small, tmp_path):
    run("bisect", "v1.0", "v1.1", "--history", str(small), "--seed", "11", "--db", "c.sqlite",
        "-q")
    shutil.copy(tmp_path / "c.sqlite", tmp_path / "copy.sqlite")
    with sqlite3.connect(tmp_path / "copy.sqlite") as con:
        seq, boot_id, test_id = con.execute(
            "SELECT t.seq, b.id, t.id FROM boots b JOIN tests t ON b.test_id = t.id "
            "WHERE b.bricked = 0 ORDER BY t.seq, b.id LIMIT 1 OFFSET 4").fetchone()
        (position,) = con.execute("SELECT count(*) FROM boots WHERE test_id = ? AND id <= ?",
                                  (test_id, boot_id)).fetchone()
        con.execute("UPDATE boots SET bricked = 1 WHERE id = ?", (boot_id,))
    result = run("replay", "hunt", "1", "--db", "copy.sqlite")
    assert result.exit_code == 1
    assert result.stdout.strip() == (f"hunt 1: diverges at test {seq}: boot {position}: logged "
                                     "bricked=True, replay bricked=False")
    assert run("replay", "hunt", "1", "--db", "c.sqlite").exit_code == 0


def test_plots_are_written(run, small, tmp_path):
    result = campaign(run, small, "--hunts", "3", "--strategy", "git", "--strategy", "bayes",
                      "--workers", "1", "--plot", "camp.png")
    assert result.exit_code == 0, result.stderr
    drawn = run("report", "4", "--plot", "hunt.png", "--db", "c.sqlite")
    assert drawn.exit_code == 0, drawn.stderr
    assert drawn.stdout.startswith("hunt 4: kernel-400-s3 v1.0..v1.1, bayes")
    for name in ("camp.png", "hunt.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 20_000


def test_a_plot_replaces_an_earlier_plot_but_never_the_database_or_another_file(
        run, small, tmp_path):
    assert run("bisect", "v1.0", "v1.1", "--history", str(small), "--strategy", "git",
               "--db", "r.png", "-q").exit_code == 0
    database = (tmp_path / "r.png").read_bytes()
    (tmp_path / "notes.png").write_text("not a picture\n")
    for args, message in [
        (("report", "1", "--db", "r.png", "--plot", "r.png"),
         "error: cannot write plot r.png: it is the results database"),
        (("report", "1", "--db", "r.png", "--plot", "notes.png"),
         "error: notes.png exists and is not a PNG image: a plot replaces only an earlier plot"),
        (("replay", "campaign", "--history", str(small), "--hunts", "1", "--strategy", "git",
          "--workers", "1", "-q", "--db", "new.png", "--plot", "new.png"),
         "error: cannot write plot new.png: it is the results database"),
    ]:
        result = run(*args)
        assert (result.exit_code, result.stderr.strip()) == (2, message)
    assert (tmp_path / "r.png").read_bytes() == database
    assert (tmp_path / "notes.png").read_text() == "not a picture\n"
    assert not (tmp_path / "new.png").exists()  # refused before the campaign made its database
    for _ in range(2):  # an earlier plot is replaced
        drawn = run("report", "1", "--db", "r.png", "--plot", "hunt.png")
        assert drawn.exit_code == 0, drawn.stderr
    assert (tmp_path / "hunt.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("args, message", [
    (("replay", "hunt", "7"), "error: no hunt 7 in bisectlab.sqlite"),
    (("query", "tests", "--hunt", "42"), "error: no hunt 42 in bisectlab.sqlite"),
    (("query", "hunts", "--db", "://nothing"),
     "error: bad database URL: '://nothing' (for an SQLite file use sqlite:///PATH)"),
    (("replay", "intel-lab", "--strategy", "bayes", "--strategy", "bayes:caution=0.5"),
     "error: the same strategy is asked for twice (bayes:caution=0.5)"),
    (("replay", "intel-lab", "--retries", "3"),
     "error: --retries is set by every strategy that takes it (retry:k=10)"),
    (("query", "hunts", "--db", "typo.sqlite"),
     "error: no results database at typo.sqlite (give --db, or run a hunt first)"),
    (("query", "hunts", "--test", "5"), "error: --test goes with 'boots'"),
    (("history", "generate", "--commits", "50", "--seed", "1", "-o", "no/dir/x.toml"),
     "error: cannot write no/dir/x.toml: No such file or directory"),
    (("history", "generate", "--commits", "50", "--seed", "1", "-o", "k400.toml"),
     "error: k400.toml exists and differs (hunts logged with it replay from it); "
     "pass --force to replace it"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "git", "--retries", "3"),
     "error: --retries is not an option of git"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "retry:k=2,k=3"),
     "error: option 'k' is given twice in 'retry:k=2,k=3'"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "bayes:"),
     "error: an empty strategy option in 'bayes:' (write NAME or NAME:key=value,...)"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "retry:k=3,"),
     "error: an empty strategy option in 'retry:k=3,' (write NAME or NAME:key=value,...)"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "retry:=3"),
     "error: bad strategy option '=3' in 'retry:=3' (write key=value)"),
    (("report", "7"), "error: no hunt 7 in bisectlab.sqlite"),
    (("replay", "campaign", "v1.0", "--history", "k400.toml"),
     "error: give both GOOD and BAD, or neither"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "nope"),
     "error: unknown strategy 'nope' (known: bayes, git, retry)"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "git", "--strategy", "git"),
     "error: the same strategy is asked for twice (git)"),
    (("replay", "campaign", "--history", "k400.toml", "--plot", "no/such/dir.png"),
     "error: cannot write plot no/such/dir.png: directory no/such does not exist"),
    (("replay", "intel-lab", "--plot", "out.pdf"), "error: plot file must end in .png: out.pdf"),
    (("replay", "campaign", "--history", "k400.toml", "--plot", "/proc/x.png"),
     "error: cannot write plot /proc/x.png: No such file or directory"),  # before any hunt
    (("query", "campaigns", "--campaign", "3"), "error: no campaign 3 in bisectlab.sqlite"),
    (("query", "hunts", "--campaign", "3"), "error: no campaign 3 in bisectlab.sqlite"),
    (("query", "tests", "--campaign", "3"), "error: --campaign goes with 'hunts' or 'campaigns'"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "retry:k=0"),
     "error: option k in 'retry:k=0' must be in [1, 10000], not 0"),
    (("replay", "campaign", "--history", "k400.toml", "--strategy", "bayes:k=3"),
     "error: strategy bayes takes no option 'k' (bayes takes: confidence, detect, "
     "false-positive, cost-weight, boots-per-install, deterministic-mass, caution, "
     "detect-prior, weight, p-quantile, plan-quantile)"),
    (("replay", "campaign", "--history", "k400.toml", "--swap-minutes", "nan"),
     "error: Invalid value for '--swap-minutes': must be in [0, 10000000], not nan"),
    (("replay", "intel-lab", "--scheduler", "foo"),
     "error: cannot reach the Dask scheduler at foo: missing port number in address 'foo'"),
])
def test_bad_input_is_one_line_and_writes_nothing(run, small, tmp_path, args, message):
    Store(f"sqlite:///{tmp_path / 'bisectlab.sqlite'}").close()  # an empty results database
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run(*args)
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    after = sorted(p.name for p in tmp_path.iterdir())
    assert [p for p in after if p not in before and not p.startswith("bisectlab.sqlite")] == []
    if (tmp_path / "bisectlab.sqlite").exists():
        with sqlite3.connect(tmp_path / "bisectlab.sqlite") as con:
            assert con.execute("SELECT count(*) FROM hunts").fetchone() == (0,)


def test_claims_of_dead_processes_are_run_again_others_are_left(run, small, tmp_path):
    import socket
    import subprocess

    assert campaign(run, small, "--hunts", "3", "--strategy", "git", "--workers", "1").exit_code == 0
    dead = subprocess.Popen(["true"])
    dead.wait()
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        con.execute("UPDATE hunts SET status = 'running', claimed_by = ? WHERE id = 1",
                    (f"{socket.gethostname()}:{dead.pid}",))
        con.execute("UPDATE hunts SET status = 'running', claimed_by = 'elsewhere:1' WHERE id = 2")
    again = campaign(run, small, "--hunts", "3", "--strategy", "git", "--workers", "1")
    assert "1 hunt run now (1 kept" in again.stderr
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        rows = con.execute("SELECT campaign_index, status FROM hunts ORDER BY campaign_index")
        assert rows.fetchall() == [(0, "found"), (1, "running"), (2, "found")]
    reclaimed = campaign(run, small, "--hunts", "3", "--strategy", "git", "--workers", "1",
                         "--reclaim")
    assert "1 hunt run now (2 kept" in reclaimed.stderr
    assert slots(tmp_path / "c.sqlite")[1][3] == "found"


@pytest.mark.parametrize("how", ["ctrl-c", "killed worker"])
def test_a_stopped_campaign_process_keeps_a_consistent_database(run, small, tmp_path, how,
                                                                start_cli, writes_held_from):
    import os
    import signal

    psutil = pytest.importorskip("psutil")
    args = ["replay", "campaign", "--history", str(small), "--hunts", "80", "--strategy",
            "bayes", "--workers", "2", "--rigs", "2", "--db", "c.sqlite", "-q"]
    proc = start_cli(*args, cwd=tmp_path)
    finished = "SELECT count(*) FROM hunts WHERE status NOT IN ('running', 'interrupted')"
    with writes_held_from(tmp_path / "c.sqlite", finished, 3, proc):  # it cannot end first
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            psutil.Process(proc.pid).children()[0].kill()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if how == "ctrl-c" else 1), err
    said = ("campaign 1 stopped (interrupted" if how == "ctrl-c"   # no "error:", as a hunt
            else "error: campaign 1 stopped (BrokenProcessPool")
    assert err.strip().startswith(said)
    assert err.strip().endswith("run the same command again to finish it")
    assert "Traceback" not in err
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        statuses = dict(con.execute("SELECT status, count(*) FROM hunts GROUP BY status"))
        orphans = con.execute("SELECT count(*) FROM tests t WHERE NOT EXISTS "
                              "(SELECT 1 FROM hunts h WHERE h.id = t.hunt_id)").fetchone()[0]
        half_written = con.execute("SELECT count(*) FROM hunts h WHERE status = 'interrupted' "
                                   "AND EXISTS (SELECT 1 FROM tests t WHERE t.hunt_id = h.id)")
        assert half_written.fetchone()[0] == 0
    # none if the stop came while every hunt claimed was written (a worker killed mid-claim)
    marked = statuses.get("interrupted", 0)
    assert "running" not in statuses and f"hunts kept, {marked} marked interrupted;" in err
    assert statuses.get("found", 0) + statuses.get("aborted", 0) >= 3 and orphans == 0
    kept = statuses.get("found", 0) + statuses.get("aborted", 0)
    finish = run(*args[:-1], "--workers", "1", "-q")
    assert finish.exit_code == 0, finish.stderr + finish.stdout
    assert f"{80 - kept} hunts run now ({kept} kept" in finish.stderr
    clean = [*args[:-3], "--db", "clean.sqlite", "-q"]
    assert run(*clean).exit_code == 0
    assert slots(tmp_path / "c.sqlite") == slots(tmp_path / "clean.sqlite")


def test_four_processes_share_one_campaign_in_postgresql(run, small, tmp_path, postgres_url,
                                                         start_cli):
    """Four campaign processes on one PostgreSQL database: every slot run exactly once, none
    lost and none twice, the hunts those of one process alone."""
    args = ["replay", "campaign", "--history", str(small), "--hunts", "40", "--strategy", "git",
            "--strategy", "bayes:boots-per-install=2", "--workers", "1", "--rigs", "2",
            "--adapters", "30", "--db", postgres_url, "-q"]
    procs = [start_cli(*args, cwd=tmp_path) for _ in range(4)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errs
    ran = [int(err.split(" hunts run now")[0].split()[-1]) for err in errs]
    assert sum(ran) == 80 and sorted(ran)[-2] > 0, errs  # shared, and run once in all
    with Store(postgres_url) as store:
        rows = store.campaign_hunts(1)
        tests = store.tests()
    assert len(rows) == 80 and {r["status"] for r in rows} <= {"found", "aborted"}
    assert len({(r["campaign_label"], r["campaign_index"]) for r in rows}) == 80
    assert sorted({t["hunt_id"] for t in tests}) == sorted(r["id"] for r in rows)
    assert len(tests) == sum(r["tests"] for r in rows)
    assert campaign(run, small, "--hunts", "40", "--strategy", "git", "--strategy",
                    "bayes:boots-per-install=2", "--workers", "1").exit_code == 0
    shared = sorted(tuple(r[c] for c in SLOT_COLUMNS) for r in rows)
    assert shared == sorted(slots(tmp_path / "c.sqlite"))


def test_a_campaign_hunt_is_logged_like_the_same_bisect(run, small, tmp_path):
    assert campaign(run, small, "--hunts", "1", "--strategy", "bayes", "--workers", "1").exit_code == 0
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        (seed,) = con.execute("SELECT seed FROM hunts").fetchone()
    run("bisect", "v1.0", "v1.1", "--history", str(small), "--seed", str(seed), "--rigs", "2",
        "--adapters", "30", "--db", "c.sqlite", "-q")
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        def logged(hunt_id: int) -> tuple:
            hunt = con.execute("SELECT status, culprit_sha, tests, boots, installs, adapters, "
                               "lab_minutes, seed, params FROM hunts WHERE id = ?",
                               (hunt_id,)).fetchone()
            tests = con.execute("SELECT seq, commit_sha, rig, boots, failures, failed, "
                                "adapters_destroyed, lab_minutes FROM tests WHERE hunt_id = ? "
                                "ORDER BY seq", (hunt_id,)).fetchall()
            boots = con.execute("SELECT t.seq, b.attempt, b.seed, b.bricked, b.stray_write, "
                                "b.adapter_serial FROM boots b JOIN tests t ON b.test_id = t.id "
                                "WHERE t.hunt_id = ? ORDER BY 1, 2", (hunt_id,)).fetchall()
            adapters = con.execute("SELECT a.serial, a.state, a.rig, t.seq, a.destroyed_at_boot "
                                   "FROM adapters a LEFT JOIN tests t ON "
                                   "a.destroyed_by_test_id = t.id WHERE a.hunt_id = ? "
                                   "ORDER BY a.serial", (hunt_id,)).fetchall()
            return hunt, tests, boots, adapters

        from_campaign, from_bisect = logged(1), logged(2)
    assert from_campaign == from_bisect
    assert from_bisect[0][5] > 0 and len(from_bisect[3]) == 30


def test_replay_refuses_what_it_cannot_rebuild(run, small, tmp_path):
    run("bisect", "v1.0", "v1.1", "--history", str(small), "--seed", "2", "--strategy", "git",
        "--db", "c.sqlite", "-q")
    run("bisect", "v1.0", "v1.1", "--history", str(small), "--seed", "3", "--strategy", "git",
        "--db", "c.sqlite", "-q")
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        params = json.loads(con.execute("SELECT params FROM hunts WHERE id = 1").fetchone()[0])
        del params["strategy_options"]
        con.execute("UPDATE hunts SET params = ? WHERE id = 1", (json.dumps(params),))
    old = run("replay", "hunt", "1", "--db", "c.sqlite")
    assert old.exit_code == 2
    assert old.stderr == ("error: hunt 1 was logged without its strategy options (by an older "
                          "bisectlab); it cannot be replayed\n")
    small.rename(tmp_path / "moved.toml")
    moved = run("replay", "hunt", "2", "--db", "c.sqlite")
    assert moved.exit_code == 2 and moved.stderr == f"error: history file not found: {small}\n"


@pytest.mark.parametrize("change, reported", [
    ("UPDATE boots SET stray_write = NOT stray_write WHERE id = 1", "diverges at test 1: boot 1: "
     "logged stray_write="),
    ("UPDATE tests SET lab_minutes = lab_minutes + 1 WHERE seq = 2", "diverges at test 2: logged "
     "lab_minutes="),
    ("UPDATE hunts SET confidence = 0.5", ": same tests, but verdict confidence "),
])
def test_replay_hunt_compares_every_logged_number(run, small, tmp_path, change, reported):
    run("bisect", "v1.0", "v1.1", "--history", str(small), "--seed", "11", "--db", "c.sqlite",
        "-q")
    with sqlite3.connect(tmp_path / "c.sqlite") as con:
        con.execute(change)
    result = run("replay", "hunt", "1", "--db", "c.sqlite")
    assert result.exit_code == 1 and reported in result.stdout


def test_a_relative_history_is_logged_as_an_absolute_path(run, small, tmp_path):
    result = run("replay", "campaign", "--history", "k400.toml", "--hunts", "1", "--strategy",
                 "git", "--workers", "1", "--db", "c.sqlite", "-q")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(run("query", "campaigns", "--db", "c.sqlite", "--format", "json").stdout)
    with Store(f"sqlite:///{tmp_path / 'c.sqlite'}") as store:
        (logged,) = store.campaigns()
    assert logged["spec"]["history"] == str(small) and Path(str(small)).is_absolute()
    assert row["id"] == 1


def test_a_history_file_is_known_by_where_it_is_and_its_version(tmp_path, monkeypatch):
    """One process, two folders, one relative name: each folder's own file; an edited file is
    read again (a Dask worker runs many campaigns)."""
    from bisectlab.summary import generated_recipe

    for folder, commits in (("a", 60), ("b", 80)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "k.toml").write_text(generated_recipe(commits, 1, None, "rate",
                                                                    0.5, 0.0))
    seen = []
    for folder in ("a", "b", "a"):
        monkeypatch.chdir(tmp_path / folder)
        h = cached_history("k.toml")
        good, bad = h.advertised[0]
        space = known_range(history_key("k.toml"), good, bad, "i386").space
        seen.append((h.source, len(h.shas), space.commits.max()))
    assert seen[0] == seen[2] and seen[0][0] != seen[1][0]
    assert seen[0][1] < seen[1][1] and seen[0][2] < seen[0][1] <= seen[1][2]
    edited = tmp_path / "a" / "k.toml"  # a longer file: a new version even within a tick
    edited.write_text(generated_recipe(120, 1, None, "rate", 0.5, 0.0))
    first = cached_history(str(edited))
    assert len(first.shas) > seen[0][1]
    before = edited.stat()  # the same length, the modification time put back (cp -p, rsync -t)
    edited.write_text(generated_recipe(120, 2, None, "rate", 0.5, 0.0))
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (edited.stat().st_size, edited.stat().st_mtime_ns) == (before.st_size,
                                                                  before.st_mtime_ns)
    again = cached_history(str(edited))
    assert again.shas != first.shas and again.shas == load_history(str(edited)).shas


def test_lanes_told_apart_by_flags_keep_their_own_rows(run, small):
    for extra in ([], ["--retries", "3"]):
        result = run("replay", "campaign", "--history", str(small), "--hunts", "2",
                     "--strategy", "retry", "--workers", "1", "-q", *extra)
        assert result.exit_code == 0, result.stderr
    table = json.loads(run("query", "campaigns", "--campaign", "1", "--format", "json").stdout)
    assert [row["strategy"] for row in table] == ["retry", "retry:k=3"]
    assert all(row["hunts"] == 2 for row in table)
    assert table[0]["boots_mean"] != table[1]["boots_mean"]


def test_a_flag_of_one_strategy_goes_to_its_lanes_and_not_to_the_others(run, small):
    """`--plan-quantile 0.1` (bayes' flag) beside a git lane: bayes takes it, git runs as it is
    (it ended in a StopIteration traceback, the flag looked up among git's options)."""
    result = run("replay", "campaign", "--history", str(small), "--hunts", "1", "--strategy",
                 "git", "--strategy", "bayes", "--plan-quantile", "0.1", "--workers", "1", "-q")
    assert result.exit_code == 0, result.stderr
    table = json.loads(run("query", "campaigns", "--campaign", "1", "--format", "json").stdout)
    assert [row["strategy"] for row in table] == ["git", "bayes:plan-quantile=0.1"]


def test_query_hunts_names_each_campaign_hunts_options(run, small):
    """Every lane of a campaign is 'bayes' in the strategy column: the options column tells the
    lanes apart (the table showed no difference between bayes and bayes:boots-per-install=5)."""
    result = run("replay", "campaign", "--history", str(small), "--hunts", "1", "--strategy",
                 "bayes", "--strategy", "bayes:boots-per-install=5", "--strategy", "retry:k=3",
                 "--workers", "1", "-q")
    assert result.exit_code == 0, result.stderr
    hunts = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert [(h["strategy"], h["options"]) for h in hunts] == [
        ("bayes", ""), ("bayes", "boots-per-install=5"), ("retry", "k=3")]
    assert "boots-per-install=5" in run("query", "hunts").stdout
    with sqlite3.connect("bisectlab.sqlite") as con:  # a hunt logged before options were
        params = json.loads(con.execute("SELECT params FROM hunts WHERE id = 2").fetchone()[0])
        del params["strategy_options"]
        con.execute("UPDATE hunts SET params = ? WHERE id = 2", (json.dumps(params),))
    hunts = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert [h["options"] for h in hunts] == ["", "?", "k=3"]  # not made up from today's defaults
