"""`bisectlab perf`: the speed figures the project holds itself to, medians of repeated runs.

Targets: at least 10,000 simulated e1000e boots per second on one core, and a `git` decision on
a 10^5-commit kernel-shaped history in under a second. `perf --scale` holds the whole Linux
history (10^6 commits) to interactive speed, each figure beside the code it started from.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bisectlab import compiled, kernel
from bisectlab.errors import BisectlabError, clipped
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy

if TYPE_CHECKING:
    from bisectlab.campaign import CampaignSpec

BUGGY_2_6_27 = {"ftrace": True, "dynamic_ftrace": True, "ftrace_cmpxchg": True}
TARGET_BOOTS_PER_S = 10_000
TARGET_GIT_DECISION_S = 1.0


def _median_time(run: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _generate(n: int) -> None:
    """A full history of n commits, shas included (what a hunt needs before its first test)."""
    h = generate_kernel_history("perf", n, KernelShape(commits=n))
    assert len(h.shas) == n


def boots_per_second(features: dict[str, bool], boots: int, repeats: int) -> float:
    """Median rate of simulated e1000e boots on an i386 rig."""
    def run() -> None:
        for seed in range(boots):
            kernel.boot(features, "i386", seed)

    return boots / _median_time(run, repeats)


def git_decisions(n: int, decisions: int, name: str = "git") -> dict[str, float]:
    """Setup time and median per-decision time of a strategy on an n-commit history.

    A decision is one proposal plus taking its result in (for bayes: the posterior update).
    """
    h = generate_kernel_history(f"perf-{n}", 1, KernelShape(commits=n))
    bad = len(h) - 1
    t0 = time.perf_counter()
    space = SearchSpace(h.parents, [0], bad, times=h.times)
    setup = time.perf_counter() - t0
    strategy = make_strategy(name, space)
    culprit = int(space.commits[len(space) // 3])
    from bisectlab.dag import descendants_mask

    is_bad = descendants_mask(h.parents, culprit)
    rng = np.random.default_rng(n)
    times = []
    for _ in range(decisions):
        if strategy.verdict() is not None:
            break
        t0 = time.perf_counter()
        proposal = strategy.propose(Resources())
        commit = proposal.commits[0]
        failed = is_bad[commit] and (name == "git" or rng.random() < 0.5)
        strategy.observe(Observation(commit, 1, int(failed)))
        times.append(time.perf_counter() - t0)
    return {"commits": n, "candidates": len(space), "setup_s": setup,
            "decision_median_s": statistics.median(times), "decisions": len(times)}


def run_perf(quick: bool = False) -> dict[str, Any]:
    """All figures of the benchmark."""
    repeats = 3 if quick else 5
    boots = 2_000 if quick else 10_000
    armed = boots_per_second(BUGGY_2_6_27, boots, repeats)
    clean = boots_per_second({"ftrace": True}, boots, repeats)
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    generation = {n: _median_time(lambda n=n: _generate(n), repeats if n < 10**6 else 1)
                  for n in sizes}
    git = [git_decisions(n, 5 if quick else 9) for n in (10_000, 100_000)]
    bayes = [git_decisions(n, 5 if quick else 15, "bayes") for n in (10_000, 100_000)]
    return {
        "boots_per_s_buggy": armed,
        "boots_per_s_clean": clean,
        "generation_s": {str(n): t for n, t in generation.items()},
        "git": git,
        "bayes": bayes,
        "targets": {
            "bayes_decision_1e4_s": 0.05,
            "bayes_decision_1e5_s": 1.0,
            "boots_per_s": TARGET_BOOTS_PER_S,
            "boots_ok": armed >= TARGET_BOOTS_PER_S,
            "git_decision_1e5_s": TARGET_GIT_DECISION_S,
            "git_ok": git[-1]["decision_median_s"] < TARGET_GIT_DECISION_S,
        },
    }


def format_report(r: dict[str, Any]) -> str:
    """The benchmark as readable lines, with each target and its ratio."""
    t = r["targets"]
    lines = [
        f"simulated e1000e boots/s (buggy 2.6.27, i386): {r['boots_per_s_buggy']:>10,.0f}"
        f"   target >= {t['boots_per_s']:,}  ratio {r['boots_per_s_buggy'] / t['boots_per_s']:.2f}x"
        f"  {'ok' if t['boots_ok'] else 'MISSED'}",
        f"simulated boots/s (clean kernel):                {r['boots_per_s_clean']:>10,.0f}",
    ]
    for n, s in r["generation_s"].items():
        lines.append(f"history generation, {int(n):>7,} commits:       {s:>10.3f} s")
    for g in r["git"]:
        lines.append(
            f"git decision, {g['commits']:>7,} commits: median {g['decision_median_s'] * 1e3:8.1f} ms"
            f" over {g['decisions']} decisions (setup {g['setup_s']:.2f} s)")
    for b in r["bayes"]:
        lines.append(
            f"bayes decision, {b['commits']:>7,} commits: median {b['decision_median_s'] * 1e3:8.1f} ms"
            f" over {b['decisions']} decisions (setup {b['setup_s']:.2f} s; p = 0.5)")
    lines.append(f"bayes targets: <= {t['bayes_decision_1e4_s'] * 1e3:.0f} ms at 10^4 (ratio "
                 f"{r['bayes'][0]['decision_median_s'] / t['bayes_decision_1e4_s']:.2f}), <= "
                 f"{t['bayes_decision_1e5_s']:.0f} s at 10^5 (ratio "
                 f"{r['bayes'][1]['decision_median_s'] / t['bayes_decision_1e5_s']:.2f})")
    g = r["git"][-1]
    lines.append(f"git decision at 10^5 target < {t['git_decision_1e5_s']} s: ratio "
                 f"{g['decision_median_s'] / t['git_decision_1e5_s']:.2f}  "
                 f"{'ok' if t['git_ok'] else 'MISSED'}")
    return "\n".join(lines)


TARGET_CAMPAIGN_SPEEDUP = 1.8


def campaign_throughput(hunts: int = 150, rounds: int = 3, workers: tuple[int, ...] = (1, 2),
                        commits: int = 1000, detect: float = 0.5) -> dict[str, Any]:
    """Hunts per second of a bayes campaign with 1 and 2 workers, the database's share, and
    the machine's own ceiling for two: two 1-worker campaigns run at once.

    Each round runs every worker count once, side by side, each campaign in a fresh process
    into a fresh SQLite database, as a user's campaign runs (one per command): a pool forked
    from a process that had just run campaigns of its own ran a fifth slower (measured before
    the workers froze what they inherit; experiments/long_lived_pool.py). Every other round
    runs them in the reverse order, so that a machine speeding up or slowing down over the run
    does not always favour the same one (with an even number of rounds, neither). The figures
    are medians over rounds, and the speed-up is the median of the rounds' own ratios; the
    database share is the time the campaign's process spent claiming and writing hunts over
    the wall time. The ceiling's pair shares nothing (two processes, two decision trees, two
    databases), starts together and is timed while both run: an estimate of what two cores of
    this machine give this work over one at that minute, which a 2-worker campaign, with
    everything else to do, should not beat but for the machine's noise between campaigns.
    """
    import tempfile

    runs: dict[int, list[dict[str, float]]] = {w: [] for w in workers}
    pairs: list[dict[str, float]] = []
    plan: tuple[int | None, ...] = (*workers, None)  # None: the two 1-worker campaigns at once
    with tempfile.TemporaryDirectory(prefix="bisectlab-perf-") as folder:
        scenario = campaign_scenario(folder, commits, detect)
        for r in range(rounds):
            for w in plan if r % 2 == 0 else plan[::-1]:
                if w is None:
                    pairs.append(_campaign_pair(
                        str(scenario), [f"{folder}/r{r}p{j}.sqlite" for j in (0, 1)], hunts))
                else:
                    runs[w].append(_campaign_child(str(scenario), f"{folder}/r{r}w{w}.sqlite",
                                                   hunts, w))
    out = {"commits": commits, "p": detect, "hunts": hunts, "rounds": rounds,
           "workers": {str(w): {key: statistics.median(run[key] for run in rs)
                               for key in CAMPAIGN_FIGURES} for w, rs in runs.items()}}
    first, last = runs[workers[0]], runs[workers[-1]]
    out["speedups"] = [b["hunts_per_s"] / a["hunts_per_s"] for a, b in zip(first, last, strict=True)]
    out["speedup"] = statistics.median(out["speedups"])
    out["pair"] = {key: statistics.median(pair[key] for pair in pairs) for key in pairs[0]}
    out["ceilings"] = [pair["hunts_per_s"] / a["hunts_per_s"]
                       for a, pair in zip(first, pairs, strict=True)]
    out["ceiling"] = statistics.median(out["ceilings"])
    out["of_ceiling"] = statistics.median(
        s / c for s, c in zip(out["speedups"], out["ceilings"], strict=True))
    out["compiled_kernels"] = compiled.kernels is not None
    out["target_speedup"] = TARGET_CAMPAIGN_SPEEDUP
    return out


def campaign_scenario(folder: str | Path, commits: int = 1000, detect: float = 0.5) -> Path:
    """Write the scenario perf's campaigns hunt in, a generated history of ``commits`` with a
    rate bug of detection rate ``detect``, into ``folder``: its path."""
    from bisectlab.summary import generated_recipe

    scenario = Path(folder) / "k.toml"
    scenario.write_text(generated_recipe(commits, 1, None, "rate", detect, 0.0))
    return scenario


def campaign_spec(scenario: str | Path, hunts: int) -> CampaignSpec:
    """Perf's campaign of ``hunts`` hunts: bayes on the scenario's advertised range, one rig,
    a bottomless box."""
    from bisectlab.campaign import CampaignSpec, Lane, cached_history

    good, bad = cached_history(str(scenario)).advertised[0]
    return CampaignSpec("perf", str(scenario), good, bad, (Lane("bayes", "bayes"),), hunts=hunts,
                        rigs=1, adapters=None)


CAMPAIGN_FIGURES = ("hunts_per_s", "db_share", "db_ms_per_hunt", "hunts_per_cpu_s",
                    "own_cpu_ms_per_hunt")


_CAMPAIGN_CHILD = r"""
import json, sys
from bisectlab.perf import one_campaign
print(json.dumps(one_campaign(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
                              *sys.argv[5:])))
