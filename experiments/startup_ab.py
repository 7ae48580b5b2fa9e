"""A boot's start-up and a 10^6-commit generation on an older commit's code against this
checkout's, side by side.

    python experiments/startup_ab.py [REV] [--boots 9] [--generations 3] [--commits 1000000]

Each figure is a fresh process on REV's bisectlab (extracted with git archive) and on this
checkout's, each put first on PYTHONPATH, alternately, medians, after one untimed run of each
that caches its bytecode: the wall time of `bisectlab boot
v2.6.27-rc8 --exit-status` as `git bisect run` pays it at every step, and the time to generate
the 10^6-commit history with its shas (`bisectlab perf`'s generation).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from arguments import Parser, count

BOOT = ("import sys; sys.argv = ['bisectlab', 'boot', 'v2.6.27-rc8', '--exit-status']; "
        "from bisectlab.cli import main; main()")
GENERATE = ("import sys, time; from bisectlab.generator import KernelShape, "
            "generate_kernel_history; n = int(sys.argv[1]); t = time.perf_counter(); "
            "h = generate_kernel_history(f'perf-{n}', 1, KernelShape(commits=n)); "
            "assert len(h.shas) == n; print(time.perf_counter() - t)")


CHECKOUT = str(Path(__file__).resolve().parent.parent)


def run(code: str, source: str | None, *args: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python on the bisectlab in ``source`` (None: this checkout's), its
    bytecode cached as an installed package's is (each side is run once untimed first)."""
    from bisectlab.perf import child_env

    env = {**child_env(source or CHECKOUT), "PYTHONDONTWRITEBYTECODE": ""}
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, cwd=tempfile.gettempdir())


def boot_seconds(source: str | None) -> float:
    t0 = time.perf_counter()
    done = run(BOOT, source)
    elapsed = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # a boot answers good (0) or bad (1)
        raise SystemExit(f"the boot failed: {done.stderr.strip().splitlines()[-1:]}")
    return elapsed


def generation_seconds(source: str | None, commits: int) -> float:
    done = run(GENERATE, source, str(commits))
    done.check_returncode()
    return float(done.stdout.split()[-1])


def main() -> None:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rev", nargs="?", default="dd6f275",
                    help="the older commit (default: dd6f275, before the start-up work)")
    ap.add_argument("--boots", type=count(high=1000), default=9)
    ap.add_argument("--generations", type=count(high=100), default=3)
    ap.add_argument("--commits", type=count(high=10**7), default=10**6, help="commits generated")
    args = ap.parse_args()
    sys.path.insert(0, CHECKOUT)
    from bisectlab.perf import baseline_source

    with tempfile.TemporaryDirectory(prefix="bisectlab-ab-") as folder:
        source = baseline_source(args.rev, folder)
        if source is None:
            print(f"error: cannot extract {args.rev} from this checkout", file=sys.stderr)
            sys.exit(2)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        generation = partial(generation_seconds, commits=args.commits)
        for name, measure, rounds in (("boot --exit-status", boot_seconds, args.boots),
                                      (f"generation of {args.commits:,} commits", generation,
                                       args.generations)):
            for code in (source, None):
                measure(code)  # untimed: writes each side's bytecode
            times: dict[str, list[float]] = {args.rev: [], "now": []}
            for _ in range(rounds):
                for label, code in ((args.rev, source), ("now", None)):
                    times[label].append(measure(code))
            old, new = (statistics.median(times[k]) for k in (args.rev, "now"))
            print(f"{name}: {args.rev} {old:.3f} s, now {new:.3f} s, {new / old:.2f}x "
                  f"(medians of {rounds} alternating fresh processes)", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
