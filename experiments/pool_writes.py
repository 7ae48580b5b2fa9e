"""What writing the hunts costs a campaign's speed-up: 1 worker against a local pool, with each
finished hunt written as campaigns write it, and with the writes skipped.

    python experiments/pool_writes.py [--hunts 150] [--rounds 8] [--workers 2]

Each round runs `bisectlab perf --campaign`'s campaign (bayes, N = 1000, p = 0.5, one rig, a
bottomless box, a fresh SQLite file) with one worker and with --workers local workers, each in a
fresh process, first as it is and then with every hunt's write skipped (the hunts are claimed
and run, their rows left running: a measurement, not a campaign to keep), every other round in
the reverse order. Printed per round and as medians: hunts per second and the speed-up, each
way. The gap between the two speed-ups is what the pool loses to its writes beyond what one
worker does (one worker writes as much, with nobody to wait for).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from arguments import pool_arguments

# perf's campaign (one_campaign); with "skip", its hunts run and are not written; one JSON line
CHILD = r"""
import json, sys, tempfile
import bisectlab.campaign as campaign
from bisectlab.perf import campaign_scenario, one_campaign
from bisectlab.store import Store

hunts, workers, writes = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
if writes == "skip":  # the workers inherit it at the fork; one worker calls it inline
    campaign._write = lambda store, finished, claimed_by: [
        (hunt_id, campaign.Recorded(0.0)) for hunt_id, _ in finished]
with tempfile.TemporaryDirectory() as folder:
    db = f"{folder}/a.sqlite"
    got = one_campaign(str(campaign_scenario(folder)), db, hunts, workers)
    with Store(f"sqlite:///{db}") as store:
        finished = sum(h["status"] != "running" for h in store.hunts())
print(json.dumps({"hunts_per_s": got["hunts_per_s"], "ran": got["ran"], "finished": finished}))
"""


def measure(hunts: int, workers: int, writes: str) -> float:
    """Hunts per second of one campaign in a fresh process on this checkout's code; if it
    fails, or its hunts were not all written (or, skipped, some were), one line and exit 1."""
    from bisectlab.perf import json_child

    what = f"the campaign with {workers} worker(s), writes {writes}"
    try:
        got = json_child(CHILD, hunts, workers, writes)
    except RuntimeError as exc:
        sys.exit(f"error: {what}, failed: {exc}")
    if got["ran"] != hunts or got["finished"] != (hunts if writes == "written" else 0):
        sys.exit(f"error: {what}: {got['finished']} of {got['ran']} hunts written")
    return got["hunts_per_s"]


def main() -> None:
    args = pool_arguments(__doc__.split("\n\n")[0], rounds=8)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    ways = ("written", "skip")
    rates: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    for r in range(args.rounds):
        for way in ways if r % 2 == 0 else ways[::-1]:
            plan = (1, args.workers) if r % 2 == 0 else (args.workers, 1)
            got = {w: measure(args.hunts, w, way) for w in plan}
            rates[way].append((got[1], got[args.workers]))
        last = {way: rates[way][-1] for way in ways}
        print(f"  round {r + 1}: " + "; ".join(
            f"{way}: {one:.1f} and {many:.1f} hunts/s, {many / one:.2f}x"
            for way, (one, many) in last.items()), flush=True)
    print(f"bayes, N = 1000, p = 0.5, {args.hunts} hunts, 1 and {args.workers} workers, "
          f"medians of {args.rounds} rounds:")
    for way in ways:
        ones, manys = zip(*rates[way], strict=True)
        label = "hunts written" if way == "written" else "writes skipped"
        print(f"  {label + ':':16s} {statistics.median(ones):6.1f} and "
              f"{statistics.median(manys):6.1f} hunts/s, speed-up "
              f"{statistics.median(m / o for o, m in rates[way]):.3f}x")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
