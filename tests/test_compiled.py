"""The compiled kernels against the numpy passes they stand in for, bit for bit."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dag import histories, ranges
from test_posterior import hunts, observe_all

from bisectlab import compiled, dag
from bisectlab.posterior import compute_posterior, culprit_mass
from bisectlab.strategies import Resources, SearchSpace, make_strategy

kernels = compiled.kernels


def test_the_install_built_the_kernels():
    """CI installs with a C compiler at hand: the kernels must be there, or every comparison
    below would compare numpy with itself."""
    assert kernels is not None


def numpy_only():
    return patch.object(compiled, "kernels", None)


@settings(max_examples=150, deadline=None)
@given(ranges(), st.data())
def test_ancestor_sums_are_numpys_to_the_bit(case, data):
    parents, goods, bad = case
    if not dag.candidates(parents, bad, goods).size:
        return
    space = SearchSpace(parents, goods, bad)
    n = len(space)
    rows = np.array(data.draw(st.lists(
        st.lists(st.floats(-1e3, 1e3, allow_subnormal=False), min_size=n, max_size=n),
        min_size=1, max_size=5)))
    plan = space.sums.plan
    assert np.array_equal(space.sums.row_sums(rows), plan.numpy_row_sums(rows))
    assert np.array_equal(space.sums.sums(rows[0]), plan.numpy_sums(rows[0]))
    out = np.empty((n, 2))  # a strided column as the destination
    space.sums.plan.sums(rows[0], out=out[:, 1])
    assert np.array_equal(out[:, 1], plan.numpy_sums(rows[0]))


def test_long_chains_sum_as_numpys_pairwise_sum_does():
    """Runs of thousands of commits between marks, where numpy's pairwise summation splits
    blocks of 128 in halves and rounds differently from a running sum."""
    rng = np.random.default_rng(7)
    parents: list[tuple[int, ...]] = [()]
    for i in range(1, 20_000):
        merge = i % 2_500 == 0 and i > 5_000
        parents.append((i - 1, i - 4_000) if merge else (i - 1,))
    space = SearchSpace(parents, [], len(parents) - 1)
    rows = rng.random((3, len(space))) * 1e-3
    assert np.array_equal(space.sums.row_sums(rows), space.sums.plan.numpy_row_sums(rows))


@settings(max_examples=100, deadline=None)
@given(hunts(), st.sampled_from([None, 0.0, 0.01]), st.sampled_from([None, 1.0, 0.3]))
def test_posteriors_are_numpys_to_the_bit(hunt, fp, p):
    """The pairs' likelihoods, the rates' posterior and each pair's conditional one, and a
    candidate's mass alone; also with p and f both known (one rate cell: numpy then sums the
    pairs pairwise) and with candidates the prior rules out."""
    parents, bad, tests = hunt
    strategy = make_strategy("bayes", SearchSpace(parents, [0] if bad > 0 else [], bad),
                             false_positive=fp, detect=p)
    observe_all(strategy, tests)
    stats, model = strategy.stats, strategy.model
    priors = [strategy.log_prior, np.where(np.arange(len(strategy.space)) % 2, -np.inf, 0.0)]
    for log_prior in priors:
        compiled_run = _posterior(stats, log_prior, model)
        with numpy_only():
            assert _same(compiled_run, _posterior(stats, log_prior, model))


def _posterior(stats, log_prior, model) -> list[np.ndarray] | str:
    try:
        post = compute_posterior(stats, log_prior, model)
    except ValueError as error:
        return str(error)
    return [post.mass, post.rates, post.conditional,
            np.asarray(culprit_mass(stats, log_prior, model, 0))]


def _same(a: list[np.ndarray] | str, b: list[np.ndarray] | str) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    return all(x.shape == y.shape and np.array_equal(x, y, equal_nan=True)
               for x, y in zip(a, b, strict=True))


@settings(max_examples=40, deadline=None)
@given(histories(max_size=120), st.integers(0, 2**32 - 1))
def test_a_decision_is_the_same_with_or_without_the_kernels(parents, seed):
    """A few steps of a hunt choose the same commits and give the same scores either way."""
    space = SearchSpace(parents, [], len(parents) - 1)
    rng = np.random.default_rng(seed)
    runs = []
    for numpy_path in (False, True):
        with patch.object(compiled, "kernels", None if numpy_path else kernels):
            strategy = make_strategy("bayes", space, false_positive=None)
            choices = []
            for _ in range(4):
                commit = strategy.propose(Resources()).commits[0]
                failed = int(rng.random() < 0.5)
                observe_all(strategy, [(commit, 2, failed)])
                choices.append((commit, strategy.scores(Resources())[1].tobytes()))
            runs.append(choices)
        rng = np.random.default_rng(seed)
    assert runs[0] == runs[1]


@pytest.mark.parametrize("call", [
    lambda: kernels.ancestor_rows(np.zeros((2, 3)), np.zeros((2, 4)), *_plan3()),
    lambda: kernels.ancestor_rows(np.zeros((2, 3)), np.zeros((2, 3), dtype=np.float32),
                                  *_plan3()),
    lambda: kernels.ancestor_rows(np.zeros((2, 3)), np.zeros((2, 3)), *_plan3()[:2],
                                  np.zeros(19, dtype=np.int64)),
    lambda: kernels.ancestor_rows(np.zeros((2, 4)), np.zeros((2, 4)), *_plan3()),
    lambda: kernels.pair_likelihoods(*(np.zeros((2, 3)),) * 3, np.zeros((3, 2)),
                                     np.zeros((2, 3, 3)), np.zeros(2)),
    lambda: kernels.rate_posteriors(np.zeros((2, 3, 1)), np.zeros(2), np.zeros(3),
                                    np.zeros((3, 1)), np.zeros((2, 3, 1))),
])
def test_the_kernels_refuse_arrays_that_do_not_fit(call):
    """A shape, a dtype or a plan of another size is an exception, not a write out of bounds
    (the kernels are private: a plan's index values are its own, checked by the tests above)."""
    with pytest.raises((ValueError, TypeError)):
        call()


def _plan3() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return SearchSpace([(), (0,), (1,)], [], 2).sums.plan.packed


def test_a_model_with_one_rate_cell_sums_its_pairs_pairwise():
    """p and f both assumed: one cell per pair, so numpy's sum across pairs runs along a
    contiguous axis (pairwise), not one pair after another."""
    space = SearchSpace([()] + [(i,) for i in range(40)], [], 40)
    strategy = make_strategy("bayes", space, detect=0.5, false_positive=0.0)
    observe_all(strategy, [(c, 1, c > 30) for c in range(0, 40, 2)])
    assert strategy.model.log_prior().size == 1 and len(strategy.stats.pair_boots) > 8
    compiled_run = _posterior(strategy.stats, strategy.log_prior, strategy.model)
    with numpy_only():
        assert _same(compiled_run, _posterior(strategy.stats, strategy.log_prior, strategy.model))
