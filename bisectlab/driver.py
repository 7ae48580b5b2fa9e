"""The hunt loop: ask the strategy, run the test in the lab, log it, feed the result back.

:func:`drive` is the bare loop, handed its strategy, its test runner and a logging callback, so the
same loop serves the simulated lab, a real repository, and fakes in tests. :func:`bisect` sets up a
simulated hunt end to end: it resolves and checks the range, builds the lab, opens the hunt in the
store, drives it and records the verdict.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn, Protocol

from bisectlab.badcheck import BadCheck
from bisectlab.errors import BisectlabError, CannotResume, HistoryError, HuntStopped, StoreError
from bisectlab.history import History
from bisectlab.interrupts import held
from bisectlab.lab import Costs, Lab, TestResult
from bisectlab.manual import AwaitingTests, ManualRunner, Outcome, waiting_text
from bisectlab.rigs import GitRigs, MissingCommand, default_worktrees
from bisectlab.store import RESUMABLE, Store, claimant, hunt_state
from bisectlab.strategies import (
    LabCosts,
    Observation,
    Proposal,
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
        self.installs += sum(r.installed for r in results)
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
    show_logged_rounds: bool = True,
    check: BadCheck | None = None,
) -> tuple[Verdict, Totals]:
    """Run tests until the strategy gives its verdict or the lab runs out of adapters.

    ``on_test`` sees each result as soon as it is known (to log it before anything else happens),
    ``on_observed`` once the strategy has taken it into account (for progress displays).
    ``logged``: the tests a resumed hunt had logged, each with its ``seq``; the hunt goes through
    them again by :meth:`Runner.restore` (not logged twice, but shown to ``on_restored`` to
    check), so a test that was in flight when its driver died is run again from its start. A
    round's tests are logged as they end, so a later one may be logged and an earlier one not.
    ``show_logged_rounds=False`` keeps rounds made only of logged tests from ``on_observed``
    (a manual step: an earlier step showed them). ``check``: BAD is booted first (see
    :class:`BadCheck`), and a BAD where the bug did not show ends the hunt there.
    """
    totals = Totals()
    by_seq = {test["seq"]: test for test in logged}
    checking = check  # the check of BAD, while it runs
    checked: list[Observation] = []  # its tests so far
    while True:
        if checking is None and (verdict := strategy.verdict()) is not None:
            return verdict, totals
        rigs = runner.ready_rigs()
        if not rigs:
            return strategy.abort(OUT_OF_ADAPTERS), totals
        if totals.tests >= max_tests:
            return strategy.abort(f"no verdict after {max_tests} tests", "inconclusive"), totals
        if checking is not None:
            proposal = checking.proposal(checked)
        else:
            proposal = strategy.propose(resources_of(runner, rigs))
        ordered, ran = _results(runner, proposal, rigs, totals.tests, by_seq, on_test,
                                on_restored)
        first, shown = totals.tests + 1, ran or show_logged_rounds
        totals.add_round(ordered)
        if checking is not None:
            checked += map(observation, ordered)
            refuted = checking.refuted(checked, ordered[-1].note)
            if refuted or not checking.showed(checked):  # not the strategy's to hear (yet)
                for i, result in enumerate(ordered if shown else []):
                    on_observed(first + i, result)
                if refuted:
                    return Verdict("inconclusive", None, None, refuted, len(strategy.space)), totals
                continue
            for heard in checked[:-len(ordered)]:  # the bug showed: the whole check is heard
                strategy.observe(heard)
            checking = None
        for i, result in enumerate(ordered):
            strategy.observe(observation(result))
            if shown:
                on_observed(first + i, result)


def _results(runner: Runner, proposal: Proposal, rigs: list[Any], done: int,
             by_seq: dict[int, dict[str, Any]], on_test: Callable[[int, TestResult], None],
             on_restored: Callable[[int, TestResult], None]) -> tuple[list[TestResult], bool]:
    """A round's results in order, the tests a resumed hunt had logged restored, the others
    run (each logged as it ends); and whether any was run. ``done``: tests before it."""
    round_ = list(zip(proposal.commits, rigs, strict=False))
    results: dict[int, TestResult] = {}
    fresh = []
    for i, (commit, rig) in enumerate(round_):
        seq = done + i + 1
        if seq in by_seq:
            results[i] = runner.restore(commit, proposal.boots_of(i), rig, by_seq[seq])
            on_restored(seq, results[i])
        else:
            fresh.append(i)

    def ended(j: int, result: TestResult) -> None:
        results[fresh[j]] = result
        on_test(done + fresh[j] + 1, result)

    run_round(runner, [(round_[i][0], proposal.boots_of(i), round_[i][1]) for i in fresh], ended)
    return [results[i] for i in range(len(round_))], bool(fresh)


def observation(result: TestResult) -> Observation:
    """What a strategy hears of a test."""
    return Observation(result.commit, len(result.boots), result.failures, result.skipped)


def resources_of(runner: Runner, rigs: list[Any]) -> Resources:
    """What a strategy may know of the lab for its next round: free rigs, adapters left, what
    each free rig has installed, and the lab-minute costs (if the runner knows them)."""
    costs = getattr(runner, "costs", None)
    return Resources(len(rigs), runner.adapters_left,
                     tuple(getattr(r, "installed", None) for r in rigs),
                     None if costs is None else LabCosts(costs.install, costs.boot, costs.swap))


def run_round(runner: Runner, tests: Sequence[tuple[int, int, Any]],
              on_done: Callable[[int, TestResult], None]) -> None:
    """A round's tests: at once if the runner can (real rigs), else one after another in order
    (the simulated lab, whose draws must come in the same order every time)."""
    if hasattr(runner, "run_round"):
        runner.run_round(tests, on_done)
        return
    for j, (commit, boots, rig) in enumerate(tests):
        on_done(j, runner.run(commit, boots, rig))


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
class Prepared:
    """A hunt ready to run: its strategy, its runner, the range and the true culprit if known."""

    strategy: Strategy
    runner: Any
    goods: list[int]
    bad: int
    truth: int | None = None
    hunt_id: int | None = None  # once the store has logged the hunt


@dataclass(frozen=True)
class KnownRange:
    """A checked range's search space and true culprit: the same for every hunt of a campaign,
    so a worker builds them once (strategies never change the space they search)."""

    space: SearchSpace
    truth: int | None

    @classmethod
    def of(cls, h: History, good: int, bad: int, arch: str) -> KnownRange:
        """The search space and the true culprit of a checked range GOOD..BAD."""
        return cls(h.search_space([good], bad), h.true_culprit(good, bad, arch))


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
    adapters: int | None = 50
    costs: Costs = field(default_factory=Costs)
    keeps_installed: bool = True
    check_bad: int = 0  # boots of BAD before the hunt (BadCheck; 0: none)
    known: KnownRange | None = field(default=None, repr=False)
    prepared: Prepared | None = field(default=None, init=False, repr=False)

    @property
    def manual(self) -> bool:
        """A simulated hunt runs its own tests."""
        return False

    @property
    def goods(self) -> tuple[str, ...]:
        """GOOD as typed, as a real hunt's GOODs are."""
        return (self.good_ref,)

    def prepare(self, strategy: Strategy | None = None) -> Prepared:
        """Resolve and check the range, build the strategy and the lab (raises on bad input).
        ``strategy``: one already built from the same options and range, in its start state
        (a campaign's decision tree keeps one per lane), taken instead of a new one."""
        h = self.history
        good, bad = h.resolve(self.good_ref), h.resolve(self.bad_ref)
        if self.known is None:
            h.check_range(good, bad)
        if h.bug is None:
            raise HistoryError(f"history {h.name} has no bug to simulate")
        known = self.known or KnownRange.of(h, good, bad, self.arch)
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        if strategy is None:
            strategy = make_strategy(self.strategy, known.space, **self.options)
        lab = Lab.build(h, seed=self.seed, rigs=self.rigs, arch=self.arch,
                        adapters=self.adapters, costs=self.costs,
                        keeps_installed=self.keeps_installed)
        self.prepared = Prepared(strategy, lab, [good], bad, known.truth)
        return self.prepared

    def params(self, strategy: Strategy) -> dict[str, Any]:
        """The hunt's parameters as logged: enough to set the same hunt up again (replay)."""
        return {"strategy_options": strategy.params(), "rigs": self.rigs, "arch": self.arch,
                "adapters": self.adapters, "keeps_installed": self.keeps_installed,
                **self.costs.as_params(), **check_params(self.check_bad)}

    @classmethod
    def from_logged(cls, history: History, hunt: dict[str, Any]) -> HuntSetup:
        """The setup of a logged hunt (a row of the hunts table), to run it again."""
        params = hunt["params"]
        if "strategy_options" not in params:
            from bisectlab.errors import StoreError

            raise StoreError(f"hunt {hunt['id']} was logged without its strategy options "
                             "(by an older bisectlab); it cannot be replayed")
        costs = Costs.from_params(params)
        options = strategy_class(hunt["strategy"]).Options.from_logged(params["strategy_options"])
        return cls(history, hunt["good"], hunt["bad"], strategy=hunt["strategy"],
                   options=options.as_dict(), seed=hunt["seed"], rigs=params["rigs"],
                   arch=params["arch"], adapters=params["adapters"], costs=costs,
                   keeps_installed=params.get("keeps_installed", False),
                   check_bad=params.get("check_bad", 0))


