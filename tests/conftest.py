"""Shared fixtures: small kernel-shaped histories, built once per session."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import settings

from bisectlab.cli import cli
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.history import History, load_history

# The same examples on every run, and no time limit per example (a loaded CI machine pauses
# workers): a red CI is then a change's doing. HYPOTHESIS_PROFILE=explore draws new examples.
settings.register_profile("repeatable", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Invoke the CLI in tmp_path with its default database there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BISECTLAB_DB", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


# bisectlab's command line in a process of its own. Ctrl-C is Python's own there even where pytest
# runs with SIGINT ignored (a shell's background job, whose children inherit the ignored signal,
# which bisectlab rightly leaves ignored): the tests signal it as a terminal would.
CLI = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
       "from bisectlab.cli import main; main()")


def _start_cli(*args: object, cwd: Path, **popen: object) -> subprocess.Popen:
    """``bisectlab ARGS`` started in ``cwd``, its output piped as text (``popen`` overrides), in a
    session of its own: only the test signals it, and ``os.killpg`` reaches its workers too."""
    options = {"text": True, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE,
               "start_new_session": True, **popen}
    return subprocess.Popen([sys.executable, "-c", CLI, *map(str, args)], cwd=cwd, **options)


@pytest.fixture
def start_cli() -> Iterator[Callable[..., subprocess.Popen]]:
    """``start_cli(*args, cwd=..., **popen)``: a running bisectlab command, to signal or kill.
    One still running when the test ends (it failed first) is killed with its process group."""
    started: list[subprocess.Popen] = []

    def start(*args: object, cwd: Path, **popen: object) -> subprocess.Popen:
        started.append(_start_cli(*args, cwd=cwd, **popen))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _wait_for_count(db: Path, sql: str, count: int, proc: subprocess.Popen) -> None:
    """Wait until ``sql`` (a count) reaches ``count`` in SQLite database ``db``, reading (in
    WAL, a reader never waits for the writer); AssertionError if ``proc`` ends first."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and _count(db, sql) >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"never saw {count} of {sql} (the process exited {proc.poll()})")


