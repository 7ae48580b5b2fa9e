"""Kernel-shaped history generator: release cycles of merge window, -rc weeks and stable releases.

Each cycle follows Linux's rhythm: topic trees (net, x86, tracing, drm ...) forked from the last
release are merged into mainline during a two-week merge window that ends with -rc1; then weekly
fix merges and direct commits, each week closed by an -rc tag; the release; a stable branch with
a point release. Sizes follow the 2.6.27 cycle (about 93% of commits non-merge, 70% of them in the
merge window). Scenario pins place named commits (with feature toggles) at exact spots.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bisectlab.errors import HistoryError
from bisectlab.paths import ChangedPaths, check_path

if TYPE_CHECKING:
    from bisectlab.history import History

DAY = 86400
MIN_COMMITS, MAX_COMMITS = 12, 5_000_000  # the Linux kernel had about 1.3 million in 2025
SUBSYSTEMS = (
    "net", "x86", "tracing", "drm", "scsi", "usb", "sound", "block", "mm", "sched", "ext4",
    "xfs", "nfs", "input", "hwmon", "acpi", "pci", "powerpc", "arm", "s390", "ide", "libata",
    "md", "dm", "watchdog", "i2c", "v4l-dvb", "wireless", "crypto", "kvm", "fs", "ocfs2",
    "cifs", "firewire", "infiniband", "mtd", "sparc", "mips", "cpufreq", "security",
)
VERBS = ("fix", "add", "remove", "clean up", "convert", "use", "simplify", "handle", "export",
         "annotate", "rework", "document", "check", "initialise", "drop", "move")
NOUNS = ("locking", "error path", "memory leak", "race", "refcount", "return value", "NULL check",
         "sparse warning", "Kconfig entry", "debug output", "timeout", "irq handler",
         "suspend/resume", "DMA mapping", "endianness", "compile warning", "module parameter")
WHERES = ("in probe", "on unload", "in init", "for 64-bit", "under load", "in the fast path",
          "on error", "in open", "in ioctl", "at boot", "on SMP", "in the tx path")

# The files a commit of each subsystem touches (2.6.27-era paths); "release" is the version bump of
# a "Linux x.y" commit, "misc" the area of a scenario topic or pin that names no subsystem.
AREA_FILES: dict[str, tuple[str, ...]] = {
    "net": ("drivers/net/e1000e/netdev.c", "drivers/net/e1000e/ich8lan.c",
            "drivers/net/e1000/e1000_main.c", "drivers/net/tg3.c", "drivers/net/bnx2.c",
            "drivers/net/forcedeth.c", "net/core/dev.c", "net/core/skbuff.c", "net/ipv4/tcp.c",
            "net/ipv4/tcp_input.c", "net/ipv6/addrconf.c", "include/linux/netdevice.h"),
    "x86": ("arch/x86/kernel/setup.c", "arch/x86/kernel/apic_32.c", "arch/x86/kernel/smpboot.c",
            "arch/x86/mm/init_32.c", "arch/x86/mm/ioremap.c", "arch/x86/mm/pat.c",
            "arch/x86/kernel/cpu/common.c", "include/asm-x86/processor.h", "arch/x86/Kconfig"),
    "tracing": ("kernel/trace/ftrace.c", "kernel/trace/trace.c", "kernel/trace/trace.h",
                "kernel/trace/trace_sched_switch.c", "kernel/trace/trace_irqsoff.c",
                "kernel/trace/Kconfig", "include/linux/ftrace.h", "arch/x86/kernel/ftrace.c"),
    "drm": ("drivers/gpu/drm/i915/i915_gem.c", "drivers/gpu/drm/i915/i915_drv.c",
            "drivers/gpu/drm/i915/i915_irq.c", "drivers/gpu/drm/drm_drv.c",
            "drivers/gpu/drm/drm_bufs.c", "drivers/gpu/drm/radeon/radeon_cp.c", "include/drm/drmP.h"),
    "scsi": ("drivers/scsi/scsi_lib.c", "drivers/scsi/sd.c", "drivers/scsi/scsi_error.c",
             "drivers/scsi/libsas/sas_ata.c", "drivers/scsi/qla2xxx/qla_os.c",
             "drivers/scsi/lpfc/lpfc_init.c", "include/scsi/scsi_host.h"),
    "usb": ("drivers/usb/core/hub.c", "drivers/usb/host/ehci-hcd.c", "drivers/usb/host/ohci-hcd.c",
            "drivers/usb/serial/option.c", "drivers/usb/storage/unusual_devs.h",
            "drivers/usb/gadget/ether.c", "include/linux/usb.h"),
    "sound": ("sound/pci/hda/patch_realtek.c", "sound/pci/hda/hda_intel.c", "sound/core/pcm_native.c",
              "sound/soc/soc-core.c", "sound/usb/usbaudio.c", "include/sound/core.h"),
    "block": ("block/blk-core.c", "block/cfq-iosched.c", "block/genhd.c", "block/blk-merge.c",
              "fs/bio.c", "include/linux/blkdev.h"),
    "mm": ("mm/page_alloc.c", "mm/vmalloc.c", "mm/slub.c", "mm/memory.c", "mm/mmap.c",
           "mm/vmscan.c", "mm/hugetlb.c", "include/linux/mm.h"),
    "sched": ("kernel/sched.c", "kernel/sched_fair.c", "kernel/sched_rt.c", "kernel/sched_debug.c",
              "include/linux/sched.h"),
    "ext4": ("fs/ext4/inode.c", "fs/ext4/super.c", "fs/ext4/extents.c", "fs/ext4/mballoc.c",
             "fs/ext4/balloc.c", "fs/jbd2/journal.c"),
    "xfs": ("fs/xfs/xfs_inode.c", "fs/xfs/xfs_log.c", "fs/xfs/xfs_buf_item.c",
            "fs/xfs/linux-2.6/xfs_aops.c", "fs/xfs/linux-2.6/xfs_super.c", "fs/xfs/xfs_bmap.c"),
    "nfs": ("fs/nfs/inode.c", "fs/nfs/dir.c", "fs/nfs/nfs4proc.c", "fs/nfsd/nfs4state.c",
            "net/sunrpc/xprtsock.c", "net/sunrpc/clnt.c"),
    "input": ("drivers/input/mouse/synaptics.c", "drivers/input/keyboard/atkbd.c",
              "drivers/input/serio/i8042-x86ia64io.h", "drivers/input/touchscreen/ads7846.c",
              "drivers/input/evdev.c", "drivers/hid/hid-core.c"),
    "hwmon": ("drivers/hwmon/coretemp.c", "drivers/hwmon/it87.c", "drivers/hwmon/lm85.c",
              "drivers/hwmon/w83627ehf.c", "drivers/hwmon/Kconfig"),
    "acpi": ("drivers/acpi/ec.c", "drivers/acpi/processor_idle.c", "drivers/acpi/battery.c",
             "drivers/acpi/video.c", "drivers/acpi/sleep/main.c", "include/acpi/acpi_bus.h"),
    "pci": ("drivers/pci/pci.c", "drivers/pci/probe.c", "drivers/pci/quirks.c", "drivers/pci/msi.c",
            "drivers/pci/hotplug/pciehp_hpc.c", "include/linux/pci_ids.h"),
    "powerpc": ("arch/powerpc/kernel/setup_64.c", "arch/powerpc/mm/hash_utils_64.c",
                "arch/powerpc/platforms/cell/spufs/file.c", "arch/powerpc/platforms/pseries/setup.c",
                "arch/powerpc/kernel/prom.c"),
    "arm": ("arch/arm/kernel/setup.c", "arch/arm/mm/mmu.c", "arch/arm/mach-pxa/pxa27x.c",
            "arch/arm/mach-omap2/board-n800.c", "arch/arm/plat-omap/gpio.c"),
    "s390": ("arch/s390/kernel/setup.c", "arch/s390/mm/pgtable.c", "drivers/s390/block/dasd.c",
             "drivers/s390/cio/device.c", "drivers/s390/net/qeth_core_main.c"),
    "ide": ("drivers/ide/ide-probe.c", "drivers/ide/ide-io.c", "drivers/ide/ide-cd.c",
            "drivers/ide/pci/piix.c", "include/linux/ide.h"),
    "libata": ("drivers/ata/libata-core.c", "drivers/ata/libata-eh.c", "drivers/ata/ahci.c",
               "drivers/ata/ata_piix.c", "drivers/ata/sata_nv.c", "include/linux/libata.h"),
    "md": ("drivers/md/md.c", "drivers/md/raid1.c", "drivers/md/raid5.c", "drivers/md/raid10.c",
           "include/linux/raid/md_k.h"),
    "dm": ("drivers/md/dm.c", "drivers/md/dm-table.c", "drivers/md/dm-crypt.c", "drivers/md/dm-ioctl.c",
           "drivers/md/dm-mpath.c"),
    "watchdog": ("drivers/watchdog/iTCO_wdt.c", "drivers/watchdog/softdog.c",
                 "drivers/watchdog/hpwdt.c", "drivers/watchdog/Kconfig"),
    "i2c": ("drivers/i2c/i2c-core.c", "drivers/i2c/busses/i2c-i801.c", "drivers/i2c/busses/i2c-piix4.c",
            "drivers/i2c/chips/eeprom.c", "include/linux/i2c.h"),
    "v4l-dvb": ("drivers/media/video/v4l2-dev.c", "drivers/media/video/uvc/uvc_driver.c",
                "drivers/media/video/gspca/gspca.c", "drivers/media/dvb/dvb-core/dvb_frontend.c",
                "drivers/media/video/bt8xx/bttv-driver.c"),
    "wireless": ("drivers/net/wireless/iwlwifi/iwl-agn.c", "drivers/net/wireless/ath9k/main.c",
                 "drivers/net/wireless/rt2x00/rt2x00dev.c", "net/mac80211/mlme.c", "net/mac80211/tx.c",
                 "net/wireless/reg.c"),
    "crypto": ("crypto/api.c", "crypto/cryptd.c", "crypto/testmgr.c", "crypto/aes_generic.c",
               "drivers/crypto/padlock-aes.c"),
    "kvm": ("virt/kvm/kvm_main.c", "arch/x86/kvm/x86.c", "arch/x86/kvm/mmu.c", "arch/x86/kvm/vmx.c",
            "arch/x86/kvm/svm.c", "include/linux/kvm_host.h"),
    "fs": ("fs/namei.c", "fs/dcache.c", "fs/inode.c", "fs/super.c", "fs/exec.c", "fs/splice.c",
           "include/linux/fs.h"),
    "ocfs2": ("fs/ocfs2/dlmglue.c", "fs/ocfs2/file.c", "fs/ocfs2/journal.c", "fs/ocfs2/super.c",
              "fs/ocfs2/dlm/dlmmaster.c"),
    "cifs": ("fs/cifs/connect.c", "fs/cifs/cifssmb.c", "fs/cifs/file.c", "fs/cifs/inode.c",
             "fs/cifs/sess.c"),
    "firewire": ("drivers/firewire/fw-ohci.c", "drivers/firewire/fw-sbp2.c",
                 "drivers/firewire/fw-transaction.c", "drivers/ieee1394/ohci1394.c",
                 "drivers/ieee1394/sbp2.c"),
    "infiniband": ("drivers/infiniband/core/cma.c", "drivers/infiniband/hw/mlx4/main.c",
                   "drivers/infiniband/hw/ehca/ehca_main.c", "drivers/infiniband/ulp/ipoib/ipoib_main.c",
                   "drivers/infiniband/hw/cxgb3/iwch_cm.c"),
    "mtd": ("drivers/mtd/nand/nand_base.c", "drivers/mtd/chips/cfi_cmdset_0001.c",
            "drivers/mtd/mtdpart.c", "drivers/mtd/ubi/build.c", "fs/jffs2/scan.c"),
    "sparc": ("arch/sparc64/kernel/smp.c", "arch/sparc64/kernel/irq.c", "arch/sparc64/mm/init.c",
              "arch/sparc/kernel/setup.c", "drivers/sbus/char/envctrl.c"),
    "mips": ("arch/mips/kernel/setup.c", "arch/mips/kernel/traps.c", "arch/mips/mm/c-r4k.c",
             "arch/mips/au1000/common/irq.c", "include/asm-mips/io.h"),
    "cpufreq": ("drivers/cpufreq/cpufreq.c", "drivers/cpufreq/cpufreq_ondemand.c",
                "arch/x86/kernel/cpu/cpufreq/acpi-cpufreq.c",
                "arch/x86/kernel/cpu/cpufreq/powernow-k8.c", "drivers/cpuidle/cpuidle.c"),
    "security": ("security/selinux/hooks.c", "security/selinux/ss/services.c",
                 "security/smack/smack_lsm.c", "security/commoncap.c", "security/keys/keyctl.c"),
    "release": ("Makefile",),
    "misc": ("MAINTAINERS", "drivers/misc/Kconfig", "lib/Kconfig.debug",
             "Documentation/feature-removal-schedule.txt"),
}
PATHS_PER_COMMIT = (0.5, 0.25, 0.15, 0.1)  # a generated commit touches 1, 2, 3 or 4 files
RELEASE, MISC = "release", "misc"


def _timestamp(value) -> int:
    """Epoch seconds from a TOML date/datetime, an ISO string or a number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        value = _dt.datetime.fromisoformat(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return int(value.timestamp())
    if isinstance(value, _dt.date):
        return int(_dt.datetime(value.year, value.month, value.day, tzinfo=_dt.UTC).timestamp())
    raise HistoryError(f"not a date: {value!r}")


DAYS = (1, 365)  # the days a release candidate's week, or a merge window, may last
SETTING_RANGES = {"cycle_commits": (1, 10**7), "rc": (0, 50), "stable_commits": (0, 10_000),
                  "window_days": DAYS, "window_share": (0.01, 0.99), "mean_topic": (1, 10_000)}


def _whole_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _number_in(value: Any, low: float, high: float, whole: bool) -> bool:
    """Whether a [generate] setting is a (whole, if it must be) number within [low, high]."""
    if whole:
        return _whole_in(value, int(low), int(high))
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)


