"""Kernel-shaped history generator: release cycles of merge window, -rc weeks and stable releases.

Each cycle follows Linux's rhythm: topic trees (net, x86, tracing, drm ...) forked from the last
release are merged into mainline during a two-week merge window that ends with -rc1; then weekly
fix merges and direct commits, each week closed by an -rc tag; the release; a stable branch with
a point release. Sizes follow the 2.6.27 cycle (about 93% of commits non-merge, 70% of them in the
merge window). Scenario pins place named commits (with feature toggles) at exact spots.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bisectlab.errors import HistoryError

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
            values["rc_days"] = tuple(int(d) for d in values["rc_days"])
        shape = cls(**values)
        if not MIN_COMMITS <= shape.commits <= MAX_COMMITS:
            raise HistoryError(f"a kernel-shaped history has {MIN_COMMITS} to {MAX_COMMITS:,} "
                               f"commits, not {shape.commits:,}")
        if not re.fullmatch(r"v\d+(\.\d+)*", shape.base):
            raise HistoryError(f"base tag must look like v2.6.26, not '{shape.base}'")
        return shape


@dataclass(frozen=True)
class PinnedCommit:
    """A named commit with its subject, feature toggles and the real upstream sha it stands for."""

    subject: str
    toggles: dict[str, bool] = field(default_factory=dict)
    upstream: str = ""
    at: int = 0

    @classmethod
    def from_spec(cls, spec: Mapping) -> PinnedCommit:
        toggles = dict(spec.get("toggles", {}))
        if not all(isinstance(v, bool) for v in toggles.values()):
            raise HistoryError("feature toggles must be true or false")
        return cls(str(spec["subject"]), toggles, str(spec.get("upstream", "")),
                   int(spec.get("at", 0)))


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
            merge_at=float(spec.get("merge_at", 0.0)),
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


def next_version(tag: str) -> str:
    """v2.6.26 -> v2.6.27, v1.9 -> v1.10."""
    head, _, last = tag.rpartition(".")
    return f"{head}.{int(last) + 1}" if head else f"v{int(tag.lstrip('v')) + 1}"


class _Builder:
    """Appends commits in topological order and keeps the history's parallel lists."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.parents: list[tuple[int, ...]] = []
        self.subjects: list[str] = []
        self.times: list[int] = []
        self.topic_of: list[int] = []
        self.topics: list[str] = ["mainline"]
        self.tags: dict[str, int] = {}
        self.toggles: dict[int, dict[str, bool]] = {}
        self.upstream: dict[int, str] = {}

    def topic(self, name: str) -> int:
        self.topics.append(name)
        return len(self.topics) - 1

    def add(self, parents: tuple[int, ...], subject: str, time: int, topic: int = 0) -> int:
        self.parents.append(parents)
        self.subjects.append(subject)
        self.times.append(time)
        self.topic_of.append(topic)
        return len(self.parents) - 1

    def add_pinned(self, parents: tuple[int, ...], pin: PinnedCommit, time: int, topic: int) -> int:
        c = self.add(parents, pin.subject, time, topic)
        if pin.toggles:
            self.toggles[c] = dict(pin.toggles)
        if pin.upstream:
            self.upstream[c] = pin.upstream
        return c

    def subject(self, area: str) -> str:
        r = self.rng
        return f"{area}: {r.choice(VERBS)} {r.choice(NOUNS)} {r.choice(WHERES)}"


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
        self.head = b.add((self.head,), f"Linux {self.version[1:]}-rc1", t_window_end)
        b.tags[f"{self.version}-rc1"] = self.head
        t = t_window_end
        weeks = self._split(week_n, rcs)
        for r, n in enumerate(weeks, start=1):
            days = shape.rc_days[(r - 1) % len(shape.rc_days)] if shape.rc_days else 7
            last = r == len(weeks)
            self._week(n - 1, t, t + days * DAY, f"rc{r}")
            t += days * DAY
            name = self.version if last else f"{self.version}-rc{r + 1}"
            self.head = b.add((self.head,), f"Linux {name[1:]}", t)
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
                self.head = b.add((self.head,), b.subject(rng.choice(SUBSYSTEMS)), t)
                used = 1
            else:
                size = min(self._topic_size(), free - 1)
                fork = base if rng.random() < 0.8 else self.head
                used = self._topic(fork, size, self.t0 - 30 * DAY, t, rng.choice(SUBSYSTEMS))
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
        tip = fork
        t = start
        for _ in range(main_n):
            t += step
            tip = b.add((tip,), b.subject(area), t, topic)
        if sub:
            sub_tip = fork
            sub_topic = b.topic(f"{area}-sub")
            for _ in range(sub_n):
                t += step
                sub_tip = b.add((sub_tip,), b.subject(area), t, sub_topic)
            tip = b.add((tip, sub_tip), f"Merge branch '{area}-fixes' into {area}-next", t, topic)
        self.head = b.add((self.head, tip), self._merge_subject(area), t_merge)
        return size + 1

    def _pinned_topic(self, fork: int, tp: TopicPin, t_merge: int) -> None:
        """A scenario's topic branch: pinned commits at their positions, generated ones between."""
        b = self.b
        topic = b.topic(tp.name)
        at = {pc.at: pc for pc in tp.pinned}
        start = tp.authored if tp.authored is not None else b.times[fork]
        step = max(1, (t_merge - start) // (tp.commits + 1))
        tip = fork
        for i in range(tp.commits):
            t = start + (i + 1) * step
            if i in at:
                tip = b.add_pinned((tip,), at[i], t, topic)
            else:
                tip = b.add((tip,), b.subject(tp.name), t, topic)
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
                self.head = b.add((self.head,), b.subject(rng.choice(SUBSYSTEMS)), t)
                used = 1
            else:
                size = min(rng.randint(1, 8), free - 1)
                used = self._topic(fork, size, t0, t, rng.choice(SUBSYSTEMS))
            free -= used
            done += used
        for i, pc in enumerate(pins):
            self.head = b.add_pinned((self.head,), pc, t1 - (len(pins) - i) * 3600, 0)

    def _stable(self, release: int, n: int, t: int) -> None:
        """The stable branch: n fixes on top of the release, then the point release tag."""
        b = self.b
        topic = b.topic("stable")
        pins = [p.commit for p in self.pins if p.phase == "stable"]
        tip = release
        for i in range(n):
            if i < len(pins):
                tip = b.add_pinned((tip,), pins[i], t + (i + 1) * DAY, topic)
            else:
                tip = b.add((tip,), b.subject(b.rng.choice(SUBSYSTEMS)), t + (i + 1) * DAY, topic)
        name = f"{self.version}.1"
        b.tags[name] = b.add((tip,), f"Linux {name[1:]}", t + (n + 1) * DAY, topic)


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
    head = b.add((), f"Linux {shape.base.lstrip('v')}", shape.start)
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
    )
