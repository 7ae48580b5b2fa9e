"""The compiled kernels against the numpy passes they stand in for, bit for bit."""

from __future__ import annotations

import functools
import math
from contextlib import contextmanager
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dag import histories, ranges
from test_posterior import hunts, observe_all

from bisectlab import compiled, dag, posterior
from bisectlab.posterior import compute_posterior, culprit_mass
from bisectlab.strategies import Resources, SearchSpace, make_strategy
from bisectlab.strategies.base import LabCosts

kernels = compiled.kernels


def test_the_install_built_the_kernels():
    """CI installs with a C compiler at hand: the kernels must be there, or every comparison
    below would compare numpy with itself."""
    assert kernels is not None


needs_kernels = pytest.mark.skipif(kernels is None, reason="the kernels were not built")


def numpy_only():
    return patch.object(compiled, "kernels", None)


class _LibmNumpy:
    """numpy, with the C library's exp, log and log1p: on a CPU where numpy has its own (AVX-512)
    the posterior kernels are compared with the numpy passes taking the math they take."""

    def __getattr__(self, name: str):
        return getattr(np, name)

    @staticmethod
    def _each(f, x, out=None, on_error=np.nan):
        a = np.asarray(x, dtype=float)
        got = np.array([_libm(f, v) for v in a.ravel().tolist()], dtype=float).reshape(a.shape)
        if out is not None:
            out[...] = got
            return out
        return got if a.ndim else got[()]

    def exp(self, x, out=None):
        return self._each(math.exp, x, out)

    def log(self, x, out=None):
        return self._each(math.log, x, out)

    def log1p(self, x, out=None):
        return self._each(math.log1p, x, out)


def _libm(f, v: float) -> float:
    """f(v) as numpy's ufunc would give it where math raises: -inf at the pole, else nan."""
    try:
        return f(v)
    except ValueError:
        return -math.inf if v == (0.0 if f is math.log else -1.0) else math.nan
    except OverflowError:
        return math.inf


NUMPY_IS_LIBM = functools.cache(compiled._numpy_agrees_with_libm)  # the probe, run once here


@contextmanager
def kernels_against_libm():
    """The posterior kernels on, and the posterior's numpy passes taking the C library's math,
    whatever this CPU's numpy has (where it is the C library's already, numpy as it is)."""
    with patch.object(compiled, "_numpy_is_libm", True):
        if NUMPY_IS_LIBM():
            yield
        else:
            with patch.object(posterior, "np", _LibmNumpy()):
                yield


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
        min_size=1, max_size=3)))
    more = data.draw(st.integers(0, 18))  # the kernel takes rows 8 at a time: and the rest
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = np.concatenate([rows, rng.normal(0, 1e3, (more, n))])
    plan = space.sums.plan
    assert np.array_equal(space.sums.row_sums(rows), plan.numpy_row_sums(rows))
    assert np.array_equal(space.sums.sums(rows[0]), plan.numpy_sums(rows[0]))
    out = np.empty((n, 2))  # a strided column as the destination
    space.sums.plan.sums(rows[0], out=out[:, 1])
    assert np.array_equal(out[:, 1], plan.numpy_sums(rows[0]))


@settings(max_examples=100, deadline=None)
@given(ranges(), st.data())
def test_class_products_sum_as_numpys_rows_do(case, data):
    """The kernel that forms each mass-times-class product as it reads it gives the ancestor
    sums of numpy's matrix of those products, to the bit, for any number of rows."""
    parents, goods, bad = case
    if not dag.candidates(parents, bad, goods).size:
        return
    space = SearchSpace(parents, goods, bad)
    n = len(space)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    classes = rng.integers(0, data.draw(st.integers(1, 5)), n)
    table = rng.random((data.draw(st.integers(0, 20)), int(classes.max()) + 1))
    m = rng.dirichlet(np.ones(n))
    expected = space.sums.plan.numpy_row_sums(dag.class_products(m, table, classes))
    assert np.array_equal(space.sums.product_sums(m, table, classes.astype(np.uint8)), expected)


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
    with kernels_against_libm():
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


LAB = LabCosts(install=30.0, boot=3.0, swap=10.0)


@settings(max_examples=40, deadline=None)
@given(histories(max_size=120), st.integers(0, 2**32 - 1),
       st.sampled_from(["unpriced", "priced", "adapters"]), st.sampled_from([None, 0.0]))
