"""`bisectlab bisect`: one hunt, its progress in git's words, and its verdict."""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from bisectlab.cli.base import EXIT_INTERRUPTED, EXIT_NO_VERDICT, EXIT_VERDICT
from bisectlab.cli.params import (
    MAX_ADAPTERS,
    MAX_CHECK_BOOTS,
    MAX_RIGS,
    MAX_SEED,
    MAX_TIMEOUT,
    Number,
    PathGiven,
    cost_line,
    count,
    db_flag,
    db_option,
    in_memory,
    lab_cost_options,
    logged_in,
    open_store,
    row_id,
    strategy_flag_options,
    typed_flags,
    typed_options,
)
from bisectlab.history import DEFAULT_SCENARIO, History
from bisectlab.kernel import ARCHES
from bisectlab.lab import Costs
from bisectlab.rigs import DEFAULT_ON_TIMEOUT, TIMEOUT_ACTIONS
from bisectlab.strategies import STRATEGIES
from bisectlab.words import counted


@click.command()
@click.argument("refs", nargs=-1, required=True, metavar="GOOD... BAD")
@click.option("--history", "history_ref", default=None, metavar="NAME|FILE",
              help=f"Shipped scenario or history file [default: {DEFAULT_SCENARIO}].")
@click.option("--repo", type=PathGiven(file_okay=False), default=None,
              help="Hunt in this git repository: the history is its own (refs resolved by git).")
@click.option("--run", "run_command", default=None, metavar="CMD",
              help="With --repo: the test, run in a worktree of the commit (git bisect run's "
                   "exit codes: 0 pass, 1-127 but 125 bad, 125 skip, 128+ abort). Without it, "
                   "a manual hunt: bisectlab says what to test, you say how it went.")
@click.option("--install", "install_command", default=None, metavar="CMD",
              help="With --run: build and install the commit on a rig that lacks it (a failure "
                   "skips the commit).")
@click.option("--manual", is_flag=True,
              help="A manual hunt on a scenario (no --repo): record outcomes with good/bad/skip.")
@click.option("--timeout", type=Number(0, MAX_TIMEOUT, low_open=True), default=None,
              metavar="SECONDS", help="Kill a command (its whole process group) after this long.")
@click.option("--on-timeout", type=click.Choice(TIMEOUT_ACTIONS), default=DEFAULT_ON_TIMEOUT,
              show_default=True,
              help="What a timed-out boot means: skip (untestable: a hang shows neither the bug "
                   "nor its absence), fail (the hang is the bug) or abort the hunt.")
@click.option("--worktrees", type=PathGiven(file_okay=False), default=None,
              help="Where the rigs' worktrees go [default: bisectlab/rigs in the repository's "
                   "git directory].")
@click.option("--keep-worktrees", is_flag=True, help="Leave the rigs' worktrees after the hunt.")
@click.option("--strategy", "strategy_spec", default="bayes", show_default=True,
              metavar="NAME[:key=value,...]",
              help=f"Bisection strategy ({', '.join(sorted(STRATEGIES))}), with options.")
@strategy_flag_options
@click.option("--adapters", type=count(0, MAX_ADAPTERS), default=None,
              help="Adapters in the box (the rigs are fitted from it): a hard budget "
                   "[default: 50 in the simulated lab, unlimited on real rigs and by hand "
                   "(--manual)].")
@click.option("--rigs", type=count(1, MAX_RIGS), default=1, show_default=True,
              help="Test rigs working side by side.")
@click.option("--check-bad", type=count(0, MAX_CHECK_BOOTS), default=0, metavar="BOOTS",
              help="First boot BAD up to this many times, stopping at its first failure; if the "
                   "bug never shows there (or BAD cannot be tested), end the hunt (exit 1), as "
                   "ktest's BISECT_CHECK does: a test that cannot fail costs thousands of tests "
                   "before BAD is named [default: 0, no check].")
@click.option("--arch", type=click.Choice(ARCHES), default=ARCHES[0], show_default=True,
              help="Simulated rig architecture.")
