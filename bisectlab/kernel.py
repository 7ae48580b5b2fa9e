"""A mechanistic simulation of one boot of a 2008 kernel with the e1000e NVM-corruption bug.

Nothing here is a coin flip for "bricked". One boot, from a seeded RNG:

1. Modules load in a jittered order (udev/async jitter). For each, ``load_module`` vmallocs a
   temporary copy of the .ko, ``module_alloc`` places the core and then the init region, and the
   copy is vfreed; all with the 2.6.27 ``__get_vm_area_node`` first fit (scan from
   VMALLOC_START, one guard page per area). Some drivers ``ioremap`` their BARs from the same
   allocator on i386 (ioremap areas aligned to 2^fls(size), at most 512 KiB).
2. Dynamic ftrace records every mcount site executed (``ftrace_record_ip``), including those in
   ``__init`` code. The ``ftraced`` daemon wakes every ``daemon_interval_s`` (HZ) and converts
   the records made since its last wake.
3. Module inits run concurrently (2.6.27 calls ``mod->init`` without ``module_mutex``), so an init
   region freed after its init returns leaves a hole below modules loaded meanwhile.
4. e1000e probes at a random position among the NIC-class modules and ioremaps BAR0 (128 KiB,
   256 KiB aligned) and BAR1 flash registers (4 KiB, 8 KiB aligned): first fit may land it on a
   freed init region whose sites were recorded but not yet converted.
5. At its next wake the daemon cmpxchg-patches those stale sites: ``lock cmpxchg`` writes even on
   a mismatch, so a site in the flash page writes a flash register.
6. A write on HSFCTL/FADDR/FDATA0 corrupts the NVM for sure, elsewhere with probability 0.2,
   unless the NVM lockdown (PR0 + FLOCKDN) masks it.

Only what can change the outcome is simulated: modules loaded after e1000e's probe cannot, so a
boot stops there (plus the daemon's next wake). Module binaries (sizes, layout, which ``__init``
functions run, nominal init times) are fixed per ``KernelConfig.layout_seed``; a boot varies the
load order, the timing and the daemon's phase.

Modelling choices [M] (see ../shared/e1000e-domain.md section 4):
- Churn (feature ``i915_gem``): X starts within ``x_start_spread`` module loads of e1000e and
  unloads and reloads a few loaded graphics modules (none if X starts after the probe). The
  unload runs the module's ``__exit`` code (recorded) and frees its core, the reload runs its
  ``__init`` again: more freed, recorded-but-unconverted code. ``__exit`` sites are
  treated like ``__init`` ones: ``init_notrace`` stops both being recorded and ``ftrace_release``
  releases both, so churn raises the rate only when the mechanism is armed.
- All of a module's ``__init`` sites are recorded when its init starts. An ip recorded and
  converted earlier does not shadow a later site at the same address. A stray write into BAR0
  (MMIO) is harmless: only the flash page can brick.
- Calibration: ``load_gap_s`` (udev coldplug pace against the 1 s daemon window) and
  ``p_init_runs`` were tuned so the default i386 buggy kernel bricks on about 5% of boots
  (about 7% with ``i915_gem``). ``layout_seed`` (the rig) moves the rate too, like real machines.
"""

from __future__ import annotations

import hashlib
import math
import random
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from heapq import heappop, heappush
from operator import itemgetter

from bisectlab.errors import BisectlabError

ARCHES = ("i386", "x86_64")
PAGE = 4096
FEATURES = (
    "ftrace",
    "dynamic_ftrace",
    "ftrace_cmpxchg",
    "ftrace_release",
    "init_notrace",
    "e1000e_nvm_lockdown",
    "i915_gem",
)
# ICH GbE flash registers in BAR1 (ich8lan.h): a 4-byte cmpxchg write on these corrupts the NVM.
FLASH_REGS = ((0x00, 4, "GFPREG"), (0x04, 2, "HSFSTS"), (0x06, 2, "HSFCTL"), (0x08, 4, "FADDR"),
              (0x10, 4, "FDATA0"), (0x74, 4, "PR0"))
