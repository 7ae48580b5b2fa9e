"""A real git repository's shape as a History: refs by `git rev-parse`, the DAG by `git rev-list`,
subjects, author dates and changed paths by one `git log`, tags by `git for-each-ref`.

Pure I/O: no strategy, no simulation, no file contents read. The one entry point is
:func:`history_from_repo`::

    history, goods, bad = history_from_repo("linux", ["v2.6.26"], "v2.6.27-rc8")
    space = SearchSpace(history.parents, goods, bad, names=history.shas)

The History holds the range GOOD..BAD plus enough ancestors to connect every commit the range
grows from (its boundary) to a GOOD commit: everything reachable from BAD or a GOOD down to a
common ancestor of the boundary and the GOODs, where history is cut (the commits there become
roots). So the candidates of (goods, bad) in the History are exactly `git rev-list BAD ^GOOD...`.
Without GOODs it is the whole history of BAD, from its root(s).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from bisectlab.errors import HistoryError, RangeError, clipped
from bisectlab.history import History
from bisectlab.paths import ChangedPaths

GIT_CONFIG = ("-c", "core.warnAmbiguousRefs=true", "-c", "log.showSignature=false",
              "-c", "i18n.logOutputEncoding=UTF-8", "-c", "core.quotePath=false")
REPOSITORY_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE",
                  "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE")
LOG_FORMAT = "--format=%x1e%H%x1f%at%x1f%ct%x1f%s"
TOPICS = ["mainline", "branch"]


class RepoRange(NamedTuple):
    """A repository's history with the commit numbers of the GOOD refs and of BAD."""

    history: History
    goods: list[int]
    bad: int


def history_from_repo(directory: str | Path, goods: Sequence[str], bad: str,
                      name: str | None = None) -> RepoRange:
    """The History of GOOD..BAD in the git repository at ``directory`` (several GOODs allowed, as
    in `git bisect start BAD GOOD1 GOOD2`; none: all of BAD's history), with the commit numbers
    of the GOODs and of BAD. Real shas, subjects, author dates, tags and changed paths.

    Raises a one-line HistoryError for a missing, bare or non-git directory and for unknown or
    ambiguous refs, and a RangeError when a GOOD is BAD or is not an ancestor of BAD.
    """
    top = repository_root(directory)
    bad_sha = resolve_ref(top, bad)
    good_shas = [resolve_ref(top, g) for g in goods]
    for ref, sha in zip(goods, good_shas, strict=True):
        check_good(top, ref, sha, bad, bad_sha)
    revisions = revision_args(top, good_shas, bad_sha)
    history = read_history(top, revisions, name or top.name)
    index = {s: i for i, s in enumerate(history.shas)}
    return RepoRange(history, [index[s] for s in good_shas], index[bad_sha])


def repository_root(directory: str | Path) -> Path:
    """The top of the work tree holding ``directory``; refuses a non-git or bare repository."""
    path = Path(directory)
    if not path.is_dir():
        raise HistoryError(f"no such directory: {path}")
    if shutil.which("git") is None:
        raise HistoryError("git is not installed")
    result = _run(path, "rev-parse", "--is-bare-repository", "--is-inside-work-tree", check=False)
    if result.returncode != 0:
        raise HistoryError(f"{path} is not a git repository")
    bare, inside = result.stdout.split()
    if bare == "true":
        raise HistoryError(f"{path} is a bare repository (give a clone with a work tree)")
    if inside != "true":
        raise HistoryError(f"{path} is inside a .git directory, not a work tree")
    return Path(_git(path, "rev-parse", "--show-toplevel").strip())


def resolve_ref(top: Path, ref: str) -> str:
    """The full sha of the commit a ref names: a tag, a branch, HEAD~3, a unique sha prefix,
    ':/text' (the youngest commit whose message matches)."""
    if not ref.strip() or ref.startswith("-"):
        raise HistoryError(f"unknown ref '{clipped(ref)}' in {top}")
    # ':/text' names the youngest commit whose message matches: a suffix would join the text
    spec = ref if ref.startswith(":/") else f"{ref}^{{commit}}"
    result = _run(top, "rev-parse", "--verify", "--end-of-options", spec, check=False)
    if "ambiguous" in result.stderr:
        raise HistoryError(f"ambiguous ref '{clipped(ref)}' in {top}: "
                           f"{clipped(_first_line(result.stderr), 120)}")
    if result.returncode != 0:
        raise HistoryError(f"unknown ref '{clipped(ref)}' in {top} "
                           "(not a commit, branch, tag or revision)")
    return result.stdout.strip()


