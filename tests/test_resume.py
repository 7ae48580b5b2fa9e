"""A killed hunt: it shows as stopped, replay says it is unfinished, resume finishes it exactly as
the uninterrupted hunt would; a campaign's workers die with their parent."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import time
from pathlib import Path

import pytest


@pytest.fixture
def slow_bug(run, tmp_path) -> Path:
    """A 600-commit history whose bug shows once in twenty boots: hunts of about 500 tests,
    still running well after the tests that stop them look (here about 0.8 s after test 40),
    even if the test's process is paused meanwhile."""
    path = tmp_path / "k600.toml"
    result = run("history", "generate", "--commits", "600", "--seed", "4", "--bug", "rate",
                 "--detect", "0.05", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    return path


def _verdict(run, *args: str) -> dict:
    result = run(*args, "--json", "-q")
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)


TESTS = "SELECT count(*) FROM tests"
SAME = ("status", "culprit", "confidence", "tests", "boots", "installs", "adapters", "lab_minutes")


@pytest.mark.parametrize("rigs, boots", [("1", []), ("3", ["--boots-per-install", "1"])])
def test_a_killed_hunt_is_stopped_and_resumes_to_the_uninterrupted_verdict(
        run, slow_bug, tmp_path, rigs, boots, start_cli, writes_held_from):
    """Killed after 40 tests of a hunt of several hundred (on 3 rigs one boot per test keeps it
    that long: with the boots chosen per round it takes about 40)."""
    hunt = ["v1.0", "v1.1", "--history", str(slow_bug), "--seed", "21", "--rigs", rigs, *boots]
    whole = _verdict(run, "bisect", *hunt, "--db", "whole.sqlite")
    assert whole["tests"] > 100
    assert whole["installs"] < whole["tests"]  # rigs rebooted kernels they had: resume keeps them
    proc = start_cli("bisect", *hunt, "--db", "cut.sqlite", "-q", cwd=tmp_path)
    with writes_held_from(tmp_path / "cut.sqlite", TESTS, 40, proc) as seen:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with sqlite3.connect(tmp_path / "cut.sqlite") as con:
        logged = con.execute("SELECT count(*) FROM tests").fetchone()[0]
    assert logged == seen and 40 <= logged < whole["tests"]  # none written while it was held

    hunts = json.loads(run("query", "hunts", "--db", "cut.sqlite", "--format", "json").stdout)
    assert hunts[0]["status"] == "stopped"
    replayed = run("replay", "hunt", "1", "--db", "cut.sqlite")
    assert replayed.exit_code == 1 and "unfinished (stopped" in replayed.stdout

    resumed = _verdict(run, "resume", "1", "--db", "cut.sqlite")
    assert {k: resumed[k] for k in SAME} == {k: whole[k] for k in SAME}
    with sqlite3.connect(tmp_path / "cut.sqlite") as con:
        seqs = [s for (s,) in con.execute("SELECT seq FROM tests ORDER BY seq")]
        boots = con.execute("SELECT count(*) FROM boots").fetchone()[0]
    assert seqs == list(range(1, whole["tests"] + 1)) and boots == whole["boots"]
    assert run("replay", "hunt", "1", "--db", "cut.sqlite").exit_code == 0