"""


class ChildFailed(BisectlabError, RuntimeError):
    """A measuring child process failed or was killed: one line, as bad input is (exit 2)."""


def _campaign_children(arg_lists: list[tuple[object, ...]]) -> list[dict[str, Any]]:
    """:func:`one_campaign` in fresh Pythons on this code, at once, one per argument list."""
    try:
        return json_children(_CAMPAIGN_CHILD, arg_lists)
    except ChildFailed as exc:
        raise ChildFailed(f"perf campaign child failed: {exc}") from None


def _campaign_child(scenario: str, db_file: str, hunts: int, workers: int) -> dict[str, float]:
    """:func:`one_campaign` in a fresh Python on this code."""
    return _campaign_children([(scenario, db_file, hunts, workers)])[0]


def _campaign_pair(scenario: str, db_files: list[str], hunts: int) -> dict[str, float]:
    """1-worker campaigns run at once, each in a fresh Python into its own database, set up
    before any starts: their hunts per second while all ran (the hunts they finished between the
    last start and the first end, over that time), and per CPU second."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bisectlab-perf-pair-") as barrier:
        ran = _campaign_children([(scenario, db, hunts, 1, barrier, len(db_files))
                                  for db in db_files])
    return pair_figures(ran)


def pair_figures(ran: list[dict[str, Any]]) -> dict[str, float]:
    """Hunts per second of campaigns that ran at once, over the time all of them ran, and per
    CPU second; ChildFailed if they never ran together."""
    start, end = max(x["started"] for x in ran), min(x["ended"] for x in ran)
    if end <= start:
        raise ChildFailed("perf campaign pair: the two campaigns did not run at the same time")
    together = sum(start < t <= end for x in ran for t in x["finished_at"])
    return {"hunts_per_s": together / (end - start),
            "hunts_per_cpu_s": sum(x["ran"] for x in ran) / sum(x["cpu_s"] for x in ran),
            "start_spread_s": start - min(x["started"] for x in ran),
            "end_spread_s": max(x["ended"] for x in ran) - end}


