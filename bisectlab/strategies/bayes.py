"""The bayes strategy: noise-aware, adapter-aware bisection on DAGs.

It keeps the exact posterior over the culprit (:mod:`bisectlab.posterior`), with the detection
rate p learnt rather than assumed, and tests the commit whose ancestor mass u_x gives the most
information per unit cost on the Z-channel (science.md §1, §4): slightly older than the median,
and older still as adapters get scarce. It stops when one commit holds the target confidence.
"""

from __future__ import annotations

from math import comb, log2
from typing import Any

import numpy as np
from scipy.special import comb as binom

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


class BayesStrategy(Strategy):
    """Posterior bisection with p learnt, adapters as a cost and a hard budget."""

    name = "bayes"

    def __init__(self, space: SearchSpace, confidence: float = 0.99, detect: float | None = None,
                 false_positive: float | None = 0.0, cost_weight: float = 0.0,
                 boots_per_install: int = 1, prior_weights: np.ndarray | None = None,
                 deterministic_mass: float = 0.1, caution: float = 0.5):
        super().__init__(space)
        if not 0 < confidence < 1:
            raise ValueError("confidence must lie strictly between 0 and 1")
        self.confidence = confidence
        self.cost_weight = cost_weight
        self.boots = boots_per_install
        self.options = {"confidence": confidence, "detect": detect,
                        "false_positive": "learn" if false_positive is None else false_positive,
                        "cost_weight": cost_weight, "boots_per_install": boots_per_install,
                        "deterministic_mass": deterministic_mass, "caution": caution}
        self.model = RateModel.build(detect, false_positive, deterministic_mass=deterministic_mass,
                                     caution=caution)
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
        return np.where(informative & (worst <= best), score, -np.inf)

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
        """Tests for m rigs at once, around the best single test.

        A deterministic bug wants the m tests at posterior quantiles (each outcome settles its
        own split); a rarely showing one wants them all near the best u, where their mostly
        uninformative outcomes add up almost independently. The spread scales with the learnt p.
        """
        ok = np.isfinite(score) & (u < 1 - 1e-12)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            return [best]
        spread = self.posterior.p_mean
        targets = [u[best] * (1 + spread * (2 * i / (rigs + 1) - 1)) for i in range(1, rigs + 1)]
        chosen: list[int] = []
        for t in targets:
            order = idx[np.argsort(np.abs(u[idx] - t), kind="stable")]
            pick = next((int(i) for i in order if int(i) not in chosen), None)
            if pick is not None:
                chosen.append(pick)
        return chosen

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

    def params(self) -> dict[str, Any]:
        return dict(self.options)

    def progress(self) -> str:
        i, mass = self.best()
        bits = float(entropy_bits(0.5)) * log2(max(self.effective_candidates(), 1.0))
        return (f"top candidate at {mass:.3f}, about {self.effective_candidates():.0f} effective "
                f"candidates ({bits:.1f} bits to go), p ~ {self.posterior.p_mean:.2f}")