def test_a_decision_is_the_same_with_or_without_the_kernels(parents, seed, lab, fp):
    """A few steps of a hunt choose the same commits and boots and give the same scores
    either way: unpriced, priced in lab minutes (the boots chosen from a ladder, the installed
    kernel free), and with an adapter budget; with f learnt and assumed 0."""
    space = SearchSpace(parents, [], len(parents) - 1)
    rng = np.random.default_rng(seed)
    runs = []
    for numpy_path in (False, True):
        with patch.object(compiled, "kernels", None if numpy_path else kernels), \
                kernels_against_libm():
            strategy = make_strategy("bayes", space, false_positive=fp)
            choices, installed = [], ()
            for _ in range(4):
                resources = Resources(
                    adapters_left=3 if lab == "adapters" else None, installed=installed,
                    costs=None if lab == "unpriced" else LAB)
                proposal = strategy.propose(resources)
                commit = proposal.commits[0]
                failed = int(rng.random() < 0.5)
                observe_all(strategy, [(commit, 2, failed)])
                installed = (commit,)
                choices.append((proposal, strategy.scores(resources)[1].tobytes()))
            runs.append(choices)
        rng = np.random.default_rng(seed)
    assert runs[0] == runs[1]


EDGES = [0.0, 1.0, -0.0, -0.5, 1.5, 5e-324, 1e-300, 1 - 2**-53, 0.5, math.nan, math.inf]


@needs_kernels
@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(EDGES), st.floats(-0.1, 1.1)), min_size=0,
                max_size=300), st.sampled_from([(-1,), (3, -1), "transposed"]))
def test_the_entropy_is_numpys_to_the_bit(values, shape):
    """entropy_bits with the kernel after numpy's logarithms: 0 and 1, outside [0, 1], NaN,
    subnormals, and arrays of any layout."""
    q = np.array(values + [0.25] * (-len(values) % 3))
    q = q.reshape(3, -1).T if shape == "transposed" else q.reshape(shape)
    with kernels_against_libm():
        with numpy_only():
            expected = posterior.entropy_bits(q)
        got = posterior.entropy_bits(q)
    assert same_bits(got, expected)


@needs_kernels
@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.sampled_from([0.0, -0.0, 1.0, 1.0 - 1e-10, 1.0 + 1e-10, 1e-300,
                                           -1e-300])), min_size=1, max_size=60))
def test_the_first_best_is_numpys(values):
    """first_best with the kernel: near-ties within 1e-9 to the first, NaN, infinities, signed
    zeros and subnormals, as numpy's max, argmax and comparisons take them."""
    from bisectlab.strategies.bayes import first_best

    a = np.array(values)
    with np.errstate(all="ignore"):
        with numpy_only():
            expected = first_best(a)
        assert first_best(a) == expected


@needs_kernels
@settings(max_examples=200, deadline=None)
@given(st.sampled_from([((7, 49, 1), (1, 2)), ((30, 49, 4), (1, 2)), ((30, 49, 4), 0),
                        ((1, 49, 1), 0), ((12, 1, 1), 0), ((300,), None), ((49, 4), None),
                        ((5,), 0), ((3, 4), -1), ((3, 4), (0, 1)), ((4, 3), (1, 0)),
                        ((3, 4, 2), (0, 2)), ((), None), ((2, 8192), -1), ((2, 8193), 1),
                        ((8192,), None), ((2, 4097), None)]),
       st.integers(0, 2**32 - 1),
       st.sampled_from(["normal", "-inf", "all -inf", "nan", "ties", "+inf", "zeros"]))
def test_log_sum_exps_are_numpys_to_the_bit(case, seed, kind):
    """_logsumexp with the kernels around numpy's exp, log and log1p, over trailing axes
    (pairwise, as numpy sums a contiguous run), the leading one (row after row) and all (up to
    numpy's buffer in one kernel with the C library's exp and log); with -inf, NaN and ties for
    the largest; an axis the kernels do not walk falls to numpy."""
    shape, axis = case
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.normal(size=shape) * 30)
    if kind == "-inf":
        a[rng.random(shape) < 0.3] = -np.inf
    elif kind == "all -inf":
        a[...] = -np.inf
    elif kind == "nan" and a.size:
        a.flat[rng.integers(a.size)] = np.nan
    elif kind == "ties":
        a = np.round(a / 30)
    elif kind == "+inf" and a.size:
        a.flat[rng.integers(a.size)] = np.inf
    elif kind == "zeros":
        a = np.where(rng.random(a.shape) < 0.5, -0.0, 0.0)
    with np.errstate(all="ignore"), kernels_against_libm():
        with numpy_only():
            expected = posterior._logsumexp(a, axis)
        got = posterior._logsumexp(a, axis)
    assert got.shape == expected.shape and same_bits(got, expected)


