"""`bisectlab query` and `bisectlab report`: the results database read back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bisectlab.cli.params import (
    PathGiven,
    cost_line,
    db_option,
    format_rows,
    open_store,
    row_id,
    sqlite_file,
)
from bisectlab.cli.replay import campaign_table_text
from bisectlab.errors import BisectlabError

HUNT_COLUMNS = ("id", "history", "good", "bad", "strategy", "options", "status", "culprit_sha",
                "correct", "confidence", "tests", "boots", "installs", "adapters", "lab_minutes")
TEST_COLUMNS = ("id", "hunt_id", "seq", "commit_sha", "commit_subject", "rig", "boots",
                "failed", "installed", "skipped", "adapters_destroyed", "lab_minutes", "note")


CAMPAIGN_COLUMNS = ("id", "name", "created_at", "hunts", "strategies", "rigs", "adapters")


@click.command()
@click.argument("what", type=click.Choice(["hunts", "tests", "adapters", "boots", "campaigns"]))
@click.option("--hunt", "hunt_id", type=row_id(), default=None, help="Only this hunt.")
@click.option("--test", "test_id", type=row_id(), default=None, help="Boots of this test.")
@click.option("--campaign", "campaign_id", type=row_id(), default=None,
              help="Only this campaign's hunts; with 'campaigns', its table per strategy.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@db_option
def query(what: str, hunt_id: int | None, test_id: int | None, campaign_id: int | None,
          fmt: str, db_url: str | None) -> None:
    """Show hunts, tests, adapters, boots or campaigns from the results database."""
    if campaign_id is not None and what not in ("hunts", "campaigns"):
        raise click.UsageError("--campaign goes with 'hunts' or 'campaigns'")
    if test_id is not None and what != "boots":
        raise click.UsageError("--test goes with 'boots'")
    if hunt_id is not None and what == "campaigns":
        raise click.UsageError("--hunt does not go with 'campaigns' (try: query hunts --hunt ID)")
    with open_store(db_url, existing=True) as store:
        if hunt_id is not None:
            store.hunt(hunt_id)
        if campaign_id is not None and campaign_id not in {c["id"] for c in store.campaigns()}:
            raise BisectlabError(f"no campaign {campaign_id} in {store.where}")
        if what == "campaigns":
            _query_campaigns(store, campaign_id, fmt)
            return
        rows = _query_rows(store, what, hunt_id, test_id, campaign_id)
    columns = {"hunts": HUNT_COLUMNS, "tests": TEST_COLUMNS}.get(what)
    click.echo(format_rows(rows, fmt, columns), nl=False)


def _query_campaigns(store: Any, campaign_id: int | None, fmt: str) -> None:
    """The campaigns, or one campaign's summary per strategy (as `replay` printed it)."""
    from bisectlab.campaign import campaign_table, spec_from_dict

    campaigns = store.campaigns()
    if campaign_id is None:
        rows = [{**{k: c[k] for k in ("id", "name", "created_at", "hunts")},
                 "strategies": " ".join(ln.label for ln in spec_from_dict(
                     {**c["spec"], "hunts": c["hunts"]}).lanes),
                 "rigs": c["spec"]["rigs"], "adapters": c["spec"]["adapters"]}
                for c in campaigns]
        click.echo(format_rows(rows, fmt, CAMPAIGN_COLUMNS), nl=False)
        return
    found = [c for c in campaigns if c["id"] == campaign_id]
    spec = spec_from_dict({**found[0]["spec"], "hunts": found[0]["hunts"]})
    table = campaign_table(spec, store.campaign_hunts(campaign_id))
    if fmt == "table":
        click.echo(campaign_table_text(table), nl=False)
    else:
        click.echo(format_rows(table, fmt), nl=False)


def _query_rows(store: Any, what: str, hunt_id: int | None, test_id: int | None,
                campaign_id: int | None) -> list[dict]:
    if what == "hunts":
        from bisectlab.lanes import logged_options
        from bisectlab.store import hunt_state

        rows = store.hunts() if campaign_id is None else store.campaign_hunts(campaign_id)
        return [{**r, "options": logged_options(r["strategy"],
                                                r["params"].get("strategy_options")),
                 "status": _shown_state(r, hunt_state(r))}
                for r in rows if hunt_id is None or r["id"] == hunt_id]
    if what == "tests":
        return store.tests(hunt_id)
    if what == "adapters":
        return store.adapters(hunt_id)
    if test_id is not None:
        if hunt_id is not None and test_id not in {t["id"] for t in store.tests(hunt_id)}:
            raise BisectlabError(f"test {test_id} is not one of hunt {hunt_id}'s (its tests: "
                                 f"bisectlab query tests --hunt {hunt_id})")
        return store.boots(test_id)
    tests = store.tests(hunt_id)
    return [b for t in tests for b in store.boots(t["id"])]


def _shown_state(hunt: dict[str, Any], state: str) -> str:
    """A manual hunt under way has no process: it waits for its engineer's outcomes."""
    manual = hunt["params"].get("lab") == "manual"
    return "waiting" if manual and state == "running" else state


@click.command()
@click.argument("hunt_id", type=row_id(), metavar="HUNT_ID")
@click.option("--plot", "plot_path", type=PathGiven(dir_okay=False),
              default=None, help="Draw the hunt to FILE.png: posterior after each test, "
                                 "tests, adapters.")
@db_option
def report(hunt_id: int, plot_path: Path | None, db_url: str | None) -> None:
    """Summarise logged hunt HUNT_ID; with --plot, draw how its posterior narrowed."""
    if plot_path is not None:
        from bisectlab.plots import check_plot_path, plot_hunt
        from bisectlab.replay import retrace

        check_plot_path(plot_path, sqlite_file(db_url))
    with open_store(db_url, existing=True) as store:
        hunt = store.hunt(hunt_id)
        if plot_path is not None:
            trace = retrace(store, hunt_id)
    verdict = hunt["culprit_sha"][:12] if hunt["culprit_sha"] else "none"
    click.echo(f"hunt {hunt_id}: {hunt['history']} {hunt['good']}..{hunt['bad']}, "
               f"{hunt['strategy']}, seed {hunt['seed']}: {hunt['status']}, culprit {verdict}"
               + ("" if hunt["correct"] is None else
                  f" ({'correct' if hunt['correct'] else 'WRONG'})"))
    click.echo("  " + cost_line(hunt["tests"], hunt["boots"], hunt["installs"], hunt["adapters"],
                                hunt["lab_minutes"] / 60))
    if plot_path is not None:
        conf = "" if hunt["confidence"] is None else f", confidence {hunt['confidence']:.3f}"
        plot_hunt(f"hunt {hunt_id}: {hunt['strategy']} on {hunt['history']} "
                  f"{hunt['good']}..{hunt['bad']}: {hunt['status']}{conf}", trace, plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


# perf -------------------------------------------------------------------------------------------
