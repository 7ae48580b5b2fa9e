"""The `bisectlab` click group: commands load on first use, any error is one line and exit 2.

Each command lives in a module of this package and is imported only when it runs (or when help
lists them), so `bisectlab boot`, which `git bisect run` calls once per step, pays for no more
than it needs.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Sequence
from typing import Any

import click

from bisectlab.errors import BisectlabError, clipped

COMMANDS = {  # name -> module of this package and the click command in it
    "bisect": ("hunt", "bisect"),
    "boot": ("boot", "boot"),
    "bench": ("bench", "bench"),
    "history": ("history", "history"),
    "perf": ("bench", "perf"),
    "query": ("query", "query"),
    "replay": ("replay", "replay"),
    "report": ("query", "report"),
    "resume": ("hunt", "resume"),
    "good": ("manual", "good"),
    "bad": ("manual", "bad"),
    "skip": ("manual", "skip"),
    "old": ("manual", "old"),
    "new": ("manual", "new"),
    "status": ("manual", "status"),
    "log": ("hunt", "log_command"),
}

EXIT_VERDICT, EXIT_NO_VERDICT, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 128 + 13  # the reader of our output left, as a shell shows SIGPIPE's death
GIT_BISECT_ABORT = 255  # a run script's exit status that stops `git bisect run`
NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class BisectlabGroup(click.Group):
    """A click group of lazily imported commands that turns any error into one line and exit 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS and name not in self.commands:
            from importlib import import_module

            module, attr = COMMANDS[name]
            self.add_command(getattr(import_module(f"bisectlab.cli.{module}"), attr), name)
        return self.commands.get(name)

    def invoke(self, ctx: click.Context) -> Any:
        """The command; a reader that left our output (``| head``) ends it quietly with
        EXIT_BROKEN_PIPE, not 1, which would read as "no verdict" (what it logged stays)."""
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            if not _a_reader_left():
                raise BisectlabError(f"{os_error_line(exc)}: a program bisectlab writes to "
                                     "stopped reading") from None  # git fast-import, say
            raise click.exceptions.Exit(EXIT_BROKEN_PIPE) from None

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            self._main(args, prog_name, complete_var, **extra)
        except BrokenPipeError:  # the error line itself, to a stderr whose reader left
            if not _a_reader_left():
                raise
            sys.exit(EXIT_BROKEN_PIPE)

    def _main(self, args: Sequence[str] | None, prog_name: str | None,
              complete_var: str | None, **extra: Any) -> None:
        words = list(sys.argv[1:] if args is None else args)
        # `boot --exit-status` is a git bisect run script: exit 2 would read as "bad"
        code_on_error = (GIT_BISECT_ABORT if words[:1] == ["boot"] and "--exit-status" in words
                         else EXIT_USAGE)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NO_ARGS_IS_HELP as exc:  # `bisectlab` or `bisectlab replay` alone: the help
            click.echo(exc.format_message())
            sys.exit(0)
        except click.ClickException as exc:
            fail(exc.format_message(), code_on_error)
        except BisectlabError as exc:
            fail(str(exc), code_on_error)
        except (click.exceptions.Abort, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OSError as exc:  # a path the system refuses outright (too long, say)
            fail(os_error_line(exc), code_on_error)
        except Exception as exc:
            if code_on_error != GIT_BISECT_ABORT:
                raise
            fail(f"internal error: {exc!r}", code_on_error)  # never a crash read as "bad"
        sys.exit(code if isinstance(code, int) else 0)


def _a_reader_left() -> bool:
    """Whether the reader of our stdout or stderr has left; if so, both are silenced where
    broken, so that Python's flush at exit does not fail on them again."""
    if not any(_reader_left(stream) for stream in (sys.stdout, sys.stderr)):
        return False
    _silence_closed_streams()
    return True


def _reader_left(stream: Any) -> bool:
    """Whether ``stream`` is a pipe whose reader has closed it (poll says POLLERR on Linux,
    POLLHUP elsewhere)."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
    except (OSError, ValueError, AttributeError):  # closed, not a file (a test's), no poll
        return False
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _silence_closed_streams() -> None:
    """Point stdout and stderr at /dev/null where their reader has left, so that Python's
    flush at exit does not fail on them again."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def os_error_line(exc: OSError) -> str:
    """An OSError as one short line: what the system said, of which file (cut if long)."""
    name = clipped(str(exc.filename), 80) if exc.filename is not None else ""
    return f"{exc.strerror or exc}{': ' + name if name else ''}"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    """One line on stderr, exit 2 (or ``code``): a message of several lines (click's list of
    choices, a name typed with a newline in it) is joined into one."""
    line = " ".join(part.strip() for part in message.splitlines() if part.strip())
    click.echo(f"error: {line}", err=True)
    sys.exit(code)


@click.group(cls=BisectlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bisectlab")
def cli() -> None:
    """bisectlab: find the commit behind an intermittent bug that destroys hardware.

    Simulated hunts on kernel-shaped histories (the 2008 e1000e NVM corruption ships with it),
    every test, boot and adapter logged in SQLite.
    """
