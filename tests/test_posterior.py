"""Posterior invariants (hypothesis) and the science.md figures the bench measures against."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dag import brute_ancestors, brute_candidates, dags, ranges

from bisectlab import dag
from bisectlab.posterior import (
    capacity,
    compute_posterior,
    culprit_mass,
    entropy_bits,
    lower_bound_tests,
)
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy


@st.composite
def hunts(draw):
    """A random DAG range and a few test results on its candidates."""
    parents = draw(dags(max_size=30))
    bad = len(parents) - 1
    cands = dag.candidates(parents, bad, [0]) if bad > 0 else np.array([0])
    if len(cands) == 0 or bad == 0:
        cands = np.array([bad])
    tests = draw(st.lists(st.tuples(st.sampled_from(cands.tolist()), st.integers(1, 4),
                                    st.booleans()), max_size=8))
    return parents, bad, tests


def observe_all(strategy, tests):
    for commit, boots, failed in tests:
        strategy.observe(Observation(commit, boots, int(failed)))


@settings(max_examples=80, deadline=None)
@given(hunts(), st.sampled_from([None, 0.0, 0.01]))
def test_posterior_sums_to_one_and_information_is_never_negative(hunt, fp):
    parents, bad, tests = hunt
    good = [0] if bad > 0 else []
    strategy = make_strategy("bayes", SearchSpace(parents, good, bad), false_positive=fp)
    observe_all(strategy, tests)
    if strategy.contradiction is not None:  # impossible data under f = 0: a failure on every side
        assert strategy.verdict().status == "inconclusive"
        return
    mass = strategy.posterior.mass
    assert mass.sum() == pytest.approx(1.0) and (mass >= 0).all()
    assert strategy.posterior.p_mass.sum() == pytest.approx(1.0)
    _, score = strategy.scores(Resources())
    assert (score[np.isfinite(score)] >= 0).all()



@settings(max_examples=60, deadline=None)
@given(hunts(), st.sampled_from([None, 0.0, 0.01]), st.sampled_from([1.0, 0.3, 0.01]),
       st.data())
def test_a_candidates_mass_alone_is_the_posteriors_to_the_bit(hunt, fp, p, data):
    parents, bad, tests = hunt
    strategy = make_strategy("bayes", SearchSpace(parents, [0] if bad > 0 else [], bad),
                             false_positive=fp)
    observe_all(strategy, tests)
    model = strategy.model.at_detect(p)
    n = len(strategy.space)
    picked = data.draw(st.one_of(st.integers(0, n - 1),
                                 st.lists(st.integers(0, n - 1), min_size=1, unique=True)))
    index = picked if isinstance(picked, int) else np.array(picked)
    try:
        full = compute_posterior(strategy.stats, strategy.log_prior, model)
    except ValueError:
        with pytest.raises(ValueError):
            culprit_mass(strategy.stats, strategy.log_prior, model, index)
        return
    assert culprit_mass(strategy.stats, strategy.log_prior, model, index) == \
        float(np.sum(full.mass[index]))

@settings(max_examples=80, deadline=None)
@given(hunts())
def test_no_mass_where_a_commit_is_ruled_out_with_certainty(hunt):
    parents, bad, tests = hunt
    if bad == 0:
        return
    space = SearchSpace(parents, [0], bad)
    strategy = make_strategy("bayes", space, false_positive=0.0, detect=1.0)
    ruled_out = set()
    for commit, _boots, failed in tests:
        anc = brute_ancestors(parents, commit)
        # p = 1, f = 0: a failure clears every non-ancestor, a pass clears every ancestor
        ruled_out |= (set(space.commits.tolist()) - anc) if failed else anc
    observe_all(strategy, tests)
    if strategy.contradiction is not None:
        assert strategy.verdict().status == "inconclusive"
        return
    for c in ruled_out & set(space.commits.tolist()):
        assert strategy.posterior.mass[space.local[c]] == 0.0


def test_binary_entropy_of_any_layout_is_the_entropy_of_its_values():
    q = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    expected = entropy_bits(q.copy())
    assert np.array_equal(entropy_bits(q.T), expected.T)  # a transposed view: F order
    assert np.array_equal(entropy_bits(q[:, ::2]), expected[:, ::2])
    assert entropy_bits(0.5) == 1.0 and np.array_equal(expected[[0, -1], [0, -1]], [0.0, 0.0])

@pytest.mark.parametrize("p, c", [(0.05, 0.0270), (0.3, 0.1770), (0.5, 0.3219), (1.0, 1.0)])
def test_capacity_matches_science_md(p, c):
    assert capacity(p) == pytest.approx(c, abs=1e-4)


@pytest.mark.parametrize("n, p, delta, bound", [(1e3, 0.3, 0.01, 55.3), (1e4, 0.5, 0.05, 38.3),
                                                (1e6, 0.8, 0.01, 31.8)])
def test_lower_bound_matches_science_md(n, p, delta, bound):
    assert lower_bound_tests(int(n), p, 0.0, delta) == pytest.approx(bound, abs=0.1)


def test_false_positives_modelled_one_stray_failure_is_not_a_verdict():
    line = [()] + [(i,) for i in range(64)]
    strategy = make_strategy("bayes", SearchSpace(line, [0], 64), false_positive=None)
    strategy.observe(Observation(5, 1, 1))
    assert strategy.verdict() is None
    assert strategy.posterior.mass[strategy.space.local[40]] > 0


@st.composite
def observed_ranges(draw, max_size: int = 120):
    """A history range (test_dag.ranges, up to 120 commits), optionally narrowed to the
    candidates a deterministic hunt leaves, and tests of any commits of the graph."""
    parents, goods, bad = draw(ranges(max_size=max_size))
    commits = sorted(brute_candidates(parents, goods, bad))
    if commits and draw(st.booleans()):
        alive = brute_ancestors(parents, draw(st.sampled_from(commits))) & set(commits)
        commits = sorted(alive - brute_ancestors(parents, draw(st.sampled_from(sorted(alive)))))
    tests = draw(st.lists(st.tuples(st.integers(0, len(parents) - 1), st.integers(0, 5),
                                    st.booleans()), max_size=10))
    return parents, goods, bad, commits, [(c, b, int(f and b > 0)) for c, b, f in tests]


def brute_posterior(parents, commits, tests, model) -> np.ndarray:
    """P(culprit = c | tests) for each of the sorted ``commits``, by summing the likelihood over
    the rate grids, candidate by candidate: a test of x is bad iff c is an ancestor-or-self of x."""
    inside = set(commits)
    p, f = model.p_grid[:, None], model.f_grid[None, :]
    prior = model.p_prior[:, None] * model.f_prior[None, :]
    weight = []
    for c in commits:
        like = np.ones_like(prior)
        for x, boots, failures in tests:
            if x not in inside:
                continue
            rate = np.broadcast_to(p if c in brute_ancestors(parents, x) else f, like.shape)
            like = like * rate**failures * (1 - rate) ** (boots - failures)
        weight.append((like * prior).sum())
    weight = np.array(weight)
    with np.errstate(invalid="ignore"):  # impossible data: every weight 0, nan (the caller skips)
        return weight / weight.sum()


@settings(max_examples=100, deadline=None)
@given(observed_ranges(), st.sampled_from([None, 0.0, 0.01]))
def test_posterior_mass_matches_brute_force(case, fp):
    parents, goods, bad, commits, tests = case
    if not commits:
        return
    space = SearchSpace(parents, goods, bad, commits=np.array(commits))
    strategy = make_strategy("bayes", space, false_positive=fp)
    observe_all(strategy, tests)
    expected = brute_posterior(parents, commits, tests, strategy.model)
    if strategy.contradiction is not None or not np.isfinite(expected).all():
        return  # impossible data: covered above
    np.testing.assert_allclose(strategy.posterior.mass, expected, rtol=1e-9, atol=1e-12)


def brute_scores(parents, commits, tests, model, mass, ladder) -> np.ndarray:
    """Bits a test of each commit with up to b boots gives about the culprit, per b of
    ``ladder`` (L, N): I = H(outcome) - E_c H(outcome | c), with the rates summed out given c."""
    inside = set(commits)
    p, f = model.p_grid[:, None], model.f_grid[None, :]
    prior = model.p_prior[:, None] * model.f_prior[None, :]
    conditional = []
    for c in commits:
        like = np.ones_like(prior)
        for x, boots, failures in tests:
            if x in inside:
                rate = np.broadcast_to(p if c in brute_ancestors(parents, x) else f, like.shape)
                like = like * rate**failures * (1 - rate) ** (boots - failures)
        total = (like * prior).sum()  # 0: c is impossible (its mass is 0 too)
        conditional.append(like * prior / total if total > 0 else np.zeros_like(prior))
    out = np.zeros((len(ladder), len(commits)))
    for k, b in enumerate(ladder):
        pass_bad = np.array([(q * (1 - p) ** b).sum() for q in conditional])
        pass_good = np.array([(q * (1 - f) ** b).sum() for q in conditional])
        for j, x in enumerate(commits):
            bad = np.array([c in brute_ancestors(parents, x) for c in commits])
            passes = np.where(bad, pass_bad, pass_good)
            out[k, j] = bits(mass @ passes) - mass @ np.array([bits(q) for q in passes])
    return np.maximum(out, 0.0)


def bits(q: float) -> float:
    return 0.0 if q <= 0 or q >= 1 else float(-(q * np.log2(q) + (1 - q) * np.log2(1 - q)))


@settings(max_examples=50, deadline=None)
@given(observed_ranges(max_size=40), st.sampled_from([None, 0.0, 0.01]))
def test_scores_of_every_boots_count_match_brute_force(case, fp):
    """The information of testing each candidate with up to b boots, every b of the ladder at
    once (ancestor sums of each likelihood class's pass probabilities and their entropies),
    against the mutual information worked out candidate by candidate."""
    parents, goods, bad, commits, tests = case
    if not commits:
        return
    space = SearchSpace(parents, goods, bad, commits=np.array(commits))
    strategy = make_strategy("bayes", space, false_positive=fp)
    observe_all(strategy, tests)
    if strategy.contradiction is not None:
        return
    ladder = (1, 2, 5, 13)
    _, scores = strategy.scores_at(Resources(), ladder)
    expected = brute_scores(parents, commits, tests, strategy.model, strategy.posterior.mass,
                            ladder)
    np.testing.assert_allclose(np.array(scores), expected, rtol=1e-7, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.floats(-800, 50), st.sampled_from([-np.inf, 0.0, 3.5])),
                min_size=1, max_size=300), st.integers(1, 4))
def test_logsumexp_is_scipys_bit_for_bit(values, columns):
    """The posterior's logsumexp gives scipy's result to the last bit, whole or along an axis
    (ties at the maximum, -inf everywhere, tiny terms)."""
    from scipy.special import logsumexp as scipy_logsumexp

    from bisectlab.posterior import logsumexp

    a = np.array(values)
    assert np.array_equal(logsumexp(a), scipy_logsumexp(a))
    rows = len(a) // columns
    if rows:
        m = a[:rows * columns].reshape(rows, columns)
        for axis in (0, 1, None):
            assert np.array_equal(logsumexp(m, axis=axis), scipy_logsumexp(m, axis=axis))
