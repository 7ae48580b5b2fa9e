"""The bayes strategy: noise-aware, adapter-aware bisection on DAGs.

It keeps the exact posterior over the culprit (:mod:`bisectlab.posterior`), with the detection
rate p learnt rather than assumed, and tests the commit whose ancestor mass u_x gives the most
information per unit cost on the Z-channel (science.md §1, §4): slightly older than the median,
and older still as adapters get scarce. It stops when one commit holds the target confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb, log2
from typing import Any

import numpy as np
from scipy.special import comb as binom
from scipy.special import xlogy

from bisectlab.options import StrategyOptions, option
from bisectlab.posterior import (
    Evidence,
    Posterior,
    RateModel,
    compute_posterior,
    entropy_bits,
    information_bits,
)
from bisectlab.strategies.base import Observation, Proposal, Resources, SearchSpace, Strategy, Verdict

PRIOR_FLOOR = 1e-3  # a weighted prior never drops below this share of the uniform weight
MIN_BITS = 1e-9     # a test expected to teach less than this is no test at all
MAX_JOINT = 8       # tests whose joint outcome a batch choice weighs exactly (2^8 outcomes)
LOOKAHEAD = 32      # budgeted tests whose outcomes are checked on the DAG, best scores first
LOOKAHEAD_TWO = 6   # the same with two adapters left, where each check plans to the end
EXTRA_TESTS = 3     # tests beyond the egg-drop count a two-adapter plan may take on a DAG
PLAN_MAX = 2000     # alive candidates up to which budgeted tests are checked on the DAG
MAX_BOOTS_PER_INSTALL = 10_000


@dataclass(frozen=True)
class BayesOptions(StrategyOptions):
    """bayes: when to stop, what to assume of the rates, what an adapter costs."""

    strategy = "bayes"
    confidence: float = option(0.99, key="confidence", flag="--confidence", low=0, high=1,
                               low_open=True, high_open=True,
                               help="stop when one commit holds this posterior")
    detect: float | None = option(None, key="detect", flag="--assume-detect", low=0, high=1,
                                  low_open=True, metavar="P",
                                  help="fix the detection rate p instead of learning it "
                                       "(not advised)")
    false_positive: float | None = option(
        0.0, key="false-positive", flag="--assume-false-positive", low=0, high=1,
        high_open=True, learn=True, metavar="F|learn",
        help="false-positive rate to assume, or 'learn' it (do, if adapters can die of other "
             "causes)")
    cost_weight: float = option(0.0, key="cost-weight", flag="--cost-weight", low=0,
                                high=1_000_000, help="price of an adapter, in tests (lambda)")
    boots_per_install: int = option(1, key="boots-per-install", flag="--boots-per-install",
                                    low=1, high=MAX_BOOTS_PER_INSTALL, whole=True,
                                    help="boots per install, stopping at the first failure")
    deterministic_mass: float = option(0.1, key="deterministic-mass", low=0, high=1,
                                       high_open=True,
                                       help="prior probability that the bug always shows (p = 1)")
    caution: float = option(0.5, key="caution", low=-1, high=100, low_open=True,
                            help="the prior on p leans low as (1 - p)^caution")


def resolvable(tests: int, adapters: int) -> int:
    """Candidates a deterministic hunt can settle with t tests and k adapters (egg drop)."""
    return sum(comb(tests, i) for i in range(min(adapters, tests) + 1))


def egg_drop_tests(candidates: np.ndarray, adapters: int) -> np.ndarray:
    """Egg drop: the fewest tests that settle each count of candidates with k adapters."""
    candidates = np.maximum(np.asarray(candidates, dtype=float) - 1e-6, 1.0)
    if adapters <= 0:
        return np.where(candidates <= 1.0, 0.0, np.inf)
    t = np.arange(int(candidates.max()) + 2, dtype=float)
    table = sum(binom(t, i) for i in range(min(adapters, len(t)) + 1))
    return np.searchsorted(table, candidates).astype(float)


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


def batch_information(space: SearchSpace, mass: np.ndarray, chosen: list[int],
                      fail_bad: float, fail_good: float) -> np.ndarray:
    """For every candidate x, the bits the outcomes of tests ``chosen`` + [x] give about c.

    Given c, tests fail independently (rate ``fail_bad`` at descendants of c, ``fail_good``
    elsewhere), so only the pattern of chosen tests that c makes bad matters: candidates are
    grouped by pattern and the mass of each group among x's ancestors is one ancestor sum.
    """
    k = len(chosen) + 1
    pattern = np.zeros(len(space), dtype=np.int64)
    for i, t in enumerate(chosen):
        pattern[space.ancestor_mask(t)] |= 1 << i
    codes, group = np.unique(pattern, return_inverse=True)
    group_mass = np.bincount(group, weights=mass, minlength=len(codes))
    columns = np.zeros((len(space), len(codes)))
    columns[np.arange(len(space)), group] = mass
    inside = np.clip(space.sums.sums(columns), 0.0, None)           # (N, G): mass in anc(x)
    outcomes = (np.arange(2**k)[:, None] >> np.arange(k)[None, :]) & 1  # (Y, k)
    bad = (codes[:, None] >> np.arange(k - 1)[None, :]) & 1               # (G, k-1)
    bad_in = np.concatenate([bad, np.ones((len(codes), 1), dtype=np.int64)], axis=1)
    bad_out = np.concatenate([bad, np.zeros((len(codes), 1), dtype=np.int64)], axis=1)
    like_in, ent_in = _outcome_table(bad_in, outcomes, fail_bad, fail_good)
    like_out, ent_out = _outcome_table(bad_out, outcomes, fail_bad, fail_good)
    p_y = inside @ (like_in - like_out) + group_mass @ like_out                  # (N, Y)
    h_y = -(xlogy(p_y, np.clip(p_y, 1e-300, None))).sum(axis=1) / np.log(2)
    h_given_c = inside @ (ent_in - ent_out) + group_mass @ ent_out
    return np.maximum(h_y - h_given_c, 0.0)


def _outcome_table(bad: np.ndarray, outcomes: np.ndarray, fail_bad: float,
                   fail_good: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern of bad tests: P(each outcome vector) (G, Y), and the outcome entropy (G,)."""
    rate = np.where(bad == 1, fail_bad, fail_good)                               # (G, k)
    per_test = np.where(outcomes[None, :, :] == 1, rate[:, None, :], 1 - rate[:, None, :])
    like = per_test.prod(axis=2)
    return like, entropy_bits(rate).sum(axis=1)