def check_good(top: Path, good: str, good_sha: str, bad: str, bad_sha: str) -> None:
    """A GOOD must be a proper ancestor of BAD."""
    if good_sha == bad_sha:
        raise RangeError(f"GOOD {good} and BAD {bad} are the same commit ({bad_sha[:12]})")
    result = _run(top, "merge-base", "--is-ancestor", good_sha, bad_sha, check=False)
    if result.returncode == 1:
        raise RangeError(f"GOOD {good} ({good_sha[:12]}) is not an ancestor of BAD {bad} "
                         f"({bad_sha[:12]})")
    if result.returncode != 0:
        raise HistoryError(f"git merge-base failed in {top}: {_first_line(result.stderr)}")


def revision_args(top: Path, goods: Sequence[str], bad: str) -> list[str]:
    """What to list: BAD and the GOODs, down to a common ancestor of the GOODs and the range's
    boundary (the commits outside the range it grows from), so each boundary commit reaches a
    GOOD inside the History; all of it if they have none (unrelated roots)."""
    if not goods:
        return [bad]
    lines = _git(top, "rev-list", "--boundary", bad, *(f"^{g}" for g in goods)).split()
    boundary = [line[1:] for line in lines if line.startswith("-")]
    result = _run(top, "merge-base", "--octopus", *dict.fromkeys([*boundary, *goods]), check=False)
    base = result.stdout.split()[:1] if result.returncode == 0 else []
    return [bad, *goods, "--boundary", *(f"^{b}" for b in base)]


def read_history(top: Path, revisions: Sequence[str], name: str) -> History:
    """The History of the listed commits (git log runs beside git rev-list, on its own core)."""
    with tempfile.TemporaryFile() as log_file:
        log = subprocess.Popen(_command(top, "log", "-z", "--name-only", "--no-renames", LOG_FORMAT,
                                        *revisions), stdout=log_file, stderr=subprocess.PIPE,
                               env=_environment())
        try:
            shas, parents = read_dag(top, revisions)
        except BaseException:
            log.kill()
            log.wait()
            raise
        _, err = log.communicate()
        if log.returncode != 0:
            raise HistoryError(f"git log failed in {top}: {_first_line(err.decode(errors='replace'))}")
        log_file.seek(0)
        subjects, times, commit_times, paths = parse_log(log_file.read(), shas)
    return History(
        name=name, seed=0, parents=parents, subjects=subjects, times=times, topics=list(TOPICS),
        topic_of=mainline_of(parents), tags=read_tags(top, shas), toggles={}, upstream={},
        description=f"imported from the git repository {top}", source=str(top), paths=paths,
        given_shas=shas, commit_times=commit_times,
    )


def read_dag(top: Path, revisions: Sequence[str]) -> tuple[list[str], list[tuple[int, ...]]]:
    """Shas and parent numbers from `git rev-list --parents --topo-order --reverse`; boundary
    commits (where history is cut) come first, as roots."""
    out = _git(top, "rev-list", "--parents", "--topo-order", "--reverse", *revisions)
    lines = out.splitlines()
    cut = [line[1:].split(maxsplit=1)[0] for line in lines if line.startswith("-")]
    inner = [line.split() for line in lines if not line.startswith("-")]
    shas = cut + [fields[0] for fields in inner]
    index = {s: i for i, s in enumerate(shas)}
    parents: list[tuple[int, ...]] = [()] * len(cut)
    for child, fields in enumerate(inner, start=len(cut)):
        ps = tuple(index[p] for p in fields[1:] if p in index)
        if any(p >= child for p in ps):
            raise HistoryError(f"git rev-list listed a commit before its parent in {top}")
        parents.append(ps)
    return shas, parents


