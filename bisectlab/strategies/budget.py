"""The hard adapter budget: which tests a hunt can afford with k working adapters left.

Every failure destroys an adapter, and a hunt whose box is empty ends without a verdict. The
policy is pure: it sees the strategy's view of the posterior, never the lab.

- Unless p is known, one adapter is kept for the end: with p learnt, a verdict needs passes at
  the culprit's parent, and those need a working rig; so k - 1 failures serve the search.
- While the data fit a bug that always shows (some candidates explain every test with p = 1
  and f = 0) and at most PLAN_SPARE failures are left to spend, the search is planned for its
  worst case on the DAG: egg drop's count (science.md §4), checked against a constructive
  two-adapter plan where topic branches deny the splits a line would give. A deterministic
  bug is then settled within that count, whatever p the posterior still allows.
- Otherwise a test is ranked by information per unit of cost, its failure priced at what an
  adapter is worth with so many left (ADAPTER_PRICE / (spare + 1) tests). Once one candidate
  leads (half the mass, or the only one left if the bug always shows), a test of a commit more
  likely good than bad is not priced: its failure would be news worth the adapter, and the risk
  is the verdict's own. A failure that would conclude the hunt costs no adapter.
- With several rigs, a round runs no more tests than there are failures to spare, and one at
  a time while the search is planned: a round of tests that all fail must not empty the box.
- (The strategy adds a two-step look at the last mile: with adapters scarce and few failures
  seen, testing the leading candidate itself, to learn p, can save most of its parent's
  confirming boots; see BayesStrategy.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np
from scipy.special import comb as binom

from bisectlab.strategies.base import SearchSpace

MIN_BITS = 1e-9     # a test expected to teach less than this is no test at all
LOOKAHEAD = 32      # budgeted tests whose outcomes are checked on the DAG, best scores first
LOOKAHEAD_TWO = 6   # the same with two adapters left, where each check plans to the end
EXTRA_TESTS = 3     # tests beyond the egg-drop count a two-adapter plan may take on a DAG
PLAN_MAX = 2000     # alive candidates up to which budgeted tests are checked on the DAG
PLAN_SPARE = 3      # failures to spare up to which a deterministic-looking hunt is planned
ADAPTER_PRICE = 60.0  # tests a failure costs when no adapter is left to spare
LEADING = 0.5       # a candidate this likely leads: testing below it is the verdict's own risk
SCARCE = 10         # failures to spare up to which adapters are scarce


@dataclass(frozen=True)
class BudgetView:
    """What the budget sees of a strategy's state, per candidate test x (local numbering)."""

    space: SearchSpace
    info: np.ndarray         # bits a test of x gives about the culprit
    fail: np.ndarray         # P(a test of x fails), rates summed out
    u: np.ndarray            # P(x is bad): the mass of its ancestors-or-self
    cost_weight: float       # the user's price of an adapter, in tests
    top_mass: float          # the leading candidate's mass
    alive: np.ndarray        # candidates that explain every test with p = 1 and f = 0
    p_known: bool            # p is assumed, not learnt: no adapter need be kept for the end
    concluding: np.ndarray   # tests whose failure would give the verdict


def spare_failures(adapters: int, p_known: bool) -> int:
    """Failures the search may spend with ``adapters`` working adapters left."""
    return adapters if p_known else adapters - 1


def rigs_at_once(rigs: int, adapters: int | None, p_known: bool) -> int:
    """How many of the free rigs a round may use: each of its tests can destroy an adapter, so
    no more than the failures left to spare, and one at a time once the search is planned for
    its worst case (the plan's failures come one after another)."""
    if adapters is None:
        return rigs
    spare = spare_failures(adapters, p_known)
    if spare <= PLAN_SPARE:
        return 1
    # with p known no adapter waits for the verdict's passes; a round still keeps the planned
    # endgame's failures (a round that spent them all ended hunts one rig finishes)
    return min(rigs, spare - PLAN_SPARE) if p_known else min(rigs, spare)


def adapter_scores(view: BudgetView, adapters: int) -> np.ndarray:
    """Each test's score (information per unit cost) under the budget; -inf where forbidden."""
    spare = spare_failures(adapters, view.p_known)
    if 1 <= spare <= PLAN_SPARE and view.alive.sum() > 1:
        planned = deterministic_plan(view, spare)
        if planned is not None:
            return planned
    price = np.full(len(view.info), failure_price(spare))
    if view.top_mass >= LEADING or view.alive.sum() == 1:  # a leader (by mass, or the one
        # candidate left if the bug always shows): below it, failures are the verdict's risk
        price[view.u <= 0.5] = 0.0
    price[view.concluding] = 0.0
    cost = 1 + (view.cost_weight + price) * view.fail
    return np.where(view.info > MIN_BITS, view.info / cost, -np.inf)


def failure_price(spare: int) -> float:
    """What a failure costs, in tests, with ``spare`` failures left for the search: an adapter
    is worth more the fewer are left."""
    return ADAPTER_PRICE / (max(spare, 0) + 1)


# the deterministic plan ----------------------------------------------------------------------

def deterministic_alive(boots_below: np.ndarray, fails_below: np.ndarray, fails: int) -> np.ndarray:
    """Candidates that explain every test if the bug always shows and nothing else fails: every
    failure was of a descendant-or-self, and no descendant-or-self passed a boot."""
    return (fails_below == fails) & (boots_below == fails_below)


