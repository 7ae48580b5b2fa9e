"""Campaign throughput of an older commit's code against this checkout's, side by side.

    python experiments/campaign_ab.py [REV ...] [--hunts 150] [--rounds 3] [--workers 1]

A bayes campaign (N = 1000, p = 0.5, one rig, a bottomless box, one worker or --workers local
worker processes, a fresh SQLite file: `bisectlab perf --campaign`'s) runs in a fresh process on
each REV's bisectlab (extracted with git archive) and on this one, in turn, every other round in
the reverse order; each line gives hunts per second, hunts per CPU second (the pool's workers'
included) and the database's milliseconds per hunt, medians over rounds; then this checkout's
hunts per second over each REV's, the median of the rounds' own ratios; whether every side ran
the same hunts, test for test (a digest of every test and verdict), and how many tests followed
results another hunt had already seen (what a shared decision tree can answer). Against a REV
before a7be3d4, one worker's clock here counts the release of its decision trees and REV's does
not: about 0.8% of a 150-hunt run, against this checkout (experiments/tree_release.py).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from arguments import Parser, count

# one campaign through the public API, which REV's code has too; prints one JSON line
CHILD = r"""
import json, resource, sys, tempfile, time
from pathlib import Path
from bisectlab.campaign import CampaignSpec, Lane, cached_history, local_executor, run_campaign
from bisectlab.store import Store
from bisectlab.summary import generated_recipe
with tempfile.TemporaryDirectory() as folder:
    scenario = Path(folder) / "k.toml"
    scenario.write_text(generated_recipe(1000, 1, None, "rate", 0.5, 0.0))
    good, bad = cached_history(str(scenario)).advertised[0]
    spec = CampaignSpec("ab", str(scenario), good, bad, (Lane("bayes", "bayes"),),
                        hunts=int(sys.argv[1]), rigs=1, adapters=None)
    with Store(f"sqlite:///{folder}/a.sqlite") as store:
        def cpu_now():  # this process's and its finished children's (the pool's, once shut down)
            return sum(u.ru_utime + u.ru_stime for u in (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN)))
        executor, queue = local_executor(int(sys.argv[2]))
        cpu = cpu_now()
        run = run_campaign(spec, store, executor, queue)
        executor.shutdown()
        cpu = cpu_now() - cpu
        import hashlib, sqlite3
        with sqlite3.connect(f"{folder}/a.sqlite") as con:
            tests = con.execute(
                "SELECT h.campaign_index, t.seq, t.commit_sha, t.rig, t.boots, t.failures, "
                "t.installed, t.lab_minutes FROM tests t JOIN hunts h ON h.id = t.hunt_id "
                "ORDER BY h.campaign_index, t.seq").fetchall()
            verdicts = con.execute("SELECT campaign_index, status, culprit_sha, confidence, "
                                   "lab_minutes FROM hunts ORDER BY campaign_index").fetchall()
digest = hashlib.sha256(json.dumps([tests, verdicts]).encode()).hexdigest()[:16]
so_far, points = {}, set()  # a hunt's results so far, before each of its tests
for index, _, sha, _, boots, failures, _, _ in tests:
    before = so_far.get(index, ())
    points.add(before)
    so_far[index] = before + ((sha, boots, failures),)
print(json.dumps({"hunts_per_s": run.hunts_per_second, "hunts_per_cpu_s": run.ran / cpu,
                  "db_ms_per_hunt": 1e3 * run.db_seconds / run.ran, "digest": digest,
                  "tests": len(tests), "decision_points": len(points)}))
"""


FIGURES = ("hunts_per_s", "hunts_per_cpu_s", "db_ms_per_hunt")


def measure(source: str | None, hunts: int, workers: int, label: str) -> dict[str, float]:
    """One campaign in a fresh process on the code in ``source`` (None: this checkout's); if it
    fails, its last line of error and exit 1."""
    from bisectlab.perf import json_child

    try:
        return json_child(CHILD, hunts, workers, source=source)
    except RuntimeError as exc:
        sys.exit(f"error: the campaign on {label}'s code failed: {exc}")


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("revs", nargs="*", default=["93f5414"], metavar="REV")
    ap.add_argument("--hunts", type=count(), default=150)
    ap.add_argument("--rounds", type=count(high=100), default=3)
    ap.add_argument("--workers", type=count(high=64), default=1)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bisectlab.perf import baseline_source

    with tempfile.TemporaryDirectory(prefix="bisectlab-ab-") as folder:
        sources: dict[str, str | None] = {}
        for rev in args.revs:
            sources[rev] = baseline_source(rev, str(Path(folder, f"{len(sources)}")))
            if sources[rev] is None:
                print(f"error: cannot extract {rev} from this checkout", file=sys.stderr)
                sys.exit(2)
        sources["now"] = None
        runs: dict[str, list[dict[str, float]]] = {label: [] for label in sources}
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        for r in range(args.rounds):  # every other round in the reverse order
            for label in list(sources) if r % 2 == 0 else list(sources)[::-1]:
                runs[label].append(measure(sources[label], args.hunts, args.workers, label))
    for label, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in FIGURES}
        print(f"{label:>8}: {med['hunts_per_s']:6.2f} hunts/s, {med['hunts_per_cpu_s']:6.2f} per "
              f"CPU second, database {med['db_ms_per_hunt']:.1f} ms per hunt "
              f"(bayes, N = 1000, p = 0.5, {args.hunts} hunts, {args.workers} "
              f"worker{'s' if args.workers > 1 else ''}, median of {args.rounds})")
    for rev in args.revs:
        ratios = [now["hunts_per_s"] / then["hunts_per_s"]
                  for now, then in zip(runs["now"], runs[rev], strict=True)]
        print(f"now / {rev}: {statistics.median(ratios):.3f}x hunts/s, the median of each "
              f"round's ({', '.join(f'{x:.2f}' for x in ratios)})")
    digests = {r["digest"] for rs in runs.values() for r in rs}
    last = runs["now"][-1]
    print(f"hunts: {last['tests']} tests, "
          f"{'identical on both sides, test for test' if len(digests) == 1 else 'DIFFER'} "
          f"(digests {', '.join(sorted(digests))}); {last['decision_points']} distinct results "
          f"so far before a test ({1 - last['decision_points'] / last['tests']:.0%} of the tests "
          "follow results another hunt had already seen)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