@dataclass
class RealSetup:
    """A hunt whose tests are real: commands run on git worktrees of a repository (``run``), or
    outcomes typed by a person (no ``run``: a manual hunt). Its history comes from the
    repository itself, or, for a manual hunt, from a scenario (``history_ref``)."""

    goods: tuple[str, ...]
    bad_ref: str
    repo: Path | None = None
    history_ref: str | None = None
    run: str | None = None
    install: str | None = None
    strategy: str = "bayes"
    options: dict[str, Any] = field(default_factory=dict)
    rigs: int = 1
    adapters: int | None = None
    timeout: float | None = None
    on_timeout: str = "skip"
    worktrees: Path | None = None
    keep_worktrees: bool = False
    seed: int | None = None
    costs: Costs | None = None  # what bayes prices tests by (None: unknown, one boot a test)
    check_bad: int = 0  # boots of BAD before the hunt (BadCheck; 0: none)
    arch: str | None = None  # a manual hunt on a scenario: the rigs its true culprit is for
    history: History = field(init=False)
    prepared: Prepared | None = field(default=None, init=False, repr=False)
    loaded: tuple[list[int], int] | None = field(default=None, init=False, repr=False)

    @property
    def manual(self) -> bool:
        return self.run is None

    def load(self) -> tuple[list[int], int]:
        """The history and the range (refs resolved by git for a repository), read once: each
        hunt set up again from this setup (replay log's rehearsal and its steps) reuses them."""
        if self.loaded is None:
            self.loaded = self._read_range()
        return self.loaded

    def _read_range(self) -> tuple[list[int], int]:
        if self.repo is not None:
            from bisectlab.gitrepo import history_from_repo

            self.history, goods, bad = history_from_repo(self.repo, list(self.goods), self.bad_ref)
            return goods, bad
        from bisectlab.history import load_history

        self.history = load_history(self.history_ref)
        goods = [self.history.resolve(g) for g in self.goods]
        bad = self.history.resolve(self.bad_ref)
        for good in goods:
            self.history.check_range(good, bad)
        return goods, bad

    def resolve(self, ref: str) -> int:
        """The commit of the hunt's history that ``ref`` names: a tag or a sha of it, or, in a
        repository, anything git rev-parse takes (a branch, HEAD~3), as GOOD and BAD were."""
        try:
            return self.history.resolve(ref)
        except HistoryError:
            if self.repo is None:
                raise
        from bisectlab.gitrepo import repository_root, resolve_ref

        sha = resolve_ref(repository_root(self.repo), ref)
        try:
            return self.history.resolve(sha)
        except HistoryError:
            goods, bad = self.load()
            shas = self.history.shas
            raise HistoryError(f"'{ref}' ({sha[:12]}) is not in the hunt's range "
                               f"{' '.join(shas[g][:12] for g in goods) or '(root)'}.."
                               f"{shas[bad][:12]}") from None

    def prepare(self) -> Prepared:
        """Read the range, build the strategy and the rigs (raises on bad input)."""
        if self.repo is None and not self.manual:
            raise BisectlabError("--run needs --repo: commands run on worktrees of a repository")
        if self.repo is not None and self.history_ref is not None:
            raise BisectlabError("--repo and --history do not go together: a real hunt's "
                                 "history comes from its repository")
        goods, bad = self.load()
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(2**31)
        strategy = make_strategy(self.strategy, self.history.search_space(goods, bad),
                                 **self.options)
        if self.manual:
            runner: Any = ManualRunner.build(self.history, rigs=self.rigs, adapters=self.adapters,
                                             seed=self.seed, costs=self.costs)
        else:
            assert self.repo is not None and self.run is not None
            runner = GitRigs.build(
                self.repo, self.history, self.run, install_command=self.install, rigs=self.rigs,
                worktrees=self.worktrees or default_worktrees(self.repo), adapters=self.adapters,
                timeout=self.timeout, on_timeout=self.on_timeout, seed=self.seed,
                keep_worktrees=self.keep_worktrees, costs=self.costs)
        truth = None
        if self.repo is None and self.history.bug is not None:  # a scenario knows its culprit
            truth = self.history.true_culprit(goods[0], bad, self.arch)
        self.prepared = Prepared(strategy, runner, goods, bad, truth)
        return self.prepared

    def params(self, strategy: Strategy) -> dict[str, Any]:
        """The hunt's parameters as logged: enough to set it up again (resume, the next step)."""
        return {"lab": "manual" if self.manual else "rigs", "strategy_options": strategy.params(),
                "rigs": self.rigs, "adapters": self.adapters, "goods": list(self.goods),
                "repo": None if self.repo is None else str(self.repo),
                "history": self._logged_history(), "run": self.run, "install": self.install,
                "timeout": self.timeout, "on_timeout": self.on_timeout,
                "worktrees": None if self.worktrees is None else str(self.worktrees),
                "keep_worktrees": self.keep_worktrees,
                **({} if self.costs is None else self.costs.as_params()),
                **check_params(self.check_bad), **({} if self.arch is None else {"arch": self.arch})}

    def _logged_history(self) -> str | None:
        """The scenario as the hunt's later steps find it from any directory: a shipped one by
        name, a file by its absolute path."""
        if self.history_ref is None:
            return None
        return self.history.source if hasattr(self, "history") else self.history_ref

    @classmethod
    def from_logged(cls, hunt: dict[str, Any]) -> RealSetup:
        """The setup of a logged real or manual hunt."""
        p = hunt["params"]
        options = strategy_class(hunt["strategy"]).Options.from_logged(p["strategy_options"])
        costs = (Costs.from_params(p)
                 if "install_minutes" in p else None)  # hunts logged before real rigs had costs
        # the range's commits, as git bisect keeps them: a branch moved since changes nothing
        goods = p.get("good_shas") or [hunt["good_sha"], *p["goods"][1:]]
        return cls(tuple(goods), hunt["bad_sha"], repo=None if p["repo"] is None else Path(p["repo"]),
                   history_ref=p["history"], run=p["run"], install=p["install"] or None,
                   strategy=hunt["strategy"], options=options.as_dict(), rigs=p["rigs"],
                   adapters=p["adapters"], timeout=p["timeout"], on_timeout=p["on_timeout"],
                   worktrees=None if p["worktrees"] is None else Path(p["worktrees"]),
                   keep_worktrees=p["keep_worktrees"], seed=hunt["seed"], costs=costs,
                   check_bad=p.get("check_bad", 0), arch=p.get("arch"))


