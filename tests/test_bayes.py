"""The bayes strategy in hunts: deterministic bugs, the adapter budget, the CLI verdict."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from click.testing import CliRunner
from test_budget import topic_branches
from test_strategies import run_deterministic

from bisectlab import dag
from bisectlab.bench import BenchConfig, ideal_hunt, run_bench, summarise
from bisectlab.cli import cli
from bisectlab.errors import BisectlabError
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.posterior import RateModel
from bisectlab.strategies import LabCosts, Observation, Resources, SearchSpace, make_strategy
from bisectlab.strategies.bayes import BayesOptions


def test_bayes_finds_deterministic_bugs_on_kernel_dags():
    h = generate_kernel_history("k800", 3, KernelShape(commits=800))
    cands = dag.candidates(h.parents, len(h) - 1, [0])
    for culprit in random.Random(1).sample(cands.tolist(), 5):
        tested, verdict = run_deterministic(h.parents, 0, len(h) - 1, culprit, "bayes")
        assert verdict.culprit == culprit and verdict.confidence >= 0.99
        assert verdict.evidence["p_mean"] > 0.5


def test_bayes_is_the_default_and_reports_its_confidence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "2",
                                      "--boots-per-install", "10", "--json"],
                                catch_exceptions=False)
    report = json.loads(result.stdout)
    assert result.exit_code == 0 and report["status"] == "found"
    assert report["confidence"] >= 0.99
    assert report["tests"] * 10 >= report["boots"] > report["tests"] >= report["installs"]
    assert 0 < report["evidence"]["p_mean"] < 0.5


@pytest.mark.slow
def test_calibration_at_p_half():
    """Seeded: 300 hunts at p = 0.5 aiming at 0.95; accuracy must not fall below the target by
    more than the binomial 99.9% margin (the bench at 1,000 hunts is in the README)."""
    config = BenchConfig(strategy="bayes", options=(("confidence", 0.95),), commits=1000,
                         detect=0.5, hunts=300, seed=11)
    s = summarise(config, run_bench(config, workers=2))
    margin = 3.29 * (0.95 * 0.05 / 300) ** 0.5
    assert s["accuracy"] >= 0.95 - margin


def test_rigs_get_distinct_commits_in_one_round():
    from bisectlab.strategies import Resources, SearchSpace, make_strategy

    h = generate_kernel_history("k800", 3, KernelShape(commits=800))
    strategy = make_strategy("bayes", SearchSpace(h.parents, [0], len(h) - 1))
    proposal = strategy.propose(Resources(rigs=3))
    assert len(set(proposal.commits)) == 3
    u, _ = strategy.scores(Resources())
    spread = sorted(u[strategy.space.local[c]] for c in proposal.commits)
    assert spread[0] < spread[-1]


def chain_space(n: int):
    """A linear history of n + 1 commits: 0 good, n bad, candidates 1..n."""
    from bisectlab.strategies import SearchSpace

    return SearchSpace([()] + [(i - 1,) for i in range(1, n + 1)], [0], n)


def test_batch_information_of_a_deterministic_batch_is_the_entropy_of_its_split():
    from bisectlab.strategies.bayes import batch_information

    space = chain_space(8)
    uniform = np.full(8, 1 / 8)
    # candidates 0..7 (local); testing local 3 says whether c <= 3
    bits = batch_information(space, uniform, [3], 1.0, 0.0)
    assert bits[1] == pytest.approx(1.5) and bits[5] == pytest.approx(1.5)
    assert bits[3] == pytest.approx(1.0)        # the same commit again adds nothing
    assert bits[7] == pytest.approx(1.0)        # the bad end: always fails
    assert bits.max() == pytest.approx(1.5)


def test_batch_information_of_one_test_is_the_z_channel():
    from bisectlab.posterior import z_channel_information
    from bisectlab.strategies.bayes import batch_information

    space = chain_space(50)
    mass = np.random.default_rng(3).dirichlet(np.ones(50))
    u = np.cumsum(mass)
    bits = batch_information(space, mass, [], 0.3, 0.01)
    assert bits == pytest.approx(z_channel_information(u, 0.3, 0.01), abs=1e-9)


def test_a_noisy_commit_tested_twice_says_more_than_once_but_less_than_twice():
    from bisectlab.strategies.bayes import batch_information

    space = chain_space(20)
    mass = np.full(20, 1 / 20)
    once = batch_information(space, mass, [], 0.3, 0.0)[9]
    twice = batch_information(space, mass, [9], 0.3, 0.0)[9]
    assert once < twice < 2 * once


def test_many_rigs_get_a_batch_each_round():
    from bisectlab.strategies import Resources, make_strategy

    space = chain_space(300)
    strategy = make_strategy("bayes", space)
    proposal = strategy.propose(Resources(rigs=12))
    assert len(proposal.commits) == 12
    assert set(proposal.commits) <= set(int(c) for c in space.commits)


def test_bayes_is_calibrated_averaged_over_its_own_prior_on_p():
    """An exact posterior is right at the claimed rate when p is drawn from its prior: the
    guarantee is on average over p (see the README: low p fares worse, high p better)."""
    h = generate_kernel_history("k60", 4, KernelShape(commits=60))
    bad = max(c for t, c in h.tags.items() if h.topic_of[c] == 0)
    space = SearchSpace(h.parents, [0], bad)
    culprits = [int(c) for c in space.commits if len(h.parents[c]) == 1]
    prior = RateModel.build()
    rng = np.random.default_rng(11)
    right = 0
    for _ in range(300):
        p, culprit = rng.choice(prior.p_grid, p=prior.p_prior), culprits[rng.integers(len(culprits))]
        verdict = ideal_hunt(make_strategy("bayes", space), dag.descendants_mask(h.parents, culprit),
                             p, rng)
        right += verdict.culprit == culprit
    # 0.99 claimed: 3 wrong expected in 300; 10 or more has probability 0.001
    assert right >= 291


def test_a_pass_below_a_failure_at_an_assumed_p_of_one_ends_inconclusive_saying_why():
    space = chain_space(40)
    strategy = make_strategy("bayes", space, detect=1.0)
    strategy.observe(Observation(10, 1, 1))
    strategy.observe(Observation(20, 1, 0))  # a descendant of 10 passed: p cannot be 1
    verdict = strategy.verdict()
    assert verdict.status == "inconclusive"
    assert "commit 10 failed but its descendant 20 passed" in verdict.note
    assert "drop --assume-detect" in verdict.note


def test_failures_on_two_unrelated_branches_with_no_false_positives_end_inconclusive():
    parents, merge = topic_branches(2, 4)  # branches 1..4 and 5..8 off the base, merged
    space = SearchSpace(parents, [0], merge)
    strategy = make_strategy("bayes", space)
    strategy.observe(Observation(2, 1, 1))
    strategy.observe(Observation(6, 1, 1))
    verdict = strategy.verdict()
    assert verdict.status == "inconclusive" and verdict.culprit is not None
    assert "commits 2 and 6 both failed" in verdict.note
    assert "--assume-false-positive learn" in verdict.note


def test_a_batch_at_an_assumed_p_of_one_pairs_no_commit_with_its_descendant():
    h = generate_kernel_history("k800", 3, KernelShape(commits=800))
    space = SearchSpace(h.parents, [0], len(h) - 1)
    strategy = make_strategy("bayes", space, detect=1.0)
    for _ in range(3):
        commits = strategy.propose(Resources(rigs=4)).commits
        for a in commits:
            for b in commits:
                assert a == b or not dag.is_ancestor(h.parents, a, b)
        for c in commits:
            strategy.observe(Observation(c, 1, int(c >= 600)))


@pytest.mark.parametrize("args", [
    ("bisect", "v2.6.26", "v2.6.27-rc8", "--assume-detect", "1", "--rigs", "4", "--seed", "3",
     "-q"),
    ("bench", "--commits", "300", "--detect", "0.5", "--false-positive", "0.03", "--rigs", "4",
     "--hunts", "30"),
])
def test_evidence_against_the_model_never_ends_in_a_traceback(run, args):
    result = run(*args)
    assert result.exit_code in (0, 1) and "Traceback" not in result.stderr, result.stderr


@pytest.mark.parametrize("rigs", [12, 32])
def test_many_rigs_test_as_many_commits(rigs):
    space = chain_space(300)
    proposal = make_strategy("bayes", space).propose(Resources(rigs=rigs))
    assert len(proposal.commits) == rigs == len(set(proposal.commits))


def test_with_several_rigs_an_installed_kernel_does_not_set_the_rounds_boots():
    """On one rig, another boot of the installed kernel is cheap, so a short test of it may be
    best; on several, the round installs on the other rigs with the same boots count, so the
    count is chosen as if every test installed (4 rigs, shipped scenario: 1.37 -> 0.83 lab days)."""
    line = [()] + [(i,) for i in range(200)]
    strategy = make_strategy("bayes", SearchSpace(line, [0], 200))
    for commit, boots, fails in [(100, 8, 0), (150, 3, 1), (125, 8, 0), (137, 2, 1)]:
        strategy.observe(Observation(commit, boots, fails))
    costs = LabCosts(install=30.0, boot=3.0, swap=10.0)
    top = strategy.propose(Resources(rigs=1, costs=costs)).commits[0]
    kept = Resources(rigs=4, costs=costs, installed=(top, None, None, None))
    bare = Resources(rigs=4, costs=costs, installed=(None, None, None, None))
    assert strategy.propose(kept).boots == strategy.propose(bare).boots
    alone = Resources(rigs=1, costs=costs, installed=(top,))
    assert strategy.propose(alone).boots < strategy.propose(kept).boots


@pytest.mark.parametrize("seen", [[], [(100, 8, 0)], [(100, 20, 1), (50, 20, 0)],
                                  [(100, 3, 1), (50, 3, 1), (25, 3, 1)]])
def test_planning_for_a_pessimistic_p_gives_a_test_more_boots(seen):
    """With --plan-quantile the boots count is chosen for p at a lower quantile of its
    posterior: more boots per install than planning for the posterior itself, while p is
    loosely known (shipped scenario, one rig: 2.04 -> 1.65 lab days, README)."""
    line = [()] + [(i,) for i in range(200)]
    costs = LabCosts(install=30.0, boot=3.0, swap=10.0)
    boots = []
    for quantile in (0.0, 0.1):
        strategy = make_strategy("bayes", SearchSpace(line, [0], 200), plan_quantile=quantile)
        for commit, n, fails in seen:
            strategy.observe(Observation(commit, n, fails))
        boots.append(strategy.propose(Resources(rigs=1, costs=costs)).boots)
    assert boots[1] > boots[0]


@pytest.mark.parametrize("options, flag", [({"boots_per_install": 5}, "--boots-per-install"),
                                           ({"detect": 0.05}, "--assume-detect")])
def test_planning_refuses_a_fixed_boots_count_or_a_known_p(options, flag):
    """Nothing is left to plan (b fixed, or p known): the flag would be silently ignored."""
    line = [()] + [(i,) for i in range(20)]
    with pytest.raises(BisectlabError, match=f"does not go with {flag}"):
        make_strategy("bayes", SearchSpace(line, [0], 20), **options, plan_quantile=0.1)
    make_strategy("bayes", SearchSpace(line, [0], 20), **options, plan_quantile=0.0)
    logged = {**BayesOptions().as_dict(), **options, "plan_quantile": 0.1}
    read = BayesOptions.from_logged(logged)  # logged before the refusal: it ran without it
    assert read.plan_quantile == 0.0 and read == BayesOptions(**options)


def test_plan_quantile_beside_a_fixed_boots_count_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(cli, ["bench", "--commits", "100", "--hunts", "1",
                                      "--plan-quantile", "0.1", "--boots-per-install", "5"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --plan-quantile plans the boots for an unknown p: it does not go with "
        "--boots-per-install"]


@pytest.mark.parametrize("false_positive", [None, 0.0])
def test_scores_are_the_same_by_any_path_to_the_class_products(monkeypatch, false_positive):
    """A score's per-class products are formed by the compiled kernel as it sums them, or in
    numpy, gathered at once for small spaces and a row at a time for large ones: the same
    scores, bit for bit, with false positives learnt or ruled out."""
    from bisectlab import compiled, dag

    h = generate_kernel_history("k300", 4, KernelShape(commits=300))
    strategy = make_strategy("bayes", h.search_space([0], len(h) - 1),
                             false_positive=false_positive)
    for commit, boots, fails in ((150, 3, 0), (200, 2, 1), (90, 5, 0)):
        strategy.observe(Observation(int(strategy.space.commits[commit]), boots, fails))
    resources = Resources(rigs=1, costs=LabCosts(install=30, boot=3, swap=10))
    ladder = [1, 5, 20]
    first = strategy.scores_at(resources, ladder)
    monkeypatch.setattr(compiled, "kernels", None)
    at_once = strategy.scores_at(resources, ladder)
    monkeypatch.setattr(dag, "GATHER_AT_ONCE", 0)
    by_row = strategy.scores_at(resources, ladder)
    for other in (at_once, by_row):
        assert np.array_equal(first[0], other[0])
        assert all(np.array_equal(a, b) for a, b in zip(first[1], other[1], strict=True))


def test_a_hunt_logged_with_options_refused_since_reads_back_as_it_ran():
    """Ranges tightened after a hunt was logged (a confidence of a half, a weight of 1000, a
    price below 1e-9, f not below an assumed p) hold new input only: the logged hunt's options
    read back as they ran, so it still replays, resumes and lists."""
    from bisectlab.strategies.bayes import BayesOptions

    logged = {**BayesOptions().as_dict(), "confidence": 0.5, "weight": "drivers/net=1000",
              "cost_weight": 1e-12, "detect": 0.1, "false_positive": 0.2}
    ran = BayesOptions.from_logged(logged)
    assert (ran.confidence, ran.weight, ran.cost_weight, ran.detect, ran.false_positive) == (
        0.5, "drivers/net=1000", 1e-12, 0.1, 0.2)
    for refused in ({"confidence": 0.5}, {"weight": "drivers/net=1000"}, {"cost_weight": 1e-12},
                    {"detect": 0.1, "false_positive": 0.2}):
        with pytest.raises(BisectlabError):
            BayesOptions.build(**refused)
    for broken in ("x", float("nan")):  # what no value may be, logged or typed
        with pytest.raises(BisectlabError, match="option confidence"):
            BayesOptions.from_logged({**logged, "confidence": broken})
