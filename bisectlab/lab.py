"""The simulated lab: rigs, a box of adapters with serials, and the lab-minute cost of each step.

A test installs a kernel on a rig and boots it up to b times, stopping at the first failure. A
failure is an adapter destroyed: it is swapped for one from the box, and when the box is empty the
rig stands idle. The lab knows the simulation; the strategy only ever sees test results.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

from bisectlab import kernel
from bisectlab.errors import BisectlabError
from bisectlab.history import History


@dataclass(frozen=True)
class Costs:
    """Lab minutes per step: build and install a kernel, one boot, swapping a dead adapter."""

    install: float = 30.0
    boot: float = 3.0
    swap: float = 10.0

    def __post_init__(self) -> None:
        # (a boot of 0 minutes, refused by --boot-minutes, still reads back from older logs)
        if not all(math.isfinite(m) and m >= 0 for m in (self.install, self.boot, self.swap)):
            raise BisectlabError("lab minutes must be finite and 0 or more")

    def as_params(self) -> dict[str, float]:
        """The costs as a hunt's parameters log them and the command line names them:
        install_minutes, boot_minutes, swap_minutes."""
        return {f"{f.name}_minutes": getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Costs:
        """The costs :meth:`as_params` gave (KeyError if they are not among ``params``)."""
        return cls(**{f.name: params[f"{f.name}_minutes"] for f in fields(cls)})

    def of_test(self, installs: bool, boots: int, swaps: bool) -> float:
        """A test's lab minutes: its install if it had one, each boot, a swap of the adapter
        its failure destroyed (added in that order, as the lab's clock runs)."""
        minutes = self.install if installs else 0.0
        for _ in range(boots):
            minutes += self.boot
        return minutes + self.swap if swaps else minutes


@dataclass(frozen=True)
class BootRecord:
    """One boot as logged: which attempt, its seed, what happened, on which adapter; a real
    rig's boot has no seed but its command's console (exit status, wall time, output tail)."""

    attempt: int
    seed: int | None
    bricked: bool
    stray_write: bool
    adapter: str | None
    exit_status: int | None = None
    seconds: float | None = None
    output: str | None = None


@dataclass(frozen=True)
class TestResult:
    """One test (install + up to b boots) as the lab saw it.

    ``installed``: the rig installed the commit for this test (it may have had it already);
    ``skipped``: the commit could not be tested (it says nothing of the bug); ``note``: why,
    or anything else worth keeping with the test.
    """

    commit: int
    rig: str
    boots: tuple[BootRecord, ...]
    destroyed: tuple[str, ...]
    minutes: float
    installed: bool = True
    skipped: bool = False
    note: str = ""

    @classmethod
    def from_log(cls, commit: int, logged: dict) -> TestResult:
        """A test as the store logged it (``boot_rows`` and ``destroyed_serials`` included)."""
        boots = tuple(BootRecord(b["attempt"], b["seed"], bool(b["bricked"]),
                                 bool(b["stray_write"]), b["adapter_serial"], b.get("exit_status"),
                                 b.get("seconds"), b.get("output")) for b in logged["boot_rows"])
        destroyed = tuple(s for s in logged.get("destroyed_serials", "").split(",") if s)
        return cls(commit, logged["rig"], boots, destroyed, logged["lab_minutes"],
                   bool(logged.get("installed", True)), bool(logged.get("skipped", False)),
                   logged.get("note", ""))

    @property
    def failures(self) -> int:
        return sum(b.bricked for b in self.boots)

    @property
    def failed(self) -> bool:
        return self.failures > 0


@dataclass
class Rig:
    """A test machine with its architecture, the adapter fitted and the commit installed."""

    name: str
    arch: str
    adapter: str | None = None
    installed: int | None = None


@dataclass
class AdapterBox:
    """The spare adapters, handed out in order; ``count`` None is a bottomless box."""

    count: int | None
    tag: str
    used: int = 0
    model: str = "82567LM"  # the e1000e part the 2008 lab burnt through

    @classmethod
    def of(cls, count: int | None, seed: int, model: str = "82567LM") -> AdapterBox:
        """A box of ``count`` adapters with serials derived from the seed."""
        if count is not None and count < 0:
            raise BisectlabError(f"--adapters must be 0 or more, not {count}")
        tag = hashlib.blake2b(str(seed).encode(), digest_size=3).hexdigest().upper()
        return cls(count, tag, model=model)

    def serial(self, i: int) -> str:
        return f"{self.model}-{self.tag}-{i:03d}"

    @property
    def serials(self) -> list[str]:
        """Every serial of a finite box."""
        return [self.serial(i) for i in range(1, (self.count or 0) + 1)]

    @property
    def left(self) -> int | None:
        return None if self.count is None else self.count - self.used

    def take(self) -> str | None:
        if self.count is not None and self.used >= self.count:
            return None
        self.used += 1
        return self.serial(self.used)




R = TypeVar("R")  # a runner's kind of rig


class FittedRigs(Generic[R]):
    """What every runner (the simulated lab, real rigs, a person's) says of its adapters alike:
    its rigs, each with an adapter fitted or none, and a box of spares."""

    rigs: list[R]
    box: AdapterBox

    def ready_rigs(self) -> list[R]:
        """Rigs with a working adapter."""
        return [r for r in self.rigs if r.adapter is not None]  # type: ignore[attr-defined]

    @property
    def adapters_left(self) -> int | None:
        """Working adapters: fitted in a rig or spare in the box (None: unlimited)."""
        left = self.box.left
        return None if left is None else left + len(self.ready_rigs())

def fit_logged_adapter(rigs: Sequence[Any], rig: Any, logged: TestResult) -> None:
    """Before a resumed hunt takes in a logged test: its rig held the adapter its boots name.
    Rigs that lost adapters in one round took spares in the order they failed, which the log,
    in round order, does not keep: a rig found holding another's spare trades it for its own."""
    seen = next((b.adapter for b in logged.boots if b.adapter is not None), None)
    if seen is None or seen == rig.adapter:
        return
    for other in rigs:
        if other is not rig and other.adapter == seen:
            other.adapter = rig.adapter
    rig.adapter = seen

@dataclass
class Lab(FittedRigs[Rig]):
    """Rigs and a box of adapters running tests of a history's commits."""

    history: History
    seed: int
    rigs: list[Rig]
    box: AdapterBox
    costs: Costs = field(default_factory=Costs)
    attempts: dict[int, int] = field(default_factory=dict)
    condition: int = 1
    spell_change: float = 0.1
    keeps_installed: bool = True

    @classmethod
    def build(cls, history: History, *, seed: int, rigs: int = 1, arch: str = "i386",
              adapters: int | None = 50, costs: Costs | None = None,
              keeps_installed: bool = True) -> Lab:
        """A lab of ``rigs`` identical rigs, each fitted with an adapter from the box.

        ``keeps_installed``: a rig keeps the kernel it installed until it tests another commit,
        so another boot of it costs a boot, not an install (hunts logged before the lab kept
        its kernels replay with False: every test installed)."""
        if rigs < 1:
            raise BisectlabError(f"--rigs must be 1 or more, not {rigs}")
        if arch not in kernel.ARCHES:
            raise BisectlabError(f"unknown rig arch '{arch}' (known: {', '.join(kernel.ARCHES)})")
        box = AdapterBox.of(adapters, seed)
        lab = cls(history, seed, [Rig(f"rig{i + 1}", arch) for i in range(rigs)], box,
                  costs or Costs(), keeps_installed=keeps_installed)
        lab.condition = 1 if seed % 2 else -1
        for rig in lab.rigs:
            rig.adapter = box.take()
        return lab

    def _next_spell(self, sha: str) -> None:
        """The lab's hot or cold spell persists from test to test, changing now and then."""
        draw = kernel.boot_seed(self.seed ^ 0x5EED, sha, self.attempts.get(-1, 0)) / 2**64
        self.attempts[-1] = self.attempts.get(-1, 0) + 1
        if draw < self.spell_change:
            self.condition = -self.condition

    def restore(self, commit: int, boots: int, rig: Rig, logged: dict) -> TestResult:
        """A test a resumed hunt had logged: the simulation is deterministic, so it runs again
        (moving attempts, the lab's spell and the box on as before); the driver checks it."""
        return self.run(commit, boots, rig)

    def run(self, commit: int, boots: int, rig: Rig) -> TestResult:
        """Install ``commit`` on ``rig`` unless it has it, and boot it up to ``boots`` times,
        stopping at the first failure (a destroyed adapter is swapped; the kernel stays)."""
        if rig.adapter is None:
            raise BisectlabError(f"{rig.name} has no adapter")
        sha = self.history.shas[commit]
        self._next_spell(sha)
        installs = not self.keeps_installed or rig.installed != commit
        rig.installed = commit
        records: list[BootRecord] = []
        destroyed: list[str] = []
        for _ in range(boots):
            attempt = self.attempts.get(commit, 0) + 1
            self.attempts[commit] = attempt
            seed = kernel.boot_seed(self.seed, sha, attempt)
            out = self.history.bug.boot(self.history, commit, rig.arch, seed,
                                        condition=self.condition)
            records.append(BootRecord(attempt, seed, out.bricked, out.stray_write, rig.adapter))
            if out.bricked:
                destroyed.append(rig.adapter)
                rig.adapter = self.box.take()
                break
        minutes = self.costs.of_test(installs, len(records),
                                     swaps=bool(destroyed) and rig.adapter is not None)
        return TestResult(commit, rig.name, tuple(records), tuple(destroyed), minutes, installs)
