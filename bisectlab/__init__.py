"""bisectlab: kernel-style bisection of intermittent, hardware-destroying bugs.

The public API, for driving a strategy with your own test runner::

    from bisectlab import Observation, Resources, SearchSpace, make_strategy
"""

from bisectlab.errors import BisectlabError
from bisectlab.history import History, load_history
from bisectlab.strategies import (
    STRATEGIES,
    Observation,
    Proposal,
    Resources,
    SearchSpace,
    Strategy,
    Verdict,
    make_strategy,
)

__version__ = "0.1.0"

__all__ = ["STRATEGIES", "BisectlabError", "History", "Observation", "Proposal", "Resources",
           "SearchSpace", "Strategy", "Verdict", "load_history", "make_strategy"]
