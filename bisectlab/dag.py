"""Pure DAG algorithms on a topologically numbered history (every parent index < child index).

A history is given as ``parents``: a sequence where ``parents[i]`` is the tuple of parent indices of
commit ``i``. Nothing here touches files, databases or the simulation, so it is tested exactly.
Large histories are handled as CSR arrays (``indptr``, ``indices``: the parents of ``i`` are
``indices[indptr[i]:indptr[i + 1]]``, first parent first), so that no step loops over every commit
in Python.

The central piece is :class:`AncestorSums`: for every candidate commit ``x`` of a bisection range it
gives the total weight of the candidates that are ancestors-or-self of ``x``. With unit weights that
is git's ancestor count ``X``; with posterior weights it is the mass ``u_x`` that a test of ``x``
asks about. Along first parents the ancestor sets grow one commit at a time, so a commit's sum is
its first parent's plus its own weight, except at a merge, which adds the ancestors its other
parents bring in. The first-parent tree is cut into heavy paths (chains), laid out contiguously:
path sums are then prefix sums along chains plus one value per chain, and what a merge brings in is
a few chain ranges (the ancestors of any commit meet every chain in a prefix), so each sum is a
handful of vectorised passes over the candidates.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import chain as concat
from typing import TYPE_CHECKING

import numpy as np

from bisectlab import compiled

if TYPE_CHECKING:  # scipy is imported where it is used: a boot needs none of it (start-up time)
    from scipy.sparse import csr_matrix

Parents = Sequence[tuple[int, ...]]
Csr = tuple[np.ndarray, np.ndarray]


# the graph as arrays --------------------------------------------------------------------------


def parent_arrays(parents: Parents) -> Csr:
    """The parent tuples as CSR arrays (indptr, indices), first parents first, in 32 bits (scipy's
    own index type, and half the memory)."""
    n = len(parents)
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.fromiter(map(len, parents), dtype=np.int32, count=n), out=indptr[1:])
    indices = np.fromiter(concat.from_iterable(parents), dtype=np.int32, count=int(indptr[-1]))
    return indptr, indices


def restrict_parents(indptr: np.ndarray, indices: np.ndarray, keep: np.ndarray) -> Csr:
    """The parents of the sorted commits ``keep`` that are among them, renumbered 0..len(keep)-1
    (CSR, parent order kept)."""
    n = len(indptr) - 1
    local = np.full(n, -1, dtype=np.int32)
    local[keep] = np.arange(len(keep), dtype=np.int32)
    child = local[np.repeat(np.arange(n, dtype=np.int32), np.diff(indptr))]  # of each edge
    parent = local[indices]
    inside = (child >= 0) & (parent >= 0)
    out = np.zeros(len(keep) + 1, dtype=np.int32)
    np.cumsum(np.bincount(child[inside], minlength=len(keep)), out=out[1:])
    return out, parent[inside]


def local_parent_arrays(parents: Parents, keep: np.ndarray) -> Csr:
    """The parents of the sorted commits ``keep`` among them, in local numbering (CSR). Looks at
    the kept commits' parents only when they are few, at the whole graph at once otherwise."""
    keep = np.asarray(keep, dtype=np.int64)
    if 4 * len(keep) >= len(parents):
        return restrict_parents(*parent_arrays(parents), keep)
    local = {int(c): i for i, c in enumerate(keep)}
    rows = [[local[p] for p in parents[c] if p in local] for c in keep.tolist()]
    indptr = np.zeros(len(keep) + 1, dtype=np.int32)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    return indptr, np.fromiter(concat.from_iterable(rows), dtype=np.int32, count=int(indptr[-1]))


