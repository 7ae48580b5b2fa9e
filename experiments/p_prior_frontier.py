"""What the prior on p buys and costs: accuracy and boots per detection rate, for priors on p of
the shape p^a (1 - p)^c (plus bayes' 0.1 on p = 1), on the bench's seeded hunts (README,
"Benchmarks"). The shipped prior is a = 0, c = 0.5.

    python experiments/p_prior_frontier.py --hunts 1000 --low-hunts 400 --workers 2
"""

from __future__ import annotations

import random
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy.special import betainc

from bisectlab import dag
from bisectlab.bench import bench_space, culprit_pool, hunt_seed, ideal_hunt
from bisectlab.posterior import RateModel, compute_posterior, lower_bound_tests
from bisectlab.strategies import SearchSpace
from bisectlab.strategies.bayes import BayesOptions, BayesStrategy

from arguments import Parser, commits, count

PRIORS = ((0.0, 0.5), (0.0, 0.0), (0.0, -0.5), (0.0, 1.5), (0.5, 0.5), (1.0, 0.5))
RATES = (0.8, 0.5, 0.3, 0.05)


def shaped_model(a: float, c: float) -> RateModel:
    """bayes' grid on p with prior mass p^a (1 - p)^c on each cell (exact), 0.1 on p = 1."""
    shipped = RateModel.build()
    points = len(shipped.p_grid) - 1
    edges = 1 / (1 + np.exp(-np.linspace(np.log(0.005 / 0.995), np.log(0.995 / 0.005), points + 1)))
    edges[0], edges[-1] = 0.0, 1.0
    cells = np.diff(betainc(a + 1, c + 1, edges))
    prior = np.append(cells / cells.sum() * (1 - shipped.p_prior[-1]), shipped.p_prior[-1])
    return RateModel(shipped.p_grid, prior, shipped.f_grid, shipped.f_prior)


class ShapedBayes(BayesStrategy):
    """bayes with its prior on p replaced by p^a (1 - p)^c."""

    def params(self) -> dict:
        return {**super().params(), "prior_p_power": self.prior_p_power}

    def __init__(self, space: SearchSpace, a: float, c: float):
        super().__init__(space, BayesOptions(caution=c))
        self.prior_p_power = a
        self.model = shaped_model(a, c)
        self.posterior = compute_posterior(self.stats, self.log_prior, self.model)


def hunt(args: tuple[int, float, float, float, int]) -> tuple[bool, int]:
    """One seeded hunt: was the verdict right, and how many boots it took."""
    commits, a, c, p, i = args
    space = bench_space(commits, 0, None)
    seed = hunt_seed(0, i)
    culprit = int(random.Random(seed).choice(culprit_pool(commits, 0, None)))
    strategy = ShapedBayes(space, a, c)
    verdict = ideal_hunt(strategy, dag.descendants_mask(space.graph_parents, culprit), p,
                         np.random.default_rng(seed))
    return verdict.culprit == culprit, int(strategy.stats.boots)


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=commits, default=1000)
    parser.add_argument("--hunts", type=count(), default=1000, help="hunts at p >= 0.3")
    parser.add_argument("--low-hunts", type=count(), default=400, help="hunts at p = 0.05")
    parser.add_argument("--workers", type=count(high=64), default=2)
    args = parser.parse_args()
    n = len(bench_space(args.commits, 0, None))
    with ProcessPoolExecutor(args.workers) as pool:
        for a, c in PRIORS:
            cells = []
            for p in RATES:
                hunts = args.hunts if p >= 0.3 else args.low_hunts
                rows = list(pool.map(hunt, [(args.commits, a, c, p, i) for i in range(hunts)],
                                     chunksize=8))
                right = sum(r for r, _ in rows) / hunts
                boots = float(np.mean([b for _, b in rows]))
                bound = lower_bound_tests(n, p, 0.0, min(max(1 - right, 1e-6), 0.5))
                cells.append(f"p={p}: {right:.3f} {boots:.1f} ({boots / bound:.2f}x)")
            print(f"a={a} c={c}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
