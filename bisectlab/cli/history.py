"""`bisectlab history`: inspect, generate and export commit histories."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bisectlab.cli.params import MAX_SEED, Number, PathGiven, count
from bisectlab.errors import BisectlabError
from bisectlab.generator import MAX_COMMITS
from bisectlab.history import DEFAULT_SCENARIO, builtin_scenarios, load_history
from bisectlab.words import counted


@click.group()
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
        first = f"first bad {r['culprit'][:12]} {r['culprit_subject']}" if r["culprit"] else "no bug"
        click.echo(f"    {r['good'][:16]}..{r['bad'][:16]}: {r['candidates']} candidates, {first}")


@history.command("log")
@click.argument("name", default=DEFAULT_SCENARIO)
@click.option("--graph", is_flag=True, help="Draw the DAG beside the commits.")
@click.option("-n", "limit", type=count(1, MAX_COMMITS), default=20, show_default=True,
              help="Newest N commits.")
def history_log(name: str, graph: bool, limit: int) -> None:
    """The newest commits, newest first (like git log --oneline)."""
    from bisectlab.summary import log_lines

    for line in log_lines(load_history(name), limit, graph):
        click.echo(line)


@history.command("generate")
@click.option("--commits", type=count(12, MAX_COMMITS), required=True, help="Size of the DAG.")
@click.option("--seed", type=count(0, MAX_SEED), required=True)
@click.option("--name", default=None, help="History name (default kernel-N-sS).")
@click.option("--bug", type=click.Choice(["none", "rate"]), default="none", show_default=True,
              help="Plant an abstract bug introduced by one (seeded) commit.")
@click.option("--detect", type=Number(0, 1, low_open=True), default=None,
              help="Per-boot detection rate p of the rate bug [default: 1].")
@click.option("--false-positive", type=Number(0, 1, high_open=True), default=None,
              help="Per-boot false-positive rate f of the rate bug [default: 0].")
@click.option("-o", "--output", type=PathGiven(dir_okay=False), default=None,
              help="Write the scenario file here (default: stdout).")
@click.option("--force", is_flag=True,
              help="Replace an existing, different scenario file (hunts logged with it can no "
                   "longer be replayed).")
def history_generate(commits: int, seed: int, name: str | None, bug: str, detect: float | None,
                     false_positive: float | None, output: Path | None, force: bool) -> None:
    """Generate a kernel-shaped history and write it as a scenario file (a TOML recipe)."""
    from bisectlab.summary import generated_recipe

    check_name(name)
    check_rate_options(bug, detect=detect, false_positive=false_positive)
    detect = 1.0 if detect is None else detect
    false_positive = 0.0 if false_positive is None else false_positive
    if bug == "rate" and not false_positive < detect:
        raise BisectlabError(f"--false-positive {false_positive:g} must be below --detect "
                             f"{detect:g}: a good commit failing as often as a bad one is no bug")
    text = generated_recipe(commits, seed, name, bug, detect, false_positive)
    if output is None:
        click.echo(text, nl=False)
        return
    if _regular(output) and not force and _contents(output) != text:
        raise BisectlabError(f"{output} exists and differs (hunts logged with it replay from it); "
                             "pass --force to replace it")
    from bisectlab.histfile import replacing

    try:
        with replacing(output) as out:  # an old file stays whole until the new one is
            out.write(text.encode("utf-8"))
    except OSError as exc:
        raise BisectlabError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output}", err=True)


def check_name(name: str | None) -> None:
    """A history name is one line of printable UTF-8 (it goes into files, logs and transcripts)."""
    if name is None:
        return
    if not name.strip() or not name.isprintable() or len(name) > 200:
        raise BisectlabError("--name must be 1-200 printable characters on one line")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise BisectlabError("--name is not UTF-8 text") from None


def check_rate_options(bug: str, **options: float | str | None) -> None:
    """The rate bug's options (given: not None) need --bug rate; without it they would be
    dropped unseen, and the history would have no bug at all."""
    if bug == "none" and any(value is not None for value in options.values()):
        flags = ["--" + option.replace("_", "-") for option in options]
        raise BisectlabError(f"{', '.join(flags[:-1])} and {flags[-1]} need --bug rate")


def _regular(path: Path) -> bool:
    """Whether ``path`` is an existing regular file: one a write would replace (a device or a
    pipe is written to as it is, never read first)."""
    return path.is_file()


def _contents(path: Path) -> str | None:
    """A text file's contents, or None if it cannot be read as text."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


@history.command("export-git")
@click.argument("name")
@click.argument("directory", type=PathGiven(file_okay=False))
def history_export_git(name: str, directory: Path) -> None:
    """Write history NAME as a real git repository in DIRECTORY (same DAG, subjects, tags)."""
    from bisectlab.gitexport import export_git

    h = load_history(name)
    export_git(h, directory)
    click.echo(f"exported {len(h)} commits and {len(h.tags)} tags to {directory}")


