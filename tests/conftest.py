"""Shared fixtures: small kernel-shaped histories, built once per session."""

from __future__ import annotations

import pytest

from bisectlab.generator import KernelShape, generate_kernel_history
from bisectlab.history import History, load_history


@pytest.fixture(scope="session")
def e1000e() -> History:
    """The shipped 2.6.27 scenario."""
    return load_history("e1000e-2.6.27")


@pytest.fixture(scope="session")
def kernel_2k() -> History:
    """A generated kernel-shaped history of 2,000 commits (no bug)."""
    return generate_kernel_history("k2000", 7, KernelShape(commits=2000))