def json_child(code: str, *args: object, source: str | None = None) -> dict[str, Any]:
    """Run ``code`` in a fresh Python on the bisectlab in ``source`` (None: this one) and read
    the JSON object its last line of output holds; ChildFailed with its last line of error if
    it fails."""
    return json_children(code, [args], source)[0]


def json_children(code: str, arg_lists: Sequence[Sequence[object]],
                  source: str | None = None) -> list[dict[str, Any]]:
    """:func:`json_child` once per argument list, the children all running at once, their
    output in files (a child that writes much never waits for another's to be read); if one
    fails, the others are killed and ChildFailed says why that one failed."""
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bisectlab-child-") as folder, ExitStack() as files:
        children: list[tuple[subprocess.Popen, Any, Any]] = []
        try:
            for i, args in enumerate(arg_lists):
                out, err = (files.enter_context(open(Path(folder) / f"{i}.{kind}", "w+"))
                            for kind in ("out", "err"))
                children.append((subprocess.Popen(
                    [sys.executable, "-c", code, *map(str, args)], stdout=out, stderr=err,
                    env=child_env(source), cwd=tempfile.gettempdir()), out, err))
            failed = _first_failure([child for child, _, _ in children])
        finally:
            for child, _, _ in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        if failed is not None:
            child, _, err = children[failed]
            err.seek(0)
            raise ChildFailed(_failure(child.returncode, err.read()))
        outputs = []
        for _, out, _ in children:
            out.seek(0)
            outputs.append(json.loads(out.read().splitlines()[-1]))
        return outputs


def _first_failure(children: list[subprocess.Popen]) -> int | None:
    """Wait for the children to end; the index of the first seen to fail, as soon as it has
    (the others may still run), or None once all have succeeded."""
    running = list(range(len(children)))
    while running:
        for i in list(running):
            code = children[i].poll()
            if code is not None:
                running.remove(i)
                if code != 0:
                    return i
        if running:
            time.sleep(CHILD_POLL)
    return None


CHILD_POLL = 0.05  # seconds between looks at measuring children that are still running


def _failure(code: int, stderr: str) -> str:
    """Why a child failed, in one line: the signal that killed it, or its last line of error."""
    if code < 0:
        return f"killed by signal {-code}"
    return clipped((stderr.strip().splitlines() or [f"exit {code}, no output"])[-1], 300)


def one_campaign(scenario: str, db_file: str, hunts: int, workers: int,
                 barrier: str | None = None, parties: int = 1) -> dict[str, Any]:
    """One bayes campaign of ``hunts`` hunts on the scenario's advertised range, one rig, a
    bottomless box, with ``workers`` local workers, into a new SQLite file: its figures, when it
    ran (by the campaign's own clock) and when each hunt finished. With a ``barrier`` folder, it
    starts once ``parties`` campaigns are set up to start."""
    from bisectlab.campaign import local_executor, run_campaign
    from bisectlab.store import Store

    spec = campaign_spec(scenario, hunts)
    finished_at: list[float] = []

    def finished(done: int, _: int) -> None:
        finished_at.extend([time.time()] * (done - len(finished_at)))

    with Store(f"sqlite:///{db_file}") as store:
        executor, queue = local_executor(workers)
        if barrier is not None:
            wait_for_all(barrier, int(parties))
        own_before, before = _cpu_seconds()
        try:
            run = run_campaign(spec, store, executor, queue, on_hunt=finished)
            ended = time.time()
        finally:
            executor.shutdown()
        own_after, after = _cpu_seconds()
    own, cpu = own_after - own_before, after - before
    return {"hunts_per_s": run.hunts_per_second, "db_share": run.db_share,
            "db_ms_per_hunt": run.db_ms_per_hunt, "hunts_per_cpu_s": run.ran / cpu,
            "own_cpu_ms_per_hunt": 1e3 * own / run.ran, "ran": run.ran, "cpu_s": cpu,
            "started": ended - run.wall_seconds, "ended": ended,
            "finished_at": finished_at}


