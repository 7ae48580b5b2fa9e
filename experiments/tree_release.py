"""How much of one worker's campaign the release of its decision trees takes: the seconds
`campaign.drop_trees` runs at the end of `bisectlab perf --campaign`'s campaign (bayes,
N = 1000, p = 0.5, one rig, a bottomless box, a fresh SQLite file), against the run's wall time.

    python experiments/tree_release.py [--hunts 150] [--rounds 5]

Each round is one campaign in a fresh process on this checkout's code. Since a7be3d4 the run's
clock counts the release (a pool's has counted its workers' exit, which releases theirs): this
is what that adds to one worker's wall time, and takes from its hunts per second.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

from arguments import Parser, count

# perf's campaign (one_campaign) with one worker, drop_trees timed; one JSON line
CHILD = r"""
import json, sys, tempfile, time
import bisectlab.campaign as campaign
from bisectlab.perf import campaign_scenario, one_campaign

released, release = [], campaign.drop_trees


def timed(token):
    start = time.perf_counter()
    release(token)
    released.append(time.perf_counter() - start)


campaign.drop_trees = timed
with tempfile.TemporaryDirectory() as folder:
    got = one_campaign(str(campaign_scenario(folder)), f"{folder}/a.sqlite", int(sys.argv[1]), 1)
print(json.dumps({"release_s": sum(released), "wall_s": got["ran"] / got["hunts_per_s"]}))
"""


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hunts", type=count(high=100_000), default=150)
    ap.add_argument("--rounds", type=count(high=100), default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bisectlab.perf import json_child

    runs = []
    for r in range(args.rounds):
        try:
            got = json_child(CHILD, args.hunts)
        except RuntimeError as exc:
            sys.exit(f"error: round {r + 1} failed: {exc}")
        runs.append(got)
        print(f"  round {r + 1}: release {1e3 * got['release_s']:.1f} ms of a "
              f"{got['wall_s']:.2f} s run ({got['release_s'] / got['wall_s']:.2%})", flush=True)
    print(f"bayes, N = 1000, p = 0.5, {args.hunts} hunts, 1 worker, medians of {args.rounds}: "
          f"release {1e3 * statistics.median(x['release_s'] for x in runs):.1f} ms, "
          f"{statistics.median(x['release_s'] / x['wall_s'] for x in runs):.2%} of the run")


if __name__ == "__main__":
    main()
