"""The bayes strategy: noise-aware, adapter-aware bisection on DAGs.

It keeps the exact posterior over the culprit (:mod:`bisectlab.posterior`), with the detection
rate p learnt rather than assumed, and tests the commit whose ancestor mass u_x gives the most
information per unit cost on the Z-channel (science.md §1, §4): slightly older than the median,
and older still as adapters get scarce. It stops when one commit holds the target confidence.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from math import log2
from typing import Any

import numpy as np
from scipy.special import xlogy

from bisectlab import compiled
from bisectlab.dag import class_products
from bisectlab.errors import BisectlabError
from bisectlab.options import READING_LOG, StrategyOptions, option
from bisectlab.posterior import (
    DetectHint,
    Evidence,
    LabMinutes,
    Posterior,
    RateModel,
    compute_posterior,
    culprit_mass,
    entropy_bits,
    information_bits,
    pass_terms,
    sums_per_cost,
)
from bisectlab.strategies.base import (
    OBJECT_BYTES,
    REF_BYTES,
    LabCosts,
    Observation,
    Proposal,
    Resources,
    SearchSpace,
    Strategy,
    Verdict,
)
from bisectlab.strategies.budget import (
    MIN_BITS,
    SCARCE,
    BudgetView,
    adapter_scores,
    deterministic_alive,
    failure_price,
    rigs_at_once,
    spare_failures,
)

PRIOR_FLOOR = 1e-3  # a weighted prior never drops below this share of the uniform weight
MAX_JOINT = 8       # tests whose joint outcome a batch choice weighs exactly (2^8 outcomes)
MAX_BOOTS_PER_INSTALL = 10_000
LEARN_P_FROM = 0.05  # the leading candidate's mass from which learning p at it is weighed


@dataclass(frozen=True)
class BayesOptions(StrategyOptions):
    """bayes: when to stop, what to assume of the rates, what an adapter costs."""

    strategy = "bayes"
    confidence: float = option(0.99, key="confidence", flag="--confidence", low=0.5, high=1,
                               low_open=True, high_open=True,
                               help="stop when one commit holds this posterior (more than half: "
                                    "then no other commit can hold as much)")
    detect: float | None = option(None, key="detect", flag="--assume-detect", low=0, high=1,
                                  low_open=True, metavar="P",
                                  help="fix the detection rate p instead of learning it "
                                       "(not advised)")
    false_positive: float | None = option(
        0.0, key="false-positive", flag="--assume-false-positive", low=0, high=0.5,
        high_open=True, learn=True, metavar="F|learn",
        help="false-positive rate to assume, or 'learn' it (do, if adapters can die of other "
             "causes)")
    cost_weight: float = option(0.0, key="cost-weight", flag="--cost-weight", low=0,
                                high=1_000_000, help="price of an adapter, in tests (lambda)")
    boots_per_install: int | None = option(
        None, key="boots-per-install", flag="--boots-per-install", low=1,
        high=MAX_BOOTS_PER_INSTALL, whole=True, legacy=1,
        help="boots per install, stopping at the first failure (default: chosen test by test "
             "for the most information per lab minute, where the lab's costs are known; else 1)")
    deterministic_mass: float = option(0.1, key="deterministic-mass", low=0, high=1,
                                       high_open=True,
                                       help="prior probability that the bug always shows (p = 1)")
    caution: float = option(0.5, key="caution", low=-1, high=100, low_open=True,
                            help="the prior on p leans low as (1 - p)^caution")
    detect_prior: str | None = option(
        None, key="detect-prior", flag="--detect-prior", text=True, metavar="HINT",
        help="what the bug report says of p, e.g. '10-30 reboots', '0.03-0.1' or 'beta(2,38)': "
             "it leans the prior, never rules a rate out")
    weight: str | None = option(
        None, key="weight", flag="--weight", text=True, multiple=True, metavar="PATHSPEC=W",
        help="commits that touch PATHSPEC are W times likelier a priori (repeatable, or "
             "'a=2;b=3'); a hint never makes a commit impossible")
    p_quantile: float | None = option(
        None, key="p-quantile", low=0, high=0.5, high_open=True, legacy=0.0,
        help="a verdict must also hold with p fixed at this lower quantile of its posterior, so "
             "that early luck making p look high cannot make it overconfident (default: "
             "1 - confidence, at most 0.03; 0: the plain posterior)")

    plan_quantile: float = option(
        0.0, key="plan-quantile", flag="--plan-quantile", low=0, high=0.5, high_open=True,
        metavar="Q",
        help="with b left to the strategy, plan each test's boots for p at this lower quantile "
             "of its posterior, not for the posterior itself (0: off; 0.1 saves lab time on "
             "rare bugs, costs some on frequent ones: README, Lab time; not with "
             "--boots-per-install or --assume-detect)")

    @property
    def check_quantile(self) -> float:
        """The lower quantile of p a verdict must also hold at (0: no check)."""
        if self.p_quantile is not None:
            return self.p_quantile
        return min(1 - self.confidence, 0.03)  # calibrated at p = 0.03-1 (README, "Confidence")

    @classmethod
    def as_ran(cls, values: dict[str, Any]) -> dict[str, Any]:
        """A hunt logged before --plan-quantile refused a fixed b or a known p ran without it."""
        fixed = values.get("boots_per_install") is not None or values.get("detect") is not None
        if fixed and values.get("plan_quantile"):
            return {**values, "plan_quantile": 0.0}
        return values

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.detect is not None and self.false_positive is not None
                and not self.false_positive < self.detect and not READING_LOG.get()):
            raise BisectlabError(f"--assume-false-positive {self.false_positive:g} must be below "
                                 f"--assume-detect {self.detect:g}: a good commit failing as "
                                 "often as a bad one leaves nothing to find")
        if self.plan_quantile > 0:
            fixed = [flag for flag, value in (("--boots-per-install", self.boots_per_install),
                                              ("--assume-detect", self.detect))
                     if value is not None]
            if fixed:
                raise BisectlabError(f"--plan-quantile plans the boots for an unknown p: it does "
                                     f"not go with {fixed[0]}")
        if self.weight is not None:
            path_weights(self.weight, limit=None if READING_LOG.get() else MAX_WEIGHT)
        if self.detect_prior is not None:
            if self.detect is not None:
                raise BisectlabError("--detect-prior leans a learnt p: it does not go with "
                                     "--assume-detect")
            try:
                DetectHint.parse(self.detect_prior)
            except ValueError as exc:
                raise BisectlabError(f"--detect-prior: {exc}") from None


# A hint leans the prior; it must not supply a verdict's odds by itself (99 to 1 at the default
# confidence). On a 200-commit scenario with a misleading hint, 5 seeds: W <= 1000 found the
# culprit in 5 of 5, W = 10^4 named a wrong commit after 3 tests in 1, W = 10^6 after 2 in 5.
# Hunts logged with a larger W read it back as they ran.
MAX_WEIGHT = 100.0


def path_weights(text: str, limit: float | None = None) -> list[tuple[str, float]]:
    """'kernel/trace=10;drivers/net=0.5' -> [(pathspec, W), ...]; BisectlabError if malformed,
    or (``limit``: new input) a W outside [1 / limit, limit]."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(";"))):
        pathspec, eq, value = item.rpartition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        within = (0 < weight < float("inf") if limit is None else 1 / limit <= weight <= limit)
        if not eq or not pathspec or not within:
            raise BisectlabError(f"--weight takes PATHSPEC=W with {1 / MAX_WEIGHT:g} <= W <= "
                                 f"{MAX_WEIGHT:g}, not '{item[:60]}'")
        out.append((pathspec, weight))
    if not out and limit is not None:  # new input: a hint that says nothing is a mistake
        raise BisectlabError("--weight is empty: give PATHSPEC=W (e.g. kernel/trace=10)")
    return out


