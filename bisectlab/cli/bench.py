"""`bisectlab bench` and `bisectlab perf`: many simulated hunts against the bound, and speed."""

from __future__ import annotations

import json
from typing import Any

import click

from bisectlab.cli.params import (
    MAX_ADAPTERS,
    MAX_HUNTS,
    MAX_RIGS,
    MAX_SEED,
    MAX_WORKERS,
    Number,
    count,
    progress_bar,
    strategy_flag_options,
    typed_flags,
    typed_options,
)
from bisectlab.generator import MAX_COMMITS

MAX_CAMPAIGN_HUNTS = 100_000  # hunts per round of perf --campaign (about 40 a second each)
MAX_PERF_ROUNDS = 1000  # campaign rounds of perf --campaign or --targets (each a few seconds)


@click.command()
@click.option("--commits", "commits", type=count(12, MAX_COMMITS), multiple=True,
              default=(1000,), show_default=True, help="History size N (repeatable).")
@click.option("--detect", "detects", type=Number(0, 1, low_open=True), multiple=True,
              default=(0.5,), show_default=True, help="Per-boot detection rate p (repeatable).")
@click.option("--false-positive", type=Number(0, 1, high_open=True), default=0.0,
              show_default=True, help="Per-boot false-positive rate f of the simulated lab.")
@click.option("--correlation", type=Number(0, 1, high_open=True), default=0.0,
              show_default=True, help="Correlated boots: p(1 +- r) in hot and cold spells.")
@click.option("--hunts", type=count(1, MAX_HUNTS), default=100, show_default=True)
@click.option("--strategy", "strategies", multiple=True, default=("bayes",), show_default=True,
              metavar="NAME[:key=value,...]",
              help="Strategy with options, e.g. retry:k=10 or bayes:cost-weight=5 (repeatable).")
@strategy_flag_options
@click.option("--adapters", type=count(0, MAX_ADAPTERS), default=None,
              help="Adapters per hunt (default: unlimited).")
@click.option("--rigs", type=count(1, MAX_RIGS), default=1, show_default=True)
@click.option("--seed", type=count(0, MAX_SEED), default=0, show_default=True,
              help="Seed of the history and of every hunt's culprit and boots.")
@click.option("--history", "history_ref", default=None, metavar="FILE",
              help="Scenario file (.toml) or history file (.npz, from import-git) to use instead "
                   "of a generated history.")
@click.option("--workers", type=count(0, MAX_WORKERS), default=1, show_default=True,
              help="Worker processes (0 = all cores).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per configuration.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def bench(commits: tuple[int, ...], detects: tuple[float, ...], false_positive: float,
          correlation: float, hunts: int, strategies: tuple[str, ...], adapters: int | None,
          rigs: int, seed: int, history_ref: str | None, workers: int, as_json: bool,
          quiet: bool, **flags: Any) -> None:
    """Run many simulated hunts per configuration; print accuracy, costs and the bound ratio."""
    from bisectlab.bench import BenchConfig, check_source, run_bench, summarise
    from bisectlab.lanes import build_lanes

    lanes = build_lanes(strategies, typed_flags(flags))
    for flag, values in (("--commits", commits), ("--detect", detects)):
        if len(set(values)) < len(values):
            raise click.UsageError(f"{flag} repeats a value: each runs once")
    if history_ref is not None:
        if "commits" in typed_options(click.get_current_context()):
            raise click.UsageError("--commits sizes a generated history: the history of "
                                   "--history has its own size")
        check_source(history_ref)
    configs = [BenchConfig(strategy=lane.strategy, options=lane.options, commits=n, detect=p,
                           false_positive=false_positive, correlation=correlation, hunts=hunts,
                           seed=seed, history=history_ref, adapters=adapters, rigs=rigs,
                           name=lane.label)
               for lane in lanes for n in commits for p in detects]
    total = hunts * len(configs)
    with progress_bar(quiet) as advance:
        for k, config in enumerate(configs):
            def done(hunts_done: int, k: int = k) -> None:
                advance(k * hunts + hunts_done, total)

            summary = summarise(config, run_bench(config, workers, on_hunts=done))
            click.echo(json.dumps(summary) if as_json else _bench_line(summary))


