"""The results database: round trips, schema versioning, and refusing what is not ours."""

import re
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from bisectlab.errors import StoreError
from bisectlab.store import (
    DEFAULT_DB_FILE,
    SCHEMA_HEAD,
    Base,
    Store,
    alembic_config,
    default_url,
    migrations_dir,
)

A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40
BIG = 2**64 - 1  # a boot seed above the signed 64-bit range


@pytest.fixture
def url(tmp_path):
    """A fresh SQLite database URL under tmp_path."""
    return f"sqlite:///{tmp_path / 'lab.sqlite'}"


@pytest.fixture
def store(url):
    """An open store on a fresh database."""
    with Store(url) as s:
        yield s


def start(store, **over):
    """Start a hunt with a box of three adapters."""
    kw = dict(
        history="2.6.27",
        history_source="builtin:2.6.27",
        good="v2.6.26",
        bad="v2.6.27",
        good_sha=A,
        bad_sha=B,
        strategy="bayes",
        params={"confidence": 0.99, "rigs": 2, "boots": [1, 3]},
        seed=7,
        true_culprit_sha=C,
        adapter_serials=["E1", "E2", "E3"],
    )
    return store.start_hunt(**(kw | over))


def boot(attempt, seed, bricked=False, serial="E1", stray=False):
    """A boot dict as the lab hands it over."""
    return dict(
        attempt=attempt, seed=seed, bricked=bricked, stray_write=stray, adapter_serial=serial
    )


def record(store, hunt_id, seq=1, **over):
    """Record a passing two-boot test on rig-a."""
    kw = dict(
        seq=seq,
        commit_sha=D,
        commit_subject="net: e1000e: probe",
        rig="rig-a",
        boots=[boot(1, 11), boot(2, 12)],
        failed=False,
        adapters_destroyed=[],
        lab_minutes=30.0,
    )
    return store.record_test(hunt_id, **(kw | over))


