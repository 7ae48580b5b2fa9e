"""The git strategy against real `git bisect run` on exported histories, commit for commit.

For a deterministic bug (every descendant-or-self of the culprit fails, everything else passes),
git and our `git` strategy must test the same commit at every step, print the same "Bisecting: N
revisions left to test after this (roughly K steps)" line before it, and name the same culprit.
At every step the order git weighs the candidates in (its revision walk, `git rev-list BAD
^GOOD...`) is checked against git itself, and the splits against an independent oracle (a dense
ancestor matrix), so a wrong count in AncestorSums cannot hide behind agreeing with itself.

Some cases are here because git's tie-breaks decide them, and each asserts that they do: on
`k4000` git's "close enough to halfway" shortcut takes a commit short of the best split; on `k800`
a commit weighed in a later fill-in pass (its parent comes after it in git's list) loses to one
weighed earlier; on lines, git takes the first commit it weighs near halfway, not the oldest.
"""

from __future__ import annotations

import functools
import os
import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bisectlab import dag
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.gitexport import export_git
from bisectlab.history import History
from bisectlab.store import Store
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy
from bisectlab.strategies.git import dates_decide_the_walk, revision_walk

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

HISTORIES = {"k600": (600, 11), "k1500": (1500, 23), "k800": (800, 12), "k4000": (4000, 7)}
KINDS = ("topic", "merge", "mainline")
CASES = [(name, kind) for name in ("k600", "k1500") for kind in KINDS]

STEP = re.compile(r"^git bisect (good|bad) ([0-9a-f]{40})$")
FIRST_BAD_LOG = re.compile(r"^# first bad commit: \[([0-9a-f]{40})\]")
FIRST_BAD_RUN = re.compile(r"^([0-9a-f]{40}) is the first bad commit$", re.MULTILINE)
BISECTING = re.compile(r"^Bisecting: .*$", re.MULTILINE)
TRAILER = re.compile(r"^([0-9a-f]{40}) bisectlab-sha: ([0-9a-f]{40})$", re.MULTILINE)
CLI_TEST = re.compile(r"^\[\s*\d+\] (?:good|bad ) ([0-9a-f]{12}) ", re.MULTILINE)


@functools.cache
def history(name: str) -> History:
    commits, seed = HISTORIES[name]
    return generate_kernel_history("gitcheck", seed, KernelShape(commits=commits))


@functools.cache
def line_history(n: int) -> History:
    """A line of n + 1 commits a minute apart, each tagged t0..tn (t0 is the good root)."""
    return History(name=f"line{n}", seed=0, parents=[()] + [(i,) for i in range(n)],
                   subjects=[f"line: commit {i}" for i in range(n + 1)],
                   times=[1_200_000_000 + 60 * i for i in range(n + 1)], topics=["mainline"],
                   topic_of=[0] * (n + 1), tags={f"t{i}": i for i in range(n + 1)}, toggles={})


def release_of(h: History) -> int:
    """The newest mainline tag's commit."""
    return max(c for c in h.tags.values() if h.topic_of[c] == 0)


def first_parent_chain(h: History, tip: int) -> set[int]:
    chain, x = set(), tip
    while True:
        chain.add(x)
        if not h.parents[x]:
            return chain
        x = h.parents[x][0]


def pick_culprit(h: History, good: int, bad: int, kind: str) -> int:
    """A seeded culprit of the given kind among the candidates of GOOD..BAD."""
    cands = [int(c) for c in dag.candidates(h.parents, bad, [good])]
    mainline = first_parent_chain(h, bad)
    pools = {
        "topic": [c for c in cands if c not in mainline and len(h.parents[c]) == 1],
        "merge": [c for c in cands if len(h.parents[c]) > 1],
        "mainline": [c for c in cands if c in mainline and len(h.parents[c]) == 1],
    }
    pool = pools[kind]
    assert pool, f"no {kind} candidate"
    return random.Random(f"{len(h)}:{kind}").choice(pool)


