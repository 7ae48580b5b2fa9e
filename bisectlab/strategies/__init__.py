"""Bisection strategies, registered by name: adding one is one module and one line here."""

from __future__ import annotations

import math

from bisectlab.errors import BisectlabError
from bisectlab.strategies.base import (
    Observation,
    Proposal,
    Resources,
    SearchSpace,
    Strategy,
    Verdict,
)
from bisectlab.strategies.bayes import BayesStrategy
from bisectlab.strategies.git import GitStrategy, RetryStrategy

STRATEGIES: dict[str, type[Strategy]] = {
    BayesStrategy.name: BayesStrategy,
    GitStrategy.name: GitStrategy,
    RetryStrategy.name: RetryStrategy,
}


def make_strategy(name: str, space: SearchSpace, **options) -> Strategy:
    """A strategy by name, with its options (unknown names or options are a BisectlabError)."""
    try:
        cls = STRATEGIES[name]
    except KeyError:
        raise BisectlabError(f"unknown strategy '{name}' (known: {', '.join(STRATEGIES)})") from None
    try:
        return cls(space, **options)
    except (TypeError, ValueError) as exc:
        raise BisectlabError(f"bad options for strategy {name}: {exc}") from None


OPTION_NAMES = {
    "k": "retries", "retries": "retries", "confidence": "confidence", "detect": "detect",
    "false-positive": "false_positive", "cost-weight": "cost_weight",
    "boots-per-install": "boots_per_install", "deterministic-mass": "deterministic_mass",
    "caution": "caution",
}


ACCEPTS = {"git": set(), "retry": {"retries"},
           "bayes": {"confidence", "detect", "false_positive", "cost_weight", "boots_per_install",
                     "deterministic_mass", "caution"}}
# (low, high, low excluded, high excluded); None: no bound
RANGES = {"retries": (1, None, False, False), "boots_per_install": (1, None, False, False),
          "confidence": (0, 1, True, True), "detect": (0, 1, True, False),
          "false_positive": (0, 1, False, True), "cost_weight": (0, None, False, False),
          "deterministic_mass": (0, 1, False, True), "caution": (-1, None, True, False)}


def option_value(key: str, text: str, shown: str | None = None):
    """An option's value from text: 'learn' for a learnt false-positive rate, else a number.

    ``shown`` is the option's name as the user typed it (k for retries), for the messages.
    """
    if key == "false_positive" and text == "learn":
        return None
    name = shown or key
    try:
        number = float(text)
    except ValueError:
        raise BisectlabError(f"option {name} needs a number, not '{text}'") from None
    lo, hi, lo_open, hi_open = RANGES.get(key, (None, None, False, False))
    below = lo is not None and (number <= lo if lo_open else number < lo)
    above = hi is not None and (number >= hi if hi_open else number > hi)
    if not math.isfinite(number) or below or above:
        left, right = "(" if lo_open else "[", ")" if hi_open or hi is None else "]"
        raise BisectlabError(f"option {name} must be in {left}{lo}, {hi or 'inf'}{right}, "
                             f"not {text}")
    if key in ("retries", "boots_per_install"):
        if number != int(number):
            raise BisectlabError(f"option {name} must be a whole number, not {text}")
        return int(number)
    return number


def parse_strategy(spec: str) -> tuple[str, dict]:
    """'bayes:boots-per-install=10,cost-weight=5' -> ('bayes', {...}): a strategy and options."""
    name, _, rest = spec.partition(":")
    if name not in STRATEGIES:
        raise BisectlabError(f"unknown strategy '{name}' (known: {', '.join(STRATEGIES)})")
    options = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in OPTION_NAMES:
            raise BisectlabError(f"bad strategy option '{item}' (known: {', '.join(OPTION_NAMES)})")
        if OPTION_NAMES[key] not in ACCEPTS.get(name, set(OPTION_NAMES.values())):
            takes = ", ".join(k for k, v in OPTION_NAMES.items() if v in ACCEPTS[name] and
                              k != "retries") or "no options"
            raise BisectlabError(f"strategy {name} takes no option '{key}' ({name} takes: {takes})")
        if OPTION_NAMES[key] in options:
            raise BisectlabError(f"option '{key}' is given twice in '{spec}'")
        options[OPTION_NAMES[key]] = option_value(OPTION_NAMES[key], value, shown=key)
    return name, options


__all__ = ["ACCEPTS", "OPTION_NAMES", "STRATEGIES", "Observation", "Proposal", "Resources", "SearchSpace",
           "Strategy", "Verdict", "make_strategy", "parse_strategy"]
