"""bisectlab: kernel-style bisection of intermittent, hardware-destroying bugs.

The public API, for driving a strategy with your own test runner::

    from bisectlab import Observation, Resources, SearchSpace, make_strategy

and for a real repository, its range as a History (real shas, parents, changed paths)::

    from bisectlab import history_from_repo
    history, goods, bad = history_from_repo("linux", ["v2.6.26"], "v2.6.27-rc8")

Names are imported on first use, so `import bisectlab` (and every `bisectlab` command that
needs little, such as `bisectlab boot`) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_WHERE = {
    "BisectlabError": "bisectlab.errors",
    "History": "bisectlab.history",
    "history_from_repo": "bisectlab.gitrepo",
    "load_history": "bisectlab.history",
    "STRATEGIES": "bisectlab.strategies",
    "Observation": "bisectlab.strategies",
    "Proposal": "bisectlab.strategies",
    "Resources": "bisectlab.strategies",
    "SearchSpace": "bisectlab.strategies",
    "Strategy": "bisectlab.strategies",
    "StrategyOptions": "bisectlab.strategies",
    "Verdict": "bisectlab.strategies",
    "make_strategy": "bisectlab.strategies",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'bisectlab' has no attribute {name!r}")
    value = getattr(import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
