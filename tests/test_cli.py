"""The command line as a user meets it: CliRunner against a tmp_path database."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest

from bisectlab.cli import cli

JSON_KEYS = {"hunt_id", "status", "culprit", "true_culprit", "correct", "confidence", "tests",
             "boots", "installs", "adapters", "lab_minutes"}


def test_bisect_json_verdict_and_query_agree(run, tmp_path):
    result = run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "4", "--strategy", "git", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= JSON_KEYS
    assert report["status"] == "found" and report["tests"] >= 10
    assert (tmp_path / "bisectlab.sqlite").exists()
    hunts = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert hunts[0]["id"] == report["hunt_id"] and hunts[0]["tests"] == report["tests"]
    tests = json.loads(run("query", "tests", "--hunt", "1", "--format", "json").stdout)
    assert len(tests) == report["tests"]
    adapters = json.loads(run("query", "adapters", "--hunt", "1", "--format", "json").stdout)
    destroyed = [a for a in adapters if a["state"] == "destroyed"]
    assert len(destroyed) == report["adapters"]
    failed_tests = {t["id"] for t in tests if t["failed"]}
    assert {a["destroyed_by_test_id"] for a in destroyed} == failed_tests


def test_bisect_text_verdict_shows_cost_and_truth(run):
    result = run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "4", "--strategy", "retry",
                 "--retries", "3", "-q")
    assert result.exit_code == 0
    out = result.stdout
    assert "is the first bad commit" in out
    assert "tests" in out and "adapters destroyed" in out and "lab hours" in out
    assert "true culprit" in out and "ftrace: use dynamic patching" in out
    assert result.stderr == ""


def test_the_verdict_says_whether_p_was_learnt_or_assumed(run):
    learnt = run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "3", "-q").stdout
    assert re.search(r"\n  learnt p     0\.\d{3} per boot \(90% interval 0\.\d{3}\.\.0\.\d{3}\)\n",
                     learnt)
    assumed = run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "3", "--assume-detect", "0.05",
                  "-q").stdout
    assert "\n  assumed p    0.050 per boot (--assume-detect: not learnt)\n" in assumed
    assert "learnt p" not in assumed


def test_progress_speaks_git(run):
    result = run("bisect", "v2.6.26", "v2.6.27-rc1", "--seed", "2", "--strategy", "git")
    assert "revisions left to test after this (roughly" in result.stderr


def test_query_csv_and_table(run):
    run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "1", "-q", "--strategy", "git")
    csv_out = run("query", "tests", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("id,hunt_id,seq,commit_sha")
    table = run("query", "hunts").stdout
    assert "strategy" in table and "git" in table
    header = run("query", "tests").stdout.splitlines()[0].split()
    assert {"rig", "boots", "failed", "installed", "skipped", "note"} <= set(header)


def test_a_tests_boots_are_asked_of_its_own_hunt(run):
    """--test with --hunt: the boots of that hunt's test, or one error line (the boots of
    another hunt's test were shown)."""
    for seed in ("1", "2"):
        run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", seed, "-q", "--strategy", "git")
    first_of_2 = json.loads(run("query", "tests", "--hunt", "2", "--format", "json").stdout)[0]
    boots = json.loads(run("query", "boots", "--test", str(first_of_2["id"]), "--hunt", "2",
                           "--format", "json").stdout)
    assert boots and {b["test_id"] for b in boots} == {first_of_2["id"]}
    refused = run("query", "boots", "--test", "1", "--hunt", "2")
    assert refused.exit_code == 2 and refused.stdout == ""
    assert refused.stderr == ("error: test 1 is not one of hunt 2's (its tests: bisectlab query "
                              "tests --hunt 2)\n")



def test_a_table_shows_logged_text_as_it_is_not_as_markup():
    from bisectlab.cli.params import text_table

    rows = [{"note": "make: *** [vmlinux] Error 2", "subject": "fix [bold]thing[/bold]"}]
    shown = text_table(rows, None)
    assert "make: *** [vmlinux] Error 2" in shown and "fix [bold]thing[/bold]" in shown

