"""`bisectlab bisect`: one hunt, its progress in git's words, and its verdict."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from bisectlab.cli.base import EXIT_NO_VERDICT, EXIT_VERDICT
from bisectlab.cli.params import (
    MAX_ADAPTERS,
    MAX_RIGS,
    MAX_SEED,
    count,
    db_option,
    history_option,
    open_store,
    shown_url,
    strategy_flag_options,
    typed_flags,
)
from bisectlab.history import History
from bisectlab.kernel import ARCHES
from bisectlab.strategies import STRATEGIES


@click.command()
@click.argument("good")
@click.argument("bad")
@history_option
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="bayes",
              show_default=True, help="Bisection strategy.")
@strategy_flag_options
@click.option("--adapters", type=count(0, MAX_ADAPTERS), default=50, show_default=True,
              help="Adapters in the box (the rigs are fitted from it): a hard budget.")
@click.option("--rigs", type=count(1, MAX_RIGS), default=1, show_default=True,
              help="Test rigs working side by side.")
@click.option("--arch", type=click.Choice(ARCHES), default="i386", show_default=True,
              help="Rig architecture.")
@click.option("--seed", type=count(0, MAX_SEED), default=None,
              help="Seed of the simulated boots (random if omitted; logged with the hunt).")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def bisect(good: str, bad: str, history_ref: str, strategy: str, adapters: int, rigs: int,
           arch: str, seed: int | None, db_url: str | None, as_json: bool, quiet: bool,
           **flags: Any) -> None:
    """Hunt the first bad commit between GOOD and BAD (tags or sha prefixes) in a simulated lab."""
    from bisectlab.driver import HuntSetup
    from bisectlab.driver import bisect as run_bisect
    from bisectlab.history import load_history
    from bisectlab.lanes import build_lanes

    history = load_history(history_ref)
    (lane,) = build_lanes([strategy], typed_flags(flags))
    options = dict(lane.options)
    setup = HuntSetup(history, good, bad, strategy=strategy, options=options, seed=seed,
                      rigs=rigs, arch=arch, adapters=adapters)
    setup.prepare()
    progress = None if quiet else _progress_printer(history)
    with open_store(db_url) as store:
        report = run_bisect(setup, store, on_test=progress,
                            on_start=None if quiet else _show_bisecting)
    _finish(history, report, setup, db_url, as_json)


@click.command()
@click.argument("hunt_id", type=count(1, MAX_SEED))
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as one JSON object.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def resume(hunt_id: int, db_url: str | None, as_json: bool, quiet: bool) -> None:
    """Continue hunt HUNT_ID, whose driver died or was interrupted, to its verdict.

    The logged tests are gone through again and checked (never counted twice); a test that was
    in flight is run again from its start. A simulated hunt ends with the verdict, tests and
    boots it would have had uninterrupted.
    """
    from bisectlab.driver import HuntSetup
    from bisectlab.driver import resume as run_resume
    from bisectlab.replay import logged_history

    with open_store(db_url, existing=True) as store:
        hunt = store.hunt(hunt_id)
        history = logged_history(hunt)
        setup = HuntSetup.from_logged(history, hunt)
        report = run_resume(store, hunt_id, on_test=None if quiet else _progress_printer(history))
    _finish(history, report, setup, db_url, as_json)


def _finish(history: History, report: Any, setup: Any, db_url: str | None, as_json: bool) -> None:
    """Print the verdict (text or JSON) and exit 0 with one, 1 without."""
    if as_json:
        click.echo(json.dumps(report.as_dict(), sort_keys=True))
    else:
        _print_verdict(history, report, setup, shown_url(db_url))
    sys.exit(EXIT_VERDICT if report.status == "found" else EXIT_NO_VERDICT)


def _progress_printer(history: History) -> Callable:
    """One line per test on stderr, in git bisect's words."""
    def show(seq: int, result, strategy) -> None:
        verdict = "bad " if result.failed else "good"
        boots = len(result.boots)
        line = (f"[{seq:>3}] {verdict} {history.describe(result.commit)[:60]:<60} "
                f"{boots} boot{'s' if boots != 1 else ''}")
        if result.destroyed:
            line += f", adapter {result.destroyed[0]} destroyed"
        click.echo(line, err=True)
        _show_bisecting(strategy)

    return show


def _show_bisecting(strategy) -> None:
    """The strategy's progress before its next test, as git bisect prints it before each test."""
    left = strategy.progress()
    if left and strategy.verdict() is None:
        click.echo(f"      Bisecting: {left}", err=True)


def _print_verdict(history: History, report, setup, location: str) -> None:
    echo = click.echo
    if report.status == "found":
        echo(f"{report.culprit} is the first bad commit")
    else:
        echo(f"{report.status}: {report.note}")
        if report.culprit:
            echo(f"best guess: {report.culprit}")
    if report.culprit_subject:
        echo(f"    {report.culprit_subject}")
    conf = ("not estimated (this strategy trusts every test)" if report.confidence is None
            else f"{report.confidence:.4f}")
    echo(f"  confidence   {conf}")
    echo(f"  cost         {report.tests} tests, {report.boots} boots, {report.installs} installs,"
         f" {report.adapters} adapters destroyed, {report.lab_hours:.1f} lab hours")
    ev = report.evidence
    if ev.get("culprit"):
        parts = [f"culprit {_seen(ev['culprit'])}"]
        parts += [f"parent {p['commit'][:12]} {_seen(p)}" for p in ev.get("parents", [])]
        echo(f"  evidence     {'; '.join(parts)}")
    if "p_mean" in ev:
        lo, hi = ev["p_90"]
        echo(f"  learnt p     {ev['p_mean']:.3f} per boot (90% interval {lo:.3f}..{hi:.3f})")
    if "low_p_check" in ev:
        check = ev["low_p_check"]
        echo(f"  low-p check  {check['mass']:.4f} with p at {check['p']:.3f}, its "
             f"{check['quantile']:.0%} lower quantile (a verdict must hold there too)")
    if report.status == "found" and report.adapters == 0:
        echo("  warning      no test failed: the verdict rests on BAD being bad "
             "(boot BAD until it fails to be sure)")
    if report.true_culprit:
        truth = history.describe(history.resolve(report.true_culprit))
        mark = {True: "correct", False: "WRONG", None: "no verdict"}[report.correct]
        echo(f"  true culprit {truth} ({mark}: simulated hunt)")
    elif history.bug is not None:
        echo(f"  true culprit none: the simulated bug has no single first bad commit in "
             f"{setup.good_ref}..{setup.bad_ref} on {setup.arch}")
    echo(f"  hunt {report.hunt_id} logged in {location} "
         f"(bisectlab query tests --hunt {report.hunt_id}); seed {report.seed}")


def _seen(item: dict) -> str:
    return f"{item['boots']} boots / {item['failures']} failures"
