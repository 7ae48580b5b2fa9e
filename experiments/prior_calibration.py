"""Is bayes right at the rate it claims when p is drawn from its own prior? Overall, and by range
of p: the guarantee of an exact posterior is an average over p (README, "Benchmarks").

    python experiments/prior_calibration.py --commits 200 --hunts 1000
"""

from __future__ import annotations

import random

import numpy as np

from bisectlab import dag
from bisectlab.bench import bench_space, culprit_pool, hunt_seed, ideal_hunt
from bisectlab.posterior import RateModel
from bisectlab.strategies import make_strategy

from arguments import Parser, commits, count

BANDS = ((0.0, 0.1), (0.1, 0.5), (0.5, 1.01))


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=commits, default=200)
    parser.add_argument("--hunts", type=count(), default=1000)
    args = parser.parse_args()
    space = bench_space(args.commits, 0, None)
    pool = culprit_pool(args.commits, 0, None)
    prior = RateModel.build()
    results = []
    for i in range(args.hunts):
        seed = hunt_seed(7, i)
        rng = np.random.default_rng(seed)
        p = float(rng.choice(prior.p_grid, p=prior.p_prior))
        culprit = int(random.Random(seed).choice(pool))
        is_bad = dag.descendants_mask(space.graph_parents, culprit)
        verdict = ideal_hunt(make_strategy("bayes", space), is_bad, p, rng)
        results.append((p, verdict.culprit == culprit))
    right = sum(r for _, r in results)
    print(f"{right} of {len(results)} right at a claimed 0.99")
    for lo, hi in BANDS:
        band = [r for p, r in results if lo <= p < hi]
        if band:
            print(f"  p in [{lo}, {min(hi, 1.0)}]: {sum(band)} of {len(band)} ({sum(band) / len(band):.3f})")


if __name__ == "__main__":
    main()