def bad_check(setup: HuntSetup | RealSetup, prepared: Prepared) -> BadCheck | None:
    """The check of BAD the hunt was set up with (None: none)."""
    if not setup.check_bad:
        return None
    return BadCheck(prepared.bad, setup.check_bad, setup.history.shas[prepared.bad][:12])


def check_params(boots: int) -> dict[str, Any]:
    """The check of BAD as logged with the hunt's parameters: only if asked for, so that a
    hunt without it is logged as before."""
    return {"check_bad": boots} if boots else {}


def setup_of(hunt: dict[str, Any]) -> HuntSetup | RealSetup:
    """How a logged hunt was set up: simulated, on real rigs, or by hand."""
    if hunt["params"].get("lab") in ("rigs", "manual"):
        return RealSetup.from_logged(hunt)
    from bisectlab.replay import logged_history

    return HuntSetup.from_logged(logged_history(hunt), hunt)


def logged_test(h: History, seq: int, result: TestResult) -> dict[str, Any]:
    """A test result as the store records it (commit as sha, boots as dicts)."""
    return {"seq": seq, "commit_sha": h.shas[result.commit],
            "commit_subject": h.subjects[result.commit], "rig": result.rig,
            "boots": [{"attempt": b.attempt, "seed": b.seed, "bricked": b.bricked,
                       "stray_write": b.stray_write, "adapter_serial": b.adapter,
                       "exit_status": b.exit_status, "seconds": b.seconds, "output": b.output}
                      for b in result.boots],
            "failed": result.failed, "adapters_destroyed": list(result.destroyed),
            "lab_minutes": result.minutes, "installed": result.installed,
            "skipped": result.skipped, "note": result.note}