def prior_from_paths(space: SearchSpace, text: str) -> np.ndarray:
    """Prior weights of the candidates: W for each pathspec a commit touches, multiplied."""
    if space.touching is None:
        raise BisectlabError("--weight needs a history with changed paths")
    weights = np.ones(len(space))
    for pathspec, weight in path_weights(text):
        touched = np.asarray(space.touching(pathspec), dtype=bool)[space.commits]
        if not touched.any():  # a typo, most likely: the hint would silently do nothing
            raise BisectlabError(f"--weight {pathspec}={weight:g}: no candidate commit touches "
                                 f"{pathspec}")
        weights[touched] *= weight
    return weights


def p_at_quantile(posterior: Posterior, quantile: float,
                  unhinted: np.ndarray | None = None) -> float:
    """The detection rate of the grid at the posterior's lower ``quantile`` (read without the
    hint's lean when ``unhinted`` is given, see :func:`low_p_mass`)."""
    if unhinted is None:
        cdf = np.cumsum(posterior.p_mass)
    else:
        plain = posterior.p_mass * unhinted
        cdf = np.cumsum(plain) / plain.sum()
    grid = posterior.model.p_grid
    return float(grid[min(np.searchsorted(cdf, quantile), len(cdf) - 1)])


def learnt_p_at_quantile(posterior: Posterior, quantile: float,
                         unhinted: np.ndarray | None = None) -> float | None:
    """:func:`p_at_quantile`, or None when p is not learnt or the quantile is 0 (nothing to
    fix p at)."""
    if quantile == 0 or posterior.model.p_known:
        return None
    return p_at_quantile(posterior, quantile, unhinted)


