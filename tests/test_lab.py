"""Lab time: a rig keeps the kernel it installed, and bayes prices its tests in lab minutes."""

from __future__ import annotations

import pytest

from bisectlab import dag
from bisectlab.bugs import RateBug
from bisectlab.driver import drive
from bisectlab.errors import BisectlabError
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.lab import Costs, Lab
from bisectlab.strategies import Resources, SearchSpace, make_strategy
from bisectlab.strategies.base import LabCosts, Proposal, Verdict
from bisectlab.strategies.bayes import filled_boots

COSTS = Costs(install=30, boot=3, swap=10)


@pytest.fixture(scope="module")
def history():
    """A 300-commit history whose bug shows at every boot of the culprit's descendants."""
    h = generate_kernel_history("k300", 2, KernelShape(commits=300))
    cands = dag.candidates(h.parents, len(h) - 1, [0])
    h.bug = RateBug(int(cands[150]), detect=1.0)
    return h, int(cands[10]), int(cands[-1])  # history, a good commit, a bad one


def lab(h, keeps_installed: bool = True) -> Lab:
    return Lab.build(h, seed=5, rigs=2, adapters=10, costs=COSTS, keeps_installed=keeps_installed)


def test_a_rig_installs_only_when_its_commit_changes(history):
    h, good, _ = history
    lab_ = lab(h)
    rig1, rig2 = lab_.rigs
    runs = [(good, rig1), (good, rig1), (good + 1, rig1), (good, rig1), (good, rig2)]
    installs = [lab_.run(commit, 2, rig).installed for commit, rig in runs]
    assert installs == [True, False, True, True, True]
    again = lab_.run(good, 2, rig2)
    assert (again.installed, again.minutes) == (False, 2 * COSTS.boot)


def test_a_swapped_adapter_keeps_the_kernel(history):
    h, _, bad = history
    lab_ = lab(h)
    rig = lab_.rigs[0]
    first = lab_.run(bad, 3, rig)
    assert first.failed and len(first.boots) == 1 and first.installed
    assert first.minutes == COSTS.install + COSTS.boot + COSTS.swap
    second = lab_.run(bad, 3, rig)  # a new adapter, the same kernel: a boot, not an install
    assert second.failed and not second.installed
    assert second.minutes == COSTS.boot + COSTS.swap


def test_a_lab_that_forgets_installs_every_test(history):
    """Hunts logged before rigs kept their kernels replay with the accounting they ran with."""
    h, good, _ = history
    lab_ = lab(h, keeps_installed=False)
    rig = lab_.rigs[0]
    assert [lab_.run(good, 1, rig).installed for _ in range(3)] == [True, True, True]


LINE = [()] + [(i,) for i in range(60)]  # commit 0 good, 60 bad


def propose(installed: int | None, costs: LabCosts | None):
    strategy = make_strategy("bayes", SearchSpace(LINE, [0], 60))
    return strategy.propose(Resources(1, None, (installed,), costs))


def test_bayes_reboots_an_installed_kernel_when_installs_are_dear():
    dear, free = LabCosts(install=1e5, boot=1, swap=0), LabCosts(install=0, boot=1, swap=0)
    assert propose(10, dear).commits == (10,)  # off-centre, but it costs a boot
    assert propose(10, free).commits != (10,)  # the best split when every test costs the same


def test_bayes_gives_an_install_more_boots_the_dearer_it_is():
    boots = {install: propose(None, LabCosts(install=install, boot=3, swap=10)).boots
             for install in (0, 30, 1e4)}
    assert boots[0] == 1 < boots[30] < boots[1e4]
    assert propose(None, None).boots == 1  # costs unknown: one boot per test
    strategy = make_strategy("bayes", SearchSpace(LINE, [0], 60), boots_per_install=4)
    assert strategy.propose(Resources(1, None, (None,), LabCosts(1e4, 3, 10))).boots == 4


def test_a_rig_that_keeps_its_kernel_boots_it_through_the_others_installs():
    """A round lasts as long as its longest test: where other rigs install, a rig with the
    commit installed boots it install/boot more times, at no cost in round time."""
    costs = LabCosts(install=30, boot=3, swap=10)
    assert filled_boots([7, 8, 9], (7, None, 4), 5, costs) == (15, 5, 5)
    assert filled_boots([7, 8], (None, None), 5, costs) is None   # every rig installs
    assert filled_boots([7, 8], (7, 8), 5, costs) is None         # no rig installs
    assert filled_boots([7, 8], (7, None), 5, LabCosts(install=2, boot=3, swap=0)) is None
    for free_boots in (LabCosts(install=30, boot=0, swap=0), LabCosts(1e6, 1e-3, 0)):
        assert filled_boots([7, 8], (7, None), 5, free_boots) == (55, 5)  # the ladder's top


def test_bayes_fills_a_kept_kernels_round_time_only_when_it_chooses_the_boots():
    line = [()] + [(i,) for i in range(200)]
    costs = LabCosts(install=30, boot=3, swap=10)
    strategy = make_strategy("bayes", SearchSpace(line, [0], 200))
    first = strategy.propose(Resources(2, None, (None, None), costs))
    kept = first.commits[0]
    again = strategy.propose(Resources(2, None, (kept, None), costs))
    assert again.commits[0] == kept and again.commits[1] != kept
    assert again.each == (again.boots + 10, again.boots)
    fixed = make_strategy("bayes", SearchSpace(line, [0], 200), boots_per_install=5)
    assert fixed.propose(Resources(2, None, (kept, None), costs)).each is None


def test_the_driver_gives_each_test_its_own_boots_and_the_round_its_longest_time(history):
    """A proposal's per-test boots reach the rigs; a kept kernel's extra boots end with the
    other rig's install, so the round takes no longer than with one count."""
    h, good, _ = history

    class TwoRounds:  # the strategy's side of the seam, nothing more
        def __init__(self):
            self.rounds = [Proposal((good,), 2), Proposal((good, good + 1), 2, (12, 2))]

        def verdict(self):
            return None if self.rounds else Verdict("found", good, 1.0, "")

        def propose(self, resources):
            return self.rounds.pop(0)

        def observe(self, obs):
            pass

    _, totals = drive(TwoRounds(), lab(h))
    assert (totals.tests, totals.boots, totals.installs) == (3, 16, 2)
    assert totals.lab_minutes == 2 * (COSTS.install + 2 * COSTS.boot)


def test_a_person_is_asked_for_each_tests_own_boots(history):
    """A manual round: each waiting test keeps its boots, and an outcome typed without --boots
    takes its own test's count."""
    from bisectlab.manual import AwaitingTests, ManualRunner

    h, good, _ = history
    runner = ManualRunner.build(h, rigs=2, adapters=None, seed=1)
    rig1, rig2 = runner.rigs
    with pytest.raises(AwaitingTests) as waiting:
        runner.run_round([(good, 15, rig1), (good + 1, 5, rig2)], lambda j, result: None)
    assert waiting.value.each == [15, 5] and waiting.value.boots == 15
    assert waiting.value.boots_for(good + 1) == 5 and waiting.value.boots_for(good, "rig1") == 15


@pytest.mark.parametrize("minutes", [dict(boot=-3.0), dict(install=-1.0), dict(swap=float("nan")),
                                     dict(install=float("inf"))])
def test_lab_costs_that_make_no_sense_are_refused(minutes):
    with pytest.raises(BisectlabError):
        Costs(**minutes)
