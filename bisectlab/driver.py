"""The hunt loop: ask the strategy, run the test in the lab, log it, feed the result back.

:func:`drive` is the bare loop, handed its strategy, its test runner and a logging callback, so the
same loop serves the simulated lab, a real repository, and fakes in tests. :func:`bisect` sets up a
simulated hunt end to end: it resolves and checks the range, builds the lab, opens the hunt in the
store, drives it and records the verdict.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bisectlab.errors import StoreError
from bisectlab.history import History
from bisectlab.lab import Costs, Lab, TestResult
from bisectlab.store import RESUMABLE, Store, claimant, hunt_state
from bisectlab.strategies import (
    Observation,
    Resources,
    SearchSpace,
    Strategy,
    Verdict,
    make_strategy,
    strategy_class,
)

OUT_OF_ADAPTERS = "out of adapters"


class Runner(Protocol):
    """Runs tests: the simulated :class:`~bisectlab.lab.Lab`, or a real rig.

    ``restore`` brings back a test a resumed hunt had already logged (the simulated lab runs
    it again and checks it against the log; a real rig takes the logged result as it is), so
    the runner's state (adapters, attempts, what each rig has installed) is where it was.
    """

    @property
    def adapters_left(self) -> int | None: ...

    def ready_rigs(self) -> list[Any]: ...

    def run(self, commit: int, boots: int, rig: Any) -> TestResult: ...

    def restore(self, commit: int, boots: int, rig: Any, logged: dict[str, Any]) -> TestResult: ...


@dataclass
class Totals:
    """Running totals of a hunt."""

    tests: int = 0
    rounds: int = 0
    boots: int = 0
    installs: int = 0
    adapters: int = 0
    lab_minutes: float = 0.0

    def add_round(self, results: list[TestResult]) -> None:
        """Rigs of one round work side by side: the round takes as long as its slowest test."""
        self.tests += len(results)
        self.rounds += 1
        self.installs += len(results)
        self.boots += sum(len(r.boots) for r in results)
        self.adapters += sum(len(r.destroyed) for r in results)
        self.lab_minutes += max(r.minutes for r in results)


def drive(
    strategy: Strategy,
    runner: Runner,
    on_test: Callable[[int, TestResult], None] = lambda seq, result: None,
    on_observed: Callable[[int, TestResult], None] = lambda seq, result: None,
    max_tests: int = 5_000,
    logged: Sequence[dict[str, Any]] = (),
    on_restored: Callable[[int, TestResult], None] = lambda seq, result: None,
) -> tuple[Verdict, Totals]:
    """Run tests until the strategy gives its verdict or the lab runs out of adapters.

    ``on_test`` sees each result as soon as it is known (to log it before anything else happens),
    ``on_observed`` once the strategy has taken it into account (for progress displays).
    ``logged``: the tests a resumed hunt had logged, in order; the hunt goes through them again
    by :meth:`Runner.restore` (not logged twice, but shown to ``on_restored`` to check), so a
    test that was in flight when its driver died is run again from its start.
    """
    totals = Totals()
    while (verdict := strategy.verdict()) is None:
        rigs = runner.ready_rigs()
        if not rigs:
            return strategy.abort(OUT_OF_ADAPTERS), totals
        if totals.tests >= max_tests:
            return strategy.abort(f"no verdict after {max_tests} tests", "inconclusive"), totals
        proposal = strategy.propose(Resources(len(rigs), runner.adapters_left))
        results = []
        for commit, rig in zip(proposal.commits, rigs, strict=False):
            seq = totals.tests + len(results) + 1
            if seq <= len(logged):
                result = runner.restore(commit, proposal.boots, rig, logged[seq - 1])
                on_restored(seq, result)
            else:
                result = runner.run(commit, proposal.boots, rig)
                on_test(seq, result)
            results.append(result)
        for i, result in enumerate(results):
            strategy.observe(Observation(result.commit, len(result.boots), result.failures))
            on_observed(totals.tests + i + 1, result)
        totals.add_round(results)
    return verdict, totals


@dataclass
class HuntReport:
    """What a finished hunt tells its user (and `--json` prints)."""

    hunt_id: int
    status: str
    culprit: str | None
    culprit_subject: str | None
    true_culprit: str | None
    correct: bool | None
    confidence: float | None
    tests: int
    boots: int
    installs: int
    adapters: int
    lab_minutes: float
    note: str
    remaining: int
    evidence: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None

    @property
    def lab_hours(self) -> float:
        return self.lab_minutes / 60.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["lab_hours"] = round(self.lab_hours, 3)
        return out


@dataclass
class HuntSetup:
    """Everything a simulated hunt needs, checked before anything is written."""

    history: History
    good_ref: str
    bad_ref: str
    strategy: str = "git"
    options: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    rigs: int = 1
    arch: str = "i386"
    adapters: int = 50
    costs: Costs = field(default_factory=Costs)

    def prepare(self) -> tuple[Strategy, Lab, int, int]:
        """Resolve and check the range, build the strategy and the lab (raises on bad input)."""
        h = self.history
        good, bad = h.resolve(self.good_ref), h.resolve(self.bad_ref)
        h.check_range(good, bad)
        if h.bug is None:
            from bisectlab.errors import HistoryError

            raise HistoryError(f"history {h.name} has no bug to simulate")
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        space = SearchSpace(h.parents, [good], bad, names=h.shas, times=h.times)
        strategy = make_strategy(self.strategy, space, **self.options)
        lab = Lab.build(h, seed=self.seed, rigs=self.rigs, arch=self.arch,
                        adapters=self.adapters, costs=self.costs)
        return strategy, lab, good, bad

    def params(self, strategy: Strategy) -> dict[str, Any]:
        """The hunt's parameters as logged: enough to set the same hunt up again (replay)."""
        return {"strategy_options": strategy.params(), "rigs": self.rigs, "arch": self.arch,
                "adapters": self.adapters,
                **{f"{k}_minutes": v for k, v in asdict(self.costs).items()}}

    @classmethod
    def from_logged(cls, history: History, hunt: dict[str, Any]) -> HuntSetup:
        """The setup of a logged hunt (a row of the hunts table), to run it again."""
        params = hunt["params"]
        if "strategy_options" not in params:
            from bisectlab.errors import StoreError

            raise StoreError(f"hunt {hunt['id']} was logged without its strategy options "
                             "(by an older bisectlab); it cannot be replayed")
        costs = Costs(**{k: params[f"{k}_minutes"] for k in asdict(Costs())})
        options = strategy_class(hunt["strategy"]).Options.from_logged(params["strategy_options"])
        return cls(history, hunt["good"], hunt["bad"], strategy=hunt["strategy"],
                   options=options.as_dict(), seed=hunt["seed"], rigs=params["rigs"],
                   arch=params["arch"], adapters=params["adapters"], costs=costs)