@dataclass(frozen=True)
class KernelShape:
    """Size and rhythm of a generated history."""

    commits: int = 11371
    base: str = "v1.0"
    cycle_commits: int = 11371
    rc: int = 9
    stable_commits: int = 2
    start: int = _timestamp("2008-07-13T20:00:00")
    window_days: int = 14
    rc_days: tuple[int, ...] = (8, 7, 8, 8, 12, 12, 8, 7, 3)
    window_share: float = 0.70
    mean_topic: float = 24.0

    @classmethod
    def from_spec(cls, gen: Mapping) -> KernelShape:
        """Settings from a scenario's [generate] table (unknown keys are an error)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(gen) - known
        if unknown:
            raise HistoryError(f"unknown [generate] settings: {', '.join(sorted(unknown))}")
        values = dict(gen)
        if "start" in values:
            values["start"] = _timestamp(values["start"])
        if "rc_days" in values:
            days = values["rc_days"]
            if not isinstance(days, list) or not all(_whole_in(d, *DAYS) for d in days):
                raise HistoryError(f"rc_days must be a list of whole days in [{DAYS[0]}, "
                                   f"{DAYS[1]}]")
            values["rc_days"] = tuple(days)
        for key, (low, high) in SETTING_RANGES.items():
            whole = isinstance(getattr(cls, key), int)
            if key in values and not _number_in(values[key], low, high, whole):
                kind = "a whole number" if whole else "a number"
                raise HistoryError(f"[generate] {key} must be {kind} in [{low}, {high}], not "
                                   f"{values[key]!r}")
        shape = cls(**values)
        if not MIN_COMMITS <= shape.commits <= MAX_COMMITS:
            raise HistoryError(f"a kernel-shaped history has {MIN_COMMITS} to {MAX_COMMITS:,} "
                               f"commits, not {shape.commits:,}")
        if not re.fullmatch(r"v\d+(\.\d+)*", shape.base):
            raise HistoryError(f"base tag must look like v2.6.26, not '{shape.base}'")
        return shape


@dataclass(frozen=True)
class PinnedCommit:
    """A named commit with its subject, feature toggles, the real upstream sha it stands for and
    the paths it touched (none given: generated ones in its area)."""

    subject: str
    toggles: dict[str, bool] = field(default_factory=dict)
    upstream: str = ""
    at: int = 0
    paths: tuple[str, ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping) -> PinnedCommit:
        toggles = dict(spec.get("toggles", {}))
        if not all(isinstance(v, bool) for v in toggles.values()):
            raise HistoryError("feature toggles must be true or false")
        paths = spec.get("paths", [])
        if not isinstance(paths, list) or not all(isinstance(x, str) for x in paths):
            raise HistoryError("a pinned commit's paths must be a list of strings")
        return cls(str(spec["subject"]), toggles, str(spec.get("upstream", "")),
                   int(spec.get("at", 0)), tuple(check_path(x) for x in paths))

    def area(self, default: str = MISC) -> str:
        """Where its generated paths lie if none are pinned: its subject's subsystem, else default."""
        prefix = self.subject.partition(":")[0].strip()
        return prefix if prefix in AREA_FILES else default


