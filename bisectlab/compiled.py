"""The compiled kernels (``bisectlab/_kernels.c``) where the install built them, else None.

Each kernel is a twin of a numpy function of bisectlab, the same operations in the same order, so
every caller that finds ``kernels`` None runs its numpy passes and gets the same bits, slower.
The ancestor sums and the evidence's pairs only add and sort, and the entropy's, the scores'
and the log-sum-exps' kernels leave the exp, log and log1p to numpy, so they run wherever they
were built; the posterior's likelihoods and rates, its whole-array log-sum-exps (``lse_all``),
a small table's entropy (``entropy_exact``) and the scores from ancestor sums (``sum_scores``)
call the C library's, so they run only where numpy's give the same bits (:func:`exact_math`:
numpy has its own on CPUs with AVX-512). Callers read ``compiled.kernels`` at call time, so
that a test can take the kernels away.
"""

from __future__ import annotations

import math
from types import ModuleType

VERSION = 8  # the _kernels.c this code calls (its KERNELS_VERSION)

kernels: ModuleType | None
try:
    from bisectlab import _kernels as kernels
except ImportError:  # no C compiler, or no Python headers, at install time
    kernels = None
if kernels is not None and getattr(kernels, "version", None) != VERSION:
    kernels = None  # built from another _kernels.c: `pip install -e .` builds this one

_numpy_is_libm: bool | None = None


def exact_math() -> ModuleType | None:
    """The kernels, for passes that take exp, log and log1p: only where numpy's are the C
    library's to the bit on a spread of arguments (worked out once, when first asked)."""
    global _numpy_is_libm
    if kernels is None:
        return None
    if _numpy_is_libm is None:
        _numpy_is_libm = _numpy_agrees_with_libm()
    return kernels if _numpy_is_libm else None


def _numpy_agrees_with_libm() -> bool:
    """Whether numpy's float64 exp, log and log1p give math's (the C library's) bits on the
    arguments the kernels take: exp of what is not above 0, log of counts, rates and
    probabilities, log1p of sums of exponentials and of minus a probability."""
    import numpy as np

    rng = np.random.default_rng(20261203)
    spread = np.concatenate([np.geomspace(1e-300, 1e6, 1500), rng.random(1500) * 50,
                             rng.random(1000)])
    minus_p = -np.concatenate([rng.random(1000), np.geomspace(1e-300, 1 - 1e-16, 500)])
    probes = ((np.exp, math.exp, -spread[spread < 745]), (np.log, math.log, spread),
              (np.log1p, math.log1p, np.concatenate([spread, minus_p])))
    return all(np.array_equal(ours(x), np.array([theirs(v) for v in x.tolist()]))
               for ours, theirs, x in probes)