CRITICAL_REGS = frozenset({"HSFCTL", "FADDR", "FDATA0"})
MCOUNT_OFFSET = 3  # push %ebp; mov %esp,%ebp; call mcount: the site is 3 bytes into a function
_PKMAP_BASE_I386 = 0xFF800000
_VMALLOC_START_X86_64 = 0xFFFFC20000000000
_MODULES_VADDR_X86_64 = 0xFFFFFFFFA0000000

# A 2008 laptop's coldplug, in a plausible order; (name, class). Class "nic" modules are where
# e1000e may land; "gfx" modules are the ones X/i915 churn unloads and reloads.
_MODULE_NAMES = (
    ("processor", ""), ("thermal", ""), ("fan", ""), ("ac", ""), ("battery", ""),
    ("button", ""), ("video", "gfx"), ("output", "gfx"), ("usbcore", ""), ("ehci_hcd", ""),
    ("uhci_hcd", ""), ("scsi_mod", ""), ("libata", ""), ("ata_piix", ""), ("sd_mod", ""),
    ("agpgart", "gfx"), ("intel_agp", "gfx"), ("cfg80211", "nic"), ("rfkill", "nic"),
    ("led_class", ""), ("mac80211", "nic"), ("iwlcore", "nic"), ("mii", "nic"), ("e1000e", "nic"),
    ("iwlagn", "nic"), ("firmware_class", ""), ("soundcore", ""), ("snd", ""),
    ("snd_page_alloc", ""), ("snd_timer", ""), ("snd_pcm", ""), ("snd_hda_intel", ""),
    ("drm", "gfx"), ("i915", "gfx"), ("evdev", ""), ("psmouse", ""), ("serio_raw", ""),
    ("iTCO_wdt", ""), ("sdhci_pci", ""), ("thinkpad_acpi", ""), ("usbhid", ""), ("hid", ""),
    ("mmc_core", ""), ("sdhci", ""), ("nvram", ""), ("uvcvideo", ""), ("videodev", ""),
    ("joydev", ""), ("pcspkr", ""), ("acpi_cpufreq", ""), ("freq_table", ""), ("fuse", ""),
    ("ipv6", ""), ("af_packet", ""), ("loop", ""), ("dm_mod", ""), ("ext3", ""), ("jbd", ""),
)
# Drivers that ioremap a BAR when they probe (KiB); e1000e's BARs are KernelConfig fields.
_IOREMAPS = {"ehci_hcd": 4, "ata_piix": 4, "snd_hda_intel": 16, "iwlagn": 8, "i915": 512,
             "sdhci_pci": 4, "iTCO_wdt": 4}


