"""The results database: every hunt, test, boot and adapter (SQLAlchemy 2.0 models).

SQLite by default (a file in the working directory, WAL, busy timeout); any SQLAlchemy URL
otherwise (PostgreSQL for a shared lab: give it a database of its own). The schema is versioned
with alembic; the migrations ship as the package ``bisectlab.migrations`` (db/ in the source tree)
and ``Store`` upgrades a database to head when it opens it.

Durability: SQLite runs in WAL mode with ``synchronous=NORMAL``. Every test of a hunt is its own
transaction, committed before the strategy sees the result, so a process killed at any moment
(kill -9, a crash) loses no committed test: a commit has handed its pages to the operating system
before it returns, and WAL recovery replays them. What NORMAL gives up (against FULL, SQLite's
default) is an fsync per commit, so a power loss or a kernel crash may roll back the last
transactions. A test is logged with prepared Core statements on one connection, not through the
ORM: logging is about a tenth of a simulated hunt's time (`bisectlab perf --targets`).

Seeds (the hunt's and each boot's) are unsigned 64-bit integers. SQL BIGINT is signed, so a seed
is stored as its two's-complement signed value (``seed - 2**64`` when ``seed >= 2**63``) and turned
back on read: lossless, still an integer column, and equal seeds compare equal in SQL. A seed
outside ``0 <= seed < 2**64`` is refused with StoreError.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from inspect import signature
from pathlib import Path
from typing import Any, Self

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    create_engine,
    event,
    false,
    insert,
    inspect,
    select,
    text,
    true,
    update,
)
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from bisectlab.errors import StoreError, clipped

DEFAULT_DB_FILE = "bisectlab.sqlite"
SCHEMA_HEAD = "0003"  # the newest revision in db/versions/ (a test holds this to alembic's head)
HUNT_STATUSES = ("running", "found", "aborted", "inconclusive", "interrupted")
ADAPTER_STATES = ("spare", "in_use", "destroyed")
BOOT_KEYS = ("attempt", "seed", "bricked", "stray_write", "adapter_serial")
CONSOLE_KEYS = ("exit_status", "seconds", "output")  # a real boot's console; None if simulated
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
SQLITE_SYNCHRONOUS = "NORMAL"  # in WAL mode: no fsync per commit; a kill -9 loses no commit
OPEN_TIMEOUT_S = 300.0  # how long opening waits for other processes creating the same database
SCHEMA_LOCK_KEY = 0x6269736563  # PostgreSQL advisory lock held while the schema is upgraded
_U64 = 2**64
_WRITE = "bisectlab_write"  # execution option: this SQLite transaction starts BEGIN IMMEDIATE


RESUMABLE = ("stopped", "interrupted")  # hunt states `bisectlab resume` continues


def claimant() -> str:
    """Who runs a hunt: this host and process, and when the process started (host:pid/start),
    so that a later process given the same pid (in time, or after a reboot) is not taken
    for it."""
    return _claimant(os.getpid())


@functools.cache
def _claimant(pid: int) -> str:
    started = process_started(pid)
    return f"{socket.gethostname()}:{pid}" + (f"/{started}" if started else "")


def process_started(pid: int) -> str | None:
    """When a process of this host started: the boot (the first 8 digits of its id) and the
    clock ticks since it (Linux's /proc; None where it does not say)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return f"{boot}.{fields[19]}" if len(fields) > 19 else None  # field 22, starttime


def process_gone(claimed_by: str | None) -> bool:
    """Whether a claim was made by a process of this host that no longer runs: its pid is free,
    or is now another process's, or is this very process's (its callers, a campaign planning
    its slots, a hunt's state read by another command, never meet a claim of their own that
    still holds). Other hosts' claims cannot be told."""
    claim, _, started = (claimed_by or "").partition("/")
    host, _, pid = claim.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's process
    if started and process_started(int(pid)) not in (None, started):
        return True
    return int(pid) == os.getpid()


def hunt_state(hunt: dict[str, Any]) -> str:
    """A hunt's status as a user should see it: a running hunt whose process is gone is
    'stopped' (`bisectlab resume` continues it)."""
    if hunt["status"] == "running" and process_gone(hunt.get("claimed_by")):
        return "stopped"
    return hunt["status"]


def default_url() -> str:
    """The database URL: $BISECTLAB_DB if set, else bisectlab.sqlite in the working directory."""
    return os.environ.get("BISECTLAB_DB") or f"sqlite:///{DEFAULT_DB_FILE}"


def migrations_dir() -> Path:
    """The directory of alembic's env.py and versions/ (package bisectlab.migrations)."""
    try:
        from importlib.resources import files

        return Path(str(files("bisectlab.migrations")))
    except ModuleNotFoundError:  # a source checkout that is not pip-installed
        return Path(__file__).resolve().parent.parent / "db"


def alembic_config(url: str | None = None) -> Any:
    """An alembic Config for bisectlab's migrations (there is no alembic.ini)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("path_separator", "os")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


class UInt64(TypeDecorator[int]):
    """An unsigned 64-bit integer kept in a signed BIGINT (two's complement)."""

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Any) -> int | None:
        """Unsigned to signed."""
        return value - _U64 if value is not None and value >= 2**63 else value

    def process_result_value(self, value: int | None, dialect: Any) -> int | None:
        """Signed to unsigned."""
        return value + _U64 if value is not None and value < 0 else value


class Base(DeclarativeBase):
    """Declarative base with constraint names alembic can rely on."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def _one_of(column: str, values: Sequence[str]) -> str:
    """SQL for a CHECK that a column holds one of a few strings."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Campaign(Base):
    """Many hunts of one scenario in one lab, strategies side by side (``replay``)."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    name: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[str] = mapped_column(Text)
    hunts: Mapped[int]


class Hunt(Base):
    """One bisection hunt: its range, strategy, verdict and running totals."""

    __tablename__ = "hunts"
    __table_args__ = (
        CheckConstraint(_one_of("status", HUNT_STATUSES), name="status"),
        UniqueConstraint("campaign_id", "campaign_label", "campaign_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    history: Mapped[str] = mapped_column(String(255))
    history_source: Mapped[str] = mapped_column(Text)
    good: Mapped[str] = mapped_column(String(255))
    bad: Mapped[str] = mapped_column(String(255))
    good_sha: Mapped[str] = mapped_column(String(64))
    bad_sha: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(64), index=True)
    params: Mapped[str] = mapped_column(Text)
    seed: Mapped[int] = mapped_column(UInt64)
    status: Mapped[str] = mapped_column(String(16), index=True, default="running")
    culprit_sha: Mapped[str | None] = mapped_column(String(64))
    culprit_subject: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Double)
    true_culprit_sha: Mapped[str | None] = mapped_column(String(64))
    correct: Mapped[bool | None]
    tests: Mapped[int] = mapped_column(default=0)
    boots: Mapped[int] = mapped_column(default=0)
    installs: Mapped[int] = mapped_column(default=0)
    adapters: Mapped[int] = mapped_column(default=0)
    lab_minutes: Mapped[float] = mapped_column(Double, default=0.0)
    campaign_id: Mapped[int | None] = mapped_column(index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    campaign_label: Mapped[str | None] = mapped_column(String(255))
    campaign_index: Mapped[int | None]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    bottomless_box: Mapped[bool] = mapped_column(default=False, server_default=false())


class LabTest(Base):
    """One test: a commit installed on a rig and booted until a failure or the boot budget."""

    __tablename__ = "tests"
    __table_args__ = (UniqueConstraint("hunt_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    hunt_id: Mapped[int] = mapped_column(ForeignKey("hunts.id", ondelete="CASCADE"))
    seq: Mapped[int]
    commit_sha: Mapped[str] = mapped_column(String(64), index=True)
    commit_subject: Mapped[str] = mapped_column(Text)
    rig: Mapped[str] = mapped_column(String(255))
    boots: Mapped[int]
    failures: Mapped[int]
    failed: Mapped[bool]
    adapters_destroyed: Mapped[int]
    lab_minutes: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    installed: Mapped[bool] = mapped_column(default=True, server_default=true())
    skipped: Mapped[bool] = mapped_column(default=False, server_default=false())
    note: Mapped[str] = mapped_column(Text, default="", server_default="")


class Boot(Base):
    """One boot of a test's kernel, with the adapter it ran on."""

    __tablename__ = "boots"
    __table_args__ = (UniqueConstraint("test_id", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    test_id: Mapped[int] = mapped_column(ForeignKey("tests.id", ondelete="CASCADE"))
    attempt: Mapped[int]
    seed: Mapped[int | None] = mapped_column(UInt64)
    bricked: Mapped[bool]
    stray_write: Mapped[bool]
    adapter_serial: Mapped[str | None] = mapped_column(String(64))
    exit_status: Mapped[int | None]
    seconds: Mapped[float | None] = mapped_column(Double)
    output: Mapped[str | None] = mapped_column(Text)


class Adapter(Base):
    """One adapter of a hunt's box, and the test and boot that destroyed it."""

    __tablename__ = "adapters"
    __table_args__ = (
        UniqueConstraint("hunt_id", "serial"),
        CheckConstraint(_one_of("state", ADAPTER_STATES), name="state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hunt_id: Mapped[int] = mapped_column(ForeignKey("hunts.id", ondelete="CASCADE"))
    serial: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="spare")
    rig: Mapped[str | None] = mapped_column(String(255))
    destroyed_by_test_id: Mapped[int | None] = mapped_column(
        ForeignKey("tests.id", ondelete="SET NULL"), index=True
    )
    destroyed_at_boot: Mapped[int | None]


# the statements that log a test, built once (a test is logged before every next decision)
_ADAPTER_KEYS = ("state", "rig", "destroyed_by_test_id", "destroyed_at_boot")
_HUNT_BOX = select(Hunt.__table__.c.bottomless_box).where(Hunt.__table__.c.id == bindparam("hunt"))
_INSERT_TEST = insert(LabTest.__table__)
_HUNT_ADAPTERS = (select(Adapter.__table__.c.id, Adapter.__table__.c.serial,
                         *(Adapter.__table__.c[k] for k in _ADAPTER_KEYS))
                  .where(Adapter.__table__.c.hunt_id == bindparam("hunt"),
                         Adapter.__table__.c.serial.in_(bindparam("serials", expanding=True))))
_UPDATE_ADAPTER = (update(Adapter.__table__).where(Adapter.__table__.c.id == bindparam("adapter"))
                   .values({k: bindparam(f"new_{k}") for k in _ADAPTER_KEYS}))
_ADD_TO_HUNT = (update(Hunt.__table__).where(Hunt.__table__.c.id == bindparam("hunt"))
                .values(tests=Hunt.__table__.c.tests + 1,
                        boots=Hunt.__table__.c.boots + bindparam("n_boots"),
                        installs=Hunt.__table__.c.installs + bindparam("n_installs"),
                        adapters=Hunt.__table__.c.adapters + bindparam("n_adapters"),
                        lab_minutes=Hunt.__table__.c.lab_minutes + bindparam("minutes")))

# and those that log a campaign's finished hunt
_HUNT_STATUS = (select(Hunt.__table__.c.status, Hunt.__table__.c.claimed_by)
                .where(Hunt.__table__.c.id == bindparam("hunt")))
_HUNT_TEST_IDS = (select(LabTest.__table__.c.seq, LabTest.__table__.c.id)
                  .where(LabTest.__table__.c.hunt_id == bindparam("hunt")))
_FINISH_HUNT = update(Hunt.__table__).where(
    Hunt.__table__.c.id == bindparam("hunt"), Hunt.__table__.c.status == "running",
    Hunt.__table__.c.claimed_by.is_not_distinct_from(bindparam("claim")))


def _not_utf8(exc: UnicodeEncodeError) -> str:
    """The error of text a database cannot take (a ref or name read from bytes that are not
    UTF-8), the text shown with its bad bytes escaped."""
    return f"text that is not UTF-8 cannot be logged: {ascii(exc.object)[:200]}"


def _logged_json(text: str | None, what: str) -> Any:
    """A JSON column as written, or StoreError if it is not JSON any more (edited by hand)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise StoreError(f"{what} in the database: not the JSON bisectlab wrote "
                         f"({clipped(repr(text), 40)}): was it edited by hand?") from None


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message (the DBAPI's own words when there are some)."""
    msg = str(getattr(exc, "orig", None) or exc).strip()
    return msg.splitlines()[0] if msg else type(exc).__name__


def _check_seed(seed: Any, what: str) -> int:
    """A seed (any integer type, numpy's too) as an int in 0 <= seed < 2**64, or StoreError."""
    try:
        value = operator.index(seed)
    except TypeError:
        value = None
    if isinstance(seed, bool) or value is None or not 0 <= value < _U64:
        raise StoreError(f"{what} must be an unsigned 64-bit integer, got {seed!r}")
    return value


def _iso(value: Any) -> Any:
    """A datetime as an ISO string (naive ones are UTC); anything else unchanged."""
    if not isinstance(value, datetime):
        return value
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _plain(row: Any) -> dict[str, Any]:
    """A result row as a JSON-friendly dict."""
    return {key: _iso(value) for key, value in row.items()}


def sqlite_file(database: str | None) -> Path | None:
    """The file a SQLite URL's database part names, or None: one in memory, or a URI
    (``file:...``), which SQLite reads itself."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_in_memory(database: str | None, query: Mapping[str, Any]) -> bool:
    """Whether a SQLite URL's database lives in its connection's memory, as SQLite would open
    it (``sqlite://``, ``:memory:``, ``file::memory:``, ``mode=memory``): what
    :attr:`Store.reachable_elsewhere` reads from SQLite itself once the database is open."""
    if not database or database == ":memory:":
        return True
    return database.startswith("file:") and (database.startswith("file::memory:")
                                              or "mode=memory" in database
                                              or query.get("mode") == "memory")


def _check_sqlite_file(database: str | None) -> None:
    """Refuse, before any connection, a path that exists and is not an SQLite database."""
    path = sqlite_file(database)
    if path is None:
        return
    if path.is_dir():
        raise StoreError(f"not a bisectlab database: {database} (is a directory)")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise StoreError(
                f"cannot create database {database}: directory {path.parent} does not exist"
            ) from None
        return
    except OSError as exc:
        raise StoreError(f"cannot read database {database}: {exc.strerror}") from None
    if head and head != SQLITE_HEADER:
        raise StoreError(f"not a bisectlab database: {database} (file is not a database)")


def _boot_row(boot: dict) -> dict[str, Any]:
    """A boot dict (keys BOOT_KEYS) as a row of the boots table, or StoreError."""
    missing = [k for k in BOOT_KEYS if k not in boot]
    if missing:
        raise StoreError(f"boot record lacks {', '.join(missing)}: {boot!r}")
    seed = boot["seed"]
    return {"attempt": boot["attempt"],
            "seed": None if seed is None else _check_seed(seed, "boot seed"),
            "bricked": bool(boot["bricked"]), "stray_write": bool(boot["stray_write"]),
            "adapter_serial": boot["adapter_serial"],
            **{k: boot.get(k) for k in CONSOLE_KEYS}}


def _test_row(test: dict) -> dict[str, Any]:
    """A test dict (record_test's arguments) as a row of the tests table."""
    return {"seq": test["seq"], "commit_sha": test["commit_sha"],
            "commit_subject": test["commit_subject"], "rig": test["rig"],
            "boots": len(test["boots"]), "failures": sum(bool(b["bricked"]) for b in test["boots"]),
            "failed": bool(test["failed"]), "adapters_destroyed": len(test["adapters_destroyed"]),
            "lab_minutes": test["lab_minutes"], "installed": bool(test.get("installed", True)),
            "skipped": bool(test.get("skipped", False)), "note": test.get("note", "")}


def _adapter_states(serials: list[str], tests: list[dict], test_ids: list[int]) -> list[dict]:
    """Every adapter of a box after the tests: spare, in use on a rig, or destroyed (by what)."""
    if len(set(serials)) != len(serials):
        raise StoreError(f"duplicate adapter serials in {serials}")
    state = {s: {"serial": s, "state": "spare", "rig": None, "destroyed_by_test_id": None,
                 "destroyed_at_boot": None} for s in serials}
    for test, test_id in zip(tests, test_ids, strict=True):
        _advance_adapters(state, test, test_id, "the hunt's box")
    return list(state.values())


def _advance_adapters(state: dict[str, dict], test: dict, test_id: int, box: str) -> None:
    """One test's effect on adapter states (by serial): those booted on are in use on its rig,
    destroyed ones name the test and the boot; ``box`` names the box in errors."""
    destroyed = test["adapters_destroyed"]
    for serial in {b["adapter_serial"] for b in test["boots"]} - set(destroyed) - {None}:
        if serial in state and state[serial]["state"] != "destroyed":
            state[serial].update(state="in_use", rig=test["rig"])
    for serial in destroyed:
        if serial not in state:
            raise StoreError(f"adapter {serial} is not in {box}")
        if state[serial]["state"] == "destroyed":
            raise StoreError(f"adapter {serial} was already destroyed")
        boot = next((b["attempt"] for b in test["boots"]
                     if b["bricked"] and b["adapter_serial"] == serial), None)
        state[serial].update(state="destroyed", rig=test["rig"], destroyed_by_test_id=test_id,
                             destroyed_at_boot=boot)


def _lane_key(lane: dict) -> str:
    """A campaign lane's identity: its strategy and options, however it was spelled."""
    return json.dumps([lane.get("strategy"), lane.get("options")], sort_keys=True, default=str)


def _add_test(conn: Connection, hunt_id: int, fields: dict[str, Any], where: str) -> int:
    """Add a test with its boots (prepared Core statements, one per table); advance the adapters
    it used; update the hunt's totals."""
    bottomless = conn.execute(_HUNT_BOX, {"hunt": hunt_id}).scalar()
    if bottomless is None:
        raise StoreError(f"no hunt {hunt_id} in {where}")
    boots, destroyed = fields["boots"], fields["adapters_destroyed"]
    boot_rows = [_boot_row(b) for b in boots]
    row = {"hunt_id": hunt_id, "created_at": _now(), **_test_row(fields)}
    try:
        test_id = conn.execute(_INSERT_TEST, row).inserted_primary_key[0]
    except IntegrityError as exc:
        if "unique" not in str(exc.orig).lower():  # SQLite's and PostgreSQL's words for it
            raise
        raise StoreError(f"test {row['seq']} of hunt {hunt_id} was logged by another process "
                         "meanwhile (two outcomes at once?): this one is not") from None
    if boot_rows:
        _insert_many(conn, Boot.__table__, [{"test_id": test_id, **b} for b in boot_rows])
    _mark_adapters(conn, hunt_id, test_id, fields["rig"], boots, destroyed, bool(bottomless))
    conn.execute(_ADD_TO_HUNT, {"hunt": hunt_id, "n_boots": len(boot_rows),
                                "n_installs": int(row["installed"]),
                                "n_adapters": len(destroyed), "minutes": fields["lab_minutes"]})
    return test_id


def _insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys, in one executemany of the driver's SQL.

    SQLAlchemy's own executemany works each row's parameters over, which was most of a
    campaign's logging time; here the statement is compiled once per dialect and the only work
    per row is the conversions its column types ask for (UInt64's sign, SQLite's datetime text)."""
    if not rows:
        return
    sql, keys, convert = _compiled_insert(table, tuple(rows[0]), conn.dialect)
    values, wanted = operator.itemgetter(*keys), set(keys)
    params: list[Any] = []
    for row in rows:
        if row.keys() != wanted:
            raise StoreError(f"cannot log rows of {table.name} with different columns: "
                             f"{sorted(row)} after {sorted(keys)}")
        got = list(values(row)) if len(keys) > 1 else [values(row)]
        for i, f in convert:
            got[i] = f(got[i])
        params.append(tuple(got) if conn.dialect.positional else dict(zip(keys, got, strict=True)))
    conn.exec_driver_sql(sql, params)


@functools.lru_cache(maxsize=32)
def _compiled_insert(table: Table, keys: tuple[str, ...], dialect: Dialect
                     ) -> tuple[str, tuple[str, ...], tuple[tuple[int, Callable], ...]]:
    """An INSERT of ``keys`` into ``table`` in the dialect's SQL, its parameters' names in
    order, and the bind conversion of those whose column type has one (by position). Booleans
    go as Python's bools, which every driver takes (SQLite stores 1 and 0, as SQLAlchemy
    would); the rows hold bools only (_test_row, _boot_row)."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(keys),
                                     for_executemany=True)  # no RETURNING of each new id
    names = tuple(compiled.positiontup) if dialect.positional else tuple(compiled.params)
    if sorted(names) != sorted(keys):
        unknown, lacking = sorted(set(keys) - set(names)), sorted(set(names) - set(keys))
        raise StoreError(f"cannot log rows of {table.name}: "
                         + (f"not its columns: {unknown}" if unknown else f"lacking {lacking}"))
    convert = ((i, table.c[k].type.dialect_impl(dialect).bind_processor(dialect))
               for i, k in enumerate(names) if not isinstance(table.c[k].type, Boolean))
    return compiled.string, names, tuple((i, f) for i, f in convert if f is not None)


def _mark_adapters(conn: Connection, hunt_id: int, test_id: int, rig: str, boots: list[dict],
                   destroyed: list[str], bottomless: bool) -> None:
    """The adapters a test booted on or destroyed, advanced in the database (a hunt with a
    bottomless box lists its adapters as they come into use)."""
    serials = {b["adapter_serial"] for b in boots} - {None} | set(destroyed)
    if not serials:
        return
    rows = conn.execute(_HUNT_ADAPTERS, {"hunt": hunt_id, "serials": sorted(serials)}).all()
    state = {r.serial: {k: getattr(r, k) for k in _ADAPTER_KEYS} for r in rows}
    ids = {r.serial: r.id for r in rows}
    new = sorted(serials - set(state)) if bottomless else []
    for serial in new:
        state[serial] = {"state": "spare", "rig": None, "destroyed_by_test_id": None,
                         "destroyed_at_boot": None}
    before = {serial: dict(v) for serial, v in state.items()}
    _advance_adapters(state, {"rig": rig, "boots": boots, "adapters_destroyed": destroyed},
                      test_id, f"hunt {hunt_id}")
    if new:
        _insert_many(conn, Adapter.__table__, [{"hunt_id": hunt_id, "serial": serial,
                                                 **state[serial]} for serial in new])
    changed = [{"adapter": ids[serial], **{f"new_{k}": v for k, v in values.items()}}
               for serial, values in state.items() if serial in ids and values != before[serial]]
    if changed:
        conn.execute(_UPDATE_ADAPTER, changed)


def _sqlite_hooks(engine: Engine) -> None:
    """Busy timeout and foreign keys on connect; SQLAlchemy, not pysqlite, emits BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute(f"PRAGMA synchronous = {SQLITE_SYNCHRONOUS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _use_wal(conn: Connection) -> None:
    """Put an SQLite database in WAL mode, unless it is already (the mode persists in the file,
    so only its first opener has to have the file to itself)."""
    raw = conn.connection.driver_connection
    if str(raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() not in ("wal", "memory"):
        raw.execute("PRAGMA journal_mode = WAL")


def _main_file(conn: Connection) -> str:
    """The file of an SQLite connection's main database, as SQLite says: '' in memory."""
    for _, name, file in conn.connection.driver_connection.execute("PRAGMA database_list"):
        if name == "main":
            return str(file or "")
    return ""


def _driver_exec(conn: Connection, sql: str) -> None:
    """Run a statement on the DBAPI connection, outside any transaction (SQLite PRAGMAs)."""
    conn.connection.driver_connection.execute(sql)


def _schema_revision(conn: Connection, where: str) -> str | None:
    """The database's alembic revision, None if empty; StoreError if it holds foreign tables."""
    tables = set(inspect(conn).get_table_names())
    revs = []
    if "alembic_version" in tables:
        revs = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    others = sorted(tables - {"alembic_version"})
    if not revs and others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise StoreError(f"not a bisectlab database: {where} (it has other tables: {shown})")
    if len(revs) > 1:
        raise StoreError(f"not a bisectlab database: {where} (several schema revisions)")
    return revs[0] if revs else None


def _check_revision(rev: str | None, where: str) -> None:
    """StoreError unless rev is None (an empty database) or a revision of ours."""
    if rev is None:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    if rev is not None and rev not in {s.revision for s in script.walk_revisions()}:
        raise StoreError(
            f"not a bisectlab database: {where} (unknown schema revision {rev!r}; "
            "written by a newer bisectlab?)"
        )


def _run_alembic(conn: Connection, rev: str | None, where: str) -> None:
    """Upgrade the database on conn (in its transaction) to head."""
    from alembic import command

    _check_revision(rev, where)
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")


class Store:
    """The results database: open (and upgrade) it, record hunts, read them back."""

    def __init__(self, url: str | None = None):
        """Open the database at url (default_url() if None), creating or upgrading its schema."""
        self.url = url or default_url()
        parsed = self._parse(self.url)
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self.where = (parsed.database or ":memory:") if self._sqlite else self._shown(parsed)
        self._file = ""  # the SQLite file, as SQLite names it ('' in memory)
        if self._sqlite:
            _check_sqlite_file(parsed.database)
        self._engine = self._create_engine(parsed)
        self._writer = self._engine.execution_options(**{_WRITE: True})
        try:
            self._open_waiting()
        except StoreError:
            self.close()
            raise
        except Exception as exc:  # SQLAlchemy's errors, or the DBAPI's own (SQLite PRAGMAs)
            self.close()
            reason = _first_line(exc)
            if not isinstance(exc, SQLAlchemyError | sqlite3.Error):
                raise
            if "file is not a database" in reason:
                raise StoreError(f"not a bisectlab database: {self.where} ({reason})") from None
            raise StoreError(f"cannot open database {self.where}: {reason}") from None

    def _open_waiting(self) -> None:
        """Open, retrying while other processes hold the database (several creating one new
        file at once): SQLite gives up at once, without its busy timeout, where waiting could
        deadlock, and switching to WAL needs the file to itself."""
        deadline, delay = time.monotonic() + OPEN_TIMEOUT_S, 0.01
        while True:
            try:
                self._open()
                return
            except Exception as exc:
                busy = "locked" in _first_line(exc) or "busy" in _first_line(exc)
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(delay)
            delay = min(2 * delay, 0.5)

    @property
    def reachable_elsewhere(self) -> bool:
        """Whether another process opening this URL reaches this database: not one SQLite keeps
        in memory (``sqlite://``, ``file::memory:``, ``mode=memory``), by its own account."""
        return not self._sqlite or self._file != ""

    @property
    def identity(self) -> str:
        """Which database this is, the same from any working directory and however its URL
        names it (a SQLite file's full path, as SQLite opened it; a server's URL without its
        password): what a hunt's kept worktrees belong to."""
        if self._file:
            return "sqlite:" + str(Path(self._file).resolve())
        return self.where

    @staticmethod
    def _shown(parsed: URL) -> str:
        """A URL fit for messages (no password)."""
        return parsed.render_as_string(hide_password=True)

    @staticmethod
    def _parse(url: str) -> URL:
        """The parsed URL, or StoreError."""
        try:
            return make_url(url)
        except ArgumentError:
            raise StoreError(
                f"bad database URL: {url!r} (for an SQLite file use sqlite:///PATH)"
            ) from None

    def _create_engine(self, parsed: URL) -> Engine:
        """An engine for the URL (SQLite hooks installed), or StoreError."""
        try:
            engine = create_engine(parsed)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StoreError(f"bad database URL: {self._shown(parsed)} ({exc})") from None
        except ImportError as exc:
            raise StoreError(f"no database driver for {self._shown(parsed)}: {exc}") from None
        if self._sqlite:
            _sqlite_hooks(engine)
        return engine

    def _open(self) -> None:
        """Check the schema read-only; upgrade it to head under a write lock if needed."""
        with self._engine.connect() as conn:
            rev = _schema_revision(conn, self.where)
            conn.rollback()
            if rev != SCHEMA_HEAD:
                _check_revision(rev, self.where)
            if self._sqlite:  # only now that the file is known to be ours: WAL persists in it
                _use_wal(conn)
                self._file = _main_file(conn)
        if rev != SCHEMA_HEAD:
            self._upgrade()

    def _upgrade(self) -> None:
        """Run alembic to head in one transaction (SQLite: foreign keys off, as SQLite asks)."""
        with self._writer.connect() as conn:
            if self._sqlite:
                _driver_exec(conn, "PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    if conn.dialect.name == "postgresql":  # SQLite's lock is BEGIN IMMEDIATE
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": SCHEMA_LOCK_KEY})
                    rev = _schema_revision(conn, self.where)  # again, now under the lock
                    if rev != SCHEMA_HEAD:
                        _run_alembic(conn, rev, self.where)
            finally:
                if self._sqlite:
                    _driver_exec(conn, "PRAGMA foreign_keys = ON")

    def close(self) -> None:
        """Release the database (dispose the engine)."""
        self._engine.dispose()

    def before_fork(self) -> None:
        """Close the pooled connections before this process forks (a pool's workers): a child
        must not inherit an open connection, whose locks SQLite would count as the child's own
        (its own connection could then be unlocked while this one closes and removes the
        write-ahead log) and whose socket a server would see used twice. The next use opens a
        new one. An in-memory database is its connection: kept (no worker opens it)."""
        if self.reachable_elsewhere:
            self._engine.dispose()

    def __enter__(self) -> Self:
        """The store itself."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the store."""
        self.close()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction (committed on success); DB errors become StoreError."""
        with (self._store_errors(), Session(self._writer if write else self._engine) as s,
              s.begin()):
            yield s

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A writing connection in one transaction (committed on success), without a Session's
        bookkeeping; DB errors become StoreError."""
        with self._store_errors(), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        """The database's errors, and text it cannot take, as one-line StoreErrors."""
        try:
            yield
        except IntegrityError as exc:
            raise StoreError(f"database refused the write: {_first_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error in {self.where}: {_first_line(exc)}") from None
        except UnicodeEncodeError as exc:
            raise StoreError(_not_utf8(exc)) from None

    def _hunt_row(self, s: Session, hunt_id: int) -> Hunt:
        """The hunt's row, or StoreError."""
        hunt = s.get(Hunt, hunt_id)
        if hunt is None:
            raise StoreError(f"no hunt {hunt_id} in {self.where}")
        return hunt

    def start_hunt(
        self,
        *,
        history: str,
        history_source: str,
        good: str,
        bad: str,
        good_sha: str,
        bad_sha: str,
        strategy: str,
        params: dict,
        seed: int,
        true_culprit_sha: str | None,
        adapter_serials: list[str] | None,
        campaign_id: int | None = None,
        claimed_by: str | None = None,
    ) -> int:
        """Insert a running hunt and its box of spare adapters (None: a bottomless box, whose
        adapters are listed as they come into use); return the hunt id."""
        bottomless = adapter_serials is None
        adapter_serials = adapter_serials or []
        if len(set(adapter_serials)) != len(adapter_serials):
            raise StoreError(f"duplicate adapter serials in {adapter_serials}")
        hunt = Hunt(
            history=history,
            history_source=history_source,
            good=good,
            bad=bad,
            good_sha=good_sha,
            bad_sha=bad_sha,
            strategy=strategy,
            params=json.dumps(params, sort_keys=True, default=str),
            seed=_check_seed(seed, "hunt seed"),
            status="running",
            true_culprit_sha=true_culprit_sha,
            campaign_id=campaign_id,
            claimed_by=claimed_by,
            bottomless_box=bottomless,
        )
        with self._session(write=True) as s:
            s.add(hunt)
            s.flush()
            s.add_all(Adapter(hunt_id=hunt.id, serial=serial) for serial in adapter_serials)
            return hunt.id

    # campaigns ----------------------------------------------------------------------------------

    def open_campaign(self, *, name: str, key: str, spec: dict, hunts: int,
                      lane_key: Callable[[dict], str] = _lane_key) -> int:
        """The campaign with this key, created if new.

        An existing campaign grows: its hunt count is raised to ``hunts`` and the spec's
        ``lanes`` (the strategies) not yet logged are added to it, ``lane_key`` telling which
        lane is which.
        """
        for _ in range(2):  # a second process may create it between our look and our insert
            try:
                with self._session(write=True) as s:
                    row = s.scalars(select(Campaign).where(Campaign.key == key)
                                    .with_for_update()).first()
                    if row is None:
                        row = Campaign(name=name, key=key, hunts=hunts,
                                       spec=json.dumps(spec, sort_keys=True, default=str))
                        s.add(row)
                        s.flush()
                    row.hunts = max(row.hunts, hunts)
                    logged = _logged_json(row.spec, f"campaign {row.id}'s spec")
                    known = {lane_key(ln) for ln in logged["lanes"]}
                    new = [ln for ln in spec.get("lanes", []) if lane_key(ln) not in known]
                    if new:
                        logged["lanes"] += new
                        row.spec = json.dumps(logged, sort_keys=True, default=str)
                    return row.id
            except StoreError:
                continue
        raise StoreError(f"cannot open campaign {name} in {self.where}")

    def campaigns(self) -> list[dict]:
        """All campaigns, in id order, with their spec decoded."""
        with self._session() as s:
            rows = s.execute(select(Campaign.__table__).order_by(Campaign.id)).mappings()
            return [{**_plain(r), "spec": _logged_json(r["spec"], f"campaign {r['id']}'s spec")}
                    for r in rows]

    def campaign_hunts(self, campaign_id: int) -> list[dict]:
        """The hunts of a campaign, in id order."""
        with self._session() as s:
            return self._hunt_dicts(s, Hunt.campaign_id == campaign_id)

    def claim_hunts(self, claims: Sequence[dict[str, Any]]) -> list[int | None]:
        """Insert campaign hunts as running, in one transaction; None where a slot is taken.

        Each claim holds the hunt's fields, its ``campaign_id``, ``campaign_label``,
        ``campaign_index`` and ``claimed_by``; a slot another worker holds is skipped.
        """
        order = sorted(range(len(claims)), key=lambda i: (claims[i]["campaign_label"],
                                                          claims[i]["campaign_index"]))
        rows = [{**claims[i], "status": "running", "seed": _check_seed(claims[i]["seed"], "hunt seed"),
                 "params": json.dumps(claims[i]["params"], sort_keys=True, default=str)}
                for i in order]
        table = Hunt.__table__
        ids: dict[int, int | None] = {}
        with self._connection() as conn:  # one key order for all processes: no deadlock
            try:  # all at once (Core, one statement), unless a slot is taken
                with conn.begin_nested():
                    got = conn.execute(insert(table).returning(table.c.id,
                                                               sort_by_parameter_order=True),
                                       rows).scalars().all() if rows else []
                ids.update(zip(order, got, strict=True))
            except IntegrityError:
                for i, row in zip(order, rows, strict=True):
                    try:
                        with conn.begin_nested():
                            ids[i] = conn.execute(insert(table).returning(table.c.id), row).scalar_one()
                    except IntegrityError:
                        ids[i] = None
        return [ids[i] for i in range(len(claims))]

    def drop_hunts(self, hunt_ids: Sequence[int]) -> None:
        """Delete unfinished hunts (with their tests, boots and adapters) to run them again.

        Finished hunts are never deleted; hunts already gone (another process dropped them
        first) are skipped.
        """
        if not hunt_ids:
            return
        with self._session(write=True) as s:
            rows = s.scalars(select(Hunt).where(Hunt.id.in_(list(hunt_ids)),
                                                Hunt.status.in_(("running", "interrupted"))))
            for hunt in rows:
                s.delete(hunt)

    def interrupt_claims(self, campaign_id: int, claimed_by: str, note: str = "interrupted",
                         hunt_ids: Sequence[int] | None = None) -> int:
        """Mark the running hunts a worker claimed in a campaign (only ``hunt_ids``, if given)
        as interrupted; how many."""
        only = [Hunt.id.in_(list(hunt_ids))] if hunt_ids is not None else []
        with self._session(write=True) as s:
            result = s.execute(
                update(Hunt)
                .where(Hunt.campaign_id == campaign_id, Hunt.claimed_by == claimed_by,
                       Hunt.status == "running", *only)
                .values(status="interrupted", note=note, finished_at=_now()))
            return result.rowcount

    def record_hunts(self, outcomes: Sequence[tuple[int, dict[str, Any]]],
                     claimed_by: str | None = None) -> None:
        """Claimed hunts finished: each one's box, tests and verdict, all in one transaction.

        An outcome holds ``adapter_serials``, ``tests`` (record_test's arguments) and
        ``verdict`` (finish_hunt's, lab_minutes included). With ``claimed_by``, a hunt claimed
        by anyone else is refused: a stopped campaign's worker, still writing, must not finish
        a row another process has claimed since (SQLite may give a dropped hunt's id again).
        """
        with self._connection() as conn:
            for hunt_id, outcome in outcomes:
                self._record_hunt(conn, hunt_id, claimed_by, **outcome)

    def _record_hunt(self, conn: Connection, hunt_id: int, claimed_by: str | None, *,
                     adapter_serials: list[str], tests: list[dict], verdict: dict) -> None:
        """One finished hunt on a connection: SQLAlchemy Core (no Session), a statement per table."""
        if verdict.get("status") not in HUNT_STATUSES or verdict["status"] == "running":
            raise StoreError(f"a hunt cannot finish as {verdict.get('status')!r}")
        unknown = set(verdict) - _verdict_keys()
        if unknown:  # the prebuilt UPDATE would drop them without a word
            raise StoreError(f"a hunt's verdict has no field {sorted(unknown)}")
        row = conn.execute(_HUNT_STATUS, {"hunt": hunt_id}).one_or_none()
        if row is None:
            raise StoreError(f"no hunt {hunt_id} in {self.where}")
        status, claim = row
        if status != "running":
            raise StoreError(f"hunt {hunt_id} is {status}, not running")
        if claimed_by is not None and claim != claimed_by:
            raise StoreError(f"hunt {hunt_id} is claimed by {claim}, not {claimed_by}")
        now = _now()
        test_rows = [{"hunt_id": hunt_id, "created_at": now, **_test_row(t)} for t in tests]
        ids = []
        if test_rows:
            table = LabTest.__table__
            _insert_many(conn, table, test_rows)  # RETURNING went row by row
            by_seq = dict(conn.execute(_HUNT_TEST_IDS, {"hunt": hunt_id}).all())
            ids = [by_seq[row["seq"]] for row in test_rows]
            boots = [{"test_id": tid, **_boot_row(b)}
                     for tid, t in zip(ids, tests, strict=True) for b in t["boots"]]
            if boots:
                _insert_many(conn, Boot.__table__, boots)
        adapters = _adapter_states(adapter_serials, tests, ids)
        if adapters:
            _insert_many(conn, Adapter.__table__, [{"hunt_id": hunt_id, **a} for a in adapters])
        totals = {"tests": len(tests), "installs": sum(bool(r["installed"]) for r in test_rows),
                  "boots": sum(r["boots"] for r in test_rows),
                  "adapters": sum(r["adapters_destroyed"] for r in test_rows),
                  "lab_minutes": sum(r["lab_minutes"] for r in test_rows)}
        finished = conn.execute(_FINISH_HUNT, {**totals, **verdict, "finished_at": now,
                                               "hunt": hunt_id, "claim": claim})
        if finished.rowcount != 1:  # stopped meanwhile by another process: no half of it kept
            raise StoreError(f"hunt {hunt_id} stopped running while it was written")

    def record_test(
        self,
        hunt_id: int,
        *,
        seq: int,
        commit_sha: str,
        commit_subject: str,
        rig: str,
        boots: list[dict],
        failed: bool,
        adapters_destroyed: list[str],
        lab_minutes: float,
        installed: bool = True,
        skipped: bool = False,
        note: str = "",
    ) -> int:
        """Record a test, its boots and the adapters it destroyed in one transaction."""
        test = dict(seq=seq, commit_sha=commit_sha, commit_subject=commit_subject, rig=rig,
                    boots=boots, failed=failed, adapters_destroyed=adapters_destroyed,
                    lab_minutes=lab_minutes, installed=installed, skipped=skipped, note=note)
        with self._connection() as conn:
            return _add_test(conn, hunt_id, test, self.where)

    def finish_hunt(
        self,
        hunt_id: int,
        *,
        status: str,
        culprit_sha: str | None,
        culprit_subject: str | None,
        confidence: float | None,
        correct: bool | None,
        note: str,
        lab_minutes: float | None = None,
    ) -> None:
        """Record a hunt's verdict and end time (and its lab time, if rigs worked side by side)."""
        if status not in HUNT_STATUSES or status == "running":
            raise StoreError(f"a hunt cannot finish as {status!r}")
        with self._session(write=True) as s:
            hunt = self._hunt_row(s, hunt_id)
            hunt.status, hunt.note = status, note
            hunt.culprit_sha, hunt.culprit_subject = culprit_sha, culprit_subject
            hunt.confidence, hunt.correct = confidence, correct
            if lab_minutes is not None:
                hunt.lab_minutes = lab_minutes
            hunt.finished_at = _now()

    def reopen_hunt(self, hunt_id: int, claimed_by: str, state: str) -> None:
        """Take over a stopped or interrupted hunt to resume it (StoreError if another process
        took it first, or it is not in ``state`` any more)."""
        with self._session(write=True) as s:
            hunt = self._hunt_row(s, hunt_id)
            now = hunt_state({"status": hunt.status, "claimed_by": hunt.claimed_by})
            if now != state:
                raise StoreError(f"hunt {hunt_id} is {now} now, not {state}: not resumed")
            hunt.status, hunt.claimed_by, hunt.finished_at, hunt.note = (
                "running", claimed_by, None, "")

    def hunt(self, hunt_id: int) -> dict:
        """One hunt as a dict."""
        with self._session() as s:
            rows = self._hunt_dicts(s, Hunt.id == hunt_id)
        if not rows:
            raise StoreError(f"no hunt {hunt_id} in {self.where}")
        return rows[0]

    def hunts(self) -> list[dict]:
        """All hunts, in id order."""
        with self._session() as s:
            return self._hunt_dicts(s)

    @staticmethod
    def _hunt_dicts(s: Session, *where: Any) -> list[dict]:
        """Hunt dicts with params decoded."""
        rows = s.execute(select(Hunt.__table__).where(*where).order_by(Hunt.id)).mappings()
        return [{**_plain(r), "params": _logged_json(r["params"], f"hunt {r['id']}'s params")}
                for r in rows]

    def tests(self, hunt_id: int | None = None) -> list[dict]:
        """Tests (of one hunt, or all), in id order, each with its destroyed_serials."""
        with self._session() as s:
            query = select(LabTest.__table__).order_by(LabTest.id)
            if hunt_id is not None:
                self._hunt_row(s, hunt_id)
                query = query.where(LabTest.hunt_id == hunt_id)
            tests = [_plain(r) for r in s.execute(query).mappings()]
            killed = self._destroyed_serials(s, hunt_id)
        return [{**t, "destroyed_serials": ",".join(killed.get(t["id"], []))} for t in tests]

    @staticmethod
    def _destroyed_serials(s: Session, hunt_id: int | None) -> dict[int, list[str]]:
        """Test id -> serials it destroyed, in boot order."""
        query = select(Adapter.destroyed_by_test_id, Adapter.serial).where(
            Adapter.destroyed_by_test_id.is_not(None)
        )
        if hunt_id is not None:
            query = query.where(Adapter.hunt_id == hunt_id)
        out: dict[int, list[str]] = {}
        for test_id, serial in s.execute(query.order_by(Adapter.destroyed_at_boot, Adapter.id)):
            out.setdefault(test_id, []).append(serial)
        return out

    def adapters(self, hunt_id: int | None = None) -> list[dict]:
        """Adapters (of one hunt, or all), in id order."""
        with self._session() as s:
            query = select(Adapter.__table__).order_by(Adapter.id)
            if hunt_id is not None:
                self._hunt_row(s, hunt_id)
                query = query.where(Adapter.hunt_id == hunt_id)
            return [_plain(r) for r in s.execute(query).mappings()]

    def boots(self, test_id: int) -> list[dict]:
        """The boots of one test, in id order."""
        with self._session() as s:
            if s.get(LabTest, test_id) is None:
                raise StoreError(f"no test {test_id} in {self.where}")
            query = select(Boot.__table__).where(Boot.test_id == test_id).order_by(Boot.id)
            return [_plain(r) for r in s.execute(query).mappings()]


@functools.cache
def _verdict_keys() -> frozenset[str]:
    """What a finished hunt's verdict may hold: finish_hunt's fields."""
    return frozenset(signature(Store.finish_hunt).parameters) - {"self", "hunt_id"}
