"""Which worker owns which subtree of a lane's decision tree: a local pool's routing policy.

A worker keeps the decision tree of the hunts it ran (bisectlab.strategies.memo), so workers
dealt hunts in turn each work out the choices that hunts on both of them reach. Hunts whose
first results agree share the tree below them, so each such subtree is given, at the first hunt
to reach it, to the worker whose subtrees the fewest hunts have reached so far, and every later
hunt that reaches it goes there: a subtree's hunts so far foretell its hunts to come. Balanced
instead on the work each worker had done (choices worked out and tests run), one worker came to
own more of the hunts than it could run, and those it had no room for went deeper in the other
worker's tree, worked out twice. The table lives in memory shared by the forked workers.
"""

from __future__ import annotations

import hashlib
import multiprocessing

_FORK = multiprocessing.get_context("fork")
SLOTS = 4096  # subtrees the table holds; a hunt reaching a new one past that stays put
LEFT = 2**62  # the count of a worker that has left the pool: never the lowest


def subtree_key(*parts: object) -> int:
    """A subtree's name, the same in every worker: a non-zero 64-bit digest of ``parts``."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True) or 1


class SubtreeOwners:
    """The owner of each subtree seen so far, and how many hunts have reached each worker's
    subtrees."""

    def __init__(self, workers: int, slots: int = SLOTS):
        self._keys = _FORK.RawArray("q", slots)  # 0: free
        self._owners = _FORK.RawArray("i", slots)
        self._reached = _FORK.RawArray("q", workers)
        self._lock = _FORK.Lock()

    def owner(self, key: int, me: int) -> int:
        """The worker that owns subtree ``key``, which a hunt has reached (counted for the
        owner, whether or not it has room for the hunt: a busy owner's count still grows); a
        new one goes to the worker whose subtrees the fewest hunts have reached (``me`` among
        equals). With the table full, ``me``, and nothing counted."""
        size = len(self._keys)
        with self._lock:
            for probe in range(size):
                at = (key + probe) % size
                if self._keys[at] == 0:
                    reached = list(self._reached)
                    self._keys[at] = key
                    self._owners[at] = min(range(len(reached)), key=lambda w: (reached[w], w != me))
                if self._keys[at] == key:
                    owner = self._owners[at]
                    if self._reached[owner] < LEFT:
                        self._reached[owner] += 1
                    return owner
        return me

    def leave(self, worker: int) -> None:
        """Give no new subtree to ``worker`` (it left the pool)."""
        with self._lock:
            self._reached[worker] = LEFT