def _count(db: Path, sql: str) -> int:
    """``sql``'s count in ``db``, or 0 if it has no such table yet."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
            return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@contextlib.contextmanager
def _writes_held_from(db: Path, sql: str, count: int, proc: subprocess.Popen) -> Iterator[int]:
    """Once ``sql`` counts ``count`` in ``db``, hold its write lock until the block ends: the
    process that writes there gets no further, and cannot end, meanwhile (it waits up to its
    30 s busy timeout). The count once the lock is held."""
    _wait_for_count(db, sql, count, proc)
    con = sqlite3.connect(db, timeout=30, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        yield con.execute(sql).fetchone()[0]
    finally:
        con.close()  # rolls the empty transaction back: the lock is free


@pytest.fixture
def wait_for_count() -> Callable[[Path, str, int, subprocess.Popen], None]:
    """``wait_for_count(db, sql, count, proc)``: until a running process has logged so much."""
    return _wait_for_count


@pytest.fixture
def writes_held_from() -> Callable[..., contextlib.AbstractContextManager[int]]:
    """``with writes_held_from(db, sql, count, proc) as seen:`` signal or kill ``proc`` at a
    point it cannot have passed (see _writes_held_from)."""
    return _writes_held_from


@pytest.fixture(scope="session")
def e1000e() -> History:
    """The shipped 2.6.27 scenario."""
    return load_history("e1000e-2.6.27")


@pytest.fixture(scope="session")
def kernel_2k() -> History:
    """A generated kernel-shaped history of 2,000 commits (no bug)."""
    return generate_kernel_history("k2000", 7, KernelShape(commits=2000))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server on a Unix socket, if PostgreSQL is installed here.

    .ci/run installs it; elsewhere the tests that need it are skipped, saying why.
    """
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb is None or pg_ctl is None:  # Debian's layout: the newest version installed
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda path: [int(part) if part.isdigit() else 0
                                         for part in path.split("/")[4].split(".")])
        if found:
            initdb, pg_ctl = found[-1], str(Path(found[-1]).with_name("pg_ctl"))
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (initdb not found)")
    pytest.importorskip("psycopg")
    as_user: list[str] = []
    folder = tempfile.mkdtemp(prefix="bisectlab-pg-")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres", "postgres")
        os.chmod(folder, 0o755)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = f"{folder}/data", "55439"
    subprocess.run([*as_user, initdb, "-D", data, "-A", "trust", "-U", "bisectlab"],
                   check=True, capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", data, "-l", f"{folder}/log", "-w", "start", "-o",
                    f"-k {folder} -p {port} -c listen_addresses=''"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://bisectlab@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fresh_postgres_url(postgres_url) -> Iterator[str]:
    """A database of its own on the throwaway PostgreSQL server, dropped after the test: the
    server is shared by the session, and a test that counts rows must not meet another's."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        admin.dispose()


GIT_ENV = {"GIT_AUTHOR_NAME": "Lab", "GIT_AUTHOR_EMAIL": "lab@example.invalid",
           "GIT_COMMITTER_NAME": "Lab", "GIT_COMMITTER_EMAIL": "lab@example.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


class Repo:
    """A real git repository in a temporary folder, built commit by commit with fixed dates."""

    def __init__(self, path, init: bool = True):
        self.path = path
        self.clock = 1_215_979_200  # 2008-07-13
        self.shas: dict[str, str] = {}
        if init:
            path.mkdir(parents=True, exist_ok=True)
            self.git("init", "-q", "-b", "master")

    def copy(self, path) -> Repo:
        """The repository copied to ``path``, with its named shas and clock."""
        shutil.copytree(self.path, path)
        other = Repo(path, init=False)
        other.clock, other.shas = self.clock, dict(self.shas)
        return other

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV, "GIT_AUTHOR_DATE": f"{self.clock} +0000",
               "GIT_COMMITTER_DATE": f"{self.clock} +0000"}
        done = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True,
                              text=True, check=True)
        return done.stdout.strip()

    def commit(self, subject: str, *paths: str) -> str:
        """A commit touching ``paths`` (each gets the subject as content); returns its sha."""
        self.clock += 3600
        for p in paths:
            (self.path / p).parent.mkdir(parents=True, exist_ok=True)
            (self.path / p).write_text(f"{subject}\n")
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", subject)
        return self.git("rev-parse", "HEAD")

    def merge(self, branch: str, subject: str) -> str:
        self.clock += 3600
        self.git("merge", "-q", "--no-ff", "-m", subject, branch)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def small_repo(small_repo_template, tmp_path) -> Repo:
    """A fresh copy of the small repository (tests may change it)."""
    return small_repo_template.copy(tmp_path / "linux")


@pytest.fixture(scope="session")
def small_repo_template(tmp_path_factory) -> Repo:
    """v1.0 -> net fix -> (mm topic of 2, forked at the net fix) x86 fix -> merge -> v1.1 net fix
    -> docs; an old topic forked at v1.0 merged after v1.1; a lightweight and an annotated tag."""
    repo = Repo(tmp_path_factory.mktemp("template") / "linux")
    s = {"root": repo.commit("Linux 1.0", "Makefile", "README")}
    repo.git("tag", "-a", "-m", "Linux 1.0", "v1.0")
    repo.git("branch", "old", "v1.0")
    s["net"] = repo.commit("net: fix the tx path", "drivers/net/a.c")
    repo.git("checkout", "-q", "-b", "mm")
    s["mm1"] = repo.commit("mm: fix vmalloc", "mm/vmalloc.c")
    s["mm2"] = repo.commit("mm: fix slub", "mm/slub.c", "include/linux/mm.h")
    repo.git("checkout", "-q", "master")
    s["x86"] = repo.commit("x86: fix ioremap", "arch/x86/mm/ioremap.c")
    s["merge"] = repo.merge("mm", "Merge branch 'mm'")
    s["net2"] = repo.commit("net: fix the rx path", "drivers/net/b.c")
    repo.git("tag", "v1.1")
    repo.git("checkout", "-q", "old")
    s["old"] = repo.commit("crypto: an old topic", "crypto/api.c")
    repo.git("checkout", "-q", "master")
    s["merge_old"] = repo.merge("old", "Merge branch 'old'")
    s["docs"] = repo.commit("docs: explain", "Documentation/x.txt")
    repo.shas = s
    return repo
