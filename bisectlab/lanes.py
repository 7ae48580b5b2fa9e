"""Lanes: the strategies a command runs, each with its options, from ``NAME:key=value`` texts and
the strategy flags a user typed (``--confidence 0.95`` applies to every lane that takes it).

A flag is a strategy option's other spelling (:mod:`bisectlab.options` declares both),
so the same checks and messages serve ``--boots-per-install 10`` and ``bayes:boots-per-install=10``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bisectlab.errors import BisectlabError
from bisectlab.options import Spec
from bisectlab.strategies import (
    STRATEGIES,
    StrategyOptions,
    make_options,
    option_items,
    parse_strategy,
)


@dataclass(frozen=True)
class Lane:
    """One strategy as asked (``label``) and as built (its name and every option's value)."""

    label: str
    strategy: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def slot(self) -> str:
        """The lane's key in the database: the strategy and every option, canonically."""
        return f"{self.strategy}:{json.dumps(dict(self.options), sort_keys=True)}"


@lru_cache(maxsize=256)
def current_slot(logged: str) -> str:
    """A lane key as logged, spelt as today's code spells it: an option added since takes the
    value the logged hunts ran with (its legacy value), so a campaign begun before the option
    existed goes on where it stopped. A key that does not parse is its own."""
    strategy, sep, text = logged.partition(":") if isinstance(logged, str) else ("", "", "")
    try:
        values = json.loads(text) if sep else None
    except ValueError:
        return logged
    options = read_logged_options(strategy, values)
    if options is None:
        return logged
    return Lane(logged, strategy, tuple(sorted(options.as_dict().items()))).slot


def read_logged_options(strategy: str, values: Any) -> StrategyOptions | None:
    """The options a logged hunt or lane of ``strategy`` ran with (an option added since takes
    its legacy value), or None where they no longer read as that strategy's options."""
    if strategy not in STRATEGIES or not isinstance(values, dict):
        return None
    try:
        return STRATEGIES[strategy].Options.from_logged(values)
    except (ValueError, TypeError, BisectlabError):
        return None


def logged_options(strategy: str, values: Any) -> str:
    """The options a logged hunt ran with that differ from today's defaults, as ``key=value``
    text ('' for none; '?' where they no longer read as this strategy's options)."""
    options = read_logged_options(strategy, values)
    return "?" if options is None else options.label()


def lane_from_dict(lane: Mapping[str, Any]) -> Lane:
    """A lane back from a campaign's logged spec."""
    return Lane(lane["label"], lane["strategy"], tuple(sorted(lane["options"].items())))


def strategy_flags() -> dict[str, tuple[Spec, list[str]]]:
    """Every strategy flag: its declaration and the strategies that take it, in first-seen order."""
    out: dict[str, tuple[Spec, list[str]]] = {}
    for name, cls in STRATEGIES.items():
        for spec in cls.Options.specs().values():
            if spec.flag is None:
                continue
            if spec.flag in out and out[spec.flag][0] != spec:
                raise TypeError(f"{spec.flag} is declared differently by two strategies")
            out.setdefault(spec.flag, (spec, []))[1].append(name)
    return out


def build_lanes(specs: Sequence[str], flags: Mapping[str, str | None]) -> list[Lane]:
    """One lane per ``NAME[:key=value,...]``: its own options over the typed flags over defaults.

    ``flags`` maps a flag (``--confidence``) to the text typed, or None where it was not typed.
    A typed flag no lane takes, or one every lane taking it overrides, is an error; so is a
    strategy asked for twice with the same options. A label names the options typed flags
    add, so two lanes never share one.
    """
    known = strategy_flags()
    typed = {flag: text for flag, text in flags.items() if text is not None}
    parsed = [(text, *parse_strategy(text)) for text in specs]
    names = sorted({name for _, name, _ in parsed})
    for flag in typed:
        spec, takers = known[flag]
        users = [(text, name, own) for text, name, own in parsed if name in takers]
        if not users:
            raise BisectlabError(f"{flag} is not an option of {' or '.join(names)}")
        if all(_field(name, spec) in own for _, name, own in users):
            raise BisectlabError(f"{flag} is set by every strategy that takes it "
                                 f"({', '.join(text for text, _, _ in users)})")
    lanes: list[Lane] = []
    seen: set[tuple[str, Any]] = set()
    for text, name, own in parsed:
        from_flags: dict[str, Any] = {}
        label_items = option_items(text)
        for flag, raw in typed.items():
            spec, takers = known[flag]
            if name not in takers:
                continue
            field_name = _field(name, spec)
            if field_name not in own:
                from_flags[field_name] = spec.parse(raw, flag)
                label_items.append(f"{spec.key}={raw}")
        options = make_options(name, **{**from_flags, **own})
        if (name, options) in seen:
            raise BisectlabError(f"the same strategy is asked for twice ({text})")
        seen.add((name, options))
        label = name + (":" + ",".join(label_items) if label_items else "")
        lanes.append(Lane(label, name, tuple(sorted(options.as_dict().items()))))
    return lanes


def _field(strategy: str, spec: Spec) -> str:
    """The field of a strategy's options that a declaration belongs to."""
    return next(name for name, s in STRATEGIES[strategy].Options.specs().items() if s == spec)
