"""What `bisectlab history` shows: summaries, git-log style listings, generated recipes."""

from __future__ import annotations

import random
from typing import Any

from bisectlab import dag
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.history import History, toml_recipe


def summarise(h: History) -> dict[str, Any]:
    """Commits, merges, tags, feature toggles and advertised ranges (with true culprits)."""
    order = sorted(h.tags.items(), key=lambda kv: (kv[1], kv[0]))
    ranges = []
    culprits = [r.culprit for r in h.ranges] if h.bug is not None else [None] * len(h.advertised)
    for (good_ref, bad_ref), culprit in zip(h.advertised, culprits, strict=True):
        good, bad = h.resolve(good_ref), h.resolve(bad_ref)
        ranges.append({
            "good": good_ref, "bad": bad_ref,
            "candidates": len(dag.candidates(h.parents, bad, [good])),
            "culprit": h.shas[culprit] if culprit is not None else None,
            "culprit_subject": h.subjects[culprit] if culprit is not None else None,
            "culprit_upstream": h.upstream.get(culprit, "") if culprit is not None else "",
        })
    return {
        "name": h.name,
        "description": h.description,
        "source": h.source,
        "seed": h.seed,
        "commits": len(h),
        "merges": sum(1 for ps in h.parents if len(ps) > 1),
        "roots": sum(1 for ps in h.parents if not ps),
        "heads": sum(1 for kids in h.children if not kids),
        "bug": h.bug.model if h.bug else None,
        "features": h.features,
        "tags": [{"name": t, "sha": h.shas[c], "subject": h.subjects[c]} for t, c in order],
        "toggles": [
            {"sha": h.shas[c], "subject": h.subjects[c], "toggles": h.toggles[c],
             "upstream": h.upstream.get(c, "")}
            for c in sorted(h.toggles)
        ],
        "ranges": ranges,
    }


def log_lines(h: History, limit: int, graph: bool = False) -> list[str]:
    """The newest ``limit`` commits, newest first, optionally with an ASCII graph."""
    lines: list[str] = []
    lanes: list[int] = []
    for c in range(len(h) - 1, max(len(h) - 1 - limit, -1), -1):
        tags = h.tags_at.get(c)
        deco = f" (tag: {', '.join(sorted(tags))})" if tags else ""
        text = f"{h.shas[c][:12]}{deco} {h.subjects[c]}"
        if not graph:
            lines.append(text)
            continue
        lanes, rows = _graph_step(lanes, c, h.parents[c])
        lines.append(f"{rows[0]} {text}")
        lines.extend(rows[1:])
    return lines


def _graph_step(lanes: list[int], c: int, parents: tuple[int, ...]) -> tuple[list[int], list[str]]:
    """Advance the lanes past commit c; the first row carries its '*', then merge/fork rows."""
    if c not in lanes:
        lanes = [*lanes, c]
    col = lanes.index(c)
    row = " ".join("*" if i == col else "|" for i in range(len(lanes)))
    rows = [row]
    joined = [i for i, x in enumerate(lanes) if x == c and i != col]
    new = list(lanes)
    for i in reversed(joined):
        del new[i]
    if joined:
        rows.append(" ".join("|" for _ in range(col + 1)) + "/" * len(joined))
    if parents:
        new[col] = parents[0]
        for p in parents[1:]:
            if p not in new:
                shifted = len(new) - col - 1
                new.insert(col + 1, p)
                rows.append(" ".join("|" for _ in range(col + 1)) + "\\" + " \\" * shifted)
    else:
        del new[col]
    return new, rows


def generated_recipe(commits: int, seed: int, name: str | None, bug: str, detect: float,
                     false_positive: float) -> str:
    """A scenario file for a generated kernel-shaped history, with an optional rate bug."""
    name = name or f"kernel-{commits}-s{seed}"
    spec: dict[str, Any] = {
        "name": name, "seed": seed,
        "description": f"generated kernel-shaped history: {commits} commits, seed {seed}",
        "generate": {"commits": commits},
    }
    if bug == "rate":
        shape = KernelShape(commits=commits)
        h = generate_kernel_history(name, seed, shape)
        good, bad = shape.base, _newest_release(h)
        culprit = pick_culprit(h, h.resolve(good), h.resolve(bad), random.Random(seed))
        spec["bug"] = {"model": "rate", "culprit": h.shas[culprit], "detect": detect,
                       "false_positive": false_positive}
        spec["range"] = [{"good": good, "bad": bad}]
    return toml_recipe(spec)


def _newest_release(h: History) -> str:
    """The newest mainline tag (the last release of the history)."""
    mainline = [(c, t) for t, c in h.tags.items() if h.topic_of[c] == 0]
    return max(mainline)[1]


def pick_culprit(h: History, good: int, bad: int, rng: random.Random) -> int:
    """A random non-merge commit of GOOD..BAD to plant a bug in."""
    cands = [int(c) for c in dag.candidates(h.parents, bad, [good]) if len(h.parents[c]) == 1]
    return rng.choice(cands)
