"""Bug models: which commits are bad (ground truth) and how one boot of a commit turns out."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bisectlab import dag, kernel
from bisectlab.errors import HistoryError

if TYPE_CHECKING:
    from bisectlab.history import History

GROUND_TRUTH_ARCH = "i386"


class Bug(ABC):
    """A bug a history carries: ground truth per commit, and a per-boot outcome."""

    model: str

    @abstractmethod
    def bad_mask(self, history: History, arch: str = GROUND_TRUTH_ARCH) -> np.ndarray:
        """Which commits carry the bug: those where it can show on a rig of ``arch``."""

    @abstractmethod
    def boot(self, history: History, commit: int, arch: str, seed: int,
             explain: bool = False, condition: int = 0) -> kernel.BootOutcome:
        """One simulated boot of ``commit`` on a rig of ``arch``.

        ``condition`` (-1, 0 or +1) is the lab's current state (a cold or hot spell) for bugs
        whose boots are correlated over time; bugs without such a knob ignore it.
        """

    @abstractmethod
    def spec(self, history: History) -> dict:
        """The bug as a scenario-file table."""


@dataclass
class E1000eBug(Bug):
    """The 2008 e1000e NVM corruption, decided by the boot mechanism in :mod:`bisectlab.kernel`."""

    config: kernel.KernelConfig = kernel.DEFAULT_CONFIG
    model: str = "e1000e"

    def bad_mask(self, history: History, arch: str = GROUND_TRUTH_ARCH) -> np.ndarray:
        return _cached_mask(self, (history, arch), lambda: np.array(
            [kernel.mechanism_armed(history.features_at(c), arch)
             for c in range(len(history))], dtype=bool))

    def boot(self, history: History, commit: int, arch: str, seed: int,
             explain: bool = False, condition: int = 0) -> kernel.BootOutcome:
        return kernel.boot(history.features_at(commit), arch, seed, self.config, explain)

    def spec(self, history: History) -> dict:
        return {"model": self.model}


@dataclass
class RateBug(Bug):
    """An abstract bug introduced by one commit: each boot of a bad commit fails with rate p.

    Good commits fail with the false-positive rate f (adapters dying of other causes). With a
    ``correlation`` r, the rate is p(1 + r) in the lab's hot spells and p(1 - r) in cold ones:
    boots are no longer independent, though p stays the long-run rate.
    """

    culprit: int
    detect: float = 1.0
    false_positive: float = 0.0
    correlation: float = 0.0
    model: str = "rate"

    def bad_mask(self, history: History, arch: str = GROUND_TRUTH_ARCH) -> np.ndarray:
        return _cached_mask(self, (history, GROUND_TRUTH_ARCH), lambda: dag.descendants_mask(
            history.parents, self.culprit))

    def boot(self, history: History, commit: int, arch: str, seed: int,
             explain: bool = False, condition: int = 0) -> kernel.BootOutcome:
        bad = bool(self.bad_mask(history)[commit])
        rate = self.detect * (1 + condition * self.correlation) if bad else self.false_positive
        failed = random.Random(seed).random() < rate
        log: tuple[str, ...] = ()
        if explain:
            state = "carries the bug" if bad else "is clean"
            log = (f"commit {history.shas[commit][:12]} {state}; per-boot failure rate {rate:g}",
                   "adapter destroyed" if failed else "boot completed")
        return kernel.BootOutcome(bricked=failed, stray_write=failed, masked=False, log=log)

    def spec(self, history: History) -> dict:
        return {"model": self.model, "culprit": history.shas[self.culprit], "detect": self.detect,
                "false_positive": self.false_positive, "correlation": self.correlation}


def _cached_mask(bug: Bug, key: tuple[History, str], compute) -> np.ndarray:
    cache = bug.__dict__.setdefault("_masks", {})
    key = (id(key[0]), key[1])
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def bug_from_spec(spec: Mapping, history: History) -> Bug:
    """A bug from a scenario's [bug] table."""
    model = spec.get("model")
    if model == "e1000e":
        knobs = {k: v for k, v in spec.items() if k != "model"}
        try:
            return E1000eBug(kernel.KernelConfig(**knobs))
        except TypeError as exc:
            raise HistoryError(f"unknown e1000e knob: {exc}") from None
    if model == "rate":
        detect = float(spec.get("detect", 1.0))
        fp = float(spec.get("false_positive", 0.0))
        corr = float(spec.get("correlation", 0.0))
        if not (0 < detect <= 1 and 0 <= fp < detect and 0 <= corr < 1):
            raise HistoryError("rate bug needs 0 < detect <= 1, 0 <= false_positive < detect "
                               "and 0 <= correlation < 1")
        culprit = history.resolve(str(spec["culprit"]))
        _add_toggle(history, culprit)
        return RateBug(culprit, detect, fp, corr)
    raise HistoryError(f"unknown bug model '{model}' (known: e1000e, rate)")


def _add_toggle(history: History, culprit: int) -> None:
    history.toggles.setdefault(culprit, {})["rate_bug"] = True
    history.__dict__.pop("_toggle_order", None)
    history.__dict__.pop("_toggle_reach", None)
