"""History files: a whole history (an imported repository's shape, or any History) in one compact,
compressed binary, a numpy .npz archive, loadable at 10^6 commits in a second or two.

Format version 1, one .npy array per zip entry (deflated, but the shas stored as they are: they do
not compress; entries dated 1980-01-01 so the same history always gives the same bytes):

    meta           uint8   UTF-8 JSON: format, version, name, seed, description, origin, topics,
                           tags {name: commit}, toggles {commit: {feature: bool}}, upstream
                           {commit: sha}, advertised [[good, bad], ...], bug (a [bug] table or null)
    sha            uint8   (n, 20) binary commit shas (n, 32 for SHA-256 repositories)
    parent_count   uint16  (n) parents per commit
    parent_delta   int64   child - parent, commits' parents in order (CSR by parent_count)
    time_delta     int64   (n) author times, epoch seconds, each minus the previous commit's
    topic_of       int32   (n) index into meta.topics
    subjects       uint8   UTF-8 subjects joined by NUL
    path_table     uint8   UTF-8 distinct paths joined by NUL
    path_count     uint32  (n) paths per commit
    path_ids       int32   indices into path_table, commits' paths in order (CSR by path_count)

Commits are numbered topologically (every parent before its children).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bisectlab.bugs import bug_from_spec
from bisectlab.errors import HistoryError
from bisectlab.history import History, PackedInts, PackedShas, PackedText
from bisectlab.paths import ChangedPaths

SUFFIX = ".npz"
FORMAT, VERSION = "bisectlab-history", 1
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
STORED = {"sha"}
ENCODING = ("utf-8", "surrogateescape")


def write_history_file(history: History, path: str | Path, origin: str = "") -> Path:
    """Write the history to ``path`` (.npz)."""
    return write_bytes(history_bytes(history, origin), path)


def history_bytes(history: History, origin: str = "") -> bytes:
    """The history file's bytes (the same history always gives the same bytes)."""
    buffer = io.BytesIO()
    write_npz(buffer, history_arrays(history, origin))
    return buffer.getvalue()


def write_bytes(data: bytes, path: str | Path) -> Path:
    """Write a history file atomically: a reader never sees half a file."""
    target = Path(path)
    if target.suffix != SUFFIX:
        raise HistoryError(f"a history file must end in {SUFFIX}: {target}")
    try:
        with replacing(target) as out:
            out.write(data)
    except OSError as exc:
        raise HistoryError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A file for ``path``'s new contents: a temporary file beside it, renamed over it when the
    block ends and removed if the block fails or is interrupted, so the old file stays whole
    until the new one is (a pipe or a device, which keeps nothing, is written as it is)."""
    if path.exists() and not path.is_file():
        with open(path, "wb") as out:
            yield out
        return
    real = Path(os.path.realpath(path))  # through a link, as a plain write goes
    handle, name = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name[:100]}.", suffix=".tmp")
    tmp = Path(name)
    try:
        os.chmod(handle, _mode_for(real))
        with open(handle, "wb") as out:
            yield out
        os.replace(tmp, real)
    finally:
        tmp.unlink(missing_ok=True)


def _mode_for(path: Path) -> int:
    """The permissions a file written at ``path`` gets: the old file's, or the umask's."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def history_arrays(history: History, origin: str = "") -> dict[str, np.ndarray]:
    """The history as the named arrays of the file format."""
    n = len(history)
    counts = np.fromiter(map(len, history.parents), dtype=np.uint16, count=n)
    deltas = np.fromiter((x - p for x, ps in enumerate(history.parents) for p in ps),
                         dtype=np.int64, count=int(counts.sum()))
    return {
        "meta": _bytes_array(json.dumps(_meta(history, origin), sort_keys=True).encode()),
        "sha": np.frombuffer(bytes.fromhex("".join(history.shas)), dtype=np.uint8).reshape(n, -1),
        "parent_count": counts,
        "parent_delta": deltas,
        "time_delta": np.diff(np.array(history.times, dtype=np.int64), prepend=0),
        "topic_of": np.array(history.topic_of, dtype=np.int32),
        "subjects": _joined(history.subjects),
        "path_table": _joined(history.paths.table),
        "path_count": history.paths.counts().astype(np.uint32),
        "path_ids": history.paths.ids.astype(np.int32),
    }


def _meta(history: History, origin: str) -> dict[str, Any]:
    return {
        "format": FORMAT, "version": VERSION, "name": history.name, "seed": history.seed,
        "description": history.description, "origin": origin, "topics": list(history.topics),
        "tags": history.tags,
        "toggles": {str(c): t for c, t in sorted(history.toggles.items())},
        "upstream": {str(c): u for c, u in sorted(history.upstream.items())},
        "advertised": [list(r) for r in history.advertised],
        "bug": history.bug.spec(history) if history.bug is not None else None,
    }