def test_round_trip(store):
    hunt_id = start(store)
    t1 = record(store, hunt_id)
    t2 = record(
        store,
        hunt_id,
        seq=2,
        commit_sha=C,
        commit_subject="ftrace: dynamic mcount patching",
        rig="rig-b",
        boots=[boot(1, 21, serial="E2"), boot(2, BIG, bricked=True, serial="E2", stray=True)],
        failed=True,
        adapters_destroyed=["E2"],
        lab_minutes=42.5,
    )
    store.finish_hunt(
        hunt_id,
        status="found",
        culprit_sha=C,
        culprit_subject="ftrace: dynamic mcount patching",
        confidence=0.995,
        correct=True,
        note="first bad commit",
    )

    hunt = store.hunt(hunt_id)
    assert datetime.fromisoformat(hunt.pop("created_at")).tzinfo is not None
    assert datetime.fromisoformat(hunt.pop("finished_at")) >= datetime.fromisoformat(
        store.tests(hunt_id)[0]["created_at"]
    )
    assert hunt == {
        "id": hunt_id,
        "history": "2.6.27",
        "history_source": "builtin:2.6.27",
        "good": "v2.6.26",
        "bad": "v2.6.27",
        "good_sha": A,
        "bad_sha": B,
        "strategy": "bayes",
        "params": {"confidence": 0.99, "rigs": 2, "boots": [1, 3]},
        "seed": 7,
        "status": "found",
        "culprit_sha": C,
        "culprit_subject": "ftrace: dynamic mcount patching",
        "confidence": 0.995,
        "true_culprit_sha": C,
        "correct": True,
        "tests": 2,
        "boots": 4,
        "installs": 2,
        "adapters": 1,
        "lab_minutes": 72.5,
        "campaign_id": None,
        "note": "first bad commit",
        "campaign_label": None,
        "campaign_index": None,
        "claimed_by": None,
        "bottomless_box": False,
    }
    assert [h["id"] for h in store.hunts()] == [hunt_id]

    tests = store.tests(hunt_id)
    assert all(isinstance(t.pop("created_at"), str) for t in tests)
    assert tests == [
        {
            "id": t1,
            "hunt_id": hunt_id,
            "seq": 1,
            "commit_sha": D,
            "commit_subject": "net: e1000e: probe",
            "rig": "rig-a",
            "boots": 2,
            "failures": 0,
            "failed": False,
            "adapters_destroyed": 0,
            "lab_minutes": 30.0,
            "installed": True,
            "skipped": False,
            "note": "",
            "destroyed_serials": "",
        },
        {
            "id": t2,
            "hunt_id": hunt_id,
            "seq": 2,
            "commit_sha": C,
            "commit_subject": "ftrace: dynamic mcount patching",
            "rig": "rig-b",
            "boots": 2,
            "failures": 1,
            "failed": True,
            "adapters_destroyed": 1,
            "lab_minutes": 42.5,
            "installed": True,
            "skipped": False,
            "note": "",
            "destroyed_serials": "E2",
        },
    ]
    assert [t["id"] for t in store.tests()] == [t1, t2]

    assert store.boots(t2) == [
        {
            "id": 3,
            "test_id": t2,
            "attempt": 1,
            "seed": 21,
            "bricked": False,
            "stray_write": False,
            "adapter_serial": "E2",
            "exit_status": None,
            "seconds": None,
            "output": None,
        },
        {
            "id": 4,
            "test_id": t2,
            "attempt": 2,
            "seed": BIG,
            "bricked": True,
            "stray_write": True,
            "adapter_serial": "E2",
            "exit_status": None,
            "seconds": None,
            "output": None,
        },
    ]
    assert store.adapters(hunt_id) == [
        {
            "id": 1,
            "hunt_id": hunt_id,
            "serial": "E1",
            "state": "in_use",
            "rig": "rig-a",
            "destroyed_by_test_id": None,
            "destroyed_at_boot": None,
        },
        {
            "id": 2,
            "hunt_id": hunt_id,
            "serial": "E2",
            "state": "destroyed",
            "rig": "rig-b",
            "destroyed_by_test_id": t2,
            "destroyed_at_boot": 2,
        },
        {
            "id": 3,
            "hunt_id": hunt_id,
            "serial": "E3",
            "state": "spare",
            "rig": None,
            "destroyed_by_test_id": None,
            "destroyed_at_boot": None,
        },
    ]


def test_filters_by_hunt_and_campaign(store):
    first, second = start(store), start(store, campaign_id=3, adapter_serials=["E1"])
    record(store, first)
    record(store, second)
    assert [t["hunt_id"] for t in store.tests(second)] == [second]
    assert [a["serial"] for a in store.adapters(second)] == ["E1"]
    assert len(store.adapters()) == 4
    assert [h["campaign_id"] for h in store.hunts()] == [None, 3]


@pytest.mark.parametrize("seed", [0, 2**63 - 1, 2**63, BIG])
def test_unsigned_64_bit_seeds_round_trip(store, seed):
    hunt_id = start(store, seed=seed)
    test_id = record(store, hunt_id, boots=[boot(1, seed)])
    assert store.hunt(hunt_id)["seed"] == seed
    assert store.boots(test_id)[0]["seed"] == seed


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True])
def test_seed_out_of_range_refused(store, seed):
    with pytest.raises(StoreError, match="unsigned 64-bit"):
        start(store, seed=seed)
    assert store.hunts() == []


def test_record_test_is_one_transaction(store):
    hunt_id = start(store)
    with pytest.raises(StoreError, match="adapter E9 is not in hunt 1"):
        record(store, hunt_id, boots=[boot(1, 5, True, "E9")], adapters_destroyed=["E9"])
    assert store.tests() == []
    assert store.hunt(hunt_id)["tests"] == 0
    assert all(a["state"] == "spare" for a in store.adapters(hunt_id))


