"""Options and output shared by the commands: the database, the history, numbers that are checked
(finite, in range, sane upper bounds), the strategy flags (derived from the strategies'
declared options), tables, progress."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from bisectlab.errors import BisectlabError
from bisectlab.history import DEFAULT_SCENARIO
from bisectlab.options import Spec
from bisectlab.words import counted

MAX_RIGS = 256
MAX_ADAPTERS = 10_000
MAX_CHECK_BOOTS = 10_000  # boots of BAD before a hunt (--check-bad)
MAX_HUNTS = 1_000_000
MAX_SEED = 2**63 - 1
MAX_MINUTES = 10_000_000.0
MAX_WORKERS = 1024
MAX_TIMEOUT = 7 * 24 * 3600.0  # a week, in seconds


class Number(click.ParamType):
    """A number checked like a strategy option: finite, within its range, whole if it must be."""

    def __init__(self, low: float | None = None, high: float | None = None, *, whole: bool = False,
                 low_open: bool = False, high_open: bool = False):
        self.spec = Spec(key="value", help="", low=low, high=high, whole=whole,
                         low_open=low_open, high_open=high_open)
        self.name = "integer" if whole else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        try:
            return self.spec.parse(value, "value")
        except BisectlabError as exc:
            self.fail(str(exc).removeprefix("value "), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"{self.name.upper()} {self.spec.range_text()}"


class PathGiven(click.Path):
    """A path from the command line, as a Path. Empty text is refused: as a Path it would name
    the working directory without saying so (an unset shell variable, say)."""

    def __init__(self, *, file_okay: bool = True, dir_okay: bool = True):
        super().__init__(file_okay=file_okay, dir_okay=dir_okay, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("is empty: give a path", param, ctx)
        return super().convert(value, param, ctx)


def count(low: int = 0, high: int | None = None) -> Number:
    """A whole number from ``low`` up to ``high``."""
    return Number(low, high, whole=True)


def row_id() -> Number:
    """The id of a hunt, test or campaign row: a whole number a database integer holds."""
    return count(1, MAX_SEED)


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
        metavar="NAME|FILE",
        help="Shipped scenario name, scenario file (.toml) or history file (.npz, from import-git).",
    )(func)


def strategy_flag_options(func: Callable) -> Callable:
    """The strategies' flags, as their options declare them (--confidence, --retries, ...).

    A flag keeps the text typed (None if not typed): :func:`bisectlab.lanes.build_lanes` checks
    it with its declaration and applies it to every strategy that takes it.
    """
    from bisectlab.lanes import strategy_flags
    from bisectlab.strategies import STRATEGIES

    for flag, (spec, takers) in reversed(list(strategy_flags().items())):
        default = next(cls.Options.defaults()[name] for cls in STRATEGIES.values()
                       for name, s in cls.Options.specs().items() if s == spec)
        shown = "learn" if default is None and spec.learn else default
        bounds = f" {spec.range_text()}" if spec.range_text() else ""
        func = click.option(
            flag, "flag_" + flag.lstrip("-").replace("-", "_"), default=None,
            multiple=spec.multiple, metavar=spec.metavar or ("N" if spec.whole else "X"),
            help=f"{', '.join(takers)}: {spec.help}{bounds}"
                 + (f" [default: {shown}]" if shown is not None else ""),
        )(func)
    return func


def lab_cost_options(func: Callable) -> Callable:
    """The lab's costs in minutes: what bayes weighs its tests by (and a simulated lab charges)."""
    from bisectlab.lab import Costs

    costs, minutes = Costs(), Number(0, MAX_MINUTES)
    for flag, default, kind, what in reversed((
            ("--install-minutes", costs.install, minutes, "Building and installing a kernel."),
            ("--boot-minutes", costs.boot, Number(0, MAX_MINUTES, low_open=True), "One boot."),
            ("--swap-minutes", costs.swap, minutes, "Swapping a destroyed adapter."))):
        func = click.option(flag, type=kind, default=default, show_default=True,
                            help=what)(func)
    return func


def typed_options(ctx: click.Context) -> frozenset[str]:
    """The options the user gave (on the command line or in the environment), as against those
    left to their defaults: an option given at its default value counts too."""
    from click.core import ParameterSource

    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return frozenset(name for name in ctx.params if ctx.get_parameter_source(name) in given)


def typed_flags(params: dict[str, Any]) -> dict[str, str | None]:
    """The strategy flags among a command's parameters, by flag name (--cost-weight): the text
    typed or None. They are removed from ``params``."""
    out = {}
    for key in [k for k in params if k.startswith("flag_")]:
        value = params.pop(key)
        if isinstance(value, tuple):  # a repeatable flag: its values joined, or not typed
            value = ";".join(value) if value else None
        out["--" + key.removeprefix("flag_").replace("_", "-")] = value
    return out


