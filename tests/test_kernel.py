"""The simulated kernel: determinism, the zero cases, the calibrated rate, the mechanism."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bisectlab.bench import wilson
from bisectlab.errors import BisectlabError
from bisectlab.kernel import (
    ARCHES,
    DEFAULT_CONFIG,
    FEATURES,
    BootOutcome,
    KernelConfig,
    _Range,
    boot,
    boot_seed,
    ioremap_area,
    mechanism_armed,
    registers_at,
)

BUG = {"ftrace": True, "dynamic_ftrace": True, "ftrace_cmpxchg": True}
Z999 = 3.2905  # two-sided 99.9% normal quantile


def run(features: dict, n: int, arch: str = "i386", config: KernelConfig = DEFAULT_CONFIG,
        hunt: int = 1) -> list[BootOutcome]:
    """n boots of one commit, seeds as a hunt would derive them."""
    return [boot(features, arch, boot_seed(hunt, "c0ffee", i), config) for i in range(n)]


def bricks(outcomes: list[BootOutcome]) -> int:
    """How many boots killed the adapter."""
    return sum(o.bricked for o in outcomes)


def first_seed(features: dict, pred, arch: str = "i386", limit: int = 5000) -> int:
    """The first seed whose outcome satisfies pred."""
    return next(s for s in range(limit) if pred(boot(features, arch, s)))


# --- determinism and the log ---------------------------------------------------------------

def test_same_seed_same_boot():
    for seed in (0, 1, 2**63 + 5, boot_seed(7, "abc", 3)):
        for feats in (BUG, {**BUG, "i915_gem": True}, {}):
            assert boot(feats, "i386", seed) == boot(feats, "i386", seed)
            loud = boot(feats, "i386", seed, explain=True)
            assert loud == boot(feats, "i386", seed, explain=True)
            quiet = boot(feats, "i386", seed)
            assert (loud.bricked, loud.stray_write, loud.masked) == (
                quiet.bricked, quiet.stray_write, quiet.masked)


def test_boot_seed_is_a_stable_64_bit_hash():
    s = boot_seed(2008, "3fa8749e", 0)
    assert s == boot_seed(2008, "3fa8749e", 0)
    assert 0 <= s < 2**64
    others = {boot_seed(2009, "3fa8749e", 0), boot_seed(2008, "3fa8749f", 0),
              boot_seed(2008, "3fa8749e", 1)}
    assert s not in others and len(others) == 3


def test_log_only_when_explained():
    assert boot(BUG, "i386", 5).log == ()
    log = boot(BUG, "i386", 5, explain=True).log
    assert log and all(isinstance(line, str) for line in log)
    assert any("e1000e" in line and "ioremap" in line and "flash" in line for line in log)


def test_brick_log_tells_the_story():
    seed = first_seed(BUG, lambda o: o.bricked)
    text = "\n".join(boot(BUG, "i386", seed, explain=True).log)
    assert "module_free init" in text
    assert "ioremap BAR0" in text
    assert "lock cmpxchg on stale ip" in text
    assert "The NVM Checksum Is Not Valid" in text


def test_healthy_log_has_no_checksum_failure():
    seed = first_seed(BUG, lambda o: not o.stray_write)
    text = "\n".join(boot(BUG, "i386", seed, explain=True).log)
    assert "The NVM Checksum Is Not Valid" not in text
    assert "NVM intact" in text


def test_lockdown_log_says_masked():
    lock = {**BUG, "e1000e_nvm_lockdown": True}
    seed = first_seed(lock, lambda o: o.stray_write)
    text = "\n".join(boot(lock, "i386", seed, explain=True).log)
    assert "masked" in text and "The NVM Checksum Is Not Valid" not in text


def test_explain_works_on_every_arch_and_kernel():
    for arch in ARCHES:
        for feats in ({}, BUG, {**BUG, "init_notrace": True}, {**BUG, "ftrace_release": True},
                      {**BUG, "i915_gem": True}):
            assert boot(feats, arch, 11, explain=True).log


# --- invariants ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(
    feats=st.fixed_dictionaries({}, optional={f: st.booleans() for f in FEATURES}),
    arch=st.sampled_from(ARCHES),
    seed=st.integers(0, 2**64 - 1),
)
def test_outcome_invariants(feats, arch, seed):
    o = boot(feats, arch, seed)
    lockdown = bool(feats.get("e1000e_nvm_lockdown"))
    assert o.log == ()
    assert not o.bricked or (o.stray_write and not o.masked and mechanism_armed(feats, arch))
    assert o.masked == (o.stray_write and lockdown)
    if arch == "x86_64" or not feats.get("ftrace_cmpxchg"):
        assert not o.stray_write


def test_mechanism_armed_needs_every_precondition():
    assert mechanism_armed(BUG, "i386")
    assert mechanism_armed({**BUG, "i915_gem": True, "pat": True}, "i386")
    assert not mechanism_armed(BUG, "x86_64")
    for drop in ("ftrace", "dynamic_ftrace", "ftrace_cmpxchg"):
        assert not mechanism_armed({**BUG, drop: False}, "i386")
    for fix in ("ftrace_release", "init_notrace", "e1000e_nvm_lockdown"):
        assert not mechanism_armed({**BUG, fix: True}, "i386")


def test_unknown_arch_is_a_bisectlab_error():
    with pytest.raises(BisectlabError, match="arch"):
        boot(BUG, "arm", 1)
    with pytest.raises(BisectlabError, match="arch"):
        mechanism_armed(BUG, "ppc")


def test_bad_knobs_are_bisectlab_errors():
    for bad in ({"n_modules": 1}, {"daemon_interval_s": 0}, {"p_damage_other": 1.5},
                {"init_pages": (3, 1)}, {"order_jitter": 2.0}):
        with pytest.raises(BisectlabError):
            KernelConfig(**bad)


# --- the kernels that never brick ------------------------------------------------------------

@pytest.mark.parametrize(
    ("feats", "arch"),
    [
        (BUG, "x86_64"),
        ({**BUG, "i915_gem": True}, "x86_64"),
        ({}, "i386"),
        ({"ftrace": True}, "i386"),
        ({**BUG, "dynamic_ftrace": False}, "i386"),
        ({**BUG, "ftrace": False}, "i386"),
        ({**BUG, "ftrace_release": True}, "i386"),
        ({**BUG, "init_notrace": True}, "i386"),
        ({**BUG, "init_notrace": True, "i915_gem": True}, "i386"),
        ({**BUG, "ftrace_cmpxchg": False}, "i386"),
    ],
)
def test_never_bricks(feats, arch):
    outcomes = run(feats, 3000, arch)
    assert bricks(outcomes) == 0
    assert not any(o.stray_write or o.masked for o in outcomes)


def test_lockdown_masks_the_stray_write_it_does_not_remove_it():
    lock = {**BUG, "e1000e_nvm_lockdown": True}
    masked, buggy = run(lock, 3000), run(BUG, 3000)
    assert bricks(masked) == 0
    assert sum(o.stray_write for o in masked) > 0
    assert all(o.masked for o in masked if o.stray_write)
    # the same boots: the lockdown changes what the write does, not whether it happens
    assert [o.stray_write for o in masked] == [o.stray_write for o in buggy]


def test_the_armed_kernel_does_brick_sometimes():
    for feats in (BUG, {**BUG, "i915_gem": True}):
        outcomes = run(feats, 2000)
        assert 0 < bricks(outcomes) < 2000 * 0.2


# --- the rate and its mechanism --------------------------------------------------------------

@pytest.mark.slow
def test_buggy_kernel_rate_is_calibrated():
    n = 20_000
    lo, hi = wilson(bricks(run(BUG, n, hunt=2008)), n, Z999)
    assert lo >= 0.03 and hi <= 0.1, (lo, hi)


def separated(a: list[BootOutcome], b: list[BootOutcome]) -> bool:
    """True iff b's 99.9% Wilson interval of the brick rate lies wholly above a's."""
    return wilson(bricks(a), len(a), Z999)[1] < wilson(bricks(b), len(b), Z999)[0]


def test_rate_follows_the_daemon_window():
    short = dataclasses.replace(DEFAULT_CONFIG, daemon_interval_s=0.25)
    long = dataclasses.replace(DEFAULT_CONFIG, daemon_interval_s=3.0)
    assert separated(run(BUG, 3000, config=short), run(BUG, 3000, config=long))


def test_rate_follows_the_coldplug_pace():
    slow = dataclasses.replace(DEFAULT_CONFIG, load_gap_s=0.6)
    fast = dataclasses.replace(DEFAULT_CONFIG, load_gap_s=0.05)
    assert separated(run(BUG, 3000, config=slow), run(BUG, 3000, config=fast))


def test_rate_follows_the_module_count():
    few = dataclasses.replace(DEFAULT_CONFIG, n_modules=12)
    assert separated(run(BUG, 4000, config=few), run(BUG, 4000))


def test_no_critical_register_no_certain_brick():
    gentle = dataclasses.replace(DEFAULT_CONFIG, p_damage_critical=0.0, p_damage_other=0.0)
    outcomes = run(BUG, 2000, config=gentle)
    assert bricks(outcomes) == 0 and any(o.stray_write for o in outcomes)


@pytest.mark.slow
def test_x_churn_is_a_confounder_that_needs_the_bug():
    churned = run({**BUG, "i915_gem": True}, 20_000)
    assert separated(run(BUG, 20_000), churned)
    lo, hi = wilson(bricks(churned), len(churned), Z999)
    assert lo >= 0.03 and hi <= 0.1, (lo, hi)  # still within the observed 1/30 .. 1/10


# --- the parts ---------------------------------------------------------------------------------

def test_ioremap_area_follows_fls_alignment():
    assert ioremap_area(4096) == (2, 2)  # 1 page + guard, 8 KiB aligned
    assert ioremap_area(8192) == (3, 4)
    assert ioremap_area(128 * 1024) == (33, 64)  # 256 KiB aligned
    assert ioremap_area(1024 * 1024) == (257, 128)  # capped at 512 KiB


def test_registers_hit_by_a_cmpxchg():
    assert "HSFCTL" in registers_at(0x003)  # the first function's mcount site
    assert registers_at(0x008) == ("FADDR",)
    assert registers_at(0x010) == ("FDATA0",)
    assert registers_at(0x200) == ()


def first_fit(used: list[bool], size: int, align: int) -> int:
    """Brute-force first fit over a page bitmap."""
    for a in range(0, len(used) - size + 1, align):
        if not any(used[a:a + size]):
            return a
    raise AssertionError("full")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 12), st.sampled_from([1, 2, 4, 8]),
                          st.integers(0, 10**6)), max_size=60))
def test_range_is_first_fit_with_holes(ops):
    r, used, live = _Range(4096), [False] * 4096, []
    for is_alloc, size, align, pick in ops:
        if is_alloc or not live:
            want = first_fit(used, size, align)
            got = r.alloc(size) if align == 1 else r.alloc_aligned(size, align)
            assert got == want
            used[got:got + size] = [True] * size
            live.append((got, size))
        else:
            a, size = live.pop(pick % len(live))
            r.free(a, size)
            used[a:a + size] = [False] * size
        starts = [h[0] for h in r.holes]
        assert starts == sorted(starts)
        for (s, e), (s2, _e2) in zip(r.holes, r.holes[1:], strict=False):
            assert s < e < s2  # disjoint, never adjacent (merged)
        assert all(e < r.top for _s, e in r.holes)
        assert not any(used[r.top:])


def test_scenario_knobs_from_toml_lists_are_accepted():
    config = KernelConfig(init_pages=[1, 2], slow_init_s=[0.2, 0.5])
    assert config.init_pages == (1, 2) and hash(config)
    assert boot(BUG, "i386", 3, config) == boot(BUG, "i386", 3, config)
    with pytest.raises(BisectlabError, match="pair"):
        KernelConfig(core_pages=[2])