class BayesStrategy(Strategy):
    """Posterior bisection with p learnt, adapters as a cost and a hard budget."""

    name = "bayes"
    Options = BayesOptions
    options: BayesOptions

    def __init__(self, space: SearchSpace, options: BayesOptions | None = None,
                 prior_weights: np.ndarray | None = None):
        super().__init__(space, options)
        opts = self.options
        self.confidence = opts.confidence
        self.cost_weight = opts.cost_weight
        self.boots = opts.boots_per_install
        self.model = RateModel.build(opts.detect, opts.false_positive,
                                     deterministic_mass=opts.deterministic_mass,
                                     caution=opts.caution)
        self.log_prior = self._log_prior(prior_weights)
        self.stats = Evidence(len(space))
        self.posterior: Posterior = compute_posterior(self.stats, self.log_prior, self.model)
        self.stuck = False

    def _log_prior(self, weights: np.ndarray | None) -> np.ndarray:
        n = len(self.space)
        if weights is None:
            return np.full(n, -np.log(n))
        w = np.asarray(weights, dtype=float)
        if w.shape != (n,) or not np.all(np.isfinite(w)) or (w < 0).any() or w.sum() <= 0:
            raise ValueError("prior weights must be finite, non-negative, one per candidate")
        w = w / w.sum()
        w = np.maximum(w, PRIOR_FLOOR / n)
        return np.log(w / w.sum())

    # learning -----------------------------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        super().observe(obs)
        local = self.space.local.get(obs.commit)
        if local is None:
            return
        self.stats.add(self.space.ancestors(local), obs.boots, obs.failures)
        self.posterior = compute_posterior(self.stats, self.log_prior, self.model)

    # deciding -----------------------------------------------------------------------------------

    def scores(self, resources: Resources) -> tuple[np.ndarray, np.ndarray]:
        """Ancestor mass u_x and information per unit cost of testing each candidate.

        The information is exact under the model: I(c; outcome of x), with the rates summed out
        given each c. Every term is an ancestor sum, so one pass over the DAG gives them all.
        """
        m = self.posterior.mass
        pass_bad, pass_good = self.posterior.pass_given_culprit(self.boots)
        h_bad, h_good = entropy_bits(pass_bad), entropy_bits(pass_good)
        columns = np.stack([m, m * pass_bad, m * pass_good, m * h_bad, m * h_good], axis=1)
        anc = self.space.sums.sums(columns)
        total = columns.sum(axis=0)
        u = np.clip(anc[:, 0], 0.0, 1.0)
        p_pass = np.clip(anc[:, 1] + total[2] - anc[:, 2], 0.0, 1.0)
        cond_entropy = anc[:, 3] + total[4] - anc[:, 4]
        info = information_bits(p_pass, cond_entropy)
        score = info / (1 + self.cost_weight * (1 - p_pass))
        if resources.adapters_left is not None:
            score = self._within_budget(score, info, u, resources.adapters_left)
        return u, score

    def _within_budget(self, score: np.ndarray, info: np.ndarray, u: np.ndarray,
                       adapters: int) -> np.ndarray:
        """Only the tests that keep the egg-drop worst case lowest with k adapters left (§4).

        A failure leaves the u_x share of the candidates and one adapter fewer, a pass the rest:
        the worst case is 1 + max(T(u n, k - 1), T((1 - u) n, k)) tests, T from egg drop.
        """
        informative = info > MIN_BITS
        if not informative.any():
            return score
        n = self.effective_candidates()
        fail_side = egg_drop_tests(u * n, adapters - 1)
        worst = 1 + np.maximum(fail_side, egg_drop_tests((1 - u) * n, adapters))
        best = worst[informative].min()
        ok = informative & (worst <= best)
        alive = self.posterior.mass > 0
        if (adapters <= 3 and np.isfinite(best) and self._settles_by_sets()
                and alive.sum() <= PLAN_MAX):
            ok = self._fits_on_the_dag(ok, alive, score, adapters, int(best) - 1)
        return np.where(ok, score, -np.inf)

    def _settles_by_sets(self) -> bool:
        """Whether every test rules candidates out for sure (p = 1 and f = 0 are certain)."""
        model, post = self.model, self.posterior
        return bool(post.p_mass[model.p_grid == 1.0].sum() > 1 - 1e-9
                    and post.f_mass[model.f_grid == 0.0].sum() > 1 - 1e-9)

    def _fits_on_the_dag(self, ok: np.ndarray, alive: np.ndarray, score: np.ndarray,
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
        sub = SearchSpace(self.space.graph_parents, self.space.good,
                          int(self.space.commits[positions[-1]]), self.space.commits[positions])
        local = np.full(len(self.space), -1)
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

    def effective_candidates(self) -> float:
        """2 to the posterior entropy: how many equally likely candidates it is worth."""
        m = self.posterior.mass
        m = m[m > 0]
        return float(2 ** (-(m * np.log2(m)).sum()))

    def propose(self, resources: Resources) -> Proposal:
        u, score = self.scores(resources)
        best = int(np.argmax(score))
        self.stuck = not score[best] > MIN_BITS
        chosen = [best]
        if resources.rigs > 1:
            chosen = self._spread(u, score, best, resources.rigs)
        return Proposal(tuple(int(self.space.commits[i]) for i in chosen), self.boots)

    def _spread(self, u: np.ndarray, score: np.ndarray, best: int, rigs: int) -> list[int]:
        """Tests for m rigs at once: the best single test, then greedily the test that adds
        the most information to the joint outcome of the batch, per unit cost.

        A deterministic bug gets tests near posterior quantiles (each outcome settles its own
        split); a rarely showing one gets tests close together, whose mostly uninformative
        outcomes add up almost independently; near the end, the same commit on several rigs
        (more boots of the culprit's parent, say). Rates are the posterior's (summed over p).
        """
        allowed = np.isfinite(score) & (u < 1 - 1e-12)
        chosen = [best]
        fail_bad, fail_good = self._fail_rates()
        cost = 1 + self.cost_weight * (u * fail_bad + (1 - u) * fail_good)
        known = float(batch_information(self.space, self.posterior.mass, [], fail_bad,
                                        fail_good)[best])
        for _ in range(rigs - 1):
            if len(chosen) < MAX_JOINT:  # 2^k outcomes: beyond this, the window's ranking
                joint = batch_information(self.space, self.posterior.mass, chosen, fail_bad,
                                          fail_good)
                gain = np.where(allowed, joint / cost, -np.inf)
                pick = int(np.argmax(gain))
                if not joint[pick] - known > MIN_BITS:  # adds nothing (a sure repeat)
                    break
                known = float(joint[pick])
            else:
                pick = int(np.argmax(gain))
                if not gain[pick] > MIN_BITS:
                    break
            chosen.append(pick)
        return chosen

    def _fail_rates(self) -> tuple[float, float]:
        """P(a test fails) at a bad and at a good commit, under the posterior over the rates."""
        post, b = self.posterior, self.boots
        fail_bad = float(post.p_mass @ (1 - (1 - self.model.p_grid) ** b))
        fail_good = float(post.f_mass @ (1 - (1 - self.model.f_grid) ** b))
        return fail_bad, fail_good

    def belief(self) -> np.ndarray:
        """The posterior over the candidates."""
        return self.posterior.mass

    # concluding ---------------------------------------------------------------------------------

    def best(self) -> tuple[int, float]:
        """The most probable culprit (local index) and its posterior mass."""
        i = int(np.argmax(self.posterior.mass))
        return i, float(self.posterior.mass[i])

    def verdict(self) -> Verdict | None:
        i, mass = self.best()
        if self.stuck and mass < self.confidence:
            return self.abort("no test left that could teach anything", "inconclusive")
        if mass < self.confidence:
            return None
        culprit = int(self.space.commits[i])
        return Verdict("found", culprit, mass, "bayes: posterior reached the target confidence",
                       1, self.evidence_of(culprit))

    def abort(self, reason: str, status: str = "aborted") -> Verdict:
        i, mass = self.best()
        culprit = int(self.space.commits[i])
        left = int((self.posterior.mass > 1e-6).sum())
        return Verdict(status, culprit, mass, f"{reason}; best guess at posterior {mass:.3f}",
                       left, self.evidence_of(culprit))

    def evidence_of(self, commit: int) -> dict[str, Any]:
        """Boots and failures at the culprit and its parents, and the rates learnt."""
        post = self.posterior
        cdf = np.cumsum(post.p_mass)
        lo = float(self.model.p_grid[np.searchsorted(cdf, 0.05)])
        hi = float(self.model.p_grid[min(np.searchsorted(cdf, 0.95), len(cdf) - 1)])
        return {**self.evidence(commit), "p_mean": post.p_mean, "p_90": [lo, hi],
                "f_mean": post.f_mean}

    def progress(self) -> str:
        i, mass = self.best()
        bits = float(entropy_bits(0.5)) * log2(max(self.effective_candidates(), 1.0))
        return (f"top candidate at {mass:.3f}, about {self.effective_candidates():.0f} effective "
                f"candidates ({bits:.1f} bits to go), p ~ {self.posterior.p_mean:.2f}")