def low_p_mass(stats: Evidence, log_prior: np.ndarray, model: RateModel, posterior: Posterior,
               i: int, quantile: float, unhinted: np.ndarray | None = None
               ) -> tuple[float, float] | None:
    """Candidate i's mass (candidates i's, for an index array) with p fixed at the posterior's
    lower ``quantile``, and that p (None when p is not learnt or the quantile is 0).

    The posterior is calibrated on average over its prior on p, not at each p: a few early
    failures can make a rare bug look frequent, and the passes that were misses then read as
    good. A verdict that also holds at a pessimistic p does not lean on that luck. ``unhinted``
    (the plain prior on p over the hinted one, per grid cell) reads the quantile as if there
    were no --detect-prior, so that a hint set too high cannot lift the pessimistic p.
    """
    p_low = learnt_p_at_quantile(posterior, quantile, unhinted)
    if p_low is None:
        return None
    try:
        return culprit_mass(stats, log_prior, model.at_detect(p_low), i), p_low
    except ValueError:  # the data rule that p out: a verdict cannot rest on it
        return 0.0, p_low


def posterior_at_quantile(stats: Evidence, log_prior: np.ndarray, model: RateModel,
                          posterior: Posterior, quantile: float,
                          unhinted: np.ndarray | None = None
                          ) -> tuple[Posterior | None, float] | None:
    """The posterior with p fixed at ``posterior``'s lower ``quantile`` (see
    :func:`p_at_quantile`), and that p: None when p is not learnt or the quantile is 0, the
    posterior None when the data rule that p out."""
    p = learnt_p_at_quantile(posterior, quantile, unhinted)
    if p is None:
        return None
    try:
        return compute_posterior(stats, log_prior, model.at_detect(p)), p
    except ValueError:
        return None, p


BOOTS_LADDER = (1, 2, 3, 5, 8, 13, 20, 30, 50)  # boots per install weighed test by test


