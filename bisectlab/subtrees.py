"""Which worker owns which subtree of a lane's decision tree: a local pool's routing policy.

A worker keeps the decision tree of the hunts it ran (bisectlab.strategies.memo), so workers
dealt hunts in turn each work out the choices that hunts on both of them reach. Hunts whose
first results agree share the tree below them, so each such subtree is given, at the first hunt
to reach it, to the least loaded worker (the choices its tree worked out plus the tests it ran:
balanced on choices alone, one worker came to own most of the hunts), and every later hunt that
reaches it goes there. The table lives in memory shared by the forked workers.
"""

from __future__ import annotations

import hashlib
import multiprocessing

_FORK = multiprocessing.get_context("fork")
SLOTS = 4096  # subtrees the table holds; a hunt reaching a new one past that stays put
LEFT = 2**62  # the load of a worker that has left the pool: never the least loaded


def subtree_key(*parts: object) -> int:
    """A subtree's name, the same in every worker: a non-zero 64-bit digest of ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True) or 1


class SubtreeOwners:
    """The owner of each subtree seen so far, and each worker's load (choices worked out and
    tests run)."""

    def __init__(self, workers: int, slots: int = SLOTS):
        self._keys = _FORK.RawArray("q", slots)  # 0: free
        self._owners = _FORK.RawArray("i", slots)
        self._loads = _FORK.RawArray("q", workers)
        self._lock = _FORK.Lock()

    def owner(self, key: int, me: int) -> int:
        """The worker that owns subtree ``key``; a new one goes to the least loaded worker
        (``me`` among equals). With the table full, ``me``."""
        size = len(self._keys)
        with self._lock:
            for probe in range(size):
                at = (key + probe) % size
                if self._keys[at] == key:
                    return self._owners[at]
                if self._keys[at] == 0:
                    loads = list(self._loads)
                    least = min(range(len(loads)), key=lambda w: (loads[w], w != me))
                    self._keys[at], self._owners[at] = key, least
                    return least
        return me

    def report(self, worker: int, load: int) -> None:
        """Worker ``worker``'s load is now ``load``."""
        self._loads[worker] = load
