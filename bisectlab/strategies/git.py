"""git's own bisection on DAGs, commit for commit, and its k-retry variant.

git (bisect.c, Documentation/git-bisect-lk2009.txt) counts, for every candidate x, the candidates
X that are ancestors-or-self of x, and tests an x maximising min(X, N - X). Which one, among equal
splits, follows from the order git weighs them in: its revision walk lists the candidates newest
committer date first (ties in the order the walk reached them), bisect.c reverses that list,
weighs the merges first (count_distance), then fills in the other commits pass by pass from their
parent's weight, and takes the first commit it weighs that is close enough to halfway
(|2X - N| <= 1, or < N / 1024); failing that, the first best split in the list. A failure makes x
the new BAD (keep its ancestors); a pass makes x GOOD (drop its ancestors). One remaining
candidate is the first bad commit. ``retry`` boots each commit up to k times: bad at the first
failure, good after k passes.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bisectlab.dag import path_sums
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


def estimate_bisect_steps(total: int) -> int:
    """git's guess of the steps left after the next test, with ``total`` candidates in play."""
    if total < 3:
        return 0
    n = total.bit_length() - 1
    extra = total - (1 << n)
    return n if (1 << n) < 3 * extra else n - 1


def revisions_left(total: int, reaches: int) -> str:
    """git's progress words for testing a commit that reaches ``reaches`` of ``total`` candidates."""
    left = total - reaches - 1
    steps = estimate_bisect_steps(total)
    return (f"{left} revision{'' if left == 1 else 's'} left to test after this "
            f"(roughly {steps} step{'' if steps == 1 else 's'})")