def _one_error_line(result) -> str:
    assert result.exit_code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize("args, message", [
    (["bisect", "v2.6.26", "v9.9"], "unknown ref 'v9.9'"),
    (["bisect", "v2.6.27-rc8", "v2.6.26"], "not an ancestor"),
    (["bisect", "v2.6.27-rc8", "v2.6.27-rc8"], "same commit"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--history", "missing.toml"], "not found"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--history", "no-such-scenario"], "unknown history"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--adapters", "-1"], "--adapters"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", "magic"], "unknown strategy 'magic'"),
    (["boot", "deadbeefdeadbeef"], "unknown ref"),
    (["query", "tests", "--hunt", "42"], "no results database at bisectlab.sqlite"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", "git", "--boots-per-install", "10"],
     "--boots-per-install is not an option of git"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--boot-minutes", "0"],
     "'--boot-minutes': must be in (0, 10000000], not 0"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--install", "make"],
     "--install goes with --run: it is about the rigs that run the test command"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--repo", ".", "--keep-worktrees"],
     "--keep-worktrees goes with --run"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--manual", "--on-timeout", "skip"],
     "--on-timeout goes with --run"),  # given at its default value: still a mistake
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--repo", ".", "--arch", "i386"],
     "--arch is the simulated lab's"),  # a manual hunt on a scenario takes it: its true culprit
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--weight", "drivers/net/e100e=10"],
     "--weight drivers/net/e100e=10: no candidate commit touches drivers/net/e100e"),
    (["replay", "hunt", "1" + "0" * 20], "'HUNT_ID': must be in [1, 9223372036854775807]"),
    (["report", "0"], "'HUNT_ID': must be in [1, 9223372036854775807], not 0"),
    (["query", "boots", "--test", "1e30"], "'--test': must be in [1, 9223372036854775807]"),
    (["bench", "--history", "k.toml", "--commits", "1000"],  # it ran the same hunts per size
     "--commits sizes a generated history: the history of --history has its own size"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(run, tmp_path, args, message):
    line = _one_error_line(run(*args))
    assert message in line
    if args[0] == "bisect":
        assert not (tmp_path / "bisectlab.sqlite").exists()


def test_a_hand_edited_json_column_is_one_error_line(run, tmp_path):
    import sqlite3

    for seed in ("1", "2"):
        run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", seed, "-q", "--strategy", "git")
    with sqlite3.connect(tmp_path / "bisectlab.sqlite") as db:
        db.execute("UPDATE hunts SET params = '{broken' WHERE id = 1")
    line = _one_error_line(run("query", "hunts"))
    assert line == ("error: hunt 1's params in the database: not the JSON bisectlab wrote "
                    "('{broken'): was it edited by hand?")
    assert run("query", "tests", "--hunt", "2").exit_code == 0  # another hunt reads as before


def test_malformed_history_file(run, tmp_path):
    (tmp_path / "bad.toml").write_text("name = [unclosed\n")
    line = _one_error_line(run("bisect", "v1.0", "v1.1", "--history", "bad.toml"))
    assert "malformed history file" in line


def test_non_database_db_is_refused_and_left_untouched(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my lab notes\n")
    before = notes.read_bytes()
    line = _one_error_line(run("bisect", "v2.6.26", "v2.6.27-rc8", "--db", str(notes)))
    assert "not a" in line and "database" in line
    assert notes.read_bytes() == before


def test_bad_input_never_loses_logged_hunts(run, tmp_path):
    run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "1", "-q", "--strategy", "git")
    db = tmp_path / "bisectlab.sqlite"
    before = sqlite3.connect(db).execute("select count(*) from tests").fetchone()[0]
    _one_error_line(run("bisect", "v2.6.26", "nope"))
    _one_error_line(run("bisect", "v2.6.26", "v2.6.27-rc8", "--adapters", "-3"))
    after = sqlite3.connect(db).execute("select count(*) from tests").fetchone()[0]
    assert before == after > 0


def test_an_empty_bisectlab_db_is_one_line_not_the_default_database(run, tmp_path, monkeypatch):
    monkeypatch.setenv("BISECTLAB_DB", "")
    line = _one_error_line(run("bisect", "v2.6.26", "v2.6.27-rc1", "--strategy", "git"))
    assert "BISECTLAB_DB is set to empty text" in line
    assert not (tmp_path / "bisectlab.sqlite").exists()


def test_a_strategy_option_may_hold_commas_in_brackets(run):
    typed = run("bench", "--commits", "200", "--hunts", "1", "-q", "--json", "--strategy",
                "bayes:detect-prior=beta(2,38),confidence=0.95")
    assert typed.exit_code == 0, typed.stderr
    spaced = run("bench", "--commits", "200", "--hunts", "1", "-q", "--json", "--strategy",
                 "bayes:confidence=0.95", "--detect-prior", "beta(2, 38)")
    report, same = json.loads(typed.stdout), json.loads(spaced.stdout)
    assert report["label"] == "bayes:detect-prior=beta(2,38),confidence=0.95"
    assert report["options"]["detect_prior"] == "beta(2,38)"
    assert report["options"]["confidence"] == 0.95
    assert {k: v for k, v in report.items() if k not in ("label", "options")} == \
        {k: v for k, v in same.items() if k not in ("label", "options")}  # the same hunt


def test_db_option_and_env_take_urls_and_paths(run, tmp_path, monkeypatch):
    target = tmp_path / "elsewhere.sqlite"
    assert run("bisect", "v2.6.26", "v2.6.27-rc1", "--seed", "1", "-q", "--strategy", "git",
               "--db", str(target)).exit_code == 0
    monkeypatch.setenv("BISECTLAB_DB", f"sqlite:///{target}")
    hunts = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert len(hunts) == 1 and not (tmp_path / "bisectlab.sqlite").exists()


def test_the_verdict_names_the_query_that_reads_the_hunt_back(run, tmp_path):
    given = run("bisect", "v2.6.26", "v2.6.27-rc1", "--seed", "1", "-q", "--strategy", "git",
                "--db", "my hunts.sqlite").stdout
    assert "  hunt 1 logged in my hunts.sqlite (bisectlab query tests --hunt 1 --db " \
        "'my hunts.sqlite'); seed 1\n" in given
    hint = shlex.split(re.search(r"\((bisectlab query [^)]*)\)", given).group(1))
    assert len(json.loads(run(*hint[1:], "--format", "json").stdout)) > 0
    default = run("bisect", "v2.6.26", "v2.6.27-rc1", "--seed", "1", "-q", "--strategy", "git")
    assert "  hunt 1 logged in bisectlab.sqlite (bisectlab query tests --hunt 1); seed 1\n" \
        in default.stdout
    memory = run("bisect", "v2.6.26", "v2.6.27-rc1", "--seed", "1", "-q", "--strategy", "git",
                 "--db", "sqlite://").stdout
    assert "  hunt 1 kept in memory only, gone when this command ends (--db FILE keeps it)" \
        in memory and "query" not in memory


def test_a_reader_that_leaves_ends_the_command_quietly_with_sigpipes_status(tmp_path):
    """`bisectlab ... | head -1`: not exit 1, which would read as "no verdict", nor a traceback,
    but what a shell shows for a writer killed by SIGPIPE (the output is far larger than a
    pipe holds, so the writer is still writing when the reader goes)."""
    bisectlab = str(Path(sys.executable).parent / "bisectlab")
    with subprocess.Popen([bisectlab, "history", "log", "-n", "20000"], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as writer:
        assert writer.stdout.readline()
        writer.stdout.close()
        assert writer.wait(timeout=60) == 141
        assert writer.stderr.read() == b""


def test_an_error_line_to_a_stderr_whose_reader_left_is_141_too(tmp_path):
    """The error line itself may meet the closed pipe: still 141, never 1 ("no verdict")."""
    bisectlab = str(Path(sys.executable).parent / "bisectlab")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([bisectlab, "query", "hunts", "--db", "nope.sqlite"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=write_end, timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 141


def test_a_broken_pipe_to_a_child_is_an_error_not_a_reader_that_left(run, monkeypatch):
    """Only our own output's reader leaving means 141: git fast-import dying under us is an
    error line, exit 2."""
    import bisectlab.gitexport

    def dies(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(bisectlab.gitexport, "export_git", dies)
    line = _one_error_line(run("history", "export-git", "e1000e-2.6.27", "repo"))
    assert line == "error: Broken pipe: a program bisectlab writes to stopped reading"


def test_out_of_adapters_exits_1_with_an_explicit_verdict(run):
    result = run("bisect", "v2.6.26", "v2.6.27-rc8", "--adapters", "0", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["status"] == "aborted" and "out of adapters" in report["note"]


def test_the_verdicts_evidence_counts_in_words(run):
    """One boot, one failure: the evidence line says each count with its noun, singular or not."""
    result = run("bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", "git", "--seed", "1")
    assert result.exit_code == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.strip().startswith("evidence")]
    assert line.split(None, 1)[1] == "culprit 1 boot / 1 failure; parent c9e9bcae1829 1 boot / 0 failures"


def test_boot_shows_a_log(run):
    result = run("boot", "v2.6.27-rc8", "--seed", "3")
    assert result.exit_code == 0
    assert "e1000e" in result.stdout and "# outcome:" in result.stdout


def test_boot_exit_status_serves_git_bisect_run(run):
    """With --exit-status a destroyed adapter is exit 1 (bad to git bisect run), else 0."""
    bricked = run("boot", "v2.6.27-rc8", "--seed", "16", "--exit-status")
    assert bricked.exit_code == 1 and "ADAPTER DESTROYED" in bricked.stdout
    plain = run("boot", "v2.6.27-rc8", "--seed", "16")
    assert plain.exit_code == 0 and "ADAPTER DESTROYED" in plain.stdout
    assert run("boot", "v2.6.26", "--seed", "16", "--exit-status").exit_code == 0


def test_history_commands(run, tmp_path):
    show = json.loads(run("history", "show", "e1000e-2.6.27", "--json").stdout)
    assert show["commits"] == 11375 and show["ranges"][0]["culprit_upstream"] == "d61f82d0"
    log = run("history", "log", "e1000e-2.6.27", "-n", "5").stdout.splitlines()
    assert len(log) == 5 and "v2.6.27.1" in log[0]
    graph = run("history", "log", "e1000e-2.6.27", "--graph", "-n", "40").stdout
    assert "*" in graph and ("\\" in graph or "/" in graph)
    out = tmp_path / "gen.toml"
    assert run("history", "generate", "--commits", "500", "--seed", "3", "--bug", "rate",
               "--detect", "1", "-o", str(out)).exit_code == 0
    gen = json.loads(run("history", "show", str(out), "--json").stdout)
    assert gen["commits"] == 500 and gen["bug"] == "rate" and len(gen["ranges"]) == 1
    r = gen["ranges"][0]
    verdict = json.loads(run("bisect", r["good"], r["bad"], "--history", str(out), "--seed", "1",
                             "--json").stdout)
    assert verdict["correct"] is True and verdict["culprit"] == r["culprit"]


def test_every_command_has_help(run):
    def walk(group, path):
        for name in group.list_commands(None):
            cmd = group.get_command(None, name)
            yield [*path, name], cmd
            if isinstance(cmd, click.Group):
                yield from walk(cmd, [*path, name])

    for path, cmd in walk(cli, []):
        assert cmd.help, path
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Usage:" in result.stdout


def test_boot_exit_status_stops_git_bisect_run_on_an_error(run):
    result = run("boot", "deadbeef", "--exit-status")
    assert result.exit_code == 255 and result.stderr.startswith("error: unknown ref 'deadbeef'")


def test_generate_keeps_an_unreadable_file_it_would_replace(run, tmp_path):
    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    line = _one_error_line(run("history", "generate", "--commits", "50", "--seed", "1",
                               "-o", "bin.toml"))
    assert "exists and differs" in line and (tmp_path / "bin.toml").read_bytes() == bytes(range(256))


def test_bench_json_reports_costs_against_the_bound_per_rig(run):
    result = run("bench", "--commits", "200", "--detect", "1", "--hunts", "4", "--rigs", "2",
                 "--strategy", "retry", "--retries", "3", "--json")
    assert result.exit_code == 0, result.stderr
    s = json.loads(result.stdout)
    assert s["label"] == "retry:k=3" and s["options"] == {"retries": 3} and s["hunts"] == 4
    assert s["rounds_mean"] <= s["tests_mean"] <= s["boots_mean"]
    assert s["rounds_over_bound"] == pytest.approx(s["rounds_mean"] * 2 / s["lower_bound_boots"])
    assert s["boots_over_bound"] == pytest.approx(s["boots_mean"] / s["lower_bound_boots"])


HUGE_REF = "a" * 20_000


@pytest.mark.parametrize("args, message", [
    (["history", "export-git", "e1000e-2.6.27", "/proc/nope"], "cannot make /proc/nope"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--cost-weight", "nan"],
     "--cost-weight must be in [0, 1000000], not nan"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--cost-weight", "inf"],
     "--cost-weight must be in [0, 1000000], not inf"),
    (["bench", "--detect", "nan"], "must be in (0, 1], not nan"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", "retry", "--retries",
      "99999999999999999999999"], "--retries must be in [1, 10000]"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--boots-per-install", "99999999999999999999"],
     "--boots-per-install must be in [1, 10000]"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", "git", "--adapters", "99999999999"],
     "must be in [0, 10000]"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--rigs", "1000000"], "must be in [1, 256]"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--db", ""], "the database is empty text"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--history", ""], "the history is empty text"),
    (["history", "show", " "], "the history is empty text"),
    (["bench", "--history", "", "--hunts", "1"], "the history is empty text"),
    (["bisect", "v1.0", "v1.1", "--repo", ""], "'--repo': is empty"),
    (["history", "generate", "--commits", "20", "--seed", "1", "-o", ""], "is empty"),
    (["history", "import-git", "", "-o", "x.npz"], "'DIRECTORY': is empty"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--weight", ""], "--weight is empty"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", "bayes:weight=;"], "--weight is empty"),
    (["replay", "intel-lab", "--hunts", "1", "--scheduler", " "], "--scheduler is empty"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--history", "."], "history file . is a directory"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--db", "::::"], "neither a database URL"),
    (["bisect", "v2.6.27-rc8", "v2.6.26"], "(swapped? BAD is an ancestor of GOOD)"),
    (["bisect", "v2.6.26", HUGE_REF], f"unknown ref '{'a' * 57}...' in e1000e-2.6.27"),
    (["query"], "Choose from: hunts, tests, adapters, boots, campaigns"),
    (["boot", "v2.6.26", "--history", "a\nb"], "unknown history 'a b'"),
    (["query", "hunts", "--db", "sqlite://"], "a database in memory holds nothing to read"),
    (["query", "hunts", "--db", "sqlite:///"], "a database in memory holds nothing to read"),
    (["bisect", "v2.6.26", "v2.6.27-rc8", "--manual", "--db", "sqlite://"],
     "a hunt by hand goes on in later commands (good, bad, skip): give --db a file"),
    (["perf", "--quick", "--baseline", "HEAD"], "--baseline goes with --scale"),
    (["perf", "--quick", "--scale", "--campaign"], "--campaign and --scale are separate runs"),
    (["bench", "--commits", "100", "--commits", "100"], "--commits repeats a value"),
    (["bench", "--detect", "0.5", "--detect", "0.50"], "--detect repeats a value"),
])
def test_numbers_that_make_no_sense_and_odd_names_are_one_line(run, tmp_path, args, message):
    line = _one_error_line(run(*args))
    assert message in line and len(line) < 300
    assert not (tmp_path / "bisectlab.sqlite").exists() and not (tmp_path / "::::").exists()


@pytest.mark.parametrize("text, message", [
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 1000000000000\n",
     "12 to 5,000,000 commits, not 1,000,000,000,000"),
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 100\n[[range]]\ngood = 'v1.0'\nbad = 'v9.9'\n",
     "unknown ref 'v9.9'"),
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 200\nrc = nan\n",
     "[generate] rc must be a whole number in [0, 50], not nan"),
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 200\nwindow_share = 5.0\n",
     "[generate] window_share must be a number in [0.01, 0.99], not 5.0"),
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 200\nrc_days = [1e300]\n",
     "rc_days must be a list of whole days in [1, 365]"),
    ("name = 'x'\nseed = 1\n[generate]\ncommits = 200\n[[topic]]\nname = 't'\ncommits = 3\n"
     "merge_at = nan\n", "merge_at must be a number in [0, 1], not nan"),
])
def test_a_scenario_that_cannot_be_is_refused(run, tmp_path, text, message):
    (tmp_path / "odd.toml").write_text(text)
    assert message in _one_error_line(run("history", "show", "odd.toml"))
    assert message in _one_error_line(run("bisect", "v1.0", "v1.1", "--history", "odd.toml"))
    assert not (tmp_path / "bisectlab.sqlite").exists()


