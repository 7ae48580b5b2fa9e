"""Campaign throughput beyond one process: a real Dask cluster against local workers, and several
campaign processes sharing one PostgreSQL database against one process.

    python experiments/beyond_one_machine.py [--hunts 120] [--rounds 3] [--skip-dask]
        [--skip-postgres] [--postgres URL]

A bayes campaign (N = 1000, p = 0.5, one rig, 50 adapters per hunt)
is run, side by side in each round: with `--workers 1`; with `--workers 2`; on a cluster of
`dask scheduler` and two `dask worker --nthreads 1` processes started as separate commands;
and into one PostgreSQL database by one campaign process and by four at once (a fresh database
each time). Hunts per second are wall-clock (all hunts over the time from the first process's
start to the last one's end); each figure is the median over rounds. With `--postgres URL` the
server at URL is used (the user must be able to create databases); otherwise a throwaway server is
started if PostgreSQL's initdb is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from arguments import Parser, count

BISECTLAB = [sys.executable, "-c", "from bisectlab.cli import main; main()"]


def campaign(folder: Path, hunts: int, db: str, *where: str) -> subprocess.Popen:
    """Start one campaign process."""
    return subprocess.Popen([*BISECTLAB, "replay", "campaign", "--history", "k.toml", "--hunts",
                             str(hunts), "--strategy", "bayes", "--rigs", "1", "--adapters", "50",
                             "--db", db, "-q", *where], cwd=folder, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rate(procs: list[subprocess.Popen], hunts: int, start: float) -> float:
    """Wait for the processes; hunts per second over the wall time of them all."""
    failed = []
    for proc in procs:  # every process waited for, so none outlives a failed one
        _, err = proc.communicate()
        if proc.returncode != 0:
            failed.append(err.strip().splitlines()[-1:])
    if failed:
        raise SystemExit(f"campaign failed: {failed[0]}")
    return hunts / (time.perf_counter() - start)


def local(folder: Path, hunts: int, workers: int, tag: str) -> float:
    start = time.perf_counter()
    return rate([campaign(folder, hunts, f"{tag}.sqlite", "--workers", str(workers))], hunts, start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dask_cluster(folder: Path, workers: int) -> Iterator[str]:
    """`dask scheduler` and ``workers`` `dask worker` processes; yields the scheduler address."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{free_port()}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port",
                               address.rsplit(":", 1)[1], "--no-dashboard"], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(workers):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--host",
                 "127.0.0.1"], cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


@contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on a Unix socket; yields its URL (database postgres)."""
    initdb = shutil.which("initdb") or "/usr/lib/postgresql/15/bin/initdb"
    pg_ctl = shutil.which("pg_ctl") or "/usr/lib/postgresql/15/bin/pg_ctl"
    if not os.path.exists(initdb):
        raise SystemExit("PostgreSQL is not installed: pass --postgres URL or --skip-postgres")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = tempfile.mkdtemp(prefix="bisectlab-pg-")
    if as_user:
        shutil.chown(folder, "postgres", "postgres")
    data, port = f"{folder}/data", str(55400 + os.getpid() % 97)
    subprocess.run([*as_user, initdb, "-D", data, "-A", "trust", "-U", "bisectlab"], check=True,
                   capture_output=True)
    subprocess.run([*as_user, pg_ctl, "-D", data, "-l", f"{folder}/log", "-w", "start", "-o",
                    f"-k {folder} -p {port} -c listen_addresses=''"], check=True,
                   capture_output=True)
    try:
        yield f"postgresql+psycopg://bisectlab@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """Create database ``name`` on the server at url; its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def shared(folder: Path, hunts: int, url: str, processes: int, tag: str) -> float:
    """Hunts per second of ``processes`` campaign processes sharing one fresh database."""
    db = fresh_database(url, tag)
    from bisectlab.store import Store

    Store(db).close()  # the schema made once, before the processes race to it
    start = time.perf_counter()
    return rate([campaign(folder, hunts, db, "--workers", "1") for _ in range(processes)],
                hunts, start)


def median_of(rounds: int, runs: dict[str, Callable[[int], float]]) -> dict[str, float]:
    """Every run once per round, side by side; each one's median."""
    out: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(rounds):
        for label, run in runs.items():
            out[label].append(run(r))
            print(f"  round {r + 1}: {label}: {out[label][-1]:.2f} hunts/s", flush=True)
    return {k: statistics.median(v) for k, v in out.items()}


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hunts", type=count(), default=120)
    ap.add_argument("--rounds", type=count(high=100), default=3)
    ap.add_argument("--skip-dask", action="store_true")
    ap.add_argument("--skip-postgres", action="store_true")
    ap.add_argument("--postgres", metavar="URL")
    args = ap.parse_args()
    from bisectlab.perf import campaign_scenario

    with tempfile.TemporaryDirectory(prefix="bisectlab-beyond-") as tmp:
        folder = Path(tmp)
        campaign_scenario(folder)
        h = args.hunts
        print(f"bayes campaign, N = 1000, p = 0.5, {h} hunts; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        if not args.skip_dask:
            with dask_cluster(folder, 2) as address:
                got = median_of(args.rounds, {
                    "--workers 1": lambda r: local(folder, h, 1, f"w1-{r}"),
                    "--workers 2": lambda r: local(folder, h, 2, f"w2-{r}"),
                    "Dask, 2 workers": lambda r: rate([campaign(
                        folder, h, f"dask-{r}.sqlite", "--scheduler", address)], h,
                        time.perf_counter())})
            base = got["--workers 1"]
            for label, value in got.items():
                print(f"{label:>18}: {value:6.2f} hunts/s ({value / base:.2f}x --workers 1)")
        if not args.skip_postgres:
            server = postgres_server() if args.postgres is None else _given(args.postgres)
            with server as url:
                got = median_of(args.rounds, {
                    "PostgreSQL, 1 process": lambda r: shared(folder, h, url, 1, f"p1_{r}"),
                    "PostgreSQL, 4 processes": lambda r: shared(folder, h, url, 4, f"p4_{r}")})
            base = got["PostgreSQL, 1 process"]
            for label, value in got.items():
                print(f"{label:>24}: {value:6.2f} hunts/s ({value / base:.2f}x one process)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
