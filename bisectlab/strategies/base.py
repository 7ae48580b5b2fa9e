"""The strategy interface: observations in, the next test(s) out, and a verdict when sure.

A strategy sees only the DAG of candidate commits and test results, never the simulation, so the
same strategy drives a simulated lab or a real repository with a real test command.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import breadth_first_order

from bisectlab import dag
from bisectlab.options import StrategyOptions


@dataclass(frozen=True)
class Observation:
    """One test: a commit installed and booted ``boots`` times, ``failures`` of which showed the bug.

    A test stops at the first failure, so ``failures`` is 0 or 1 for the lab's tests. A
    ``skipped`` test found the commit untestable (git bisect's exit code 125, a failed build):
    it says nothing of the bug, and the commit is not proposed again.
    """

    commit: int
    boots: int
    failures: int
    skipped: bool = False

    @property
    def failed(self) -> bool:
        return self.failures > 0


@dataclass(frozen=True)
class Resources:
    """What the lab can give the next round: rigs free, adapters left (None = unlimited), the
    commit each free rig has installed (None: nothing yet), and what a step costs in lab
    minutes (None: unknown, and every test is priced alike)."""

    rigs: int = 1
    adapters_left: int | None = None
    installed: tuple[int | None, ...] = ()
    costs: LabCosts | None = None


@dataclass(frozen=True)
class LabCosts:
    """Lab minutes of each step of a test: installing a kernel, one boot, swapping an adapter."""

    install: float
    boot: float
    swap: float


@dataclass(frozen=True)
class Proposal:
    """The next round: commits to test at once (the i-th on the i-th free rig) and boots per
    install (stopping at the first failure), or each test's own boots (``each``)."""

    commits: tuple[int, ...]
    boots: int = 1
    each: tuple[int, ...] | None = None

    def boots_of(self, i: int) -> int:
        """The boots of the round's i-th test."""
        return self.boots if self.each is None else self.each[i]


@dataclass(frozen=True)
class Verdict:
    """The end of a hunt: the culprit (or best guess), how sure, and the evidence."""

    status: str  # "found" | "aborted" | "inconclusive"
    culprit: int | None
    confidence: float | None
    note: str
    remaining: int = 1
    evidence: dict[str, Any] = field(default_factory=dict)


class CommitIndex(Mapping[int, int]):
    """Commit -> its position among sorted commits, by binary search: a dict's interface without
    a dict of a million entries."""

    def __init__(self, commits: np.ndarray):
        self._commits = np.asarray(commits)

    def __getitem__(self, commit: object) -> int:
        if not isinstance(commit, int | np.integer):
            raise KeyError(commit)
        i = int(np.searchsorted(self._commits, commit))
        if i == len(self._commits) or self._commits[i] != commit:
            raise KeyError(commit)
        return i

    def __len__(self) -> int:
        return len(self._commits)

    def __iter__(self) -> Iterator[int]:
        return iter(self._commits.tolist())


def _candidates_and_parents(parents: Sequence[tuple[int, ...]], good: Sequence[int],
                            bad: int) -> tuple[np.ndarray, dag.Csr]:
    """The candidates of GOOD..BAD and their parents among them (local CSR), from one pass over
    the graph's parent tuples (whose arrays are dropped before the search structure is built)."""
    graph = dag.parent_arrays(parents)
    commits = np.flatnonzero(dag.candidate_mask(graph, bad, good))
    return commits, dag.restrict_parents(*graph, commits)


ANCESTOR_CACHE = 1 << 20  # ancestor indices a search space keeps for the tests to come


class SearchSpace:
    """The candidate commits of GOOD..BAD on a DAG, in a local numbering (0 = oldest)."""

    def __init__(self, parents: Sequence[tuple[int, ...]], good: Sequence[int], bad: int,
                 commits: np.ndarray | None = None, names: Sequence[str] | None = None,
                 times: Sequence[int] | None = None,
                 touching: Callable[[str], np.ndarray] | None = None):
        """``commits``: the candidates when already known, a sorted convex part of GOOD..BAD
        (those a deterministic hunt has not ruled out, say), instead of all of them.
        ``names``: what to call each commit of the graph in messages (shas), if known.
        ``times``: each commit's committer time (epoch seconds), if known: git walks by it.
        ``touching(pathspec)``: which commits of the graph touch a pathspec, if paths are known
        (a prior may lean on them)."""
        self.graph_parents = parents
        self.good = tuple(good)
        self.bad = bad
        self.names = names
        self.graph_times = times
        self.touching = touching
        if commits is None:
            self.commits, local = _candidates_and_parents(parents, self.good, bad)
        else:
            self.commits = commits
            local = dag.local_parent_arrays(parents, commits)
        self.sums = dag.AncestorSums(parents, self.commits, local)
        self.local = CommitIndex(self.commits)
        self._ancestors: dict[int, np.ndarray] = {}
        self._ancestors_kept = 0

    def __len__(self) -> int:
        return len(self.commits)

    def name(self, commit: int) -> str:
        """A commit as messages call it: its short sha if names are known, else its number."""
        return self.names[commit][:12] if self.names is not None else str(commit)

    @property
    def parents(self) -> list[tuple[int, ...]]:
        """Parents within the candidate set, in local numbering."""
        return self.sums.parents

    @cached_property
    def times(self) -> np.ndarray:
        """Committer time of each candidate (local numbering); where times are unknown the local
        numbering stands in, as if each commit were a second newer than the one before."""
        if self.graph_times is None:
            return np.arange(len(self.commits), dtype=np.int64)
        return np.asarray(self.graph_times, dtype=np.int64)[self.commits]

    @cached_property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Every parent link within the candidates as (child, parent) arrays, local numbering,
        each child's parents in their recorded order."""
        parents = self.parents
        children = np.repeat(np.arange(len(parents)), [len(ps) for ps in parents])
        heads = np.fromiter((p for ps in parents for p in ps), dtype=np.int64, count=len(children))
        return children, heads

    @cached_property
    def _graph(self) -> csr_matrix:
        """The candidate subgraph as a sparse child -> parent adjacency matrix."""
        return dag.parent_graph(self.sums.indptr, self.sums.indices)

    def ancestors(self, i: int) -> np.ndarray:
        """Local indices of the ancestors-or-self of local commit ``i`` within the candidates
        (read-only: kept for the next hunt that asks, up to ANCESTOR_CACHE entries in all)."""
        found = self._ancestors.get(i)
        if found is None:
            found = breadth_first_order(self._graph, i, directed=True, return_predecessors=False)
            found = found.copy()  # scipy's is a view of a candidate-long buffer: keep only it
            found.flags.writeable = False
            if self._ancestors_kept + len(found) <= ANCESTOR_CACHE:
                self._ancestors[i] = found
                self._ancestors_kept += len(found)
        return found

    def ancestor_mask(self, i: int) -> np.ndarray:
        """The same set as :meth:`ancestors`, as a boolean mask over the candidates."""
        mask = np.zeros(len(self), dtype=bool)
        mask[self.ancestors(i)] = True
        return mask


OBJECT_BYTES = 256  # about what a small Python object (an observation, an option) holds
REF_BYTES = 8  # what a list holds for an object it shares with another list


class Strategy(ABC):
    """Propose tests, learn from their results, and say when the culprit is known.

    ``Options`` declares the strategy's options (:mod:`bisectlab.options`); a
    strategy is built from a search space and one value of them. What it proposes depends only
    on its space, options, observations and the resources it is given (hunts share their
    decisions on that promise, :mod:`bisectlab.strategies.memo`): ``verdict``, ``abort`` and the
    questions (``belief``, ``progress``, ``evidence``) may keep caches, never change it.
    """

    name: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, space: SearchSpace, options: StrategyOptions | None = None):
        self.space = space
        self.options = options if options is not None else self.Options()
        self.history: list[Observation] = []
        self.untestable = np.zeros(len(space), dtype=bool)  # skipped commits (local numbering)

    @abstractmethod
    def propose(self, resources: Resources) -> Proposal:
        """The next commit(s) to test; only called while :meth:`verdict` is None."""

    def observe(self, obs: Observation) -> None:
        """Take one test result into account (a skip marks its commit untestable)."""
        self.history.append(obs)
        if obs.skipped and obs.commit in self.space.local:
            self.untestable[self.space.local[obs.commit]] = True

    @abstractmethod
    def verdict(self) -> Verdict | None:
        """The verdict once the strategy is done, else None."""

    @abstractmethod
    def abort(self, reason: str, status: str = "aborted") -> Verdict:
        """The verdict when the lab cannot go on (e.g. out of adapters): best guess so far."""

    def fork(self) -> Strategy:
        """An independent copy to go on from (sharing the search space): what it is told next
        leaves this one as it was."""
        return copy.deepcopy(self, {id(self.space): self.space})

    def kept_bytes(self) -> int:
        """About how much memory a fork of this strategy holds of its own (what a decision tree
        of kept states counts): its arrays but the search space's, and its history."""
        arrays = (v for v in vars(self).values() if isinstance(v, np.ndarray))
        return sum(a.nbytes for a in arrays) + OBJECT_BYTES * (len(self.history) + 16)

    def belief(self) -> np.ndarray:
        """How likely each candidate is to be the culprit, as far as the strategy can tell."""
        return np.full(len(self.space), 1.0 / len(self.space))

    def params(self) -> dict[str, Any]:
        """The strategy's options, as logged with the hunt."""
        return self.options.as_dict()

    def progress(self) -> str:
        """One line of progress in git's words."""
        return ""

    def seen(self, commit: int) -> dict[str, int]:
        """Boots and failures observed at one commit (a skipped test's boots told nothing)."""
        told = [o for o in self.history if o.commit == commit and not o.skipped]
        return {"commit": commit, "boots": sum(o.boots for o in told),
                "failures": sum(o.failures for o in told)}

    def evidence(self, commit: int) -> dict[str, Any]:
        """Boots and failures seen at a commit and at its parents (the verdict's evidence)."""
        parents = self.space.graph_parents[commit]
        return {"culprit": self.seen(commit), "parents": [self.seen(p) for p in parents]}