def logged_test(h: History, seq: int, result: TestResult) -> dict[str, Any]:
    """A test result as the store records it (commit as sha, boots as dicts)."""
    return {"seq": seq, "commit_sha": h.shas[result.commit],
            "commit_subject": h.subjects[result.commit], "rig": result.rig,
            "boots": [{"attempt": b.attempt, "seed": b.seed, "bricked": b.bricked,
                       "stray_write": b.stray_write, "adapter_serial": b.adapter}
                      for b in result.boots],
            "failed": result.failed, "adapters_destroyed": list(result.destroyed),
            "lab_minutes": result.minutes}


def logged_verdict(h: History, verdict: Verdict, truth: int | None) -> dict[str, Any]:
    """A verdict as the store records it with the hunt."""
    culprit = verdict.culprit
    correct = None if truth is None or verdict.status != "found" else culprit == truth
    return {"status": verdict.status, "culprit_sha": h.shas[culprit] if culprit is not None else None,
            "culprit_subject": h.subjects[culprit] if culprit is not None else None,
            "confidence": verdict.confidence, "correct": correct, "note": verdict.note}


def bisect(
    setup: HuntSetup,
    store: Store,
    on_test: Callable[[int, TestResult, Strategy], None] | None = None,
    on_start: Callable[[Strategy], None] | None = None,
) -> HuntReport:
    """Run one simulated hunt end to end, logging every test in the store as it happens.

    ``on_start`` sees the strategy before the first test (as git bisect start speaks first)."""
    strategy, lab, good, bad = setup.prepare()
    h = setup.history
    truth = h.true_culprit(good, bad, setup.arch)
    hunt_id = store.start_hunt(
        history=h.name, history_source=h.source, good=setup.good_ref, bad=setup.bad_ref,
        good_sha=h.shas[good], bad_sha=h.shas[bad], strategy=setup.strategy,
        params=setup.params(strategy), seed=setup.seed,
        true_culprit_sha=h.shas[truth] if truth is not None else None,
        adapter_serials=lab.box.serials, claimed_by=claimant(),
    )
    return _hunt(setup, store, hunt_id, strategy, lab, good, bad, on_test, on_start=on_start)


