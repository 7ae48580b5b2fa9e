"""`bisectlab replay`: campaigns of simulated hunts, and logged hunts re-run step for step."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bisectlab.cli.base import EXIT_INTERRUPTED, EXIT_NO_VERDICT, EXIT_VERDICT
from bisectlab.cli.params import (
    MAX_ADAPTERS,
    MAX_HUNTS,
    MAX_RIGS,
    MAX_SEED,
    MAX_WORKERS,
    PathGiven,
    count,
    db_option,
    history_option,
    lab_cost_options,
    logged_in,
    open_store,
    progress_bar,
    row_id,
    sqlite_file,
    strategy_flag_options,
    text_table,
    typed_flags,
    typed_options,
)
from bisectlab.errors import BisectlabError
from bisectlab.history import DEFAULT_SCENARIO
from bisectlab.kernel import ARCHES
from bisectlab.words import counted

INTEL_LAB = {"history": DEFAULT_SCENARIO, "good": "v2.6.26", "bad": "v2.6.27-rc8"}
DEFAULT_LANES = ("git", "retry:k=10", "bayes")


def campaign_options(func: Callable) -> Callable:
    """The lab, the strategies and the run of a campaign (shared by intel-lab and campaign)."""
    options = [
        click.option("--hunts", type=count(1, MAX_HUNTS), default=200, show_default=True,
                     help="Hunts per strategy."),
        click.option("--strategy", "lanes", multiple=True, default=DEFAULT_LANES,
                     show_default=True, metavar="NAME[:key=value,...]",
                     help="Strategy with options, e.g. bayes:boots-per-install=10 (repeatable)."),
        strategy_flag_options,
        click.option("--rigs", type=count(1, MAX_RIGS), default=4, show_default=True,
                     help="Test rigs working side by side."),
        click.option("--adapters", type=count(0, MAX_ADAPTERS), default=50, show_default=True,
                     help="Adapters in the box, per hunt (a hard budget)."),
        click.option("--arch", type=click.Choice(ARCHES), default="i386",
                     show_default=True, help="Rig architecture."),
        lab_cost_options,
        click.option("--seed", type=count(0, MAX_SEED), default=0, show_default=True,
                     help="Campaign seed: hunt i of every strategy gets the same boot seed."),
        click.option("--workers", type=count(0, MAX_WORKERS), default=0, show_default=True,
                     help="Local worker processes (0 = all cores)."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Run the hunts on this Dask distributed scheduler (tcp://host:port)."),
        click.option("--plot", "plot_path", type=PathGiven(dir_okay=False),
                     default=None, help="Draw tests vs adapters and lab days to FILE.png."),
        click.option("--reclaim", is_flag=True,
                     help="Also run again the hunts other processes left running (only when "
                          "none of them is still at work on this campaign)."),
        db_option,
        click.option("--json", "as_json", is_flag=True, help="One JSON object per strategy."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group()
def replay() -> None:
    """Campaigns of simulated hunts, and logged hunts re-run step for step."""


@replay.command("intel-lab")
@campaign_options
def replay_intel_lab(**kwargs: Any) -> None:
    """Replay the Intel lab's 2008 hunt (v2.6.26 good, v2.6.27-rc8 bad) many times.

    Each strategy hunts the e1000e culprit H times in a lab of rigs and a box of adapters; the
    table gives accuracy, tests, boots, installs, adapters, aborts and lab days per strategy.
    Every hunt is logged under one campaign: `bisectlab query campaigns` and
    `bisectlab query hunts --campaign ID` slice it. Re-running the same command finishes an
    interrupted campaign; more --hunts or another --strategy extend it.
    """
    _run_campaign("intel-lab", **INTEL_LAB, **kwargs)


@replay.command("campaign")
@click.argument("good", required=False)
@click.argument("bad", required=False)
@history_option
@campaign_options
def replay_campaign(good: str | None, bad: str | None, history_ref: str, **kwargs: Any) -> None:
    """Replay hunts of any scenario or generated history (range: GOOD BAD, else its own)."""
    from bisectlab.campaign import cached_history

    h = cached_history(history_ref)
    if (good is None) != (bad is None):
        raise click.UsageError("give both GOOD and BAD, or neither")
    if good is None:
        if not h.advertised:
            raise click.UsageError(f"history {h.name} advertises no range: give GOOD and BAD")
        good, bad = h.advertised[0]
    _run_campaign(h.name, history_ref, good, bad, **kwargs)


def _run_campaign(name: str, history: str, good: str, bad: str, *, hunts: int,
                  lanes: tuple[str, ...], rigs: int, adapters: int, arch: str,
                  install_minutes: float, boot_minutes: float, swap_minutes: float, seed: int,
                  workers: int, scheduler: str | None, plot_path: Path | None, reclaim: bool,
                  db_url: str | None, as_json: bool, quiet: bool, **flags: Any) -> None:
    from bisectlab.campaign import (
        CampaignInterrupted,
        CampaignSpec,
        cached_history,
        campaign_table,
        dask_executor,
        lane_params,
        lane_rows,
        local_executor,
        run_campaign,
    )
    from bisectlab.lab import Costs
    from bisectlab.lanes import build_lanes

    parsed = build_lanes(lanes, typed_flags(flags))
    if plot_path is not None:
        from bisectlab.plots import check_plot_path

        check_plot_path(plot_path, sqlite_file(db_url))
    h = cached_history(history)
    spec = CampaignSpec(name, h.source, good, bad, tuple(parsed), hunts, seed, rigs, adapters,
                        arch, Costs(install_minutes, boot_minutes, swap_minutes))
    for lane in parsed:  # a bad range or options fail now, before the database is opened
        lane_params(spec.task(lane, 0))
    executor, queue = (dask_executor(scheduler) if scheduler is not None
                       else local_executor(workers))
    with open_store(db_url) as store:
        try:
            with progress_bar(quiet) as advance:
                run = run_campaign(spec, store, executor, queue, on_hunt=advance,
                                   reclaim=reclaim)
        except CampaignInterrupted as exc:
            interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
            click.echo(str(exc) if interrupted else f"error: {exc}", err=True)  # as a hunt says it
            sys.exit(EXIT_INTERRUPTED if interrupted else EXIT_NO_VERDICT)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        rows = store.campaign_hunts(run.campaign_id)
    table = campaign_table(spec, rows)
    if as_json:
        for line in table:
            click.echo(json.dumps({"campaign": run.campaign_id, **line}))
    else:
        click.echo(f"campaign {run.campaign_id}: {name}, {good}..{bad}, {counted(rigs, 'rig')}, "
                   f"{counted(adapters, 'adapter')} per hunt")
        click.echo(campaign_table_text(table), nl=False)
    click.echo(f"{counted(run.ran, 'hunt')} run now ({run.kept} kept from earlier runs) in "
               f"{run.wall_seconds:.1f} s: {run.hunts_per_second:.2f} hunts/s, database "
               f"{run.db_ms_per_hunt:.1f} ms per hunt; "
               + logged_in(db_url, f"bisectlab query hunts --campaign {run.campaign_id}"),
               err=True)
    if plot_path is not None:
        from bisectlab.plots import plot_campaign

        plot_campaign(f"{name}: {good}..{bad}, {counted(rigs, 'rig')}, "
                      f"{counted(adapters, 'adapter')}, "
                      f"{hunts} hunts per strategy", lane_rows(spec, rows), plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


def campaign_table_text(table: list[dict]) -> str:
    """The per-strategy summary as a text table."""
    rows = []
    for s in table:
        if not s["hunts"]:  # no finished hunt: no accuracy and no costs to show
            rows.append({"strategy": s["strategy"], "hunts": 0})
            continue
        lo, hi = s["accuracy_95"]
        rows.append({
            "strategy": s["strategy"], "hunts": s["hunts"],
            "accuracy [95%]": f"{s['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]",
            "tests": f"{s['tests_mean']:.1f} (p90 {s['tests_p90']:.0f})",
            "boots": f"{s['boots_mean']:.1f} (p90 {s['boots_p90']:.0f})",
            "installs": f"{s['installs_mean']:.1f}",
            "adapters mean/p90/max": f"{s['adapters_mean']:.1f} / {s['adapters_p90']:.0f} / "
                                     f"{s['adapters_max']:.0f}",
            "aborted": str(s["aborted"]),
            "lab days mean/p90": f"{s['lab_days_mean']:.1f} / {s['lab_days_p90']:.1f}",
        })
    columns = max((list(row) for row in rows), key=len, default=[])
    return text_table([{c: row.get(c, "-") for c in columns} for row in rows], None)


@replay.command("hunt")
@click.argument("hunt_id", type=row_id(), metavar="HUNT_ID")
@db_option
def replay_hunt(hunt_id: int, db_url: str | None) -> None:
    """Re-run logged hunt HUNT_ID and check it step for step: same tests, same boots.

    Exit 0 if identical, 1 with the first step that diverges, or for an unfinished hunt (no
    verdict to compare yet), whose logged tests it still checks.
    """
    from bisectlab.replay import replay_hunt as run_replay

    with open_store(db_url, existing=True) as store:
        lab = store.hunt(hunt_id)["params"].get("lab")
        if lab in ("rigs", "manual"):
            how = "run on real rigs" if lab == "rigs" else "typed by hand"
            raise BisectlabError(f"hunt {hunt_id} was {how}: its tests cannot be run again here "
                                 f"(bisectlab log {hunt_id} prints it as a transcript for "
                                 "bisectlab replay log)")
        report = run_replay(store, hunt_id)
    click.echo(report.describe())
    sys.exit(EXIT_VERDICT if report.identical else EXIT_NO_VERDICT)


# report -----------------------------------------------------------------------------------------


@replay.command("log")
@click.argument("transcript", type=click.File("r", encoding="utf-8"))
@db_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def replay_log(transcript: Any, db_url: str | None, as_json: bool) -> None:
    """Rebuild a hunt from a transcript (`bisectlab log`) and continue it by hand.

    The transcript's start line opens a manual hunt and each good/bad/skip line is recorded in
    turn; then bisectlab gives the verdict, or says which commit(s) to test next.
    """
    from bisectlab.cli.hunt import _run, bisect, make_setup
    from bisectlab.driver import bisect as run_bisect
    from bisectlab.driver import step
    from bisectlab.lab import Costs
    from bisectlab.manual import TERMS, AwaitingTests, Outcome
    from bisectlab.transcript import read_log

    try:
        text = transcript.read()
    except UnicodeDecodeError as exc:
        raise BisectlabError(f"cannot read transcript {transcript.name}: {exc.reason}") from None
    log = read_log(text)
    context = bisect.make_context("bisect", list(log.start), resilient_parsing=False)
    start = dict(context.params)
    for key in ("db_url", "as_json", "quiet"):
        start.pop(key, None)
    costs = Costs.from_params(start)
    for name in costs.as_params():
        del start[name]
    flags = {k: v for k, v in start.items() if k.startswith("flag_")}
    setup = make_setup(**{k: v for k, v in start.items() if not k.startswith("flag_")},
                       flags=flags, costs=costs, typed=typed_options(context))
    if not setup.manual:
        raise BisectlabError("a transcript replays as a manual hunt: its start line needs "
                             "--repo (without --run) or --manual")
    setup.prepare()  # the range checked, the history loaded: bad input fails here
    h = setup.history
    typed = [Outcome(h.resolve(commit), TERMS[verb], boots, rig or None)
             for verb, commit, boots, rig in log.tests]

    def opened(store: Any) -> int:
        """The transcript's hunt started in ``store``: its number."""
        setup.prepared = None  # each store's hunt from its first test
        try:
            run_bisect(setup, store)
        except AwaitingTests as waiting:
            return waiting.hunt_id
        raise BisectlabError("the hunt ended before its first test")

    from bisectlab.store import Store

    # a rehearsal in memory first: a transcript that does not fit writes nothing
    with Store("sqlite://") as rehearsal, contextlib.suppress(AwaitingTests):
        step(rehearsal, opened(rehearsal), typed, None, setup)
    with open_store(db_url) as store:
        hunt_id = opened(store)
        _run(lambda on_test, on_start: step(store, hunt_id, typed, None, setup), setup, db_url,
             as_json, True)
