"""--check-bad: BAD is booted first, as ktest's BISECT_CHECK does; a BAD where the bug does not
show ends the hunt at once instead of after thousands of tests, and the check is logged and
transcribed with the hunt (resumed: tests/test_resume.py)."""

from __future__ import annotations

import json
import re

import pytest

from bisectlab.badcheck import BadCheck
from bisectlab.strategies import Observation

RANGE = ("v2.6.26", "v2.6.27-rc8")


def verdict(run, *args: str, range_: tuple[str, ...] = RANGE) -> dict:
    result = run("bisect", *range_, *args, "--json", "-q")
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def logged_tests(run, db: str = "bisectlab.sqlite", hunt: int = 1) -> list[dict]:
    result = run("query", "tests", "--hunt", str(hunt), "--db", db, "--format", "json")
    return sorted(json.loads(result.stdout), key=lambda t: t["seq"])


def result(boots: int, failed: bool = False, skipped: bool = False) -> Observation:
    """A test of commit 9 whose last boot failed (or none did)."""
    return Observation(9, boots, int(failed), skipped)


def test_the_check_stops_only_a_bad_that_did_not_show_the_bug_in_every_boot_asked():
    check = BadCheck(9, 20, "f2b7ab812fee")
    assert check.refuted([result(3, failed=True)]) is None
    assert check.refuted([result(20)]) == (
        "the bug did not show at BAD (f2b7ab812fee) in 20 boots: check the test and the rig, "
        "or give --check-bad more boots if it shows more rarely")
    assert check.refuted([result(0, skipped=True)], "install failed (exit 1)") == (
        "BAD (f2b7ab812fee) could not be tested (install failed (exit 1)): --check-bad needs "
        "the bug to show there first")
    in_parts = [result(1), result(5)]  # a manual check: BAD asked for again, for 14 boots
    assert check.refuted(in_parts) is None and check.proposal(in_parts).boots == 14
    assert check.refuted([*in_parts, result(14)]).endswith("in 20 boots: check the test and "
                                                           "the rig, or give --check-bad more "
                                                           "boots if it shows more rarely")


def test_the_check_is_the_first_tests_up_to_a_failure_and_heard_only_then():
    check = BadCheck(9, 20)
    assert check.span([result(1), result(5), result(3, failed=True), result(1)]) == (3, True)
    assert check.span([result(20), result(1)]) == (1, False)
    assert check.span([result(4)]) == (1, False)  # under way


def test_a_rig_where_the_bug_cannot_show_ends_after_the_check_not_thousands_of_tests(run):
    """x86_64 never shows the 2.6.27 bug: without the check the hunt names BAD after 4,247."""
    out = verdict(run, "--arch", "x86_64", "--seed", "1", "--check-bad", "60")
    assert (out["status"], out["culprit"], out["tests"], out["boots"]) == (
        "inconclusive", None, 1, 60)
    assert out["note"].startswith("the bug did not show at BAD (")
    (only,) = logged_tests(run)
    assert only["commit_subject"] == "Linux 2.6.27-rc8" and not only["failed"]


@pytest.mark.parametrize("strategy", ["bayes", "git"])
def test_a_bad_that_shows_the_bug_is_tested_first_then_the_hunt_goes_on(run, strategy):
    out = verdict(run, "--seed", "3", "--check-bad", "100", "--strategy", strategy)
    assert out["status"] == "found" and out["tests"] > 1
    first = logged_tests(run)[0]
    assert first["commit_subject"] == "Linux 2.6.27-rc8" and first["failed"]
    assert 1 <= first["boots"] <= 100


def test_the_check_comes_first_even_where_the_strategy_needs_no_test(run):
    """GOOD is BAD's parent: one candidate, a verdict before any test; the check still runs."""
    out = verdict(run, "4a459fe3fb73", "v2.6.27-rc8", "--arch", "x86_64", "--seed", "1",
                  "--check-bad", "5", range_=())
    assert (out["status"], out["tests"], out["boots"]) == ("inconclusive", 1, 5)


def test_a_check_that_ends_the_hunt_is_shown_as_it_goes(run):
    result = run("bisect", *RANGE, "--arch", "x86_64", "--seed", "1", "--check-bad", "5")
    assert result.exit_code == 1
    assert re.search(r"\[  1\] good f2b7ab812fee Linux 2\.6\.27-rc8 +5 boots", result.stderr)
    assert result.stderr.count("Bisecting:") == 1  # before the check, not after it


def test_a_check_with_no_boots_is_no_check(run):
    assert verdict(run, "--seed", "3", "--check-bad", "0") == verdict(
        run, "--seed", "3", "--db", "plain.sqlite") | {"hunt_id": 1}


@pytest.mark.parametrize("value", ["-1", "nan", "1e20", "2.5", "many"])
def test_a_check_of_no_sense_is_one_error_line(run, value):
    result = run("bisect", *RANGE, "--check-bad", value)
    assert result.exit_code == 2
    assert result.stderr.count("\n") <= 3 and "--check-bad" in result.stderr
    assert "Traceback" not in result.output


def test_a_manual_hunt_asks_for_bad_first_and_its_transcript_keeps_the_check(run, tmp_path):
    started = run("bisect", *RANGE, "--manual", "--check-bad", "20", "--seed", "5")
    assert started.exit_code == 0, started.output
    assert "Linux 2.6.27-rc8 on rig1: boot it up to 20 times" in started.stdout
    part = run("good", "v2.6.27-rc8", "--boots", "6")  # a check may come in parts
    assert part.exit_code == 0 and "Linux 2.6.27-rc8 on rig1: boot it up to 14 times" in part.stdout
    ended = run("good", "v2.6.27-rc8", "--boots", "14")
    assert ended.exit_code == 1 and "did not show at BAD (f2b7ab812fee) in 20 boots" in ended.stdout
    hunts = json.loads(run("query", "hunts", "--format", "json").stdout)
    assert hunts[0]["status"] == "inconclusive"

    run("bisect", *RANGE, "--manual", "--check-bad", "20", "--seed", "5")
    assert run("bad", "v2.6.27-rc8", "--boots", "4", "--hunt", "2").exit_code == 0
    transcript = run("log", "2").stdout
    assert "--check-bad 20" in transcript.splitlines()[1]
    (tmp_path / "t.log").write_text(transcript)
    replayed = run("replay", "log", "t.log", "--db", "again.sqlite")
    assert replayed.exit_code == 0, replayed.output
    kept = ("seq", "commit_sha", "boots", "failures")
    assert [{k: t[k] for k in kept} for t in logged_tests(run, "again.sqlite")] == [
        {k: t[k] for k in kept} for t in logged_tests(run, hunt=2)]
