"""`bisectlab bench`: many simulated hunts per configuration, summarised against the lower bound.

Each hunt plants a rate bug (detection p, false positives f) in a seeded non-merge commit of a
kernel-shaped history and runs one strategy to its verdict in a simulated lab; culprits and boot
seeds vary per hunt, so hunts are independent and their results identical whatever the number of
worker processes. Nothing is written to a database.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from bisectlab import dag
from bisectlab.bugs import RateBug
from bisectlab.driver import drive
from bisectlab.errors import RangeError
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.history import History, load_history
from bisectlab.lab import Costs, Lab
from bisectlab.posterior import lower_bound_tests
from bisectlab.strategies import Observation, Resources, SearchSpace, Strategy, Verdict, make_strategy


@dataclass(frozen=True)
class BenchConfig:
    """One configuration: a history, a bug, a strategy with its options, a lab."""

    strategy: str = "bayes"
    options: tuple[tuple[str, Any], ...] = ()
    commits: int = 1000
    detect: float = 0.5
    false_positive: float = 0.0
    correlation: float = 0.0
    hunts: int = 100
    seed: int = 0
    history: str | None = None
    adapters: int | None = None
    rigs: int = 1
    costs: Costs = field(default_factory=Costs)
    name: str = ""

    def label(self) -> str:
        """How the configuration was asked for (e.g. retry:k=10), else strategy and options."""
        if self.name:
            return self.name
        opts = ",".join(f"{k}={v}" for k, v in self.options)
        return f"{self.strategy}{':' + opts if opts else ''}"


@lru_cache(maxsize=4)
def bench_history(commits: int, seed: int, source: str | None) -> tuple[History, int, int]:
    """The history of a configuration and its range (base tag .. newest release)."""
    if source is not None:
        h = load_history(source)
        if h.advertised:
            good, bad = h.advertised[0]
            return h, h.resolve(good), h.resolve(bad)
    else:
        h = generate_kernel_history(f"bench-{commits}", seed, KernelShape(commits=commits))
    releases = [c for c in h.tags.values() if h.topic_of[c] == 0]
    if not releases:
        raise RangeError(f"{source}: no range to bench (it advertises none, and has no tag on "
                         "its mainline)")
    return h, 0, max(releases)


@lru_cache(maxsize=4)
def bench_space(commits: int, seed: int, source: str | None) -> SearchSpace:
    """The candidates of a configuration's range, built once per process and shared by its hunts
    (a SearchSpace is never changed by the strategies that search it)."""
    h, good, bad = bench_history(commits, seed, source)
    return h.search_space([good], bad)


@lru_cache(maxsize=4)
def culprit_pool(commits: int, seed: int, source: str | None) -> np.ndarray:
    """The commits a configuration's bug is planted in, one per hunt: the non-merge candidates."""
    h, good, bad = bench_history(commits, seed, source)
    cands = dag.candidates(h.parents, bad, [good])
    return np.array([c for c in cands if len(h.parents[c]) == 1])


def check_source(source: str) -> None:
    """A history bench can run on: its range bisectable, with a commit that is not a merge to
    plant each hunt's bug in (one error line otherwise, before any hunt runs)."""
    h, good, bad = bench_history(0, 0, source)
    try:
        h.check_range(good, bad)
    except RangeError as exc:
        raise RangeError(f"{source}: its range {h.shas[good][:12]}..{h.shas[bad][:12]}: "
                         f"{exc}") from None
    if not len(culprit_pool(0, 0, source)):
        raise RangeError(f"{source}: its range has no commit but merges to plant the bug in")


