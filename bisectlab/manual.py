"""A person at the rigs: manual hunts, one process per step, as in the 2008 lab.

bisectlab says which commit(s) to test and exits; the engineer boots them and records each
outcome (good, bad or skip, with the boots it took; old and new when hunting a fix), one command
per test. The hunt lives in the database: each step rebuilds it from its logged tests, takes the
outcome just typed, and says what to test next (the :class:`ManualRunner` is the Runner seam's
third lab: a person typing results).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bisectlab.errors import BisectlabError
from bisectlab.history import History
from bisectlab.lab import AdapterBox, BootRecord, Costs, FittedRigs, TestResult, fit_logged_adapter

MAX_BOOTS = 10_000  # the most boots one typed outcome may say a test took

TERMS = {"good": "pass", "old": "pass", "bad": "bad", "new": "bad", "skip": "skip"}


@dataclass(frozen=True)
class Outcome:
    """What an engineer saw testing one commit: ``pass`` (all boots clean), ``bad`` (the bug
    showed at the last boot) or ``skip`` (untestable), after ``boots`` boots, on ``rig``."""

    commit: int
    verdict: str
    boots: int = 1
    rig: str | None = None


class AwaitingTests(Exception):  # noqa: N818 (not an error: the hunt waits for its engineer)
    """The hunt needs these (commit, rig) tests done, the i-th of up to ``each[i]`` boots
    (stopping at the first failure), before it can go on."""

    def __init__(self, pending: list[tuple[int, str]], each: list[int]):
        super().__init__(f"{len(pending)} test(s) to do")
        self.pending = pending
        self.each = each
        self.hunt_id: int | None = None

    @property
    def tests(self) -> list[tuple[int, str, int]]:
        """The waiting tests as (commit, rig, boots asked)."""
        return [(c, r, n) for (c, r), n in zip(self.pending, self.each, strict=True)]

    @property
    def boots(self) -> int:
        """The most boots any waiting test asks for."""
        return max(self.each, default=1)

    def boots_for(self, commit: int, rig: str | None = None) -> int:
        """The boots asked of the waiting test of ``commit`` (on ``rig``, if named)."""
        return max((n for c, r, n in self.tests if c == commit and rig in (None, r)),
                   default=self.boots)


@dataclass
class Slot:
    """A manual rig: a name and the adapter fitted in it."""

    name: str
    adapter: str | None = None
    installed: int | None = None  # the commit the rig last installed


@dataclass
class ManualRunner(FittedRigs[Slot]):
    """Results typed by a person: a Runner that returns the outcome recorded for a test, or
    stops the hunt with the tests it still needs."""

    history: History
    rigs: list[Slot]
    box: AdapterBox
    typed: list[Outcome] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)
    costs: Costs | None = None  # the lab's minutes, as the strategy prices tests

    @classmethod
    def build(cls, history: History, *, rigs: int, adapters: int | None, seed: int,
              typed: list[Outcome] | None = None, costs: Costs | None = None) -> ManualRunner:
        box = AdapterBox.of(adapters, seed, model="adapter")
        slots = [Slot(f"rig{i + 1}") for i in range(rigs)]
        for slot in slots:
            slot.adapter = box.take()
        return cls(history, slots, box, list(typed or []), costs=costs)

    def run(self, commit: int, boots: int, rig: Slot) -> TestResult:
        return self.run_round([(commit, boots, rig)], lambda j, result: None)[0]

    def run_round(self, tests: list[tuple[int, int, Slot]], on_done: Any) -> list[TestResult]:
        """The typed outcomes of this round's tests; AwaitingTests for those still to do."""
        results, pending, asked = [], [], []
        for j, (commit, boots, rig) in enumerate(tests):
            outcome = self._take(commit, rig.name)
            if outcome is None:
                pending.append((commit, rig.name))
                asked.append(boots)
                continue
            result = self._result(outcome, rig)
            on_done(j, result)
            results.append(result)
        if pending:
            raise AwaitingTests(pending, asked)
        return results

    def restore(self, commit: int, boots: int, rig: Slot, logged: dict[str, Any]) -> TestResult:
        """A test logged at an earlier step: taken as it is, adapters and attempts moved on."""
        result = TestResult.from_log(commit, logged)
        self.attempts[commit] = self.attempts.get(commit, 0) + len(result.boots)
        slot = next((r for r in self.rigs if r.name == result.rig), rig)
        fit_logged_adapter(self.rigs, slot, result)
        slot.installed = None if result.skipped else commit
        for _ in result.destroyed:
            slot.adapter = self.box.take()
        return result

    def _take(self, commit: int, rig: str) -> Outcome | None:
        """The typed outcome for this test (its commit, and its rig if one was named)."""
        for i, outcome in enumerate(self.typed):
            if outcome.commit == commit and outcome.rig in (None, rig):
                return self.typed.pop(i)
        return None

    def _result(self, outcome: Outcome, rig: Slot) -> TestResult:
        """A typed outcome as a test result: its boots, the adapter a bad one destroyed."""
        first = self.attempts.get(outcome.commit, 0)
        boots = 0 if outcome.verdict == "skip" else outcome.boots
        self.attempts[outcome.commit] = first + boots
        records = tuple(BootRecord(first + k + 1, None, outcome.verdict == "bad" and k == boots - 1,
                                   False, rig.adapter) for k in range(boots))
        destroyed: tuple[str, ...] = ()
        if outcome.verdict == "bad" and rig.adapter is not None:
            destroyed = (rig.adapter,)
            rig.adapter = self.box.take()
        installed = rig.installed != outcome.commit
        rig.installed = None if outcome.verdict == "skip" else outcome.commit
        minutes = 0.0  # nobody times the engineer: the hunt's prices count, where it has them
        if self.costs is not None:
            minutes = self.costs.of_test(installed, boots,
                                         swaps=bool(destroyed) and rig.adapter is not None)
        return TestResult(outcome.commit, rig.name, records, destroyed, minutes,
                          installed, skipped=outcome.verdict == "skip",
                          note="skipped by hand" if outcome.verdict == "skip" else "")


def outcome_from_words(term: str, commit: int, boots: int, rig: str | None) -> Outcome:
    """An outcome from git's words (good, bad, skip; old, new when hunting a fix)."""
    if term not in TERMS:
        raise BisectlabError(f"'{term}' is not an outcome (say {', '.join(TERMS)})")
    return Outcome(commit, TERMS[term], boots, rig)


def waiting_text(history: History, tests: Sequence[tuple[int, str]]) -> str:
    """Waiting tests as error messages name them: 'sha12 on rig1, sha12 on rig2'."""
    return ", ".join(f"{history.shas[c][:12]} on {r}" for c, r in tests)
