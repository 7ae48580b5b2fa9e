"""The `bisectlab` command line: a thin click layer over the library.

Errors are one line on stderr and exit 2; `bisect` exits 0 with a verdict, 1 without one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from bisectlab import kernel
from bisectlab.errors import BisectlabError
from bisectlab.history import DEFAULT_SCENARIO, History, builtin_scenarios, load_history
from bisectlab.store import Store, default_url
from bisectlab.strategies import STRATEGIES

EXIT_VERDICT, EXIT_NO_VERDICT, EXIT_USAGE = 0, 1, 2
GIT_BISECT_ABORT = 255  # a run script's exit status that stops `git bisect run`
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class BisectlabGroup(click.Group):
    """A click group that turns any error into one line on stderr and exit 2."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NO_ARGS_IS_HELP as exc:  # `bisectlab` or `bisectlab replay` alone: the help
            click.echo(exc.format_message())
            sys.exit(0)
        except click.ClickException as exc:
            _fail(exc.format_message())
        except BisectlabError as exc:
            _fail(str(exc))
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def db_option(func: Callable) -> Callable:
    """--db URL, defaulting to $BISECTLAB_DB or bisectlab.sqlite in the working directory."""
    return click.option(
        "--db", "db_url", envvar="BISECTLAB_DB", default=None, metavar="URL",
        help="SQLAlchemy URL or SQLite file of the results database "
             "[env BISECTLAB_DB; default: bisectlab.sqlite here].",
    )(func)


def history_option(func: Callable) -> Callable:
    """--history NAME|FILE: a shipped scenario or a scenario file."""
    return click.option(
        "--history", "history_ref", default=DEFAULT_SCENARIO, show_default=True,
        metavar="NAME|FILE", help="Shipped scenario name or scenario file (TOML).",
    )(func)


def _url(db_url: str | None) -> str:
    url = db_url or default_url()
    return url if "://" in url else f"sqlite:///{url}"