def hunt_seed(seed: int, i: int) -> int:
    """The seed of hunt i of a configuration: its culprit and its boots derive from it."""
    digest = hashlib.blake2b(f"bench:{seed}:{i}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def run_one(config: BenchConfig, i: int) -> dict[str, Any]:
    """One hunt of the configuration."""
    h, _, _ = bench_history(config.commits, config.seed, config.history)
    seed = hunt_seed(config.seed, i)
    culprit = int(random.Random(seed).choice(culprit_pool(config.commits, config.seed,
                                                            config.history)))
    bugged = _with_bug(h, RateBug(culprit, config.detect, config.false_positive,
                                  correlation=config.correlation))
    space = bench_space(config.commits, config.seed, config.history)
    strategy = make_strategy(config.strategy, space, **dict(config.options))
    lab = Lab.build(bugged, seed=seed, rigs=config.rigs, adapters=config.adapters,
                    costs=config.costs)
    verdict, totals = drive(strategy, lab)
    return {"correct": verdict.status == "found" and verdict.culprit == culprit,
            "status": verdict.status, "confidence": verdict.confidence, "tests": totals.tests,
            "rounds": totals.rounds, "boots": totals.boots, "installs": totals.installs,
            "adapters": totals.adapters, "lab_minutes": totals.lab_minutes,
            "candidates": len(space)}


def ideal_hunt(strategy: Strategy, is_bad: np.ndarray, p: float, rng: np.random.Generator,
               after_each: Callable[[Strategy], None] | None = None) -> Verdict:
    """A strategy against a rate bug and nothing else: one boot per test, no rigs, adapters or
    lab minutes (the Z-channel alone), to study the strategy's statistics quickly.

    A test of a bad commit fails with probability p (one draw from ``rng``); a good one passes.
    """
    while strategy.verdict() is None:
        (commit,) = strategy.propose(Resources()).commits
        strategy.observe(Observation(commit, 1, int(is_bad[commit] and rng.random() < p)))
        if after_each is not None:
            after_each(strategy)
    return strategy.verdict()


def _with_bug(h: History, bug: RateBug) -> History:
    """A shallow copy of the history carrying another bug (the DAG is shared, never copied)."""
    from copy import copy

    clone = copy(h)
    clone.bug = bug
    return clone


def _run_chunk(args: tuple[BenchConfig, list[int]]) -> list[dict[str, Any]]:
    config, indices = args
    return [run_one(config, i) for i in indices]


def run_bench(config: BenchConfig, workers: int = 1,
              on_hunts: Callable[[int], None] = lambda done: None) -> list[dict[str, Any]]:
    """All hunts of a configuration, in hunt order, on ``workers`` processes (0 = all cores);
    ``on_hunts(done)`` hears how many are done as they finish (for a progress bar)."""
    workers = workers or os.cpu_count() or 1
    indices = list(range(config.hunts))
    results: dict[int, dict[str, Any]] = {}
    if workers == 1:
        for i in indices:
            results[i] = run_one(config, i)
            on_hunts(len(results))
        return [results[i] for i in indices]
    chunk = max(1, min(16, config.hunts // (workers * 4)))
    chunks = [(config, indices[k:k + chunk]) for k in range(0, config.hunts, chunk)]
    from bisectlab.pool import die_with_parent

    with ProcessPoolExecutor(workers, initializer=die_with_parent) as pool:
        futures = {pool.submit(_run_chunk, c): c[1] for c in chunks}
        for future in as_completed(futures):
            results.update(zip(futures[future], future.result(), strict=True))
            on_hunts(len(results))
    return [results[i] for i in indices]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def spread(key: str, values: list[float]) -> dict[str, float]:
    """Mean, 90th percentile and maximum of a cost, as key_mean, key_p90, key_max (0 if none)."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return {f"{key}_mean": 0.0, f"{key}_p90": 0.0, f"{key}_max": 0.0}
    return {f"{key}_mean": float(v.mean()), f"{key}_p90": float(np.percentile(v, 90)),
            f"{key}_max": float(v.max())}


def summarise(config: BenchConfig, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy with its 95% interval, mean and p90 of every cost, and the bound ratio."""
    n = len(rows)
    correct = sum(r["correct"] for r in rows)
    lo, hi = wilson(correct, n)
    out: dict[str, Any] = {
        "strategy": config.strategy, "options": dict(config.options), "label": config.label(),
        "commits": config.commits, "candidates": rows[0]["candidates"] if rows else 0,
        "p": config.detect, "f": config.false_positive, "correlation": config.correlation,
        "adapters_budget": config.adapters, "rigs": config.rigs, "hunts": n,
        "accuracy": correct / n if n else 0.0, "accuracy_95": [lo, hi],
        "aborted": sum(r["status"] == "aborted" for r in rows),
        "inconclusive": sum(r["status"] == "inconclusive" for r in rows),
    }
    for key in ("tests", "rounds", "boots", "installs", "adapters", "lab_minutes"):
        out.update(spread(key, [r[key] for r in rows]))
    out["lab_hours_mean"] = out["lab_minutes_mean"] / 60
    out["lab_hours_p90"] = out["lab_minutes_p90"] / 60
    delta = min(max(1 - out["accuracy"], 1e-6), 0.5)
    bound = lower_bound_tests(out["candidates"], config.detect, config.false_positive, delta)
    out["lower_bound_boots"] = bound
    out["boots_over_bound"] = out["boots_mean"] / bound if bound > 0 else float("inf")
    # m rigs can at best share the bound's boots: rounds >= bound / m
    out["rounds_over_bound"] = out["rounds_mean"] * config.rigs / bound if bound > 0 else float("inf")
    return out


def config_dict(config: BenchConfig) -> dict[str, Any]:
    """A configuration as plain data."""
    d = asdict(config)
    d["options"] = dict(config.options)
    return d
