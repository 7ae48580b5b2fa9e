"""`bisectlab boot`: one simulated boot with its log; with --exit-status, a `git bisect run` script.

`git bisect run` starts it once per step, so it imports no more than a boot needs.
"""

from __future__ import annotations

import sys

import click

from bisectlab import kernel
from bisectlab.cli.base import EXIT_NO_VERDICT, GIT_BISECT_ABORT
from bisectlab.cli.params import MAX_SEED, count, history_option
from bisectlab.errors import BisectlabError
from bisectlab.history import load_history

MAX_ATTEMPT = 10**9

@click.command()
@click.argument("commit")
@history_option
@click.option("--arch", type=click.Choice(kernel.ARCHES), default="i386", show_default=True)
@click.option("--seed", type=count(0, MAX_SEED), default=0, show_default=True,
              help="Hunt seed the boot seed derives from.")
@click.option("--attempt", type=count(1, MAX_ATTEMPT), default=1, show_default=True,
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