@history.command("import-git")
@click.argument("directory", type=PathGiven(file_okay=False))
@click.argument("good", required=False)
@click.argument("bad", required=False)
@click.option("-o", "--output", type=PathGiven(dir_okay=False), required=True,
              help="History file to write (.npz).")
@click.option("--name", default=None, help="History name (default: the repository's directory).")
@click.option("--bug", type=click.Choice(["none", "rate"]), default="none", show_default=True,
              help="Plant an abstract bug in one commit of the range, to plan hunts on it.")
@click.option("--detect", type=Number(0, 1, low_open=True), default=None,
              help="Per-boot detection rate p of the rate bug [default: 1].")
@click.option("--false-positive", type=Number(0, 1, high_open=True), default=None,
              help="Per-boot false-positive rate f of the rate bug [default: 0].")
@click.option("--culprit", metavar="REF", default=None,
              help="Commit the rate bug is planted in [default: a non-merge commit of the range, "
                   "drawn from --seed].")
@click.option("--seed", type=count(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the default culprit.")
@click.option("--force", is_flag=True,
              help="Replace an existing, different history file (hunts logged with it can no "
                   "longer be replayed).")
def history_import_git(directory: Path, good: str | None, bad: str | None, output: Path,
                       name: str | None, bug: str, detect: float | None,
                       false_positive: float | None, culprit: str | None, seed: int,
                       force: bool) -> None:
    """Store the shape of the git repository in DIRECTORY as a history file (.npz): parents,
    subjects, author dates, tags and changed paths of GOOD..BAD (default: from the root(s) to
    HEAD), no file contents. The file advertises its range; with --bug rate it carries a bug, so
    `replay campaign --history FILE` plans a hunt on the real DAG (`bench --history FILE` draws a
    culprit per hunt)."""
    from bisectlab.gitimport import PlantedBug, import_git
    from bisectlab.histfile import SUFFIX, history_bytes, write_bytes

    if output.suffix != SUFFIX:
        raise BisectlabError(f"the history file must end in {SUFFIX}: {output}")
    check_name(name)
    check_rate_options(bug, culprit=culprit, detect=detect, false_positive=false_positive)
    planted = None if bug == "none" else PlantedBug(
        detect=1.0 if detect is None else detect,
        false_positive=0.0 if false_positive is None else false_positive, culprit=culprit, seed=seed)
    h = import_git(directory, good, bad, name, planted)
    data = history_bytes(h, origin=h.source)
    if _regular(output) and not force and _raw(output) != data:
        raise BisectlabError(f"{output} exists and differs (hunts logged with it replay from it); "
                             "pass --force to replace it")
    write_bytes(data, output)
    click.echo(_imported_line(h, output, len(data)))


def _raw(path: Path) -> bytes | None:
    """A file's bytes, or None if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _imported_line(h, output: Path, size: int) -> str:
    """What import-git reports: the shape, the range, the bug, the file."""
    from bisectlab import dag

    good, bad = h.advertised[0]
    candidates = len(dag.candidates(h.parents, h.resolve(bad), [h.resolve(good)]))
    merges = sum(1 for ps in h.parents if len(ps) > 1)
    bug = "no bug planted"
    if h.bug is not None:
        bug = (f"rate bug p={h.bug.detect:g} f={h.bug.false_positive:g} at "
               f"{h.describe(h.bug.culprit)[:60]}")
    return (f"imported {counted(len(h), 'commit')} ({counted(merges, 'merge')}, "
            f"{counted(len(h.tags), 'tag')}, {counted(len(h.paths.table), 'distinct path')}): "
            f"range {good[:12]}..{bad[:12]} with {counted(candidates, 'candidate')}; {bug}; "
            f"wrote {output} ({size / 1e6:.1f} MB)")


@history.command("export-graphml")
@click.argument("name")
@click.argument("output", type=PathGiven(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace OUTPUT even if it is not GraphML.")
def history_export_graphml(name: str, output: Path, force: bool) -> None:
    """Write history NAME|FILE as GraphML (networkx): a node per commit with its sha, subject,
    time, tags, toggles and paths, an edge parent -> child numbered by parent order. An
    earlier export is replaced; any other file (a database, a scenario) only with --force."""
    from bisectlab.graphml import write_graphml

    if _regular(output) and not force and b"<graphml" not in (_raw(output) or b"")[:1024]:
        raise BisectlabError(f"{output} exists and is not GraphML; pass --force to replace it")
    h = load_history(name)
    write_graphml(h, output)
    click.echo(f"wrote {len(h)} commits to {output}")


# bench ------------------------------------------------------------------------------------------
