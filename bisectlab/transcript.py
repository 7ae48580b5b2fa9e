"""Transcripts: a hunt as the commands that replay it, in the spirit of `git bisect log`.

One line starts the hunt (as a manual hunt, whatever lab it ran in), then one line per test in
the order they were logged, each under a `#` comment with its commit's subject, boots and
failures. Replayed into a database (`bisectlab replay log FILE`), a transcript rebuilds the hunt
and continues it by hand, or gives its verdict; its log is the transcript again.

    # bisectlab log: bayes on e1000e-2.6.27 v2.6.26..v2.6.27-rc8, 1 rig: found d92485b39632
    bisectlab bisect v2.6.26 v2.6.27-rc8 --manual --history e1000e-2.6.27 --strategy bayes --seed 5
    # [1] rig1 6b6d4aa3a4b1 Merge branch 'for-linus' of ...: 1 boot, passed
    bisectlab good 6b6d4aa3a4b1... --boots 1 --rig rig1
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from bisectlab.errors import BisectlabError
from bisectlab.kernel import ARCHES
from bisectlab.lab import Costs
from bisectlab.manual import MAX_BOOTS
from bisectlab.options import _shown
from bisectlab.strategies import strategy_class

VERBS = {"pass": "good", "bad": "bad", "skip": "skip"}
UNFINISHED = ("running", "interrupted", "stopped")


@dataclass(frozen=True)
class Transcript:
    """A transcript read back: the arguments of its start line and its tests' outcomes."""

    start: list[str]
    tests: list[tuple[str, str, int, str]]  # (verb, commit sha, boots, rig)


def write_log(hunt: dict[str, Any], tests: list[dict[str, Any]]) -> str:
    """The transcript of a logged hunt (its row and its tests with their boots)."""
    lines = [f"# bisectlab log: {_headline(hunt)}", shlex.join(start_args(hunt))]
    for t in tests:
        verb = "skip" if t.get("skipped") else "bad" if t["failed"] else "good"
        seen = ("skipped" if verb == "skip" else
                f"{_boots(t['boots'])}, {'bug showed' if t['failed'] else 'passed'}")
        lines.append(f"# [{t['seq']}] {t['rig']} {t['commit_sha'][:12]} {t['commit_subject']}: "
                     f"{seen}")
        words = ["bisectlab", verb, t["commit_sha"]]
        if verb != "skip":
            words += ["--boots", str(t["boots"])]
        lines.append(shlex.join([*words, "--rig", t["rig"]]))
    return "\n".join(lines) + "\n"


def _headline(hunt: dict[str, Any]) -> str:
    p = hunt["params"]
    where = hunt["history_source"] if p.get("repo") else hunt["history"]  # a repository's path
    state = hunt["status"]
    if state in UNFINISHED:  # replayed, any of them is a manual hunt waiting: say it once
        state = "unfinished"
    if hunt["culprit_sha"] and state in ("found", "aborted", "inconclusive"):
        state += f" {hunt['culprit_sha'][:12]}"
    rigs = p.get("rigs", 1)
    return (f"{hunt['strategy']} on {where} {hunt['good']}..{hunt['bad']}, {rigs} "
            f"rig{'s' if rigs != 1 else ''}: {state}")


def _boots(n: int) -> str:
    return f"{n} boot{'s' if n != 1 else ''}"


def start_args(hunt: dict[str, Any]) -> list[str]:
    """The `bisectlab bisect` command that starts the hunt again, by hand."""
    p = hunt["params"]
    args = ["bisectlab", "bisect", *hunt["good"].split(), hunt["bad"]]
    if p.get("repo"):
        args += ["--repo", p["repo"]]
    else:
        args += ["--manual", "--history", p.get("history") or hunt["history_source"]]
    args += strategy_args(hunt["strategy"], p["strategy_options"])
    args += ["--rigs", str(p.get("rigs", 1)), "--seed", str(hunt["seed"])]
    if p.get("adapters") is not None:
        args += ["--adapters", str(p["adapters"])]
    if p.get("check_bad"):
        args += ["--check-bad", str(p["check_bad"])]
    if not p.get("repo") and p.get("arch", ARCHES[0]) != ARCHES[0]:  # its true culprit's rigs
        args += ["--arch", p["arch"]]
    if "install_minutes" in p:  # hunts logged before real rigs had costs have none
        for name, minutes in Costs.from_params(p).as_params().items():
            args += ["--" + name.replace("_", "-"), f"{minutes:g}"]
    return args


def strategy_args(strategy: str, logged: dict[str, Any]) -> list[str]:
    """``--strategy NAME[:key=value,...]`` and a flag per option that has one: a flag's value
    may hold commas (``--detect-prior 'beta(2,38)'``), which a ``key=value,...`` list cannot."""
    options = strategy_class(strategy).Options.from_logged(logged)
    specs = options.specs()
    flags: list[str] = []
    items = []
    for name, value in options.changed().items():
        spec = specs[name]
        shown = _shown(value, spec)
        if spec.flag is None:
            items.append(f"{spec.key}={shown}")
        else:
            flags += [spec.flag, shown]
    return ["--strategy", strategy + (":" + ",".join(items) if items else ""), *flags]


def read_log(text: str) -> Transcript:
    """A transcript's start line and tests (BisectlabError, naming the line, if malformed)."""
    start: list[str] | None = None
    tests: list[tuple[str, str, int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise BisectlabError(f"transcript line {number}: {exc}") from None
        if words[:2] == ["bisectlab", "bisect"] and start is None:
            start = words[2:]
            continue
        if start is None or len(words) < 3 or words[0] != "bisectlab" or words[1] not in (
                "good", "bad", "skip", "old", "new"):
            raise BisectlabError(f"transcript line {number} is not a bisectlab bisect start or "
                                 f"a good/bad/skip line: {line[:60]}")
        tests.append(_outcome(words, number))
    if start is None:
        raise BisectlabError("the transcript has no bisectlab bisect line to start from")
    return Transcript(start, tests)


def _whole(text: str, low: int, high: int) -> bool:
    """Whether ``text`` is a whole number in [low, high], in ASCII digits."""
    return text.isascii() and text.isdigit() and low <= int(text) <= high


def _outcome(words: list[str], number: int) -> tuple[str, str, int, str]:
    """(verb, commit, boots, rig) of a good/bad/skip line."""
    verb, commit, rest = words[1], words[2], words[3:]
    boots, rig = 1, ""
    while rest:
        flag, value, rest = rest[0], rest[1] if len(rest) > 1 else None, rest[2:]
        if flag == "--boots" and value is not None and _whole(value, 1, MAX_BOOTS):
            boots = int(value)
        elif flag == "--rig" and value:
            rig = value
        else:
            raise BisectlabError(f"transcript line {number}: unexpected {flag!r}")
    return verb, commit, boots, rig