def wait_for_all(folder: str, parties: int, patience: float = 120.0) -> None:
    """Say this process is ready in ``folder`` and wait until ``parties`` processes have (a
    file each); ChildFailed if they have not within ``patience`` seconds."""
    Path(folder, f"ready.{os.getpid()}").touch()
    deadline = time.monotonic() + patience
    while len(list(Path(folder).glob("ready.*"))) < parties:
        if time.monotonic() > deadline:
            raise ChildFailed(f"{parties} campaigns were not ready within {patience:g} s")
        time.sleep(0.001)


def _cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and with its finished children's (a pool's workers, once
    shut down): what a campaign costs whatever else the machine is doing."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = own.ru_utime + own.ru_stime
    return mine, mine + kids.ru_utime + kids.ru_stime


def format_campaign(r: dict[str, Any]) -> str:
    """The campaign throughput as readable lines."""
    lines = [f"bayes campaign, N={r['commits']}, p={r['p']}, {r['hunts']} hunts, medians of "
             f"{r['rounds']} round{'s' if r['rounds'] != 1 else ''} (a fresh process each):"]
    for w, x in r["workers"].items():
        lines.append(f"  {w} worker{'s' if w != '1' else ''}: {x['hunts_per_s']:6.2f} hunts/s "
                     f"({x['hunts_per_cpu_s']:.2f} per CPU second, the campaign's process "
                     f"{x['own_cpu_ms_per_hunt']:.1f} ms of it per hunt), "
                     f"database {x['db_ms_per_hunt']:.1f} ms per hunt (summed over the "
                     f"processes that wrote: {x['db_share']:.1%} of the wall time)")
    ok = r["speedup"] >= r["target_speedup"]
    each = ", ".join(f"{x:.2f}" for x in r["speedups"])
    lines.append(f"  speed-up {r['speedup']:.3f}x, the median of each round's ({each}) "
                 f"(target >= {r['target_speedup']}x)  {'ok' if ok else 'MISSED'}")
    ceilings = ", ".join(f"{x:.2f}" for x in r["ceilings"])
    pair = r["pair"]
    lines.append(f"  two 1-worker campaigns at once, sharing nothing: {pair['hunts_per_s']:.2f} "
                 f"hunts/s while both ran ({pair['hunts_per_cpu_s']:.2f} per CPU second), "
                 f"{r['ceiling']:.3f}x one alone ({ceilings}): this machine's ceiling for 2 "
                 f"workers, of which the 2-worker campaign reached {r['of_ceiling']:.0%}")
    lines.append(kernels_line(r["compiled_kernels"]))
    return "\n".join(lines)


def kernels_line(built: bool) -> str:
    """Whether the figures above ran on the compiled kernels, which an install without a C
    compiler goes without, and whether the posterior's ran too (see compiled.exact_math)."""
    if not built:
        return ("  compiled kernels: NOT built (no C compiler or Python headers at install): "
                "numpy passes, the same results, slower")
    exact = ("the posterior's likelihoods, rates and whole-array log-sum-exps, a small table's "
             "entropy and the scores from ancestor sums")
    posterior = (f"and {exact}" if compiled.exact_math() is not None
                 else f"but not {exact} (they take the C library's exp and log, and numpy's are "
                      "its own on this CPU)")
    return ("  compiled kernels: built (bisectlab/_kernels.c): the ancestor sums, the evidence's "
            f"pairs, entropies, scores and log-sum-exps ran on them, {posterior}")


# scale: the whole Linux history at interactive speed ------------------------------------------

SCALE_BASELINE = "db24ecf"  # the commit the scale work started from ("today" in the report)
SCALE_TARGETS = {"build_s": 2.0, "first_s": 1.0, "later_s": 0.3, "peak_rss_mb": 500.0,
                 "generation_s": 2.0}

# One hunt in a fresh process, through the public API only (so that it runs on the baseline's code
# as well): history, search space, the first bayes decision (strategy, proposal, observation),
# then later ones; or, with "generation", the history with its shas alone. Prints one JSON line.
_CHILD = r"""
import json, statistics, sys, time
import numpy as np
from bisectlab.dag import descendants_mask
from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.strategies import Observation, Resources, SearchSpace, make_strategy

n, decisions, what = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
clock = time.perf_counter
t0 = clock()
if what.startswith("file:"):
    from bisectlab.histfile import read_history_file
    h = read_history_file(what[5:])
else:
    h = generate_kernel_history(f"perf-{n}", 1, KernelShape(commits=n))
def own_peak_mb():  # this process's own peak RSS (VmHWM, reset by exec), if /proc has it
    try:
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return None
if what == "generation":
    assert len(h.shas) == n
    print(json.dumps({"generation_s": clock() - t0, "own_peak_mb": own_peak_mb()}))
    sys.exit(0)
t0 = clock()
space = SearchSpace(h.parents, [0], len(h) - 1)
build = clock() - t0
is_bad = descendants_mask(h.parents, int(space.commits[len(space) // 3]))
rng = np.random.default_rng(n)
times = []
t0 = clock()
strategy = make_strategy("bayes", space)
for i in range(decisions):
    t0 = t0 if i == 0 else clock()
    commit = strategy.propose(Resources()).commits[0]
    failed = bool(is_bad[commit]) and rng.random() < 0.5
    strategy.observe(Observation(commit, 1, int(failed)))
    times.append(clock() - t0)
print(json.dumps({"candidates": len(space), "build_s": build, "first_s": times[0],
                  "later_s": statistics.median(times[1:]), "decisions": decisions,
                  "own_peak_mb": own_peak_mb()}))
"""


