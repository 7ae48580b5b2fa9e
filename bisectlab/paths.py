"""The paths each commit touches, stored compactly, and git-style pathspecs over them.

A :class:`ChangedPaths` is a table of distinct paths plus CSR rows: commit c touches
``table[ids[offsets[c]:offsets[c + 1]]]``. At 10^6 commits that is two numpy arrays and one string
per distinct path, not a Python list per commit. Merges touch nothing of their own (as in
``git log --name-only``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bisectlab.errors import HistoryError

GLOB_CHARS = "*?["


@dataclass(frozen=True, eq=False)
class ChangedPaths:
    """Per commit, the paths it touches: ``ids[offsets[c]:offsets[c + 1]]`` index ``table``."""

    table: Sequence[str]
    offsets: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @classmethod
    def empty(cls, commits: int) -> ChangedPaths:
        """No commit touches anything (a history without path information)."""
        return cls((), np.zeros(commits + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))

    @classmethod
    def from_lists(cls, per_commit: Iterable[Iterable[str]]) -> ChangedPaths:
        """Build the table and rows from one list of paths per commit (duplicates dropped)."""
        index: dict[str, int] = {}
        ids: list[int] = []
        offsets = [0]
        for paths in per_commit:
            for p in dict.fromkeys(paths):
                ids.append(index.setdefault(p, len(index)))
            offsets.append(len(ids))
        return cls(tuple(index), np.array(offsets, dtype=np.int64), np.array(ids, dtype=np.int32))

    def of(self, commit: int) -> list[str]:
        """The paths commit ``commit`` touches."""
        lo, hi = self.offsets[commit], self.offsets[commit + 1]
        return [self.table[i] for i in self.ids[lo:hi]]

    def counts(self) -> np.ndarray:
        """How many paths each commit touches."""
        return np.diff(self.offsets)

    def touching(self, pathspec: str) -> np.ndarray:
        """Boolean mask over commits: which touch a path the pathspec matches."""
        return self.touching_table(table_mask(self.table, pathspec))

    def touching_table(self, hit: np.ndarray) -> np.ndarray:
        """Boolean mask over commits: which touch one of the table entries marked in ``hit``."""
        rows = np.repeat(np.arange(len(self), dtype=np.int64), self.counts())
        out = np.zeros(len(self), dtype=bool)
        if len(self.ids):
            out[rows[hit[self.ids]]] = True
        return out


def check_pathspec(pathspec: str) -> str:
    """The pathspec without a trailing slash; magic (':(exclude)...') and absolute paths are refused."""
    spec = pathspec.strip()
    if not spec:
        raise HistoryError("empty pathspec")
    if spec.startswith(":"):
        raise HistoryError(f"pathspec magic is not supported: '{pathspec}'")
    if spec.startswith("/"):
        raise HistoryError(f"pathspec must be relative to the top of the tree: '{pathspec}'")
    return spec.rstrip("/") or spec


def table_mask(table: Sequence[str], pathspec: str) -> np.ndarray:
    """Which table paths a pathspec matches, as git does: a literal pathspec matches that path and
    everything under it (a directory prefix); one with * ? [ is an fnmatch pattern on the whole
    path where * also matches '/' (drivers/*/e1000e/* matches drivers/net/e1000e/netdev.c,
    drivers/*/e1000e matches nothing, as in git)."""
    spec = check_pathspec(pathspec)
    if spec == ".":
        return np.ones(len(table), dtype=bool)
    if not any(ch in spec for ch in GLOB_CHARS):
        under = spec + "/"
        return np.fromiter((p == spec or p.startswith(under) for p in table), dtype=bool,
                           count=len(table))
    match = re.compile(fnmatch.translate(spec)).match
    return np.fromiter((match(p) is not None for p in table), dtype=bool, count=len(table))


def check_path(path: str) -> str:
    """A path as a commit may touch it: relative, no empty, '.' or '..' component."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise HistoryError(f"not a relative file path: '{path}'")
    return path
