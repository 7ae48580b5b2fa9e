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


__all__ = ["Observation", "Proposal", "Resources", "SearchSpace", "Strategy", "Verdict",
           "STRATEGIES", "make_strategy"]