def _bench_line(s: dict) -> str:
    lo, hi = s["accuracy_95"]
    return (f"{s['label']:<34} N={s['candidates']:<6} p={s['p']:<5g} hunts={s['hunts']:<5} "
            f"acc={s['accuracy']:.3f} [{lo:.3f},{hi:.3f}]  aborted={s['aborted']}  "
            f"inconclusive={s['inconclusive']}  tests={s['tests_mean']:.1f} "
            f"(p90 {s['tests_p90']:.0f}, max {s['tests_max']:.0f})  "
            f"boots={s['boots_mean']:.1f} (p90 {s['boots_p90']:.0f})  "
            f"installs={s['installs_mean']:.1f}  rounds={s['rounds_mean']:.1f}  "
            f"adapters={s['adapters_mean']:.2f} (p90 {s['adapters_p90']:.0f}, "
            f"max {s['adapters_max']:.0f})  lab_h={s['lab_hours_mean']:.1f}  "
            f"bound={s['lower_bound_boots']:.1f}  boots/bound={s['boots_over_bound']:.2f}"
            + (f"  rounds/(bound/{s['rigs']})={s['rounds_over_bound']:.2f}" if s["rigs"] > 1 else ""))


# replay -----------------------------------------------------------------------------------------


@click.command()
@click.option("--quick", is_flag=True, help="Smaller samples (for a smoke run).")
@click.option("--campaign", is_flag=True,
              help="Campaign throughput instead: hunts/s with 1 and 2 workers, database share, "
                   "and the machine's ceiling for 2 (two 1-worker campaigns at once).")
@click.option("--hunts", "campaign_hunts", type=count(1, MAX_CAMPAIGN_HUNTS), default=None,
              help="With --campaign: hunts per round [default: 150, 20 with --quick]; a longer "
                   "campaign weighs its fixed costs (workers' first decisions, the last hunt's "
                   "wait) less.")
@click.option("--rounds", type=count(1, MAX_PERF_ROUNDS), default=None,
              help="With --campaign or --targets: campaign rounds, each running every worker "
                   "count once and the ceiling's pair, the order reversed every other round "
                   "(with --targets also the logging share's bisects) [default: 3, 1 with "
                   "--quick]; more give a steadier median on a busy machine.")
@click.option("--scale", is_flag=True,
              help="Scale instead: a 10^6-commit history's search space, bayes decisions and peak "
                   "RSS against their targets and the baseline commit's code; 10^4 against git.")
@click.option("--baseline", default=None, metavar="REV",
              help="With --scale: the commit whose code gives 'today' (default: where the scale "
                   "work began; '' for none).")
@click.option("--targets", is_flag=True,
              help="Every figure of the scale targets (issue 13) beside its target and the "
                   "figure the issue gave: scale, a history file, git, campaigns, logging, "
                   "start-up (several minutes).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def perf(quick: bool, campaign: bool, campaign_hunts: int | None, rounds: int | None,
         scale: bool, baseline: str | None, targets: bool, as_json: bool) -> None:
    """Benchmark: boots per second, history generation and decision times (or --campaign,
    --scale, --targets)."""
    from bisectlab.perf import (
        QUICK_SCALE,
        SCALE_BASELINE,
        ScaleRun,
        campaign_throughput,
        format_campaign,
        format_report,
        format_scale,
        run_perf,
        run_scale,
    )

    modes = [flag for flag, on in (("--campaign", campaign), ("--scale", scale),
                                   ("--targets", targets)) if on]
    if len(modes) > 1:
        shown = ", ".join(modes[:-1]) + " and " + modes[-1]
        raise click.UsageError(f"{shown} are separate runs: give one of them")
    if baseline is not None and not scale:
        raise click.UsageError("--baseline goes with --scale: the commit whose code gives "
                               "'today'")
    if campaign_hunts is not None and not campaign:
        raise click.UsageError("--hunts goes with --campaign: the hunts of each round")
    if rounds is not None and not (campaign or targets):
        raise click.UsageError("--rounds goes with --campaign or --targets: the campaign rounds")
    rounds = rounds or (1 if quick else 3)
    if targets:
        from bisectlab.perf import format_targets, run_targets

        report = run_targets(QUICK_SCALE if quick else ScaleRun(), 20 if quick else 150, rounds)
        click.echo(json.dumps(report, indent=2) if as_json else format_targets(report))
        return
    if scale:
        report = run_scale(QUICK_SCALE if quick else ScaleRun(),
                           SCALE_BASELINE if baseline is None else baseline or None)
        click.echo(json.dumps(report, indent=2) if as_json else format_scale(report))
        return
    if campaign:
        hunts = campaign_hunts or (20 if quick else 150)
        report = campaign_throughput(hunts=hunts, rounds=rounds)
        click.echo(json.dumps(report, indent=2) if as_json else format_campaign(report))
        return
    report = run_perf(quick=quick)
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