@dataclass(frozen=True)
class KernelConfig:
    """Scenario knobs of the simulated boot; defaults from e1000e-domain.md section 4."""

    n_modules: int = 40  # modules loaded at boot (10-120)
    init_fraction: float = 0.8  # modules with __init text (0.3-1.0)
    init_pages: tuple[int, int] = (1, 3)  # init region size range, pages (1-16)
    core_pages: tuple[int, int] = (2, 48)  # core region size range, pages (log-uniform)
    init_functions: int = 6  # __init functions per module: 1..this
    p_init_runs: float = 0.5  # chance an __init helper runs (module_init itself always does)
    e1000e_core_pages: int = 36  # e1000e.ko core (~150 KiB)
    file_ratio: tuple[float, float] = (1.3, 2.5)  # .ko file size / (core + init): relocs, symbols
    order_jitter: float = 0.2  # fraction of the load order shuffled per boot (0-1)
    load_gap_s: float = 0.2  # mean gap between module loads (exponential): udev coldplug
    fast_init_s: tuple[float, float] = (0.001, 0.02)  # nominal init time of most modules
    slow_init_fraction: float = 0.25  # modules whose init probes hardware slowly
    slow_init_s: tuple[float, float] = (0.1, 0.6)
    time_jitter: float = 0.5  # per-boot init time = nominal * U(1 - j, 1 + j)
    daemon_interval_s: float = 1.0  # ftraced wakes once per HZ (0.1-5 s)
    vmalloc_mib: int = 128  # vmalloc window (32-512 MiB, vmalloc=)
    bar0_kib: int = 128  # e1000e BAR0 (MMIO)
    flash_kib: int = 4  # e1000e BAR1 (ICH flash registers), 4-8 KiB
    p_damage_critical: float = 1.0  # stray write on HSFCTL/FADDR/FDATA0
    p_damage_other: float = 0.2  # stray write elsewhere in the flash page
    churn_modules: int = 3  # i915_gem: graphics modules unloaded and reloaded at X start
    x_start_spread: int = 10  # X starts within this many module loads before or after e1000e
    layout_seed: int = 2008  # the module binaries (sizes, layout, init times) of the rig

    def __post_init__(self) -> None:
        """Reject knobs outside the model's range with one clear line; lists become tuples."""
        for name in ("init_pages", "core_pages", "file_ratio", "fast_init_s", "slow_init_s"):
            value = getattr(self, name)
            if not (isinstance(value, tuple | list) and len(value) == 2):
                raise BisectlabError(f"{name} must be a pair [lo, hi], not {value!r}")
            object.__setattr__(self, name, tuple(value))  # TOML gives lists; keep it hashable
        if self.n_modules < 2:
            raise BisectlabError(f"n_modules must be >= 2, not {self.n_modules}")
        if not 1 <= self.init_pages[0] <= self.init_pages[1]:
            raise BisectlabError(f"init_pages must be 1 <= lo <= hi, not {self.init_pages}")
        if not 1 <= self.core_pages[0] <= self.core_pages[1]:
            raise BisectlabError(f"core_pages must be 1 <= lo <= hi, not {self.core_pages}")
        if not 0.0 <= self.order_jitter <= 1.0 or not 0.0 <= self.time_jitter < 1.0:
            raise BisectlabError("order_jitter must lie in [0, 1] and time_jitter in [0, 1)")
        if self.daemon_interval_s <= 0 or self.load_gap_s <= 0:
            raise BisectlabError("daemon_interval_s and load_gap_s must be > 0")
        if self.flash_kib < 1 or self.bar0_kib < 1 or self.vmalloc_mib < 8:
            raise BisectlabError("BAR sizes must be >= 1 KiB and vmalloc_mib >= 8")
        for name in ("init_fraction", "p_init_runs", "slow_init_fraction", "p_damage_critical",
                     "p_damage_other"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise BisectlabError(f"{name} is a probability: it must lie in [0, 1]")
        if self.churn_modules < 0 or self.x_start_spread < 0 or self.init_functions < 1:
            raise BisectlabError("churn_modules, x_start_spread >= 0 and init_functions >= 1")


DEFAULT_CONFIG = KernelConfig()


@dataclass(frozen=True)
class BootOutcome:
    """What one boot did to the adapter."""

    bricked: bool  # the adapter's NVM is corrupted: the adapter is dead
    stray_write: bool  # a cmpxchg hit ioremapped flash (bricking or masked)
    masked: bool  # the lockdown masked the stray write
    log: tuple[str, ...] = ()  # a dmesg-like account, only with explain=True


@dataclass(frozen=True)
class _Table:
    """The rig's module binaries, fixed per config: one entry per module, canonical order."""

    names: tuple[str, ...]
    file: tuple[int, ...]  # load_module's temporary copy of the .ko (guard included)
    core: tuple[int, ...]  # core area pages (guard included)
    init: tuple[int, ...]  # init area pages (guard included), 0 = no __init
    iomap: tuple[int, ...]  # ioremap area pages (guard included), 0 = none
    iomap_align: tuple[int, ...]
    init_s: tuple[float, ...]  # nominal init time
    init_sites: tuple[tuple[tuple[int, int], ...], ...]  # executed __init mcount sites (page, off)
    exit_sites: tuple[tuple[tuple[int, int], ...], ...]  # __exit mcount sites in the core
    nic: tuple[int, ...]  # indices of NIC-class modules
    gfx: tuple[int, ...]  # indices of graphics modules (churn)
    e1000e: int


def _fls(x: int) -> int:
    """Find last set bit, 1-based, like the kernel's fls()."""
    return x.bit_length()


@lru_cache(maxsize=64)
def ioremap_area(size_bytes: int) -> tuple[int, int]:
    """(pages with guard, alignment in pages) of an ioremap: 2^fls(size), 4 KiB..512 KiB."""
    pages = -(-size_bytes // PAGE)
    bit = min(max(_fls(pages * PAGE), 12), 19)  # PAGE_SHIFT .. IOREMAP_MAX_ORDER (7 + 12)
    return pages + 1, (1 << bit) // PAGE


def _sites(rng: random.Random, nfunc: int, p_run: float) -> tuple[tuple[int, int], ...]:
    """mcount sites (page, offset) of the functions that run, laid out from offset 0.

    The last function (module_init or module_exit, defined last in its file) always runs.
    """
    start, sites = 0, []
    for k in range(nfunc):
        if k == nfunc - 1 or rng.random() < p_run:
            sites.append(divmod(start + MCOUNT_OFFSET, PAGE))
        start += 16 * rng.randint(4, 32)  # 64..512-byte functions, 16-byte aligned
    return tuple(sites)


def _exit_sites(rng: random.Random, core: int) -> tuple[tuple[int, int], ...]:
    """mcount sites of a module's __exit code: .exit.text follows .text in the core."""
    text = int(core * PAGE * rng.uniform(0.5, 0.8)) // 16 * 16
    ips = (text + page * PAGE + off for page, off in _sites(rng, rng.randint(1, 3), 1.0))
    return tuple(divmod(ip, PAGE) for ip in ips if ip < core * PAGE)


def _module_names(n: int) -> list[tuple[str, str]]:
    """n (name, class) pairs in coldplug order, e1000e always included."""
    names = list(_MODULE_NAMES)
    if n >= len(names):
        return names + [(f"mod{i:03d}", "") for i in range(n - len(names))]
    keep = [i for i in range(len(names)) if names[i][0] != "e1000e"][: n - 1]
    keep.append(next(i for i, (m, _) in enumerate(names) if m == "e1000e"))
    return [names[i] for i in sorted(keep)]


@lru_cache(maxsize=32)
def _table(config: KernelConfig) -> _Table:
    """Draw the rig's module binaries from config.layout_seed (cached)."""
    rng = random.Random(config.layout_seed)
    mods = _module_names(config.n_modules)
    core, init, iomap, align, init_s, isites, xsites, file = [], [], [], [], [], [], [], []
    lo, hi = config.core_pages
    for name, _cls in mods:
        c = round(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        c = config.e1000e_core_pages if name == "e1000e" else c
        has_init = name == "e1000e" or rng.random() < config.init_fraction
        i = rng.randint(*config.init_pages) if has_init else 0
        core.append(c + 1)
        file.append(math.ceil((c + i) * rng.uniform(*config.file_ratio)) + 1)
        init.append(i + 1 if i else 0)
        pages, al = ioremap_area(_IOREMAPS[name] * 1024) if name in _IOREMAPS else (0, 1)
        iomap.append(pages)
        align.append(al)
        slow = rng.random() < config.slow_init_fraction
        init_s.append(rng.uniform(*(config.slow_init_s if slow else config.fast_init_s)))
        nfunc = min(rng.randint(1, config.init_functions), i * PAGE // 512)
        isites.append(_sites(rng, nfunc, config.p_init_runs) if i else ())
        xsites.append(_exit_sites(rng, c))
    return _Table(
        names=tuple(m for m, _ in mods), file=tuple(file), core=tuple(core), init=tuple(init),
        iomap=tuple(iomap), iomap_align=tuple(align), init_s=tuple(init_s),
        init_sites=tuple(isites), exit_sites=tuple(xsites),
        nic=tuple(k for k, (_, cls) in enumerate(mods) if cls == "nic"),
        gfx=tuple(k for k, (_, cls) in enumerate(mods) if cls == "gfx"),
        e1000e=next(k for k, (m, _) in enumerate(mods) if m == "e1000e"),
    )


_first = itemgetter(0)


class _Range:
    """A vmalloc-style address range: sorted free holes below a top; first fit, guard included."""

    __slots__ = ("holes", "top", "end")

    def __init__(self, pages: int) -> None:
        """An empty range of the given number of pages."""
        self.holes: list[list[int]] = []
        self.top = 0
        self.end = pages

    def alloc(self, size: int) -> int:
        """First fit of size pages (vmalloc, module_alloc); returns the start page."""
        holes = self.holes
        for i, h in enumerate(holes):
            s, e = h
            if e - s >= size:
                if e - s == size:
                    del holes[i]
                else:
                    h[0] = s + size
                return s
        s = self.top
        if s + size > self.end:
            raise BisectlabError("simulated vmalloc range exhausted: raise vmalloc_mib")
        self.top = s + size
        return s

    def alloc_aligned(self, size: int, align: int) -> int:
        """First fit of size pages starting on a multiple of align pages (ioremap)."""
        holes = self.holes
        for i, h in enumerate(holes):
            s, e = h
            a = -(-s // align) * align
            if a + size <= e:
                if a + size == e:
                    if a == s:
                        del holes[i]
                    else:
                        h[1] = a
                elif a == s:
                    h[0] = a + size
                else:
                    h[1] = a
                    holes.insert(i + 1, [a + size, e])
                return a
        top = self.top
        a = -(-top // align) * align
        if a + size > self.end:
            raise BisectlabError("simulated vmalloc range exhausted: raise vmalloc_mib")
        if a > top:
            holes.append([top, a])
        self.top = a + size
        return a

    def free(self, a: int, size: int) -> None:
        """Return [a, a + size) to the range, merging with neighbouring holes."""
        holes = self.holes
        e = a + size
        n = len(holes)
        i = bisect_left(holes, a, key=_first)
        if i and holes[i - 1][1] == a:
            i -= 1
            a = holes[i][0]
            del holes[i]
            n -= 1
        if e == self.top:
            del holes[i:]
            self.top = a
        elif i < n and holes[i][0] == e:
            holes[i][0] = a
        else:
            holes.insert(i, [a, e])


def _check_arch(arch: str) -> None:
    """Raise BisectlabError for an arch the simulation does not know."""
    if arch not in ARCHES:
        raise BisectlabError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHES)}")


def _records_stale(features: Mapping[str, bool]) -> bool:
    """True iff freed __init/__exit code can keep unconverted ftrace records."""
    f = features.get
    return bool(f("ftrace") and f("dynamic_ftrace") and not f("ftrace_release")
                and not f("init_notrace"))


def mechanism_armed(features: Mapping[str, bool], arch: str) -> bool:
    """True iff a brick is possible at all: the bug's preconditions, 32-bit, no lockdown."""
    _check_arch(arch)
    return (arch == "i386" and _records_stale(features) and bool(features.get("ftrace_cmpxchg"))
            and not features.get("e1000e_nvm_lockdown"))


def boot_seed(hunt_seed: int, commit_sha: str, attempt: int) -> int:
    """A deterministic 64-bit seed for one boot of a commit in a hunt."""
    key = f"{hunt_seed}\x00{commit_sha}\x00{attempt}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def _order(table: _Table, config: KernelConfig, rng: random.Random) -> list[int]:
    """This boot's load order: jittered coldplug order, e1000e at a random NIC-class slot."""
    n = len(table.names)
    order = list(range(n))
    rnd = rng.random
    for _ in range(round(config.order_jitter * n / 2)):
        i, j = int(rnd() * n), int(rnd() * n)
        order[i], order[j] = order[j], order[i]
    other = table.nic[int(rnd() * len(table.nic))]
    i, j = order.index(table.e1000e), order.index(other)
    order[i], order[j] = order[j], order[i]
    return order


def boot(
    features: Mapping[str, bool],
    arch: str,
    seed: int,
    config: KernelConfig = DEFAULT_CONFIG,
    explain: bool = False,
) -> BootOutcome:
    """Simulate one boot up to ftraced's first wake after e1000e's probe; say what it did."""
    _check_arch(arch)
    return _Boot(features, arch, seed, config, explain).run()


class _Boot:
    """The state of one simulated boot (module placement, frees, ftrace records)."""

    def __init__(self, features: Mapping[str, bool], arch: str, seed: int,
                 config: KernelConfig, explain: bool) -> None:
        """Set up the ranges and the RNG; nothing is drawn yet."""
        self.features, self.arch, self.config = features, arch, config
        self.table = _table(config)
        self.rng = random.Random(seed)
        pages = config.vmalloc_mib * 256
        self.mods = _Range(pages)
        self.io = self.mods if arch == "i386" else _Range(pages)
        self.log: list[tuple[float, str]] | None = [] if explain else None
        self.io_at: dict[int, int] = {}  # module -> its ioremap's start page
        # (record time, free time, start page, sites, module, kind) of code freed this boot
        self.freed: list[tuple[float, float, int, tuple, int, str]] = []

    def say(self, t: float, text: str) -> None:
        """Add a dmesg line at time t (explain only)."""
        self.log.append((t, text))

    def base(self, io: bool) -> int:
        """VMALLOC_START (ioremap, and modules on i386) or x86_64's MODULES_VADDR."""
        if self.arch == "i386":  # 8 MiB aligned below PKMAP_BASE
            return (_PKMAP_BASE_I386 - self.config.vmalloc_mib * 2**20) & ~(2**23 - 1)
        return _VMALLOC_START_X86_64 if io else _MODULES_VADDR_X86_64

    def addr(self, page: int, io: bool = False) -> str:
        """A page number as a kernel virtual address."""
        return f"{self.base(io) + page * PAGE:#x}"

    def run(self) -> BootOutcome:
        """Load modules until e1000e probes, then let ftraced wake once more."""
        t, cfg, tab, rng = 0.0, self.config, self.table, self.rng
        rnd = rng.random
        order = _order(tab, cfg, rng)
        interval = cfg.daemon_interval_s
        phase = rnd() * interval
        churn_at = self._churn_plan(order)
        if self.log is not None:
            self._say_start(phase)
        pending: list[tuple[float, int, int, float]] = []  # (free t, module, init page, load t)
        core_at: dict[int, int] = {}
        gap, log_, jit = cfg.load_gap_s, math.log, cfg.time_jitter
        for step, m in enumerate(order):
            t -= gap * log_(1.0 - rnd())
            if pending and pending[0][0] <= t:
                self._free_inits(pending, t)
            if step == churn_at:
                t = self._churn(core_at, t, pending)
            dur = tab.init_s[m] * (1.0 - jit + 2.0 * jit * rnd())
            core_at[m] = self._load(m, t, dur, pending)
            if m == tab.e1000e:
                return self._probe(t, phase, interval, pending)
        raise AssertionError("e1000e is always in the load order")

    def _say_start(self, phase: float) -> None:
        """Log the address layout and the ftrace set-up."""
        cfg, f = self.config, self.features.get
        end = self.base(True) + cfg.vmalloc_mib * 2**20
        self.say(0.0, f"{self.arch}: vmalloc {self.addr(0, True)} - {end:#x} "
                      f"({cfg.vmalloc_mib} MB); modules "
                      + ("share it with ioremap" if self.io is self.mods else
                         f"have their own range at {self.addr(0)}"))
        if f("ftrace") and f("dynamic_ftrace"):
            prim = "lock cmpxchg" if f("ftrace_cmpxchg") else "probe_kernel read/compare/write"
            self.say(0.0, f"ftrace: dynamic, sites recorded on the fly; ftraced wakes every "
                          f"{cfg.daemon_interval_s:g} s (phase {phase:.3f} s), patches with {prim}")
        else:
            self.say(0.0, "ftrace: no dynamic ftrace in this kernel: no mcount records")

    def _churn_plan(self, order: list[int]) -> int:
        """The load step at which X starts and churns graphics modules (-1 = no churn)."""
        if not self.features.get("i915_gem"):
            return -1
        e, spread = order.index(self.table.e1000e), self.config.x_start_spread
        return max(1, e - spread + int(self.rng.random() * 2 * spread))

    def _load(self, m: int, t: float, dur: float, pending: list) -> int:
        """load_module (copy the .ko, module_alloc core and init), ioremap, start init.

        Returns the core's start page.
        """
        tab, mods = self.table, self.mods
        size = tab.file[m]
        hdr = mods.alloc(size)
        core = mods.alloc(tab.core[m])
        init = mods.alloc(tab.init[m]) if tab.init[m] else -1
        mods.free(hdr, size)
        if tab.iomap[m]:
            self.io_at[m] = self.io.alloc_aligned(tab.iomap[m], tab.iomap_align[m])
        if init >= 0:
            heappush(pending, (t + dur, m, init, t))
        if self.log is not None:
            self._say_load(m, t, core, init)
        return core

    def _say_load(self, m: int, t: float, core: int, init: int) -> None:
        """Log one module load."""
        tab = self.table
        text = f"{tab.names[m]}: module core {self.addr(core)} ({tab.core[m] - 1} pages)"
        if init >= 0:
            text += f", init {self.addr(init)} ({tab.init[m] - 1} pages)"
        self.say(t, text)

    def _free_inits(self, pending: list, t: float) -> None:
        """module_free the init regions of inits that returned by time t (pending is a heap)."""
        tab, free, freed = self.table, self.mods.free, self.freed
        while pending and pending[0][0] <= t:
            f, m, start, t_load = heappop(pending)
            free(start, tab.init[m])
            freed.append((t_load, f, start, tab.init_sites[m], m, "__init"))
            if self.log is not None:
                self.say(f, f"{tab.names[m]}: init done, module_free init {self.addr(start)}")

    def _churn(self, core_at: dict[int, int], t: float, pending: list) -> float:
        """X start: unload (run __exit, free core) and reload a few loaded graphics modules."""
        tab, rnd = self.table, self.rng.random
        busy = {m for _f, m, _s, _t in pending}
        loaded = [m for m in tab.gfx if m in core_at and m not in busy]
        for _ in range(min(self.config.churn_modules, len(loaded))):
            m = loaded.pop(int(rnd() * len(loaded)))
            if self.log is not None:
                self.say(t, f"X: rmmod {tab.names[m]} (__exit runs, core freed)")
            self.mods.free(core_at[m], tab.core[m])
            if tab.iomap[m]:
                self.io.free(self.io_at[m], tab.iomap[m])
            self.freed.append((t, t, core_at[m], tab.exit_sites[m], m, "__exit"))
            t += 0.002 + 0.01 * rnd()
            core_at[m] = self._load(m, t, tab.init_s[m] * (0.5 + rnd()), pending)
            t += 0.002 + 0.01 * rnd()
            self._free_inits(pending, t)
        return t

    def _probe(self, t: float, phase: float, interval: float, pending: list) -> BootOutcome:
        """e1000e probes: ioremap BAR0 and the flash BAR; ftraced's next wake patches."""
        cfg = self.config
        p0, a0 = ioremap_area(cfg.bar0_kib * 1024)
        pf, af = ioremap_area(cfg.flash_kib * 1024)
        bar0 = self.io.alloc_aligned(p0, a0)
        flash = self.io.alloc_aligned(pf, af)
        last_wake = phase + math.floor((t - phase) / interval) * interval
        wake = last_wake + interval
        if self.log is not None:
            self._say_probe(t, bar0, flash, last_wake, pending)
        hits = self._stale_hits(flash, pf - 1, last_wake)
        return self._outcome(hits, wake, flash)

    def _say_probe(self, t: float, bar0: int, flash: int, last_wake: float,
                   pending: list) -> None:
        """Log the probe and the daemon wakes before it."""
        cfg = self.config
        self.say(t, "e1000e: Intel(R) PRO/1000 Network Driver - 0.3.3.3-k6")
        self.say(t, f"e1000e 0000:00:19.0: ioremap BAR0 ({cfg.bar0_kib} KiB) at "
                    f"{self.addr(bar0, True)}, flash BAR1 ({cfg.flash_kib} KiB) at "
                    f"{self.addr(flash, True)}")
        self._say_wakes(last_wake, pending)

    def _say_wakes(self, last_wake: float, pending: list) -> None:
        """Log what each ftraced wake before the probe did with the records since the last."""
        f = self.features.get
        if not (f("ftrace") and f("dynamic_ftrace")):
            return
        fate = "released by ftrace_release" if f("ftrace_release") else (
            "stale (code already freed: fault or mismatch, record dropped)")
        if f("init_notrace"):
            self.say(last_wake, "ftraced: __init/__exit code is notrace: nothing of it recorded")
            return
        interval = self.config.daemon_interval_s
        recs = [(rec, f, len(sites)) for rec, f, _s, sites, _m, _k in self.freed]
        recs += [(t_load, f, len(self.table.init_sites[m])) for f, m, _s, t_load in pending]
        w = last_wake
        while w > 0:
            done = [(f > w, n) for rec, f, n in recs if w - interval < rec <= w]
            ok = sum(n for live, n in done if live)
            stale = sum(n for live, n in done if not live)
            self.say(w, f"ftraced: {ok} __init/__exit mcount records converted to nops, "
                        f"{stale} {fate}")
            w -= interval

    def _stale_hits(self, flash: int, fpages: int, last_wake: float) -> list:
        """Stale sites (freed code recorded since the last wake) that lie in the flash pages."""
        if self.io is not self.mods or not _records_stale(self.features):
            return []
        hits = []
        for rec, _f, start, sites, m, kind in self.freed:
            if rec <= last_wake:
                continue
            for page, off in sites:
                if flash <= start + page < flash + fpages:
                    hits.append(((start + page - flash) * PAGE + off, m, kind))
        return hits

    def _outcome(self, hits: list, wake: float, flash: int) -> BootOutcome:
        """The daemon patches the stale sites: what reaches the flash, and what it breaks."""
        cmpxchg = bool(self.features.get("ftrace_cmpxchg"))
        lockdown = bool(self.features.get("e1000e_nvm_lockdown"))
        cfg, rnd, log = self.config, self.rng.random, self.log
        damaged = False
        for off, m, kind in hits:
            regs = registers_at(off)
            crit = not CRITICAL_REGS.isdisjoint(regs)
            p = cfg.p_damage_critical if crit else cfg.p_damage_other
            reg = "/".join(regs) or "no register"
            hit = rnd() < p  # drawn whatever the features, so outcomes stay coupled
            damaged = damaged or (hit and cmpxchg)
            if log is not None:
                self._say_hit(wake, flash, off, m, kind, reg, cmpxchg)
        stray = cmpxchg and bool(hits)
        bricked = damaged and not lockdown
        if log is not None:
            self._say_end(wake, stray, bricked, lockdown)
        return BootOutcome(bricked, stray, stray and lockdown, self._lines())

    def _say_hit(self, wake: float, flash: int, off: int, m: int, kind: str, reg: str,
                 cmpxchg: bool) -> None:
        """Log one stale site patched in the flash page."""
        ip = f"{self.base(True) + flash * PAGE + off:#x}"
        name = self.table.names[m]
        if cmpxchg:
            self.say(wake, f"ftraced: lock cmpxchg on stale ip {ip} (freed {kind} of {name}) = "
                           f"e1000e flash +{off:#05x} ({reg}): compare fails, write cycle issued")
        else:
            self.say(wake, f"ftraced: stale ip {ip} (freed {kind} of {name}) reads e1000e flash "
                           f"+{off:#05x}: mismatch, nothing written")

    def _say_end(self, wake: float, stray: bool, bricked: bool, lockdown: bool) -> None:
        """Log what the boot did to the NVM."""
        if stray and lockdown:
            self.say(wake, "e1000e: stray flash write masked by NVM lockdown (PR0+FLOCKDN)")
        elif bricked:
            self.say(wake, "e1000e: GbE NVM region corrupted by a stray flash cycle")
            self.say(wake + 60.0, "(next boot) e1000e 0000:00:19.0: The NVM Checksum Is Not Valid")
            self.say(wake + 60.0, "(next boot) e1000e: probe of 0000:00:19.0 failed with error -5")
        elif stray:
            self.say(wake, "e1000e: stray flash write left the NVM intact (lucky)")
        else:
            self.say(wake, "ftraced: no stale record in the e1000e flash page: NVM intact")

    def _lines(self) -> tuple[str, ...]:
        """The log as dmesg lines in time order (empty without explain)."""
        if self.log is None:
            return ()
        self.log.sort(key=lambda e: e[0])
        return tuple(f"[{t:12.6f}] {text}" for t, text in self.log)


def registers_at(off: int) -> tuple[str, ...]:
    """The ICH flash registers a 4-byte cmpxchg write at offset off overlaps."""
    return tuple(name for start, size, name in FLASH_REGS if off < start + size and start < off + 4)