def logged_verdict(h: History, verdict: Verdict, truth: int | None) -> dict[str, Any]:
    """A verdict as the store records it with the hunt."""
    culprit = verdict.culprit
    correct = None if truth is None or verdict.status != "found" else culprit == truth
    return {"status": verdict.status, "culprit_sha": h.shas[culprit] if culprit is not None else None,
            "culprit_subject": h.subjects[culprit] if culprit is not None else None,
            "confidence": verdict.confidence, "correct": correct, "note": verdict.note}


def bisect(
    setup: HuntSetup | RealSetup,
    store: Store,
    on_test: Callable[[int, TestResult, Strategy], None] | None = None,
    on_start: Callable[[Strategy], None] | None = None,
) -> HuntReport:
    """Run one hunt end to end, logging every test in the store as it happens.

    ``on_start`` sees the strategy before the first test (as git bisect start speaks first).
    A manual hunt stops at its first tests with :class:`~bisectlab.manual.AwaitingTests`."""
    prepared = setup.prepared or setup.prepare()
    h = setup.history
    truth = prepared.truth
    manual = setup.manual
    hunt_id = store.start_hunt(
        history=h.name, history_source=h.source,
        good=" ".join(setup.goods),
        bad=setup.bad_ref, good_sha=h.shas[prepared.goods[0]], bad_sha=h.shas[prepared.bad],
        strategy=setup.strategy, params=_with_good_shas(setup.params(prepared.strategy), h,
                                                        prepared.goods), seed=setup.seed,
        true_culprit_sha=h.shas[truth] if truth is not None else None,
        adapter_serials=None if prepared.runner.box.count is None else prepared.runner.box.serials,
        claimed_by=None if manual else claimant(),
    )
    _opened(prepared, hunt_id, store)
    return _hunt(setup, store, hunt_id, prepared, on_test, on_start=on_start)