def parent_graph(indptr: np.ndarray, indices: np.ndarray) -> csr_matrix:
    """The child -> parent adjacency matrix, for scipy's graph traversals."""
    from scipy.sparse import csr_matrix

    n = len(indptr) - 1
    return csr_matrix((np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(n, n))


def reach_mask(graph: Csr, heads: Iterable[int]) -> np.ndarray:
    """Boolean mask of the commits reachable from ``heads`` along parent links (heads included):
    one breadth-first search, from a virtual commit whose parents are the heads if they are
    several."""
    indptr, indices = graph
    n = len(indptr) - 1
    heads = np.unique(np.asarray(list(heads), dtype=np.int32))
    mark = np.zeros(n, dtype=bool)
    if len(heads) == 1:
        start = int(heads[0])
    elif len(heads):
        indptr, indices = np.append(indptr, indptr[-1] + len(heads)), np.append(indices, heads)
        start = n
    else:
        return mark
    from scipy.sparse.csgraph import breadth_first_order

    reached = breadth_first_order(parent_graph(indptr, indices), start, directed=True,
                                  return_predecessors=False)
    mark[reached[reached < n]] = True
    return mark


# reachability ---------------------------------------------------------------------------------


def ancestors_mask(parents: Parents, heads: Iterable[int]) -> np.ndarray:
    """Boolean mask of the ancestors-or-self of ``heads``."""
    return reach_mask(parent_arrays(parents), heads)


def descendants_mask(parents: Parents, root: int) -> np.ndarray:
    """Boolean mask of the descendants-or-self of ``root``."""
    mark = np.zeros(len(parents), dtype=bool)
    mark[root] = True
    for x in range(root + 1, len(parents)):
        if any(mark[p] for p in parents[x]):
            mark[x] = True
    return mark


def candidate_mask(graph: Csr, bad: int, goods: Iterable[int]) -> np.ndarray:
    """Mask of the ancestors-or-self of bad that are not ancestors-or-self of any good."""
    mask = reach_mask(graph, [bad])
    goods = list(goods)
    if goods:
        mask &= ~reach_mask(graph, goods)
    return mask


def candidates(parents: Parents, bad: int, goods: Iterable[int]) -> np.ndarray:
    """Sorted indices of the commits that may be the first bad one: ancestors of bad, not of goods."""
    return np.flatnonzero(candidate_mask(parent_arrays(parents), bad, goods))


WALK_LIMIT = 50_000


def is_ancestor(parents: Parents, a: int, b: int, walk_limit: int = WALK_LIMIT) -> bool:
    """True if ``a`` is an ancestor-or-self of ``b``: a walk down from b, first parents first,
    that never goes below index a (parents come before children); a walk longer than
    ``walk_limit`` commits is left to one breadth-first search in scipy."""
    if a >= b:
        return a == b
    seen, stack = {b}, [b]
    while stack and len(seen) <= walk_limit:
        for p in reversed(parents[stack.pop()]):
            if p == a:
                return True
            if p > a and p not in seen:
                seen.add(p)
                stack.append(p)
    return bool(stack) and bool(ancestors_mask(parents, [b])[a])


def generation_numbers(parents: Parents) -> np.ndarray:
    """Length of the longest path from a root to each commit (roots are 0)."""
    gen = np.zeros(len(parents), dtype=np.int64)
    for x, ps in enumerate(parents):
        if ps:
            gen[x] = 1 + max(gen[p] for p in ps)
    return gen


# the first-parent tree ------------------------------------------------------------------------


def _first_parent_matrix(first_parent: np.ndarray) -> csr_matrix:
    """I - F, where F[x, first_parent[x]] = 1: lower triangular, unit diagonal."""
    from scipy.sparse import csr_matrix

    n = len(first_parent)
    has = first_parent >= 0
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(1 + has, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.ones(len(indices))
    indices[indptr[1:] - 1] = np.arange(n)
    indices[indptr[:-1][has]] = first_parent[has]
    data[indptr[:-1][has]] = -1.0
    return csr_matrix((data, indices, indptr), shape=(n, n))


def _tree_solve(matrix: csr_matrix, b: np.ndarray, down: bool) -> np.ndarray:
    """Integer path sums (root to node) or, with ``down``, subtree sums of ``b`` on the first-parent
    tree: a triangular solve (exact: every partial sum is an integer far below 2^53). With a unit
    diagonal the solver never reads the diagonal, which it may rewrite in place (no copy of the
    matrix is made), so the same matrix serves both directions."""
    from scipy.sparse.linalg import spsolve_triangular

    if matrix.shape[0] == 0:
        return np.zeros(0, dtype=np.int32)
    a = matrix.T if down else matrix
    x = spsolve_triangular(a, b.astype(float), lower=not down, unit_diagonal=True,
                           overwrite_A=True, overwrite_b=True)
    return np.rint(x, out=x).astype(np.int32)


def heavy_path_preorder(first_parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Preorder positions and subtree sizes of the first-parent forest, roots in index order and
    each commit's children largest subtree first (ties: oldest), so every heavy path is a run of
    positions and any commit is at most log2(n) light edges below its root."""
    n = len(first_parent)
    matrix = _first_parent_matrix(first_parent)
    size = _tree_solve(matrix, np.ones(n), down=True)
    kids = np.flatnonzero(first_parent >= 0)
    kids = kids[np.lexsort((kids, -size[kids], first_parent[kids]))]
    par = first_parent[kids]
    before = np.cumsum(size[kids], dtype=np.int64) - size[kids]
    first = np.flatnonzero(np.r_[True, par[1:] != par[:-1]]) if len(kids) else kids
    del par
    step = np.zeros(n, dtype=np.int32)
    step[kids] = 1 + before - np.repeat(before[first], np.diff(np.r_[first, len(kids)]))
    roots = np.flatnonzero(first_parent < 0)
    step[roots] = np.cumsum(size[roots]) - size[roots]
    return _tree_solve(matrix, step, down=False), size


class AncestorSums:
    """Ancestor-or-self weight sums over a convex candidate set, reusable for any weights.

    ``cands`` must be sorted and convex (ancestors of BAD minus ancestors of the GOODs is);
    ``local_parents``, the candidates' parents among them in local numbering (CSR), if already
    at hand. The structure is built once (:class:`_ChainLayout`); :meth:`sums` is then a few
    vectorised passes for any weights.
    """

    def __init__(self, parents: Parents, cands: np.ndarray, local_parents: Csr | None = None):
        self.cands = np.asarray(cands, dtype=np.int64)
        self.indptr, self.indices = (local_parent_arrays(parents, self.cands)
                                     if local_parents is None else local_parents)
        self.n = len(self.cands)
        self.plan = _ChainLayout(self.indptr, self.indices).plan()

    @cached_property
    def parents(self) -> list[tuple[int, ...]]:
        """Parents within the candidate set, in local numbering."""
        ind = self.indices.tolist()
        bounds = self.indptr.tolist()
        return [tuple(ind[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def sums(self, weights: np.ndarray) -> np.ndarray:
        """For each candidate (in ``cands`` order), the total weight of its ancestors-or-self.

        ``weights`` may be a vector, or a matrix with one column per weighting.
        """
        weights = np.asarray(weights)
        if weights.dtype == bool:
            weights = weights.astype(np.int64)
        if self.n == 0:
            return weights.copy()
        if weights.ndim == 1 or weights.size <= BLOCK_CELLS:
            return self.plan.sums(weights)
        out = np.empty(weights.shape, dtype=weights.dtype)
        for column in range(weights.shape[1]):
            self.plan.sums(weights[:, column], out=out[:, column])
        return out

    def row_sums(self, weights: np.ndarray) -> np.ndarray:
        """The same sums for a matrix with one weighting per row (k, N), in that layout: each
        row is contiguous, so every pass runs along memory (the same result as :meth:`sums` of
        the transpose, bit for bit)."""
        weights = np.asarray(weights)
        if self.n == 0:
            return weights.copy()
        if weights.size <= BLOCK_CELLS:
            return self.plan.row_sums(weights)
        out = np.empty(weights.shape, dtype=weights.dtype)
        for row in range(weights.shape[0]):
            self.plan.sums(weights[row], out=out[row])
        return out

    def product_sums(self, m: np.ndarray, table: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """:meth:`row_sums` of the (1 + t, N) matrix of ``m`` and of ``m`` times each of the t
        rows of ``table`` read at each candidate's class (``table[:, classes] * m``), bit for
        bit, without that matrix where the compiled kernel forms each product as it reads it."""
        m = np.asarray(m, dtype=float)
        table = np.asarray(table, dtype=float)
        if compiled.kernels is not None and self.n:
            out = np.empty((1 + len(table), self.n))
            compiled.kernels.ancestor_products(
                np.ascontiguousarray(m), np.ascontiguousarray(table),
                np.ascontiguousarray(classes, dtype=np.int64), out, *self.plan.packed)
            return out
        return self.row_sums(class_products(m, table, classes))


def class_products(m: np.ndarray, table: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The (1 + t, N) matrix of ``m`` and of ``m`` times each row of ``table`` at each
    candidate's class (a row at a time when N is large, in less memory)."""
    stacked = np.empty((1 + len(table), len(m)))
    stacked[0] = m
    if len(m) <= GATHER_AT_ONCE:
        np.take(table, classes, axis=1, out=stacked[1:])
        stacked[1:] *= m
    else:
        for row, per in zip(stacked[1:], table, strict=True):
            np.multiply(m, per[classes], out=row)
    return stacked


BLOCK_CELLS = 1 << 20  # weights beyond this many are summed column by column, in less memory
GATHER_AT_ONCE = 1 << 14  # candidates up to which class_products gathers every row at once


class _ChainLayout:
    """The first-parent forest cut into heavy paths (chains) laid out contiguously, and for every
    merge the chain ranges its other parents add to its first parent's ancestors.

    Along first parents ancestor sets grow by the commit itself, or at a merge by what its other
    parents bring in: the ancestors of any commit meet every chain in a prefix, so that is a few
    chain ranges (positions lo to hi - 1). Construction only: :meth:`plan` keeps what sums need.
    """

    def __init__(self, indptr: np.ndarray, indices: np.ndarray):
        self.indptr, self.indices = indptr, indices
        self.n = len(indptr) - 1
        degree = np.diff(indptr)
        self.first_parent = np.full(self.n, -1, dtype=np.int32)
        self.first_parent[degree > 0] = indices[indptr[:-1][degree > 0]]
        self.is_merge = degree > 1
        self._lay_out()
        self._find_segments()

    def _lay_out(self) -> None:
        """Heavy-path preorder: ``order[i]`` is the commit at position i, ``tin`` its inverse;
        chains are runs of positions, numbered in layout order."""
        fp = self.first_parent
        self.tin, size = heavy_path_preorder(fp)
        self.subtree_end = self.tin + size
        self.order = np.empty(self.n, dtype=np.intp)
        self.order[self.tin] = np.arange(self.n)
        parent_at = fp[self.order]
        parent_at[parent_at >= 0] = self.tin[parent_at[parent_at >= 0]]
        head_at = (parent_at < 0) | (parent_at != np.arange(-1, self.n - 1, dtype=np.int32))
        del parent_at
        self.chain_start = np.flatnonzero(head_at)
        self.chain_at = np.cumsum(head_at, dtype=np.int32) - 1
        self.chain = self.chain_at[self.tin]
        self.pos = self.tin - self.chain_start[self.chain]
        self.head_parent = fp[self.order[self.chain_start]]
        self.parent_chain = np.where(self.head_parent >= 0, self.chain[self.head_parent], -1)

    def _is_first_parent_ancestor(self, z: int, f: int) -> bool:
        """Whether z is f or an ancestor of f along first parents (from the layout)."""
        return bool(self.tin[z] <= self.tin[f] < self.subtree_end[z])

    def _find_segments(self) -> None:
        """Per merge, the chain ranges (positions lo to hi - 1) its other parents bring in beyond
        its first parent's ancestors: found at once for the merges of a plain branch, by a walk
        for the rest (oldest first, each walk reading the ranges found before it)."""
        simple, chains, highs = self._plain_branch_merges()
        self.simple_merge = np.full(len(self.chain_start), -1, dtype=np.int64)
        self.simple_merge[chains] = simple
        self.simple_high = np.zeros(len(self.chain_start), dtype=np.int64)
        self.simple_high[chains] = highs
        other = np.flatnonzero(self.is_merge)
        walked = self._walk_merges(other[~np.isin(other, simple)])
        merge = np.concatenate([simple, walked[0]])
        chain = np.concatenate([chains, walked[1]])
        lo = np.concatenate([np.zeros(len(simple), dtype=np.int64), walked[2]])
        hi = np.concatenate([highs, walked[3]])
        by_position = np.argsort(self.tin[merge], kind="stable")
        self.seg_merge = merge[by_position]
        self.seg_lo = self.chain_start[chain[by_position]] + lo[by_position]
        self.seg_hi = self.chain_start[chain[by_position]] + hi[by_position]

    def _plain_branch_merges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Two-parent merges whose second parent's chain, from its head to that parent, holds no
        merge, forks from a first-parent ancestor of the merge and is reached by nothing older:
        that stretch is all the merge brings in. Returns (merges, chains, lengths)."""
        ptr, ind, fp, tin, end = self.indptr, self.indices, self.first_parent, self.tin, self.subtree_end
        child = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(ptr))
        later = np.arange(len(ind)) != ptr[child]
        k = len(self.chain_start)
        entered = np.full(k, self.n, dtype=np.int64)  # oldest merge with a parent on the chain
        np.minimum.at(entered, self.chain[ind[later]], child[later])
        hung = np.full(k, self.n, dtype=np.int64)     # oldest chain head forking from it
        heads = self.order[self.chain_start][self.head_parent >= 0]
        np.minimum.at(hung, self.chain[fp[heads]], heads)
        x = np.flatnonzero(np.diff(ptr) == 2)
        f, q = fp[x], ind[ptr[x] + 1]
        c, j = self.chain[q], self.pos[q]
        start = self.chain_start[c]
        merges_before = np.r_[0, np.cumsum(self.is_merge[self.order])]
        fork, head = self.head_parent[c], self.order[start]
        safe_fork = np.maximum(fork, 0)
        ok = merges_before[start + j + 1] == merges_before[start]
        ok &= (fork < 0) | ((tin[safe_fork] <= tin[f]) & (tin[f] < end[safe_fork]))
        ok &= ~((tin[head] <= tin[f]) & (tin[f] < end[head]))
        ok &= (entered[c] == x) & (hung[c] > x)
        return x[ok], c[ok], j[ok] + 1

    def _walk_merges(self, merges: np.ndarray) -> tuple[np.ndarray, ...]:
        """Segments (merge, chain, lo, hi) of the given merges, walked oldest first."""
        self._walked: dict[int, list[tuple[int, int]]] = {}
        self._merge_at = np.flatnonzero(self.is_merge[self.order]).tolist()
        rows = [(x, c, lo, hi) for x in merges.tolist() for c, lo, hi in self._walk(x)]
        cols = np.array(rows, dtype=np.int64).reshape(-1, 4)
        return cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3]

    def _walk(self, x: int) -> list[tuple[int, int, int]]:
        """The chain ranges (chain, lo, hi) of merge x's ancestors beyond its first parent's:
        from its other parents down chains, each taken from where the first parent's ancestors
        end on it."""
        f = int(self.first_parent[x])
        path = self._first_parent_path(f)
        covered: dict[int, list[int]] = {}
        todo = self.indices[self.indptr[x] + 1:self.indptr[x + 1]].tolist()
        while todo:
            y = todo.pop()
            c, j = int(self.chain[y]), int(self.pos[y])
            seg = covered.get(c)
            if seg is None:
                lo = self._prefix_below(c, f, path)
                if j < lo:
                    continue
                seg = covered[c] = [lo, lo]
            elif j < seg[1]:
                continue
            todo.extend(self._exits(c, seg[1], j))
            seg[1] = j + 1
        for c, (_, hi) in covered.items():
            self._walked.setdefault(c, []).append((x, hi))
        return [(c, lo, hi) for c, (lo, hi) in covered.items()]

    def _first_parent_path(self, f: int) -> dict[int, int]:
        """Chain -> highest position of f's first-parent ancestors-or-self on it."""
        path: dict[int, int] = {}
        while f >= 0:
            c = int(self.chain[f])
            path[c] = int(self.pos[f])
            f = int(self.head_parent[c])
        return path

    def _prefix_below(self, c: int, f: int, path: dict[int, int]) -> int:
        """How many commits of chain c are ancestors-or-self of f: its first-parent path on c,
        and the ranges brought in by the merges on that path."""
        lo = path.get(c, -1) + 1
        z = int(self.simple_merge[c])
        if z >= 0 and self.simple_high[c] > lo and self._is_first_parent_ancestor(z, f):
            lo = int(self.simple_high[c])
        for z, hi in self._walked.get(c, ()):
            if hi > lo and self._is_first_parent_ancestor(z, f):
                lo = hi
        return lo

    def _exits(self, c: int, lo: int, hi: int) -> list[int]:
        """Parents leaving chain c from its positions lo..hi: the head's first parent (if lo is
        0) and the other parents of the merges there."""
        out = [int(self.head_parent[c])] if lo == 0 and self.head_parent[c] >= 0 else []
        start = int(self.chain_start[c])
        for at in self._merge_at[bisect_left(self._merge_at, start + lo):
                                 bisect_right(self._merge_at, start + hi)]:
            m = int(self.order[at])
            out.extend(self.indices[self.indptr[m] + 1:self.indptr[m + 1]].tolist())
        return out

    def plan(self) -> _SumPlan:
        """What sums need: the layout cut into pieces at chain starts and at merges that bring
        segments (within a piece a sum is the layout prefix sum plus one value), and the layout
        positions whose prefix sums that value reads (marks)."""
        first = np.flatnonzero(np.r_[True, self.seg_merge[1:] != self.seg_merge[:-1]]) \
            if len(self.seg_merge) else self.seg_merge
        cuts = np.union1d(self.chain_start, self.tin[self.seg_merge[first]])
        rooted = np.flatnonzero(self.parent_chain >= 0)
        fork, fork_chain = self.tin[self.head_parent[rooted]], self.parent_chain[rooted]
        chain_piece = np.searchsorted(cuts, self.chain_start)
        marks = np.unique(np.concatenate([[0], self.seg_lo, self.seg_hi, fork + 1, self.chain_start]))
        mark = partial(np.searchsorted, marks)
        return _SumPlan.packed_once(
            order=self.order, piece_start=cuts, marks=marks[marks < self.n],
            seg_lo=mark(self.seg_lo), seg_hi=mark(self.seg_hi), seg_group=first,
            merge_piece=np.searchsorted(cuts, self.tin[self.seg_merge[first]]),
            piece_chain=self.chain_at[cuts], chain_start=mark(self.chain_start),
            chain_piece=chain_piece, rooted=rooted, fork_next=mark(fork + 1),
            fork_piece=np.searchsorted(cuts, fork, side="right") - 1,
            fork_chain_start=mark(self.chain_start[fork_chain]),
            fork_chain_piece=chain_piece[fork_chain], levels=_chain_levels(self.parent_chain))


@dataclass(frozen=True)
class _SumPlan:
    """Index arrays for ancestor sums over a chain layout.

    A commit at position i, in piece p of chain c, has the sum prefix(i + 1) - prefix(start c)
    + base(c) + added(p) - added(first piece of c): its chain's prefix up to it, the sum at the
    chain head's first parent (the fork), and the ranges its chain's merges up to it brought in.
    Everything but prefix(i + 1) is one value per piece, read from the prefix sums at a few marked
    positions; adding each piece's step to its first weight, one cumulative sum gives every sum.
    """

    order: np.ndarray             # the commit at each layout position
    piece_start: np.ndarray       # each piece's first position
    marks: np.ndarray             # positions (below n) whose prefix sums are read; 0 first
    seg_lo: np.ndarray            # segments: prefix(hi) - prefix(lo), by merge (as marks)
    seg_hi: np.ndarray
    seg_group: np.ndarray         # first segment of each merge that brings any
    merge_piece: np.ndarray       # the piece each such merge starts
    piece_chain: np.ndarray       # the chain of each piece
    chain_start: np.ndarray       # each chain's first position (as a mark)
    chain_piece: np.ndarray       # each chain's first piece
    rooted: np.ndarray            # chains whose head has a first parent (the fork)
    fork_next: np.ndarray         # ... the position after the fork (as a mark), its piece,
    fork_piece: np.ndarray        # and the start (as a mark) and first piece of its chain
    fork_chain_start: np.ndarray
    fork_chain_piece: np.ndarray
    levels: list[tuple[np.ndarray, np.ndarray]]  # (chains, their parent chains), by depth
    packed: tuple[np.ndarray, np.ndarray, np.ndarray]  # the compiled kernel's view (packed_once)

    @classmethod
    def packed_once(cls, order: np.ndarray, levels: list[tuple[np.ndarray, np.ndarray]],
                    **parts: np.ndarray) -> _SumPlan:
        """The plan with its index arrays kept once, as int64 views into the one array the
        compiled kernel reads (``packed``: the order, the rest end to end in the order of
        ``bisectlab/_kernels.c``'s enum, and where each starts), not a copy beside them."""
        depth_bounds = np.cumsum([0] + [len(chains) for chains, _ in levels])
        arrays = [parts[name] for name in _PACKED_PARTS] + [
            np.concatenate([chains for chains, _ in levels] or [np.zeros(0, np.int64)]),
            np.concatenate([above for _, above in levels] or [np.zeros(0, np.int64)]),
            depth_bounds]
        flat = np.concatenate([np.asarray(a, dtype=np.int64) for a in arrays])
        bounds = np.cumsum([0] + [len(a) for a in arrays]).astype(np.int64)
        views = [flat[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        chains, above = views[-3], views[-2]
        by_depth = [(chains[lo:hi], above[lo:hi])
                    for lo, hi in zip(depth_bounds[:-1], depth_bounds[1:], strict=True)]
        order = np.ascontiguousarray(order, dtype=np.int64)
        return cls(order=order, levels=by_depth, packed=(order, flat, bounds),
                   **dict(zip(_PACKED_PARTS, views[:-3], strict=True)))

    def sums(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Ancestor sums of a vector of weights, or of each column of a matrix, in commit order."""
        if compiled.kernels is not None and w.ndim == 1 and w.dtype == np.float64:
            return self._compiled_rows(w[None, :], None if out is None else out[None, :])[0]
        return self.numpy_sums(w, out)

    def row_sums(self, w: np.ndarray) -> np.ndarray:
        """Ancestor sums of each row of a (k, N) matrix, in that layout (see :meth:`sums`)."""
        if compiled.kernels is not None and w.dtype == np.float64:
            return self._compiled_rows(w)
        return self.numpy_row_sums(w)

    def _compiled_rows(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`numpy_row_sums` by the compiled kernel (``out`` may be a strided view)."""
        target = np.empty(w.shape) if out is None or not out.flags.c_contiguous else out
        compiled.kernels.ancestor_rows(np.ascontiguousarray(w), target, *self.packed)
        if out is not None and target is not out:
            out[...] = target
        return target if out is None else out

    def numpy_sums(self, w: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`sums` in numpy passes (for any dtype; the reference the compiled kernel
        follows)."""
        layout = np.take(w, self.order, axis=0)
        extra = self._piece_extras(self._marked_prefixes(layout))
        extra[1:] -= extra[:-1].copy()
        layout[self.piece_start] += extra
        np.cumsum(layout, axis=0, out=layout)
        if out is None:
            out = np.empty_like(layout)
        out[self.order] = layout
        return out

    def numpy_row_sums(self, w: np.ndarray) -> np.ndarray:
        """:meth:`row_sums` in numpy passes."""
        layout = np.take(w, self.order, axis=1)
        between = np.add.reduceat(layout, self.marks, axis=1)
        prefix = np.zeros((between.shape[1] + 1, len(w)), dtype=layout.dtype)
        np.cumsum(between.T, axis=0, out=prefix[1:])
        extra = self._piece_extras(prefix)
        extra[1:] -= extra[:-1].copy()
        layout[:, self.piece_start] += extra.T
        np.cumsum(layout, axis=1, out=layout)
        out = np.empty_like(layout)
        out[:, self.order] = layout
        return out

    def _marked_prefixes(self, layout: np.ndarray) -> np.ndarray:
        """prefix(m) = the sum of the layout's first m weights, at every mark (and the total)."""
        between = np.add.reduceat(layout, self.marks, axis=0)
        prefix = np.zeros((len(between) + 1,) + layout.shape[1:], dtype=layout.dtype)
        np.cumsum(between, axis=0, out=prefix[1:])
        return prefix

    def _piece_extras(self, prefix: np.ndarray) -> np.ndarray:
        """Per piece, what to add to the layout prefix sum (see the class docstring)."""
        width, dtype = prefix.shape[1:], prefix.dtype
        added = np.zeros((len(self.piece_chain) + 1,) + width, dtype=dtype)
        if len(self.seg_lo):
            segments = prefix[self.seg_hi] - prefix[self.seg_lo]
            added[self.merge_piece + 1] = np.add.reduceat(segments, self.seg_group, axis=0)
        np.cumsum(added, axis=0, out=added)
        base = np.zeros((len(self.chain_piece),) + width, dtype=dtype)
        base[self.rooted] = (prefix[self.fork_next] - prefix[self.fork_chain_start]
                             + added[self.fork_piece + 1] - added[self.fork_chain_piece])
        for chains, parents in self.levels:
            base[chains] += base[parents]
        base -= prefix[self.chain_start] + added[self.chain_piece]
        return base[self.piece_chain] + added[1:]


_PACKED_PARTS = ("marks", "piece_start", "seg_lo", "seg_hi", "seg_group", "merge_piece",
                 "piece_chain", "chain_start", "chain_piece", "rooted", "fork_next", "fork_piece",
                 "fork_chain_start", "fork_chain_piece")  # _SumPlan's, as _kernels.c reads them


def _chain_levels(parent_chain: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Chains with a parent chain, grouped by depth in the chain tree (shallowest first), each
    group with its parents."""
    depth = np.zeros(len(parent_chain), dtype=np.int64)
    rooted = parent_chain >= 0
    while True:
        deeper = np.where(rooted, depth[np.maximum(parent_chain, 0)] + 1, 0)
        if np.array_equal(deeper, depth):
            break
        depth = deeper
    groups = (np.flatnonzero(depth == d) for d in range(1, int(depth.max(initial=0)) + 1))
    return [(g, parent_chain[g]) for g in groups]


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
