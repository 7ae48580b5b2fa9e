"""What learning p costs: boots until the top candidate reaches 0.5, 0.9 and the verdict, with p
learnt and with p known, on the bench's seeded hunts (README, "Benchmarks").

    python experiments/p_price.py --detect 0.8 --hunts 100
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from bisectlab import dag
from bisectlab.bench import bench_history, hunt_seed
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy


def hunt(space: SearchSpace, is_bad: np.ndarray, p: float, seed: int,
         known: bool) -> tuple[int, int, int, int]:
    """One hunt: boots to a top candidate of 0.5 and 0.9, boots to the verdict, the culprit named."""
    rng = np.random.default_rng(seed)
    strategy = make_strategy("bayes", space, detect=p if known else None)
    boots, to_half, to_ninety = 0, 0, 0
    while strategy.verdict() is None:
        (commit,) = strategy.propose(Resources()).commits
        strategy.observe(Observation(commit, 1, int(is_bad[commit] and rng.random() < p)))
        boots += 1
        top = float(strategy.posterior.mass.max())
        to_half = to_half or (boots if top >= 0.5 else 0)
        to_ninety = to_ninety or (boots if top >= 0.9 else 0)
    return to_half, to_ninety, boots, strategy.verdict().culprit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--detect", type=float, default=0.8)
    parser.add_argument("--hunts", type=int, default=100)
    args = parser.parse_args()
    h, good, bad = bench_history(args.commits, 0, None)
    space = SearchSpace(h.parents, [good], bad)
    pool = [int(c) for c in space.commits if len(h.parents[c]) == 1]
    for known in (False, True):
        rows = []
        for i in range(args.hunts):
            seed = hunt_seed(0, i)
            culprit = random.Random(seed).choice(pool)
            half, ninety, boots, named = hunt(space, dag.descendants_mask(h.parents, culprit),
                                                 args.detect, seed, known)
            rows.append((half, ninety, boots, named == culprit))
        a = np.array(rows, dtype=float)
        print(f"p={args.detect} {'known' if known else 'learnt'}: to 0.5 {a[:, 0].mean():.1f} boots, "
              f"to 0.9 {a[:, 1].mean():.1f}, to the verdict {a[:, 2].mean():.1f}, "
              f"right {a[:, 3].mean():.3f} ({args.hunts} hunts)")


if __name__ == "__main__":
    main()