@needs_kernels
def test_runs_up_to_numpys_buffer_sum_as_numpy_does():
    """A contiguous run is one pairwise sum in numpy only up to its buffer (8192 values; numpy
    before 2.3 sums a longer run a buffer at a time): up to it the kernel's sum is numpy's, raw,
    on values whose sums round; past it the log-sum-exp is left to numpy's passes."""
    from bisectlab.posterior import NUMPY_BUFFER, _line_plan

    terms = np.exp(np.random.default_rng(0).random(NUMPY_BUFFER) * -5)
    for m in (7, 8, 9, 128, 129, 1000, NUMPY_BUFFER):
        lines, _ = _line_plan((1, m), (1,))
        rest = np.empty(1)
        kernels.lse_rest(terms[:m].copy(), np.ones(1), rest, lines)
        assert rest[0] == terms[:m].sum()
    assert _line_plan((1, NUMPY_BUFFER + 1), (1,)) is None
    assert _line_plan((NUMPY_BUFFER + 1, 3), (0,)) is not None  # row after row: no buffer


def random_minutes(rng: np.random.Generator, ladder: int, n: int, installed: float
                   ) -> posterior.LabMinutes:
    """Lab minutes of a random ladder of ``ladder`` boots counts over ``n`` candidates, about
    ``installed`` of them on a rig already (no install to pay)."""
    install = np.where(rng.random(n) < installed, 0.0, 30.0)
    per_b = np.column_stack([rng.integers(1, 50, ladder).astype(float),
                             rng.random(ladder) * 10, rng.random(ladder)])
    return posterior.LabMinutes(install, per_b, 3.0, 10.0)


@needs_kernels
@settings(max_examples=150, deadline=None)
@given(st.integers(1, 9), st.integers(0, 60), st.integers(0, 2**32 - 1), st.booleans(),
       st.floats(0.0, 5.0), st.sampled_from([posterior.CHUNK, 7]))
def test_scores_per_cost_are_numpys_to_the_bit(ladder, n, seed, priced, weight, chunk):
    """information_per_cost with the kernel: pass probabilities at 0 and 1 and between, an
    information that comes out negative (0) or NaN, installed kernels, with and without lab
    minutes; and, past a chunk of cells, a row's piece at a time."""
    rng = np.random.default_rng(seed)
    p_pass = np.clip(rng.choice([0.0, 1.0, rng.random()], (ladder, n))
                     if seed % 3 == 0 else rng.random((ladder, n)), 0.0, 1.0)
    cond = rng.random((ladder, n)) * rng.choice([0.0, 0.5, 2.0])
    if n and seed % 5 == 0:
        cond[0, 0] = math.nan
    u = rng.random(n)
    minutes = random_minutes(rng, ladder, n, installed=0.2) if priced else None
    with np.errstate(all="ignore"):
        with numpy_only():
            expected = posterior.information_per_cost(p_pass.copy(), cond, weight, u, minutes)
        with patch.object(posterior, "CHUNK", chunk):
            got = posterior.information_per_cost(p_pass, cond, weight, u, minutes)
    assert same_bits(got, expected)


@needs_kernels
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 9), st.integers(0, 40), st.integers(0, 2**32 - 1), st.booleans(),
       st.booleans(), st.floats(0.0, 5.0))
