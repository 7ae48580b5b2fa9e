"""Does `--strategy git` test what real `git bisect run` tests? Side by side on exported histories.

Each history is kernel-shaped (random size, seeds the test suite does not use), exported as a real
git repository; a random culprit makes every descendant-or-self of it fail. Real `git bisect run`
and the `git` strategy then each hunt on their own, and the two sequences of tested commits and of
"Bisecting: ..." lines are compared step by step; the first divergence is printed if there is one.

    python experiments/git_fidelity.py --histories 5
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bisectlab import dag
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.gitexport import export_git
from bisectlab.history import History
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy

from arguments import Parser, commits, count, seed

STEP = re.compile(r"^git bisect (?:good|bad) ([0-9a-f]{40})$", re.MULTILINE)
FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.MULTILINE)
BISECTING = re.compile(r"^Bisecting: .*$", re.MULTILINE)
TRAILER = re.compile(r"^([0-9a-f]{40}) bisectlab-sha: ([0-9a-f]{40})$", re.MULTILINE)


@dataclass
class Hunt:
    """One side's hunt: the commits tested, the line printed before each, the culprit named."""

    tested: list[int]
    lines: list[str]
    culprit: int


def git(repo: Path, *args: str) -> str:
    """A git command in ``repo`` with a neutral configuration and C locale; its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    done = subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def git_ids(repo: Path, h: History) -> dict[str, int]:
    """git's sha of every exported commit -> its bisectlab commit number."""
    by_sha = {s: i for i, s in enumerate(h.shas)}
    log = git(repo, "log", "--all", "--format=%H %(trailers:key=bisectlab-sha,separator=)")
    return {gsha: by_sha[ours] for gsha, ours in TRAILER.findall(log)}


def real_git_bisect(h: History, repo: Path, good: int, bad: int, is_bad: np.ndarray) -> Hunt:
    """`git bisect run` with a script that fails exactly on the bad commits."""
    ids = git_ids(repo, h)
    to_git = {c: s for s, c in ids.items()}
    bad_list = repo.parent / "bad-commits.txt"
    bad_list.write_text("".join(to_git[int(c)] + "\n" for c in np.flatnonzero(is_bad)))
    script = repo.parent / "check.sh"
    script.write_text(f"#!/bin/sh\ngit rev-parse HEAD | grep -qxF -f '{bad_list}' && exit 1\nexit 0\n")
    out = git(repo, "bisect", "start", to_git[bad], to_git[good])
    out += git(repo, "bisect", "run", "sh", str(script))
    log = git(repo, "bisect", "log")
    git(repo, "bisect", "reset")
    tested = [ids[s] for s in STEP.findall(log)]
    return Hunt([c for c in tested if c not in (good, bad)], BISECTING.findall(out),
                ids[FIRST_BAD.findall(out)[-1]])


def strategy_bisect(h: History, good: int, bad: int, is_bad: np.ndarray) -> Hunt:
    """The `git` strategy on its own, as `bisectlab bisect --strategy git` builds it."""
    strategy = make_strategy("git", SearchSpace(h.parents, [good], bad, names=h.shas, times=h.times))
    tested, lines = [], []
    while (verdict := strategy.verdict()) is None:
        lines.append(f"Bisecting: {strategy.progress()}")
        (commit,) = strategy.propose(Resources()).commits
        tested.append(commit)
        strategy.observe(Observation(commit, boots=1, failures=int(is_bad[commit])))
    return Hunt(tested, lines, verdict.culprit)


