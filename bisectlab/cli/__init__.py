"""The `bisectlab` command line: a thin click layer over the library, one module per command group.

Errors are one line on stderr and exit 2; `bisect` exits 0 with a verdict, 1 without one.
"""

from bisectlab.cli.base import cli


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bisectlab")


__all__ = ["cli", "main"]