def filled_boots(commits: list[int], installed: tuple[int | None, ...], boots: int,
                 costs: LabCosts) -> tuple[int, ...] | None:
    """Each test's boots in a round where some rigs install and others keep their kernel: a
    round lasts as long as its longest test, so a rig that keeps its kernel boots it as many
    more times as an install takes, at most the ladder's top count (free boots, or installs
    that take a million of them, are not a reason to boot forever) (None: every test gets
    ``boots``)."""
    keeps = [i < len(installed) and installed[i] == c for i, c in enumerate(commits)]
    top = BOOTS_LADDER[-1]
    extra = top if costs.boot <= 0 else int(min(costs.install // costs.boot, top))
    if all(keeps) or not any(keeps) or extra <= 0:
        return None
    return tuple(boots + extra if keep else boots for keep in keeps)


def on_their_rigs(commits: list[int], installed: tuple[int | None, ...]) -> list[int]:
    """The round's commits in rig order: a commit a free rig has installed goes to that rig."""
    if not installed or not any(c in installed for c in commits):
        return commits
    slots: list[int | None] = [None] * len(commits)
    rest = list(commits)
    for i, have in enumerate(installed[:len(commits)]):
        if have in rest:
            slots[i] = have
            rest.remove(have)
    return [c if c is not None else rest.pop(0) for c in slots]


def first_best(values: np.ndarray) -> int:
    """The index of the largest value; near-ties (within 1e-9 relative, far above rounding
    noise but far below anything that matters) go to the first, the oldest commit, so that the
    order in which sums are taken never changes a choice."""
    kernels = compiled.kernels
    if kernels is not None and values.ndim == 1 and values.dtype == np.float64 \
            and values.flags.c_contiguous and len(values):
        return kernels.first_best(values)  # one pass where numpy's make four
    top = float(np.max(values))
    if not np.isfinite(top):
        return int(np.argmax(values))
    return int(np.flatnonzero(values >= top - 1e-9 * abs(top))[0])


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


def _total(rows: np.ndarray) -> np.ndarray:
    """Each row's sum (or a vector's), added in order as a column sum of the (N, k) matrix
    adds it (numpy's pairwise summation along a row would round differently)."""
    return np.cumsum(rows, axis=-1)[..., -1]


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
        self.boots = opts.boots_per_install or 1  # fixed, or the default where costs are unknown
        hint = None if opts.detect_prior is None else DetectHint.parse(opts.detect_prior)
        build = partial(RateModel.build, opts.detect, opts.false_positive,
                        deterministic_mass=opts.deterministic_mass, caution=opts.caution)
        self.model = build(hint=hint)
        self.unhinted = None  # the check's quantile is read without the hint (low_p_mass)
        if hint is not None and opts.detect is None:
            self.unhinted = build().p_prior / self.model.p_prior
        if prior_weights is None and opts.weight is not None:
            prior_weights = prior_from_paths(space, opts.weight)
        self.log_prior = self._log_prior(prior_weights)
        self.stats = Evidence(len(space))
        self.posterior: Posterior = compute_posterior(self.stats, self.log_prior, self.model)
        self._owns_posterior = True  # False in a fork, until observe replaces it
        self.stuck = False
        self.contradiction: str | None = None
        self._check: tuple[int, tuple[float, float] | None] | None = None  # (tests, check)

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

    def fork(self) -> BayesStrategy:
        """A copy to go on from: the evidence and the lists copied, the rest (the space, the
        model, the prior, the posterior, which observe replaces and never changes) shared."""
        other = copy.copy(self)
        other.history, other.untestable = list(self.history), self.untestable.copy()
        other.stats = self.stats.copy()
        other._owns_posterior = False  # this one's, until observe replaces it
        return other

    def kept_bytes(self) -> int:
        """What a fork holds of its own: its evidence, untestable marks and list of
        observations, and its posterior once observe has replaced the one it shared (the
        observations, the prior, the model and the space are shared)."""
        stats, post = self.stats, self.posterior
        own = (self.untestable.nbytes + stats.pair.nbytes + stats.pair_boots.nbytes
               + stats.pair_fails.nbytes + REF_BYTES * len(self.history) + OBJECT_BYTES * 8)
        if self._owns_posterior:
            own += post.mass.nbytes + post.rates.nbytes + post.conditional.nbytes
            own += 0 if post.classes is stats.pair else post.classes.nbytes  # often the same
        return own

    # learning -----------------------------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        super().observe(obs)
        local = self.space.local.get(obs.commit)
        if local is None or self.contradiction is not None or obs.skipped:
            return
        self.stats.add(self.space.ancestors(local), obs.boots, obs.failures)
        try:
            self.posterior = compute_posterior(self.stats, self.log_prior, self.model)
            self._owns_posterior = True
        except ValueError:
            self.contradiction = self._explain_contradiction(obs)

    def _explain_contradiction(self, last: Observation) -> str:
        """What the observation that made every candidate impossible contradicted, and the flag
        that would let the model explain it."""
        space, model = self.space, self.model
        deterministic = model.deterministic
        no_false_positives = model.no_false_positives
        for old in self.history[:-1]:
            if old.commit not in space.local or not (old.failed or last.failed):
                continue
            failed, other = (old, last) if old.failed else (last, old)
            anc_failed = space.ancestor_mask(space.local[failed.commit])
            anc_other = space.ancestor_mask(space.local[other.commit])
            if other.failed and no_false_positives and not (anc_failed & anc_other).any():
                return (f"commits {space.name(failed.commit)} and {space.name(other.commit)} "
                        "both failed, but no candidate is an ancestor of both: with false "
                        "positives assumed impossible that cannot happen (try "
                        "--assume-false-positive learn)")
            if not other.failed and deterministic and anc_other[space.local[failed.commit]]:
                return (f"commit {space.name(failed.commit)} failed but its descendant "
                        f"{space.name(other.commit)} passed: with p assumed 1 that cannot "
                        "happen (the bug does not always show: drop --assume-detect to learn p)")
        assumed = ([f"p = {model.p_grid[0]:g}"] if model.p_known else []) + \
                  ([f"f = {model.f_grid[0]:g}"] if len(model.f_grid) == 1 else [])
        return (f"the observations are impossible under the model ({', '.join(assumed)} "
                "assumed): try learning the rates (--assume-false-positive learn, no "
                "--assume-detect)")

    # deciding -----------------------------------------------------------------------------------

    def scores(self, resources: Resources, boots: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Ancestor mass u_x and information per unit cost of testing each candidate with
        ``boots`` boots (default: the strategy's own b)."""
        u, score = self._score_rows(resources, [boots or self.boots])
        return u, score[0]

    def scores_at(self, resources: Resources, ladder: Sequence[int]
                  ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Ancestor mass u_x, and per number of boots b the information per unit cost of
        testing each candidate with up to b boots."""
        u, score = self._score_rows(resources, ladder)
        return u, list(score)

    def _score_rows(self, resources: Resources, ladder: Sequence[int],
                    post: Posterior | None = None, priced: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
        """u_x, and the scores of :meth:`scores_at` as an (L, N) matrix, a row per b, under
        ``post`` (default: the posterior); per expected lab minute if ``priced``.

        The information is exact under the model: I(c; outcome of x), with the rates summed out
        given each c. Every term is an ancestor sum, so one pass over the DAG gives them all,
        for every b at once; what depends on c alone is worked out once per likelihood class.
        Columns of candidates are rows here, so that every pass runs along memory.
        """
        post = post if post is not None else self.posterior
        m = post.mass
        bad = post.pass_by_class(ladder)                             # (U, L)
        per_class = [bad, entropy_bits(bad)]
        no_false_positives = post.model.no_false_positives
        if not no_false_positives:  # with f = 0 a good commit always passes
            good = post.good_pass_by_class(ladder)
            per_class += [good, entropy_bits(good)]
        table = np.concatenate(per_class, axis=1).T                  # (k L, U)
        width = len(ladder)
        if no_false_positives:  # per b: P(pass) and its entropy summed over good commits
            totals = np.array([np.full(width, _total(m)), np.zeros(width)])
        else:
            good_sums = class_products(m, table[2 * width:], post.classes)[1:]
            totals = np.array([_total(good_sums[:width]), _total(good_sums[width:])])
            del good_sums
        anc = self.space.sums.product_sums(m, table, post.classes)
        minutes = self._test_minutes(ladder, resources, post) if priced else None
        if resources.adapters_left is None:
            u, score = np.clip(anc[0], 0.0, 1.0), sums_per_cost(anc, totals, self.cost_weight, minutes)
        else:
            u, p_pass, cond = pass_terms(anc, totals)                    # p_pass, cond: (L, N)
            info, fail = information_bits(p_pass, cond), 1 - p_pass
            score = np.empty_like(info)
            for k in range(width):
                score[k] = adapter_scores(
                    self._budget_view(u, info[k], fail[k], resources.adapters_left),
                    resources.adapters_left)
            if minutes is not None:
                score /= minutes.of(u)
        score[:, self.untestable] = -np.inf
        return u, score

    def _budget_view(self, u: np.ndarray, info: np.ndarray, fail: np.ndarray,
                     adapters: int) -> BudgetView:
        """What the adapter budget needs to know of this state."""
        stats = self.stats
        p_known = self.model.p_known
        top, top_mass = self.best()
        concluding = np.zeros(len(self.space), dtype=bool)
        if spare_failures(adapters, p_known) <= 0:
            concluding[top] = self._failure_would_conclude(top)
        alive = np.zeros(len(self.space), dtype=bool)
        if self.model.no_false_positives:
            alive = deterministic_alive(stats.boots_below, stats.fails_below, stats.fails)
        return BudgetView(space=self.space, info=info, fail=fail, u=u,
                          cost_weight=self.cost_weight, top_mass=top_mass, alive=alive,
                          p_known=p_known, concluding=concluding)

    def _failure_would_conclude(self, i: int) -> bool:
        """Whether a failure of a test of local commit ``i`` would give the verdict for it."""
        stats = self.stats.copy()
        stats.add(self.space.ancestors(i), self.boots, 1)
        return self._verdict_holds(stats, i)

    def _verdict_holds(self, stats: Evidence, i: int) -> bool:
        """Whether, on evidence ``stats``, local commit ``i`` would be the verdict: the top
        candidate at the confidence asked for, the low-p check passed too."""
        try:
            post = compute_posterior(stats, self.log_prior, self.model)
        except ValueError:
            return False
        if first_best(post.mass) != i or post.mass[i] < self.confidence:
            return False
        return self._holds_at_low_p(stats, post, i)

    def _holds_at_low_p(self, stats: Evidence, post: Posterior, i: int | np.ndarray) -> bool:
        """Whether candidate ``i`` (or the candidates ``i``) keep the confidence with p fixed
        at its pessimistic quantile (see :func:`low_p_mass`)."""
        check = low_p_mass(stats, self.log_prior, self.model, post, i,
                           self.options.check_quantile, self.unhinted)
        return check is None or check[0] >= self.confidence

    def effective_candidates(self) -> float:
        """2 to the posterior entropy: how many equally likely candidates it is worth."""
        m = self.posterior.mass
        m = m[m > 0]
        return float(2 ** (-(m * np.log2(m)).sum()))

    def propose(self, resources: Resources) -> Proposal:
        boots, u, score = self._boots_and_scores(resources)
        best = first_best(score)
        self.stuck = not score[best] > MIN_BITS
        if self._learning_p_pays(resources) and not self.untestable[self.best()[0]]:
            best, self.stuck = self.best()[0], False
        chosen = [best]
        rigs = rigs_at_once(resources.rigs, resources.adapters_left,
                             self.model.p_known)
        if rigs > 1:
            chosen = self._spread(u, score, best, rigs, boots)
        commits = on_their_rigs([int(self.space.commits[i]) for i in chosen], resources.installed)
        each = None
        if self._chooses_boots(resources):
            each = filled_boots(commits, resources.installed, boots, resources.costs)
        return Proposal(tuple(commits), boots, each)

    def _chooses_boots(self, resources: Resources) -> bool:
        """Whether the boots per test are the strategy's to choose: no b fixed by the user, and
        the lab's costs known to price them by."""
        return self.options.boots_per_install is None and resources.costs is not None

    def _boots_and_scores(self, resources: Resources) -> tuple[int, np.ndarray, np.ndarray]:
        """The boots per install of the next round, u and each candidate's score.

        With b left to the strategy and the lab's costs known, every b of a ladder is weighed
        and the score is information per lab minute: a commit a rig has installed costs only
        its boots, so its kernel is booted again rather than another one installed, until the
        information a boot brings falls below what an install elsewhere would bring a minute.
        """
        if not self._chooses_boots(resources):
            return (self.boots, *self.scores(resources))
        plan = self._planning_posterior()
        u, rates = self._lab_rates(resources, BOOTS_LADDER, plan)
        best: tuple[float, int] | None = None
        for k, top in enumerate(np.max(rates, axis=1).tolist()):
            if best is None or top > best[0] * (1 + 1e-9):
                best = (top, k)
        assert best is not None
        boots = BOOTS_LADDER[best[1]]
        if plan is not self.posterior:
            u, rates = self._lab_rates(resources, [boots], self.posterior)
            return boots, u, rates[0]
        return boots, u, rates[best[1]]

    def _planning_posterior(self) -> Posterior:
        """The posterior the boots per test are planned on: p fixed at its lower
        ``plan_quantile``. A test planned for the posterior's p, whose early failures can make
        a rare bug look frequent, leaves commits under-tested that the verdict, held at a low p
        (the Trust rule), must come back to with another install."""
        at = posterior_at_quantile(self.stats, self.log_prior, self.model, self.posterior,
                                   self.options.plan_quantile)
        if at is None or at[0] is None:  # nothing to plan for, or the data rule that p out
            return self.posterior
        return at[0]

    def _lab_rates(self, resources: Resources, ladder: Sequence[int], post: Posterior
                   ) -> tuple[np.ndarray, np.ndarray]:
        """u_x under ``post``, and the information a lab minute of testing each candidate with
        up to b boots, per b of ``ladder`` (L, N)."""
        return self._score_rows(resources, ladder, post, priced=True)

    def _test_minutes(self, ladder: Sequence[int], resources: Resources, post: Posterior
                      ) -> LabMinutes:
        """What testing each candidate with up to b boots, per b of the ladder, is expected to
        cost in lab minutes: an install unless the one rig has it (with several, one b serves
        the round and its other rigs install: priced as an install), the boots until the first
        failure, a swap after one."""
        costs = resources.costs
        assert costs is not None
        install = np.full(len(self.space), costs.install)
        if resources.rigs == 1:  # a round of several rigs installs on most of them, whatever b
            local = (self.space.local.get(c) for c in resources.installed if c is not None)
            install[[i for i in local if i is not None]] = 0.0
        boots_per_p, fail_per_p = post.model.ladder_terms(ladder)                  # (P, L)
        p_mass = post.p_mass
        per_b = np.empty((len(ladder), 3))
        per_b[:, 0], per_b[:, 1], per_b[:, 2] = ladder, p_mass @ boots_per_p, p_mass @ fail_per_p
        return LabMinutes(install, per_b, costs.boot, costs.swap)

    def _learning_p_pays(self, resources: Resources) -> bool:
        """Whether testing the leading candidate itself, to learn p from its outcome, is
        expected to cost fewer tests than going straight to its parent's confirming passes
        (a two-step look at the last mile, made when adapters are scarce: with few failures
        seen p is loosely known, the parent's passes say little, and greedy information, one
        step deep, does not see what knowing p would save)."""
        if resources.adapters_left is None or self.model.p_known:
            return False
        spare = spare_failures(resources.adapters_left, p_known=False)
        i, mass = self.best()
        parents = self.space.parents[i]
        if not 1 <= spare <= SCARCE or mass < LEARN_P_FROM or not parents:
            return False
        price = self.cost_weight + failure_price(spare)
        parent = max(parents, key=lambda q: self.posterior.mass[q])
        now = self._passes_to_verdict(self.stats, i, parent)
        if now == 0:
            return False
        branches = []
        for failures in (1, 0):
            after = self.stats.copy()
            after.add(self.space.ancestors(i), self.boots, failures)
            branches.append(self._passes_to_verdict(after, i, parent))
        fail = self._fail_at(i)
        then_fail, then_pass = branches
        if not np.isfinite(now) and not np.isfinite(then_fail):
            return False
        then_pass = min(then_pass, now + 1) if np.isfinite(then_pass) else now + 1
        expected = 1 + fail * (then_fail + price) + (1 - fail) * then_pass
        return expected < now

    def _fail_at(self, i: int) -> float:
        """P(a test of local commit i fails), the rates summed out."""
        pass_bad, pass_good = self.posterior.pass_given_culprit(self.boots)
        mass = self.posterior.mass
        bad = self.space.ancestor_mask(i)
        return float(1 - (mass[bad] @ pass_bad[bad] + mass[~bad] @ pass_good[~bad]))

    def _passes_to_verdict(self, stats: Evidence, i: int, parent: int, most: int = 4096) -> float:
        """How many more passing boots of ``parent`` would give the verdict for candidate i."""
        anc = self.space.ancestors(parent)

        def enough(m: int) -> bool:
            trial = stats.copy()
            trial.add(anc, m, 0)
            return self._verdict_holds(trial, i)

        if enough(0):
            return 0
        high = 1
        while not enough(high):
            high *= 2
            if high > most:
                return np.inf
        low = high // 2
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if enough(mid) else (mid, high)
        return high

    def _spread(self, u: np.ndarray, score: np.ndarray, best: int, rigs: int,
                boots: int) -> list[int]:
        """Tests for m rigs at once: the best single test, then greedily the test that adds
        the most information to the joint outcome of the batch, per unit cost.

        A deterministic bug gets tests near posterior quantiles (each outcome settles its own
        split); a rarely showing one gets tests close together, whose mostly uninformative
        outcomes add up almost independently; near the end, the same commit on several rigs
        (more boots of the culprit's parent, say). Rates are the posterior's (summed over p).

        The joint outcome of k tests has 2^k values: up to MAX_JOINT tests it is weighed
        exactly; beyond, a candidate's gain is weighed given the MAX_JOINT - 1 chosen tests
        nearest to it in ancestor mass, which share the most with it. With p assumed 1, a
        commit and its descendant are never paired (if the older fails, the newer must: an
        adapter destroyed for nothing).
        """
        space, mass = self.space, self.posterior.mass
        allowed = np.isfinite(score) & (u < 1 - 1e-12)
        fail_bad, fail_good = self._fail_rates(boots)
        cost = 1 + self.cost_weight * (u * fail_bad + (1 - u) * fail_good)
        unrelated = self.model.deterministic
        cache: dict[tuple[int, ...], np.ndarray] = {}

        def gain_given(window: tuple[int, ...]) -> np.ndarray:
            """What each candidate adds to the tests in ``window`` (sorted, copies repeated)."""
            if window not in cache:
                joint = batch_information(space, mass, list(window), fail_bad, fail_good)
                known = batch_information(space, mass, list(window[:-1]), fail_bad,
                                          fail_good)[window[-1]]
                cache[window] = joint - known
            return cache[window]

        chosen = [best]
        for _ in range(rigs - 1):
            if unrelated:
                allowed &= ~self._related(chosen[-1])
            if len(chosen) < MAX_JOINT:
                added = gain_given(tuple(sorted(chosen)))
            else:
                added = self._nearest_window_gain(u, chosen, gain_given)
            gain = np.where(allowed, added / cost, -np.inf)
            pick = first_best(gain)
            if not gain[pick] > MIN_BITS:  # nothing left that adds anything
                break
            chosen.append(pick)
        return chosen

    @staticmethod
    def _nearest_window_gain(u: np.ndarray, chosen: list[int],
                             gain_given: Any) -> np.ndarray:
        """Each candidate's gain given the MAX_JOINT - 1 chosen tests nearest to it in ancestor
        mass: the window of its gap between chosen commits, filled outwards, each commit with
        its copies (a candidate equal to a chosen commit sits in the gap just after it)."""
        distinct = sorted(set(chosen), key=lambda c: (u[c], c))
        gap = np.searchsorted(np.array([u[c] for c in distinct]), u, side="right")
        out = np.empty(len(u))
        for g in np.unique(gap):
            left, right = distinct[:g][::-1], distinct[g:]
            order = [c for i in range(max(len(left), len(right)))
                     for c in (left[i:i + 1] + right[i:i + 1])]
            window: list[int] = []
            for c in order:
                window += [c] * min(chosen.count(c), MAX_JOINT - 1 - len(window))
            out[gap == g] = gain_given(tuple(sorted(window)))[gap == g]
        return out

    def _related(self, i: int) -> np.ndarray:
        """Candidates that are ancestors-or-self or descendants of local commit ``i``."""
        related = self.space.ancestor_mask(i)
        related |= self.space.sums.sums(np.eye(1, len(self.space), i).ravel()) > 0.5
        return related

    def _fail_rates(self, boots: int | None = None) -> tuple[float, float]:
        """P(a test of ``boots`` boots fails) at a bad and at a good commit, under the posterior
        over the rates."""
        post, b = self.posterior, boots or self.boots
        fail_bad = float(post.p_mass @ (1 - (1 - self.model.p_grid) ** b))
        fail_good = float(post.f_mass @ (1 - (1 - self.model.f_grid) ** b))
        return fail_bad, fail_good

    def belief(self) -> np.ndarray:
        """The posterior over the candidates."""
        return self.posterior.mass

    # concluding ---------------------------------------------------------------------------------

    def best(self) -> tuple[int, float]:
        """The most probable culprit (local index; ties to the oldest) and its posterior mass."""
        i = first_best(self.posterior.mass)
        return i, float(self.posterior.mass[i])

    def low_p_check(self) -> tuple[float, float] | None:
        """The top candidate's mass with p fixed at the posterior's lower ``check_quantile``, and
        that p (None when p is not learnt or the check is off); see :func:`low_p_mass`."""
        key = len(self.history)
        if self._check is None or self._check[0] != key:
            i, _ = self.best()
            self._check = (key, low_p_mass(self.stats, self.log_prior, self.model,
                                           self.posterior, i, self.options.check_quantile,
                                           self.unhinted))
        return self._check[1]

    def verdict(self) -> Verdict | None:
        if self.contradiction is not None:
            return self.abort(self.contradiction, "inconclusive")
        i, mass = self.best()
        if mass >= self.confidence:
            check = self.low_p_check()
            if check is None or check[0] >= self.confidence:
                culprit = int(self.space.commits[i])
                return Verdict("found", culprit, mass,
                               "bayes: posterior reached the target confidence", 1,
                               self.evidence_of(culprit))
        hidden = self._hidden_by_skips()
        if len(hidden) and (self.stuck or self._block_holds(hidden)):
            commits = sorted(int(self.space.commits[j]) for j in hidden)
            return Verdict("inconclusive", int(self.space.commits[i]),
                           float(self.posterior.mass[hidden].sum()),
                           "there are only skipped commits left to test; the first bad "
                           "commit could be any of: " + " ".join(
                               self.space.name(c) for c in commits), len(commits),
                           self._block_evidence(i, hidden))
        if self.stuck:
            return self.abort("no test left that could teach anything", "inconclusive")
        return None

    def _hidden_by_skips(self) -> np.ndarray:
        """The likeliest candidates holding the target confidence together (local indices), if
        skipped commits are among them, else none."""
        if not self.untestable.any():  # the common case, and every round asks
            return np.zeros(0, dtype=np.intp)
        order = np.argsort(-self.posterior.mass, kind="stable")
        held = np.cumsum(self.posterior.mass[order])
        likeliest = order[:int(np.searchsorted(held, self.confidence)) + 1]
        if len(likeliest) < 2 or not self.untestable[likeliest].any():
            return likeliest[:0]
        return likeliest

    def _block_holds(self, block: np.ndarray) -> bool:
        """Whether the verdict "one of ``block``" is as sure as a culprit's would be: no commit
        left to test is bad for some of the block and good for the rest (so no test can split
        it), and the block holds the confidence with p at its pessimistic quantile too."""
        inside = np.zeros(len(self.space))
        inside[block] = 1.0
        below = self.space.sums.sums(inside)  # how many of the block each commit contains
        splits = (below > 0.5) & (below < len(block) - 0.5) & ~self.untestable
        return not splits.any() and self._holds_at_low_p(self.stats, self.posterior, block)

    def abort(self, reason: str, status: str = "aborted") -> Verdict:
        i, mass = self.best()
        culprit = int(self.space.commits[i])
        left = int((self.posterior.mass > 1e-6).sum())
        return Verdict(status, culprit, mass, f"{reason}; best guess at posterior {mass:.3f}",
                       left, self.evidence_of(culprit))

    def _block_evidence(self, top: int, block: np.ndarray) -> dict[str, Any]:
        """The evidence of a verdict "one of ``block``": the likeliest one's tests, and the
        confidence (``block``: how many) and low-p check of the block as a whole."""
        out = self.evidence_of(int(self.space.commits[top]))
        out["block"] = len(block)
        check = low_p_mass(self.stats, self.log_prior, self.model, self.posterior, block,
                           self.options.check_quantile, self.unhinted)
        out.pop("low_p_check", None)
        if check is not None:
            out["low_p_check"] = {"quantile": self.options.check_quantile, "p": check[1],
                                  "mass": check[0]}
        return out

    def evidence_of(self, commit: int) -> dict[str, Any]:
        """Boots and failures at the culprit and its parents, and the rates learnt."""
        post = self.posterior
        cdf = np.cumsum(post.p_mass)
        lo = float(self.model.p_grid[np.searchsorted(cdf, 0.05)])
        hi = float(self.model.p_grid[min(np.searchsorted(cdf, 0.95), len(cdf) - 1)])
        out = {**self.evidence(commit), "p_mean": post.p_mean, "p_90": [lo, hi],
               "p_assumed": self.model.p_known, "f_mean": post.f_mean}
        check = self.low_p_check()
        if check is not None:
            out["low_p_check"] = {"quantile": self.options.check_quantile, "p": check[1],
                                  "mass": check[0]}
        return out

    def progress(self) -> str:
        i, mass = self.best()
        bits = float(entropy_bits(0.5)) * log2(max(self.effective_candidates(), 1.0))
        return (f"top candidate at {mass:.3f}, about {self.effective_candidates():.0f} effective "
                f"candidates ({bits:.1f} bits to go), p ~ {self.posterior.p_mean:.2f}")