def test_a_killed_hunt_with_a_check_of_bad_resumes_to_the_uninterrupted_verdict(
        run, slow_bug, tmp_path, start_cli, writes_held_from):
    """The check is the hunt's first test, logged like any other: a resumed hunt goes through
    it again from the log (set up with --check-bad from the hunt's parameters)."""
    hunt = ["v1.0", "v1.1", "--history", str(slow_bug), "--seed", "21", "--check-bad", "30"]
    whole = _verdict(run, "bisect", *hunt, "--db", "whole.sqlite")
    proc = start_cli("bisect", *hunt, "--db", "cut.sqlite", "-q", cwd=tmp_path)
    with writes_held_from(tmp_path / "cut.sqlite", TESTS, 2, proc):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    resumed = _verdict(run, "resume", "1", "--db", "cut.sqlite")
    assert {k: resumed[k] for k in SAME} == {k: whole[k] for k in SAME}
    assert run("replay", "hunt", "1", "--db", "cut.sqlite").exit_code == 0
    with sqlite3.connect(tmp_path / "cut.sqlite") as con:
        first = con.execute("SELECT commit_subject, failed FROM tests WHERE seq = 1").fetchone()
    assert first == ("Linux 1.1", 1)  # BAD, where the bug showed


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_simulated_hunt_stopped_by_a_signal_says_how_to_go_on(run, slow_bug, tmp_path, sig,
                                                                 start_cli, writes_held_from):
    hunt = ["v1.0", "v1.1", "--history", str(slow_bug), "--seed", "21"]
    whole = _verdict(run, "bisect", *hunt, "--db", "whole.sqlite")
    proc = start_cli("bisect", *hunt, "--db", "cut.sqlite", "-q", cwd=tmp_path)
    with writes_held_from(tmp_path / "cut.sqlite", TESTS, 20, proc):
        os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.splitlines()[-1] == "interrupted; hunt 1 is kept: bisectlab resume 1 goes on"
    hunts = json.loads(run("query", "hunts", "--db", "cut.sqlite", "--format", "json").stdout)
    assert hunts[0]["status"] == "interrupted" and 20 <= hunts[0]["tests"] < whole["tests"]
    if sig == signal.SIGINT:  # the progress a resume shows says where the new tests begin
        n = hunts[0]["tests"]
        shown = run("resume", "1", "--db", "cut.sqlite").stderr.splitlines()
        assert shown[0] == (f"hunt 1: {n} logged tests [1]..[{n}], checked against the hunt "
                            f"set up again; new tests from [{n + 1}]")
        assert any(line.startswith(f"[{n + 1:>3}] ") for line in shown)
        resumed = json.loads(run("query", "hunts", "--db", "cut.sqlite", "--format",
                                 "json").stdout)[0]
    else:
        resumed = _verdict(run, "resume", "1", "--db", "cut.sqlite")
    same = ("status", "confidence", "tests", "boots", "installs", "adapters", "lab_minutes")
    assert {k: resumed[k] for k in same} == {k: whole[k] for k in same}


def test_a_kill_9_loses_no_test_the_hunt_has_shown(slow_bug, tmp_path, start_cli):
    """A test is committed before the hunt shows it and goes on: a bisect killed with SIGKILL
    right after showing test k has tests 1..k logged, each with the boots it showed."""
    proc = start_cli("bisect", "v1.0", "v1.1", "--history", str(slow_bug), "--seed", "21",
                     "--db", "k.sqlite", cwd=tmp_path)
    shown: dict[int, int] = {}
    assert proc.stderr is not None
    for line in proc.stderr:
        if m := re.match(r"\[\s*(\d+)\] .* (\d+) boots?$", line.rstrip()):
            shown[int(m[1])] = int(m[2])
            if len(shown) == 30:
                break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(shown) == 30
    with sqlite3.connect(tmp_path / "k.sqlite") as con:
        logged = dict(con.execute("SELECT seq, boots FROM tests"))
        boots = dict(con.execute("SELECT t.seq, count(*) FROM boots b JOIN tests t "
                                 "ON b.test_id = t.id GROUP BY t.seq"))
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert {seq: logged.get(seq) for seq in shown} == shown
    assert {seq: boots.get(seq) for seq in shown} == shown
    assert sorted(logged) == list(range(1, len(logged) + 1))


def test_only_a_stopped_or_interrupted_hunt_resumes(run, slow_bug):
    assert _verdict(run, "bisect", "v1.0", "v1.1", "--history", str(slow_bug), "--seed", "2")
    result = run("resume", "1")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: hunt 1 is found: only a stopped or interrupted hunt "
                                     "can be resumed")
    assert run("resume", "7").stderr.strip() == "error: no hunt 7 in bisectlab.sqlite"


