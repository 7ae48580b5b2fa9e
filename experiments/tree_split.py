"""What splitting a lane's decision tree costs: a campaign's hunts on one tree or on K.

    python experiments/tree_split.py [--trees 2] [--hunts 150] [--rounds 4]

A worker process keeps the decision tree of the hunts it ran (bisectlab.strategies.memo), so K
worker processes keep K trees, each seeing a K-th of the hunts. This runs the hunts of `bisectlab
perf --campaign`'s bayes campaign (N = 1000, p = 0.5, one rig, a bottomless box), simulation and
decisions only (no database), in one fresh process, then in K fresh processes one after the
other, process j running hunts j, j + K, ..., as K workers would share them; alternately, round
after round. Nothing runs side by side, so the difference is the split alone, not the cores'
contention or the pool's traffic. Each line gives hunts per CPU second (each process's first
hunt's set-up left out), the choices the strategy worked out itself (the rest came from its tree)
and the tests, medians over rounds; then whether the hunts were the same, test for test.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from arguments import Parser, count

CHILD = r"""
import hashlib, json, sys, tempfile, time
from bisectlab.campaign import _trees, drop_trees, run_hunt
from bisectlab.perf import campaign_scenario, campaign_spec

hunts, k, share = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
with tempfile.TemporaryDirectory() as folder:
    spec = campaign_spec(campaign_scenario(folder), hunts)
    (lane,) = spec.lanes
    indices = range(share, hunts, k)
    tasks = [spec.task(lane, i) for i in indices]
    run_hunt(tasks[0])  # the first hunt's set-up (search space, lab) outside the clock...
    drop_trees("")      # ...and its tree forgotten: the clock starts at an empty tree
    cpu = time.process_time()
    outcomes = [run_hunt(task) for task in tasks]
    cpu = time.process_time() - cpu
digests = {i: hashlib.sha256(json.dumps(out, sort_keys=True, default=str).encode()).hexdigest()
           for i, out in zip(indices, outcomes)}
print(json.dumps({"cpu": cpu, "hunts": len(tasks), "tests": sum(len(o["tests"]) for o in outcomes),
                  "worked_out": sum(tree.worked_out for tree in _trees.values()),
                  "digests": digests}))
"""


def split_run(hunts: int, k: int) -> dict[str, float]:
    """The campaign's hunts on k trees: k fresh processes one after the other, process j running
    hunts j, j + k, ..., as k workers would share them; their CPU, hunts and choices summed."""
    from bisectlab.perf import json_child

    parts = [json_child(CHILD, hunts, k, j) for j in range(k)]
    digests = {i: d for part in parts for i, d in part.pop("digests").items()}
    summed = {key: sum(part[key] for part in parts) for key in parts[0]}
    summed["digest"] = hash(tuple(sorted(digests.items(), key=lambda item: int(item[0]))))
    return summed


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", type=count(2, 64), default=2)
    ap.add_argument("--hunts", type=count(2, 100_000), default=150)
    ap.add_argument("--rounds", type=count(high=100), default=4)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bisectlab.perf import ChildFailed

    runs: dict[int, list[dict[str, float]]] = {1: [], args.trees: []}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        for r in range(args.rounds):
            for k in (1, args.trees) if r % 2 == 0 else (args.trees, 1):
                runs[k].append(split_run(args.hunts, k))
    except ChildFailed as exc:
        sys.exit(f"error: a campaign failed: {exc}")
    for k, rs in runs.items():
        per_cpu = statistics.median(r["hunts"] / r["cpu"] for r in rs)
        print(f"{k} tree{'s' if k > 1 else ' '}: {per_cpu:6.2f} hunts per CPU second, "
              f"{rs[0]['worked_out']:.0f} choices worked out, {rs[0]['tests']:.0f} tests "
              f"({args.hunts} hunts, median of {args.rounds})")
    same = len({r["digest"] for rs in runs.values() for r in rs}) == 1
    print(f"hunts: {'the same on both sides, test for test' if same else 'DIFFER'}")
    ratios = [a["hunts"] / a["cpu"] / (b["hunts"] / b["cpu"])
              for a, b in zip(runs[1], runs[args.trees], strict=True)]
    print(f"one tree against {args.trees}: {statistics.median(ratios):.3f}x the hunts per CPU "
          f"second, the median of each round's ({', '.join(f'{x:.2f}' for x in ratios)})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