def ancestor_matrix(parents) -> np.ndarray:
    """Dense ancestors-or-self matrix: row x marks every ancestor-or-self of x."""
    n = len(parents)
    anc = np.zeros((n, n), dtype=bool)
    for x, ps in enumerate(parents):
        anc[x, x] = True
        for p in ps:
            anc[x] |= anc[p]
    return anc


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(LC_ALL="C", LANGUAGE="C", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull,
               GIT_AUTHOR_NAME="bisectlab", GIT_AUTHOR_EMAIL="bisectlab@example.invalid",
               GIT_COMMITTER_NAME="bisectlab", GIT_COMMITTER_EMAIL="bisectlab@example.invalid")
    return env


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=repo, env=git_env(), capture_output=True,
                            text=True)
    assert result.returncode == 0, f"git {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def exported(h: History, repo: Path) -> tuple[Path, dict[str, int], list[str]]:
    """The history as a git repository, git's shas to our commits, and ours to git's."""
    export_git(h, repo)
    by_sha = {s: i for i, s in enumerate(h.shas)}
    log = git(repo, "log", "--all", "--format=%H %(trailers:key=bisectlab-sha,separator=)")
    ids = {gsha: by_sha[ours] for gsha, ours in TRAILER.findall(log)}
    assert len(ids) == len(h), "every commit carries its bisectlab sha"
    to_git = [""] * len(h)
    for gsha, c in ids.items():
        to_git[c] = gsha
    return repo, ids, to_git


def rev_list(repo: Path, ids: dict[str, int], to_git: list[str], bad: int,
             goods: list[int]) -> list[int]:
    """Our commits in the order `git rev-list BAD ^GOOD...` lists them."""
    out = git(repo, "rev-list", to_git[bad], *(f"^{to_git[g]}" for g in goods))
    return [ids[s] for s in out.split()]


@dataclass
class GitRun:
    steps: list[tuple[int, bool]]  # (bisectlab commit, failed) in git's test order
    lines: list[str]  # git's "Bisecting: ..." line before each tested commit
    culprit: int


def run_git_bisect(repo: Path, ids: dict[str, int], to_git: list[str], good: int, bad: int,
                   is_bad: np.ndarray) -> GitRun:
    """Real `git bisect run` with a script that fails exactly on the bad commits."""
    bad_file = repo.parent / "bad-commits.txt"
    bad_file.write_text("".join(to_git[c] + "\n" for c in np.flatnonzero(is_bad)))
    check = repo.parent / "check.sh"
    check.write_text("#!/bin/sh\n"
                     f"if git rev-parse HEAD | grep -qxF -f '{bad_file}'; then exit 1; fi\n"
                     "exit 0\n")
    start_out = git(repo, "bisect", "start", to_git[bad], to_git[good])
    run_out = git(repo, "bisect", "run", "sh", str(check))
    log = git(repo, "bisect", "log").splitlines()
    git(repo, "bisect", "reset")

    # git 2.39 logs `git bisect start 'BAD' 'GOOD'` alone; other versions also log the two
    # starting points as `git bisect bad/good` lines, which are never tested commits
    steps = [(ids[s], word == "bad") for word, s in (m.groups() for m in map(STEP.match, log) if m)]
    steps = [(c, failed) for c, failed in steps if c not in (good, bad)]
    first_log = [m.group(1) for m in map(FIRST_BAD_LOG.match, log) if m]
    first_run = FIRST_BAD_RUN.findall(run_out)
    assert len(first_log) == 1 and first_run == first_log, (first_log, first_run)
    lines = BISECTING.findall(start_out + run_out)
    assert len(lines) == len(steps)
    return GitRun(steps, lines, ids[first_log[0]])


@dataclass
class Step:
    """One step of git's hunt, as the dense oracle sees it."""

    commit: int
    split: int  # min(X, N - X) of git's commit
    best: int  # the best split of any candidate
    oldest_best: int  # the oldest candidate with the best split
    listed_near: int | None  # first near-halfway commit in git's list, merges first


