"""What routing a campaign's hunts to workers by their subtree would save over dealing them out.

    python experiments/routing.py [--hunts 150] [--workers 2] [--depth 6] [--by hunts|nodes]

A local pool deals hunts to its workers as they come free, so each worker's decision tree holds
the choices of its own hunts, and a choice that follows results several workers have seen is
worked out by each (experiments/tree_split.py measures what that costs). This runs the hunts of
`bisectlab perf --campaign`'s bayes campaign (N = 1000, p = 0.5, one rig, a bottomless box) once
and counts, from the results each hunt saw, the tree nodes (distinct sequences of results so far:
with one rig, a hunt's next choice depends on nothing else) that one tree holds; the nodes the
workers' trees hold when hunts are dealt in turn; and, for each depth d, when every hunt goes to
the worker that owns its first d results, each such subtree given, at its first hunt, to the
worker whose subtrees the fewest hunts have reached so far (`--by hunts`, close to the pool's
policy: here ties go to the first worker, and a hunt ending before d results counts) or whose
tree holds the fewest nodes (`--by nodes`) (hunts finishing in order, none running at once).
Nodes are the decision work (a posterior update each, and most a proposal), tests the
simulation's and the database's. Routed, a hunt whose first d rounds ran on a worker that does
not own their subtree would run again on the owner from the start: the script counts those
too. Nothing is timed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from arguments import Parser, count

Result = tuple[str, int, bool, bool]  # a test's commit, boots, whether it failed, or was skipped


def result_paths(hunts: int) -> list[list[Result]]:
    """Each hunt's results in order."""
    import tempfile

    from bisectlab.campaign import run_hunt
    from bisectlab.perf import campaign_scenario, campaign_spec

    with tempfile.TemporaryDirectory() as folder:
        spec = campaign_spec(campaign_scenario(folder), hunts)
        (lane,) = spec.lanes
        outcomes = [run_hunt(spec.task(lane, i)) for i in range(hunts)]
    return [[(t["commit_sha"], len(t["boots"]), t["failed"], t["skipped"]) for t in out["tests"]]
            for out in outcomes]


def nodes(paths: list[list[Result]]) -> int:
    """The nodes of one tree holding these hunts: every prefix of their results, the empty one
    (the root) included."""
    return len({tuple(path[:k]) for path in paths for k in range(len(path) + 1)})


def routed(paths: list[list[Result]], workers: int, depth: int, by: str = "hunts"
           ) -> tuple[list[list[list[Result]]], int, int]:
    """Each worker's hunts when a subtree of depth ``depth`` goes, at its first hunt, to the
    worker whose subtrees the fewest hunts have reached so far (``by`` "hunts", close to the
    pool's policy) or whose tree holds the fewest nodes (``by`` "nodes": its decision work); how
    many subtrees; how many hunts the pool's turn would have started on another worker."""
    owner: dict[tuple[Result, ...], int] = {}
    held: list[set[tuple[Result, ...]]] = [set() for _ in range(workers)]
    mine: list[list[list[Result]]] = [[] for _ in range(workers)]
    weight = (lambda w: len(mine[w])) if by == "hunts" else (lambda w: len(held[w]))
    moved = 0
    for i, path in enumerate(paths):
        subtree = tuple(path[:depth])
        if subtree not in owner:
            owner[subtree] = min(range(workers), key=weight)
        w = owner[subtree]
        moved += w != i % workers
        held[w].update(tuple(path[:k]) for k in range(len(path) + 1))
        mine[w].append(path)
    return mine, len(owner), moved


def split(parts: Iterable[list[list[Result]]], one: int) -> str:
    """The nodes the workers' trees hold against one tree's ``one`` (every node is a posterior
    update and most a proposal: the decision work), their tests, and the busiest worker's share
    of each."""
    parts = list(parts)
    held, tests = [nodes(p) for p in parts], [sum(map(len, p)) for p in parts]
    return (f"{sum(held)} nodes (+{sum(held) - one} over one tree; " + "/".join(map(str, held))
            + f", the busiest {max(held) / sum(held):.1%}), tests " + "/".join(map(str, tests))
            + f" ({max(tests) / sum(tests):.1%})")


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hunts", type=count(2, 100_000), default=150)
    ap.add_argument("--workers", type=count(2, 64), default=2)
    ap.add_argument("--depth", type=count(1, 64), default=6)
    ap.add_argument("--by", choices=("hunts", "nodes"), default="hunts")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    paths = result_paths(args.hunts)
    one = nodes(paths)
    k = args.workers
    print(f"{args.hunts} hunts, {sum(map(len, paths))} tests: one tree holds {one} nodes")
    print(f"dealt in turn to {k} workers: {split((paths[w::k] for w in range(k)), one)}")
    for depth in range(1, args.depth + 1):
        mine, subtrees, moved = routed(paths, k, depth, args.by)
        print(f"routed by the first {depth} result{'s' if depth > 1 else ''}: {subtrees} "
              f"subtrees, {split(mine, one)}, {moved} hunts started on another worker")


if __name__ == "__main__":
    main()