@dataclass(frozen=True)
class TopicPin:
    """A topic branch placed in the first merge window (e.g. tracing, merged on day 1)."""

    name: str
    commits: int
    merge_at: float = 0.0
    authored: int | None = None
    merge_subject: str = ""
    pinned: tuple[PinnedCommit, ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping) -> TopicPin:
        pinned = tuple(PinnedCommit.from_spec(c) for c in spec.get("commit", []))
        pin = cls(
            name=str(spec["name"]),
            commits=int(spec["commits"]),
            merge_at=_fraction(spec.get("merge_at", 0.0), "merge_at"),
            authored=_timestamp(spec["authored"]) if "authored" in spec else None,
            merge_subject=str(spec.get("merge_subject", "")),
            pinned=pinned,
        )
        if any(not 0 <= c.at < pin.commits for c in pinned):
            raise HistoryError(f"topic {pin.name}: pinned commit position out of range")
        return pin


@dataclass(frozen=True)
class Pin:
    """A pinned mainline or stable commit: phase 'rcN' (the week after -rcN) or 'stable'."""

    phase: str
    commit: PinnedCommit

    @classmethod
    def from_spec(cls, spec: Mapping) -> Pin:
        phase = str(spec["phase"])
        if not re.fullmatch(r"rc\d+|stable", phase):
            raise HistoryError(f"pinned commit phase must be rcN or stable, not '{phase}'")
        return cls(phase, PinnedCommit.from_spec(spec))


