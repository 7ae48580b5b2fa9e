"""What a merge commit's tree takes from its side branches, for writing a history as real trees.

Every non-merge commit writes its paths with content of its own. A merge starts from its first
parent's tree and takes, for each path written on its side branches (the commits reachable from
its other parents but not from its first parent), the content the side branch has: so a merge
changes exactly what a real merge brings in, and git's pathspec history simplification (TREESAME)
behaves on an exported history as on a real one. Where both sides wrote a path, the side wins.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np

Parents = Sequence[Sequence[int]]
OURS, SIDE, BOTH = 1, 2, 3


class FirstParentChains:
    """The commits split into first-parent segments, to ask in a few steps whether x lies on
    c's first-parent chain (a cheap, exact proof that x is an ancestor of c)."""

    def __init__(self, parents: Parents):
        self.segment = [-1] * len(parents)
        self.below: list[int] = []  # per segment: first parent of its lowest commit, or -1
        for top in range(len(parents) - 1, -1, -1):
            if self.segment[top] >= 0:
                continue
            s, x = len(self.below), top
            while x >= 0 and self.segment[x] < 0:
                self.segment[x] = s
                ps = parents[x]
                x = ps[0] if ps else -1
            self.below.append(x)

    def on_chain(self, x: int, c: int) -> bool:
        """x is c or one of c's first-parent ancestors."""
        segment, sx = self.segment, self.segment[x]
        while c >= x:
            s = segment[c]
            if s == sx:
                return True
            c = self.below[s]
        return False


def side_commits(parents: Parents, chains: FirstParentChains, merge: int) -> list[int]:
    """Commits reachable from the merge's other parents and not from its first parent, newest
    first; a walk down both sides by commit number that stops when no side-only commit is left."""
    first = parents[merge][0]
    flags: dict[int, int] = {}
    heap: list[int] = []
    pending = 0

    def mark(x: int, flag: int) -> None:
        nonlocal pending
        if flag == SIDE and chains.on_chain(x, first):
            flag = BOTH
        old = flags.get(x, 0)
        new = old | flag
        if new == old:
            return
        if old == 0:
            heapq.heappush(heap, -x)
        pending += (new == SIDE) - (old == SIDE)
        flags[x] = new

    mark(first, OURS)
    for p in parents[merge][1:]:
        mark(p, SIDE)
    side: list[int] = []
    while pending:
        x = -heapq.heappop(heap)
        flag = flags[x]
        if flag == SIDE:
            pending -= 1
            side.append(x)
        for p in parents[x]:
            mark(p, flag)
    return side


class MergeTrees:
    """Per commit, the paths it writes and whose content each carries (the commit that wrote it)."""

    def __init__(self, parents: Parents, path_offsets: np.ndarray, path_ids: np.ndarray):
        self.parents = parents
        self.offsets = path_offsets
        self.ids = path_ids
        self.chains = FirstParentChains(parents)
        self.merged: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def writes(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """(path ids, writers): the commit's own paths, then for a merge what its sides bring."""
        own = self.ids[self.offsets[c]:self.offsets[c + 1]]
        if len(self.parents[c]) < 2:
            return own, np.full(len(own), c, dtype=np.int64)
        if c not in self.merged:
            self.merged[c] = self._merge(c, own)
        return self.merged[c]

    def _merge(self, m: int, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A merge writes its own paths, then each side's newest content, walking down each other
        parent's first-parent chain through the side commits (nested merges carry theirs)."""
        content: dict[int, int] = dict.fromkeys(own.tolist(), m)
        side = set(side_commits(self.parents, self.chains, m))
        for p in self.parents[m][1:]:
            x = p
            while x in side:
                ids, writers = self.writes(x)
                for path, writer in zip(ids.tolist(), writers.tolist(), strict=True):
                    content.setdefault(path, writer)
                side.discard(x)
                ps = self.parents[x]
                x = ps[0] if ps else -1
        return (np.fromiter(content, dtype=np.int64, count=len(content)),
                np.fromiter(content.values(), dtype=np.int64, count=len(content)))
