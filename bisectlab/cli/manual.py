"""Manual hunts, one process per step: `bisectlab good|bad|skip` (old|new when hunting a fix)
record a test's outcome, `bisectlab status` shows where the hunt stands."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from bisectlab.cli.params import count, db_option, open_store, row_id
from bisectlab.errors import BisectlabError
from bisectlab.manual import MAX_BOOTS
from bisectlab.words import counted


def _hunt_option(func: Callable) -> Callable:
    return click.option("--hunt", "hunt_id", type=row_id(), default=None,
                        help="The manual hunt [default: the one waiting; with several, name it].")(func)


def _waiting_hunt(store: Any, hunt_id: int | None) -> int:
    """The manual hunt to step: the one named, or the only one waiting (an outcome typed for
    one hunt must never land in another)."""
    if hunt_id is not None:
        return hunt_id
    manual = [h["id"] for h in store.hunts()
              if h["params"].get("lab") == "manual" and h["status"] == "running"]
    if not manual:
        raise BisectlabError("no manual hunt is waiting (start one: bisectlab bisect GOOD BAD "
                             "--repo DIR)")
    if len(manual) > 1:
        raise BisectlabError(f"{len(manual)} manual hunts are waiting (hunts "
                             f"{', '.join(map(str, manual))}): say which with --hunt N")
    return manual[0]


def outcome_command(term: str) -> click.Command:
    """The command that records one outcome in git's words (good, bad, skip, old, new)."""
    words = {"good": "passed every boot", "old": "passed every boot (the old behaviour)",
             "bad": "showed the bug at its last boot", "new": "showed the new behaviour at its "
             "last boot", "skip": "could not be tested"}[term]

    @click.command(term, help=f"Record that COMMIT {words} (default: the one commit waiting).")
    @click.argument("commit", required=False)
    @click.option("--boots", type=count(1, MAX_BOOTS), default=None,
                  help="Boots the test took (a bad one stops at the failing boot) [default: "
                       "the boots asked for].")
    @click.option("--rig", default=None, help="The rig it ran on (default: the one it waits on).")
    @_hunt_option
    @db_option
    @click.option("--json", "as_json", is_flag=True, help="One JSON object.")
    @click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
    def record(commit: str | None, boots: int | None, rig: str | None, hunt_id: int | None,
               db_url: str | None, as_json: bool, quiet: bool) -> None:
        _step(term, commit, boots, rig, hunt_id, db_url, as_json, quiet)

    return record


def _step(term: str | None, commit: str | None, boots: int | None, rig: str | None,
          hunt_id: int | None, db_url: str | None, as_json: bool, quiet: bool) -> None:
    """Take one outcome (or none, for status) into a manual hunt and say what comes next."""
    from bisectlab.cli.hunt import _run
    from bisectlab.driver import setup_of, step
    from bisectlab.manual import AwaitingTests, outcome_from_words

    if term == "skip" and boots is not None:
        raise click.UsageError("skip takes no --boots: a commit that could not be tested is "
                               "logged without boots")

    with open_store(db_url, existing=True) as store:
        hunt_id = _waiting_hunt(store, hunt_id)
        setup = setup_of(store.hunt(hunt_id))
        typed = []
        if term is not None:
            try:
                step(store, hunt_id, setup=setup)
            except AwaitingTests as waiting:
                awaited = waiting
            else:
                raise BisectlabError(f"hunt {hunt_id} is waiting for no test")
            target, on = _pending_test(setup, commit, awaited.pending, rig)
            typed = [outcome_from_words(term, target, boots or awaited.boots_for(target, on), on)]
        _run(lambda on_test, on_start: step(store, hunt_id, typed, on_test, setup), setup,
             db_url, as_json, quiet or term is None)


def _pending_test(setup: Any, commit: str | None, pending: list[tuple[int, str]],
                  rig: str | None) -> tuple[int, str]:
    """The waiting test (commit, rig) an outcome is for: the commit named (a ref) or the only
    one waiting, on the rig named or the only one testing it."""
    from bisectlab.manual import waiting_text

    history = setup.history
    on_rig = [(c, r) for c, r in pending if rig in (None, r)]
    if not on_rig:
        named = rig if rig is None or rig.strip() else "a rig named by empty text"
        raise BisectlabError(f"no test waits on {named} (waiting: {waiting_text(history, pending)})")
    if commit is None:
        if len({c for c, _ in on_rig}) != 1:
            raise BisectlabError(f"{len(on_rig)} tests are waiting "
                                 f"({waiting_text(history, on_rig)}): name the commit")
        matches = on_rig
    else:
        target = setup.resolve(commit)
        matches = [(c, r) for c, r in on_rig if c == target]
        if not matches:
            where = "to be tested" if rig is None else f"on {rig}"
            raise BisectlabError(f"{history.shas[target][:12]} is not waiting {where} "
                                 f"(waiting: {waiting_text(history, pending)})")
    if len(matches) > 1:  # one commit on several rigs: each asked its own boots
        raise BisectlabError(f"{history.shas[matches[0][0]][:12]} waits on "
                             f"{', '.join(r for _, r in matches)}: say which with --rig")
    return matches[0]


@click.command()
@_hunt_option
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(hunt_id: int | None, db_url: str | None, as_json: bool) -> None:
    """Where a manual hunt stands: candidates left, the top one, p learnt, what to test next."""
    from bisectlab.cli.hunt import pending_json, pending_lines
    from bisectlab.driver import setup_of, step
    from bisectlab.manual import AwaitingTests
    from bisectlab.replay import retrace_strategy

    with open_store(db_url, existing=True) as store:
        hunt_id = _waiting_hunt(store, hunt_id)
        setup = setup_of(store.hunt(hunt_id))
        strategy = retrace_strategy(store, hunt_id, setup)
        tests = len(store.tests(hunt_id))  # a check of BAD under way is not the strategy's yet
        try:
            step(store, hunt_id, setup=setup)
            waiting_tests: list[tuple[int, str, int]] = []
        except AwaitingTests as waiting:
            waiting_tests = waiting.tests
    h = setup.history
    belief = strategy.belief()
    top = int(belief.argmax())
    state = {"hunt": hunt_id, "candidates_left": int((belief > 1e-6).sum()),
             "top": h.shas[int(strategy.space.commits[top])], "top_mass": float(belief[top]),
             "p_learnt": getattr(getattr(strategy, "posterior", None), "p_mean", None),
             "tests": tests,
             "test_next": pending_json(h, waiting_tests),
             "boots": max((n for _, _, n in waiting_tests), default=None)}
    if as_json:
        click.echo(json.dumps(state))
        return
    click.echo(f"hunt {hunt_id}: {counted(state['tests'], 'test')}, "
               f"{counted(state['candidates_left'], 'candidate')} left; "
               f"top {state['top'][:12]} at {state['top_mass']:.3f}"
               + ("" if state["p_learnt"] is None else f", p ~ {state['p_learnt']:.3f}"))
    for line in pending_lines(h, waiting_tests):
        click.echo(line)


good = outcome_command("good")
bad = outcome_command("bad")
skip = outcome_command("skip")
old = outcome_command("old")
new = outcome_command("new")