def _run_child(source: str | None, *args: object) -> dict[str, Any]:
    """Run the hunt script in a fresh Python on the code in ``source`` (None: this code) and
    return its figures, with the peak RSS of that process in MB: its own VmHWM, since the
    maximum RSS wait4 reports keeps the parent's high-water mark across fork and exec (a child
    of a 600 MB process reads 600 MB however little it uses); wait4's where /proc is not."""
    import json
    import sys
    import tempfile

    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, *map(str, args)], stdout=out,
                                env=child_env(source), cwd=tempfile.gettempdir())
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise ChildFailed(f"perf child failed: {_failure(proc.returncode, '')}")
        out.seek(0)
        figures = json.loads(out.read().decode().strip().splitlines()[-1])
    own = figures.pop("own_peak_mb", None)
    return {**figures, "peak_rss_mb": own if own is not None else usage.ru_maxrss / 1024}


def child_env(source: str | None) -> dict[str, str]:
    """The environment of a child Python that imports bisectlab from ``source`` (first on its
    PYTHONPATH; None: as this process does)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    return env


def baseline_source(rev: str, folder: str) -> str | None:
    """The bisectlab package as of ``rev`` and its database migrations (db/, which an installed
    bisectlab cannot lend it), extracted into ``folder`` (None if no checkout has such a commit)."""
    import io
    import tarfile

    archive = _archive(rev)
    if archive is None:
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    _lend_kernels(Path(folder) / "bisectlab")
    return folder


def _lend_kernels(package: Path) -> None:
    """Give an extracted older package the kernels it was written for: this install's built ones
    where its _kernels.c is the same file, else its own built here, so that a side-by-side run
    compares the code that changed, not a build against none (where nothing can be built, as
    without a C compiler, the older package runs numpy)."""
    if compiled.kernels is None or not (package / "_kernels.c").is_file():
        return
    built = Path(compiled.kernels.__file__)
    ours = built.parent / "_kernels.c"
    if ours.is_file() and ours.read_bytes() == (package / "_kernels.c").read_bytes():
        shutil.copy2(built, package / built.name)
    else:
        _build_kernels(package)


def _build_kernels(package: Path) -> None:
    """Build ``package``'s own _kernels.c into it, as pyproject.toml builds ours, in a child
    process whose output (the compiler's too) is kept from the terminal; nothing if it cannot
    be built."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bisectlab-kernels-") as work:
        try:
            built = json_child(_BUILD_CHILD, package / "_kernels.c", work,
                               *KERNEL_FLAGS)["built"]
        except (ChildFailed, ValueError, KeyError):  # no compiler, no headers: it runs numpy
            return
        shutil.copy2(built, package)


KERNEL_FLAGS = ("-ffp-contract=off", "-fno-trapping-math")  # pyproject.toml's, as a test checks
_BUILD_CHILD = r"""
import json, sys
from setuptools import Distribution, Extension
from setuptools.command.build_ext import build_ext
ext = Extension("bisectlab._kernels", [sys.argv[1]], extra_compile_args=sys.argv[3:])
command = build_ext(Distribution({"ext_modules": [ext]}))
command.build_lib = command.build_temp = sys.argv[2]
command.ensure_finalized()
command.run()
print(json.dumps({"built": command.get_ext_fullpath(ext.name)}))
"""


def _archive(rev: str) -> bytes | None:
    """`git archive` of bisectlab/ and db/ (or bisectlab/ alone, where db/ was not yet) at
    ``rev``, from the git checkout this code runs from, or else the one the command runs in
    (after `pip install .` the code runs from site-packages)."""
    for root in _checkouts():
        for paths in (["bisectlab", "db"], ["bisectlab"]):
            done = _git(root, "archive", "--format=tar", rev, *paths)
            if done is not None and done.returncode == 0:
                return done.stdout
    return None


def _checkouts() -> list[Path]:
    """The git checkouts an older commit's code may come from: this code's, the command's."""
    roots = []
    for start in (Path(__file__).resolve().parent.parent, Path.cwd()):
        top = _git(start, "rev-parse", "--show-toplevel")
        if top is not None and top.returncode == 0:
            roots.append(Path(top.stdout.decode().strip()))
    return list(dict.fromkeys(roots))


def _git(root: Path, *args: str) -> subprocess.CompletedProcess | None:
    """A git command in ``root``, its output captured (None where there is no git)."""
    try:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True)
    except OSError:
        return None


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Each figure's median over repeated runs."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "decisions"}