def _url(db_url: str | None) -> str:
    """The database URL from --db / $BISECTLAB_DB: a URL, or a plain path meaning SQLite."""
    from bisectlab.store import default_url

    url = default_url() if db_url is None else db_url
    if db_url is None and not os.environ.get("BISECTLAB_DB", "x").strip():
        raise BisectlabError("BISECTLAB_DB is set to empty text: give it a file or URL "
                             "(or unset it for bisectlab.sqlite here)")
    if not url.strip():
        raise BisectlabError("the database is empty text: give --db a file or URL "
                             "(or leave it out for bisectlab.sqlite here)")
    if "://" in url:
        return url
    if ":" in url:
        raise BisectlabError(f"'{url[:60]}' is neither a database URL (DRIVER://...) nor a file "
                             "name (a file name with ':' in it is given as sqlite:///PATH)")
    return f"sqlite:///{url}"


def shown_url(db_url: str | None) -> str:
    """The database as shown to the user: a SQLite file's path, or the URL without password."""
    from sqlalchemy.engine import make_url

    url = make_url(_url(db_url))
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def _sqlite_url(db_url: str | None) -> Any:
    """--db parsed, if it names a SQLite database (else None, as for a URL the Store will
    refuse in one line of its own)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(_url(db_url))
    except ArgumentError:
        return None
    return url if url.get_backend_name() == "sqlite" else None


def in_memory(db_url: str | None) -> bool:
    """Whether the database lives in this process's memory (sqlite://): gone when it ends."""
    from bisectlab.store import sqlite_in_memory

    url = _sqlite_url(db_url)
    return url is not None and sqlite_in_memory(url.database, url.query)


def sqlite_file(db_url: str | None) -> Path | None:
    """The SQLite file --db names, or None (another database, one in memory, a URI): a file
    the command must not write anything else over."""
    from bisectlab.store import sqlite_file as named_file

    url = _sqlite_url(db_url)
    return None if url is None else named_file(url.database)


def db_flag(db_url: str | None) -> str:
    """The --db a command suggested to the user needs: none for the default, the URL's
    password left out (the user types it again)."""
    import shlex

    from sqlalchemy.engine import make_url

    if db_url is None:
        return ""
    given = shown_url(db_url) if "://" in db_url and make_url(db_url).password else db_url
    return f" --db {shlex.quote(given)}"


def logged_in(db_url: str | None, query: str) -> str:
    """Where results went and the ``query`` (a bisectlab command) that reads them back, with
    the --db it needs; a database in this process's memory ends with the command."""
    if in_memory(db_url):
        return "kept in memory only, gone when this command ends (--db FILE keeps it)"
    return f"logged in {shown_url(db_url)} ({query}{db_flag(db_url)})"


def open_store(db_url: str | None, existing: bool = False) -> Any:
    """The results database from --db (a URL, or a plain path meaning a SQLite file).

    Commands that only read (``existing``) refuse a database in memory, which holds nothing
    yet, and a SQLite file that is not there, rather than create an empty database under a
    mistyped name.
    """
    from bisectlab.store import Store

    if existing and in_memory(db_url):
        raise BisectlabError("a database in memory holds nothing to read: give --db the file "
                             "the hunts were logged in")
    database = sqlite_file(db_url)
    if existing and database is not None and not database.is_file():
        raise BisectlabError(f"no results database at {database} (give --db, or run a hunt first)")
    return Store(_url(db_url))


def cost_line(tests: int, boots: int, installs: int, adapters: int, lab_hours: float) -> str:
    """A hunt's cost as the verdict and the report say it."""
    return (f"{counted(tests, 'test')}, {counted(boots, 'boot')}, "
            f"{counted(installs, 'install')}, "
            f"{counted(adapters, 'adapter destroyed', 'adapters destroyed')}, "
            f"{lab_hours:.1f} lab hours")


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
    return text_table(rows, columns)


def text_table(rows: list[dict], columns: Sequence[str] | None) -> str:
    """Rows as an aligned text table (rich), '(no rows)' if there are none."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if not rows:
        return "(no rows)\n"
    cols = [c for c in (columns or rows[0].keys()) if c in rows[0]]
    table = Table(box=None, header_style="bold")
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(Text(_cell(col, row[col])) for col in cols))  # logged text, not markup
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    console.print(table)
    return console.file.getvalue()


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column.endswith("_sha") and isinstance(value, str):
        return value[:12]
    if isinstance(value, float):  # minutes and such to a tenth, a share to 4 digits
        return f"{value:.1f}" if abs(value) >= 1 else f"{value:.4g}"
    return str(value)


class progress_bar:
    """A rich progress bar on stderr (nothing when quiet); yields the advance callback."""

    def __init__(self, quiet: bool, what: str = "hunts"):
        self.quiet = quiet
        self.what = what
        self.progress: Any = None

    def __enter__(self) -> Callable[[int, int], None]:
        if self.quiet:
            return lambda done, total: None
        from rich.console import Console
        from rich.progress import Progress

        self.progress = Progress(console=Console(stderr=True), transient=True)
        self.progress.start()
        task = self.progress.add_task(self.what, total=None)

        def advance(done: int, total: int) -> None:
            self.progress.update(task, completed=done, total=total)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
