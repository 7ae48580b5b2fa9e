"""When a campaign's workers begin and end hunting: one worker against a local pool's.

    python experiments/pool_timeline.py [--hunts 150] [--rounds 6] [--workers 2]

Each round runs `bisectlab perf --campaign`'s campaign (bayes, N = 1000, p = 0.5, one rig, a
bottomless box, a fresh SQLite file) with one worker and then with --workers local workers, each
in a fresh process, every other round in the reverse order. Every hunt a process runs (passed
hunts included) is timed on the system's monotonic clock from the call of run_campaign. Printed,
medians over rounds, in milliseconds: when each process's first hunt began, how far apart the
processes' last hunts ended, and how long run_campaign took to return after the last one: the
costs a campaign pays once, which weigh on a short one.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

from arguments import pool_arguments

# one campaign, its hunts' times written by every process that runs one; prints one JSON line
CHILD = r"""
import glob, json, os, sys, tempfile, time
import bisectlab.campaign as campaign
from bisectlab.campaign import local_executor, run_campaign
from bisectlab.perf import campaign_scenario, campaign_spec
from bisectlab.store import Store

real_run_hunt = campaign.run_hunt

def timed_run_hunt(task, watch=None):  # the workers inherit it at the fork
    began = time.monotonic()
    try:
        return real_run_hunt(task, watch)
    finally:
        ended = time.monotonic()
        with open(os.path.join(os.environ["TIMELINE"], f"{os.getpid()}.txt"), "a") as out:
            out.write(f"{began} {ended}\n")

campaign.run_hunt = timed_run_hunt
with tempfile.TemporaryDirectory() as folder:
    os.environ["TIMELINE"] = folder
    spec = campaign_spec(campaign_scenario(folder), int(sys.argv[1]))
    with Store(f"sqlite:///{folder}/a.sqlite") as store:
        executor, queue = local_executor(int(sys.argv[2]))
        start = time.monotonic()
        run = run_campaign(spec, store, executor, queue)
        returned = time.monotonic()
        executor.shutdown()
    hunts = [[tuple(map(float, line.split())) for line in open(f)]
             for f in glob.glob(os.path.join(folder, "*.txt"))]
first = sorted(1e3 * (min(b for b, _ in h) - start) for h in hunts)
last = sorted(max(e for _, e in h) for h in hunts)
print(json.dumps({"first_ms": first, "last_gap_ms": 1e3 * (last[-1] - last[0]),
                  "return_ms": 1e3 * (returned - last[-1]), "ran": run.ran,
                  "wall_ms": 1e3 * (returned - start)}))
"""


def measure(hunts: int, workers: int) -> dict:
    """One campaign in a fresh process on this checkout's code; if it fails, its last line of
    error and exit 1."""
    from bisectlab.perf import json_child

    try:
        return json_child(CHILD, hunts, workers)
    except RuntimeError as exc:
        sys.exit(f"error: the campaign with {workers} worker(s) failed: {exc}")


def report(workers: int, runs: list[dict]) -> str:
    """One line: the medians of a worker count's rounds."""
    firsts = [statistics.median(r["first_ms"][i] for r in runs)
              for i in range(min(len(r["first_ms"]) for r in runs))]
    med = {key: statistics.median(r[key] for r in runs)
           for key in ("last_gap_ms", "return_ms", "wall_ms")}
    line = (f"{workers} worker{'s' if workers > 1 else ''}: first hunt began at "
            f"{', '.join(f'{x:.0f}' for x in firsts)} ms")
    if workers > 1:
        line += f"; the last hunts ended {med['last_gap_ms']:.0f} ms apart"
    return (line + f"; run_campaign returned {med['return_ms']:.0f} ms after the last ended, "
            f"{med['wall_ms']:.0f} ms in all")


def main() -> None:
    args = pool_arguments(__doc__.split("\n\n")[0], rounds=6)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    plan = (1, args.workers)
    runs: dict[int, list[dict]] = {w: [] for w in plan}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    for r in range(args.rounds):
        for w in plan if r % 2 == 0 else plan[::-1]:
            runs[w].append(measure(args.hunts, w))
    print(f"bayes, N = 1000, p = 0.5, {args.hunts} hunts, medians of {args.rounds} rounds:")
    for w in plan:
        print("  " + report(w, runs[w]))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