def first_difference(a: list, b: list) -> int | None:
    """The first step where two sequences differ (one ending early counts), None if none does."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def splits_after(h: History, good: int, bad: int, is_bad: np.ndarray, prefix: list[int],
                 commits: list[int | None]) -> list[int | None]:
    """min(X, N - X) of each commit once the common prefix of tests has been taken in."""
    strategy = make_strategy("git", SearchSpace(h.parents, [good], bad, times=h.times))
    for c in prefix:
        strategy.observe(Observation(c, boots=1, failures=int(is_bad[c])))
    return [None if c is None else strategy.split_of(c) for c in commits]


def at(seq: list, i: int):
    return seq[i] if i < len(seq) else None


def commit_divergence(h: History, good: int, bad: int, is_bad: np.ndarray, ours: Hunt,
                      theirs: Hunt) -> str:
    """Where the tested commits first differ, with both commits' splits at that point."""
    i = first_difference(theirs.tested, ours.tested)
    if i is None:
        return "commits: no divergence"
    mine, git_s = at(ours.tested, i), at(theirs.tested, i)
    split_git, split_ours = splits_after(h, good, bad, is_bad, theirs.tested[:i], [git_s, mine])
    return (f"commits diverge at step {i + 1}: git tests {git_s} (split {split_git}), "
            f"ours {mine} (split {split_ours})")


def line_divergence(ours: Hunt, theirs: Hunt) -> str:
    """Where the Bisecting lines first differ."""
    i = first_difference(theirs.lines, ours.lines)
    if i is None:
        return "lines: no divergence"
    return f"lines diverge at step {i + 1}: git '{at(theirs.lines, i)}', ours '{at(ours.lines, i)}'"


def kind_of(h: History, c: int) -> str:
    return "merge" if len(h.parents[c]) > 1 else "commit"


def compare_one(seed: int, commits: int, workdir: Path) -> tuple[bool, str]:
    """One history, both hunts: whether they agree at every step, and a line saying how."""
    h = generate_kernel_history("fidelity", seed, KernelShape(commits=commits))
    good, bad = h.tags["v1.0"], max(c for c in h.tags.values() if h.topic_of[c] == 0)
    cands = dag.candidates(h.parents, bad, [good])
    culprit = int(random.Random(f"fidelity:{seed}").choice(cands.tolist()))
    is_bad = dag.descendants_mask(h.parents, culprit)
    repo = export_git(h, workdir / f"repo-{seed}")
    theirs = real_git_bisect(h, repo, good, bad, is_bad)
    ours = strategy_bisect(h, good, bad, is_bad)
    same = sum(a == b for a, b in zip(ours.tested, theirs.tested, strict=False))
    same_lines = sum(a == b for a, b in zip(ours.lines, theirs.lines, strict=False))
    agree = (ours.tested == theirs.tested and ours.lines == theirs.lines
             and ours.culprit == theirs.culprit == culprit)
    return agree, (
        f"seed {seed}: {commits} commits, {len(cands)} candidates, culprit {culprit} "
        f"({kind_of(h, culprit)}); git {len(theirs.tested)} steps, ours {len(ours.tested)}; "
        f"same commit {same}/{len(theirs.tested)}, same line {same_lines}/{len(theirs.lines)}, "
        f"culprit {'same' if ours.culprit == theirs.culprit == culprit else 'DIFFERS'}; "
        f"{commit_divergence(h, good, bad, is_bad, ours, theirs)}; {line_divergence(ours, theirs)}")


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--histories", type=count(high=10**4), default=5)
    parser.add_argument("--seed", type=seed, default=1000, help="first history seed")
    parser.add_argument("--min-commits", type=commits, default=800)
    parser.add_argument("--max-commits", type=commits, default=2000)
    args = parser.parse_args()
    if args.min_commits > args.max_commits:
        parser.error(f"--min-commits {args.min_commits} is above --max-commits {args.max_commits}")
    sizes = random.Random(args.seed)
    agreed = 0
    with tempfile.TemporaryDirectory(prefix="git-fidelity-") as tmp:
        for history_seed in range(args.seed, args.seed + args.histories):
            same, line = compare_one(history_seed, sizes.randint(args.min_commits, args.max_commits),
                                     Path(tmp))
            agreed += same
            print(line, flush=True)
    print(f"{agreed} of {args.histories} histories: every step the same commit and the same line")


if __name__ == "__main__":
    main()
