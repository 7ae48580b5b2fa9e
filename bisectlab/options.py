"""A strategy's options, declared once: a frozen dataclass whose fields carry their spelling, range
and help, from which the command-line flags, ``NAME:key=value`` parsing, validation, labels,
logged parameters and replay are all derived.

    @dataclass(frozen=True)
    class RetryOptions(StrategyOptions):
        retries: int = option(5, key="k", flag="--retries", low=1, high=10_000,
                              help="boots per test")
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from dataclasses import Field, dataclass, field, fields
from typing import Any, ClassVar, Self

from bisectlab.errors import BisectlabError, clipped

LEARN = "learn"  # the word that asks a strategy to learn a rate instead of assuming it
NEW = "new"      # an option's legacy value when hunts logged before it existed used its default
TINY = 1e-9  # the smallest size a number other than 0 may have (1e-320 overflows a division)
# Set while a logged hunt's options are read back: they ran as logged, so only what any value
# must be (a finite number) is checked, not the ranges that new input is held to since.
READING_LOG: ContextVar[bool] = ContextVar("reading_log", default=False)


@dataclass(frozen=True)
class Spec:
    """How one option is spelt, checked and explained.

    ``key``: its name in ``NAME:key=value``; ``flag``: its command-line flag, if it has one;
    ``low``/``high``: its range (``*_open``: the bound itself excluded); ``whole``: an integer;
    ``learn``: the word 'learn' is allowed and means None; ``text``: a free-form value, checked
    by the strategy; ``legacy``: the value a hunt logged before the option existed ran with.
    """

    key: str
    help: str
    flag: str | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False
    learn: bool = False
    text: bool = False
    multiple: bool = False  # a text option whose flag may be given again (values joined by ';')
    metavar: str | None = None
    legacy: Any = NEW

    def range_text(self) -> str:
        """The range in words, for --help and errors: '[1, 10000]', '(0, 1)'."""
        if self.text:
            return ""
        left = "(" if self.low_open else "["
        right = ")" if self.high_open or self.high is None else "]"
        low = "-inf" if self.low is None else _number_text(self.low)
        high = "inf" if self.high is None else _number_text(self.high)
        return f"{left}{low}, {high}{right}"

    def parse(self, raw: Any, shown: str | None = None) -> Any:
        """The option's value from text (or a number), checked; BisectlabError if it is bad.

        ``shown`` names the option as the user typed it (a flag or a key), for the message.
        """
        name = shown or self.key
        if raw is None:
            return None
        if self.text:
            return str(raw)
        if self.learn and isinstance(raw, str) and raw.strip() == LEARN:
            return None
        text = clipped(str(raw), 40)
        try:
            number = _exact(raw)
        except (TypeError, ValueError, OverflowError):
            words = "a number or 'learn'" if self.learn else "a number"
            raise BisectlabError(f"{name} needs {words}, not '{text}'") from None
        if READING_LOG.get() and not (isinstance(number, float) and not math.isfinite(number)):
            return int(number) if self.whole else float(number)
        below = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        above = self.high is not None and (number >= self.high if self.high_open
                                           else number > self.high)
        if (isinstance(number, float) and not math.isfinite(number)) or below or above:
            raise BisectlabError(f"{name} must be in {self.range_text()}, not {text}")
        if 0 < abs(number) < TINY:
            zero = self.low is None or self.low < 0 or self.low == 0 and not self.low_open
            raise BisectlabError(f"{name} must be {'0 or ' if zero else ''}at least {TINY:g} in "
                                 f"size, not {text}")
        if self.whole:
            if number != int(number):
                raise BisectlabError(f"{name} must be a whole number, not {text}")
            return int(number)
        return float(number)


def _exact(raw: Any) -> int | float:
    """A number from text or a number: integers stay exact (a 64-bit seed must not round)."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    try:
        return int(text, 10)
    except ValueError:
        return float(text)


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)


def option(default: Any, *, key: str, help: str, **spec: Any) -> Any:
    """A dataclass field declaring one strategy option (see :class:`Spec` for the keywords)."""
    return field(default=default, metadata={"option": Spec(key=key, help=help, **spec)})


def spec_of(f: Field) -> Spec:
    """The declaration of one options field."""
    return f.metadata["option"]


@dataclass(frozen=True)
class StrategyOptions:
    """Base of every strategy's options: checked on construction, logged and read back as data."""

    strategy: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            spec = spec_of(f)
            if value is None:
                if f.default is None or spec.learn:
                    continue
                raise BisectlabError(f"option {spec.key} needs a value")
            if isinstance(value, bool) and not spec.text:
                raise BisectlabError(f"option {spec.key} needs a number, not {value}")
            object.__setattr__(self, f.name, spec.parse(value, f"option {spec.key}"))

    @classmethod
    def specs(cls) -> dict[str, Spec]:
        """Field name -> declaration, in declaration order."""
        return {f.name: spec_of(f) for f in fields(cls)}

    @classmethod
    def by_key(cls) -> dict[str, str]:
        """``NAME:key=value`` key -> field name."""
        return {s.key: name for name, s in cls.specs().items()}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Field name -> default value."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def parse(cls, items: dict[str, str], where: str) -> dict[str, Any]:
        """Options typed as ``key=value`` text: field name -> checked value."""
        keys = cls.by_key()
        out: dict[str, Any] = {}
        for key, raw in items.items():
            if key not in keys:
                takes = ", ".join(keys) or "no options"
                raise BisectlabError(f"strategy {cls.strategy} takes no option '{key}' "
                                     f"({cls.strategy} takes: {takes})")
            out[keys[key]] = cls.specs()[keys[key]].parse(raw, f"option {key} in '{where}'")
        return out

    @classmethod
    def build(cls, **values: Any) -> Self:
        """The options from field values; unknown names are a BisectlabError."""
        unknown = set(values) - set(cls.specs())
        if unknown:
            raise BisectlabError(f"strategy {cls.strategy} takes no option "
                                 f"{', '.join(sorted(unknown))} (it takes: "
                                 f"{', '.join(cls.specs()) or 'none'})")
        return cls(**values)

    @classmethod
    def from_logged(cls, logged: dict[str, Any]) -> Self:
        """The options a logged hunt ran with: an option it predates takes its legacy value."""
        values = {}
        for name, spec in cls.specs().items():
            if name in logged:
                values[name] = logged[name]
            elif spec.legacy != NEW:
                values[name] = spec.legacy
        token = READING_LOG.set(True)
        try:
            return cls.build(**cls.as_ran(values))
        finally:
            READING_LOG.reset(token)

    @classmethod
    def as_ran(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Logged values as the code of their day used them, where a later check refuses what
        it took and ignored (default: as logged)."""
        return values

    def as_dict(self) -> dict[str, Any]:
        """Every option as plain data (logged with a hunt; :meth:`from_logged` reads it back)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return {name: value for name, value in self.as_dict().items()
                if value != self.defaults()[name]}

    def label(self) -> str:
        """'key=value,...' of the options that differ from the defaults ('' if none)."""
        specs = self.specs()
        return ",".join(f"{specs[name].key}={_shown(value, specs[name])}"
                        for name, value in self.changed().items())


def _shown(value: Any, spec: Spec) -> str:
    if value is None and spec.learn:
        return LEARN
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
