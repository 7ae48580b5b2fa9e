"""Argument types and the parser shared by the measurement scripts: a number that makes no sense
(0 hunts, a rate of nan, 10^20 commits) is refused in one line, exit 2, before anything runs."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from typing import NoReturn

MOST = 10**7  # the largest count any script is asked for (commits generated at the Linux scale)


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors are one line (argparse's own print its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def count(low: int = 1, high: int = MOST) -> Callable[[str], int]:
    """A whole number in [low, high] (the bounds in the order of bisectlab.cli.params.count)."""
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, not {raw!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:,}, {high:,}], not {raw}")
        return value
    return parse


def share(low: float = 0.0, high: float = 1.0, *, low_open: bool = True,
          high_open: bool = False) -> Callable[[str], float]:
    """A number between ``low`` and ``high`` (open or closed at each end; never nan or inf)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below):  # nan fails both
            raise argparse.ArgumentTypeError(f"must be in {left}{low:g}, {high:g}{right}, "
                                             f"not {raw}")
        return value
    return parse


rate = share()                                          # a detection rate, (0, 1]
low_quantile = share(0, 0.5, low_open=False, high_open=True)  # bayes' quantiles of p, [0, 0.5)
seed = count(0, 2**63 - 1)                              # bisectlab's --seed


def commits(raw: str) -> int:
    """A generated history's size, in the generator's range (imported only when asked for: the
    A/B scripts parse their arguments before choosing which bisectlab to import)."""
    from bisectlab.generator import MAX_COMMITS, MIN_COMMITS

    return count(MIN_COMMITS, MAX_COMMITS)(raw)


def fail(message: str) -> NoReturn:
    """Bad input found after parsing: one line, exit 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def pool_arguments(description: str, rounds: int) -> argparse.Namespace:
    """The flags of a script that sets one worker against a local pool, parsed: --hunts (150),
    --rounds (``rounds``) and --workers (2 or more, 2)."""
    ap = Parser(description=description)
    ap.add_argument("--hunts", type=count(high=100_000), default=150)
    ap.add_argument("--rounds", type=count(high=100), default=rounds)
    ap.add_argument("--workers", type=count(low=2, high=64), default=2)
    return ap.parse_args()