def _opened(prepared: Prepared, hunt_id: int, store: Store) -> None:
    """The hunt as logged: its number, and the database its real rigs' worktrees belong to."""
    prepared.hunt_id = hunt_id
    if isinstance(prepared.runner, GitRigs):
        prepared.runner.hunt_id, prepared.runner.database = hunt_id, store.identity


def resume(store: Store, hunt_id: int,
           on_test: Callable[[int, TestResult, Strategy], None] | None = None,
           on_start: Callable[[Strategy], None] | None = None) -> HuntReport:
    """Continue a hunt whose driver died (or was interrupted) from its logged tests.

    The strategy and the lab are set up as logged; the logged tests are gone through again
    (checked against the log, not logged twice), then the hunt goes on as if never stopped:
    a simulated hunt ends with the verdict, tests and boots of the uninterrupted one.
    """
    hunt = store.hunt(hunt_id)
    setup = setup_of(hunt)
    if setup.manual:  # it waits for its engineer, no process
        raise StoreError(f"hunt {hunt_id} is a manual hunt: record its tests with bisectlab "
                         "good/bad/skip, see them with bisectlab status")
    state = hunt_state(hunt)
    if state not in RESUMABLE:
        raise StoreError(f"hunt {hunt_id} is {state}: only a stopped or interrupted hunt can be "
                         "resumed" + (" (its process still runs)" if state == "running" else ""))
    if hunt.get("campaign_id") is not None:  # its slot is the campaign's to run again
        raise StoreError(f"hunt {hunt_id} is one of campaign {hunt['campaign_id']}'s: the "
                         "campaign's command, run again, runs its unfinished hunts again")
    prepared = setup.prepare()
    _opened(prepared, hunt_id, store)
    store.reopen_hunt(hunt_id, claimant(), state)
    return _hunt(setup, store, hunt_id, prepared, on_test, logged_tests(store, hunt_id),
                 on_start=on_start)