def shown_url(db_url: str | None) -> str:
    """The database as shown to the user: a SQLite file's path, or the URL without password."""
    from sqlalchemy.engine import make_url

    url = make_url(_url(db_url))
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def open_store(db_url: str | None, existing: bool = False) -> Store:
    """The results database from --db (a URL, or a plain path meaning a SQLite file).

    Commands that only read (``existing``) refuse a SQLite file that is not there, rather than
    create an empty database under a mistyped name.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(_url(db_url)).database if _url(db_url).startswith("sqlite") else None
    except ArgumentError:
        database = None  # the Store says what is wrong with the URL, in one line
    if (existing and database and database != ":memory:" and not database.startswith("file:")
            and not Path(database).is_file()):
        raise BisectlabError(f"no results database at {database} (give --db, or run a hunt first)")
    return Store(_url(db_url))


@click.group(cls=BisectlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bisectlab")
def cli() -> None:
    """bisectlab: find the commit behind an intermittent bug that destroys hardware.

    Simulated hunts on kernel-shaped histories (the 2008 e1000e NVM corruption ships with it),
    every test, boot and adapter logged in SQLite.
    """


# bisect -----------------------------------------------------------------------------------------

def false_positive_type(text: str) -> float | None:
    """--false-positive: a rate in [0, 1), or 'learn'."""
    if text == "learn":
        return None
    try:
        value = float(text)
    except ValueError:
        raise click.BadParameter(f"'{text}' is neither a rate nor 'learn'") from None
    if not 0 <= value < 1:
        raise click.BadParameter(f"{value} is not in [0, 1)")
    return value


def strategy_options(func: Callable) -> Callable:
    """Options of the strategies, shared by bisect and bench."""
    options = [
        click.option("--retries", type=click.IntRange(min=1), default=5, show_default=True,
                     help="retry: boots per test."),
        click.option("--confidence", type=click.FloatRange(0, 1, min_open=True, max_open=True),
                     default=0.99, show_default=True, help="bayes: stop at this posterior."),
        click.option("--cost-weight", type=click.FloatRange(min=0), default=0.0,
                     show_default=True, help="bayes: price of an adapter, in tests (lambda)."),
        click.option("--boots-per-install", type=click.IntRange(min=1), default=1,
                     show_default=True, help="bayes: boots per install, stop at first failure."),
        click.option("--assume-false-positive", "assume_fp", default="0", show_default=True,
                     metavar="F|learn",
                     help="bayes: false-positive rate to assume, or 'learn' it (do, if adapters "
                          "can die of other causes)."),
        click.option("--assume-detect", type=click.FloatRange(0, 1, min_open=True),
                     default=None, help="bayes: fix p instead of learning it (not advised)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# a flag -> (the strategy option it sets, its name in NAME:key=value, the flag as typed)
FLAG_OPTIONS = {
    "retries": ("retries", "k", "--retries"),
    "confidence": ("confidence", "confidence", "--confidence"),
    "cost_weight": ("cost_weight", "cost-weight", "--cost-weight"),
    "boots_per_install": ("boots_per_install", "boots-per-install", "--boots-per-install"),
    "assume_fp": ("false_positive", "false-positive", "--assume-false-positive"),
    "assume_detect": ("detect", "detect", "--assume-detect"),
}


def options_for(strategy: str, **flags: Any) -> dict:
    """The constructor options of one strategy from the command-line flags it takes."""
    from bisectlab.strategies import ACCEPTS

    options = {key: flags[flag] for flag, (key, _, _) in FLAG_OPTIONS.items()
               if key in ACCEPTS[strategy]}
    if "false_positive" in options:
        try:
            options["false_positive"] = false_positive_type(options["false_positive"])
        except click.BadParameter as exc:
            raise click.BadParameter(exc.message, param_hint="'--assume-false-positive'") from None
    return options


def strategy_lanes(specs: Sequence[str], flags: dict[str, Any]) -> list[tuple[str, str, dict]]:
    """(label, strategy, options) per NAME[:key=value,...]: the text's options over the flags.

    A flag typed that none of the strategies takes is an error, not silently ignored; the label
    names every option a typed flag added, so two lanes never share a label.
    """
    from click.core import ParameterSource

    from bisectlab.strategies import ACCEPTS, parse_strategy

    ctx = click.get_current_context()
    typed = [f for f in FLAG_OPTIONS
             if ctx.get_parameter_source(f) not in (ParameterSource.DEFAULT, None)]
    parsed = [(text, *parse_strategy(text)) for text in specs]
    names = sorted({name for _, name, _ in parsed})
    for flag in typed:
        key, _, cli_name = FLAG_OPTIONS[flag]
        if not any(key in ACCEPTS[name] for name in names):
            raise click.UsageError(f"{cli_name} is not an option of {' or '.join(names)}")
        if not any(key in ACCEPTS[name] and key not in options for _, name, options in parsed):
            raise click.UsageError(f"{cli_name} is set by every strategy that takes it "
                                   f"({', '.join(t for t, n, _ in parsed if key in ACCEPTS[n])})")
    lanes, seen = [], set()
    for text, name, options in parsed:
        items = [i for i in text.partition(":")[2].split(",") if i]
        items += [f"{FLAG_OPTIONS[f][1]}={flags[f]}" for f in typed
                  if FLAG_OPTIONS[f][0] in ACCEPTS[name] and FLAG_OPTIONS[f][0] not in options]
        merged = {**options_for(name, **flags), **options}
        key = (name, json.dumps({**_defaults(name), **merged}, sort_keys=True))
        if key in seen:
            raise click.UsageError(f"the same strategy is asked for twice ({text})")
        seen.add(key)
        lanes.append((name + (":" + ",".join(items) if items else ""), name, merged))
    return lanes


def _defaults(strategy: str) -> dict[str, Any]:
    """A strategy's constructor defaults: lanes equal but for spelling a default are one lane."""
    import inspect

    return {k: p.default for k, p in inspect.signature(STRATEGIES[strategy]).parameters.items()
            if p.default is not inspect.Parameter.empty}


@cli.command()
@click.argument("good")
@click.argument("bad")
@history_option
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default="bayes",
              show_default=True, help="Bisection strategy.")
@strategy_options
@click.option("--adapters", type=click.IntRange(min=0), default=50, show_default=True,
              help="Adapters in the box (the rigs are fitted from it): a hard budget.")