def _fraction(value: Any, key: str) -> float:
    """A share of the merge window, in [0, 1]."""
    if not _number_in(value, 0.0, 1.0, whole=False):
        raise HistoryError(f"{key} must be a number in [0, 1], not {value!r}")
    return float(value)


def next_version(tag: str) -> str:
    """v2.6.26 -> v2.6.27, v1.9 -> v1.10."""
    head, _, last = tag.rpartition(".")
    return f"{head}.{int(last) + 1}" if head else f"v{int(tag.lstrip('v')) + 1}"


def _below(bits: Callable[[int], int], n: int) -> int:
    """A uniform draw in [0, n) as CPython 3.11's ``Random.choice`` makes it (rejection sampling
    on ``getrandbits``), written out: the same stream at a third of the cost, and histories that
    stay the same should a later Python draw choices otherwise."""
    k = n.bit_length()
    r = bits(k)
    while r >= n:
        r = bits(k)
    return r


def _subjects(bits: Callable[[int], int], area: str, count: int) -> list[str]:
    """``count`` generated commit subjects: the area, a verb, a noun and where, each word drawn
    as :func:`_below` draws it, written out in one loop (the hot loop of a generation)."""
    verbs, nouns, wheres = len(VERBS), len(NOUNS), len(WHERES)
    kv, kn, kw = verbs.bit_length(), nouns.bit_length(), wheres.bit_length()
    out = []
    for _ in range(count):
        v = bits(kv)
        while v >= verbs:
            v = bits(kv)
        n = bits(kn)
        while n >= nouns:
            n = bits(kn)
        w = bits(kw)
        while w >= wheres:
            w = bits(kw)
        out.append(f"{area}: {VERBS[v]} {NOUNS[n]} {WHERES[w]}")
    return out


