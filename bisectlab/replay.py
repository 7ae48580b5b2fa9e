"""Logged hunts read back: re-run one step for step, or retrace what its strategy believed.

A hunt's row holds its history, range, strategy with options, lab and seed, so the simulation can
run it again. :func:`replay_hunt` does, comparing every test with the log (the commit, the rig,
each boot's seed and outcome, the adapters destroyed) and reports identical or the first step
that differs. :func:`retrace` feeds the logged observations to a fresh strategy and keeps its
belief over the candidates after each test (for ``bisectlab report --plot``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bisectlab.driver import (
    HuntSetup,
    bad_check,
    drive,
    logged_test,
    logged_tests,
    logged_verdict,
)
from bisectlab.errors import StoreError
from bisectlab.history import History, load_history
from bisectlab.lab import TestResult
from bisectlab.store import Store, hunt_state
from bisectlab.strategies import Observation, Strategy

BOOT_FIELDS = ("attempt", "seed", "bricked", "stray_write", "adapter_serial")


@dataclass(frozen=True)
class ReplayReport:
    """The outcome of re-running a logged hunt."""

    hunt_id: int
    identical: bool
    compared: int
    step: int | None = None
    difference: str = ""
    unfinished: str = ""  # the state of a hunt that has no verdict yet
    campaign: int | None = None  # the campaign the hunt is one of

    def describe(self) -> str:
        if self.unfinished:
            goes_on = (f"`bisectlab resume {self.hunt_id}` continues it" if self.campaign is None
                       else f"campaign {self.campaign}'s command, run again, runs it again")
            return (f"hunt {self.hunt_id}: unfinished ({self.unfinished}, no verdict to "
                    f"compare): its {self.compared} logged tests replay identically; {goes_on}")
        if self.identical:
            return f"hunt {self.hunt_id}: identical ({self.compared} tests, same boots, same verdict)"
        return f"hunt {self.hunt_id}: diverges at test {self.step}: {self.difference}"


class _Diverged(Exception):
    def __init__(self, step: int, difference: str):
        super().__init__(difference)
        self.step, self.difference = step, difference


class _LogEnds(Exception):
    """The log of an unfinished hunt ends here."""


def logged_history(hunt: dict[str, Any]) -> History:
    """The hunt's history, checked to be the one it ran on."""
    h = load_history(hunt["history_source"])
    for ref, sha in ((hunt["good"], hunt["good_sha"]), (hunt["bad"], hunt["bad_sha"])):
        if h.shas[h.resolve(ref)] != sha:
            raise StoreError(f"hunt {hunt['id']}: history {hunt['history_source']} has changed "
                             f"since it was logged ({ref} is no longer {sha[:12]})")
    return h


def replay_hunt(store: Store, hunt_id: int) -> ReplayReport:
    """Run a logged hunt again and compare it with its log, test by test and boot by boot."""
    hunt = store.hunt(hunt_id)
    h = logged_history(hunt)
    setup = HuntSetup.from_logged(h, hunt)
    prepared = setup.prepare()
    strategy, lab = prepared.strategy, prepared.runner
    recorded = logged_tests(store, hunt_id)
    state = hunt_state(hunt)
    finished = state not in ("running", "stopped", "interrupted")

    def check(seq: int, result: TestResult) -> None:
        if seq > len(recorded):
            if not finished:
                raise _LogEnds
            raise _Diverged(seq, "the log ends here, the replay goes on testing")
        difference = compare_test(recorded[seq - 1], logged_test(h, seq, result))
        if difference:
            raise _Diverged(seq, difference)

    try:
        verdict, totals = drive(strategy, lab, check, check=bad_check(setup, prepared))
    except _LogEnds:
        return ReplayReport(hunt_id, False, len(recorded), unfinished=state,
                            campaign=hunt.get("campaign_id"))
    except _Diverged as d:
        return ReplayReport(hunt_id, False, d.step - 1, d.step, d.difference)
    if not finished:
        return ReplayReport(hunt_id, False, len(recorded), unfinished=state,
                            campaign=hunt.get("campaign_id"))
    ran = totals.tests
    if ran < len(recorded):
        return ReplayReport(hunt_id, False, ran, ran + 1,
                            f"the replay stops after {ran} tests, the log goes on")
    got = {**logged_verdict(h, verdict, prepared.truth),
           "lab_minutes": totals.lab_minutes}
    for key in ("status", "culprit_sha", "correct", "confidence", "lab_minutes"):
        if not _same(got[key], hunt[key]):
            return ReplayReport(hunt_id, False, ran, None,
                                f"same tests, but verdict {key} {got[key]} (logged {hunt[key]})")
    return ReplayReport(hunt_id, True, ran)


