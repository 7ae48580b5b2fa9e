"""Commit histories: a kernel-shaped DAG with feature toggles, its bug, and its advertised ranges.

A :class:`History` keeps its commits in one topological numbering (every parent has a smaller
index), in compact lists for speed, and offers the same DAG as a ``networkx.DiGraph`` (edges parent
-> child) through :attr:`History.graph`. Scenario files are small TOML recipes: generator settings
plus the pinned commits that matter; everything else is generated from the seed.
"""

from __future__ import annotations

import hashlib
import operator
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, overload

import numpy as np

from bisectlab import dag
from bisectlab.bugs import Bug, bug_from_spec
from bisectlab.errors import HistoryError, RangeError, clipped
from bisectlab.generator import KernelShape, Pin, TopicPin, generate_kernel_history
from bisectlab.paths import ChangedPaths

if TYPE_CHECKING:
    import networkx as nx

    from bisectlab.strategies import SearchSpace


T = TypeVar("T")


class Column(Sequence[T]):
    """A history's read-only column whose items are built when asked for (a hunt reads a few
    dozen of 10^6): reads like a list. A subclass gives ``__len__`` and ``_item(i)``."""

    def _item(self, i: int) -> T:
        raise NotImplementedError

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        n = len(self)
        if isinstance(i, slice):
            return [self._item(j) for j in range(*i.indices(n))]
        i = operator.index(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(i)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]


class Shas(Column[str]):
    """A history's shas, each hashed when asked for (blake2b of name:seed:number): all of 10^6
    cost 0.6 s and 100 MB."""

    def __init__(self, prefix: str, count: int):
        self._prefix, self._count = prefix.encode(), count

    def __len__(self) -> int:
        return self._count

    def _item(self, i: int) -> str:
        return hashlib.blake2b(self._prefix + b"%d" % i, digest_size=20).hexdigest()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Shas):
            return (self._prefix, self._count) == (other._prefix, other._count)
        return super().__eq__(other)

    def __repr__(self) -> str:
        return f"Shas({self._prefix.decode()!r}, {self._count})"


class PackedShas(Column[str]):
    """Shas kept as 20 raw bytes each (an (n, 20) uint8 array, as a history file stores them),
    turned to hex when asked for: 20 MB at 10^6 commits instead of 100 MB of strings."""

    def __init__(self, raw: np.ndarray):
        self._raw = np.ascontiguousarray(raw, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._raw)

    def _item(self, i: int) -> str:
        return self._raw[i].tobytes().hex()