def test_refuses_bad_writes(store):
    hunt_id = start(store)
    record(store, hunt_id, boots=[boot(1, 5, True)], adapters_destroyed=["E1"])
    with pytest.raises(StoreError, match="already destroyed"):
        record(store, hunt_id, seq=2, adapters_destroyed=["E1"])
    with pytest.raises(StoreError, match="test 1 of hunt 1 was logged by another process"):
        record(store, hunt_id, seq=1)
    with pytest.raises(StoreError, match="lacks seed"):
        record(store, hunt_id, seq=2, boots=[{"attempt": 1}])
    with pytest.raises(StoreError, match="cannot finish as 'running'"):
        store.finish_hunt(
            hunt_id, status="running", culprit_sha=None, culprit_subject=None,
            confidence=None, correct=None, note="",
        )  # fmt: skip
    with pytest.raises(StoreError, match="duplicate adapter serials"):
        start(store, adapter_serials=["E1", "E1"])
    assert store.hunt(hunt_id)["tests"] == 1


def test_missing_ids(store):
    assert store.where.endswith(".sqlite")  # the file, as the user gave it, not a word for it
    with pytest.raises(StoreError, match="^no hunt 9 in " + re.escape(store.where) + "$"):
        store.hunt(9)
    with pytest.raises(StoreError, match="^no hunt 9 in " + re.escape(store.where) + "$"):
        store.tests(9)
    with pytest.raises(StoreError, match="^no hunt 9 in " + re.escape(store.where) + "$"):
        store.adapters(9)
    with pytest.raises(StoreError, match="^no hunt 9 in " + re.escape(store.where) + "$"):
        record(store, 9)
    with pytest.raises(StoreError, match="^no test 9 in " + re.escape(store.where) + "$"):
        store.boots(9)
    assert store.hunts() == [] and store.tests() == [] and store.adapters() == []


def test_reopen_keeps_data_and_schema(url, tmp_path):
    with Store(url) as first:
        hunt_id = start(first)
        record(first, hunt_id)
    with Store(url) as again:
        assert again.hunt(hunt_id)["tests"] == 1
        assert len(again.tests(hunt_id)) == 1
    db = sqlite3.connect(tmp_path / "lab.sqlite")
    try:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_HEAD,)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        db.close()


def test_empty_file_becomes_a_database(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    with Store(f"sqlite:///{path}") as s:
        assert s.hunts() == []
    assert path.read_bytes().startswith(b"SQLite format 3\x00")


def test_default_url(monkeypatch):
    monkeypatch.delenv("BISECTLAB_DB", raising=False)
    assert default_url() == f"sqlite:///{DEFAULT_DB_FILE}" == "sqlite:///bisectlab.sqlite"
    monkeypatch.setenv("BISECTLAB_DB", "postgresql://lab@db/bisect")
    assert default_url() == "postgresql://lab@db/bisect"


def test_store_uses_default_url(monkeypatch, tmp_path):
    monkeypatch.setenv("BISECTLAB_DB", f"sqlite:///{tmp_path / 'env.sqlite'}")
    with Store() as s:
        start(s)
    assert (tmp_path / "env.sqlite").exists()
    monkeypatch.delenv("BISECTLAB_DB")
    monkeypatch.chdir(tmp_path)
    with Store() as s:
        assert s.hunts() == []
    assert (tmp_path / DEFAULT_DB_FILE).exists()


def test_text_file_refused_and_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    data = b"hunt notes: do not lose these\n" * 100
    path.write_bytes(data)
    with pytest.raises(StoreError) as err:
        Store(f"sqlite:///{path}")
    assert str(err.value) == f"not a bisectlab database: {path} (file is not a database)"
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]


def test_foreign_sqlite_refused_and_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE recipes (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO recipes (name) VALUES ('bread')")
    db.commit()
    db.close()
    data = path.read_bytes()
    with pytest.raises(StoreError) as err:
        Store(f"sqlite:///{path}")
    assert str(err.value) == f"not a bisectlab database: {path} (it has other tables: recipes)"
    assert path.read_bytes() == data


def test_unknown_schema_revision_refused(tmp_path):
    path = tmp_path / "future.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    db.execute("INSERT INTO alembic_version VALUES ('9999')")
    db.execute("CREATE TABLE hunts (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    data = path.read_bytes()
    with pytest.raises(StoreError, match="unknown schema revision '9999'"):
        Store(f"sqlite:///{path}")
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("lab.sqlite", "bad database URL: 'lab.sqlite'"),
        ("nosuchdb://host/x", "bad database URL: nosuchdb://host/x"),
        ("sqlite:////nonexistent-dir/x/lab.sqlite", "cannot create database"),
    ],
)
def test_bad_urls(bad, message):
    with pytest.raises(StoreError, match=message) as err:
        Store(bad)
    assert "\n" not in str(err.value)