def test_scores_from_ancestor_sums_are_numpys_to_the_bit(ladder, n, seed, priced,
                                                         false_positives, weight):
    """sums_per_cost with the kernel, which scores a run of neighbours with equal sums and
    price once: runs, a neighbour one bit away in one sum or differing only in its price,
    pass probabilities clipped from outside [0, 1], at exactly 0 and 1, -0.0 and NaN."""
    rng = np.random.default_rng(seed)
    rows = 1 + (4 if false_positives else 2) * ladder
    sums = rng.choice([0.0, 1.0, -0.0, 0.5], (rows, n)) if seed % 3 == 0 else rng.random((rows, n))
    for j in range(1, n):
        if rng.random() < 0.6:
            sums[:, j] = sums[:, j - 1]
    if n > 1 and seed % 2:
        row = rng.integers(rows)
        sums[:, -1] = sums[:, -2]
        sums[row, -1] = np.nextafter(sums[row, -1], 2.0)
    if n and seed % 5 == 0:
        sums[rng.integers(rows), rng.integers(n)] = math.nan
    totals = rng.choice([0.0, 1.0, 0.25], (2, ladder)) if seed % 7 == 0 else rng.random((2, ladder))
    minutes = random_minutes(rng, ladder, n, installed=0.3) if priced else None
    with np.errstate(all="ignore"), kernels_against_libm():
        with numpy_only():
            expected = posterior.sums_per_cost(sums, totals, weight, minutes)
        got = posterior.sums_per_cost(sums, totals, weight, minutes)
    assert same_bits(got, expected)


ANCESTOR_FORMS = {  # how a caller may name a test's ancestors: as indices, or as numpy reads
    "int64": lambda picked, n: picked,
    "int32, read-only": lambda picked, n: _read_only(picked.astype(np.int32)),
    "mask": lambda picked, n: np.isin(np.arange(n), picked),
    "from the end": lambda picked, n: picked - n,
}


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _same_evidence(got: posterior.Evidence, expected: posterior.Evidence) -> bool:
    return (all(getattr(got, name).dtype == getattr(expected, name).dtype
                and np.array_equal(getattr(got, name), getattr(expected, name))
                for name in ("pair", "pair_boots", "pair_fails"))
            and (got.boots, got.fails) == (expected.boots, expected.fails))


@needs_kernels
@settings(max_examples=150, deadline=None)
@given(st.integers(1, 300), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 60),
                                               st.integers(0, 3), st.booleans(),
                                               st.sampled_from(sorted(ANCESTOR_FORMS))),
                                     max_size=40))
def test_evidence_splits_its_pairs_as_numpy_does(n, tests):
    """Evidence.add with the kernel: the same pairs, in the same order, and each candidate's the
    same, in the same index type, test after test; tests of no ancestors, of all, of zero
    boots, repeated ones, and ancestors named as int32 (the search space's), as a mask or from
    the end (which numpy's passes read)."""
    compiled_side, numpy_side = posterior.Evidence(n), posterior.Evidence(n)
    rng = np.random.default_rng(n)
    for where, boots, failures, everything, form in tests:
        picked = (np.arange(n) if everything else
                  np.flatnonzero(rng.random(n) < (where % 100) / 100.0))
        ancestors = ANCESTOR_FORMS[form](picked, n)
        compiled_side.add(ancestors, boots, failures)
        with numpy_only():
            numpy_side.add(ancestors, boots, failures)
        assert _same_evidence(compiled_side, numpy_side)