def approx_halfway(reaches: np.ndarray, total: int) -> np.ndarray:
    """git's 'close enough to halfway': |2X - N| <= 1, or below N / 1024 (integer division)."""
    diff = np.abs(2 * reaches - total)
    return (diff <= 1) | (diff < total // 1024)


def revision_walk(space: SearchSpace, alive: np.ndarray, start: int) -> np.ndarray:
    """The alive commits (local) in the order git's walk from ``start`` lists them, as
    `git rev-list BAD ^GOOD...` does: newest committer date first, equal dates first reached first."""
    if dates_decide_the_walk(space, alive):
        idx = np.flatnonzero(alive)
        return idx[np.argsort(-space.times[idx], kind="stable")]
    return queue_walk(space.parents, alive, start, (-space.times).tolist())


def dates_decide_the_walk(space: SearchSpace, alive: np.ndarray) -> bool:
    """True when every alive commit is newer than its alive parents and no two share a date: the
    walk then lists them newest first, whatever order it reaches them in."""
    child, parent = space.edges
    live = alive[child] & alive[parent]
    if np.any(space.times[parent[live]] >= space.times[child[live]]):
        return False
    dates = space.times[alive]
    return len(np.unique(dates)) == len(dates)


def queue_walk(parents: Sequence[tuple[int, ...]], alive: np.ndarray, start: int,
               neg_times: list[int]) -> np.ndarray:
    """git's limit_list walk: take the newest queued commit (the first queued among equal dates),
    queue its alive parents in their order; returns the commits as taken."""
    closed = bytearray(np.logical_not(alive).astype(np.uint8).tobytes())
    closed[start] = 1
    queue = [(neg_times[start], 0, start)]
    order = []
    queued = 1
    while queue:
        x = heapq.heappop(queue)[2]
        order.append(x)
        for p in parents[x]:
            if not closed[p]:
                closed[p] = 1
                heapq.heappush(queue, (neg_times[p], queued, p))
                queued += 1
    return np.array(order, dtype=np.int64)


def alive_parents(space: SearchSpace, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate, how many of its parents are alive, and one of them (the only one, for a
    commit that has one; -1 for none)."""
    child, parent = space.edges
    live = alive[child] & alive[parent]
    count = np.bincount(child[live], minlength=len(space))
    some = np.full(len(space), -1, dtype=np.int64)
    some[child[live]] = parent[live]
    return count, some


def weighing_passes(listed: np.ndarray, count: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Per listed commit with one alive parent, the pass of git's fill-in loop that weighs it: its
    parent's pass (the 1st for a merge or root parent, weighed before), one more if the parent
    comes later in the list than the commit itself."""
    pos = np.full(len(count), -1, dtype=np.int64)
    pos[listed] = np.arange(len(listed))
    q = parent[listed]
    chained = (count[listed] == 1) & (count[np.maximum(q, 0)] == 1)
    link = np.where(chained, pos[q], -1)
    late = chained & (link > np.arange(len(listed)))
    return 1 + path_sums(link, late.astype(np.int64))


def first_weighed_halfway(listed: np.ndarray, reaches: np.ndarray, count: np.ndarray,
                          parent: np.ndarray) -> int | None:
    """The list position of the first commit git weighs that is close enough to halfway: merges
    first in list order, then one-parent commits by (pass, list order); roots are never checked."""
    kind = count[listed]
    near = approx_halfway(reaches, len(listed))
    merges = np.flatnonzero(near & (kind >= 2))
    if len(merges):
        return int(merges[0])
    singles = np.flatnonzero(near & (kind == 1))
    if not len(singles):
        return None
    passes = weighing_passes(listed, count, parent)[singles]
    return int(singles[np.lexsort((singles, passes))[0]])


def find_bisection(space: SearchSpace, alive: np.ndarray, bad: int,
                   reaches_all: np.ndarray) -> tuple[int, int]:
    """git's next test among the alive commits (bisect.c find_bisection): its local index and X.

    ``reaches_all`` holds every candidate's alive ancestors-or-self count; ``bad`` is the current
    bad commit, where git's walk starts."""
    listed = revision_walk(space, alive, bad)[::-1]
    reaches = reaches_all[listed]
    count, parent = alive_parents(space, alive)
    i = first_weighed_halfway(listed, reaches, count, parent)
    if i is None:
        i = int(np.argmax(np.minimum(reaches, len(listed) - reaches)))
    return int(listed[i]), int(reaches[i])


class GitStrategy(Strategy):
    """git bisect: one boot per test, trusted as the truth."""

    name = "git"
    Options = GitOptions
    boots_per_test = 1

    def __init__(self, space: SearchSpace, options: StrategyOptions | None = None):
        super().__init__(space, options)
        self.alive = np.ones(len(space), dtype=bool)
        self.bad = len(space) - 1
        self._choice: tuple[int, int] | None = None

    def remaining(self) -> int:
        """Candidates still in play, the current bad included (what git calls 'all')."""
        return int(self.alive.sum())

    def splits(self) -> tuple[np.ndarray, np.ndarray]:
        """Alive local commits and their split min(X, N - X)."""
        counts = self.space.sums.sums(self.alive.astype(np.int64))
        n = self.remaining()
        idx = np.flatnonzero(self.alive)
        x = counts[idx]
        return idx, np.minimum(x, n - x)

    def choice(self) -> tuple[int, int]:
        """git's next test (local index) and the candidates it reaches, kept until the state moves.

        A skipped commit is never tested again: the best split among the testable ones is
        taken instead (the oldest of equals)."""
        if self._choice is None:
            reaches = self.space.sums.sums(self.alive.astype(np.int64))
            self._choice = find_bisection(self.space, self.alive, self.bad, reaches)
            if self.untestable[self._choice[0]]:
                n = self.remaining()
                testable = self.alive & ~self.untestable
                testable[self.bad] = False
                split = np.where(testable, np.minimum(reaches, n - reaches), -1)
                best = int(np.argmax(split))
                self._choice = (best, int(reaches[best]))
        return self._choice

    def only_skipped_left(self) -> bool:
        """Whether every candidate still in play but the current bad was skipped."""
        rest = self.alive.copy()
        rest[self.bad] = False
        return self.remaining() > 1 and not (rest & ~self.untestable).any()

    def best_local(self) -> int:
        """The very commit git bisect would test: a best split, or one git finds near enough."""
        return self.choice()[0]

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
        if obs.skipped:
            self._choice = None
            return
        anc = self.space.ancestor_mask(local)
        if self.judged_bad(obs):
            self.alive &= anc
            self.bad = local
            self._choice = None
        elif self.judged_good(obs):
            self.alive &= ~anc
            self._choice = None

    def judged_bad(self, obs: Observation) -> bool:
        return obs.failed

    def judged_good(self, obs: Observation) -> bool:
        return not obs.failed and obs.boots >= self.boots_per_test

    def verdict(self) -> Verdict | None:
        if self.only_skipped_left():
            left = [int(c) for c in self.space.commits[self.alive]]
            return Verdict("inconclusive", int(self.space.commits[self.bad]), None,
                           "there are only skipped commits left to test; the first bad commit "
                           "could be any of: " + " ".join(self.space.name(c) for c in left),
                           len(left), self.evidence(int(self.space.commits[self.bad])))
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
        """git's words for the next test: revisions left after it and roughly how many steps."""
        if self.verdict() is not None:
            return ""
        return revisions_left(self.remaining(), self.choice()[1])


class RetryStrategy(GitStrategy):
    """git bisect with k boots per test: bad at the first failure, good after k passes."""

    name = "retry"
    Options = RetryOptions

    def __init__(self, space: SearchSpace, options: RetryOptions | None = None):
        super().__init__(space, options)
        self.boots_per_test = self.options.retries