@click.option("--rigs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Test rigs working side by side.")
@click.option("--arch", type=click.Choice(kernel.ARCHES), default="i386", show_default=True,
              help="Rig architecture.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None,
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

    history = load_history(history_ref)
    ((_, _, options),) = strategy_lanes([strategy], flags)
    setup = HuntSetup(history, good, bad, strategy=strategy, options=options, seed=seed,
                      rigs=rigs, arch=arch, adapters=adapters)
    setup.prepare()
    progress = None if quiet else _progress_printer(history)
    with open_store(db_url) as store:
        report = run_bisect(setup, store, on_test=progress)
    location = shown_url(db_url)
    if as_json:
        click.echo(json.dumps(report.as_dict(), sort_keys=True))
    else:
        _print_verdict(history, report, setup, location)
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
        left = strategy.progress()
        if left and strategy.verdict() is None:
            click.echo(f"      Bisecting: {left}", err=True)

    return show


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
         f"(bisectlab query tests --hunt {report.hunt_id})")


def _seen(item: dict) -> str:
    return f"{item['boots']} boots / {item['failures']} failures"


# boot -------------------------------------------------------------------------------------------

@cli.command()
@click.argument("commit")
@history_option
@click.option("--arch", type=click.Choice(kernel.ARCHES), default="i386", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Hunt seed the boot seed derives from.")
@click.option("--attempt", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which boot of this commit (each attempt is a different boot).")
@click.option("--exit-status", is_flag=True,
              help="Exit 1 if the adapter was destroyed, else 0, and 255 on an error (which "
                   "stops it): a `git bisect run` script.")
def boot(commit: str, history_ref: str, arch: str, seed: int, attempt: int,
         exit_status: bool) -> None:
    """Show one simulated boot of COMMIT (tag or sha prefix): its log and outcome."""
    try:
        bricked = _show_boot(commit, history_ref, arch, seed, attempt)
    except BisectlabError as exc:
        if not exit_status:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(GIT_BISECT_ABORT)
    if exit_status and bricked:
        sys.exit(EXIT_NO_VERDICT)


def _show_boot(commit: str, history_ref: str, arch: str, seed: int, attempt: int) -> bool:
    """Print one boot's log and outcome; whether it destroyed the adapter."""
    history = load_history(history_ref)
    c = history.resolve(commit)
    if history.bug is None:
        raise BisectlabError(f"history {history.name} has no bug to simulate")
    boot_seed = kernel.boot_seed(seed, history.shas[c], attempt)
    out = history.bug.boot(history, c, arch, boot_seed, explain=True)
    click.echo(f"# {history.describe(c)} on {arch}, boot seed {boot_seed}")
    features = history.features_at(c)
    on = ", ".join(sorted(f for f, v in features.items() if v)) or "none"
    click.echo(f"# features: {on}")
    for line in out.log:
        click.echo(line)
    state = ("ADAPTER DESTROYED (NVM corrupted)" if out.bricked
             else "stray write masked by the NVM lockdown" if out.masked
             else "boot ok")
    click.echo(f"# outcome: {state}")
    return out.bricked


# query ------------------------------------------------------------------------------------------

HUNT_COLUMNS = ("id", "history", "good", "bad", "strategy", "status", "culprit_sha", "correct",
                "confidence", "tests", "boots", "installs", "adapters", "lab_minutes")
TEST_COLUMNS = ("id", "hunt_id", "seq", "commit_sha", "commit_subject", "rig", "boots",
                "failed", "adapters_destroyed", "lab_minutes")


CAMPAIGN_COLUMNS = ("id", "name", "created_at", "hunts", "strategies", "rigs", "adapters")


@cli.command()
@click.argument("what", type=click.Choice(["hunts", "tests", "adapters", "boots", "campaigns"]))
@click.option("--hunt", "hunt_id", type=int, default=None, help="Only this hunt.")
@click.option("--test", "test_id", type=int, default=None, help="Boots of this test.")
@click.option("--campaign", "campaign_id", type=int, default=None,
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
            raise BisectlabError(f"no campaign {campaign_id} in DB")
        if what == "campaigns":
            _query_campaigns(store, campaign_id, fmt)
            return
        rows = _query_rows(store, what, hunt_id, test_id, campaign_id)
    columns = {"hunts": HUNT_COLUMNS, "tests": TEST_COLUMNS}.get(what)
    click.echo(format_rows(rows, fmt, columns), nl=False)


def _query_campaigns(store: Store, campaign_id: int | None, fmt: str) -> None:
    """The campaigns, or one campaign's summary per strategy (as `replay` printed it)."""
    from bisectlab.campaign import campaign_table, spec_from_dict

    campaigns = store.campaigns()
    if campaign_id is None:
        rows = [{**{k: c[k] for k in ("id", "name", "created_at", "hunts")},
                 "strategies": " ".join(ln["label"] for ln in c["spec"]["lanes"]),
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


def _query_rows(store: Store, what: str, hunt_id: int | None, test_id: int | None,
                campaign_id: int | None) -> list[dict]:
    if what == "hunts":
        rows = store.hunts() if campaign_id is None else store.campaign_hunts(campaign_id)
        return [r for r in rows if hunt_id is None or r["id"] == hunt_id]
    if what == "tests":
        return store.tests(hunt_id)
    if what == "adapters":
        return store.adapters(hunt_id)
    if test_id is not None:
        return store.boots(test_id)
    tests = store.tests(hunt_id)
    return [b for t in tests for b in store.boots(t["id"])]


def format_rows(rows: list[dict], fmt: str, columns: Sequence[str] | None = None) -> str:
    """Rows as a table (the listed columns), or CSV / JSON (every column)."""
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        if rows:
            writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: json.dumps(v, default=str) if isinstance(v, dict | list) else v
                              for k, v in row.items()} for row in rows)
        return out.getvalue()
    return _table(rows, columns)


def _table(rows: list[dict], columns: Sequence[str] | None) -> str:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        return "(no rows)\n"
    cols = [c for c in (columns or rows[0].keys()) if c in rows[0]]
    table = Table(box=None, header_style="bold")
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(col, row[col]) for col in cols))
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    console.print(table)
    return console.file.getvalue()


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column.endswith("_sha") and isinstance(value, str):
        return value[:12]
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) >= 1000 else f"{value:.4g}"
    return str(value)


