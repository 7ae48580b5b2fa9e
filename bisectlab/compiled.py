"""The compiled kernels (``bisectlab/_kernels.c``) where the install built them, else None.

Each kernel is a twin of a numpy function of bisectlab, the same operations in the same order, so
every caller that finds ``kernels`` None runs its numpy passes and gets the same bits, slower.
Callers read ``compiled.kernels`` at call time, so that a test can take the kernels away.
"""

from __future__ import annotations

from types import ModuleType

kernels: ModuleType | None
try:
    from bisectlab import _kernels as kernels
except ImportError:  # no C compiler at install time
    kernels = None
