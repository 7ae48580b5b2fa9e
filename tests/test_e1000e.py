"""The shipped 2.6.27 scenario: the brick rate emerges in 0.03-0.1 at the culprit, 0 where it cannot."""

from __future__ import annotations

import pytest

from bisectlab import kernel
from bisectlab.bench import wilson

BOOTS = 20_000


def bricks(history, commit: int, arch: str, boots: int, hunt_seed: int = 2008) -> int:
    sha = history.shas[commit]
    return sum(
        history.bug.boot(history, commit, arch, kernel.boot_seed(hunt_seed, sha, a)).bricked
        for a in range(1, boots + 1)
    )


@pytest.mark.slow
def test_brick_rate_at_the_culprit_is_in_the_observed_range(e1000e):
    (culprit,) = {r.culprit for r in e1000e.ranges}
    k = bricks(e1000e, culprit, "i386", BOOTS)
    lo, hi = wilson(k, BOOTS, z=3.29)  # a 99.9% interval: a seeded test that fails only if wrong
    assert lo >= 0.03 and hi <= 0.1, (k / BOOTS, lo, hi)


@pytest.mark.parametrize("ref, arch", [
    ("v2.6.26", "i386"),        # no dynamic ftrace yet
    ("v2.6.27", "i386"),        # the NVM lockdown masks the stray write
    ("v2.6.27.1", "i386"),      # dynamic ftrace marked broken
    ("v2.6.27-rc8", "x86_64"),  # modules and ioremap do not share a range
])
def test_never_bricks_where_the_mechanism_cannot_fire(e1000e, ref, arch):
    assert bricks(e1000e, e1000e.resolve(ref), arch, 3_000) == 0


def test_the_parent_of_the_culprit_never_bricks(e1000e):
    (culprit,) = {r.culprit for r in e1000e.ranges}
    (parent,) = e1000e.parents[culprit]
    assert bricks(e1000e, parent, "i386", 3_000) == 0


def test_the_lockdown_masks_stray_writes_rather_than_removing_them(e1000e):
    c = e1000e.resolve("v2.6.27")
    outs = [e1000e.bug.boot(e1000e, c, "i386", kernel.boot_seed(5, e1000e.shas[c], a))
            for a in range(1, 3_001)]
    assert not any(o.bricked for o in outs)
    assert any(o.stray_write and o.masked for o in outs)


def test_ground_truth_matches_the_mechanism(e1000e):
    bad = e1000e.bad_mask()
    for ref in ("v2.6.27-rc1", "v2.6.27-rc8"):
        assert bad[e1000e.resolve(ref)]
    for ref in ("v2.6.26", "v2.6.27", "v2.6.27.1"):
        assert not bad[e1000e.resolve(ref)]