@needs_kernels
def test_evidence_of_hundreds_of_pairs_indexes_them_in_two_bytes():
    """A pair per candidate past 256 of them: the kernel's ranks in uint16, as numpy's."""
    n = 600
    compiled_side, numpy_side = posterior.Evidence(n), posterior.Evidence(n)
    for x in range(n):
        compiled_side.add(np.arange(x + 1), 1, 0)
        with numpy_only():
            numpy_side.add(np.arange(x + 1), 1, 0)
    assert compiled_side.pair.dtype == np.uint16 and len(compiled_side.pair_boots) == n
    assert _same_evidence(compiled_side, numpy_side)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal, NaN where NaN, and with the same signs (-0.0 is not 0.0 to the bit; a NaN's sign
    is the hardware's choice of operand, which C leaves to the compiler, and means nothing)."""
    number = ~np.isnan(a)
    return (np.array_equal(a, b, equal_nan=True)
            and np.array_equal(np.signbit(a[number]), np.signbit(b[number])))


@needs_kernels
@pytest.mark.parametrize("call", [
    lambda: kernels.ancestor_rows(np.zeros((2, 3)), np.zeros((2, 4)), *_plan3()),
    lambda: kernels.ancestor_rows(np.zeros((2, 3)), np.zeros((2, 3), dtype=np.float32),
                                  *_plan3()),
    lambda: kernels.ancestor_rows(np.zeros((2, 3)), np.zeros((2, 3)), *_plan3()[:2],
                                  np.zeros(19, dtype=np.int64)),
    lambda: kernels.ancestor_rows(np.zeros((2, 4)), np.zeros((2, 4)), *_plan3()),
    lambda: kernels.ancestor_products(np.zeros(3), np.zeros((2, 2)), np.zeros(3, dtype=np.int64),
                                      np.zeros((2, 3)), *_plan3()),   # 1 + 2 rows out
    lambda: kernels.ancestor_products(np.zeros(3), np.zeros((2, 2)),
                                      np.array([0, 2, 1]), np.zeros((3, 3)), *_plan3()),
    lambda: kernels.ancestor_products(np.zeros(3), np.zeros((2, 2)),
                                      np.array([0, -1, 1]), np.zeros((3, 3)), *_plan3()),
    lambda: kernels.ancestor_products(np.zeros(4), np.zeros((2, 2)), np.zeros(4, dtype=np.int64),
                                      np.zeros((3, 4)), *_plan3()),
    lambda: kernels.pair_likelihoods(*(np.zeros((2, 3)),) * 3, np.zeros((3, 2)),
                                     np.zeros((2, 3, 3)), np.zeros(2)),
    lambda: kernels.rate_posteriors(np.zeros((2, 3, 1)), np.zeros(2), np.zeros(3),
                                    np.zeros((3, 1)), np.zeros((2, 3, 1))),
    lambda: kernels.pair_likelihoods(np.zeros((2, 3)), *(np.zeros((2, 0)),) * 2,
                                     np.zeros((3, 0)), np.zeros((2, 3, 0)), np.zeros(2)),
    lambda: kernels.entropy(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(1), np.zeros(3)),
    lambda: kernels.entropy(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3)),
    lambda: kernels.lab_scores(*(np.zeros((2, 3)),) * 4, np.zeros(3), np.zeros(3),
                               np.zeros((2, 3)), np.zeros(4), np.zeros((2, 2))),
    lambda: kernels.lab_scores(*(np.zeros((2, 3)),) * 4, np.zeros(3), np.zeros(2),
                               np.zeros((2, 3)), np.zeros(4), np.zeros((2, 3))),
    lambda: kernels.lab_scores(*(np.zeros((2, 3)),) * 4, np.zeros(3), np.zeros(3),
                               np.zeros((3, 3)), np.zeros(4), np.zeros((2, 3))),
    lambda: kernels.sum_scores(np.zeros((4, 3)), np.zeros((2, 2)), np.zeros(0), np.zeros((2, 3)),
                               np.zeros(4), np.zeros((2, 3))),  # 4 rows: neither 1 + 2 L nor 1 + 4 L
    lambda: kernels.sum_scores(np.zeros((5, 3)), np.zeros((2, 2)), np.zeros(2), np.zeros((2, 3)),
                               np.zeros(4), np.zeros((2, 3))),
    lambda: kernels.sum_scores(np.zeros((5, 3)), np.zeros((2, 3)), np.zeros(0), np.zeros((2, 3)),
                               np.zeros(4), np.zeros((2, 3))),
    lambda: kernels.sum_scores(np.zeros((5, 3)), np.zeros((2, 2)), np.zeros(0), np.zeros((2, 3)),
                               np.zeros(4), np.zeros((2, 4))),
    lambda: kernels.lse_shift(np.zeros(6), np.zeros(6), np.zeros(2), np.zeros(2),
                              np.array([2, 3, 1, 4, 1])),   # line 1 ends past the array
    lambda: kernels.lse_shift(np.zeros(6), np.zeros(6), np.zeros(2), np.zeros(2),
                              np.array([2, 4, 2, 1, 0])),
    lambda: kernels.lse_shift(np.zeros(6), np.zeros(6), np.zeros(1), np.zeros(2),
                              np.array([2, 3, 1, 3, 1])),
    lambda: kernels.lse_rest(np.zeros(6), np.zeros(2), np.zeros(2), np.array([2, 3, 2, 3, 1])),
    lambda: kernels.lse_all(np.zeros(0), np.zeros(1)),
    lambda: kernels.first_best(np.zeros(0)),
    lambda: kernels.entropy_exact(np.zeros(3), np.zeros(1), np.zeros(2)),
    lambda: kernels.split_pairs(np.array([0, 2]), np.zeros(0, dtype=np.int64), np.zeros(2, dtype=np.int64),
                                np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64),
                                np.zeros(2, dtype=np.int64), np.zeros(4, dtype=np.int64),
                                np.zeros(4, dtype=np.int64)),   # a pair past the pairs
    lambda: kernels.split_pairs(np.array([0, 1]), np.array([2]), np.zeros(2, dtype=np.int64),
                                np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64),
                                np.zeros(2, dtype=np.int64), np.zeros(4, dtype=np.int64),
                                np.zeros(4, dtype=np.int64)),   # an ancestor past the candidates
    lambda: kernels.split_pairs(np.array([0, 1]), np.array([1]), np.zeros(2, dtype=np.int64),
                                np.zeros(2, dtype=np.int64), np.zeros(2, dtype=np.int64),
                                np.zeros(2, dtype=np.int64), np.zeros(3, dtype=np.int64),
                                np.zeros(4, dtype=np.int64)),
    lambda: kernels.lse_all(np.zeros(3), np.zeros(2)),
    lambda: kernels.lse_rest(np.zeros(0), np.zeros(1), np.zeros(1), np.array([1, 1, 1, 1, 1])),
    lambda: kernels.lse_rest(np.zeros(6), np.zeros(2), np.zeros(2),
                             np.array([2, 2**62, 2**62, 3, 0])),
])
def test_the_kernels_refuse_arrays_that_do_not_fit(call):
    """A shape, a dtype, a plan of another size or no rates at all is an exception, not a
    write out of bounds (the kernels are private: a plan's index values are its own, checked
    by the tests above)."""
    with pytest.raises((ValueError, TypeError)):
        call()


