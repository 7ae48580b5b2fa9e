"""Where a campaign's lab time goes: per strategy, the mean lab days spent testing the true
culprit, testing its parents (the verdict's confirmation, which the confidence rule sets) and
testing everything else (the search), with the boots at the parents, beside the information
bound on boots for the range at a given p (README, "Lab time"). The phases add up each test's
rig time: with one rig they make up the lab days, with several working side by side more.

    python experiments/lab_time_phases.py lab.sqlite --campaign 1 --hunts 200 --detect 0.05

``--against LANE`` (repeatable) adds each lane's lab days against that lane's, hunt for hunt: the
ratio of the means over the hunts both ran (the same campaign index, so the same seed) and the
mean paired difference with its standard error.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace
from pathlib import Path

from bisectlab.campaign import lane_rows, spec_from_dict
from bisectlab.errors import BisectlabError
from bisectlab.history import load_history
from bisectlab.posterior import lower_bound_tests
from bisectlab.store import Store
from bisectlab.strategies import SearchSpace

from arguments import Parser, count, fail, rate

MINUTES_PER_DAY = 24 * 60


def phases(store: Store, hunt: dict, parents_of: dict[str, set[str]]) -> dict[str, float]:
    """One hunt's lab days at the culprit, at its parents and elsewhere; its boots at the parents."""
    truth = hunt["true_culprit_sha"]
    parents = parents_of.setdefault(truth, set())
    out = {"culprit": 0.0, "parents": 0.0, "search": 0.0, "parent boots": 0.0}
    for test in store.tests(hunt["id"]):
        where = ("culprit" if test["commit_sha"] == truth else
                 "parents" if test["commit_sha"] in parents else "search")
        out[where] += test["lab_minutes"] / MINUTES_PER_DAY
        if where == "parents":
            out["parent boots"] += test["boots"]
    return out


def paired(rows: list[dict], base: list[dict]) -> str:
    """Lab days of ``rows`` against ``base`` over the campaign indexes both hold: the ratio of
    the means, the mean difference, its standard error and the number of pairs ('-' for what
    cannot be had: a ratio to no lab time, an error of one pair)."""
    days = {r["campaign_index"]: r["lab_minutes"] / MINUTES_PER_DAY for r in rows}
    base_days = {r["campaign_index"]: r["lab_minutes"] / MINUTES_PER_DAY for r in base}
    shared = sorted(days.keys() & base_days.keys())
    if not shared:
        return "-  (0 pairs)"
    diff = [days[i] - base_days[i] for i in shared]
    base_mean = statistics.mean(base_days[i] for i in shared)
    ratio = (f"{statistics.mean(days[i] for i in shared) / base_mean:>6.3f}x" if base_mean > 0
             else "     -")
    error = f"{statistics.stdev(diff) / len(diff) ** 0.5:.3f}" if len(diff) > 1 else "-"
    return f"{ratio}  {statistics.mean(diff):+.3f} +- {error}  ({len(shared)} pairs)"


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", help="the campaign's SQLite file")
    parser.add_argument("--campaign", type=count(), default=1)
    parser.add_argument("--hunts", type=count(), default=None,
                        help="the first H hunts of each lane (default: the campaign's count)")
    parser.add_argument("--detect", type=rate, default=0.05,
                        help="p for the information bound (the scenario's bug shows ~1 boot in 20)")
    parser.add_argument("--against", action="append", default=[], metavar="LANE",
                        help="also each lane's lab days against this lane's, hunt for hunt "
                             "(its label as the campaign table prints it; repeatable)")
    args = parser.parse_args()
    if not Path(args.db).is_file():
        fail(f"no campaign database at {args.db}")
    try:
        report(args)
    except BisectlabError as exc:  # not a bisectlab database, and the like
        fail(str(exc))


def report(args: argparse.Namespace) -> None:
    """Print the phases of each lane of the campaign, and the pairings asked for."""
    with Store(f"sqlite:///{args.db}") as store:
        campaign = next((c for c in store.campaigns() if c["id"] == args.campaign), None)
        if campaign is None:
            fail(f"no campaign {args.campaign} in {args.db}")
        spec = spec_from_dict(campaign["spec"])
        h = load_history(spec.history)
        good, bad = h.resolve(spec.good), h.resolve(spec.bad)
        space = SearchSpace(h.parents, [good], bad)
        parents_of = {h.shas[c]: {h.shas[p] for p in h.parents[c]} for c in range(len(h))
                      if h.parents[c]}
        bound = lower_bound_tests(len(space), args.detect)
        spec = replace(spec, hunts=args.hunts or spec.hunts)
        by_lane = lane_rows(spec, store.campaign_hunts(args.campaign))
        missing = [label for label in args.against if label not in by_lane]
        if missing:
            fail(f"no lane {missing[0]!r} in campaign {args.campaign} (lanes: "
                 f"{', '.join(by_lane)})")
        print(f"campaign {args.campaign}: {len(space)} candidates; information bound at p = "
              f"{args.detect:g}: {bound:.0f} boots (delta 0.01)")
        print(f"  {'strategy':<34} {'hunts':>5}  {'lab days':>8}  {'culprit':>7}  {'parents':>7}"
              f"  {'search':>6}  {'boots at parents':>16}  {'boots / bound':>13}")
        for lane, rows in zip(spec.lanes, by_lane.values(), strict=True):
            if not rows:
                continue
            split = [phases(store, r, parents_of) for r in rows]
            mean = {k: statistics.mean(s[k] for s in split) for k in split[0]}
            days = statistics.mean(r["lab_minutes"] for r in rows) / MINUTES_PER_DAY
            boots = statistics.mean(r["boots"] for r in rows)
            print(f"  {lane.label:<34} {len(rows):>5}  {days:>8.3f}  {mean['culprit']:>7.3f}  "
                  f"{mean['parents']:>7.3f}  {mean['search']:>6.3f}  {mean['parent boots']:>16.1f}"
                  f"  {boots / bound:>13.2f}")
        for label in args.against:
            print(f"against {label}, hunt for hunt: ratio of mean lab days, mean difference "
                  f"(days) +- its standard error")
            for lane, rows in by_lane.items():
                if rows and lane != label:
                    print(f"  {lane:<34} {paired(rows, by_lane[label])}")


if __name__ == "__main__":
    main()
