"""Bisection strategies, registered by name: adding one is one module and one line here."""

from __future__ import annotations

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


def option_value(key: str, text: str):
    """An option's value from text: 'learn' for a learnt false-positive rate, else a number."""
    if key == "false_positive" and text == "learn":
        return None
    try:
        number = float(text)
    except ValueError:
        raise BisectlabError(f"option {key} needs a number, not '{text}'") from None
    return int(number) if key in ("retries", "boots_per_install") else number


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
        options[OPTION_NAMES[key]] = option_value(OPTION_NAMES[key], value)
    return name, options


__all__ = ["OPTION_NAMES", "STRATEGIES", "Observation", "Proposal", "Resources", "SearchSpace",
           "Strategy", "Verdict", "make_strategy", "parse_strategy"]