def parse_log(data: bytes, shas: Sequence[str]
              ) -> tuple[list[str], list[int], list[int], ChangedPaths]:
    """Subjects, author and committer times and changed paths, in the order of ``shas``, from the
    output of `git log -z --name-only`: records '\\x1e sha \\x1f author time \\x1f committer time
    \\x1f subject', each followed by its paths, all NUL-separated (the first path after a
    newline). One pass over the tokens."""
    heads: list[bytes] = []
    owner: list[int] = []  # per path token, the record it belongs to
    ids: list[int] = []
    table: dict[bytes, int] = {}
    intern = table.setdefault
    for token in data.split(b"\0"):
        if token[:1] == b"\x1e":
            heads.append(token)
        elif token:
            owner.append(len(heads) - 1)
            ids.append(intern(token.lstrip(b"\n"), len(table)))
    subjects, times, commit_times, commit_of = _commits_of(heads, shas)
    rows = np.array(commit_of, dtype=np.int64)[np.array(owner, dtype=np.int64)]
    order = np.argsort(rows, kind="stable")
    names = tuple(p.decode("utf-8", "surrogateescape") for p in table)
    offsets = np.concatenate(([0], np.cumsum(np.bincount(rows, minlength=len(shas)))))
    return (subjects, times, commit_times,
            ChangedPaths(names, offsets, np.array(ids, dtype=np.int32)[order]))


def _commits_of(heads: list[bytes], shas: Sequence[str]
                ) -> tuple[list[str], list[int], list[int], list[int]]:
    """Subjects, author and committer times by commit from the log's records, and the commit of
    each record."""
    index = {s.encode(): i for i, s in enumerate(shas)}
    subjects = [""] * len(shas)
    times = [0] * len(shas)
    commit_times = [0] * len(shas)
    commit_of = []
    for head in heads:
        sha, time, commit_time, subject = head[1:].split(b"\x1f", 3)
        c = index.get(sha)
        if c is None:
            raise HistoryError(f"git log listed {sha.decode()[:12]}, which git rev-list did not")
        subjects[c] = subject.decode("utf-8", "replace")
        times[c] = int(time or 0)
        commit_times[c] = int(commit_time or 0)
        commit_of.append(c)
    if len(set(commit_of)) != len(shas):
        raise HistoryError(f"git log and git rev-list disagree ({len(set(commit_of))} of "
                           f"{len(shas)} commits)")
    return subjects, times, commit_times, commit_of


def read_tags(top: Path, shas: Sequence[str]) -> dict[str, int]:
    """Tags that name a commit of the history (annotated tags peeled)."""
    index = {s: i for i, s in enumerate(shas)}
    out = _git(top, "for-each-ref", "--format=%(objectname)%00%(*objectname)%00%(refname)",
               "refs/tags")
    tags = {}
    for line in out.splitlines():
        target, peeled, ref = line.split("\0")
        commit = index.get(peeled or target)
        if commit is not None:
            tags[ref.removeprefix("refs/tags/")] = commit
    return tags


def mainline_of(parents: Sequence[Sequence[int]]) -> list[int]:
    """Topic numbers: 0 on the first-parent chain of the newest commit, 1 elsewhere."""
    topic = [1] * len(parents)
    x = len(parents) - 1
    while x >= 0:
        topic[x] = 0
        x = parents[x][0] if parents[x] else -1
    return topic


def _environment() -> dict[str, str]:
    """The environment without variables that would point git at another repository."""
    env = {k: v for k, v in os.environ.items() if k not in REPOSITORY_ENV}
    env["LC_ALL"] = "C"
    return env


def _command(top: Path, *args: str) -> list[str]:
    return ["git", "-C", str(top), *GIT_CONFIG, *args]


def _run(top: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(_command(top, *args), capture_output=True, text=True,
                            errors="surrogateescape", env=_environment())
    if check and result.returncode != 0:
        raise HistoryError(f"git {args[0]} failed in {top}: {_first_line(result.stderr)}")
    return result


def _git(top: Path, *args: str) -> str:
    return _run(top, *args).stdout


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"
