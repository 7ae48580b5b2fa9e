"""Is a verdict's confidence a promise at each detection rate? Accuracy at a target confidence with
bayes' stopping rule (the verdict must also hold with p at a lower quantile of its posterior)
beside the plain posterior rule it replaced, on the same hunts and boots (README, "Confidence").

Each hunt is `bisectlab bench`'s (same history, culprit and boots for a seed) and runs until
every rule has stopped; a rule's verdict is the top candidate when it first holds. The choice of
tests never depends on the stopping rule, so each rule's hunt is exactly the one bench would run.

    python experiments/calibration.py --detect 0.05 --detect 0.3 --hunts 1000 --workers 2
    python experiments/calibration.py --scenario --hunts 400 --workers 2
    python experiments/calibration.py --scenario --hunts 400 --workers 2 --plan-quantile 0.1
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np

from bisectlab.bench import _with_bug, bench_history, bench_space, culprit_pool, hunt_seed, wilson
from bisectlab.bugs import RateBug
from bisectlab.campaign import campaign_hunt_seed
from bisectlab.driver import drive
from bisectlab.lab import Lab
from bisectlab.strategies import SearchSpace
from bisectlab.strategies.bayes import BayesOptions, BayesStrategy, low_p_mass

from arguments import Parser, commits, count, fail, low_quantile, rate, seed

TARGETS = (0.95, 0.99)
RULES = ("plain", "low-p")  # and "q=Q" per --quantile Q: the low-p check at that quantile
MAX_TESTS = 50_000


class EveryRule(BayesStrategy):
    """bayes that notes when each (target, rule) would have stopped, and stops after the last."""

    def __init__(self, space: SearchSpace, rules: tuple[str, ...] = RULES, plan: float = 0.0):
        super().__init__(space, BayesOptions(p_quantile=0.0, plan_quantile=plan))
        self.rules = rules
        self.stops: dict[tuple[float, str], tuple[int, int]] = {}  # -> (culprit, boots)

    def observe(self, obs) -> None:
        super().observe(obs)
        i, mass = self.best()
        for target in TARGETS:
            if mass < target:
                continue
            for rule in self.rules:
                if (target, rule) in self.stops:
                    continue
                quantile = (float(rule[2:]) if rule.startswith("q=")
                            else BayesOptions(confidence=target).check_quantile)
                check = None if rule == "plain" else low_p_mass(
                    self.stats, self.log_prior, self.model, self.posterior, i, quantile)
                if check is None or check[0] >= target:
                    self.stops[target, rule] = (int(self.space.commits[i]), int(self.stats.boots))

    def verdict(self):
        if len(self.stops) == len(TARGETS) * len(self.rules):
            return self.abort("every rule has stopped", "inconclusive")
        return None


def bench_hunt(commits: int, p: float, seed: int, rules: tuple[str, ...], plan: float, i: int
               ) -> tuple[int, dict]:
    """One of bench's hunts at detection rate p: the true culprit and each rule's stop."""
    h, _, _ = bench_history(commits, seed, None)
    s = hunt_seed(seed, i)
    culprit = int(random.Random(s).choice(culprit_pool(commits, seed, None)))
    strategy = EveryRule(bench_space(commits, seed, None), rules, plan)
    drive(strategy, Lab.build(_with_bug(h, RateBug(culprit, p, 0.0)), seed=s, adapters=None),
          max_tests=MAX_TESTS)
    return culprit, strategy.stops


def scenario_hunt(rules: tuple[str, ...], plan: float, i: int) -> tuple[int, dict]:
    """Hunt i of `replay intel-lab --rigs 1` on the shipped scenario (a bottomless box)."""
    from bisectlab.campaign import cached_history

    h = cached_history("e1000e-2.6.27")
    good, bad = h.resolve("v2.6.26"), h.resolve("v2.6.27-rc8")
    strategy = EveryRule(SearchSpace(h.parents, [good], bad, names=h.shas, times=h.times), rules,
                         plan)
    drive(strategy, Lab.build(h, seed=campaign_hunt_seed(0, i), adapters=None),
          max_tests=MAX_TESTS)
    return h.true_culprit(good, bad), strategy.stops


def report(label: str, rows: list[tuple[int, dict]], rules: tuple[str, ...]) -> None:
    """Accuracy with its 95% interval and mean boots of each rule, per target."""
    for target in TARGETS:
        cells, plain_boots = [], None
        for rule in rules:
            stops = [(culprit, r.get((target, rule))) for culprit, r in rows]
            right = sum(stop is not None and stop[0] == culprit for culprit, stop in stops)
            boots = float(np.mean([stop[1] if stop else np.nan for _, stop in stops]))
            lo, hi = wilson(right, len(rows))
            plain_boots = boots if rule == "plain" else plain_boots
            ratio = "" if rule == "plain" else f" ({boots / plain_boots:.3f}x)"
            cells.append(f"{rule}: {right / len(rows):.3f} [{lo:.3f}, {hi:.3f}] {boots:.1f} boots"
                         f"{ratio}")
        print(f"{label} target {target}: hunts={len(rows)}  " + "  ".join(cells), flush=True)


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--detect", type=rate, action="append", default=[])
    parser.add_argument("--scenario", action="store_true", help="the shipped 2.6.27 hunt")
    parser.add_argument("--commits", type=commits, default=1000)
    parser.add_argument("--hunts", type=count(), default=1000)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--workers", type=count(high=64), default=2)
    parser.add_argument("--plan-quantile", type=low_quantile, default=0.0,
                        help="bayes' --plan-quantile (the boots per test planned for a low p)")
    parser.add_argument("--quantile", type=low_quantile, action="append", default=[],
                        help="also the low-p check at this quantile of p (repeatable)")
    args = parser.parse_args()
    if not args.detect and not args.scenario:
        fail("nothing to measure: give --detect P (repeatable) or --scenario")
    rules = RULES + tuple(f"q={q:g}" for q in args.quantile)
    with ProcessPoolExecutor(args.workers) as pool:
        for p in args.detect:
            rows = list(pool.map(partial(bench_hunt, args.commits, p, args.seed, rules, args.plan_quantile),
                                 range(args.hunts), chunksize=4))
            report(f"N={args.commits} p={p}", rows, rules)
        if args.scenario:
            report("e1000e-2.6.27 v2.6.26..v2.6.27-rc8, 1 rig",
                   list(pool.map(partial(scenario_hunt, rules, args.plan_quantile),
                                 range(args.hunts), chunksize=2)),
                   rules)


if __name__ == "__main__":
    main()
