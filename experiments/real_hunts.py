"""Real hunts measured: `bisect --repo --run` against the simulated lab, and against `git bisect run`.

Three parts, each on exported kernel-shaped histories (`history export-git`), whose commits carry
the file BISECTLAB (bisectlab's sha), so a run script can boot them with `bisectlab boot`:

accuracy  A 1,000-commit history at each --detect: H real hunts, hunt i with `bench`'s culprit and
          boot seed of its hunt i (a scenario file per hunt plants that culprit, and the run script
          `bisectlab boot "$(cat BISECTLAB)" --history k-i.toml --seed S_i --attempt
          "$BISECTLAB_BOOT" --exit-status` draws the very boots bench's simulated lab draws), beside
          `bisectlab bench --history k.toml` over the same H hunts: accuracy with its Wilson 95%
          interval, mean boots, and how many hunts were the same test for test.
overhead  The driver's own time per test (the hunt's wall time less its commands' stored seconds,
          over its tests), `--strategy git` and bayes, beside `git bisect run`'s per step (its
          wall time, start to reset, less the script's own time, over its steps), on the same
          repository with the same run script, alternating, medians over the hunts. The steady
          per-test gap (script start to next script start, less the script's time) is printed too.
labs      "One driver, two labs": the shipped scenario exported and hunted with --repo --run
          (`bisectlab boot "$(cat BISECTLAB)" --seed S ...`, --adapters 50 as the simulated lab
          has) beside the simulated `bisectlab bisect v2.6.26 v2.6.27-rc8 --seed S`, same seeds.

    python experiments/real_hunts.py --hunts 30 --overhead-hunts 15 --scenario-hunts 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bisectlab.bench import BenchConfig, culprit_pool, hunt_seed, run_one, wilson
from bisectlab.history import load_history

from arguments import Parser, commits, count, rate, seed

BIN = Path(sys.executable).parent
TRAILER = re.compile(r"^([0-9a-f]{40}) bisectlab-sha: ([0-9a-f]{40})$", re.MULTILINE)
BOOT = ('bisectlab boot "$(cat BISECTLAB)" {history}--seed {seed} --attempt "$BISECTLAB_BOOT" '
        '--exit-status >/dev/null')


def bisectlab(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """The installed command line, as a user runs it."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("BISECTLAB_DB", None)
    done = subprocess.run([str(BIN / "bisectlab"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    if check and done.returncode not in (0, 1):
        raise SystemExit(f"bisectlab {' '.join(args[:3])} failed: {done.stderr.strip()}")
    return done


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout


def git_shas(repo: Path) -> dict[str, str]:
    """bisectlab sha -> the exported commit's git sha."""
    log = git(repo, "log", "--all", "--format=%H %(trailers:key=bisectlab-sha,separator=)")
    return {ours: theirs for theirs, ours in TRAILER.findall(log)}


def export(scenario: str, repo: Path, cwd: Path) -> None:
    if not repo.exists():
        bisectlab("history", "export-git", scenario, str(repo), cwd=cwd)


def generate(commits: int, seed: int, detect: float, path: Path, cwd: Path) -> None:
    bisectlab("history", "generate", "--commits", str(commits), "--seed", str(seed), "--bug",
              "rate", "--detect", f"{detect:g}", "-o", str(path), "--force", cwd=cwd)


def with_culprit(scenario: Path, sha: str, path: Path) -> Path:
    """The scenario file with its rate bug moved to ``sha``."""
    text = re.sub(r'culprit = "[0-9a-f]{40}"', f'culprit = "{sha}"', scenario.read_text())
    path.write_text(text)
    return path


def real_hunt(repo: Path, good: str, bad: str, run: str, db: Path, *extra: str) -> dict:
    """One `bisectlab bisect --repo --run` hunt: its JSON verdict and its wall seconds."""
    started = time.monotonic()
    done = bisectlab("bisect", good, bad, "--repo", str(repo), "--run", run, "--db", str(db),
                     "--json", "-q", *extra, cwd=db.parent)
    return {**json.loads(done.stdout), "wall": time.monotonic() - started}


def interval(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    return f"{k / n:.3f} [{lo:.3f}, {hi:.3f}]"


# accuracy ----------------------------------------------------------------------------------------


def accuracy(args: argparse.Namespace, work: Path) -> None:
    """Real hunts with bench's culprits and boots, beside bench, per detection rate."""
    for detect in args.detect:
        scenario = work / f"k{args.commits}-p{detect:g}.toml"
        generate(args.commits, args.history_seed, detect, scenario, work)
        repo = work / f"k{args.commits}"
        export(str(scenario), repo, work)
        to_git = git_shas(repo)
        config = BenchConfig(strategy="bayes", commits=args.commits, detect=detect,
                             hunts=args.hunts, seed=args.seed, history=str(scenario))
        h = load_history(str(scenario))
        pool = culprit_pool(config.commits, config.seed, config.history)
        db = work / f"accuracy-p{detect:g}.sqlite"
        db.unlink(missing_ok=True)
        real, same = [], 0
        for i in range(args.hunts):
            seed = hunt_seed(args.seed, i)
            culprit = h.shas[int(random.Random(seed).choice(pool))]
            planted = with_culprit(scenario, culprit, work / f"k-p{detect:g}-{i}.toml")
            run = BOOT.format(history=f"--history {planted} ", seed=seed)
            verdict = real_hunt(repo, "v1.0", "v1.1", run, db)
            ok = verdict["status"] == "found" and verdict["culprit"] == to_git[culprit]
            sim = run_one(config, i)
            same += (ok, verdict["tests"], verdict["boots"]) == (sim["correct"], sim["tests"],
                                                                  sim["boots"])
            real.append((ok, verdict["boots"]))
            print(f"  p={detect:g} hunt {i}: real {'right' if ok else 'WRONG'} {verdict['boots']} "
                  f"boots, simulated {'right' if sim['correct'] else 'WRONG'} {sim['boots']}",
                  file=sys.stderr, flush=True)
        bench = json.loads(bisectlab("bench", "--history", str(scenario), "--detect", f"{detect:g}",
                                     "--hunts", str(args.hunts), "--seed", str(args.seed),
                                     "--strategy", "bayes", "--json", "-q", cwd=work).stdout)
        right = sum(ok for ok, _ in real)
        print(f"p={detect:g}, {args.commits} commits, {args.hunts} hunts: real --repo --run "
              f"accuracy {interval(right, args.hunts)}, boots "
              f"{statistics.mean(b for _, b in real):.1f}; bisectlab bench accuracy "
              f"{interval(round(bench['accuracy'] * args.hunts), args.hunts)}, boots "
              f"{bench['boots_mean']:.1f}; the same test for test in {same} of {args.hunts}",
              flush=True)


# overhead ----------------------------------------------------------------------------------------

TIMED = """#!/bin/sh
t0=$(date +%s%N)
if git merge-base --is-ancestor "$(cat {culprit_file})" HEAD; then r=1; else r=0; fi
echo "$t0 $(date +%s%N)" >> {times}
exit $r
"""


@dataclass
class Timing:
    """One hunt's time: wall, the commands' own time (as stored, or as the script timed
    itself), the steps it took, and the steady gap between one command and the next."""

    wall: float
    commands: float
    steps: int
    gap: float

    @property
    def per_step(self) -> float:
        return (self.wall - self.commands) / self.steps


def script_times(path: Path) -> list[tuple[float, float]]:
    """(start, end) in seconds of each run of the timed script."""
    return [(int(a) / 1e9, int(b) / 1e9) for a, b in
            (line.split() for line in path.read_text().splitlines())]


def steady_gap(runs: list[tuple[float, float]]) -> float:
    """Median time from one script's end to the next one's start: the driver's work per test."""
    gaps = [b[0] - a[1] for a, b in zip(runs, runs[1:], strict=False)]
    return statistics.median(gaps) if gaps else float("nan")


def git_bisect_timing(repo: Path, script: Path, times: Path) -> Timing:
    """`git bisect start; git bisect run; git bisect reset`, timed."""
    times.unlink(missing_ok=True)
    started = time.monotonic()
    git(repo, "bisect", "start", "v1.1", "v1.0")
    git(repo, "bisect", "run", str(script))
    git(repo, "bisect", "reset")
    wall = time.monotonic() - started
    runs = script_times(times)
    return Timing(wall, sum(b - a for a, b in runs), len(runs), steady_gap(runs))


def bisectlab_timing(repo: Path, script: Path, times: Path, db: Path, strategy: str) -> Timing:
    """One `bisect --repo --run` hunt, timed; its commands' time from the stored boots."""
    times.unlink(missing_ok=True)
    db.unlink(missing_ok=True)
    verdict = real_hunt(repo, "v1.0", "v1.1", str(script), db, "--strategy", strategy)
    boots = json.loads(bisectlab("query", "boots", "--db", str(db), "--format", "json",
                                 cwd=db.parent).stdout)
    runs = script_times(times)
    return Timing(verdict["wall"], sum(b["seconds"] for b in boots), verdict["tests"],
                  steady_gap(runs))


def overhead(args: argparse.Namespace, work: Path) -> None:
    """Per-test driver time of bisectlab (git and bayes strategies) and git bisect run."""
    scenario = work / f"k{args.commits}-p1.toml"
    generate(args.commits, args.history_seed, 1.0, scenario, work)
    repo = work / f"k{args.commits}"
    export(str(scenario), repo, work)
    candidates = git(repo, "rev-list", "--no-merges", "v1.1", "^v1.0").split()
    rng = random.Random(args.seed)
    culprit_file, times = work / "culprit", work / "times"
    script = work / "timed.sh"
    script.write_text(TIMED.format(culprit_file=culprit_file, times=times))
    script.chmod(0o755)
    sides: dict[str, list[Timing]] = {"git bisect run": [], "bisectlab --strategy git": [],
                                      "bisectlab bayes": []}
    for i in range(args.overhead_hunts):
        culprit_file.write_text(rng.choice(candidates) + "\n")
        sides["git bisect run"].append(git_bisect_timing(repo, script, times))
        sides["bisectlab --strategy git"].append(
            bisectlab_timing(repo, script, times, work / "overhead.sqlite", "git"))
        sides["bisectlab bayes"].append(
            bisectlab_timing(repo, script, times, work / "overhead.sqlite", "bayes"))
        print(f"  overhead hunt {i}: " + ", ".join(f"{k} {v[-1].per_step * 1000:.0f} ms"
                                                   for k, v in sides.items()),
              file=sys.stderr, flush=True)
    print(f"overhead per test, {args.commits} commits, p = 1, {args.overhead_hunts} hunts each, "
          "medians (wall / command / driver per test; steady gap between commands):")
    for name, timings in sides.items():
        med = {k: statistics.median(getattr(t, k) / t.steps for t in timings)
               for k in ("wall", "commands")}
        print(f"  {name:<26} {statistics.median(t.steps for t in timings):5.1f} steps  "
              f"{med['wall'] * 1000:6.0f} / {med['commands'] * 1000:5.0f} / "
              f"{statistics.median(t.per_step for t in timings) * 1000:6.0f} ms  "
              f"gap {statistics.median(t.gap for t in timings) * 1000:5.0f} ms")


# two labs ----------------------------------------------------------------------------------------


def labs(args: argparse.Namespace, work: Path) -> None:
    """The shipped scenario hunted in its export with real commands and in the simulated lab."""
    repo = work / "scenario"
    if Path(args.scenario).exists():
        args.scenario = str(Path(args.scenario).resolve())
    export(args.scenario, repo, work)
    to_git = git_shas(repo)
    good, bad = args.range
    history = "" if args.scenario == "e1000e-2.6.27" else f"--history {args.scenario} "
    rows: dict[str, list[tuple[bool, int]]] = {"real": [], "simulated": []}
    same = 0
    for db in ("labs-real.sqlite", "labs-sim.sqlite"):
        (work / db).unlink(missing_ok=True)
    for i in range(args.scenario_hunts):
        seed = args.seed + i
        sim = json.loads(bisectlab("bisect", good, bad, *history.split(), "--seed", str(seed),
                                   "--db", str(work / "labs-sim.sqlite"), "--json", "-q",
                                   cwd=work).stdout)
        real = real_hunt(repo, good, bad, BOOT.format(history=history, seed=seed),
                         work / "labs-real.sqlite", "--adapters", "50", "--seed", str(seed))
        truth = to_git[sim["true_culprit"]]
        ok = real["status"] == "found" and real["culprit"] == truth
        rows["real"].append((ok, real["boots"]))
        rows["simulated"].append((bool(sim["correct"]), sim["boots"]))
        same += (ok, real["tests"], real["boots"]) == (sim["correct"], sim["tests"], sim["boots"])
        print(f"  {args.scenario} seed {seed}: real {'right' if ok else 'WRONG'} {real['boots']} "
              f"boots in {real['wall']:.0f} s, simulated "
              f"{'right' if sim['correct'] else 'WRONG'} {sim['boots']}", file=sys.stderr,
              flush=True)
    n = args.scenario_hunts
    print(f"one driver, two labs: {args.scenario} {good}..{bad}, {n} seeds each: " + "; ".join(
        f"{name} accuracy {interval(sum(ok for ok, _ in r), n)}, boots "
        f"{statistics.mean(b for _, b in r):.1f} (sd {statistics.pstdev(b for _, b in r):.1f})"
        for name, r in rows.items()) + f"; the same test for test in {same} of {n}")


def main() -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=("accuracy", "overhead", "labs"))
    parser.add_argument("--commits", type=commits, default=1000)
    parser.add_argument("--detect", type=rate, action="append")
    parser.add_argument("--hunts", type=count(), default=30)
    parser.add_argument("--overhead-hunts", type=count(), default=15)
    parser.add_argument("--scenario-hunts", type=count(), default=10)
    parser.add_argument("--scenario", default="e1000e-2.6.27")
    parser.add_argument("--range", nargs=2, default=("v2.6.26", "v2.6.27-rc8"),
                        metavar=("GOOD", "BAD"))
    parser.add_argument("--history-seed", type=seed, default=11)
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="Keep the exports and databases here (default: a temporary folder).")
    args = parser.parse_args()
    args.detect = args.detect or [0.5, 0.3]
    parts = args.part or ["accuracy", "overhead", "labs"]
    if shutil.which("git") is None:
        raise SystemExit("git is not installed")
    with tempfile.TemporaryDirectory(prefix="real-hunts-") as scratch:
        work = (args.workdir or Path(scratch)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        for part in parts:
            {"accuracy": accuracy, "overhead": overhead, "labs": labs}[part](args, work)


if __name__ == "__main__":
    main()
