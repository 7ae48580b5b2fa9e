"""The adapter budget (strategies/budget.py): egg drop, the two-adapter plan on DAGs, the policy
with p known and with p learnt, and the switch between its deterministic plan and its prices."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from bisectlab import dag
from bisectlab.bench import BenchConfig, run_bench
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy
from bisectlab.strategies.budget import (
    PLAN_SPARE,
    deterministic_alive,
    egg_drop_tests,
    failure_price,
    resolvable,
    rigs_at_once,
    spare_failures,
    two_adapter_plan_fits,
)


def chain_space(n: int) -> SearchSpace:
    """A linear history of n + 1 commits: 0 good, n bad, candidates 1..n."""
    return SearchSpace([()] + [(i - 1,) for i in range(1, n + 1)], [0], n)


def test_egg_drop_numbers():
    assert resolvable(19, 3) >= 1000 > resolvable(18, 3)
    assert resolvable(45, 2) >= 1000 > resolvable(44, 2)
    assert egg_drop_tests([1000, 999, 2, 1], 3).tolist() == [19, 19, 1, 0]
    assert egg_drop_tests([1000], 1).tolist() == [999]
    assert egg_drop_tests([1000], 40).tolist() == [10]


def test_hard_budget_at_p1_matches_egg_drop_on_a_kernel_dag():
    config = BenchConfig(strategy="bayes", options=(("detect", 1.0), ("false_positive", 0.0)),
                         commits=1000, detect=1.0,
                         hunts=40, seed=3, adapters=3)
    rows = run_bench(config)
    # 19 is egg drop's worst case on a line; on a kernel DAG the counts alone let 1-2% of hunts
    # take 20 (topic branches deny the split), the check against a two-adapter plan none
    assert max(r["tests"] for r in rows) <= 19
    assert all(r["correct"] for r in rows)


def test_hard_budget_with_several_rigs_never_spends_the_box_on_one_commit():
    config = BenchConfig(strategy="bayes", options=(("detect", 1.0),), commits=1000, detect=1.0,
                         hunts=20, seed=2, adapters=3, rigs=4)
    rows = run_bench(config)
    assert all(r["correct"] for r in rows)  # a sure repeat on every rig used to burn all three


def test_with_p_learnt_several_rigs_never_spend_the_last_adapters_in_one_round():
    """Four rigs, three adapters, a bug that always shows: a round of tests that all fail used
    to empty the box (every hunt aborted); now a round runs no more tests than failures to
    spare, one at a time while the search is planned, and every hunt ends as on one rig."""
    rows = {rigs: run_bench(BenchConfig(strategy="bayes", commits=200, detect=1.0, hunts=10,
                                        seed=1, adapters=3, rigs=rigs)) for rigs in (1, 4)}
    assert all(r["correct"] and r["adapters"] <= 2 for r in rows[4])
    assert [r["tests"] for r in rows[4]] == [r["tests"] for r in rows[1]]


@pytest.mark.parametrize(("rigs", "adapters", "p_known", "at_once"), [
    (4, None, False, 4), (4, 50, False, 4), (4, 5, False, 4), (4, 4, False, 1), (4, 4, True, 1),
    (4, 5, True, 2), (4, 9, True, 4),
    (8, 6, False, 5), (2, 1, False, 1), (3, 3, True, 1)])
def test_a_round_runs_no_more_tests_than_failures_to_spare(rigs, adapters, p_known, at_once):
    assert rigs_at_once(rigs, adapters, p_known) == at_once


def topic_branches(branches: int, length: int) -> tuple[list[tuple[int, ...]], int]:
    """A base commit, topic branches off it, merged one after another: (parents, last merge)."""
    parents: list[tuple[int, ...]] = [()]
    tips = []
    for _ in range(branches):
        parents += [(0,)] + [(len(parents) + i,) for i in range(length - 1)]
        tips.append(len(parents) - 1)
    merge = 0
    for tip in tips:
        parents.append((merge, tip))
        merge = len(parents) - 1
    return parents, merge


def fewest_tests(space: SearchSpace, adapters: int) -> int:
    """Brute force: the worst-case tests of the best deterministic hunt with k adapters."""
    n = len(space)
    below = [sum(1 << int(j) for j in space.ancestors(i)) for i in range(n)]

    @functools.cache
    def worst(alive: int, k: int) -> int:
        count = alive.bit_count()
        if count <= 1 or k == 1:
            return max(count - 1, 0)
        return min(1 + max(worst(alive & below[x], k - 1), worst(alive & ~below[x], k))
                   for x in range(n) if alive >> x & 1 and alive & below[x] != alive)

    return worst((1 << n) - 1, adapters)


def test_two_adapter_plan_is_egg_drop_on_a_line_and_optimal_on_topic_branches():
    line = [()] + [(i,) for i in range(40)]
    space = SearchSpace(line, [0], 40)
    for tests in range(1, 12):
        assert two_adapter_plan_fits(space, np.ones(40, bool), tests) == (resolvable(tests, 2) >= 40)
    for shape in [(4, 3), (5, 2)]:
        space = SearchSpace(*topic_branches(*shape)[:1], [0], topic_branches(*shape)[1])
        plan = next(t for t in range(1, 30) if two_adapter_plan_fits(space, np.ones(len(space), bool), t))
        # the DAG denies the line's splits: one test more than egg drop's count, and no fewer
        assert plan == fewest_tests(space, 2) == egg_drop_tests([len(space)], 2)[0] + 1


@pytest.mark.parametrize("adapters", [2, 3])
def test_hard_budget_on_topic_branches_reaches_the_best_worst_case(adapters):
    parents, bad = topic_branches(5, 3)
    space = SearchSpace(parents, [0], bad)
    best = fewest_tests(space, adapters)
    for culprit in space.commits:
        is_bad = dag.descendants_mask(parents, int(culprit))
        strategy = make_strategy("bayes", space, detect=1.0)
        tests, left = 0, adapters
        while strategy.verdict() is None:
            (commit,) = strategy.propose(Resources(1, left)).commits
            strategy.observe(Observation(commit, 1, int(is_bad[commit])))
            tests, left = tests + 1, left - int(is_bad[commit])
        assert left >= 0 and tests <= best and strategy.verdict().culprit == culprit


def budgeted(p: float, adapters: int, hunts: int, seed: int = 3) -> list[dict]:
    """Bench hunts of bayes with p learnt (the default), one boot per test (the budget's
    figures count tests) and a hard budget of adapters."""
    return run_bench(BenchConfig(commits=1000, detect=p, hunts=hunts, seed=seed,
                                 adapters=adapters, options=(("boots_per_install", 1),)))


def test_with_p_learnt_three_adapters_settle_a_deterministic_bug_within_100_tests():
    rows = budgeted(1.0, 3, 12)
    assert max(r["tests"] for r in rows) <= 100 and max(r["adapters"] for r in rows) <= 3
    assert all(r["correct"] for r in rows)


def test_with_p_learnt_a_tight_budget_at_p_half_ends_within_204_tests_and_never_overspends():
    rows = budgeted(0.5, 5, 12)
    assert max(r["tests"] for r in rows) <= 204 and max(r["adapters"] for r in rows) <= 5
    assert all(r["status"] in ("found", "aborted") for r in rows)
    assert all(r["correct"] for r in rows if r["status"] == "found")


def test_one_adapter_is_kept_for_the_end_unless_p_is_known():
    assert spare_failures(3, p_known=False) == 2 and spare_failures(3, p_known=True) == 3
    assert failure_price(0) > failure_price(1) > failure_price(5) > 0


def test_the_deterministic_plan_rules_while_the_data_fit_p_1_and_prices_rule_after():
    space = chain_space(200)
    strategy = make_strategy("bayes", space)
    adapters = PLAN_SPARE + 1  # p learnt: PLAN_SPARE failures to spare
    # data that fit p = 1: the plan splits the alive candidates by egg drop's count
    u, score = strategy.scores(Resources(1, adapters))
    allowed = np.flatnonzero(np.isfinite(score))
    n = len(space)
    worst_best = min(1 + max(egg_drop_tests([x + 1], PLAN_SPARE - 1)[0],
                             egg_drop_tests([n - x - 1], PLAN_SPARE)[0]) for x in range(n - 1))
    for x in allowed:
        worst = 1 + max(egg_drop_tests([x + 1], PLAN_SPARE - 1)[0],
                        egg_drop_tests([n - x - 1], PLAN_SPARE)[0])
        assert worst == worst_best
    # a pass below a failure: no candidate explains it with p = 1, and prices rule: the test
    # the plan would take is no longer the only one allowed
    strategy.observe(Observation(120, 1, 1))
    strategy.observe(Observation(150, 1, 0))
    stats = strategy.stats
    assert not deterministic_alive(stats.boots_below, stats.fails_below, stats.fails).any()
    _, score = strategy.scores(Resources(1, adapters))
    assert np.isfinite(score).sum() > len(allowed)