@lab_cost_options
@click.option("--seed", type=count(0, MAX_SEED), default=None,
              help="Seed of the simulated boots and adapter serials (random if omitted; logged).")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def bisect(refs: tuple[str, ...], history_ref: str | None, repo: Path | None,
           run_command: str | None, install_command: str | None, manual: bool,
           timeout: float | None, on_timeout: str, worktrees: Path | None, keep_worktrees: bool,
           strategy_spec: str, adapters: int | None, rigs: int, check_bad: int, arch: str,
           install_minutes: float, boot_minutes: float, swap_minutes: float, seed: int | None,
           db_url: str | None, as_json: bool, quiet: bool, **flags: Any) -> None:
    """Hunt the first bad commit between GOOD(s) and BAD: tags, branches, sha prefixes.

    By default in a simulated lab on a scenario. With --repo and --run, in a real repository
    with a real test command on real rigs (git worktrees); with --repo alone (or --manual),
    by hand: it says what to test and exits, `bisectlab good|bad|skip` records each outcome.
    The lab's minutes price bayes' tests everywhere; on real rigs lab time is the wall clock.
    """
    from bisectlab.driver import bisect as run_bisect

    setup = make_setup(refs, history_ref, repo, run_command, install_command, manual, timeout,
                       on_timeout, worktrees, keep_worktrees, strategy_spec, adapters, rigs, arch,
                       seed, flags, Costs(install_minutes, boot_minutes, swap_minutes),
                       typed_options(click.get_current_context()), check_bad)
    setup.prepare()  # bad input fails here, before the database is opened
    if setup.manual and in_memory(db_url):
        raise click.UsageError("a hunt by hand goes on in later commands (good, bad, skip): give "
                               "--db a file, which outlives this one")
    with open_store(db_url) as store:
        _run(lambda on_test, on_start: run_bisect(setup, store, on_test, on_start), setup,
             db_url, as_json, quiet)


def make_setup(refs: tuple[str, ...], history_ref: str | None, repo: Path | None,
               run_command: str | None, install_command: str | None, manual: bool,
               timeout: float | None, on_timeout: str, worktrees: Path | None,
               keep_worktrees: bool, strategy_spec: str, adapters: int | None, rigs: int,
               arch: str, seed: int | None, flags: dict[str, Any], costs: Costs,
               typed: frozenset[str] = frozenset(), check_bad: int = 0) -> Any:
    """The hunt `bisect`'s arguments ask for: simulated, on real rigs, or by hand (``typed``:
    the options the user gave, whatever their value)."""
    from bisectlab.driver import HuntSetup, RealSetup
    from bisectlab.history import load_history
    from bisectlab.lanes import build_lanes

    if len(refs) < 2:
        raise click.UsageError("give GOOD and BAD (several GOODs allowed: GOOD... BAD)")
    repo = repo.resolve() if repo is not None else None
    worktrees = worktrees.resolve() if worktrees is not None else None
    *goods, bad = refs
    (lane,) = build_lanes([strategy_spec], typed_flags(flags))
    strategy = lane.strategy
    real = repo is not None or manual or run_command is not None
    for_rigs = [flag for flag, given in (
        ("--install", install_command is not None), ("--timeout", timeout is not None),
        ("--on-timeout", "on_timeout" in typed or on_timeout != DEFAULT_ON_TIMEOUT),
        ("--worktrees", worktrees is not None),
        ("--keep-worktrees", keep_worktrees)) if given]
    if for_rigs and run_command is None:  # else silently unused (or a manual hunt)
        raise click.UsageError(f"{for_rigs[0]} goes with --run: it is about the rigs that run "
                               "the test command")
    arch_given = "arch" in typed or arch != ARCHES[0]
    if arch_given and (repo is not None or run_command is not None):
        raise click.UsageError("--arch is the simulated lab's: a real hunt's rigs are what they "
                               "are")
    if not real:
        if len(goods) > 1:
            raise click.UsageError("several GOODs need --repo (or --manual)")
        setup: Any = HuntSetup(load_history(history_ref), goods[0], bad, strategy=strategy,
                               options=dict(lane.options), seed=seed, rigs=rigs, arch=arch,
                               adapters=50 if adapters is None else adapters, costs=costs,
                               check_bad=check_bad)
    else:
        if manual and run_command is not None:
            raise click.UsageError("--manual and --run do not go together")
        if run_command is not None and not run_command.strip():
            raise click.UsageError("--run is empty: give the command that tests a commit")
        if repo is None and history_ref is None:
            history_ref = DEFAULT_SCENARIO
        setup = RealSetup(tuple(goods), bad, repo=repo, history_ref=history_ref,
                          run=run_command, install=install_command, strategy=strategy,
                          options=dict(lane.options), rigs=rigs, adapters=adapters,
                          timeout=timeout, on_timeout=on_timeout, worktrees=worktrees,
                          keep_worktrees=keep_worktrees, seed=seed, costs=costs,
                          check_bad=check_bad, arch=arch if arch_given else None)
    return setup


