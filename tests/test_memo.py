"""The decision tree a campaign's hunts share: the same hunts, test for test, with less work."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

from bisectlab import dag
from bisectlab.bugs import RateBug
from bisectlab.driver import HuntSetup, KnownRange, drive
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.strategies import Observation
from bisectlab.strategies.memo import DecisionTree


@pytest.fixture(scope="module")
def k300():
    h = generate_kernel_history("k300", 5, KernelShape(commits=300))
    h.bug = RateBug(int(dag.candidates(h.parents, len(h) - 1, [0])[120]), detect=0.5)
    return h


@pytest.fixture(scope="module")
def known(k300):
    return KnownRange.of(k300, k300.resolve("v1.0"), len(k300) - 1, "i386")


def fresh(h, known, **lab):
    """The strategy a hunt of this range and lab starts with."""
    return HuntSetup(h, "v1.0", h.shas[-1], strategy="bayes", known=known, **lab).prepare().strategy


def hunt(h, known, seed: int, strategy=None, progress: bool = False, **lab):
    """One simulated hunt's tests (commit, rig, boots, failures), verdict and rounds;
    ``strategy`` replaces the one the set-up builds; ``progress``: a progress line is asked
    for after each result, as `bisectlab bisect` does."""
    prepared = HuntSetup(h, "v1.0", h.shas[len(h) - 1], strategy="bayes", seed=seed,
                         known=known, **lab).prepare()
    strategy = strategy or prepared.strategy
    tests = []
    verdict, totals = drive(strategy, prepared.runner,
                            lambda seq, r: tests.append((r.commit, r.rig, len(r.boots),
                                                         r.failures)),
                            (lambda seq, r: strategy.progress()) if progress else
                            (lambda seq, r: None))
    return tests, verdict, totals.rounds


@pytest.mark.parametrize("lab", [{"rigs": 1, "adapters": None}, {"rigs": 3, "adapters": 6}])
def test_hunts_through_a_shared_tree_are_the_hunts_alone_test_for_test(k300, known, lab):
    tree = DecisionTree(fresh(k300, known, **lab))
    rounds = 0
    for seed in range(12):
        alone = hunt(k300, known, seed, **lab)
        shared = hunt(k300, known, seed, tree.walker(), **lab)
        assert shared == alone
        rounds += alone[2]
    assert 1 < tree.worked_out < rounds  # the hunts did share their first rounds


def test_a_question_in_the_middle_of_a_round_takes_the_hunt_out_of_the_tree(k300, known):
    tree = DecisionTree(fresh(k300, known, rigs=3))
    for seed in range(4):
        hunt(k300, known, seed, tree.walker(), rigs=3)  # the tree knows these hunts' rounds
        assert hunt(k300, known, seed, tree.walker(), progress=True, rigs=3) == \
            hunt(k300, known, seed, progress=True, rigs=3)


def test_a_full_tree_keeps_no_more_states_and_changes_no_hunt(k300, known):
    first = fresh(k300, known, adapters=None)
    tree = DecisionTree(first, room=20 * first.kept_bytes())
    for seed in range(6):
        assert hunt(k300, known, seed, tree.walker(), adapters=None) == \
            hunt(k300, known, seed, adapters=None)
    root = first.kept_bytes()  # a state that observed holds about as much as the root
    assert tree.room - 2 * root < tree.used <= tree.room and tree.states >= 2


def test_a_tree_counts_about_the_memory_its_states_hold(k300, known):
    first = fresh(k300, known, adapters=None)
    tree = DecisionTree(first)
    hunt(k300, known, 0, tree.walker(), adapters=None)  # the lab and the driver warmed up
    used = tree.used
    gc.collect()
    tracemalloc.start()
    try:
        for seed in range(1, 6):
            hunt(k300, known, seed, tree.walker(), adapters=None)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    counted = tree.used - used
    assert 0.75 < counted / held < 1.33, (  # shared arrays (the prior) counted once
        f"{counted / 1e6:.2f} MB counted for {held / 1e6:.2f} MB held")


def test_a_fork_learns_alone(k300, known):
    strategy = fresh(k300, known)
    before = strategy.belief().copy()
    fork = strategy.fork()
    commit = int(known.space.commits[150])
    fork.observe(Observation(commit, 3, 1))
    fork.observe(Observation(int(known.space.commits[10]), 1, 0, skipped=True))
    assert np.array_equal(strategy.belief(), before) and strategy.history == []
    assert not strategy.untestable.any() and strategy.stats.boots == 0
    assert not np.array_equal(fork.belief(), before) and len(fork.history) == 2
