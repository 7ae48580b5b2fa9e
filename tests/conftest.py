"""Shared fixtures: small kernel-shaped histories, built once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from bisectlab.cli import cli
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.history import History, load_history


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Invoke the CLI in tmp_path with its default database there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BISECTLAB_DB", raising=False)
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


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
    if initdb is None or pg_ctl is None:
        for version in ("17", "16", "15", "14", "13"):
            folder = f"/usr/lib/postgresql/{version}/bin"
            if os.path.exists(f"{folder}/initdb"):
                initdb, pg_ctl = f"{folder}/initdb", f"{folder}/pg_ctl"
                break
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