def _run(hunt: Callable, setup: Any, db_url: str | None, as_json: bool, quiet: bool) -> None:
    """Run a hunt (or a manual step) with progress lines for its tests; print its verdict, or
    the tests a manual hunt waits for."""
    from bisectlab.manual import AwaitingTests

    try:
        with _kept_on_abort(lambda: _resumable_id(setup), as_json):
            report = hunt(None if quiet else _progress_printer(lambda: setup.history),
                          None if quiet else _show_bisecting)
    except AwaitingTests as waiting:
        _print_pending(setup, waiting, db_url, as_json)
        return
    _finish(setup.history, report, setup, db_url, as_json)


def _resumable_id(setup: Any) -> int | None:
    """The logged hunt that `bisectlab resume` can go on with (None: not logged yet, or a
    manual hunt, which goes on with good/bad/skip)."""
    if setup.prepared is None or setup.manual:
        return None
    return setup.prepared.hunt_id


@contextmanager
def _kept_on_abort(hunt_id_of: Callable[[], int | None], as_json: bool = False
                   ) -> Iterator[None]:
    """A hunt stopped by its run command, or by git or the database failing (exit 1), or by
    Ctrl-C (exit 130) says which hunt was kept and how to go on with it (with --json, as one
    object on stdout too). A hangup or kill (SIGHUP, SIGTERM) stops it as Ctrl-C does: its
    commands killed, the hunt marked interrupted, not left running."""
    from bisectlab.errors import HuntStopped

    def stopped(hunt_id: int | None, why: str, code: int) -> NoReturn:
        click.echo(f"{why}{_resume_hint(hunt_id)}", err=True)
        if as_json:
            click.echo(json.dumps({"hunt_id": hunt_id, "status": "interrupted", "note": why}))
        sys.exit(code)

    try:
        with _interrupted_by(signal.SIGTERM, signal.SIGHUP):
            yield
    except HuntStopped as exc:
        stopped(exc.hunt_id, f"error: {exc}", EXIT_NO_VERDICT)
    except KeyboardInterrupt:
        hunt_id = hunt_id_of()
        if hunt_id is None:
            raise
        stopped(hunt_id, "interrupted", EXIT_INTERRUPTED)


@contextmanager
def _interrupted_by(*signals: signal.Signals) -> Iterator[None]:
    """Within the block, these signals raise KeyboardInterrupt in the main thread, unless they
    are ignored (`nohup` ignores SIGHUP: a hunt it started outlives the terminal)."""
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in signals}
    before = {sig: h for sig, h in before.items() if h is not signal.SIG_IGN and h is not None}
    for sig in before:
        signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _resume_hint(hunt_id: int | None) -> str:
    return "" if hunt_id is None else f"; hunt {hunt_id} is kept: bisectlab resume {hunt_id} goes on"


