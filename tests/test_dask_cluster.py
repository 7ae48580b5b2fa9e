"""A real Dask cluster: `dask scheduler` and `dask worker` started as separate commands, as a lab
would start them, on this host only (ports the scheduler chooses, one thread per worker)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed")

DASK = Path(sys.executable).with_name("dask")


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _workers_up(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=60)


class Cluster:
    """A scheduler and its workers, each its own process."""

    def __init__(self, cwd: Path):
        self.cwd, file = cwd, cwd / "scheduler.json"
        self.scheduler = _start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                 "--scheduler-file", str(file), "--no-dashboard"], cwd)
        self.workers: list[subprocess.Popen] = []
        self.address = self._address(file)

    def _address(self, file: Path) -> str:
        """The port the scheduler took (its own choice: no port picked here can be taken
        by another process before it binds), from the file it writes once it listens."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.scheduler.poll() is None:
            with contextlib.suppress(FileNotFoundError, json.JSONDecodeError, KeyError):
                return json.loads(file.read_text())["address"]
            time.sleep(0.05)
        self.close()
        raise AssertionError("the dask scheduler never said where it listens")

    def add_workers(self, count: int) -> None:
        """Start ``count`` workers (no nanny: a killed worker stays dead) and wait for them."""
        for _ in range(count):
            self.workers.append(_start(
                [str(DASK), "worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--host", "127.0.0.1", "--local-directory",
                 str(self.cwd / "dask-worker-space")], self.cwd))
        _workers_up(self.address, len(self.workers))

    def close(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            _stop(proc)


@pytest.fixture
def cluster(tmp_path) -> Iterator[Cluster]:
    if not DASK.exists():
        pytest.skip(f"no dask command next to {sys.executable}")
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def small(run, tmp_path) -> Path:
    """A generated 300-commit history with a rate bug (p = 0.5), as a scenario file."""
    path = tmp_path / "k300.toml"
    result = run("history", "generate", "--commits", "300", "--seed", "3", "--bug", "rate",
                 "--detect", "0.5", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    return path


@pytest.fixture
def campaign(small, tmp_path, start_cli) -> Callable[..., subprocess.Popen]:
    """``campaign(db, hunts, *where)``: a bayes campaign of ``small`` running in tmp_path."""
    def start(db: str, hunts: int, *where: str) -> subprocess.Popen:
        return start_cli("replay", "campaign", "--history", small, "--hunts", hunts, "--strategy",
                         "bayes", "--rigs", "2", "--adapters", "30", "--db", db, "-q", *where,
                         cwd=tmp_path)
    return start


def _hunts(db: Path) -> list[tuple]:
    """Every hunt's slot, verdict and costs, and every boot, in slot order (ids left out)."""
    with sqlite3.connect(db) as con:
        hunts = con.execute("SELECT campaign_index, seed, status, culprit_sha, confidence, tests, "
                            "boots, adapters, lab_minutes FROM hunts ORDER BY 1").fetchall()
        boots = con.execute("SELECT h.campaign_index, t.seq, t.commit_sha, t.rig, b.attempt, "
                            "b.seed, b.bricked, b.adapter_serial FROM boots b JOIN tests t ON "
                            "b.test_id = t.id JOIN hunts h ON t.hunt_id = h.id "
                            "ORDER BY 1, 2, 5").fetchall()
    return [*hunts, *boots]


FINISHED = "SELECT count(*) FROM hunts WHERE status IN ('found', 'aborted', 'inconclusive')"


def test_a_dask_cluster_of_separate_processes_gives_the_hunts_of_one_worker(cluster, tmp_path,
                                                                            campaign):
    cluster.add_workers(2)
    on_dask = campaign("dask.sqlite", 6, "--scheduler", cluster.address)
    local = campaign("local.sqlite", 6, "--workers", "1")
    for proc in (on_dask, local):
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert "6 hunts run now (0 kept" in err
    assert _hunts(tmp_path / "dask.sqlite") == _hunts(tmp_path / "local.sqlite")


def test_a_worker_killed_mid_campaign_loses_nothing(cluster, tmp_path, campaign,
                                                    writes_held_from):
    """The scheduler hands the dead worker's hunts to the other one: the campaign ends normally,
    every hunt finished once and identical to the same campaign on one local worker."""
    cluster.add_workers(2)
    proc = campaign("dask.sqlite", 24, "--scheduler", cluster.address)
    with writes_held_from(tmp_path / "dask.sqlite", FINISHED, 4, proc) as seen:
        assert seen < 24, "the campaign ended before the kill"
        os.killpg(cluster.workers[0].pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "24 hunts run now (0 kept" in err
    local = campaign("local.sqlite", 24, "--workers", "1")
    assert local.wait(timeout=120) == 0
    assert _hunts(tmp_path / "dask.sqlite") == _hunts(tmp_path / "local.sqlite")


def test_a_result_lost_with_its_worker_before_it_was_gathered_comes_from_another_run(cluster):
    """A task that finished on a worker killed before its result was gathered runs again on
    another worker, and the campaign gets its result, not an error (distributed's own
    ClientExecutor took such a result for one and stopped the campaign). The executor's
    gathers are held here until the worker is gone."""
    from bisectlab.campaign import DaskExecutor

    cluster.add_workers(2)
    executor = DaskExecutor(cluster.address)
    gate, gather = threading.Event(), executor.client.gather

    async def held_gather(*args, **kwargs):
        while not gate.is_set():
            await asyncio.sleep(0.01)
        return await gather(*args, **kwargs)

    executor.client.gather = held_gather
    try:
        done = executor.submit(pow, 2, 10)
        on_cluster = executor._running[done]
        deadline = time.monotonic() + 60
        while on_cluster.status != "finished" and time.monotonic() < deadline:
            time.sleep(0.01)
        (holder,) = executor.client.who_has(on_cluster)[on_cluster.key]
        os.kill(executor.client.run(os.getpid, workers=[holder])[holder], signal.SIGKILL)
        gate.set()
        assert done.result(timeout=120) == 1024
        assert holder not in executor.client.who_has(on_cluster)[on_cluster.key]  # run again
    finally:
        gate.set()
        executor.shutdown(wait=False)
