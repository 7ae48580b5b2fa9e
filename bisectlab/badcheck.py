"""Checking BAD before a hunt, as ktest's BISECT_CHECK does, for a bug that shows now and then.

A hunt in which no test fails names BAD, as git bisect would; with a bug that may be rare, bayes
names it only once every older commit is ruled out at the lowest detection rate it still
believes, thousands of tests for a test that cannot fail. Booting BAD first says at once whether
the bug shows here at all. The driver runs the check; the strategy hears it only if the bug
showed (its boots then teach p).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bisectlab.strategies import Observation, Proposal


@dataclass(frozen=True)
class BadCheck:
    """BAD booted up to ``boots`` times, stopping at the first failure, before the strategy's
    first test; a BAD where the bug never showed, or that could not be tested, ends the hunt
    inconclusive there. A manual check may come in parts (``good --boots 5`` of 20): BAD is
    asked for again until its boots are done."""

    bad: int
    boots: int
    bad_name: str = "BAD"

    def proposal(self, so_far: Sequence[Observation]) -> Proposal:
        """BAD, for the boots still to do."""
        return Proposal((self.bad,), self.boots - sum(t.boots for t in so_far))

    @staticmethod
    def showed(so_far: Sequence[Observation]) -> bool:
        """Whether the bug showed at BAD: the check is over, the hunt goes on."""
        return any(t.failed for t in so_far)

    def refuted(self, so_far: Sequence[Observation], note: str = "") -> str | None:
        """Why the check ends the hunt (None: the bug showed, or boots are still to do);
        ``note``: the last test's, which says why a skipped one could not be tested."""
        if any(t.skipped for t in so_far):
            why = f" ({note})" if note else ""
            return (f"BAD ({self.bad_name}) could not be tested{why}: --check-bad needs the "
                    "bug to show there first")
        booted = sum(t.boots for t in so_far)
        if self.showed(so_far) or booted < self.boots:
            return None
        return (f"the bug did not show at BAD ({self.bad_name}) in {booted} "
                f"boot{'s' if booted != 1 else ''}: check the test and the rig, or give "
                "--check-bad more boots if it shows more rarely")

    def span(self, tests: Sequence[Observation]) -> tuple[int, bool]:
        """How many of a hunt's first tests were the check's, and whether its strategy heard
        them (only once the bug showed)."""
        for end in range(1, len(tests) + 1):
            if self.showed(tests[:end]):
                return end, True
            if self.refuted(tests[:end]):
                return end, False
        return len(tests), False
