"""A real repository's shape as a planning scenario (`history import-git`).

The history of GOOD..BAD (or of HEAD from its roots) is read from git by
:func:`bisectlab.gitrepo.history_from_repo`; its range is advertised by tag name or full sha. A real
history carries no simulated bug, so a lab plants one to plan: a rate bug (per-boot detection p,
false-positive rate f) introduced by one commit of the range, named by a git ref or drawn from
the seed among the range's non-merge commits. Then `replay campaign --history FILE` hunts that
culprit in a simulated lab ("50 adapters and p = 0.05: how many lab days?") and `bench --history
FILE` draws a culprit per hunt from the range.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bisectlab import dag
from bisectlab.bugs import bug_from_spec
from bisectlab.errors import HistoryError, RangeError
from bisectlab.gitrepo import history_from_repo, repository_root, resolve_ref
from bisectlab.history import History


@dataclass(frozen=True)
class PlantedBug:
    """A rate bug to plant: detection p, false-positive rate f, and its culprit (a git ref, or
    None for a non-merge commit of the range drawn from ``seed``)."""

    detect: float = 1.0
    false_positive: float = 0.0
    culprit: str | None = None
    seed: int = 0


def import_git(directory: str | Path, good: str | None = None, bad: str | None = None,
               name: str | None = None, bug: PlantedBug | None = None) -> History:
    """The repository's history with its range GOOD..BAD advertised (default: the oldest root
    to HEAD) and, if asked, a rate bug planted in it."""
    if (good is None) != (bad is None):
        raise HistoryError("give both GOOD and BAD, or neither")
    for what, ref in (("GOOD", good), ("BAD", bad)):
        if ref is not None and not ref.strip():  # not the root, nor HEAD, without a word
            raise HistoryError(f"{what} is empty: give a ref (or neither GOOD nor BAD for the "
                               "oldest root to HEAD)")
    history, goods, head = history_from_repo(directory, [] if good is None else [good],
                                             "HEAD" if bad is None else bad, name)
    base = goods[0] if goods else 0
    if base == head:  # a one-commit repository, or GOOD and BAD naming one commit
        raise RangeError(f"{good or 'the oldest root'} and {bad or 'HEAD'} are the same commit "
                         f"({history.shas[head][:12]}): no range to bisect")
    history.advertised = [(ref_label(history, good, base), ref_label(history, bad, head))]
    if bug is not None:
        plant_rate_bug(history, base, head, bug, directory)
    return history


def ref_label(history: History, ref: str | None, commit: int) -> str:
    """How a range end is written in the file: the tag typed if it names the commit, else its sha
    (a branch or HEAD~3 would not resolve in the stored history)."""
    return ref if ref is not None and history.tags.get(ref) == commit else history.shas[commit]


def plant_rate_bug(history: History, good: int, bad: int, bug: PlantedBug,
                   directory: str | Path) -> None:
    """Plant a rate bug whose first bad commit lies in GOOD..BAD."""
    candidates = dag.candidates(history.parents, bad, [good])
    if bug.culprit is None:
        culprit = seeded_culprit(history, candidates, bug.seed)
    else:
        culprit = culprit_in_range(history, candidates, bug.culprit, directory)
    history.bug = bug_from_spec({"model": "rate", "culprit": history.shas[culprit],
                                 "detect": bug.detect, "false_positive": bug.false_positive},
                                history)


def seeded_culprit(history: History, candidates: np.ndarray, seed: int) -> int:
    """A non-merge commit of the range, drawn from the seed."""
    singles = [int(c) for c in candidates if len(history.parents[c]) == 1]
    if not singles:
        raise HistoryError("the range has no non-merge commit to plant a bug in (give --culprit)")
    return random.Random(seed).choice(singles)


def culprit_in_range(history: History, candidates: np.ndarray, ref: str,
                     directory: str | Path) -> int:
    """The commit a git ref names, which must lie in the range."""
    sha = resolve_ref(repository_root(directory), ref)
    try:
        culprit = history.resolve(sha)
    except HistoryError:
        culprit = -1
    if culprit < 0 or not np.isin(culprit, candidates):
        raise HistoryError(f"culprit {ref} ({sha[:12]}) is not in the range "
                           f"{history.advertised[0][0][:12]}..{history.advertised[0][1][:12]}")
    return culprit