def step(store: Store, hunt_id: int, typed: Sequence[Outcome] = (),
         on_test: Callable[[int, TestResult, Strategy], None] | None = None,
         setup: HuntSetup | RealSetup | None = None) -> HuntReport:
    """One step of a manual hunt: its logged tests, then the outcomes just typed; it stops with
    AwaitingTests for the tests it needs next, or gives its verdict."""
    hunt = store.hunt(hunt_id)
    setup = setup or setup_of(hunt)
    if not setup.manual:
        raise StoreError(f"hunt {hunt_id} is not a manual hunt (it runs its own tests)")
    if hunt["status"] != "running":
        raise StoreError(f"hunt {hunt_id} is {hunt['status']}: it takes no more tests")
    prepared = setup.prepare()
    runner = prepared.runner
    runner.typed = list(typed)
    try:
        report = _hunt(setup, store, hunt_id, prepared, on_test, logged_tests(store, hunt_id),
                       show_logged_rounds=False)
    except AwaitingTests as waiting:
        _check_all_taken(setup.history, runner.typed, waiting.pending)
        raise
    _check_all_taken(setup.history, runner.typed, [])
    return report


def _check_all_taken(h: History, left: Sequence[Outcome], waiting: Sequence[tuple[int, str]]
                     ) -> None:
    """Every outcome typed went to a test the hunt asked for (a transcript can name others)."""
    if left:
        asked = waiting_text(h, waiting) or "none: it ended"
        rig = f" on {left[0].rig}" if left[0].rig else ""
        raise BisectlabError(f"an outcome for {h.shas[left[0].commit][:12]}{rig} fits no test "
                             f"the hunt asked for (waiting: {asked})")


def _with_good_shas(params: dict[str, Any], h: History, goods: Sequence[int]) -> dict[str, Any]:
    """A hunt's logged parameters, with every GOOD's sha when it has several (the hunts table
    keeps the first): what resume and each manual step set the range up from."""
    return params if len(goods) < 2 else {**params, "good_shas": [h.shas[g] for g in goods]}


def logged_tests(store: Store, hunt_id: int) -> list[dict[str, Any]]:
    """The hunt's tests in order, each with its boots."""
    tests = sorted(store.tests(hunt_id), key=lambda t: t["seq"])
    return [{**t, "boot_rows": store.boots(t["id"])} for t in tests]


