"""What splitting a lane's decision tree costs: one process, its hunts dealt to one tree or to K.

    python experiments/tree_split.py [--trees 2] [--hunts 300] [--rounds 4]

A worker process keeps the decision tree of the hunts it ran (bisectlab.strategies.memo), so K
worker processes keep K trees, each seeing a K-th of the hunts. This runs the bayes campaign of
`bisectlab perf --campaign` (N = 1000, p = 0.5, one worker, a fresh SQLite file) in a fresh
process with every hunt on one tree, then with hunt i on tree i mod K, alternately, round after
round: no second process, so the difference is the split alone, not the cores' contention or the
pool's traffic. Each line gives hunts per second, per CPU second and the choices the strategy
worked out itself (the rest came from its tree), medians over rounds.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from arguments import Parser, count

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
import bisectlab.campaign as campaign
from bisectlab.campaign import CampaignSpec, Lane, cached_history, run_campaign
from bisectlab.store import Store
from bisectlab.strategies.memo import DecisionTree
from bisectlab.summary import generated_recipe

hunts, k = int(sys.argv[1]), int(sys.argv[2])
trees = [{} for _ in range(k)]
dealt = []
run_hunt = campaign.run_hunt

def dealt_run_hunt(task):  # hunt i goes to tree i mod k
    dealt.append(len(dealt) % k)
    return run_hunt(task)

def dealt_tree(lane, strategy):
    kept = trees[dealt[-1]]
    if lane not in kept:
        kept[lane] = DecisionTree(strategy)
    return kept[lane]

campaign.run_hunt, campaign.decision_tree = dealt_run_hunt, dealt_tree
with tempfile.TemporaryDirectory() as folder:
    scenario = Path(folder) / "k.toml"
    scenario.write_text(generated_recipe(1000, 1, None, "rate", 0.5, 0.0))
    good, bad = cached_history(str(scenario)).advertised[0]
    spec = CampaignSpec("split", str(scenario), good, bad, (Lane("bayes", "bayes"),),
                        hunts=hunts, rigs=1, adapters=None)
    with Store(f"sqlite:///{folder}/a.sqlite") as store:
        cpu = time.process_time()
        run = run_campaign(spec, store)
        cpu = time.process_time() - cpu
worked = sum(tree.worked_out for kept in trees for tree in kept.values())
print(json.dumps({"hunts_per_s": run.hunts_per_second, "hunts_per_cpu_s": run.ran / cpu,
                  "worked_out": worked}))
"""


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trees", type=count(2, 64), default=2)
    ap.add_argument("--hunts", type=count(high=100_000), default=300)
    ap.add_argument("--rounds", type=count(high=100), default=4)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bisectlab.perf import ChildFailed, json_child

    runs: dict[int, list[dict[str, float]]] = {1: [], args.trees: []}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    try:
        for r in range(args.rounds):
            for k in (1, args.trees) if r % 2 == 0 else (args.trees, 1):
                runs[k].append(json_child(CHILD, args.hunts, k))
    except ChildFailed as exc:
        sys.exit(f"error: a campaign failed: {exc}")
    for k, rs in runs.items():
        med = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        print(f"{k} tree{'s' if k > 1 else ' '}: {med['hunts_per_s']:6.2f} hunts/s, "
              f"{med['hunts_per_cpu_s']:6.2f} per CPU second, {med['worked_out']:.0f} choices "
              f"worked out ({args.hunts} hunts, one process, median of {args.rounds})")
    ratios = [a["hunts_per_cpu_s"] / b["hunts_per_cpu_s"]
              for a, b in zip(runs[1], runs[args.trees], strict=True)]
    print(f"one tree against {args.trees}: {statistics.median(ratios):.3f}x the hunts per CPU "
          f"second, the median of each round's ({', '.join(f'{x:.2f}' for x in ratios)})")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
