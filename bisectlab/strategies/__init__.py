"""Bisection strategies, registered by name: adding one is one module and one line here."""

from __future__ import annotations

from typing import Any

from bisectlab.errors import BisectlabError
from bisectlab.options import StrategyOptions
from bisectlab.strategies.base import (
    LabCosts,
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


def strategy_class(name: str) -> type[Strategy]:
    """The strategy registered under ``name`` (an unknown name is a BisectlabError)."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise BisectlabError(f"unknown strategy '{name}' (known: {', '.join(STRATEGIES)})") from None


def make_options(name: str, **values: Any) -> StrategyOptions:
    """A strategy's options from field values, checked (bad ones are a BisectlabError)."""
    return strategy_class(name).Options.build(**values)


def make_strategy(name: str, space: SearchSpace, options: StrategyOptions | None = None,
                  **values: Any) -> Strategy:
    """A strategy by name, with its options (an Options value, or its fields as keywords)."""
    cls = strategy_class(name)
    if options is None:
        options = cls.Options.build(**values)
    elif values:
        raise BisectlabError("give a strategy's options as one Options value or as keywords")
    return cls(space, options)


def option_items(spec: str) -> list[str]:
    """The ``key=value`` items of 'NAME:key=value,...', split at the commas outside brackets
    (a value may hold some: detect-prior=beta(2,38))."""
    items, depth, start = [], 0, 0
    _, colon, rest = spec.partition(":")
    if not colon:
        return []
    for at, char in enumerate(rest):
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(rest[start:at])
            start = at + 1
    items.append(rest[start:])
    return items


def parse_strategy(spec: str) -> tuple[str, dict[str, Any]]:
    """'bayes:boots-per-install=10,cost-weight=5' -> ('bayes', {field: value}), checked."""
    name = spec.partition(":")[0]
    options_class = strategy_class(name).Options
    items: dict[str, str] = {}
    for item in option_items(spec):
        if not item:
            raise BisectlabError(f"an empty strategy option in '{spec}' "
                                 "(write NAME or NAME:key=value,...)")
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise BisectlabError(f"bad strategy option '{item}' in '{spec}' (write key=value)")
        if key in items:
            raise BisectlabError(f"option '{key}' is given twice in '{spec}'")
        items[key] = value
    return name, options_class.parse(items, spec)


__all__ = ["STRATEGIES", "LabCosts", "Observation", "Proposal", "Resources", "SearchSpace", "Strategy",
           "StrategyOptions", "Verdict", "make_options", "make_strategy", "option_items", "parse_strategy",
           "strategy_class"]
