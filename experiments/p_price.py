"""What learning p costs: boots until the top candidate reaches 0.5, 0.9 and the verdict, with p
learnt and with p known, on the bench's seeded hunts (README, "Benchmarks"). Also what the last mile
had to rule out: the mass left at the verdict on the culprit's parents and on the older commits
behind them.

    python experiments/p_price.py --detect 0.8 --hunts 100
"""

from __future__ import annotations

import random

import numpy as np

from bisectlab import dag
from bisectlab.bench import bench_space, culprit_pool, hunt_seed, ideal_hunt
from bisectlab.strategies import SearchSpace, Strategy, make_strategy

from arguments import Parser, commits, count, rate


def boots_to(space: SearchSpace, parents: np.ndarray, culprit: int, is_bad: np.ndarray, p: float,
             seed: int, known: bool) -> tuple[float, ...]:
    """One hunt: boots until a top candidate of 0.5 and of 0.9 and to the verdict, whether it was
    right, and the mass left at the verdict on the culprit's parents and on older commits."""
    reached: dict[float, int] = {}
    older = np.zeros(len(space), dtype=bool)
    for q in parents:
        older |= space.ancestor_mask(space.local[q])
    at_parents = np.isin(space.commits, parents)
    older &= ~at_parents
    boots = 0

    def note(strategy: Strategy) -> None:
        nonlocal boots
        boots += 1
        top = float(strategy.belief().max())
        for level in (0.5, 0.9):
            if top >= level:
                reached.setdefault(level, boots)

    strategy = make_strategy("bayes", space, detect=p if known else None)
    verdict = ideal_hunt(strategy, is_bad, p, np.random.default_rng(seed), note)
    mass = strategy.belief()
    return (reached.get(0.5, 0), reached.get(0.9, 0), boots, verdict.culprit == culprit,
            float(mass[at_parents].sum()), float(mass[older].sum()))


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=commits, default=1000)
    parser.add_argument("--detect", type=rate, default=0.8)
    parser.add_argument("--hunts", type=count(), default=100)
    args = parser.parse_args()
    space = bench_space(args.commits, 0, None)
    parents_of = space.graph_parents
    pool = culprit_pool(args.commits, 0, None)
    for known in (False, True):
        rows = []
        for i in range(args.hunts):
            seed = hunt_seed(0, i)
            culprit = int(random.Random(seed).choice(pool))
            parents = np.array([q for q in parents_of[culprit] if q in space.local])
            rows.append(boots_to(space, parents, culprit, dag.descendants_mask(parents_of, culprit),
                                 args.detect, seed, known))
        a = np.array(rows, dtype=float)
        print(f"p={args.detect} {'known' if known else 'learnt'}: to 0.5 {a[:, 0].mean():.1f} boots, "
              f"to 0.9 {a[:, 1].mean():.1f}, to the verdict {a[:, 2].mean():.1f}, "
              f"right {a[:, 3].mean():.3f} ({args.hunts} hunts); left at the verdict "
              f"{a[:, 4].mean():.4f} on the culprit's parents, {a[:, 5].mean():.4f} on older commits")


if __name__ == "__main__":
    main()