def deterministic_plan(view: BudgetView, spare: int) -> np.ndarray | None:
    """Scores restricted to the tests that keep the worst case of a deterministic hunt over the
    alive candidates lowest with ``spare`` failures (None when no test splits them).

    A failure leaves the alive ancestors of x and one failure fewer, a pass the rest: the
    worst case is 1 + max(T(fail side, k - 1), T(pass side, k)) tests, T from egg drop.
    """
    alive = view.alive
    n = int(alive.sum())
    below = np.rint(view.space.sums.sums(alive.astype(float)))
    splits = alive & (below > 0) & (below < n)
    if not splits.any():
        return None
    fail_side = egg_drop_tests(below, spare - 1)
    worst = 1 + np.maximum(fail_side, egg_drop_tests(n - below, spare))
    best = worst[splits].min()
    ok = splits & (worst <= best)
    score = np.where(view.info > MIN_BITS, view.info, MIN_BITS)
    if spare <= 3 and np.isfinite(best) and n <= PLAN_MAX:
        ok = fits_on_the_dag(view.space, ok, alive, score, spare, int(best) - 1)
    return np.where(ok, score, -np.inf)


def fits_on_the_dag(space: SearchSpace, ok: np.ndarray, alive: np.ndarray, score: np.ndarray,
                    adapters: int, tests: int) -> np.ndarray:
    """The best test (by score) whose two outcomes still fit the tests left, on the DAG itself.

    The egg-drop counts assume any split can be had; a kernel DAG's parallel topic branches
    can deny it once two or three adapters are left, so those states are checked against a
    constructive two-adapter plan (:func:`two_adapter_plan_fits`). With two adapters the
    plan's own move always fits; with none fitting, the counts rule.
    """
    # the alive candidates are convex: ancestry among them runs through them, so they make
    # a search space of their own, to plan on at the cost of their number, not the range's
    positions = np.flatnonzero(alive)
    sub = SearchSpace(space.graph_parents, space.good, int(space.commits[positions[-1]]),
                      space.commits[positions])
    local = np.full(len(space), -1)
    local[positions] = np.arange(len(sub))
    everyone = np.ones(len(sub), dtype=bool)
    ranked = local[np.flatnonzero(ok)[np.argsort(-score[ok], kind="stable")]]
    order = list(ranked[ranked >= 0][:LOOKAHEAD])  # a ruled-out commit may split, too: skip it
    if adapters == 2:
        tests = next((t for t in range(tests, tests + EXTRA_TESTS + 1)
                      if two_adapter_plan_fits(sub, everyone, t + 1)), None)
        if tests is None:
            return ok
        order = order[:LOOKAHEAD_TWO] + [two_adapter_move(sub, everyone, tests + 1)]
    for x in order:
        bad = sub.ancestor_mask(int(x))
        if _fits(sub, bad, adapters - 1, tests) and _fits(sub, ~bad, adapters, tests):
            only = np.zeros_like(ok)
            only[positions[x]] = True
            return only
    return ok


def resolvable(tests: int, adapters: int) -> int:
    """Candidates a deterministic hunt can settle with t tests and k adapters (egg drop)."""
    return sum(comb(tests, i) for i in range(min(adapters, tests) + 1))


@lru_cache(maxsize=64)
def _egg_drop_table(adapters: int, size: int) -> np.ndarray:
    """Candidates settled with t = 0, 1, ... tests and k adapters, for t up to ``size``."""
    t = np.arange(size, dtype=float)
    return sum(binom(t, i) for i in range(min(adapters, size) + 1))


def egg_drop_tests(candidates: np.ndarray, adapters: int) -> np.ndarray:
    """Egg drop: the fewest tests that settle each count of candidates with k adapters."""
    candidates = np.maximum(np.asarray(candidates, dtype=float) - 1e-6, 1.0)
    if adapters <= 0:
        return np.where(candidates <= 1.0, 0.0, np.inf)
    size = 1 << max(int(candidates.max()) + 2, 2).bit_length()  # powers of two: few tables
    return np.searchsorted(_egg_drop_table(adapters, size), candidates).astype(float)


def _fits(space: SearchSpace, alive: np.ndarray, adapters: int, tests: int) -> bool:
    """Whether a deterministic hunt over ``alive`` surely ends within the tests (k <= 2 checked
    on the DAG, more adapters by the egg-drop count)."""
    n = int(alive.sum())
    if n <= 1:
        return True
    if adapters == 2:
        return two_adapter_plan_fits(space, alive, tests)
    return adapters > 0 and n <= resolvable(max(tests, 0), adapters)


def two_adapter_move(space: SearchSpace, alive: np.ndarray, tests: int) -> int | None:
    """The next test of a two-adapter plan with t tests left: the commit with the most alive
    ancestors (at most t: after a failure the last adapter walks through them in t - 1 tests)."""
    n = int(alive.sum())
    below = np.rint(space.sums.sums(alive[:, None].astype(float))[:, 0])
    fit = alive & (below <= tests) & (below < n)
    return int(np.argmax(np.where(fit, below, -1))) if fit.any() else None


def two_adapter_plan_fits(space: SearchSpace, alive: np.ndarray, tests: int) -> bool:
    """Whether the two-adapter plan settles the alive candidates in ``tests`` tests: a plan
    found is a proof; none found may be a false alarm (the plan is greedy, not optimal)."""
    alive = alive.copy()
    while int(alive.sum()) > 1:
        x = two_adapter_move(space, alive, tests) if tests > 0 else None
        if x is None:
            return False
        alive &= ~space.ancestor_mask(x)
        tests -= 1
    return True