def write_npz(out: Any, arrays: dict[str, np.ndarray]) -> None:
    """A deterministic .npz: .npy entries with a fixed date, deflated but for the shas."""
    with zipfile.ZipFile(out, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED if name in STORED else zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def read_history_file(path: str | Path) -> History:
    """Load a history file written by :func:`write_history_file` (with its bug and ranges)."""
    source = Path(path)
    try:
        with np.load(source, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays["meta"].tobytes().decode())
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise HistoryError(f"cannot read history file {source}: {exc or 'empty'}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise HistoryError(f"{source} is not a bisectlab history file")
    if meta.get("version") != VERSION:
        raise HistoryError(f"{source}: history file version {meta.get('version')} "
                           f"(this bisectlab reads version {VERSION})")
    try:
        history = history_from_arrays(meta, arrays)
        history.source = str(source.resolve())
        if meta.get("bug"):
            history.bug = bug_from_spec(meta["bug"], history)
    except HistoryError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError,
            MemoryError) as exc:
        raise HistoryError(f"malformed history file {source}: {exc!r}") from None
    return history


def history_from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> History:
    """Rebuild the History from the file's arrays and meta data."""
    n = len(arrays["parent_count"])
    _check_indexes(meta, arrays, n)
    paths = ChangedPaths(
        tuple(_text(arrays["path_table"]).split("\0")) if len(arrays["path_table"]) else (),
        np.concatenate(([0], np.cumsum(arrays["path_count"], dtype=np.int64))),
        arrays["path_ids"].astype(np.int32),
    )
    subjects = PackedText.split(arrays["subjects"]) if n else []
    if len(subjects) != n or len(arrays["time_delta"]) != n or len(arrays["sha"]) != n:
        raise ValueError("arrays of different lengths")
    history = History(
        name=str(meta["name"]), seed=int(meta["seed"]),
        parents=_parents(arrays["parent_count"], arrays["parent_delta"]), subjects=subjects,
        times=PackedInts(np.cumsum(arrays["time_delta"])), topics=list(meta["topics"]),
        topic_of=arrays["topic_of"].tolist(), tags={str(k): int(v) for k, v in meta["tags"].items()},
        toggles={int(c): dict(t) for c, t in meta["toggles"].items()},
        upstream={int(c): str(u) for c, u in meta["upstream"].items()},
        advertised=[(str(g), str(b)) for g, b in meta["advertised"]],
        description=str(meta["description"]), paths=paths, given_shas=_shas(arrays["sha"]),
    )
    return history


def _check_indexes(meta: dict[str, Any], arrays: dict[str, np.ndarray], n: int) -> None:
    """ValueError where the file numbers a commit or a path it does not have (a hand-edited
    or damaged file), before anything is built on it."""
    paths = arrays["path_table"]
    path_count = int(np.count_nonzero(paths == 0)) + 1 if len(paths) else 0
    ids, counts = arrays["path_ids"], arrays["path_count"]
    if len(counts) != n or np.any(counts < 0) or int(counts.sum(dtype=np.int64)) != len(ids):
        raise ValueError("path counts do not match the path list")
    if len(ids) and (ids.min() < 0 or ids.max() >= path_count):
        raise ValueError("a changed path is numbered past the path table")
    commits = [*meta["tags"].values(), *meta["toggles"], *meta["upstream"]]
    if any(not 0 <= int(c) < n for c in commits):
        raise ValueError("a tag, toggle or upstream note names a commit the file does not have")


def _parents(counts: np.ndarray, deltas: np.ndarray) -> list[tuple[int, ...]]:
    """Parent tuples from the CSR arrays: built for single-parent commits in one pass, then fixed
    up for roots and merges."""
    n = len(counts)
    offsets = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    parent = np.repeat(np.arange(n, dtype=np.int64), counts) - deltas
    if np.any(deltas <= 0) or np.any(parent < 0):
        raise ValueError("parents are not numbered before their children")
    if len(parent) == 0:
        return [()] * n
    first = parent[np.minimum(offsets[:-1], len(parent) - 1)]
    parents: list[tuple[int, ...]] = list(zip(first.tolist()))
    for c in np.flatnonzero(counts != 1).tolist():
        parents[c] = tuple(parent[offsets[c]:offsets[c + 1]].tolist())
    return parents


def _shas(raw: np.ndarray) -> PackedShas:
    return PackedShas(raw)


def _joined(strings: Any) -> np.ndarray:
    """Strings joined by NUL (which none may hold) as UTF-8 bytes."""
    text = "\0".join(strings)
    if text.count("\0") != max(len(strings) - 1, 0):
        raise HistoryError("cannot store a subject or path holding a NUL character")
    return _bytes_array(text.encode(*ENCODING))


def _text(array: np.ndarray) -> str:
    return array.tobytes().decode(*ENCODING)


def _bytes_array(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint8)