class PackedText(Column[str]):
    """Strings kept as one UTF-8 blob and their offsets (as a history file stores subjects),
    each decoded when asked for: 45 MB at 10^6 subjects instead of 90 MB of str objects."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray, errors: str = "surrogateescape"):
        self._blob = blob.tobytes()
        self._offsets = np.ascontiguousarray(offsets, dtype=np.int64)
        self._errors = errors

    @classmethod
    def split(cls, blob: np.ndarray, separator: int = 0) -> PackedText:
        """The strings of ``blob`` (uint8) between ``separator`` bytes."""
        cuts = np.flatnonzero(blob == separator)
        return cls(blob, np.concatenate(([0], cuts + 1, [len(blob) + 1])))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def _item(self, i: int) -> str:
        return self._blob[self._offsets[i]:self._offsets[i + 1] - 1].decode("utf-8", self._errors)


class PackedInts(Column[int]):
    """Integers kept in one int64 array (as a history file's times are), read as Python ints:
    8 MB at 10^6 commits instead of 36 MB of int objects. ``np.asarray`` gets the array."""

    def __init__(self, values: np.ndarray):
        self._values = np.array(values, dtype=np.int64)
        self._values.flags.writeable = False

    def __len__(self) -> int:
        return len(self._values)

    def _item(self, i: int) -> int:
        return int(self._values[i])

    def __array__(self, dtype: object = None, copy: bool | None = None) -> np.ndarray:
        """The values (read-only), or a copy where numpy asks for one (np.array does)."""
        values = self._values if dtype is None else self._values.astype(dtype, copy=False)
        return values.copy() if copy else values


@dataclass(frozen=True)
class Range:
    """A GOOD..BAD range the scenario advertises, with its true first bad commit."""

    good: str
    bad: str
    culprit: int


@dataclass
class History:
    """A commit DAG in topological numbering, with subjects, times, tags, toggles, the paths each
    commit touches and a bug.

    ``given_shas`` holds a real repository's shas (an imported history); without them the shas
    are derived from the name, seed and commit number. ``paths`` defaults to no paths at all.
    """

    name: str
    seed: int
    parents: list[tuple[int, ...]]
    subjects: Sequence[str]
    times: Sequence[int]
    topics: list[str]
    topic_of: list[int]
    tags: dict[str, int]
    toggles: dict[int, dict[str, bool]]
    upstream: dict[int, str] = field(default_factory=dict)
    bug: Bug | None = None
    advertised: list[tuple[str, str]] = field(default_factory=list)
    description: str = ""
    source: str = ""
    paths: ChangedPaths | None = None
    given_shas: Sequence[str] | None = None
    commit_times: list[int] | None = None  # committer dates, where they differ from author dates

    def __post_init__(self) -> None:
        if self.paths is None:
            self.paths = ChangedPaths.empty(len(self.parents))
        if len(self.paths) != len(self.parents):
            raise HistoryError(f"{self.name}: paths for {len(self.paths)} commits, "
                               f"history has {len(self.parents)}")
        if self.given_shas is not None and len(self.given_shas) != len(self.parents):
            raise HistoryError(f"{self.name}: {len(self.given_shas)} shas for "
                               f"{len(self.parents)} commits")

    def __len__(self) -> int:
        return len(self.parents)

    @cached_property
    def shas(self) -> Sequence[str]:
        """The real shas if given, else stable 40-hex shas derived from name, seed and number
        (each hashed when asked for)."""
        if self.given_shas is not None:
            return self.given_shas
        return Shas(f"{self.name}:{self.seed}:", len(self.parents))

    @cached_property
    def _sha_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.shas)}

    @cached_property
    def _sorted_shas(self) -> list[str]:
        return sorted(self.shas)

    @cached_property
    def tags_at(self) -> dict[int, list[str]]:
        """Tags by commit."""
        out: dict[int, list[str]] = {}
        for tag, c in self.tags.items():
            out.setdefault(c, []).append(tag)
        return out

    @cached_property
    def children(self) -> list[list[int]]:
        """Child lists, the reverse of :attr:`parents`."""
        kids: list[list[int]] = [[] for _ in self.parents]
        for x, ps in enumerate(self.parents):
            for p in ps:
                kids[p].append(x)
        return kids

    @cached_property
    def graph(self) -> nx.DiGraph:
        """The history as a networkx DiGraph (edge parent -> child) keyed by commit number."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for i in range(len(self)):
            g.add_node(
                i,
                sha=self.shas[i],
                subject=self.subjects[i],
                time=self.times[i],
                tags=self.tags_at.get(i, []),
                toggles=self.toggles.get(i, {}),
                paths=self.paths_of(i),
            )
        g.add_edges_from((p, x) for x, ps in enumerate(self.parents) for p in ps)
        return g

    # changed paths ------------------------------------------------------------------------------

    def paths_of(self, c: int) -> list[str]:
        """The paths commit c touches (none for a merge)."""
        return self.paths.of(c)

    def search_space(self, goods: Sequence[int], bad: int) -> SearchSpace:
        """The candidates of GOOD..BAD as strategies see them: the DAG, the commits' names and
        committer times (git walks by them), and which commits touch a pathspec."""
        from bisectlab.strategies import SearchSpace

        times = self.commit_times if self.commit_times is not None else self.times
        return SearchSpace(self.parents, goods, bad, names=self.shas, times=times,
                           touching=self.touching if self.paths is not None else None)

    def touching(self, pathspec: str) -> np.ndarray:
        """Boolean mask over commits: which touch a path matching ``pathspec``, a directory
        prefix (drivers/net) or a glob (drivers/net/*, *.h), as git matches pathspecs."""
        return self.paths.touching(pathspec)

    @cached_property
    def generation(self) -> np.ndarray:
        """Longest-path depth of each commit."""
        return dag.generation_numbers(self.parents)

    # refs ---------------------------------------------------------------------------------------

    def resolve(self, ref: str) -> int:
        """Commit number of a tag, a full sha or a unique sha prefix (at least 4 hex digits)."""
        ref = ref.strip()
        if ref in self.tags:
            return self.tags[ref]
        sha = ref.lower()
        if sha in self._sha_index:
            return self._sha_index[sha]
        if len(sha) >= 4 and all(ch in "0123456789abcdef" for ch in sha):
            matches = self._prefix_matches(sha)
            if len(matches) == 1:
                return self._sha_index[matches[0]]
            if len(matches) > 1:
                raise HistoryError(f"ambiguous ref '{clipped(ref)}' in {self.name}: "
                                   f"{len(matches)} shas match")
        if 0 < len(sha) < 4 and all(ch in "0123456789abcdef" for ch in sha):
            raise HistoryError(f"unknown ref '{clipped(ref)}' in {self.name} (a sha prefix needs at "
                               "least 4 hex digits)")
        raise HistoryError(f"unknown ref '{clipped(ref)}' in {self.name} (not a tag or sha)")

    def _prefix_matches(self, prefix: str) -> list[str]:
        import bisect

        shas = self._sorted_shas
        lo = bisect.bisect_left(shas, prefix)
        out = []
        for s in shas[lo:]:
            if not s.startswith(prefix):
                break
            out.append(s)
        return out

    def describe(self, c: int) -> str:
        """Short one-line name of a commit: short sha and subject."""
        return f"{self.shas[c][:12]} {self.subjects[c]}"

    # features and ground truth ------------------------------------------------------------------

    @cached_property
    def _toggle_order(self) -> list[int]:
        gen = self.generation
        return sorted(self.toggles, key=lambda c: (gen[c], self.times[c], c))

    @cached_property
    def _toggle_reach(self) -> list[int]:
        """Per commit, a bitmask of the toggling commits that are its ancestors-or-self."""
        bit = {c: 1 << i for i, c in enumerate(self._toggle_order)}
        reach = [0] * len(self)
        for x, ps in enumerate(self.parents):
            m = bit.get(x, 0)
            for p in ps:
                m |= reach[p]
            reach[x] = m
        return reach

    def features_at(self, c: int) -> dict[str, bool]:
        """Feature state at commit c: the newest toggling ancestor-or-self decides each feature."""
        mask = self._toggle_reach[c]
        order = self._toggle_order
        state: dict[str, bool] = {}
        while mask:
            i = mask.bit_length() - 1
            mask ^= 1 << i
            for feature, value in self.toggles[order[i]].items():
                state.setdefault(feature, value)
        return state

    @cached_property
    def features(self) -> list[str]:
        """Every feature name toggled somewhere in the history."""
        return sorted({f for t in self.toggles.values() for f in t})

    def bad_mask(self, arch: str | None = None) -> np.ndarray:
        """Ground truth: which commits carry the bug (that can show on ``arch``; default i386)."""
        if self.bug is None:
            raise HistoryError(f"history {self.name} has no bug to hunt")
        return self.bug.bad_mask(self) if arch is None else self.bug.bad_mask(self, arch)

    def check_range(self, good: int, bad: int) -> None:
        """Reject GOOD..BAD ranges that cannot be bisected."""
        if good == bad:
            raise RangeError("GOOD and BAD are the same commit")
        if not dag.is_ancestor(self.parents, good, bad):
            swapped = dag.is_ancestor(self.parents, bad, good)
            raise RangeError(
                f"GOOD {self.shas[good][:12]} is not an ancestor of BAD {self.shas[bad][:12]}"
                + (" (swapped? BAD is an ancestor of GOOD)" if swapped else "")
            )

    def true_culprit(self, good: int, bad: int, arch: str | None = None) -> int | None:
        """The unique first bad commit in GOOD..BAD (on rigs of ``arch``), or None if the bug is
        absent there or not monotone."""
        if self.bug is None:
            return None
        cands = dag.candidates(self.parents, bad, [good])
        is_bad = self.bad_mask(arch)
        bad_cands = cands[is_bad[cands]]
        if len(bad_cands) == 0 or is_bad[good]:
            return None
        in_range = set(cands.tolist())
        first = [
            int(x)
            for x in bad_cands
            if not any(is_bad[p] and p in in_range for p in self.parents[x])
        ]
        if len(first) != 1:
            return None
        below = dag.descendants_mask(self.parents, first[0])[cands]
        return first[0] if np.array_equal(below, is_bad[cands]) else None

    @cached_property
    def ranges(self) -> list[Range]:
        """The advertised ranges with their true culprits (each must have a unique one)."""
        out = []
        for good, bad in self.advertised:
            g, b = self.resolve(good), self.resolve(bad)
            culprit = self.true_culprit(g, b)
            if culprit is None:
                raise HistoryError(f"{self.name}: range {good}..{bad} has no unique first bad commit")
            out.append(Range(good, bad, culprit))
        return out


# scenario files ---------------------------------------------------------------------------------

SCENARIO_SUFFIX = ".toml"
HISTORY_FILE_SUFFIX = ".npz"


def builtin_scenarios() -> list[str]:
    """Names of the scenarios that ship with bisectlab."""
    folder = resources.files("bisectlab.scenarios")
    return sorted(
        p.name.removesuffix(SCENARIO_SUFFIX)
        for p in folder.iterdir()
        if p.name.endswith(SCENARIO_SUFFIX)
    )


DEFAULT_SCENARIO = "e1000e-2.6.27"


def load_history(name_or_file: str | os.PathLike[str] | None = None) -> History:
    """Load a shipped scenario by name, a scenario file (.toml recipe) or a history file (.npz,
    e.g. an imported repository) by path: the suffix decides."""
    name_or_file = DEFAULT_SCENARIO if name_or_file is None else os.fspath(name_or_file)
    if not name_or_file.strip():  # an unset shell variable, say: not a quiet default
        raise HistoryError("the history is empty text: give a shipped scenario's name ("
                           f"{', '.join(builtin_scenarios())}) or a file")
    path = Path(name_or_file)
    if path.suffix == HISTORY_FILE_SUFFIX:
        if not path.is_file():
            raise HistoryError(f"history file not found: {name_or_file}")
        from bisectlab.histfile import read_history_file

        return read_history_file(path)
    if path.is_dir():
        raise HistoryError(f"history file {clipped(name_or_file)} is a directory: give a "
                           "scenario (.toml) or history file (.npz) in it")
    if path.suffix == SCENARIO_SUFFIX or path.exists() or "/" in name_or_file:
        if not path.is_file():
            raise HistoryError(f"history file not found: {name_or_file}")
        text = _read_text(path)
        source = str(path.resolve())
    else:
        resource = resources.files("bisectlab.scenarios") / (name_or_file + SCENARIO_SUFFIX)
        if not resource.is_file():
            known = ", ".join(builtin_scenarios())
            raise HistoryError(f"unknown history '{name_or_file}' (shipped: {known})")
        text = resource.read_text(encoding="utf-8")
        source = name_or_file
    return history_from_toml(text, source=source)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryError(f"cannot read history file {path}: {exc}") from None


def history_from_toml(text: str, source: str = "<string>") -> History:
    """Build a history from a scenario recipe (TOML text)."""
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise HistoryError(f"malformed history file {source}: {exc}") from None
    try:
        return history_from_spec(spec, source=source)
    except HistoryError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError,
            MemoryError) as exc:
        raise HistoryError(f"malformed history file {source}: {exc!r}") from None