class _Builder:
    """Appends commits in topological order and keeps the history's parallel lists."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._bits = rng.getrandbits
        self.parents: list[tuple[int, ...]] = []
        self.subjects: list[str] = []
        self.times: list[int] = []
        self.topic_of: list[int] = []
        self.topics: list[str] = ["mainline"]
        self.tags: dict[str, int] = {}
        self.toggles: dict[int, dict[str, bool]] = {}
        self.upstream: dict[int, str] = {}
        self.areas: list[str | None] = []
        self.pinned_paths: dict[int, tuple[str, ...]] = {}

    def topic(self, name: str) -> int:
        self.topics.append(name)
        return len(self.topics) - 1

    def add(self, parents: tuple[int, ...], subject: str, time: int, topic: int = 0,
            area: str | None = None) -> int:
        """Append a commit; ``area`` is the subsystem its paths lie in (None: it touches none)."""
        self.parents.append(parents)
        self.subjects.append(subject)
        self.times.append(time)
        self.topic_of.append(topic)
        self.areas.append(area)
        return len(self.parents) - 1

    def add_pinned(self, parents: tuple[int, ...], pin: PinnedCommit, time: int, topic: int,
                   area: str) -> int:
        c = self.add(parents, pin.subject, time, topic, pin.area(area))
        if pin.toggles:
            self.toggles[c] = dict(pin.toggles)
        if pin.upstream:
            self.upstream[c] = pin.upstream
        if pin.paths:
            self.pinned_paths[c] = pin.paths
        return c

    def subject(self, area: str) -> str:
        return _subjects(self._bits, area, 1)[0]

    def pick(self, seq: Sequence[str]) -> str:
        """``rng.choice(seq)``, drawn as CPython 3.11 draws it (see :func:`_below`)."""
        return seq[_below(self._bits, len(seq))]

    def add_line(self, tip: int, count: int, area: str, t: int, step: int, topic: int
                 ) -> tuple[int, int]:
        """``count`` commits in a line on ``tip``, ``step`` seconds apart after ``t``, with
        generated subjects (the hot loop of a generation, hence the lists extended at once);
        returns the new tip and the last commit's time."""
        if count <= 0:
            return tip, t
        bits, first = self._bits, len(self.parents)
        self.subjects.extend(_subjects(bits, area, count))
        self.parents.append((tip,))
        self.parents.extend((c,) for c in range(first, first + count - 1))
        self.times.extend(range(t + step, t + step * count + 1, step))
        self.topic_of.extend([topic] * count)
        self.areas.extend([area] * count)
        return first + count - 1, t + step * count