def _plan3() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return SearchSpace([(), (0,), (1,)], [], 2).sums.plan.packed


@needs_kernels
@pytest.mark.parametrize("cells", [(1, 1), (3, 2)])
def test_the_rates_sum_across_pairs_as_numpy_does(cells):
    """One cell per pair (p and f both assumed): numpy's sum across the pairs runs along a
    contiguous axis, pairwise; with more cells, one pair after another. The unnormalised rates
    straight from the kernel (normalised, one cell is 1 whatever the order)."""
    from bisectlab.posterior import _rates_and_conditional

    rng = np.random.default_rng(3)
    for pairs in (1, 7, 8, 9, 40, 200, 1000):
        joint = np.log(rng.random((pairs, *cells))) * 30
        per_pair, weight = rng.random(pairs) - 5, rng.random(pairs)
        rates, conditional = np.empty(cells), np.empty(joint.shape)
        log_weight = np.array([math.log(w) for w in weight.tolist()])  # the C library's
        kernels.rate_posteriors(joint, per_pair, log_weight, rates, conditional)
        with kernels_against_libm():
            expected = _rates_and_conditional(joint, per_pair, weight)
        assert np.array_equal(rates, expected[0]) and np.array_equal(conditional, expected[1])


@needs_kernels
def test_the_posterior_kernels_stand_down_where_numpys_math_is_its_own():
    """numpy has its own exp, log and log1p on CPUs with AVX-512: the kernels that call the C
    library's are then not called; those that leave the exp and log to numpy still are."""
    asked = []

    class Tripwire:
        version = compiled.VERSION

        def __getattr__(self, name: str):
            if name in ("pair_likelihoods", "rate_posteriors"):
                raise AssertionError(f"{name} called")
            asked.append(name)
            return getattr(kernels, name)

    strategy = make_strategy("bayes", SearchSpace([(), (0,), (1,), (2,)], [], 3))
    with patch.object(compiled, "kernels", Tripwire()), \
            patch.object(compiled, "_numpy_is_libm", False):
        post = compute_posterior(strategy.stats, strategy.log_prior, strategy.model)
    assert post.mass.sum() == pytest.approx(1.0)
    assert {"lse_shift", "lse_rest"} <= set(asked)


def test_the_probe_tells_numpys_own_math_from_the_c_librarys():
    real_exp = np.exp
    with patch.object(np, "exp", lambda x: np.nextafter(real_exp(x), np.inf)):
        assert not compiled._numpy_agrees_with_libm()
