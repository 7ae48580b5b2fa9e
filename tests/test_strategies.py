"""git and retry strategies: exact scripted hunts, git's split rule, and hunts on kernel DAGs."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dag import brute_ancestors, dags

from bisectlab import dag
from bisectlab.bugs import RateBug
from bisectlab.driver import HuntSetup, bisect
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.lab import Costs
from bisectlab.store import Store
from bisectlab.strategies import Observation, Resources, SearchSpace, Verdict, make_strategy


def run_deterministic(parents, good, bad, culprit, name="git", **options):
    """Drive a strategy against a deterministic bug; returns (tested commits, verdict)."""
    is_bad = dag.descendants_mask(parents, culprit)
    strategy = make_strategy(name, SearchSpace(parents, [good], bad), **options)
    tested = []
    while strategy.verdict() is None:
        proposal = strategy.propose(Resources())
        (c,) = proposal.commits
        tested.append(c)
        strategy.observe(Observation(c, 1 if is_bad[c] else proposal.boots, int(is_bad[c])))
    return tested, strategy.verdict()


def test_git_on_a_line_halves_the_range_exactly():
    line = [()] + [(i,) for i in range(16)]  # commits 0..16, GOOD 0, BAD 16
    tested, verdict = run_deterministic(line, 0, 16, culprit=11)
    # 16 candidates (1..16): git tests 8 (X=8), then 12, then 10, then 11
    assert tested == [8, 12, 10, 11]
    assert verdict.status == "found" and verdict.culprit == 11
    assert verdict.evidence["culprit"] == {"commit": 11, "boots": 1, "failures": 1}
    assert verdict.evidence["parents"] == [{"commit": 10, "boots": 1, "failures": 0}]


def test_retry_boots_each_good_commit_k_times():
    line = [()] + [(i,) for i in range(16)]
    strategy = make_strategy("retry", SearchSpace(line, [0], 16), retries=4)
    proposal = strategy.propose(Resources())
    assert proposal.boots == 4
    strategy.observe(Observation(proposal.commits[0], 3, 0))  # cut short: not yet good
    assert strategy.remaining() == 16
    strategy.observe(Observation(proposal.commits[0], 4, 0))
    assert strategy.remaining() == 8


@settings(max_examples=150, deadline=None)
@given(dags(max_size=30), st.data())
def test_git_choice_maximises_min_x_n_minus_x(parents, data):
    bad = len(parents) - 1
    good = data.draw(st.integers(0, bad))
    if good == bad:
        return
    cands = dag.candidates(parents, bad, [good])
    if len(cands) < 2:
        return
    strategy = make_strategy("git", SearchSpace(parents, [good], bad))
    n = len(cands)
    cset = set(cands.tolist())

    def split(c):
        x = len(brute_ancestors(parents, c) & cset)
        return min(x, n - x)

    (choice,) = strategy.propose(Resources()).commits
    assert split(choice) == max(split(int(c)) for c in cands)
    assert strategy.split_of(choice) == split(choice)


@pytest.mark.parametrize("n, seed", [(1000, 1), (3000, 2), (10_000, 3)])
def test_git_finds_a_deterministic_bug_within_log2_n_plus_one(n, seed):
    h = generate_kernel_history(f"k{n}", seed, KernelShape(commits=n))
    good, bad = 0, h.tags[max((c, t) for t, c in h.tags.items() if h.topic_of[c] == 0)[1]]
    cands = dag.candidates(h.parents, bad, [good])
    rng = random.Random(seed)
    counts = []
    for culprit in rng.sample(cands.tolist(), 25):
        tested, verdict = run_deterministic(h.parents, good, bad, culprit)
        assert verdict.culprit == culprit
        counts.append(len(tested))
    assert np.mean(counts) <= math.log2(len(cands)) + 1


def test_a_full_hunt_logs_every_test_and_names_the_culprit(tmp_path):
    h = generate_kernel_history("k600", 4, KernelShape(commits=600))
    culprit = int(dag.candidates(h.parents, len(h) - 1, [0])[200])
    h.bug = RateBug(culprit, detect=1.0)
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        report = bisect(HuntSetup(h, "v1.0", h.shas[len(h) - 1], seed=9), store)
        tests = store.tests(report.hunt_id)
        hunt = store.hunt(report.hunt_id)
    assert report.status == "found" and report.correct is True
    assert report.culprit == h.shas[culprit]
    assert [t["seq"] for t in tests] == list(range(1, report.tests + 1))
    assert hunt["status"] == "found" and hunt["tests"] == report.tests
    assert sum(t["adapters_destroyed"] for t in tests) == report.adapters == hunt["adapters"]


def test_an_empty_box_aborts_with_the_best_guess(tmp_path):
    h = generate_kernel_history("k600", 4, KernelShape(commits=600))
    h.bug = RateBug(int(dag.candidates(h.parents, len(h) - 1, [0])[10]), detect=1.0)
    with Store(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        report = bisect(HuntSetup(h, "v1.0", h.shas[len(h) - 1], seed=1, adapters=2), store)
        hunt = store.hunt(report.hunt_id)
    assert report.status == "aborted" and report.adapters == 2
    assert "out of adapters" in report.note and report.culprit is not None
    assert hunt["status"] == "aborted"


@pytest.mark.parametrize("name", ["git", "bayes"])
def test_a_skipped_tests_boots_are_no_evidence(name):
    space = SearchSpace([(), (0,), (1,), (2,), (3,)], [0], 4)
    strategy = make_strategy(name, space)
    strategy.observe(Observation(2, 1, 0, skipped=True))  # exit 125 still ran the command once
    strategy.observe(Observation(3, 2, 1))
    assert strategy.evidence(3) == {"culprit": {"commit": 3, "boots": 2, "failures": 1},
                                    "parents": [{"commit": 2, "boots": 0, "failures": 0}]}


def hunt_with_skips(skipped: set[int], costs: Costs | None) -> tuple[list[int], Verdict]:
    """bayes on a 20-commit line, a deterministic culprit 13, ``skipped`` untestable."""
    line = [()] + [(i,) for i in range(20)]
    is_bad = dag.descendants_mask(line, 13)
    strategy = make_strategy("bayes", SearchSpace(line, [0], 20))
    tested: list[int] = []
    while strategy.verdict() is None and len(tested) < 200:
        proposal = strategy.propose(Resources(costs=costs))
        (c,) = proposal.commits
        tested.append(c)
        boots = 1 if is_bad[c] or c in skipped else proposal.boots
        strategy.observe(Observation(c, boots, int(is_bad[c] and c not in skipped),
                                     skipped=c in skipped))
    return tested, strategy.verdict()


@pytest.mark.parametrize("costs", [None, Costs()])
def test_a_culprit_hidden_by_a_skip_costs_what_the_culprit_itself_would(costs):
    """The range verdict comes once the block of skipped commits and the first bad one holds
    the confidence and no test can split it, not when nothing is left to learn."""
    plain, found = hunt_with_skips(set(), costs)
    hidden, verdict = hunt_with_skips({13}, costs)
    assert (found.status, found.culprit) == ("found", 13)
    assert verdict.status == "inconclusive" and verdict.note.endswith("could be any of: 13 14")
    assert verdict.confidence >= 0.99  # the block's mass, not its top candidate's
    check = verdict.evidence["low_p_check"]  # the block's, which _block_holds required
    assert verdict.evidence["block"] == 2 and check["mass"] >= 0.99
    assert len(hidden) <= len(plain) + 1 and hidden.count(14) <= plain.count(13) + 1