def history_from_spec(spec: Mapping, source: str = "<spec>") -> History:
    """Build a history from a parsed scenario recipe."""
    name = _require(spec, "name", str, source)
    seed = _require(spec, "seed", int, source)
    gen = spec.get("generate", {})
    if not isinstance(gen, Mapping):
        raise HistoryError(f"malformed history file {source}: [generate] must be a table")
    shape = KernelShape.from_spec(gen)
    topics = [TopicPin.from_spec(t) for t in spec.get("topic", [])]
    pins = [Pin.from_spec(p) for p in spec.get("commit", [])]
    history = generate_kernel_history(name, seed, shape, topics=topics, pins=pins)
    history.description = str(spec.get("description", ""))
    history.source = source
    history.advertised = [(str(r["good"]), str(r["bad"])) for r in spec.get("range", [])]
    for good, bad in history.advertised:  # an advertised range must name commits it has
        history.check_range(history.resolve(good), history.resolve(bad))
    if "bug" in spec:
        history.bug = bug_from_spec(spec["bug"], history)
    return history


def _require(spec: Mapping, key: str, kind: type, source: str):
    value = spec.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise HistoryError(f"malformed history file {source}: '{key}' must be a {kind.__name__}")
    return value


def toml_recipe(spec: Mapping) -> str:
    """Render a flat scenario recipe (as written by `history generate`) as TOML."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping]] = []
    for key, value in spec.items():
        if isinstance(value, Mapping):
            tables.append((f"[{key}]", value))
        elif isinstance(value, list) and value and isinstance(value[0], Mapping):
            tables.extend((f"[[{key}]]", item) for item in value)
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for header, table in tables:
        lines += ["", header]
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Sequence):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