def test_campaign_workers_die_with_their_parent(run, slow_bug, tmp_path, start_cli,
                                                wait_for_count):
    psutil = pytest.importorskip("psutil")
    proc = start_cli("replay", "campaign", "--history", str(slow_bug), "--hunts", "60",
                     "--strategy", "bayes", "--workers", "2", "--db", "c.sqlite", "-q",
                     cwd=tmp_path)
    wait_for_count(tmp_path / "c.sqlite", "SELECT count(*) FROM hunts", 2, proc)
    deadline = time.monotonic() + 60
    while not (workers := psutil.Process(proc.pid).children()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the pool starts its workers as the first hunts are handed out
    assert workers
    proc.kill()  # kill -9 of the campaign's own process, not of its group
    proc.wait()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert alive == []


@pytest.mark.parametrize("command", [("status",), ("good",)])
def test_a_manual_hunt_cut_short_mid_step_stays_open(run, monkeypatch, command):
    """A manual hunt has no process to lose: Ctrl-C during `status` or `good` leaves it waiting."""
    import bisectlab.driver

    assert run("bisect", "v2.6.26", "v2.6.27-rc8", "--manual", "--seed", "3").exit_code == 0
    assert run("good").exit_code == 0

    def cut_short(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(bisectlab.driver, "drive", cut_short)
        assert run(*command).exit_code == 130
    hunts = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert [(h["status"], h["tests"]) for h in hunts] == [("waiting", 1)]
    assert run("bad", "--boots", "2").exit_code == 0
    assert json.loads(run("query", "hunts", "--format", "json").stdout)[0]["tests"] == 2


def test_an_interrupted_campaign_hunt_is_left_to_its_campaign(run, tmp_path):
    """A campaign hunt's slot is run again by its campaign's command; resume would have failed
    at its first destroyed adapter (a campaign's box is not logged) and kept half a hunt."""
    assert run("replay", "intel-lab", "--hunts", "1", "--strategy", "git", "--rigs", "1",
               "--workers", "1", "-q").exit_code == 0
    with sqlite3.connect(tmp_path / "bisectlab.sqlite") as db:
        db.execute("update hunts set status = 'interrupted' where id = 1")
    result = run("resume", "1")
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: hunt 1 is one of campaign 1's: the campaign's "
                                     "command, run again, runs its unfinished hunts again")


def test_a_database_failing_as_the_verdict_is_written_keeps_the_hunt_to_resume(run, slow_bug,
                                                                             monkeypatch):
    """Its tests are logged: exit 1 saying the hunt is kept (exit 2 would say bad input,
    nothing written), and resume writes the verdict of the uninterrupted hunt."""
    from bisectlab.errors import StoreError
    from bisectlab.store import Store

    whole = _verdict(run, "bisect", "v1.0", "v1.1", "--history", str(slow_bug), "--seed", "2",
                     "--db", "whole.sqlite")
    finish = Store.finish_hunt

    def fails_at_the_verdict(self, hunt_id, **verdict):
        if verdict["status"] != "interrupted":
            raise StoreError("database error in bisectlab.sqlite: disk I/O error")
        return finish(self, hunt_id, **verdict)

    with monkeypatch.context() as patched:
        patched.setattr(Store, "finish_hunt", fails_at_the_verdict)
        result = run("bisect", "v1.0", "v1.1", "--history", str(slow_bug), "--seed", "2", "-q")
    assert result.exit_code == 1
    assert result.stderr == ("error: database error in bisectlab.sqlite: disk I/O error; hunt 1 "
                             "is kept: bisectlab resume 1 goes on\n")
    resumed = _verdict(run, "resume", "1")
    assert {k: resumed[k] for k in SAME} == {k: whole[k] for k in SAME}


def test_an_unfinished_campaign_hunt_points_to_its_campaign_not_to_resume():
    """resume refuses a campaign's hunt (the campaign runs its unfinished hunts again), so
    replay hunt must not send the user there."""
    from bisectlab.replay import ReplayReport

    alone = ReplayReport(3, False, 12, unfinished="interrupted").describe()
    of_campaign = ReplayReport(3, False, 12, unfinished="interrupted", campaign=1).describe()
    assert alone.endswith("`bisectlab resume 3` continues it")
    assert of_campaign.endswith("campaign 1's command, run again, runs it again")
    assert "resume" not in of_campaign
