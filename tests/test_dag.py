"""DAG algorithms against brute force on random DAGs (hypothesis) and on kernel-shaped ones."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bisectlab import dag
from bisectlab.strategies import SearchSpace


@st.composite
def dags(draw, max_size: int = 40):
    """Random DAGs in topological numbering, with merges of up to three parents."""
    n = draw(st.integers(1, max_size))
    parents = [()]
    for i in range(1, n):
        k = draw(st.integers(0, min(3, i)))
        if k == 0 and draw(st.booleans()):
            k = 1
        parents.append(tuple(draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k,
                                           unique=True))))
    return parents


def brute_ancestors(parents, x):
    seen, todo = {x}, [x]
    while todo:
        for p in parents[todo.pop()]:
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_ancestor_sums_match_brute_force(parents, data):
    bad = len(parents) - 1
    goods = data.draw(st.lists(st.integers(0, bad), max_size=2))
    cands = dag.candidates(parents, bad, [g for g in goods if g != bad])
    if len(cands) == 0:
        return
    weights = np.array(data.draw(st.lists(st.floats(0, 1), min_size=len(cands),
                                          max_size=len(cands))))
    sums = dag.AncestorSums(parents, cands).sums(weights)
    index = {int(c): i for i, c in enumerate(cands)}
    for i, c in enumerate(cands):
        expected = sum(weights[index[a]] for a in brute_ancestors(parents, int(c)) if a in index)
        assert sums[i] == np.float64(expected) or abs(sums[i] - expected) < 1e-9


@settings(max_examples=100, deadline=None)
@given(dags(), st.data())
def test_candidates_are_convex_and_ancestry_is_monotone(parents, data):
    bad = len(parents) - 1
    good = data.draw(st.integers(0, bad))
    cands = set(dag.candidates(parents, bad, [good]).tolist())
    assert cands == brute_ancestors(parents, bad) - brute_ancestors(parents, good)
    for c in cands:
        # every ancestor of a candidate is a candidate or an ancestor of GOOD (convexity)
        for a in brute_ancestors(parents, c):
            assert a in cands or a in brute_ancestors(parents, good)
        # ancestry is monotone: ancestors of an ancestor are ancestors
        for p in parents[c]:
            assert brute_ancestors(parents, p) <= brute_ancestors(parents, c)


def test_unit_weights_count_ancestors_on_a_kernel_history(kernel_2k):
    h = kernel_2k
    bad = len(h) - 1
    cands = dag.candidates(h.parents, bad, [0])
    counts = dag.AncestorSums(h.parents, cands).sums(np.ones(len(cands), dtype=np.int64))
    mask = np.zeros(len(h), dtype=bool)
    mask[cands] = True
    for i in (0, 10, len(cands) // 2, len(cands) - 1):
        anc = dag.ancestors_mask(h.parents, [int(cands[i])])
        assert counts[i] == int((anc & mask).sum())
    assert counts[-1] == len(cands)


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_is_ancestor_walks_and_falls_back_to_the_search_alike(parents, data):
    a = data.draw(st.integers(0, len(parents) - 1))
    b = data.draw(st.integers(0, len(parents) - 1))
    expected = a in brute_ancestors(parents, b)
    assert dag.is_ancestor(parents, a, b) == expected
    assert dag.is_ancestor(parents, a, b, walk_limit=1) == expected


def test_descendants_and_generation():
    parents = [(), (0,), (0,), (1, 2), (3,)]
    assert dag.descendants_mask(parents, 1).tolist() == [False, True, False, True, True]
    assert dag.generation_numbers(parents).tolist() == [0, 1, 1, 2, 3]
    assert dag.is_ancestor(parents, 2, 4) and not dag.is_ancestor(parents, 1, 2)


# large random histories: the chain layout against brute force ----------------------------------


@st.composite
def histories(draw, max_size: int = 300, max_parents: int = 4):
    """Random histories grown the way git ones are: a few branch tips, and at each step a commit
    on a tip, a branch forked from any older commit, a merge of up to ``max_parents`` - 1 other
    tips or older commits into a tip, or now and then a new root. Branches live on after being
    merged, so they are merged again, forked from in their middle, merged criss-cross."""
    n = draw(st.integers(1, max_size))
    parents: list[tuple[int, ...]] = [()]
    tips = [0]
    for i in range(1, n):
        move = draw(st.integers(0, 39))
        tip = draw(st.integers(0, len(tips) - 1))
        if move == 0:
            parents.append(())
            tips.append(i)
        elif move < 24:
            parents.append((tips[tip],))
            tips[tip] = i
        elif move < 30:
            parents.append((draw(st.integers(0, i - 1)),))
            tips.append(i)
        else:
            older = st.sampled_from(tips) if move < 36 else st.integers(0, i - 1)
            others = draw(st.lists(older.filter(lambda p, t=tips[tip]: p != t), min_size=1,
                                   max_size=max_parents - 1, unique=True))
            parents.append((tips[tip], *others))
            tips[tip] = i
    return parents


@st.composite
def ranges(draw, max_size: int = 300):
    """A history, a BAD commit and up to four GOOD ones."""
    parents = draw(histories(max_size))
    bad = draw(st.integers(0, len(parents) - 1))
    goods = draw(st.lists(st.integers(0, len(parents) - 1), max_size=4))
    return parents, [g for g in goods if g != bad], bad


def brute_candidates(parents, goods, bad) -> set[int]:
    cleared = set().union(*(brute_ancestors(parents, g) for g in goods))
    return brute_ancestors(parents, bad) - cleared


def expected_sums(parents, commits, weights: np.ndarray) -> np.ndarray:
    """Ancestor sums by brute force, over ``commits`` (sorted) only."""
    index = {int(c): i for i, c in enumerate(commits)}
    rows = [[index[a] for a in brute_ancestors(parents, int(c)) if a in index] for c in commits]
    return np.array([weights[r].sum(axis=0) for r in rows]).reshape(weights.shape)


def check_space(space: SearchSpace, parents, weights: np.ndarray, block_cells: int) -> None:
    """Sums (integer, float, matrix; whole and column by column), ancestors, parents and the
    commit index of a search space, all against brute force."""
    commits = space.commits.tolist()
    with patch.object(dag, "BLOCK_CELLS", block_cells):
        counts = space.sums.sums(np.ones(len(commits), dtype=np.int64))
        sums = space.sums.sums(weights)
        matrix = space.sums.sums(np.stack([weights, 1 - weights, weights**2], axis=1))
    assert counts.tolist() == expected_sums(parents, commits, np.ones(len(commits), int)).tolist()
    np.testing.assert_allclose(sums, expected_sums(parents, commits, weights), rtol=0, atol=1e-9)
    rows = np.stack([weights, 1 - weights, weights**2])
    with patch.object(dag, "BLOCK_CELLS", block_cells):  # a row at a time, or all at once
        assert np.array_equal(space.sums.row_sums(rows), matrix.T)  # bit for bit
    np.testing.assert_allclose(
        matrix, expected_sums(parents, commits, np.stack([weights, 1 - weights, weights**2], 1)),
        rtol=0, atol=1e-9)
    inside = set(commits)
    for i, c in enumerate(commits):
        assert space.local[c] == i and space.local.get(c) == i
        mine = {commits[a] for a in space.ancestors(i).tolist()}
        assert mine == brute_ancestors(parents, c) & inside
        again = space.ancestors(i)  # kept from the first call, and read-only
        assert set(again.tolist()) == {commits.index(a) for a in mine}
        assert not again.flags.writeable
        assert space.ancestor_mask(i).sum() == len(mine)
        assert [commits[p] for p in space.parents[i]] == [p for p in parents[c] if p in inside]
    outside = set(range(len(parents))) - inside
    assert all(c not in space.local and space.local.get(c) is None for c in outside)


@settings(max_examples=150, deadline=None)
@given(ranges(), st.data())
def test_candidates_and_ancestor_sums_match_brute_force_on_histories(case, data):
    parents, goods, bad = case
    expected = brute_candidates(parents, goods, bad)
    assert dag.candidates(parents, bad, goods).tolist() == sorted(expected)
    if not expected:
        return
    space = SearchSpace(parents, goods, bad)
    assert space.commits.tolist() == sorted(expected)
    weights = np.array(data.draw(st.lists(st.floats(0, 1), min_size=len(expected),
                                          max_size=len(expected))))
    check_space(space, parents, weights, data.draw(st.sampled_from([dag.BLOCK_CELLS, 1])))


@settings(max_examples=150, deadline=None)
@given(ranges(), st.data())
def test_sub_spaces_of_alive_candidates_match_brute_force(case, data):
    """SearchSpace(..., commits=): the candidates a deterministic hunt has left (ancestors of a
    failed commit, minus those of passed ones), few of the graph's or most of it."""
    parents, goods, bad = case
    candidates = sorted(brute_candidates(parents, goods, bad))
    if not candidates:
        return
    failed = data.draw(st.sampled_from(candidates))
    alive = brute_ancestors(parents, failed) & set(candidates)
    for passed in data.draw(st.lists(st.sampled_from(sorted(alive)), max_size=3)):
        alive -= brute_ancestors(parents, passed)
    if not alive:
        return
    commits = np.array(sorted(alive))
    space = SearchSpace(parents, goods, bad, commits=commits)
    weights = np.array(data.draw(st.lists(st.floats(0, 1), min_size=len(commits),
                                          max_size=len(commits))))
    check_space(space, parents, weights, data.draw(st.sampled_from([dag.BLOCK_CELLS, 1])))


