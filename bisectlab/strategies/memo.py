"""Hunts of one campaign lane share the start of their decision tree.

A strategy is a deterministic function of what it has been told: two hunts that have seen the
same results so far make the same next choice. A campaign's hunts (one strategy, one range, one
lab, seeds apart) share their first tests and often later ones, so a worker keeps the tree of
the choices made so far and walks it, working out only what no earlier hunt has asked. Every
hunt is the one the strategy alone would run, test for test: the tree only remembers its answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bisectlab.strategies.base import Observation, Proposal, Resources, Strategy, Verdict

TREE_BYTES = 128 << 20  # the memory a tree's kept states may take, as they count it
_UNASKED = object()


class _Node:
    """The strategy after one path of calls, and what it answered from there."""

    __slots__ = ("state", "kept", "verdict", "proposed", "children")

    def __init__(self, state: Strategy, kept: bool):
        self.state = state  # never changed once kept: walkers fork it to go on
        self.kept = kept    # False: the tree was full, the state belongs to one walker
        self.verdict: Any = _UNASKED
        self.proposed: dict[Resources, tuple[Proposal, Strategy]] = {}
        self.children: dict[tuple[Resources, tuple[Observation, ...]], _Node] = {}


def _own(state: Strategy, kept: bool) -> Strategy:
    """A state a walker may change: a fork of one the tree keeps (kept states never change)."""
    return state.fork() if kept else state


class DecisionTree:
    """The choices a strategy made for every hunt walked through it so far (up to a size)."""

    def __init__(self, strategy: Strategy, room: int = TREE_BYTES):
        self.root = _Node(strategy, kept=True)
        self.room = room  # bytes of kept states; past it, hunts go on alone
        self.used = strategy.kept_bytes()
        self.states = 1
        self.worked_out = 0  # choices the strategy made itself (the rest: answered by the tree)

    def walker(self) -> SharedStrategy:
        """A strategy for one more hunt, starting at the root."""
        return SharedStrategy(self)

    def keep(self, state: Strategy) -> bool:
        """Whether ``state`` may be kept (counting it if so)."""
        size = state.kept_bytes()
        if self.used + size > self.room:
            return False
        self.used += size
        self.states += 1
        return True


class SharedStrategy(Strategy):
    """One hunt's strategy, answered from a :class:`DecisionTree` where an earlier hunt was
    already at the same point, worked out (and kept for later hunts) where none was.

    A question in the middle of a round (a progress line after each result) takes the hunt out
    of the tree: from then on it is its own strategy, the round's results so far taken in, as
    the strategy alone would have them.
    """

    def __init__(self, tree: DecisionTree):  # no super().__init__: the states hold the data
        root = tree.root.state
        self.name, self.Options = root.name, root.Options  # type: ignore[misc]
        self.space, self.options = root.space, root.options
        self._tree, self._node = tree, tree.root
        self._step: tuple[Resources, Proposal, Strategy] | None = None
        self._seen: list[Observation] = []
        self._alone: Strategy | None = None

    @property  # type: ignore[override]
    def history(self) -> list[Observation]:
        return self._state().history

    @property  # type: ignore[override]
    def untestable(self) -> np.ndarray:
        return self._state().untestable

    def verdict(self) -> Verdict | None:
        if self._alone is not None:
            return self._alone.verdict()
        node = self._here()
        if node.verdict is _UNASKED:
            node.verdict = node.state.verdict()
        return node.verdict

    def propose(self, resources: Resources) -> Proposal:
        if self._alone is not None:
            return self._alone.propose(resources)
        node = self._here()
        step = node.proposed.get(resources)
        if step is None:
            state = _own(node.state, node.kept)
            step = (state.propose(resources), state)
            self._tree.worked_out += 1
            if node.kept and self._tree.keep(state):
                node.proposed[resources] = step
        self._step = (resources, *step)
        return step[0]

    def observe(self, obs: Observation) -> None:
        if self._alone is not None:
            self._alone.observe(obs)
        else:
            self._seen.append(obs)

    def abort(self, reason: str, status: str = "aborted") -> Verdict:
        if self._alone is not None:
            return self._alone.abort(reason, status)
        node = self._here()
        return _own(node.state, node.kept).abort(reason, status)

    def _here(self) -> _Node:
        """The node of every call so far, once a round's results are all in (the next verdict
        or proposal asks for it)."""
        if self._step is None:
            return self._node
        resources, _, state = self._step
        key = (resources, tuple(self._seen))
        child = self._node.children.get(key)
        if child is None:
            state = _own(state, self._node.kept)
            for obs in self._seen:
                state.observe(obs)
            keep = self._node.kept and self._tree.keep(state)
            child = _Node(state, keep)
            if keep:
                self._node.children[key] = child
        self._node, self._step, self._seen = child, None, []
        return child

    def _state(self) -> Strategy:
        """The strategy as every call so far left it, for a question that changes nothing."""
        if self._alone is not None:
            return self._alone
        if self._step is None:
            return self._node.state
        alone = self._step[2].fork()
        for obs in self._seen:
            alone.observe(obs)
        self._alone = alone
        return alone

    def belief(self) -> np.ndarray:
        return self._state().belief()

    def params(self) -> dict[str, Any]:
        return self._state().params()

    def progress(self) -> str:
        return self._state().progress()

    def evidence(self, commit: int) -> dict[str, Any]:
        return self._state().evidence(commit)