def _print_pending(setup: Any, waiting: Any, db_url: str | None, as_json: bool) -> None:
    """What a manual hunt needs tested next, and how to say how it went (to its database)."""
    h = setup.history
    if as_json:
        tests = pending_json(h, waiting.tests)  # "test_next", as `status` says; "test" as before
        click.echo(json.dumps({"status": "waiting", "hunt": waiting.hunt_id, "boots": waiting.boots,
                               "test_next": tests, "test": tests}))
        return
    for line in pending_lines(h, waiting.tests):
        click.echo(f"hunt {waiting.hunt_id}: {line}")
    click.echo(f"then say how it went: bisectlab good|bad|skip COMMIT [--boots N]"
               f"{db_flag(db_url)} (bad --boots N: the bug showed at boot N)")


def pending_json(h: History, tests: list[tuple[int, str, int]]) -> list[dict[str, Any]]:
    """The waiting tests (commit, rig, boots asked) as JSON objects."""
    return [{"commit": h.shas[c], "subject": h.subjects[c], "rig": rig, "boots": n}
            for c, rig, n in tests]


def pending_lines(h: History, tests: list[tuple[int, str, int]]) -> list[str]:
    """One line per waiting test (commit, rig, boots asked): the commit, its rig, the boots."""
    def ask(boots: int) -> str:
        return (": boot it once" if boots == 1
                else f": boot it up to {boots} times, stopping at the first failure")

    return [f"test {h.shas[c][:12]} {h.subjects[c]} on {rig}{ask(n)}" for c, rig, n in tests]


@click.command()
@click.argument("hunt_id", type=row_id(), metavar="HUNT_ID")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def resume(hunt_id: int, db_url: str | None, as_json: bool, quiet: bool) -> None:
    """Continue hunt HUNT_ID, whose driver died or was interrupted, to its verdict.

    The logged tests are gone through again and checked (never counted twice); a test that was
    in flight is run again from its start. A simulated hunt ends with the verdict, tests and
    boots it would have had uninterrupted.
    """
    from bisectlab.driver import resume as run_resume
    from bisectlab.driver import setup_of

    with open_store(db_url, existing=True) as store:
        setup = setup_of(store.hunt(hunt_id))
        if hasattr(setup, "load"):
            setup.load()
        history = setup.history
        logged = len(store.tests(hunt_id))

        def going_on(strategy: Any) -> None:  # once the hunt can be resumed
            if logged:
                click.echo(f"hunt {hunt_id}: {counted(logged, 'logged test')} [1]..[{logged}], "
                           f"checked against the hunt set up again; new tests from "
                           f"[{logged + 1}]", err=True)
            _show_bisecting(strategy)

        with _kept_on_abort(lambda: hunt_id, as_json):
            report = run_resume(store, hunt_id,
                                on_test=None if quiet else _progress_printer(lambda: history),
                                on_start=None if quiet else going_on)
    _finish(history, report, setup, db_url, as_json)


def _finish(history: History, report: Any, setup: Any, db_url: str | None, as_json: bool) -> None:
    """Print the verdict (text or JSON) and exit 0 with one, 1 without."""
    if as_json:
        click.echo(json.dumps(report.as_dict(), sort_keys=True))
    else:
        _print_verdict(history, report, setup,
                       logged_in(db_url, f"bisectlab query tests --hunt {report.hunt_id}"))
    sys.exit(EXIT_VERDICT if report.status == "found" else EXIT_NO_VERDICT)


def _progress_printer(history_of: Callable[[], History]) -> Callable:
    """One line per test on stderr, in git bisect's words, then where the strategy stands if it
    has heard the test (a check of BAD that found no bug is not the strategy's to hear; the
    history is known once the hunt is set up)."""
    def show(seq: int, result, strategy) -> None:
        history = history_of()
        verdict = "skip" if result.skipped else "bad " if result.failed else "good"
        boots = len(result.boots)
        line = (f"[{seq:>3}] {verdict} {history.describe(result.commit)[:60]:<60} "
                f"{boots} boot{'s' if boots != 1 else ''}")
        if result.destroyed:
            line += f", adapter {result.destroyed[0]} destroyed"
        click.echo(line, err=True)
        if len(strategy.history) >= seq:
            _show_bisecting(strategy)

    return show