def test_directory_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        Store(f"sqlite:///{tmp_path}")


def test_models_match_migration(url):
    Store(url).close()
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_schema_head_constant_is_alembic_head():
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_HEAD
    assert (migrations_dir() / "env.py").is_file()


def test_migration_downgrades_and_upgrades(url, tmp_path):
    Store(url).close()
    cfg = alembic_config(url)
    command.downgrade(cfg, "base")
    db = sqlite3.connect(tmp_path / "lab.sqlite")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"alembic_version"}
    with Store(url) as s:
        assert start(s) == 1


def test_a_0001_database_keeps_its_hunts_when_upgraded(url):
    Store(url).close()
    command.downgrade(alembic_config(url), "0001")
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        assert "campaigns" not in {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    with Store(url) as s:  # opening upgrades to head, then the old hunt is read and extended
        assert start(s) == 1
    command.downgrade(alembic_config(url), "0001")
    with Store(url) as s:
        hunt = s.hunt(1)
        assert hunt["strategy"] == "bayes" and hunt["campaign_label"] is None
        assert s.campaigns() == []


def claim(campaign_id, index, **over):
    """A campaign hunt's claim, as campaign.py makes it."""
    return dict(history="h", history_source="h.toml", good="v1", bad="v2", good_sha=A,
                bad_sha=B, strategy="git", params={}, seed=index, true_culprit_sha=C,
                campaign_id=campaign_id, campaign_label="git:{}", campaign_index=index,
                claimed_by="me:1") | over


def test_campaign_slots_are_claimed_once(store):
    git = {"label": "git", "strategy": "git", "options": {}}
    retry = {"label": "retry:k=4", "strategy": "retry", "options": {"retries": 4}}
    cid = store.open_campaign(name="c", key="k1", spec={"lanes": [git]}, hunts=2)
    assert store.open_campaign(name="c", key="k1", spec={"lanes": [retry]}, hunts=5) == cid
    same = {**retry, "label": "retry:k=4.0"}  # the same lane, spelled otherwise
    assert store.open_campaign(name="c", key="k1", spec={"lanes": [same]}, hunts=3) == cid
    (row,) = store.campaigns()
    assert row["hunts"] == 5 and row["spec"]["lanes"] == [git, retry]
    assert store.claim_hunts([claim(cid, 0), claim(cid, 1)]) == [1, 2]
    assert store.claim_hunts([claim(cid, 1, claimed_by="you:2"), claim(cid, 2)]) == [None, 3]
    assert [h["claimed_by"] for h in store.campaign_hunts(cid)] == ["me:1", "me:1", "me:1"]
    assert store.claim_hunts([claim(cid, 5), claim(cid, 4)]) == [5, 4]  # inserted in slot order
    assert store.interrupt_claims(cid, "me:1", hunt_ids=[4, 2, 99]) == 2  # these only
    assert [h["status"] for h in store.campaign_hunts(cid)] == [
        "running", "interrupted", "running", "interrupted", "running"]
    assert store.interrupt_claims(cid, "me:1") == 3
    store.drop_hunts([1])
    assert [h["status"] for h in store.campaign_hunts(cid)] == ["interrupted"] * 4


def test_a_hunt_stopped_while_it_is_written_keeps_none_of_it(store):
    """Another process may mark a claimed hunt interrupted between a writer's check of its
    status and the verdict (PostgreSQL's READ COMMITTED lets that commit in between): the
    verdict finds no running hunt, and the whole write, tests included, is refused."""
    from sqlalchemy import event

    cid = store.open_campaign(name="c", key="k", spec={"lanes": []}, hunts=1)
    (hid,) = store.claim_hunts([claim(cid, 0)])
    test = dict(seq=1, commit_sha=D, commit_subject="s", rig="rig1", failed=False,
                boots=[boot(1, 5)], adapters_destroyed=[], lab_minutes=3.0)
    verdict = dict(status="found", culprit_sha=D, culprit_subject="s", confidence=None,
                   correct=True, note="n", lab_minutes=3.0)

    def stop_it(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO tests"):  # after the status was read
            cursor.execute("UPDATE hunts SET status = 'interrupted' WHERE id = ?", (hid,))

    event.listen(store._engine, "before_cursor_execute", stop_it)
    try:
        with pytest.raises(StoreError, match=f"hunt {hid} stopped running while it was written"):
            store.record_hunts([(hid, dict(adapter_serials=["E1"], tests=[test],
                                           verdict=verdict))])
    finally:
        event.remove(store._engine, "before_cursor_execute", stop_it)
    assert store.tests(hid) == [] and store.hunt(hid)["status"] == "running"  # rolled back whole


def test_a_hunt_claimed_by_another_process_since_is_not_written(store):
    """A stopped campaign's worker may still finish a hunt whose row another process has since
    dropped and claimed again (SQLite can give the id back): the write names its claimant and
    is refused for anyone else's claim."""
    cid = store.open_campaign(name="c", key="k", spec={"lanes": []}, hunts=1)
    (hid,) = store.claim_hunts([claim(cid, 0, claimed_by="host:2")])
    outcome = dict(adapter_serials=["E1"], tests=[dict(
        seq=1, commit_sha=D, commit_subject="s", rig="rig1", failed=False, boots=[boot(1, 5)],
        adapters_destroyed=[], lab_minutes=3.0)], verdict=dict(
        status="found", culprit_sha=D, culprit_subject="s", confidence=None, correct=True,
        note="n", lab_minutes=3.0))
    with pytest.raises(StoreError, match=f"hunt {hid} is claimed by host:2, not host:1"):
        store.record_hunts([(hid, outcome)], "host:1")
    assert store.tests(hid) == [] and store.hunt(hid)["status"] == "running"
    store.record_hunts([(hid, outcome)], "host:2")
    assert store.hunt(hid)["status"] == "found" and len(store.tests(hid)) == 1


def test_before_fork_leaves_no_connection_to_inherit(store, url, tmp_path):
    """A pool forks its workers after the store has been used: no file of the database may be
    open in this process then (a child would count SQLite's locks on it as its own)."""
    import os

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to list open files")
    start(store)

    def open_files() -> set[str]:
        return {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}

    database = str((tmp_path / "lab.sqlite").resolve())
    assert database in open_files()
    store.before_fork()
    assert not {f for f in open_files() if f.startswith(database)}
    assert store.hunt(1)["strategy"] == "bayes"  # the next use opens a new connection
    with Store("sqlite://") as memory:  # an in-memory database is its connection: kept
        start(memory)
        memory.before_fork()
        assert memory.hunt(1)["strategy"] == "bayes"
    assert store.reachable_elsewhere and not memory.reachable_elsewhere
    import warnings

    with warnings.catch_warnings():  # SQLAlchemy's about the pool it picks for such a URI
        warnings.simplefilter("ignore", DeprecationWarning)
        with Store("sqlite:///file:lab?mode=memory&cache=shared&uri=true") as shared:
            assert not shared.reachable_elsewhere  # in this process's memory too
    with Store("sqlite:///file::memory:?uri=true") as unnamed:  # SQLite says so, not the URL
        assert not unnamed.reachable_elsewhere


def test_recorded_hunt_refuses_a_finished_or_inconsistent_one(store):
    cid = store.open_campaign(name="c", key="k", spec={"lanes": []}, hunts=1)
    (hid,) = store.claim_hunts([claim(cid, 0)])
    test = dict(seq=1, commit_sha=D, commit_subject="s", rig="rig1", failed=True,
                boots=[boot(1, 5, bricked=True, serial="E9")], adapters_destroyed=["E9"],
                lab_minutes=33.0)
    verdict = dict(status="found", culprit_sha=D, culprit_subject="s", confidence=None,
                   correct=True, note="n", lab_minutes=33.0)
    with pytest.raises(StoreError, match="adapter E9 is not in the hunt's box"):
        store.record_hunts([(hid, dict(adapter_serials=["E1"], tests=[test], verdict=verdict))])
    assert store.tests(hid) == [] and store.hunt(hid)["status"] == "running"
    for field in ("culprit", "hunt"):  # a misspelt field, or the statement's own parameter
        with pytest.raises(StoreError, match=rf"verdict has no field \['{field}'\]"):
            store.record_hunts([(hid, dict(adapter_serials=["E1", "E9"], tests=[test],
                                           verdict={**verdict, field: "x"}))])
    assert store.tests(hid) == [] and store.hunt(hid)["status"] == "running"
    store.record_hunts([(hid, dict(adapter_serials=["E1", "E9"], tests=[test], verdict=verdict))])
    states = {a["serial"]: (a["state"], a["destroyed_at_boot"]) for a in store.adapters(hid)}
    assert states == {"E1": ("spare", None), "E9": ("destroyed", 1)}
    with pytest.raises(StoreError, match="is found, not running"):
        store.record_hunts([(hid, dict(adapter_serials=[], tests=[], verdict=verdict))])
    store.drop_hunts([hid, 999])  # a finished hunt is never dropped; a missing one is skipped
    assert store.hunt(hid)["status"] == "found"


def test_opening_waits_for_a_process_that_holds_the_database(tmp_path, monkeypatch):
    """Switching a new database to WAL needs the file to itself: while another process holds
    it, opening retries (here past a short busy timeout) instead of dying 'database is locked'."""
    import subprocess
    import sys
    import time

    import bisectlab.store as store_module

    path = tmp_path / "held.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE alembic_version (version_num TEXT)")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], "
         "isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); "
         "time.sleep(1.5); print(time.monotonic(), flush=True); c.execute('COMMIT')", str(path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)
    Store(f"sqlite:///{path}").close()
    opened = time.monotonic()  # one clock for both processes (CLOCK_MONOTONIC, Linux)
    released = float(holder.stdout.readline())  # just before the holder let go
    assert opened > released and holder.wait() == 0
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _open_and_log(url: str) -> int:
    with Store(url) as store:
        return store.start_hunt(history="h", history_source="h", good="g", bad="b",
                                good_sha="0" * 40, bad_sha="1" * 40, strategy="git", params={},
                                seed=1, true_culprit_sha=None, adapter_serials=["a", "b"])