def git_bisect_step(n: int, repeats: int) -> dict[str, float]:
    """Median wall time of `git rev-list --bisect` (a whole git process, as a step costs) on the
    n-commit history exported with export_git, without and with a commit-graph file."""
    import tempfile

    from bisectlab.gitexport import export_git

    h = generate_kernel_history(f"perf-{n}", 1, KernelShape(commits=n))
    bad = next(t for t, c in h.tags.items() if c == len(h) - 1)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bisectlab-perf-git-") as folder:
        export_git(h, folder)
        command = ["git", "rev-list", "--bisect", bad, f"^{KernelShape().base}"]
        for label in ("git_step_s", "git_step_graph_s"):
            if label == "git_step_graph_s":
                subprocess.run(["git", "commit-graph", "write", "--reachable"], cwd=folder,
                               check=True, capture_output=True)
            out[label] = _median_time(
                lambda: subprocess.run(command, cwd=folder, check=True, capture_output=True),
                repeats)
    return out


@dataclass(frozen=True)
class ScaleRun:
    """How big and how often: the history, its decisions, the repeats, the git comparison's size."""

    commits: int = 1_000_000
    decisions: int = 20
    repeats: int = 3
    small: int = 10_000
    git_repeats: int = 15


QUICK_SCALE = ScaleRun(commits=100_000, decisions=10, repeats=1, git_repeats=5)


def run_scale(run: ScaleRun = ScaleRun(), baseline: str | None = SCALE_BASELINE) -> dict[str, Any]:
    """The scale figures and the comparison with git at ``run.small`` commits, now and on the
    ``baseline`` commit's code, each a median of repeated fresh processes run side by side
    (baseline, now, baseline, now, ...)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bisectlab-perf-base-") as folder:
        source = baseline_source(baseline, folder) if baseline else None
        checkouts = _checkouts() if baseline and source is None else []
        if checkouts:  # not a missing checkout: a typo
            raise BisectlabError(f"--baseline {clipped(baseline, 40)}: no commit of that name "
                                 "with bisectlab's code in " + " or ".join(map(str, checkouts)))
        versions = {"now": None, **({"today": source} if source else {})}
        runs: dict[str, dict[str, list]] = {v: {"hunt": [], "gen": [], "small": []} for v in versions}
        for _ in range(run.repeats):
            for version, code in reversed(versions.items()):
                runs[version]["hunt"].append(_run_child(code, run.commits, run.decisions, "hunt"))
                runs[version]["gen"].append(_run_child(code, run.commits, 0, "generation"))
                runs[version]["small"].append(_run_child(code, run.small, 30, "hunt"))
    report: dict[str, Any] = {"commits": run.commits, "small": run.small, "repeats": run.repeats,
                              "baseline": baseline if source else None, "baseline_asked": baseline,
                              "targets": SCALE_TARGETS}
    for version, r in runs.items():
        report[version] = {**_medians(r["hunt"]), "generation_s": _medians(r["gen"])["generation_s"],
                           "decision_small_s": _medians(r["small"])["later_s"]}
    report["git"] = git_bisect_step(run.small, run.git_repeats) if shutil.which("git") else None
    return report


def _show(value: float, unit: str) -> str:
    return f"{value:.0f} MB" if unit == "MB" else f"{value:.2f} s"


def format_scale(r: dict[str, Any]) -> str:
    """The scale figures beside their targets and the baseline's."""
    now, today, t = r["now"], r.get("today"), r["targets"]
    asked = r.get("baseline_asked")
    base = (f"the code of {r['baseline']}" if today else
            f"not measured ({asked} is not in a git checkout here: run it in bisectlab's)"
            if asked else "not asked for")
    lines = [f"scale: {r['commits']:,} commits ({now['candidates']:,.0f} candidates); each figure a "
             f"median of {r['repeats']} fresh processes, now and today side by side; today: {base}",
             f"{'':48}{'now':>10}{'today':>10}   target"]
    rows = [("SearchSpace(h.parents, [0], bad)", "build_s", t["build_s"]),
            ("first bayes decision (make, propose, observe)", "first_s", t["first_s"]),
            ("later bayes decisions (median of the rest)", "later_s", t["later_s"]),
            ("peak RSS: generate, space, decisions", "peak_rss_mb", t["peak_rss_mb"]),
            ("history generation (as `bisectlab perf`)", "generation_s", t["generation_s"])]
    for label, key, target in rows:
        unit = "MB" if key.endswith("_mb") else "s"
        ok = "ok" if now[key] <= target else "MISSED"
        lines.append(f"{label:<48}{_show(now[key], unit):>10}"
                     f"{_show(today[key], unit) if today else '-':>10}   <= {target:g} {unit}  {ok}")
    g, mine = r["git"], now["decision_small_s"]
    was = f" (today {today['decision_small_s'] * 1e3:.1f} ms)" if today else ""
    lines.append(f"{r['small']:,} commits: a bayes decision {mine * 1e3:.1f} ms{was}")
    if g is not None:
        ok = "ok" if mine <= min(g.values()) else "MISSED"
        lines[-1] += (f"; git rev-list --bisect {g['git_step_s'] * 1e3:.1f} ms, "
                      f"{g['git_step_graph_s'] * 1e3:.1f} ms with a commit-graph; target: no "
                      f"slower than git  {ok}")
    if r["commits"] != ScaleRun().commits:
        lines.append(f"(the targets are for {ScaleRun().commits:,} commits)")
    return "\n".join(lines)