def _show_bisecting(strategy) -> None:
    """The strategy's progress before its next test, as git bisect prints it before each test."""
    left = strategy.progress()
    if left and strategy.verdict() is None:
        click.echo(f"      Bisecting: {left}", err=True)


def _short(ref: str) -> str:
    """A ref as typed, or a full sha (a later manual step's range) as git abbreviates it."""
    return ref[:12] if re.fullmatch(r"[0-9a-f]{40}", ref) else ref


def _print_verdict(history: History, report, setup, logged: str) -> None:
    echo = click.echo
    block = report.evidence.get("block")  # a verdict "one of these N commits"
    if report.status == "found":
        echo(f"{report.culprit} is the first bad commit")
    else:
        echo(f"{report.status}: {report.note}")
        if report.culprit:
            echo(f"best guess: {report.culprit}" + (" (the likeliest of them)" if block else ""))
    if report.culprit_subject:
        echo(f"    {report.culprit_subject}")
    conf = ("not estimated (this strategy trusts every test)" if report.confidence is None
            else f"{report.confidence:.4f}")
    if block and report.confidence is not None:
        conf += f" that the first bad commit is one of those {block}"
    if report.culprit or report.confidence is not None:  # else no commit to be sure of
        echo(f"  confidence   {conf}")
    echo("  cost         " + cost_line(report.tests, report.boots, report.installs,
                                         report.adapters, report.lab_hours))
    ev = report.evidence
    if ev.get("culprit"):
        parts = [f"culprit {_seen(ev['culprit'])}"]
        parts += [f"parent {p['commit'][:12]} {_seen(p)}" for p in ev.get("parents", [])]
        echo(f"  evidence     {'; '.join(parts)}")
    if ev.get("p_assumed"):
        echo(f"  assumed p    {ev['p_mean']:.3f} per boot (--assume-detect: not learnt)")
    elif "p_mean" in ev:
        lo, hi = ev["p_90"]
        echo(f"  learnt p     {ev['p_mean']:.3f} per boot (90% interval {lo:.3f}..{hi:.3f})")
    if "low_p_check" in ev:
        check = ev["low_p_check"]
        echo(f"  low-p check  {check['mass']:.4f} with p at {check['p']:.3f}, its "
             f"{check['quantile']:.0%} lower quantile (a verdict must hold there too)")
    if report.status == "found" and report.adapters == 0:
        echo("  warning      no test failed: the verdict rests on BAD being bad "
             "(--check-bad N boots BAD first, to be sure)")
    if report.true_culprit:
        truth = history.describe(history.resolve(report.true_culprit))
        mark = {True: "correct", False: "WRONG", None: "no verdict"}[report.correct]
        echo(f"  true culprit {truth} ({mark}: simulated hunt)")
    elif history.bug is not None:  # a scenario, simulated or by hand
        shown = " ".join(_short(ref) for ref in setup.goods) + ".." + _short(setup.bad_ref)
        echo(f"  true culprit none: the simulated bug has no single first bad commit in "
             f"{shown} on {setup.arch or ARCHES[0]}")
    echo(f"  hunt {report.hunt_id} {logged}; seed {report.seed}")


def _seen(item: dict) -> str:
    return f"{counted(item['boots'], 'boot')} / {counted(item['failures'], 'failure')}"


@click.command("log")
@click.argument("hunt_id", type=row_id(), metavar="HUNT_ID")
@db_option
def log_command(hunt_id: int, db_url: str | None) -> None:
    """Print hunt HUNT_ID as a replayable transcript (`bisectlab replay log FILE` reads it)."""
    from bisectlab.driver import logged_tests
    from bisectlab.transcript import write_log

    with open_store(db_url, existing=True) as store:
        click.echo(write_log(store.hunt(hunt_id), logged_tests(store, hunt_id)), nl=False)