# history ----------------------------------------------------------------------------------------

@cli.group()
def history() -> None:
    """Inspect, generate and export commit histories."""


@history.command("list")
def history_list() -> None:
    """List the scenarios that ship with bisectlab."""
    for name in builtin_scenarios():
        click.echo(name)


@history.command("show")
@click.argument("name", default=DEFAULT_SCENARIO)
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def history_show(name: str, as_json: bool) -> None:
    """Summarise a history: commits, merges, tags, features, ranges and their true culprits."""
    from bisectlab.summary import summarise

    summary = summarise(load_history(name))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{summary['name']}: {summary['description']}".rstrip(": "))
    click.echo(f"  {summary['commits']} commits ({summary['merges']} merges), "
               f"bug model: {summary['bug'] or 'none'}")
    click.echo("  tags:")
    for tag in summary["tags"]:
        click.echo(f"    {tag['name']:<16} {tag['sha'][:12]} {tag['subject']}")
    click.echo("  feature toggles:")
    for t in summary["toggles"]:
        flips = ", ".join(f"{k}={'on' if v else 'off'}" for k, v in t["toggles"].items())
        click.echo(f"    {t['sha'][:12]} {flips:<40} {t['subject']}")
    click.echo("  advertised ranges:")
    for r in summary["ranges"]:
        click.echo(f"    {r['good']}..{r['bad']}: {r['candidates']} candidates, "
                   f"first bad {r['culprit'][:12]} {r['culprit_subject']}")


@history.command("log")
@click.argument("name", default=DEFAULT_SCENARIO)
@click.option("--graph", is_flag=True, help="Draw the DAG beside the commits.")
@click.option("-n", "limit", type=click.IntRange(min=1), default=20, show_default=True,
              help="Newest N commits.")
def history_log(name: str, graph: bool, limit: int) -> None:
    """The newest commits, newest first (like git log --oneline)."""
    from bisectlab.summary import log_lines

    for line in log_lines(load_history(name), limit, graph):
        click.echo(line)


@history.command("generate")
@click.option("--commits", type=click.IntRange(min=12), required=True, help="Size of the DAG.")
@click.option("--seed", type=click.IntRange(min=0), required=True)
@click.option("--name", default=None, help="History name (default kernel-N-sS).")
@click.option("--bug", type=click.Choice(["none", "rate"]), default="none", show_default=True,
              help="Plant an abstract bug introduced by one (seeded) commit.")
@click.option("--detect", type=click.FloatRange(0, 1, min_open=True), default=1.0,
              show_default=True, help="Per-boot detection rate p of the rate bug.")