@dataclass
class _Cycle:
    """One release cycle being generated."""

    b: _Builder
    shape: KernelShape
    budget: int
    version: str
    head: int
    t0: int
    topics: Sequence[TopicPin] = ()
    pins: Sequence[Pin] = ()

    def run(self) -> int:
        """Generate the cycle; returns the new mainline head (the release commit)."""
        b, shape = self.b, self.shape
        base = self.head
        rcs = max(1, min(shape.rc, self.budget // 60))
        stable = self.budget >= 200 and shape.stable_commits > 0
        stable_n = shape.stable_commits + 1 if stable else 0
        rest = self.budget - stable_n
        window_n = max(2, int(rest * shape.window_share)) if rcs > 1 else rest - 1
        week_n = rest - window_n
        t_window_end = self.t0 + shape.window_days * DAY
        self._window(base, window_n - 1, t_window_end)
        self.head = b.add((self.head,), f"Linux {self.version[1:]}-rc1", t_window_end,
                          area=RELEASE)
        b.tags[f"{self.version}-rc1"] = self.head
        t = t_window_end
        weeks = self._split(week_n, rcs)
        for r, n in enumerate(weeks, start=1):
            days = shape.rc_days[(r - 1) % len(shape.rc_days)] if shape.rc_days else 7
            last = r == len(weeks)
            self._week(n - 1, t, t + days * DAY, f"rc{r}")
            t += days * DAY
            name = self.version if last else f"{self.version}-rc{r + 1}"
            self.head = b.add((self.head,), f"Linux {name[1:]}", t, area=RELEASE)
            b.tags[name] = self.head
        if stable:
            self._stable(self.head, shape.stable_commits, t)
        return self.head

    def _split(self, n: int, parts: int) -> list[int]:
        """Split n commits into weekly parts, busier early in the -rc phase."""
        weights = [parts - i + 1.0 for i in range(parts)]
        total = sum(weights)
        out = [max(1, int(n * w / total)) for w in weights]
        out[0] += n - sum(out)
        return out

    def _window(self, base: int, n: int, t_end: int) -> None:
        """Merge window: topic branches forked from the release, merged one after another."""
        b, rng = self.b, self.b.rng
        pinned = sorted(self.topics, key=lambda tp: tp.merge_at)
        pinned_n = sum(tp.commits + 1 for tp in pinned)
        if pinned_n > n:
            raise HistoryError("pinned topics do not fit in the merge window")
        free = n - pinned_n
        done = 0
        while done < n:
            frac = done / max(n, 1)
            if pinned and (pinned[0].merge_at <= frac or free <= 0):
                tp = pinned.pop(0)
                t = self.t0 + int(frac * (t_end - self.t0)) + 3600
                self._pinned_topic(base, tp, t)
                done += tp.commits + 1
                continue
            t = self.t0 + int(frac * (t_end - self.t0)) + rng.randrange(3600)
            if free <= 2 or rng.random() < 0.05:
                area = b.pick(SUBSYSTEMS)
                self.head = b.add((self.head,), b.subject(area), t, area=area)
                used = 1
            else:
                size = min(self._topic_size(), free - 1)
                fork = base if rng.random() < 0.8 else self.head
                used = self._topic(fork, size, self.t0 - 30 * DAY, t, b.pick(SUBSYSTEMS))
            free -= used
            done += used

    def _topic_size(self) -> int:
        return max(1, int(self.b.rng.paretovariate(1.6) * self.shape.mean_topic * 0.4))

    def _topic(self, fork: int, size: int, t_from: int, t_merge: int, area: str) -> int:
        """A topic branch of `size` commits (maybe with a sub-maintainer merge) merged to mainline."""
        b, rng = self.b, self.b.rng
        topic = b.topic(area)
        start = max(t_from, b.times[fork])
        step = max(1, (t_merge - start) // (size + 1))
        sub = size >= 12 and rng.random() < 0.25
        sub_n = rng.randint(2, size // 2) if sub else 0
        main_n = size - sub_n - (1 if sub else 0)
        tip, t = b.add_line(fork, main_n, area, start, step, topic)
        if sub:
            sub_tip, t = b.add_line(fork, sub_n, area, t, step, b.topic(f"{area}-sub"))
            tip = b.add((tip, sub_tip), f"Merge branch '{area}-fixes' into {area}-next", t, topic)
        self.head = b.add((self.head, tip), self._merge_subject(area), t_merge)
        return size + 1

    def _pinned_topic(self, fork: int, tp: TopicPin, t_merge: int) -> None:
        """A scenario's topic branch: pinned commits at their positions, generated ones between."""
        b = self.b
        topic = b.topic(tp.name)
        area = tp.name if tp.name in AREA_FILES else MISC
        at = {pc.at: pc for pc in tp.pinned}
        start = tp.authored if tp.authored is not None else b.times[fork]
        step = max(1, (t_merge - start) // (tp.commits + 1))
        tip = fork
        for i in range(tp.commits):
            t = start + (i + 1) * step
            if i in at:
                tip = b.add_pinned((tip,), at[i], t, topic, area)
            else:
                tip = b.add((tip,), b.subject(tp.name), t, topic, area)
        subject = tp.merge_subject or self._merge_subject(tp.name)
        self.head = b.add((self.head, tip), subject, t_merge)

    def _merge_subject(self, area: str) -> str:
        return (f"Merge branch 'for-linus' of "
                f"git://git.kernel.org/pub/scm/linux/kernel/git/maint/{area}-2.6")

    def _week(self, n: int, t0: int, t1: int, phase: str) -> None:
        """One -rc week: small fix branches forked from the last tag, and direct fixes."""
        b, rng = self.b, self.b.rng
        pins = [p.commit for p in self.pins if p.phase == phase]
        fork = self.head
        free = n - len(pins)
        done = 0
        while free > 0:
            t = t0 + int(done / max(n, 1) * (t1 - t0))
            if free <= 2 or rng.random() < 0.55:
                area = b.pick(SUBSYSTEMS)
                self.head = b.add((self.head,), b.subject(area), t, area=area)
                used = 1
            else:
                size = min(rng.randint(1, 8), free - 1)
                used = self._topic(fork, size, t0, t, b.pick(SUBSYSTEMS))
            free -= used
            done += used
        for i, pc in enumerate(pins):
            self.head = b.add_pinned((self.head,), pc, t1 - (len(pins) - i) * 3600, 0, MISC)

    def _stable(self, release: int, n: int, t: int) -> None:
        """The stable branch: n fixes on top of the release, then the point release tag."""
        b = self.b
        topic = b.topic("stable")
        pins = [p.commit for p in self.pins if p.phase == "stable"]
        tip = release
        for i in range(n):
            if i < len(pins):
                tip = b.add_pinned((tip,), pins[i], t + (i + 1) * DAY, topic, MISC)
            else:
                area = b.pick(SUBSYSTEMS)
                tip = b.add((tip,), b.subject(area), t + (i + 1) * DAY, topic, area)
        name = f"{self.version}.1"
        b.tags[name] = b.add((tip,), f"Linux {name[1:]}", t + (n + 1) * DAY, topic, RELEASE)


def generate_kernel_history(
    name: str,
    seed: int,
    shape: KernelShape,
    topics: Sequence[TopicPin] = (),
    pins: Sequence[Pin] = (),
) -> History:
    """Generate a kernel-shaped history of exactly ``shape.commits`` commits."""
    from bisectlab.history import History

    b = _Builder(random.Random(f"{name}:{seed}"))
    head = b.add((), f"Linux {shape.base.lstrip('v')}", shape.start, area=RELEASE)
    b.tags[shape.base] = head
    remaining = shape.commits - 1
    version, t = next_version(shape.base), shape.start
    first = True
    while remaining > 0:
        n = remaining if remaining < 1.5 * shape.cycle_commits else shape.cycle_commits
        cycle = _Cycle(b, shape, n, version, head, t,
                       topics if first else (), pins if first else ())
        head = cycle.run()
        remaining -= n
        t = b.times[head] + DAY
        version, first = next_version(version), False
    return History(
        name=name, seed=seed, parents=b.parents, subjects=b.subjects, times=b.times,
        topics=b.topics, topic_of=b.topic_of, tags=b.tags, toggles=b.toggles, upstream=b.upstream,
        paths=generated_paths(name, seed, b.areas, b.pinned_paths),
    )


def generated_paths(name: str, seed: int, areas: Sequence[str | None],
                    pinned: Mapping[int, Sequence[str]]) -> ChangedPaths:
    """Each commit touches 1-4 consecutive files of its area's catalogue, drawn from a random
    stream of its own (so paths never shift the draws that make shas, parents and subjects);
    pinned commits touch their pinned paths; commits without an area (merges) touch nothing."""
    names = list(AREA_FILES)
    code = {**{a: i for i, a in enumerate(names)}, None: -1}
    area = np.fromiter(map(code.__getitem__, areas), dtype=np.int64, count=len(areas))
    table = [p for a in names for p in AREA_FILES[a]]
    sizes = np.array([len(AREA_FILES[a]) for a in names], dtype=np.int64)
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    rng = np.random.default_rng(_paths_seed(name, seed))
    draws = rng.random((2, len(areas)))
    has = area >= 0
    a = np.where(has, area, 0)
    wanted = 1 + np.searchsorted(np.cumsum(PATHS_PER_COMMIT)[:-1], draws[0], side="right")
    k = np.where(has, np.minimum(wanted, sizes[a]), 0)
    for c, paths in pinned.items():
        k[c] = len(paths)
    offsets = np.concatenate(([0], np.cumsum(k)))
    rows = np.repeat(np.arange(len(areas)), k)
    step = np.arange(offsets[-1]) - offsets[rows]
    start = (draws[1] * sizes[a]).astype(np.int64)
    ids = (first[a[rows]] + (start[rows] + step) % sizes[a[rows]]).astype(np.int32)
    index = {p: i for i, p in enumerate(table)}
    for c, paths in pinned.items():
        ids[offsets[c]:offsets[c + 1]] = [index.setdefault(p, len(index)) for p in paths]
    return ChangedPaths(tuple(index), offsets, ids)


def _paths_seed(name: str, seed: int) -> int:
    """The seed of a history's path stream, apart from the stream of its shape."""
    return int.from_bytes(hashlib.blake2b(f"{name}:{seed}:paths".encode(), digest_size=8).digest())