def near_halfway(x: np.ndarray, total: int) -> np.ndarray:
    """bisect.c approx_halfway, from its source: |2X - N| <= 1, or below N / 1024."""
    diff = np.abs(2 * x - total)
    return (diff <= 1) | (diff < total // 1024)


def oracle_step(h: History, anc: np.ndarray, remaining: np.ndarray, listed: list[int],
                commit: int) -> Step:
    """git's commit among the remaining candidates, measured by brute force."""
    total = int(remaining.sum())
    x = anc[:, remaining].sum(axis=1)
    split = np.where(remaining, np.minimum(x, total - x), -1)
    live_parents = np.array([sum(bool(remaining[p]) for p in h.parents[c]) for c in listed])
    near = near_halfway(x[listed], total)
    merges = [c for c, k, ok in zip(listed, live_parents, near, strict=True) if ok and k >= 2]
    singles = [c for c, k, ok in zip(listed, live_parents, near, strict=True) if ok and k == 1]
    listed_near = (merges or singles or [None])[0]
    return Step(commit, int(split[commit]), int(split.max()), int(np.argmax(split)), listed_near)


def replay_against_git(h: History, good: int, bad: int, culprit: int, tmp_path: Path) -> list[Step]:
    """Run real git bisect and our strategy side by side; assert they agree at every step."""
    is_bad = dag.descendants_mask(h.parents, culprit)
    assert not is_bad[good] and is_bad[bad]
    repo, ids, to_git = exported(h, tmp_path / "repo")
    run = run_git_bisect(repo, ids, to_git, good, bad, is_bad)
    assert run.culprit == culprit

    space = SearchSpace(h.parents, [good], bad, times=h.times)
    anc = ancestor_matrix(h.parents)
    strategy = make_strategy("git", space)
    goods, current_bad = [good], bad
    steps = []
    for i, ((commit, failed), line) in enumerate(zip(run.steps, run.lines, strict=True)):
        assert failed == bool(is_bad[commit]), "git's run script disagrees with the truth"
        assert strategy.verdict() is None, f"step {i}: we stopped before git did"
        listed = rev_list(repo, ids, to_git, current_bad, goods)
        walk = revision_walk(space, strategy.alive, strategy.bad)
        assert [int(c) for c in space.commits[walk]] == listed, f"step {i}: walk order differs"
        remaining = np.zeros(len(h), dtype=bool)
        remaining[listed] = True
        step = oracle_step(h, anc, remaining, listed[::-1], commit)
        assert strategy.split_of(commit) == step.split, f"step {i}: split of git's commit"

        assert f"Bisecting: {strategy.progress()}" == line, f"step {i}: progress differs"
        ours = strategy.propose(Resources()).commits[0]
        assert ours == commit, f"step {i}: we test {ours}, git tests {commit}"
        steps.append(step)
        strategy.observe(Observation(commit, boots=1, failures=int(failed)))
        if failed:
            current_bad = commit
        else:
            goods.append(commit)

    verdict = strategy.verdict()
    assert verdict is not None and verdict.status == "found"
    assert verdict.culprit == run.culprit == culprit
    return steps


@pytest.mark.parametrize(("name", "kind"), CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_git_strategy_replays_real_git_bisect(name, kind, tmp_path):
    h = history(name)
    good, bad = h.tags["v1.0"], release_of(h)
    space = SearchSpace(h.parents, [good], bad, times=h.times)
    assert not dates_decide_the_walk(space, np.ones(len(space), dtype=bool)), \
        "kernel-shaped dates are skewed and tied: the walk must be simulated, not sorted"
    steps = replay_against_git(h, good, bad, pick_culprit(h, good, bad, kind), tmp_path)
    assert all(s.split == s.best for s in steps), "below 3072 candidates git's pick is a best split"


def test_git_takes_a_near_halfway_commit_short_of_the_best_split(tmp_path):
    h = history("k4000")
    good, bad = h.tags["v1.0"], release_of(h)
    steps = replay_against_git(h, good, bad, pick_culprit(h, good, bad, "topic"), tmp_path)
    first = steps[0]
    assert first.split < first.best, "git's 1/1024 shortcut should decide the first step here"


def test_git_weighs_a_commit_whose_parent_comes_later_in_a_later_pass(tmp_path):
    h = history("k800")
    good, bad = h.tags["v1.0"], release_of(h)
    steps = replay_against_git(h, good, bad, 638, tmp_path)
    assert any(s.listed_near is not None and s.commit != s.listed_near for s in steps), \
        "a later fill-in pass should decide a step here"
    assert any(s.commit != s.oldest_best for s in steps), "a tie-break should decide a step here"


# (candidates, culprit, git's first test, the oldest best split): with 3 candidates the root
# splits as well as 2 but is never checked for halfway; with 4000, 1999 is near enough to 2000
LINES = [(16, 11, 8, 8), (3, 1, 2, 1), (4000, 2500, 1999, 2000)]


@pytest.mark.parametrize(("n", "culprit", "first", "oldest_best"), LINES)
def test_git_on_a_line_tests_the_first_commit_it_weighs_near_halfway(n, culprit, first,
                                                                      oldest_best, tmp_path):
    steps = replay_against_git(line_history(n), 0, n, culprit, tmp_path)
    assert (steps[0].commit, steps[0].oldest_best) == (first, oldest_best)


def test_progress_on_a_16_commit_line_is_gits():
    strategy = make_strategy("git", SearchSpace(line_history(16).parents, [0], 16))
    assert strategy.progress() == "7 revisions left to test after this (roughly 3 steps)"


def test_progress_words_match_git_for_every_small_range(tmp_path):
    h = line_history(40)
    repo, _, _ = exported(h, tmp_path / "repo")
    for n in range(1, 41):
        out = git(repo, "bisect", "start", f"t{n}", "t0")
        git(repo, "bisect", "reset")
        strategy = make_strategy("retry", SearchSpace(h.parents, [0], n, times=h.times))
        if n == 1:
            assert "is the first bad commit" in out and strategy.verdict() is not None
            assert strategy.progress() == ""
            continue
        (line,) = BISECTING.findall(out)
        assert f"Bisecting: {strategy.progress()}" == line, n


@pytest.mark.parametrize("strategy", ["git", "retry"])
def test_cli_hunt_on_the_shipped_range_steps_and_speaks_like_git(strategy, run, e1000e, tmp_path):
    """`bisectlab bisect` (simulated boots, so sometimes wrong) and git, fed the same outcomes."""
    retries = ["--retries", "2"] if strategy == "retry" else []
    result = run("bisect", "v2.6.26", "v2.6.27-rc8", "--strategy", strategy, "--seed", "4", *retries)
    assert result.exit_code == 0, result.stderr
    with Store(f"sqlite:///{tmp_path / 'bisectlab.sqlite'}") as store:
        tests = store.tests(1)
    tested = [t["commit_sha"] for t in tests]
    assert [s[:12] for s in tested] == CLI_TEST.findall(result.stderr)
    ours = [line.strip() for line in result.stderr.splitlines() if "Bisecting:" in line]
    assert ours[0] == "Bisecting: 5529 revisions left to test after this (roughly 13 steps)"

    repo, ids, to_git = exported(e1000e, tmp_path / "repo")
    is_bad = np.zeros(len(e1000e), dtype=bool)
    for t in tests:
        is_bad[e1000e.resolve(t["commit_sha"])] = t["failed"]
    good, bad = e1000e.resolve("v2.6.26"), e1000e.resolve("v2.6.27-rc8")
    git_run = run_git_bisect(repo, ids, to_git, good, bad, is_bad)
    assert [e1000e.shas[c] for c, _ in git_run.steps] == tested
    assert git_run.lines == ours
    assert e1000e.shas[git_run.culprit] in result.stdout