def test_processes_creating_one_database_at_once_all_log(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    url = f"sqlite:///{tmp_path / 'many.sqlite'}"
    with ProcessPoolExecutor(8) as pool:
        ids = list(pool.map(_open_and_log, [url] * 16))
    assert sorted(ids) == list(range(1, 17))


def test_a_claim_is_gone_when_its_pid_is_free_or_now_another_processs():
    """A hunt's claim names its host, pid and start: a pid that a later process got (after a
    reboot, or in time) does not keep a stopped hunt 'running' (resume would refuse it)."""
    import os
    import socket
    import subprocess

    from bisectlab.store import process_gone, process_started

    host, alive = socket.gethostname(), os.getppid()
    dead = subprocess.Popen(["true"])
    dead.wait()
    started = process_started(alive)
    if started is None:
        pytest.skip("/proc does not say when a process started")
    assert process_gone(f"{host}:{dead.pid}")
    assert not process_gone(f"{host}:{alive}") and not process_gone(f"{host}:{alive}/{started}")
    assert process_gone(f"{host}:{alive}/{started.split('.')[0]}.1")  # the pid, reused since
    assert process_gone(f"{host}:{alive}/00000000.{started.split('.')[1]}")  # before a reboot
    assert not process_gone(f"elsewhere:{dead.pid}/00000000.1")  # another host's: not told


def test_a_test_logged_twice_by_two_processes_is_one_clear_refusal(store):
    """Two people typing an outcome for the same waiting test at once: the second write is
    refused in words, and the first stays as it was."""
    hunt = start(store)
    first = record(store, hunt, seq=1)
    with pytest.raises(StoreError, match=r"^test 1 of hunt 1 was logged by another process "
                                         r"meanwhile \(two outcomes at once\?\): this one is not$"):
        record(store, hunt, seq=1, failed=True)
    assert [(t["id"], t["failed"]) for t in store.tests(hunt)] == [(first, False)]
    assert store.hunt(hunt)["boots"] == 2


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_hunt_logged_whole_reads_as_one_logged_test_by_test(backend, tmp_path, request):
    """A campaign's hunt goes in one transaction of bulk inserts (the driver's SQL, compiled
    once): its tests, boots (seeds past 2^63, console fields, booleans) and adapters read back
    as the same hunt logged a test at a time."""
    url = (f"sqlite:///{tmp_path / 'w.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("fresh_postgres_url"))
    console = dict(exit_status=1, seconds=2.5, output="panic\n")
    tests = [dict(seq=1, commit_sha=D, commit_subject="net: probe", rig="rig-a", failed=True,
                  boots=[boot(1, BIG), {**boot(2, 2**63, bricked=True, serial="E2"), **console}],
                  adapters_destroyed=["E2"], lab_minutes=36.0, installed=True, skipped=False,
                  note=""),
             dict(seq=2, commit_sha=C, commit_subject="mm: fix", rig="rig-a", failed=False,
                  boots=[boot(1, 0, serial="E1", stray=True)], adapters_destroyed=[],
                  lab_minutes=3.0, installed=False, skipped=False, note="kept its kernel")]
    verdict = dict(status="found", culprit_sha=D, culprit_subject="net: probe",
                   confidence=0.995, correct=True, note="n", lab_minutes=39.0)
    logged = []
    with Store(url) as store:
        cid = store.open_campaign(name="c", key=f"k-{backend}", spec={"lanes": []}, hunts=1)
        (whole,) = store.claim_hunts([claim(cid, 0)])
        store.record_hunts([(whole, dict(adapter_serials=["E1", "E2", "E3"], tests=tests,
                                         verdict=verdict))])
        by_test = start(store, adapter_serials=["E1", "E2", "E3"])
        for test in tests:
            store.record_test(by_test, **test)
        store.finish_hunt(by_test, **{k: v for k, v in verdict.items() if k != "lab_minutes"})
        for hunt_id in (whole, by_test):
            rows = [{k: v for k, v in t.items() if k not in ("id", "hunt_id", "created_at")}
                    for t in store.tests(hunt_id)]
            boots = [{k: v for k, v in b.items() if k not in ("id", "test_id")}
                     for t in store.tests(hunt_id) for b in store.boots(t["id"])]
            adapters = [(a["serial"], a["state"], a["rig"], a["destroyed_at_boot"])
                        for a in store.adapters(hunt_id)]
            logged.append((rows, boots, adapters, store.tests(hunt_id)[0]["created_at"]))
            hunt = store.hunt(hunt_id)
            assert (hunt["tests"], hunt["boots"], hunt["installs"], hunt["adapters"],
                    hunt["lab_minutes"]) == (2, 3, 1, 1, 39.0)
    (rows, boots, adapters, created), (rows2, boots2, adapters2, created2) = logged
    assert rows == rows2 and boots == boots2 and adapters == adapters2
    assert [b["seed"] for b in boots] == [BIG, 2**63, 0]
    assert boots[1]["output"] == "panic\n" and boots[2]["stray_write"] is True
    assert type(created) is type(created2)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bulk_rows_are_stored_as_sqlalchemys_own_insert_stores_them(backend, tmp_path, request):
    """The same rows through SQLAlchemy's executemany (one hunt) and through the driver-SQL
    executemany (another), read back raw: seeds past 2^63, None beside values, aware and
    naive datetimes, text with placeholders in it, a row whose keys come in another order."""
    from datetime import UTC, datetime, timedelta, timezone

    from sqlalchemy import insert

    from bisectlab.store import Boot, LabTest, _insert_many

    url = (f"sqlite:///{tmp_path / 'b.sqlite'}" if backend == "sqlite"
           else request.getfixturevalue("fresh_postgres_url"))
    made = [datetime(2026, 12, 3, 20, 1, 2, 345678, tzinfo=UTC),
            datetime(2026, 12, 3, 20, 1, 2, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2026, 12, 3, 20, 1, 2)]

    def test_rows(hunt_id: int) -> list[dict]:
        rows = [{"hunt_id": hunt_id, "seq": seq, "commit_sha": D, "rig": "rig-a",
                 "commit_subject": "%s and %(a)s, ß", "boots": 2, "failures": seq % 2,
                 "failed": bool(seq % 2), "adapters_destroyed": 0, "lab_minutes": 1.5 * seq,
                 "created_at": made[seq % 3], "installed": seq == 1, "skipped": False,
                 "note": ""} for seq in range(1, 4)]
        rows[1] = dict(reversed(rows[1].items()))
        return rows

    def boot_rows(test_ids: list[int]) -> list[dict]:
        return [{"test_id": test_ids[i % 3], "attempt": i, "seed": seed, "bricked": i % 2 == 0,
                 "stray_write": False, "adapter_serial": None if i % 3 else "E1",
                 "exit_status": None if i % 2 else 1, "seconds": None if i % 2 else 0.25,
                 "output": None if i % 2 else "%(x)s\n"}
                for i, seed in enumerate([None, 0, 2**63 - 1, 2**63, BIG, 2**40])]

    stored = []
    with Store(url) as store:
        for bulk in (False, True):
            hunt_id = start(store)
            with store._connection() as conn:
                def put(table, rows, bulk=bulk, conn=conn):
                    return (_insert_many(conn, table, rows) if bulk
                            else conn.execute(insert(table), rows))
                put(LabTest.__table__, test_rows(hunt_id))
                ids = [r[0] for r in conn.exec_driver_sql(
                    f"SELECT id FROM tests WHERE hunt_id = {hunt_id} ORDER BY seq")]
                put(Boot.__table__, boot_rows(ids))
                tests = conn.exec_driver_sql(f"SELECT * FROM tests WHERE hunt_id = {hunt_id} "
                                             "ORDER BY seq").mappings().all()
                boots = conn.exec_driver_sql(
                    "SELECT * FROM boots WHERE test_id IN "
                    f"({', '.join(map(str, ids))}) ORDER BY attempt").mappings().all()
            stored.append(([{k: v for k, v in r.items() if k not in ("id", "hunt_id")}
                            for r in tests],
                           [{k: v for k, v in r.items() if k not in ("id", "test_id")}
                            for r in boots]))
    assert stored[0] == stored[1]
    assert [b["seed"] for b in stored[1][1]] == [None, 0, 2**63 - 1, 2**63 - 2**64, -1, 2**40]


def test_a_databases_identity_does_not_depend_on_how_its_url_names_it(tmp_path, monkeypatch):
    """A kept worktree's database is the file SQLite opened: the same for a relative path, an
    absolute one and a file: URI; a database in memory is only itself."""
    monkeypatch.chdir(tmp_path)
    spellings = ["sqlite:///same.sqlite", f"sqlite:///{tmp_path / 'same.sqlite'}",
                 f"sqlite:///file:{tmp_path / 'same.sqlite'}?uri=true"]
    identities = set()
    for url in spellings:
        with Store(url) as store:
            identities.add(store.identity)
            assert store.reachable_elsewhere
    assert identities == {f"sqlite:{(tmp_path / 'same.sqlite').resolve()}"}
    with Store("sqlite:///file::memory:?uri=true") as store:
        assert (store.identity, store.reachable_elsewhere) == ("file::memory:", False)