def _hunt(setup: HuntSetup | RealSetup, store: Store, hunt_id: int, prepared: Prepared,
          on_test: Callable[[int, TestResult, Strategy], None] | None,
          logged: Sequence[dict[str, Any]] = (),
          on_start: Callable[[Strategy], None] | None = None,
          show_logged_rounds: bool = True) -> HuntReport:
    """Drive an opened hunt to its verdict, logging each new test; record the verdict."""
    h, strategy, truth = setup.history, prepared.strategy, prepared.truth
    logged_by_seq = {test["seq"]: test for test in logged}

    wrote: list[int] = []

    def log(seq: int, result: TestResult) -> None:
        with held():  # a finished test is logged whole, whatever stops the hunt meanwhile
            store.record_test(hunt_id, **logged_test(h, seq, result))
        wrote.append(seq)

    def observed(seq: int, result: TestResult) -> None:
        if on_test is not None:
            on_test(seq, result, strategy)

    def restored(seq: int, result: TestResult) -> None:
        from bisectlab.replay import compare_test

        difference = compare_test(logged_by_seq[seq], logged_test(h, seq, result))
        if difference:
            raise CannotResume(f"hunt {hunt_id} cannot be resumed: its log and the hunt set "
                               f"up again part at test {seq} ({difference})")

    if on_start is not None:  # a new hunt's, or a resumed one's before it goes on
        on_start(strategy)
    finished = False
    try:
        verdict, totals = drive(strategy, prepared.runner, log, observed, logged=logged,
                                on_restored=restored, show_logged_rounds=show_logged_rounds,
                                check=bad_check(setup, prepared))
        finished = True
    except AwaitingTests as waiting:
        waiting.hunt_id = hunt_id
        raise  # a manual hunt waits for its engineer: still running
    except BaseException as exc:
        if setup.manual:  # a manual hunt has no process to lose: a step cut short leaves it open
            raise
        if isinstance(exc, MissingCommand) and not logged and not wrote:
            finished = True  # nothing to resume: the rigs' worktrees go
            _abandon(store, hunt_id, exc)
        _stop(store, hunt_id, exc)
    finally:
        if hasattr(prepared.runner, "close"):  # real rigs: a hunt to resume keeps their kernels
            prepared.runner.close(finished)
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
    try:
        store.finish_hunt(hunt_id, **record, lab_minutes=totals.lab_minutes)
    except BisectlabError as exc:  # the verdict not written: its tests are, resume ends it
        if setup.manual:
            raise
        _stop(store, hunt_id, exc)
    return report


def _stop(store: Store, hunt_id: int, exc: BaseException) -> NoReturn:
    """Mark a hunt that stopped without its verdict written interrupted, and raise on: a
    BisectlabError as HuntStopped (its tests are logged: not bad input)."""
    _mark_interrupted(store, hunt_id, exc)
    if isinstance(exc, BisectlabError) and not isinstance(exc, HuntStopped | CannotResume):
        raise HuntStopped(str(exc), hunt_id) from exc
    raise exc


def _abandon(store: Store, hunt_id: int, exc: MissingCommand) -> NoReturn:
    """End a hunt whose command could not run before it logged a test: resume would run the same
    command again, so it ends aborted and the error says to start it again (bad input, exit 2)."""
    with contextlib.suppress(BisectlabError):
        store.finish_hunt(hunt_id, status="aborted", culprit_sha=None, culprit_subject=None,
                          confidence=None, correct=None, note=f"aborted before its first test: {exc}")
    raise BisectlabError(f"{exc}; nothing was logged: hunt {hunt_id} ended aborted (run the "
                         "hunt again with a command that runs)") from exc


def _mark_interrupted(store: Store, hunt_id: int, exc: BaseException) -> None:
    """Log that a hunt's process stopped, and why. A store that cannot take even that (the error
    that stopped the hunt may be the database's) leaves it 'running': 'stopped' once the process
    is gone, and resumable all the same."""
    note = f"interrupted: {exc}" if isinstance(exc, BisectlabError) else "interrupted"
    with contextlib.suppress(BisectlabError):
        store.finish_hunt(hunt_id, status="interrupted", culprit_sha=None, culprit_subject=None,
                          confidence=None, correct=None, note=note)


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