# the issue's targets, all in one report -------------------------------------------------------

SHIPPED_BISECT = ["bisect", "v2.6.26", "v2.6.27-rc8", "--seed", "1449391855", "-q"]
ISSUE_TODAY = {  # what issue 13 measured when it was filed
    "build_s": 9.8, "first_s": 1.45, "later_s": 0.84, "peak_rss_mb": 927.0, "generation_s": 1.35,
    "decision_small_s": 4.5e-3, "git_step_s": 3.2e-3, "hunts_per_s_1": 24.6, "speedup": None,
    "logging_share": 0.47, "startup_s": 1.2}
TARGETS = {**SCALE_TARGETS, "hunts_per_s_1": 50.0, "speedup": TARGET_CAMPAIGN_SPEEDUP,
           "logging_share": 0.15, "startup_s": 0.3}


def history_file_scale(run: ScaleRun) -> dict[str, float]:
    """The scale hunt on the generated history written to a history file (.npz) and read back,
    as an imported history is: medians of fresh processes, peak RSS included."""
    import tempfile

    from bisectlab.histfile import write_history_file

    with tempfile.TemporaryDirectory(prefix="bisectlab-perf-file-") as folder:
        path = Path(folder) / "h.npz"
        write_history_file(generate_kernel_history(f"perf-{run.commits}", 1,
                                                   KernelShape(commits=run.commits)), path)
        runs = [_run_child(None, run.commits, run.decisions, f"file:{path}")
                for _ in range(run.repeats)]
    return _medians(runs)


