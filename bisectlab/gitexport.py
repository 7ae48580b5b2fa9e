"""Export a history as a real git repository (git fast-import), so `git bisect` can run on it.

Every commit writes one file, BISECTLAB, holding its bisectlab sha, and each path it touches with
that same content (one blob per commit); its message's trailer names that sha. A merge takes the
paths its side branches wrote (see :mod:`bisectlab.mergetree`), so `git bisect start BAD GOOD --
drivers/net` simplifies history as on a real repository. Tags become lightweight tags and the
newest mainline commit is `master`.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from bisectlab.errors import BisectlabError
from bisectlab.history import History
from bisectlab.mergetree import MergeTrees

MARKER_FILE = "BISECTLAB"
AUTHOR = "bisectlab <bisectlab@example.invalid>"


def fast_import_stream(history: History) -> Iterator[bytes]:
    """The git fast-import commands that rebuild the history's DAG, subjects, paths and tags.

    Marks 1..n are the commits, n+1..2n their blobs (the commit's sha, the content of every file
    it writes).
    """
    n = len(history)
    trees = MergeTrees(history.parents, history.paths.offsets, history.paths.ids)
    table = [_quoted(p).encode() for p in history.paths.table]
    for i, parents in enumerate(history.parents):
        sha = history.shas[i]
        message = f"{history.subjects[i]}\n\nbisectlab-sha: {sha}\n".encode()
        stamp = f"{AUTHOR} {history.times[i]} +0000"
        lines = [f"blob\nmark :{n + i + 1}\ndata {len(sha) + 1}\n{sha}\n"]
        if not parents:
            lines.append("reset refs/heads/master")
        lines += ["commit refs/heads/master", f"mark :{i + 1}", f"author {stamp}",
                  f"committer {stamp}", f"data {len(message)}"]
        yield ("\n".join(lines) + "\n").encode() + message
        refs = [f"from :{parents[0] + 1}"] if parents else []
        refs += [f"merge :{p + 1}" for p in parents[1:]]
        refs.append(f"M 100644 :{n + i + 1} {MARKER_FILE}")
        yield ("\n".join(refs) + "\n").encode()
        ids, writers = trees.writes(i)
        yield b"".join(b"M 100644 :%d %s\n" % (n + w + 1, table[p])
                       for p, w in zip(ids.tolist(), writers.tolist(), strict=True)) + b"\n"
    for tag, c in sorted(history.tags.items()):
        yield f"reset refs/tags/{tag}\nfrom :{c + 1}\n\n".encode()
    tip = max(i for i, t in enumerate(history.topic_of) if t == 0)
    yield f"reset refs/heads/master\nfrom :{tip + 1}\n\n".encode()


def export_git(history: History, directory: str | Path) -> Path:
    """Write the history as a git repository in ``directory`` (which must not exist or be empty);
    an export that does not finish (an error, Ctrl-C) removes what it wrote, so it can run again."""
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BisectlabError(f"{target} exists and is not an empty directory")
    if shutil.which("git") is None:
        raise BisectlabError("git is not installed")
    made = _outermost_missing(target)
    try:
        _fill(history, target)
    except BaseException:
        _undo(target, made)
        raise
    return target


def _fill(history: History, target: Path) -> None:
    """Make the directory ``target`` (or take it empty), the repository in it, and check out
    master."""
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BisectlabError(f"cannot make {target}: {exc.strerror}") from None
    _git(target, "init", "-q", "-b", "master")
    # stored (uncompressed) pack objects: with a tree per directory a commit writes, deflating
    # them costs fast-import as much again as everything else; the pack is a quarter larger
    with subprocess.Popen(["git", "-c", "pack.compression=0", "fast-import", "--quiet", "--done"],
                          cwd=target, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stderr is not None
        try:
            for chunk in fast_import_stream(history):
                proc.stdin.write(chunk)
            proc.stdin.write(b"done\n")
        except BrokenPipeError:  # git stopped reading: it says why below
            pass
        except BaseException:  # git must be gone before what it wrote is removed
            proc.kill()
            proc.wait()
            raise
        finally:
            with contextlib.suppress(OSError):  # what git was not sent is dropped
                proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        last = (err.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise BisectlabError(f"git fast-import failed: {last}")
    _git(target, "checkout", "-q", "-f", "master")


def _outermost_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that is not there yet (None: ``path`` is)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            break
        missing = folder
    return missing


def _undo(target: Path, made: Path | None) -> None:
    """Remove what an unfinished export wrote: the directories it made, or else everything in
    ``target``, which was empty (a directory that held anything was refused before)."""
    with contextlib.suppress(OSError):
        if made is not None:
            shutil.rmtree(made)
            return
        for entry in target.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _quoted(path: str) -> str:
    """A path as fast-import reads it: C-style quoted if it holds a newline or starts with a quote."""
    if "\n" not in path and not path.startswith('"'):
        return path
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BisectlabError(f"git {args[0]} failed: {result.stderr.strip()}")
    return result.stdout
