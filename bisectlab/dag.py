"""Pure DAG algorithms on a topologically numbered history (every parent index < child index).

A history is given as ``parents``: a sequence where ``parents[i]`` is the tuple of parent indices of
commit ``i``. Nothing here touches files, databases or the simulation, so it is tested exactly.

The central piece is :class:`AncestorSums`: for every candidate commit ``x`` of a bisection range it
gives the total weight of the candidates that are ancestors-or-self of ``x``. With unit weights that
is git's ancestor count ``X``; with posterior weights it is the mass ``u_x`` that a test of ``x``
asks about. It decomposes the candidate subgraph into chains (paths along parent links): the
ancestors of any commit meet every chain in a prefix, so a commit's ancestor set is one prefix
length per chain, and only merges need that vector; every other commit adds its own weight to its
parent's sum. The cost is linear in the candidates plus (merges x chains) vectorised steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

Parents = Sequence[tuple[int, ...]]


def ancestors_mask(parents: Parents, heads: Iterable[int]) -> np.ndarray:
    """Boolean mask of the ancestors-or-self of ``heads``."""
    mark = np.zeros(len(parents), dtype=bool)
    heads = list(heads)
    if not heads:
        return mark
    mark[heads] = True
    for x in range(max(heads), -1, -1):
        if mark[x]:
            for p in parents[x]:
                mark[p] = True
    return mark


def descendants_mask(parents: Parents, root: int) -> np.ndarray:
    """Boolean mask of the descendants-or-self of ``root``."""
    mark = np.zeros(len(parents), dtype=bool)
    mark[root] = True
    for x in range(root + 1, len(parents)):
        if any(mark[p] for p in parents[x]):
            mark[x] = True
    return mark


def candidates(parents: Parents, bad: int, goods: Iterable[int]) -> np.ndarray:
    """Sorted indices of the commits that may be the first bad one: ancestors of bad, not of goods."""
    mask = ancestors_mask(parents, [bad])
    goods = list(goods)
    if goods:
        mask &= ~ancestors_mask(parents, goods)
    return np.flatnonzero(mask)


def is_ancestor(parents: Parents, a: int, b: int) -> bool:
    """True if ``a`` is an ancestor-or-self of ``b``."""
    if a > b:
        return False
    return bool(ancestors_mask(parents, [b])[a])


def generation_numbers(parents: Parents) -> np.ndarray:
    """Length of the longest path from a root to each commit (roots are 0)."""
    gen = np.zeros(len(parents), dtype=np.int64)
    for x, ps in enumerate(parents):
        if ps:
            gen[x] = 1 + max(gen[p] for p in ps)
    return gen


class AncestorSums:
    """Ancestor-or-self weight sums over a convex candidate set, reusable for any weights.

    ``cands`` must be sorted and convex (ancestors of BAD minus ancestors of the GOODs is). The
    structure is built once: chains, and for every merge the chain segments it adds to its first
    parent's ancestors. :meth:`sums` is then a few vectorised passes for any weights: each commit's
    sum is its first parent's plus its own weight, or, at a merge, plus the weight of the segments
    the merge brings in; path sums along first parents are taken by pointer doubling.
    """

    def __init__(self, parents: Parents, cands: np.ndarray):
        self.cands = np.asarray(cands, dtype=np.int64)
        local = {int(c): i for i, c in enumerate(self.cands)}
        self.parents: list[tuple[int, ...]] = [
            tuple(local[p] for p in parents[int(c)] if p in local) for c in self.cands
        ]
        self.first_parent = np.array([ps[0] if ps else -1 for ps in self.parents], dtype=np.int64)
        self._decompose()
        self._plan_merges()
        self._merge_segments()

    def _decompose(self) -> None:
        """Split the candidate subgraph into chains, preferring first parents."""
        n = len(self.parents)
        chain = np.empty(n, dtype=np.int64)
        pos = np.empty(n, dtype=np.int64)
        has_next = np.zeros(n, dtype=bool)
        lengths: list[int] = []
        for x, ps in enumerate(self.parents):
            p = next((q for q in ps if not has_next[q]), -1)
            if p >= 0:
                has_next[p] = True
                chain[x], pos[x] = chain[p], pos[p] + 1
                lengths[chain[x]] += 1
            else:
                chain[x], pos[x] = len(lengths), 0
                lengths.append(1)
        self.chain, self.pos = chain, pos
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths + 1)))

    def _plan_merges(self) -> None:
        """Anchor every commit to its nearest merge-or-root, and note when each anchor is last used."""
        n = len(self.parents)
        anchor = np.empty(n, dtype=np.int64)
        link = np.full(n, -1, dtype=np.int64)
        last_use: dict[int, int] = {}
        for x, ps in enumerate(self.parents):
            if len(ps) == 1:
                p = ps[0]
                anchor[x] = anchor[p]
                if len(self.parents[p]) == 1:
                    link[x] = link[p] if self.chain[x] == self.chain[p] else p
            else:
                anchor[x] = x
                for p in ps:
                    last_use[int(anchor[p])] = x
        self.anchor, self.link, self.last_use = anchor, link, last_use

    def _prefix_vector(self, x: int, vectors: dict[int, np.ndarray], k: int) -> np.ndarray:
        """Per-chain ancestor prefix lengths of commit ``x``."""
        a = int(self.anchor[x])
        vec = vectors[a].copy() if a in vectors else np.zeros(k, dtype=np.int64)
        vec[self.chain[a]] = self.pos[a] + 1
        y = x
        while y >= 0:
            vec[self.chain[y]] = self.pos[y] + 1
            y = int(self.link[y])
        return vec

    def _merge_segments(self) -> None:
        """For each merge, the chain ranges (from, to] its ancestors add to its first parent's."""
        k = len(self.lengths)
        vectors: dict[int, np.ndarray] = {}
        seg_merge: list[np.ndarray] = []
        seg_lo: list[np.ndarray] = []
        seg_hi: list[np.ndarray] = []
        for x, ps in enumerate(self.parents):
            if len(ps) < 2:
                continue
            base = self._prefix_vector(ps[0], vectors, k)
            vec = base.copy()
            for p in ps[1:]:
                np.maximum(vec, self._prefix_vector(p, vectors, k), out=vec)
            vec[self.chain[x]] = self.pos[x] + 1
            grown = np.flatnonzero(vec > base)
            seg_merge.append(np.full(len(grown), x, dtype=np.int64))
            seg_lo.append(self.offsets[grown] + base[grown])
            seg_hi.append(self.offsets[grown] + vec[grown])
            if x in self.last_use:
                vectors[x] = vec
            for p in ps:
                a = int(self.anchor[p])
                if self.last_use.get(a) == x:
                    vectors.pop(a, None)
        empty = np.zeros(0, dtype=np.int64)
        self.seg_merge = np.concatenate(seg_merge) if seg_merge else empty
        self.seg_lo = np.concatenate(seg_lo) if seg_lo else empty
        self.seg_hi = np.concatenate(seg_hi) if seg_hi else empty
        self.is_merge = np.array([len(ps) > 1 for ps in self.parents], dtype=bool)

    def _chain_cumsums(self, weights: np.ndarray) -> np.ndarray:
        """cum[offset_c + j] = total weight of the first j commits of chain c."""
        cum = np.zeros((self.offsets[-1],) + weights.shape[1:], dtype=weights.dtype)
        cum[self.offsets[self.chain] + self.pos + 1] = weights
        cum = np.cumsum(cum, axis=0)
        return cum - np.repeat(cum[self.offsets[:-1]], self.lengths + 1, axis=0)

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """For each candidate (in ``cands`` order), the total weight of its ancestors-or-self.

        ``weights`` may be a vector, or a matrix with one column per weighting.
        """
        weights = np.asarray(weights)
        cum = self._chain_cumsums(weights)
        own = weights.copy()
        own[self.is_merge] = 0
        np.add.at(own, self.seg_merge, cum[self.seg_hi] - cum[self.seg_lo])
        return path_sums(self.first_parent, own)


def path_sums(parent: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of ``values`` along each node's parent pointers up to its root (pointer doubling)."""
    acc = values.copy()
    ptr = parent.copy()
    while True:
        live = ptr >= 0
        if not live.any():
            return acc
        safe = np.where(live, ptr, 0)
        gathered = acc[safe]
        live_b = live[:, None] if acc.ndim > 1 else live
        acc = acc + np.where(live_b, gathered, 0)
        ptr = np.where(live, ptr[safe], -1)