def test_boot_exit_status_stops_git_bisect_run_on_a_bad_option_too(run):
    result = run("boot", "v2.6.27-rc8", "--exit-status", "--attempt", "0")
    assert result.exit_code == 255 and result.stderr.startswith("error: Invalid value")


def test_a_table_shows_one_column_of_minutes_one_way():
    from bisectlab.cli.params import _cell

    assert [_cell("lab_minutes", m) for m in (746.0, 2006.0, 12.25)] == ["746.0", "2006.0", "12.2"]
    assert [_cell("confidence", c) for c in (0.99971, 0.05)] == ["0.9997", "0.05"]


def test_a_cost_says_one_of_a_thing_in_the_singular():
    from bisectlab.cli.params import cost_line

    assert cost_line(1, 1, 1, 1, 0.5) == "1 test, 1 boot, 1 install, 1 adapter destroyed, 0.5 lab hours"
    assert cost_line(2, 0, 3, 2, 1.0) == ("2 tests, 0 boots, 3 installs, 2 adapters destroyed, "
                                          "1.0 lab hours")


# from a bad-input audit ------------------------------------------------------------------------


def test_export_graphml_replaces_an_earlier_export_but_never_the_database(run, tmp_path):
    assert run("bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "1", "-q").exit_code == 0
    database = (tmp_path / "bisectlab.sqlite").read_bytes()
    line = _one_error_line(run("history", "export-graphml", "e1000e-2.6.27", "bisectlab.sqlite"))
    assert line == "error: bisectlab.sqlite exists and is not GraphML; pass --force to replace it"
    assert (tmp_path / "bisectlab.sqlite").read_bytes() == database
    for _ in range(2):  # the tour's command run twice
        assert run("history", "export-graphml", "e1000e-2.6.27", "k.graphml").exit_code == 0
    assert run("query", "hunts").exit_code == 0


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("directory, there", [("repo", None), ("repo", "repo"),
                                              ("out/sub/repo", "out")])
def test_an_interrupted_export_git_leaves_the_directory_as_it_found_it(
        run, tmp_path, monkeypatch, directory, there):
    from bisectlab import gitexport

    assert run("history", "generate", "--commits", "200", "--seed", "1",
               "-o", "k.toml").exit_code == 0
    if there is not None:
        (tmp_path / there).mkdir()  # an empty directory, or the parent of those to make
    stream = gitexport.fast_import_stream

    def interrupted(history):
        for i, chunk in enumerate(stream(history)):
            if i == 300:  # a hundred commits in: git fast-import is at work
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(gitexport, "fast_import_stream", interrupted)
    result = run("history", "export-git", "k.toml", directory)
    assert (result.exit_code, result.stderr.strip()) == (130, "interrupted")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == sorted(
        ["k.toml", *([there] if there else [])])
    monkeypatch.setattr(gitexport, "fast_import_stream", stream)
    again = run("history", "export-git", "k.toml", directory)
    assert again.exit_code == 0, again.stderr
    assert (tmp_path / directory / "BISECTLAB").is_file()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_fast_import_dying_is_its_own_error_line_and_leaves_nothing(run, tmp_path,
                                                                        monkeypatch):
    """git's last words, not a broken pipe: a fake git whose fast-import stops reading."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text(f"""#!/bin/sh
case " $* " in *" fast-import "*) echo "fatal: simulated: no space left" >&2; exit 128;; esac
exec {shutil.which("git")} "$@"
""")
    (fake / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    line = _one_error_line(run("history", "export-git", "e1000e-2.6.27", "repo"))
    assert line == "error: git fast-import failed: fatal: simulated: no space left"
    assert not (tmp_path / "repo").exists()


def test_a_broken_history_file_is_one_line_and_boot_exit_status_aborts_git_bisect_run(
        run, tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    assert "cannot read history file empty.npz" in _one_error_line(
        run("history", "show", "empty.npz"))  # not "interrupted"
    assert run("history", "generate", "--commits", "200", "--seed", "1", "--bug", "rate",
               "-o", "k.toml").exit_code == 0
    text = (tmp_path / "k.toml").read_text()
    (tmp_path / "array.toml").write_text(text.replace("[bug]", "[[bug]]"))
    assert "malformed history file" in _one_error_line(
        run("bisect", "v1.0", "v1.1", "--history", "array.toml"))
    for name in ("empty.npz", "array.toml"):
        booted = run("boot", "v1.1", "--history", name, "--exit-status")
        assert booted.exit_code == 255 and booted.stderr.count("\n") == 1, booted.stderr


def test_a_history_file_numbering_what_it_does_not_have_is_refused_at_load(run, tmp_path):
    import numpy as np

    from bisectlab.histfile import write_history_file
    from bisectlab.history import load_history

    write_history_file(load_history("e1000e-2.6.27"), tmp_path / "h.npz")
    with np.load(tmp_path / "h.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["path_ids"] = arrays["path_ids"].copy()
    arrays["path_ids"][0] = 10**6
    np.savez(tmp_path / "bad.npz", **arrays)
    line = _one_error_line(run("history", "show", "bad.npz"))
    assert "malformed history file" in line and "past the path table" in line


def test_a_path_too_long_for_the_system_is_one_line(run):
    line = _one_error_line(run("query", "hunts", "--db", "a" * 300 + ".sqlite"))
    assert line.startswith("error: File name too long: aaa") and line.endswith("...")


@pytest.mark.parametrize("args, message", [
    (["--name", "a\nb"], "--name must be 1-200 printable characters on one line"),
    (["--bug", "rate", "--detect", "0.1", "--false-positive", "0.5"],
     "--false-positive 0.5 must be below --detect 0.1"),
    (["--detect", "0.5"], "--detect and --false-positive need --bug rate"),  # not dropped
    (["--false-positive", "0.5"], "--detect and --false-positive need --bug rate"),
    (["--bug", "none", "--detect", "1"], "--detect and --false-positive need --bug rate"),
])
def test_generate_writes_no_scenario_that_could_not_be_read_back(run, tmp_path, args, message):
    (tmp_path / "keep.toml").write_text("kept\n")
    line = _one_error_line(run("history", "generate", "--commits", "50", "--seed", "1", *args,
                               "-o", "keep.toml", "--force"))
    assert message in line and (tmp_path / "keep.toml").read_text() == "kept\n"


def test_generate_replaces_a_scenario_only_once_the_new_one_is_whole(run, tmp_path, monkeypatch):
    """A write that fails (a full disk, Ctrl-C) leaves the old scenario as it was and no
    temporary file: the new one is written beside it and renamed over it."""
    import bisectlab.histfile

    (tmp_path / "keep.toml").write_text("kept\n")

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bisectlab.histfile.os, "replace", full_disk)
    line = _one_error_line(run("history", "generate", "--commits", "50", "--seed", "1",
                               "-o", "keep.toml", "--force"))
    assert "cannot write keep.toml: No space left on device" in line
    assert (tmp_path / "keep.toml").read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir() if "keep" in p.name) == ["keep.toml"]


def test_generate_writes_to_a_device_without_reading_it_first(run):
    result = run("history", "generate", "--commits", "50", "--seed", "1", "-o", "/dev/null")
    assert result.exit_code == 0, result.stderr


@pytest.mark.parametrize("boots", ["100000000000000000000", "10001", "²"])
def test_a_transcript_with_boots_past_what_a_step_takes_is_one_line(run, tmp_path, boots):
    assert run("bisect", "v2.6.26", "v2.6.27-rc8", "--manual", "--seed", "1", "-q").exit_code == 0
    assert run("good", "-q").exit_code == 0
    text = run("log", "1").stdout
    assert " --boots " in text
    (tmp_path / "t.log").write_text(
        "\n".join(line.rsplit(" --boots ", 1)[0] + f" --boots {boots}" if " --boots " in line
                  and line.split()[1] == "good" else line for line in text.splitlines()))
    line = _one_error_line(run("replay", "log", "t.log", "--db", "other.sqlite"))
    assert "unexpected '--boots'" in line


def test_a_manual_hunt_on_a_scenario_file_steps_from_any_directory(run, tmp_path, monkeypatch):
    assert run("history", "generate", "--commits", "200", "--seed", "1", "--bug", "rate",
               "-o", "k.toml").exit_code == 0
    assert run("bisect", "v1.0", "v1.1", "--history", "k.toml", "--manual", "-q").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (elsewhere / "k.toml").write_text("not the hunt's scenario\n")
    stepped = run("good", "--db", str(tmp_path / "bisectlab.sqlite"), "-q")
    assert stepped.exit_code == 0, stepped.stderr
    assert f"--history {tmp_path / 'k.toml'}" in run(
        "log", "1", "--db", str(tmp_path / "bisectlab.sqlite")).stdout


@pytest.mark.parametrize("args, message", [
    (["--confidence", "0.001"], "--confidence must be in (0.5, 1), not 0.001"),
    (["--assume-false-positive", "0.999"], "--assume-false-positive must be in [0, 0.5), not 0.999"),
    (["--assume-detect", "0.1", "--assume-false-positive", "0.1"],
     "--assume-false-positive 0.1 must be below --assume-detect 0.1"),
    (["--boot-minutes", "1e-320"], "must be at least 1e-09 in size, not 1e-320"),
    (["--cost-weight", "1e-30"], "--cost-weight must be 0 or at least 1e-09 in size, not 1e-30"),
    (["--weight", "drivers=1e-320"], "--weight takes PATHSPEC=W with 0.01 <= W <= 100"),
    (["--weight", "fs=1e6"], "--weight takes PATHSPEC=W with 0.01 <= W <= 100, not 'fs=1e6'"),
])
def test_values_that_would_name_a_culprit_without_evidence_are_refused(run, tmp_path, args,
                                                                        message):
    """A confidence of a half or less names the oldest commit untested; f at or above p makes
    a good commit as likely to fail as a bad one; a rate or a price below 1e-9 overflows."""
    line = _one_error_line(run("bisect", "v2.6.26", "v2.6.27-rc8", *args))
    assert message in line
    assert not (tmp_path / "bisectlab.sqlite").exists()


def test_perf_campaign_takes_the_hunts_of_a_round(run):
    result = run("perf", "--campaign", "--quick", "--hunts", "4", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["hunts"], report["rounds"], sorted(report["workers"])) == (4, 1, ["1", "2"])
    assert all(w["hunts_per_s"] > 0 for w in report["workers"].values())
    refused = run("perf", "--hunts", "4")
    assert (refused.exit_code, refused.stderr) == (
        2, "error: --hunts goes with --campaign: the hunts of each round\n")


def test_perf_campaign_gives_each_rounds_speed_up_and_their_median(run, monkeypatch):
    """Rounds alternate which worker count goes first; the speed-up is the median of the
    rounds' own ratios, not a ratio of medians."""
    from bisectlab import perf

    order, figures = [], iter([10.0, 15.0, 30.0, 10.0, 20.0, 40.0])  # ratios 1.5, 3, 2
    pairs = iter([18.0, 40.0, 24.0])  # ceilings 1.8, 4, 1.2: each over its own round's 1 worker

    def campaign(scenario, db_file, hunts, workers):
        order.append(workers)
        return {"hunts_per_s": next(figures), "db_share": 0.1, "db_ms_per_hunt": 1.0,
                "hunts_per_cpu_s": 1.0, "own_cpu_ms_per_hunt": 0.5}

    def pair(scenario, db_files, hunts):
        order.append("pair")
        assert len(set(db_files)) == 2
        return {"hunts_per_s": next(pairs), "hunts_per_cpu_s": 1.0}

    monkeypatch.setattr(perf, "_campaign_child", campaign)
    monkeypatch.setattr(perf, "_campaign_pair", pair)
    result = run("perf", "--campaign", "--hunts", "2", "--rounds", "3", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert order == [1, 2, "pair", "pair", 2, 1, 1, 2, "pair"]
    assert report["speedups"] == [1.5, 3.0, 2.0] and report["speedup"] == 2.0
    assert report["workers"]["1"]["hunts_per_s"] == 10.0  # the median of 10, 10, 20
    assert report["ceilings"] == [1.8, 4.0, 1.2] and report["ceiling"] == 1.8
    assert report["of_ceiling"] == pytest.approx(1.5 / 1.8)  # of 1.5/1.8, 3/4, 2/1.2
    assert report["pair"]["hunts_per_s"] == 24.0
    refused = run("perf", "--rounds", "2")
    assert (refused.exit_code, refused.stderr) == (
        2, "error: --rounds goes with --campaign or --targets: the campaign rounds\n")


def fake_targets(monkeypatch, hunts_per_s: float = 55.0, speedup: float = 1.64) -> None:
    """perf --targets' measurements replaced by fixed figures (100,000 commits, --quick)."""
    from bisectlab import perf

    scale = {k: 0.1 for k in perf.SCALE_TARGETS} | {"peak_rss_mb": 600.0, "candidates": 10.0,
                                                      "decision_small_s": 1e-3}
    monkeypatch.setattr(perf, "run_scale", lambda run, baseline: {
        "now": scale, "git": {"git_step_s": 2e-3, "git_step_graph_s": 3e-3}})
    monkeypatch.setattr(perf, "history_file_scale", lambda run: dict(scale))
    monkeypatch.setattr(perf, "campaign_throughput", lambda hunts, rounds: {
        "workers": {"1": {"hunts_per_s": hunts_per_s, "hunts_per_cpu_s": 49.0},
                    "2": {"hunts_per_s": 90.0}},
        "speedup": speedup, "ceiling": 1.75, "of_ceiling": 0.94})
    monkeypatch.setattr(perf, "logging_share", lambda runs: {
        "logging_share": 0.09, "tests": 12.0, "bisect_s": 1.0})
    monkeypatch.setattr(perf, "startup", lambda: 0.2)


def test_perf_targets_sets_each_figure_beside_its_target(run, monkeypatch):
    """The targets table says ok or MISSED by each figure's own direction, and gives the
    machine's ceiling for 2 workers as a reference, judged against nothing."""
    fake_targets(monkeypatch)
    result = run("perf", "--targets", "--quick")
    assert result.exit_code == 0, result.stderr
    rows = {line[:48].strip(): line.split()[-1] for line in result.stdout.splitlines()}
    assert rows["100,000: peak RSS (generated)"] == "MISSED"  # 600 MB against 500
    assert rows["100,000: SearchSpace (generated)"] == "ok"
    assert rows["campaign hunts/s, 1 worker"] == "ok"
    assert rows["campaign hunts per CPU second, 1 worker"] == "MISSED"
    assert rows["campaign speed-up, 2 workers"] == "MISSED"
    assert rows["the machine's ceiling: two 1-worker at once"] == "reference"
    assert "90.0 hunts/s, 94% of the machine's ceiling" in result.stdout
    assert result.stdout.splitlines()[-1].strip().startswith(
        "beyond one process (a Dask cluster of separate commands, 4 processes on one PostgreSQL "
        "database): python experiments/beyond_one_machine.py")


def test_perf_targets_prints_a_figure_that_misses_by_less_than_its_rounding_apart_from_it(
        run, monkeypatch):
    """A speed-up of 1.796x reads 1.796x beside 1.800x, not 1.80x beside 1.80x and MISSED;
    one that meets its target exactly, or misses it by more, keeps the table's decimals."""
    fake_targets(monkeypatch, hunts_per_s=49.96, speedup=1.7996)
    result = run("perf", "--targets", "--quick")
    assert result.exit_code == 0, result.stderr
    rows = {line[:48].strip(): line[48:].split() for line in result.stdout.splitlines()}
    assert rows["campaign hunts/s, 1 worker"][:3] == ["49.96/s", ">=", "50.00/s"]
    assert rows["campaign speed-up, 2 workers"][:3] == ["1.7996x", ">=", "1.8000x"]
    assert rows["campaign speed-up, 2 workers"][-1] == "MISSED"
    assert rows["campaign hunts per CPU second, 1 worker"][:3] == ["49.0/s", ">=", "50.0/s"]
    fake_targets(monkeypatch, hunts_per_s=50.0, speedup=1.8)
    rows = {line[:48].strip(): line[48:].split()
            for line in run("perf", "--targets", "--quick").stdout.splitlines()}
    assert rows["campaign hunts/s, 1 worker"] == ["50.0/s", ">=", "50.0/s", "24.6/s", "ok"]
    assert rows["campaign speed-up, 2 workers"][:3] == ["1.80x", ">=", "1.80x"]


def test_perf_campaign_prints_the_ceiling_beside_the_speed_up(run, monkeypatch):
    from bisectlab import perf

    figures = iter([20.0, 30.0])
    monkeypatch.setattr(perf, "_campaign_child", lambda scenario, db_file, hunts, workers: {
        "hunts_per_s": next(figures), "db_share": 0.1, "db_ms_per_hunt": 2.0,
        "hunts_per_cpu_s": 19.0, "own_cpu_ms_per_hunt": 1.25})
    monkeypatch.setattr(perf, "_campaign_pair", lambda scenario, db_files, hunts: {
        "hunts_per_s": 36.0, "hunts_per_cpu_s": 18.5})
    result = run("perf", "--campaign", "--hunts", "2", "--rounds", "1")
    assert result.exit_code == 0, result.stderr
    assert "  speed-up 1.500x, the median of each round's (1.50) (target >= 1.8x)  MISSED\n" \
        in result.stdout
    assert ("  2 workers:  30.00 hunts/s (19.00 per CPU second, the campaign's process 1.2 ms of "
            "it per hunt), database 2.0 ms per hunt") in result.stdout
    assert ("  two 1-worker campaigns at once, sharing nothing: 36.00 hunts/s while both ran "
            "(18.50 per CPU second), 1.800x one alone (1.80): this machine's ceiling for 2 "
            "workers, of which the 2-worker campaign reached 83%\n") in result.stdout