@click.option("--false-positive", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Per-boot false-positive rate f of the rate bug.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the scenario file here (default: stdout).")
@click.option("--force", is_flag=True,
              help="Replace an existing, different scenario file (hunts logged with it can no "
                   "longer be replayed).")
def history_generate(commits: int, seed: int, name: str | None, bug: str, detect: float,
                     false_positive: float, output: Path | None, force: bool) -> None:
    """Generate a kernel-shaped history and write it as a scenario file (a TOML recipe)."""
    from bisectlab.summary import generated_recipe

    text = generated_recipe(commits, seed, name, bug, detect, false_positive)
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force and _contents(output) != text:
        raise BisectlabError(f"{output} exists and differs (hunts logged with it replay from it); "
                             "pass --force to replace it")
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BisectlabError(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote {output}", err=True)


def _contents(path: Path) -> str | None:
    """A text file's contents, or None if it cannot be read as text."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@history.command("export-git")
@click.argument("name")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def history_export_git(name: str, directory: Path) -> None:
    """Write history NAME as a real git repository in DIRECTORY (same DAG, subjects, tags)."""
    from bisectlab.gitexport import export_git

    h = load_history(name)
    export_git(h, directory)
    click.echo(f"exported {len(h)} commits and {len(h.tags)} tags to {directory}")


# bench ------------------------------------------------------------------------------------------

@cli.command()
@click.option("--commits", "commits", type=click.IntRange(min=12), multiple=True,
              default=(1000,), show_default=True, help="History size N (repeatable).")
@click.option("--detect", "detects", type=click.FloatRange(0, 1, min_open=True), multiple=True,
              default=(0.5,), show_default=True, help="Per-boot detection rate p (repeatable).")
@click.option("--false-positive", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Per-boot false-positive rate f of the simulated lab.")
@click.option("--correlation", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True, help="Correlated boots: p(1 +- r) in hot and cold spells.")
@click.option("--hunts", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--strategy", "strategies", multiple=True, default=("bayes",), show_default=True,
              metavar="NAME[:key=value,...]",
              help="Strategy with options, e.g. retry:k=10 or bayes:cost-weight=5 (repeatable).")
@strategy_options
@click.option("--adapters", type=click.IntRange(min=0), default=None,
              help="Adapters per hunt (default: unlimited).")
@click.option("--rigs", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the history and of every hunt's culprit and boots.")
@click.option("--history", "history_ref", default=None, metavar="FILE",
              help="Scenario file to use instead of a generated history.")
@click.option("--workers", type=click.IntRange(min=0), default=1, show_default=True,
              help="Worker processes (0 = all cores).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per configuration.")
def bench(commits: tuple[int, ...], detects: tuple[float, ...], false_positive: float,
          correlation: float, hunts: int, strategies: tuple[str, ...], adapters: int | None,
          rigs: int, seed: int, history_ref: str | None, workers: int, as_json: bool,
          **flags: Any) -> None:
    """Run many simulated hunts per configuration; print accuracy, costs and the bound ratio."""
    from bisectlab.bench import BenchConfig, run_bench, summarise

    specs = strategy_lanes(strategies, flags)
    if history_ref is not None:
        load_history(history_ref)
    for spec, name, options in specs:
        for n in commits:
            for p in detects:
                config = BenchConfig(
                    strategy=name, options=tuple(sorted(options.items())), commits=n, detect=p,
                    false_positive=false_positive, correlation=correlation, hunts=hunts,
                    seed=seed, history=history_ref, adapters=adapters, rigs=rigs, name=spec)
                summary = summarise(config, run_bench(config, workers))
                click.echo(json.dumps(summary) if as_json else _bench_line(summary))


def _bench_line(s: dict) -> str:
    lo, hi = s["accuracy_95"]
    return (f"{s['label']:<34} N={s['candidates']:<6} p={s['p']:<5g} hunts={s['hunts']:<5} "
            f"acc={s['accuracy']:.3f} [{lo:.3f},{hi:.3f}]  tests={s['tests_mean']:.1f} "
            f"(p90 {s['tests_p90']:.0f}, max {s['tests_max']:.0f})  "
            f"boots={s['boots_mean']:.1f} (p90 {s['boots_p90']:.0f})  "
            f"installs={s['installs_mean']:.1f}  rounds={s['rounds_mean']:.1f}  "
            f"adapters={s['adapters_mean']:.2f} (p90 {s['adapters_p90']:.0f}, "
            f"max {s['adapters_max']:.0f})  lab_h={s['lab_hours_mean']:.1f}  "
            f"bound={s['lower_bound_boots']:.1f}  boots/bound={s['boots_over_bound']:.2f}"
            + (f"  rounds/(bound/{s['rigs']})={s['rounds_over_bound']:.2f}" if s["rigs"] > 1 else ""))


# replay -----------------------------------------------------------------------------------------

INTEL_LAB = {"history": DEFAULT_SCENARIO, "good": "v2.6.26", "bad": "v2.6.27-rc8"}
DEFAULT_LANES = ("git", "retry:k=10", "bayes")


class Minutes(click.ParamType):
    """Lab minutes: a finite number, 0 or more."""

    name = "minutes"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number of minutes", param, ctx)
        if not math.isfinite(number) or number < 0:
            self.fail(f"{value!r} is not a finite number of minutes, 0 or more", param, ctx)
        return number


MINUTES = Minutes()


def campaign_options(func: Callable) -> Callable:
    """The lab, the strategies and the run of a campaign (shared by intel-lab and campaign)."""
    from bisectlab.lab import Costs

    costs = Costs()
    options = [
        click.option("--hunts", type=click.IntRange(min=1), default=200, show_default=True,
                     help="Hunts per strategy."),
        click.option("--strategy", "lanes", multiple=True, default=DEFAULT_LANES,
                     show_default=True, metavar="NAME[:key=value,...]",
                     help="Strategy with options, e.g. bayes:boots-per-install=10 (repeatable)."),
        strategy_options,
        click.option("--rigs", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Test rigs working side by side."),
        click.option("--adapters", type=click.IntRange(min=0), default=50, show_default=True,
                     help="Adapters in the box, per hunt (a hard budget)."),
        click.option("--arch", type=click.Choice(kernel.ARCHES), default="i386",
                     show_default=True, help="Rig architecture."),
        click.option("--install-minutes", type=MINUTES, default=costs.install,
                     show_default=True, help="Building and installing a kernel."),
        click.option("--boot-minutes", type=MINUTES, default=costs.boot,
                     show_default=True, help="One boot."),
        click.option("--swap-minutes", type=MINUTES, default=costs.swap,
                     show_default=True, help="Swapping a destroyed adapter."),
        click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Campaign seed: hunt i of every strategy gets the same boot seed."),
        click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Local worker processes (0 = all cores)."),
        click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="Run the hunts on this Dask distributed scheduler (tcp://host:port)."),
        click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
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


@cli.group()
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
        Lane,
        cached_history,
        campaign_table,
        dask_executor,
        lane_params,
        lane_rows,
        local_executor,
        run_campaign,
    )
    from bisectlab.lab import Costs

    parsed = [Lane(label, strategy, tuple(sorted(options.items())))
              for label, strategy, options in strategy_lanes(lanes, flags)]
    if plot_path is not None:
        from bisectlab.plots import check_plot_path

        check_plot_path(plot_path)
    h = cached_history(history)
    spec = CampaignSpec(name, h.source, good, bad, tuple(parsed), hunts, seed, rigs, adapters,
                        arch, Costs(install_minutes, boot_minutes, swap_minutes))
    for lane in parsed:  # a bad range or options fail now, before the database is opened
        lane_params(spec.task(lane, 0))
    executor, queue = dask_executor(scheduler) if scheduler else local_executor(workers)
    with open_store(db_url) as store:
        try:
            with _progress_bar(quiet) as advance:
                run = run_campaign(spec, store, executor, queue, on_hunt=advance,
                                   reclaim=reclaim)
        except CampaignInterrupted as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(130 if isinstance(exc.__cause__, KeyboardInterrupt) else EXIT_NO_VERDICT)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
        rows = store.campaign_hunts(run.campaign_id)
    table = campaign_table(spec, rows)
    if as_json:
        for line in table:
            click.echo(json.dumps({"campaign": run.campaign_id, **line}))
    else:
        click.echo(f"campaign {run.campaign_id}: {name}, {good}..{bad}, {rigs} rigs, "
                   f"{adapters} adapters per hunt")
        click.echo(campaign_table_text(table), nl=False)
    click.echo(f"{run.ran} hunts run now ({run.kept} kept from earlier runs) in "
               f"{run.wall_seconds:.1f} s: {run.hunts_per_second:.2f} hunts/s, database writes "
               f"{run.db_share:.1%} of the time; logged in {shown_url(db_url)} "
               f"(bisectlab query hunts --campaign {run.campaign_id})", err=True)
    if plot_path is not None:
        from bisectlab.plots import plot_campaign

        plot_campaign(f"{name}: {good}..{bad}, {rigs} rigs, {adapters} adapters, "
                      f"{hunts} hunts per strategy", lane_rows(spec, rows), plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


class _progress_bar:
    """A rich progress bar on stderr (nothing with --quiet); yields the advance callback."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.progress: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        if self.quiet:
            return lambda done, total: None
        from rich.console import Console
        from rich.progress import Progress

        self.progress = Progress(console=Console(stderr=True), transient=True)
        self.progress.start()
        task = self.progress.add_task("hunts", total=None)

        def advance(done: int, total: int) -> None:
            self.progress.update(task, completed=done, total=total)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def campaign_table_text(table: list[dict]) -> str:
    """The per-strategy summary as a text table."""
    rows = []
    for s in table:
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
    return _table(rows, None)


@replay.command("hunt")
@click.argument("hunt_id", type=int)
@db_option
def replay_hunt(hunt_id: int, db_url: str | None) -> None:
    """Re-run logged hunt HUNT_ID and check it step for step: same tests, same boots.

    Exit 0 if identical, 1 with the first step that diverges.
    """
    from bisectlab.replay import replay_hunt as run_replay

    with open_store(db_url, existing=True) as store:
        report = run_replay(store, hunt_id)
    click.echo(report.describe())
    sys.exit(EXIT_VERDICT if report.identical else EXIT_NO_VERDICT)


# report -----------------------------------------------------------------------------------------

@cli.command()
@click.argument("hunt_id", type=int)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Draw the hunt to FILE.png: posterior after each test, "
                                 "tests, adapters.")
@db_option
def report(hunt_id: int, plot_path: Path | None, db_url: str | None) -> None:
    """Summarise logged hunt HUNT_ID; with --plot, draw how its posterior narrowed."""
    with open_store(db_url, existing=True) as store:
        hunt = store.hunt(hunt_id)
        if plot_path is not None:
            from bisectlab.plots import check_plot_path, plot_hunt
            from bisectlab.replay import retrace

            check_plot_path(plot_path)
            trace = retrace(store, hunt_id)
    verdict = hunt["culprit_sha"][:12] if hunt["culprit_sha"] else "none"
    click.echo(f"hunt {hunt_id}: {hunt['history']} {hunt['good']}..{hunt['bad']}, "
               f"{hunt['strategy']}, seed {hunt['seed']}: {hunt['status']}, culprit {verdict}"
               + ("" if hunt["correct"] is None else
                  f" ({'correct' if hunt['correct'] else 'WRONG'})"))
    click.echo(f"  {hunt['tests']} tests, {hunt['boots']} boots, {hunt['installs']} installs, "
               f"{hunt['adapters']} adapters destroyed, {hunt['lab_minutes'] / 60:.1f} lab hours")
    if plot_path is not None:
        conf = "" if hunt["confidence"] is None else f", confidence {hunt['confidence']:.3f}"
        plot_hunt(f"hunt {hunt_id}: {hunt['strategy']} on {hunt['history']} "
                  f"{hunt['good']}..{hunt['bad']}: {hunt['status']}{conf}", trace, plot_path)
        click.echo(f"plot written to {plot_path}", err=True)


# perf -------------------------------------------------------------------------------------------

@cli.command()
@click.option("--quick", is_flag=True, help="Smaller samples (for a smoke run).")
@click.option("--campaign", is_flag=True,
              help="Campaign throughput instead: hunts/s with 1 and 2 workers, database share.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def perf(quick: bool, campaign: bool, as_json: bool) -> None:
    """Benchmark: boots per second, history generation and decision times (or --campaign)."""
    from bisectlab.perf import campaign_throughput, format_campaign, format_report, run_perf

    if campaign:
        report = campaign_throughput(hunts=20 if quick else 150, rounds=1 if quick else 3)
        click.echo(json.dumps(report, indent=2) if as_json else format_campaign(report))
        return
    report = run_perf(quick=quick)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bisectlab")
