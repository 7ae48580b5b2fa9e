"""Export a history as a real git repository (git fast-import), so `git bisect` can run on it.

Every commit gets one file, BISECTLAB, holding its bisectlab sha, and a message whose trailer
names that sha; tags become lightweight tags and the newest mainline commit is `master`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bisectlab.errors import BisectlabError
from bisectlab.history import History

MARKER_FILE = "BISECTLAB"
AUTHOR = "bisectlab <bisectlab@example.invalid>"


def fast_import_stream(history: History) -> Iterator[bytes]:
    """The git fast-import commands that rebuild the history's DAG, subjects and tags."""
    for i, parents in enumerate(history.parents):
        sha = history.shas[i]
        message = f"{history.subjects[i]}\n\nbisectlab-sha: {sha}\n".encode()
        content = f"{sha}\n".encode()
        stamp = f"{AUTHOR} {history.times[i]} +0000"
        lines = []
        if not parents:
            lines.append("reset refs/heads/master")
        lines += ["commit refs/heads/master", f"mark :{i + 1}", f"author {stamp}",
                  f"committer {stamp}", f"data {len(message)}"]
        yield ("\n".join(lines) + "\n").encode() + message
        refs = [f"from :{parents[0] + 1}"] if parents else []
        refs += [f"merge :{p + 1}" for p in parents[1:]]
        refs.append(f"M 100644 inline {MARKER_FILE}")
        refs.append(f"data {len(content)}")
        yield ("\n".join(refs) + "\n").encode() + content + b"\n"
    for tag, c in sorted(history.tags.items()):
        yield f"reset refs/tags/{tag}\nfrom :{c + 1}\n\n".encode()
    tip = max(i for i, t in enumerate(history.topic_of) if t == 0)
    yield f"reset refs/heads/master\nfrom :{tip + 1}\n\n".encode()


def export_git(history: History, directory: str | Path) -> Path:
    """Write the history as a git repository in ``directory`` (which must not exist or be empty)."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BisectlabError(f"{target} exists and is not an empty directory")
    if shutil.which("git") is None:
        raise BisectlabError("git is not installed")
    target.mkdir(parents=True, exist_ok=True)
    _git(target, "init", "-q", "-b", "master")
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=target,
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    for chunk in fast_import_stream(history):
        proc.stdin.write(chunk)
    proc.stdin.write(b"done\n")
    proc.stdin.close()
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.wait() != 0:
        raise BisectlabError(f"git fast-import failed: {err.strip().splitlines()[-1:]}")
    _git(target, "checkout", "-q", "-f", "master")
    return target


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BisectlabError(f"git {args[0]} failed: {result.stderr.strip()}")
    return result.stdout
