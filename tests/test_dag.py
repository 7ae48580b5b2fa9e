"""DAG algorithms against brute force on random DAGs (hypothesis) and on kernel-shaped ones."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bisectlab import dag


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


def test_descendants_and_generation():
    parents = [(), (0,), (0,), (1, 2), (3,)]
    assert dag.descendants_mask(parents, 1).tolist() == [False, True, False, True, True]
    assert dag.generation_numbers(parents).tolist() == [0, 1, 1, 2, 3]
    assert dag.is_ancestor(parents, 2, 4) and not dag.is_ancestor(parents, 1, 2)