def logging_share(runs: int = 3) -> dict[str, float]:
    """The share of the shipped scenario's simulated bisect (`bisectlab bisect v2.6.26
    v2.6.27-rc8 --seed 1449391855 -q`, run in this process into a fresh SQLite file) spent in
    the store: opening the hunt, logging each test, the verdict. Medians over runs."""
    import contextlib
    import io
    import tempfile
    from unittest.mock import patch

    from bisectlab.cli import cli
    from bisectlab.store import Store

    shares, walls, tests = [], [], []
    for _ in range(runs):
        spent, logged = [0.0], [0]

        def timed(method: Callable, test: bool = False, spent: list = spent,
                  logged: list = logged) -> Callable:
            def call(*args: Any, **kwargs: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return method(*args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - t0
                    logged[0] += test

            return call

        with tempfile.TemporaryDirectory(prefix="bisectlab-perf-log-") as folder, \
                patch.object(Store, "record_test", timed(Store.record_test, True)), \
                patch.object(Store, "start_hunt", timed(Store.start_hunt)), \
                patch.object(Store, "finish_hunt", timed(Store.finish_hunt)):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
                cli([*SHIPPED_BISECT, "--db", f"sqlite:///{folder}/b.sqlite"])
            walls.append(time.perf_counter() - t0)
        shares.append(spent[0] / walls[-1])
        tests.append(logged[0])
    return {"logging_share": statistics.median(shares), "bisect_s": statistics.median(walls),
            "tests": statistics.median(tests)}


def startup(repeats: int = 7) -> float:
    """Median wall time of `bisectlab boot v2.6.27-rc8 --exit-status`, a whole process (what
    `git bisect run` pays at every step)."""
    import sys

    command = [str(Path(sys.executable).with_name("bisectlab")), "boot", "v2.6.27-rc8",
               "--exit-status"]
    return _median_time(lambda: subprocess.run(command, capture_output=True), repeats)


def run_targets(run: ScaleRun = ScaleRun(), campaign_hunts: int = 150,
                rounds: int = 3) -> dict[str, Any]:
    """Every figure of the issue's targets: scale on the generator and on a history file, the
    10^4 comparison with git, campaign throughput, the logging share and the start-up."""
    scale = run_scale(run, baseline=None)
    camp = campaign_throughput(hunts=campaign_hunts, rounds=rounds)
    git = scale["git"] or {}
    now = {**{k: scale["now"][k] for k in SCALE_TARGETS}, "candidates": scale["now"]["candidates"],
           "decision_small_s": scale["now"]["decision_small_s"],
           "git_step_s": min(git.values()) if git else None,
           "hunts_per_s_1": camp["workers"]["1"]["hunts_per_s"],
           "hunts_per_s_2": camp["workers"]["2"]["hunts_per_s"], "speedup": camp["speedup"],
           "ceiling": camp["ceiling"], "of_ceiling": camp["of_ceiling"],
           "hunts_per_cpu_s": camp["workers"]["1"]["hunts_per_cpu_s"],
           **logging_share(rounds), "startup_s": startup()}
    return {"commits": run.commits, "small": run.small, "repeats": run.repeats,
            "campaign": {"hunts": campaign_hunts, "rounds": rounds},
            "file": history_file_scale(run), "now": now, "targets": TARGETS, "today": ISSUE_TODAY,
            "load_average": os.getloadavg()[0], "cores": os.cpu_count(),
            "compiled_kernels": compiled.kernels is not None}


_DIGITS = {"MB": 0, "s": 2, "ms": 1, "/s": 1, "x": 2, "%": 1}  # a figure's decimals, by unit


def _figure(value: float | None, unit: str, extra: int = 0) -> str:
    """A figure as the targets' table prints it (``extra`` decimals more)."""
    if value is None:
        return "-"
    digits = _DIGITS[unit] + extra
    if unit == "ms":
        return f"{value * 1e3:.{digits}f} ms"
    if unit == "%":
        return f"{value:.{digits}%}"
    return f"{value:.{digits}f}{' ' if unit in ('MB', 's') else ''}{unit}"


def _figures_apart(value: float | None, target: float | None, unit: str) -> tuple[str, str]:
    """A figure and its target as printed, with the decimals it takes for a figure that differs
    from its target not to print as it (1.796x beside 1.8x: 1.796x and 1.800x, not 1.80x twice)."""
    extra = 0
    while (value is not None and target is not None and value != target and extra < 4
           and _figure(value, unit, extra) == _figure(target, unit, extra)):
        extra += 1
    return _figure(value, unit, extra), _figure(target, unit, extra)


# The targets' Dask and PostgreSQL figures need a cluster and a database server: a script of their own.
BEYOND_ONE_PROCESS = ("  beyond one process (a Dask cluster of separate commands, 4 processes on one "
                      "PostgreSQL database): python experiments/beyond_one_machine.py in a source "
                      "checkout (it needs bisectlab[dask,postgres], and PostgreSQL's initdb or "
                      "--postgres URL; --skip-dask, --skip-postgres)")


def format_targets(r: dict[str, Any]) -> str:
    """Each figure beside its target and the issue's figure of the day it was filed."""
    now, t, f = r["now"], r["targets"], r["file"]
    today = r["today"] if r["commits"] == ScaleRun().commits else {
        k: (v if k in ("hunts_per_s_1", "speedup", "logging_share", "startup_s") else None)
        for k, v in r["today"].items()}  # the issue measured at 10^6 commits only
    n = f"{r['commits']:,}"
    rows = [
        (f"{n}: SearchSpace (generated)", now["build_s"], "s", t["build_s"], today["build_s"], "<="),
        (f"{n}: SearchSpace (history file)", f["build_s"], "s", t["build_s"], None, "<="),
        (f"{n}: first bayes decision (generated)", now["first_s"], "s", t["first_s"],
         today["first_s"], "<="),
        (f"{n}: first bayes decision (history file)", f["first_s"], "s", t["first_s"], None, "<="),
        (f"{n}: later decisions (generated)", now["later_s"], "s", t["later_s"],
         today["later_s"], "<="),
        (f"{n}: later decisions (history file)", f["later_s"], "s", t["later_s"], None, "<="),
        (f"{n}: peak RSS (generated)", now["peak_rss_mb"], "MB", t["peak_rss_mb"],
         today["peak_rss_mb"], "<="),
        (f"{n}: peak RSS (history file)", f["peak_rss_mb"], "MB", t["peak_rss_mb"], None, "<="),
        (f"{n}: generation", now["generation_s"], "s", t["generation_s"], today["generation_s"],
         "<="),
        (f"{r['small']:,}: bayes decision", now["decision_small_s"], "ms", now["git_step_s"],
         today["decision_small_s"], "<="),
        ("campaign hunts/s, 1 worker", now["hunts_per_s_1"], "/s", t["hunts_per_s_1"],
         today["hunts_per_s_1"], ">="),
        ("campaign hunts per CPU second, 1 worker", now["hunts_per_cpu_s"], "/s",
         t["hunts_per_s_1"], None, ">="),
        ("campaign speed-up, 2 workers", now["speedup"], "x", t["speedup"], today["speedup"], ">="),
        ("  the machine's ceiling: two 1-worker at once", now["ceiling"], "x", None, None, ""),
        ("logging share of a simulated bisect", now["logging_share"], "%", t["logging_share"],
         today["logging_share"], "<="),
        ("boot --exit-status start-up", now["startup_s"], "s", t["startup_s"], today["startup_s"],
         "<="),
    ]
    width = max(len(row[0]) for row in rows)
    rounds = r["campaign"]["rounds"]
    lines = [f"issue 13's targets: medians ({r['repeats']} fresh "
             f"process{'es' if r['repeats'] != 1 else ''} at scale, {rounds} campaign "
             f"round{'s' if rounds != 1 else ''} of {r['campaign']['hunts']} hunts); "
             f"load average {r['load_average']:.1f} on {r['cores']} cores at the end",
             f"{'':{width}}{'now':>11}{'target':>13}{'issue':>11}"]
    for label, value, unit, target, was, op in rows:
        met = target is None or (value <= target if op == "<=" else value >= target)
        verdict = "reference" if not op else "ok" if met else "MISSED"
        shown, bar = _figures_apart(value, target, unit)
        lines.append(f"{label:<{width}}{shown:>11}{op:>4}{bar:>9}{_figure(was, unit):>11}  "
                     f"{verdict}")
    lines.append(f"({r['small']:,} commits: the target is git rev-list --bisect's step on the same "
                 f"DAG, {_figure(now['git_step_s'], 'ms')} here, "
                 f"{r['today']['git_step_s'] * 1e3:.1f} ms in the issue; campaign with 2 workers: "
                 f"{now['hunts_per_s_2']:.1f} hunts/s, {now['of_ceiling']:.0%} of the machine's ceiling; "
                 f"the bisect logged {now['tests']:.0f} tests in {now['bisect_s']:.1f} s)")
    lines.append(kernels_line(r["compiled_kernels"]))
    lines.append(BEYOND_ONE_PROCESS)
    return "\n".join(lines)
