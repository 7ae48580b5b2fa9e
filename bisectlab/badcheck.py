"""Checking BAD before a hunt, as ktest's BISECT_CHECK does, for a bug that shows now and then.

A hunt in which no test fails names BAD, as git bisect would; with a bug that may be rare, bayes
names it only once every older commit is ruled out at the lowest detection rate it still
believes, thousands of tests for a test that cannot fail. Booting BAD first says at once whether
the bug shows here at all. The driver runs the check; the strategy hears it only if the bug
showed (its boots then teach p).
"""

from __future__ import annotations

from dataclasses import dataclass

from bisectlab.strategies import Observation, Proposal


@dataclass(frozen=True)
class BadCheck:
    """BAD booted up to ``boots`` times, stopping at the first failure, before the strategy's
    first test; a BAD where the bug never showed, or that could not be tested, ends the hunt
    inconclusive there."""

    bad: int
    boots: int
    bad_name: str = "BAD"

    @property
    def proposal(self) -> Proposal:
        return Proposal((self.bad,), self.boots)

    def refuted(self, result: Observation) -> str | None:
        """Why the check stops the hunt (None: the bug showed at BAD, the hunt goes on)."""
        if result.skipped:
            return (f"BAD ({self.bad_name}) was skipped as untestable: --check-bad needs the bug "
                    "to show there first")
        if result.failed:
            return None
        return (f"the bug did not show at BAD ({self.bad_name}) in {result.boots} "
                f"boot{'s' if result.boots != 1 else ''}: check the test and the rig, or "
                "give --check-bad more boots if it shows more rarely")