def resume(store: Store, hunt_id: int,
           on_test: Callable[[int, TestResult, Strategy], None] | None = None) -> HuntReport:
    """Continue a hunt whose driver died (or was interrupted) from its logged tests.

    The strategy and the lab are set up as logged; the logged tests are gone through again
    (checked against the log, not logged twice), then the hunt goes on as if never stopped:
    a simulated hunt ends with the verdict, tests and boots of the uninterrupted one.
    """
    from bisectlab.replay import logged_history, logged_tests

    hunt = store.hunt(hunt_id)
    state = hunt_state(hunt)
    if state not in RESUMABLE:
        raise StoreError(f"hunt {hunt_id} is {state}: only a stopped or interrupted hunt can be "
                         "resumed" + (" (its process still runs)" if state == "running" else ""))
    setup = HuntSetup.from_logged(logged_history(hunt), hunt)
    strategy, lab, good, bad = setup.prepare()
    logged = logged_tests(store, hunt_id)
    store.reopen_hunt(hunt_id, claimant(), state)
    return _hunt(setup, store, hunt_id, strategy, lab, good, bad, on_test, logged)


def _hunt(setup: HuntSetup, store: Store, hunt_id: int, strategy: Strategy, lab: Lab, good: int,
          bad: int, on_test: Callable[[int, TestResult, Strategy], None] | None,
          logged: Sequence[dict[str, Any]] = (),
          on_start: Callable[[Strategy], None] | None = None) -> HuntReport:
    """Drive an opened hunt to its verdict, logging each new test; record the verdict."""
    h = setup.history
    truth = h.true_culprit(good, bad, setup.arch)

    def log(seq: int, result: TestResult) -> None:
        store.record_test(hunt_id, **logged_test(h, seq, result))

    def observed(seq: int, result: TestResult) -> None:
        if on_test is not None:
            on_test(seq, result, strategy)

    def restored(seq: int, result: TestResult) -> None:
        from bisectlab.replay import compare_test

        difference = compare_test(logged[seq - 1], logged_test(h, seq, result))
        if difference:
            raise StoreError(f"hunt {hunt_id} cannot be resumed: its log and the hunt set up "
                             f"again part at test {seq} ({difference})")
        observed(seq, result)

    if on_start is not None:
        on_start(strategy)
    try:
        verdict, totals = drive(strategy, lab, log, observed, logged=logged, on_restored=restored)
    except StoreError:
        store.finish_hunt(hunt_id, status="interrupted", culprit_sha=None, culprit_subject=None,
                          confidence=None, correct=None, note="interrupted: log diverged")
        raise
    except BaseException:
        store.finish_hunt(hunt_id, status="interrupted", culprit_sha=None, culprit_subject=None,
                          confidence=None, correct=None, note="interrupted")
        raise
    record = logged_verdict(h, verdict, truth)
    report = HuntReport(
        hunt_id=hunt_id, status=verdict.status, culprit=record["culprit_sha"],
        culprit_subject=record["culprit_subject"],
        true_culprit=h.shas[truth] if truth is not None else None, correct=record["correct"],
        confidence=verdict.confidence, tests=totals.tests, boots=totals.boots,
        installs=totals.installs, adapters=totals.adapters, lab_minutes=totals.lab_minutes,
        note=verdict.note, remaining=verdict.remaining,
        evidence=_shas_in_evidence(h, verdict.evidence), seed=setup.seed,
    )
    store.finish_hunt(hunt_id, **record, lab_minutes=totals.lab_minutes)
    return report


def _shas_in_evidence(h: History, evidence: dict[str, Any]) -> dict[str, Any]:
    """Replace commit numbers in a verdict's evidence by shas."""
    def named(item: dict[str, Any]) -> dict[str, Any]:
        return {**item, "commit": h.shas[item["commit"]]}

    out: dict[str, Any] = {k: v for k, v in evidence.items() if k not in ("culprit", "parents")}
    if "culprit" in evidence:
        out["culprit"] = named(evidence["culprit"])
    if "parents" in evidence:
        out["parents"] = [named(p) for p in evidence["parents"]]
    return out
