"""git's own bisection on DAGs, and its k-retry variant.

git (bisect.c, Documentation/git-bisect-lk2009.txt) counts, for every candidate x, the candidates
X that are ancestors-or-self of x, and tests the x maximising min(X, N - X). A failure makes x the
new BAD (keep its ancestors); a pass makes x GOOD (drop its ancestors). One remaining candidate is
the first bad commit. ``retry`` boots each commit up to k times: bad at the first failure, good
after k passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bisectlab.options import StrategyOptions, option
from bisectlab.strategies.base import (
    Observation,
    Proposal,
    Resources,
    SearchSpace,
    Strategy,
    Verdict,
)

MAX_RETRIES = 10_000


@dataclass(frozen=True)
class GitOptions(StrategyOptions):
    """git takes no options: one boot per test, trusted."""

    strategy = "git"


@dataclass(frozen=True)
class RetryOptions(StrategyOptions):
    """retry: how many clean boots make a commit good."""

    strategy = "retry"
    retries: int = option(5, key="k", flag="--retries", low=1, high=MAX_RETRIES, whole=True,
                          help="boots per test: bad at the first failure, good after k passes")


class GitStrategy(Strategy):
    """git bisect: one boot per test, trusted as the truth."""

    name = "git"
    Options = GitOptions
    boots_per_test = 1

    def __init__(self, space: SearchSpace, options: StrategyOptions | None = None):
        super().__init__(space, options)
        self.alive = np.ones(len(space), dtype=bool)
        self.bad = len(space) - 1

    def remaining(self) -> int:
        """Candidates still in play (git's 'revisions left' plus the current bad)."""
        return int(self.alive.sum())

    def splits(self) -> tuple[np.ndarray, np.ndarray]:
        """Alive local commits and their split min(X, N - X)."""
        counts = self.space.sums.sums(self.alive.astype(np.int64))
        n = self.remaining()
        idx = np.flatnonzero(self.alive)
        x = counts[idx]
        return idx, np.minimum(x, n - x)

    def best_local(self) -> int:
        """git's choice: the largest split; ties go to the oldest commit, as git's mostly do."""
        idx, split = self.splits()
        return int(idx[np.argmax(split)])

    def propose(self, resources: Resources) -> Proposal:
        return Proposal((int(self.space.commits[self.best_local()]),), self.boots_per_test)

    def belief(self) -> np.ndarray:
        """git trusts every test: the candidates left in play, equally likely."""
        return self.alive / self.alive.sum()

    def split_of(self, commit: int) -> int:
        """min(X, N - X) of one commit under the current state (for comparing with git)."""
        idx, split = self.splits()
        local = self.space.local[commit]
        return int(split[np.searchsorted(idx, local)])

    def observe(self, obs: Observation) -> None:
        super().observe(obs)
        local = self.space.local.get(obs.commit)
        if local is None or not self.alive[local]:
            return
        anc = self.space.ancestor_mask(local)
        if self.judged_bad(obs):
            self.alive &= anc
            self.bad = local
        elif self.judged_good(obs):
            self.alive &= ~anc

    def judged_bad(self, obs: Observation) -> bool:
        return obs.failed

    def judged_good(self, obs: Observation) -> bool:
        return not obs.failed and obs.boots >= self.boots_per_test

    def verdict(self) -> Verdict | None:
        if self.remaining() > 1:
            return None
        culprit = int(self.space.commits[self.bad])
        return Verdict("found", culprit, None, f"{self.name}: first bad commit",
                       1, self.evidence(culprit))

    def abort(self, reason: str, status: str = "aborted") -> Verdict:
        guess = int(self.space.commits[self.bad])
        left = self.remaining()
        return Verdict(status, guess, None,
                       f"{reason}; {left} candidates left, best guess is the last bad commit",
                       left, self.evidence(guess))

    def progress(self) -> str:
        left = self.remaining() - 1
        steps = int(np.log2(left)) if left > 0 else 0
        return f"{left} revisions left to test after this (roughly {steps} steps)"


class RetryStrategy(GitStrategy):
    """git bisect with k boots per test: bad at the first failure, good after k passes."""

    name = "retry"
    Options = RetryOptions

    def __init__(self, space: SearchSpace, options: RetryOptions | None = None):
        super().__init__(space, options)
        self.boots_per_test = self.options.retries