def merged_twice() -> list[tuple[int, ...]]:
    """A topic branch merged into mainline, then continued and merged again."""
    topic_head = [(), (0,), (1,), (0, 2), (2,), (4,), (5,), (3, 6)]
    return topic_head + [(i,) for i in range(7, 20)]


def forked_inside() -> list[tuple[int, ...]]:
    """A branch forked from the middle of a topic branch and merged before it."""
    topic = [(), (0,), (1,), (2,), (3,), (4,)]
    return topic + [(2,), (6,), (7,), (0, 8), (9, 5)] + [(i,) for i in range(10, 25)]


def octopus_and_criss_cross() -> list[tuple[int, ...]]:
    """Three branches merged at once, then two branches merging each other."""
    base = [(), (0,), (1,), (0,), (3,), (0,), (5,), (2, 4, 6), (7,), (7,), (8, 9), (9, 8)]
    return base + [(10, 11)] + [(i,) for i in range(12, 20)]


@pytest.mark.parametrize("shape", [merged_twice, forked_inside, octopus_and_criss_cross])
def test_ancestor_counts_on_shapes_a_plain_branch_rule_could_miscount(shape):
    """Each shape defeats one condition of AncestorSums' plain-branch shortcut if it is dropped
    (a long mainline makes it the heavy path, the branch a chain of its own)."""
    parents = shape()
    space = SearchSpace(parents, [], len(parents) - 1)
    counts = space.sums.sums(np.ones(len(space), dtype=np.int64))
    assert counts.tolist() == [len(brute_ancestors(parents, int(c))) for c in space.commits]


def test_ancestor_sums_of_a_large_kernel_history_count_exactly(kernel_2k):
    h = kernel_2k
    space = SearchSpace(h.parents, [0], len(h) - 1)
    counts = space.sums.sums(np.ones(len(space), dtype=np.int64))
    for i in range(0, len(space), 97):
        assert counts[i] == len(space.ancestors(i))
