"""How `history import-git` scales: import and load times and file sizes at 10^4, 10^5, 10^6 commits.

For each size N a kernel-shaped history of N commits is generated and exported as a git repository
(export-git, git fast-import); `bisectlab history import-git REPO -o FILE.npz` then runs as a user
runs it (a subprocess: interpreter start, git rev-list and git log, writing the file), and the file
is loaded back with load_history (median of --repeat loads, in this process). Last, the generator's
time at --generate commits (median of --repeat). Timings are wall-clock on whatever else the
machine is doing: run it on a quiet machine.

    python experiments/import_scale.py                     # 10^4, 10^5, 10^6 (minutes)
    python experiments/import_scale.py --sizes 10000 --generate 100000 --repeat 1
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.gitexport import export_git
from bisectlab.history import load_history

from arguments import Parser, commits, count


def timed(func, *args):
    """The function's result and its wall time in seconds."""
    start = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - start


def median_time(repeat: int, func, *args) -> float:
    """Median wall time of ``repeat`` calls."""
    return statistics.median(timed(func, *args)[1] for _ in range(repeat))


def folder_megabytes(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def import_git(repo: Path, out: Path) -> None:
    """`bisectlab history import-git REPO -o OUT`, as a user runs it."""
    subprocess.run([sys.executable, "-c", "from bisectlab.cli import main; main()", "history",
                    "import-git", str(repo), "-o", str(out)], check=True, capture_output=True)


def measure_size(n: int, workdir: Path, repeat: int) -> str:
    """Export, import and load one history of n commits; one line of figures."""
    history = generate_kernel_history(f"scale-{n}", 0, KernelShape(commits=n))
    repo, export_s = timed(export_git, history, workdir / f"repo-{n}")
    out = workdir / f"scale-{n}.npz"
    _, import_s = timed(import_git, repo, out)
    loaded = load_history(str(out))
    load_s = median_time(repeat, load_history, str(out))
    return (f"N={n:>8}: export-git {export_s:6.1f} s (repository {folder_megabytes(repo):6.1f} MB)"
            f"  import-git {import_s:6.1f} s  file {out.stat().st_size / 1e6:5.1f} MB"
            f"  load {load_s:5.2f} s  ({len(loaded)} commits, {len(loaded.paths.ids)} changed paths,"
            f" {len(loaded.tags)} tags)")


def main(argv: list[str] | None = None) -> None:
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=commits, nargs="+", default=[10**4, 10**5, 10**6])
    parser.add_argument("--generate", type=commits, default=10**6, help="commits to generate")
    parser.add_argument("--repeat", type=count(high=100), default=3, help="runs per median")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the repositories and files here (default: a temporary folder)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bisectlab-import-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for n in args.sizes:
            print(measure_size(n, workdir, args.repeat), flush=True)
        shape = KernelShape(commits=args.generate)
        generate_s = median_time(args.repeat, generate_kernel_history, "bench", 0, shape)
        print(f"generate_kernel_history({args.generate} commits): {generate_s:.3f} s "
              f"(median of {args.repeat})")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
