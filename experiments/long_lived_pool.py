"""2-worker campaigns in one long-lived process, with the pool's workers freezing what they
inherit (as they do) and without.

    python experiments/long_lived_pool.py [--hunts 150] [--rounds 8]

A user who runs campaigns one after another from Python (a notebook, a sweep) forks each pool
from a process that holds everything the earlier campaigns left. A worker whose collections
walked those objects would copy every page they sit on, and run a long full collection, in
each campaign. Each round runs a 1-worker campaign, a 2-worker one as the pool runs it, and a
2-worker one whose workers skip their gc.freeze, all in this one process, every other round in
the reverse order (bayes, N = 1000, p = 0.5, one rig, a bottomless box, a fresh SQLite file
each: `bisectlab perf --campaign`'s). It prints each one's hunts per second (medians) and the
medians of the rounds' ratios.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

from arguments import Parser, count

SIDES = ("1 worker", "2 workers", "2 workers, no freeze")


def campaign(scenario: Path, db: Path, hunts: int, workers: int) -> float:
    """Hunts per second of one campaign run in this process."""
    from bisectlab.campaign import local_executor, run_campaign
    from bisectlab.perf import campaign_spec
    from bisectlab.store import Store

    with Store(f"sqlite:///{db}") as store:
        executor, queue = local_executor(workers)
        start = time.perf_counter()
        try:
            run_campaign(campaign_spec(scenario, hunts), store, executor, queue)
        finally:
            executor.shutdown()
        return hunts / (time.perf_counter() - start)


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hunts", type=count(), default=150)
    ap.add_argument("--rounds", type=count(high=100), default=8)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import bisectlab.pool as pool
    from bisectlab.perf import campaign_scenario

    freezing, not_freezing = pool.gc, types.SimpleNamespace(freeze=lambda: None)
    runs: dict[str, list[float]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="bisectlab-long-lived-") as folder:
        scenario = campaign_scenario(folder)
        for r in range(args.rounds):
            for i, side in enumerate(SIDES if r % 2 == 0 else SIDES[::-1]):
                pool.gc = not_freezing if side.endswith("no freeze") else freezing
                runs[side].append(campaign(scenario, Path(folder, f"r{r}s{i}.sqlite"),
                                           args.hunts, 2 if side.startswith("2") else 1))
        pool.gc = freezing
    for side, rs in runs.items():
        print(f"{side:>20}: {statistics.median(rs):6.2f} hunts/s "
              f"({', '.join(f'{x:.0f}' for x in rs)}; {args.hunts} hunts, median of {args.rounds})")

    def ratio(a: str, b: str) -> str:
        return f"{statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True)):.3f}x"
    print(f"freeze / no freeze on 2 workers: {ratio('2 workers', '2 workers, no freeze')}; "
          f"speed-up over 1 worker: {ratio('2 workers', '1 worker')} with the freeze, "
          f"{ratio('2 workers, no freeze', '1 worker')} without (medians of the rounds' ratios)")


if __name__ == "__main__":
    main()