def _same(a: Any, b: Any) -> bool:
    """Equal, numbers to within rounding (they went through the database)."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def compare_test(logged: dict[str, Any], replayed: dict[str, Any]) -> str:
    """How a replayed test differs from the logged one ('' if it does not)."""
    if logged["commit_sha"] != replayed["commit_sha"]:
        return (f"logged {logged['commit_sha'][:12]} ({logged['commit_subject']}), replay tests "
                f"{replayed['commit_sha'][:12]} ({replayed['commit_subject']})")
    if logged["rig"] != replayed["rig"]:
        return f"logged on {logged['rig']}, replay on {replayed['rig']}"
    for key in ("failed", "lab_minutes"):
        if not _same(logged[key], replayed[key]):
            return f"logged {key}={logged[key]}, replay {key}={replayed[key]}"
    boots_logged, boots_now = logged["boot_rows"], replayed["boots"]
    for i, (a, b) in enumerate(zip(boots_logged, boots_now, strict=False), start=1):
        for key in BOOT_FIELDS:
            if a[key] != b[key]:
                return f"boot {i}: logged {key}={a[key]}, replay {key}={b[key]}"
    if len(boots_logged) != len(boots_now):
        return f"logged {len(boots_logged)} boots, replay {len(boots_now)}"
    destroyed = [s for s in logged.get("destroyed_serials", "").split(",") if s]
    if destroyed != replayed["adapters_destroyed"]:
        return f"logged adapters destroyed {destroyed}, replay {replayed['adapters_destroyed']}"
    return ""


@dataclass
class Retrace:
    """What a strategy believed over the candidates (oldest first) after each logged test."""

    beliefs: np.ndarray            # (tests + 1, candidates): before any test, then after each
    tests: list[dict[str, Any]]
    tested: np.ndarray             # each test's candidate position (nan: outside the range)
    truth: int | None              # the true culprit's candidate position, if known


def retrace_strategy(store: Store, hunt_id: int, setup: Any = None,
                     after_each: Any = None) -> Strategy:
    """A fresh strategy of a logged hunt (simulated, real or manual) fed its logged tests;
    ``after_each(strategy)`` is called before the first and after each."""
    from bisectlab.driver import setup_of

    setup = setup or setup_of(store.hunt(hunt_id))
    prepared = setup.prepare()
    strategy, check = prepared.strategy, bad_check(setup, prepared)
    h = setup.history
    if after_each is not None:
        after_each(strategy)
    tests = [Observation(h.resolve(t["commit_sha"]), t["boots"], t["failures"],
                         bool(t.get("skipped", False))) for t in logged_tests(store, hunt_id)]
    checks, heard = check.span(tests) if check is not None else (0, True)
    for i, test in enumerate(tests):
        if heard or i >= checks:  # as the hunt heard them: a check of BAD once the bug showed
            strategy.observe(test)
        if after_each is not None:
            after_each(strategy)
    return strategy


def retrace(store: Store, hunt_id: int) -> Retrace:
    """Feed the logged tests to a fresh strategy and record its belief after each."""
    from bisectlab.driver import setup_of

    hunt = store.hunt(hunt_id)
    setup = setup_of(hunt)
    beliefs: list[np.ndarray] = []
    strategy = retrace_strategy(store, hunt_id, setup, lambda s: beliefs.append(s.belief()))
    h, local = setup.history, strategy.space.local
    tests = logged_tests(store, hunt_id)
    tested = np.array([local.get(h.resolve(t["commit_sha"]), np.nan) for t in tests], dtype=float)
    truth = hunt["true_culprit_sha"]
    return Retrace(np.array(beliefs), tests, tested,
                   local.get(h.resolve(truth)) if truth else None)
