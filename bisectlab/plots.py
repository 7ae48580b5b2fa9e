"""Pictures (matplotlib, no display): a campaign's costs per strategy, and one hunt's posterior."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bisectlab.campaign import MINUTES_PER_DAY
from bisectlab.errors import BisectlabError
from bisectlab.histfile import replacing
from bisectlab.replay import Retrace


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _save(fig: Any, path: Path) -> None:
    try:
        _check_replaceable(path)  # again: the file may have appeared while the work ran
        with replacing(path) as out:  # an earlier plot stays whole until the new one is
            fig.savefig(out, format="png", dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise BisectlabError(f"cannot write plot {path}: {exc.strerror or exc}") from None
    finally:
        _pyplot().close(fig)


def check_plot_path(path: Path, database: Path | None = None) -> None:
    """Refuse a plot path before any work: it must end in .png, in a directory that exists, and
    may replace an earlier plot but never the results ``database`` or any other file."""
    if path.suffix.lower() != ".png":
        raise BisectlabError(f"plot file must end in .png: {path}")
    if database is not None and _same_file(path, database):
        raise BisectlabError(f"cannot write plot {path}: it is the results database")
    if not path.parent.is_dir():
        raise BisectlabError(f"cannot write plot {path}: directory {path.parent} does not exist")
    try:  # opened as the plot will be, nothing in it changed (or a file made there and removed)
        _check_replaceable(path)
        if path.exists():
            path.open("r+b").close()
        else:
            fd, probe = tempfile.mkstemp(suffix=".png", dir=path.parent)
            os.close(fd)
            os.remove(probe)
    except OSError as exc:
        raise BisectlabError(f"cannot write plot {path}: {exc.strerror}") from None


def _check_replaceable(path: Path) -> None:
    """Refuse to draw over a file that is not a PNG (a database named r.png, say): only an
    earlier plot, or an empty file, may be replaced."""
    if not path.exists():
        return
    head = b"?"  # a pipe or a device is not read: it is no plot
    if path.is_file():
        with path.open("rb") as old:
            head = old.read(len(PNG_SIGNATURE))
    if head and head != PNG_SIGNATURE:
        raise BisectlabError(f"{path} exists and is not a PNG image: a plot replaces only an "
                             "earlier plot")


def _same_file(path: Path, other: Path) -> bool:
    """Whether two paths name one file (through links too), whether or not it exists yet."""
    try:
        return os.path.samefile(path, other)
    except OSError:  # one of them is not there (yet): the same place is the same file
        return path.resolve() == other.resolve()


def plot_campaign(title: str, lanes: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Tests against adapters destroyed (one point per hunt, means marked) and lab days."""
    plt = _pyplot()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    rng = np.random.default_rng(0)
    labels = list(lanes)
    for i, label in enumerate(labels):
        rows = lanes[label]
        if not rows:
            continue
        tests = np.array([r["tests"] for r in rows], dtype=float)
        adapters = np.array([r["adapters"] for r in rows], dtype=float)
        colour = f"C{i}"
        jitter = rng.uniform(-0.25, 0.25, len(rows))
        ax.scatter(tests, adapters + jitter, s=9, alpha=0.35, color=colour, label=label)
        ax.scatter([tests.mean()], [adapters.mean()], s=160, marker="X", color=colour,
                   edgecolor="black", linewidth=1.0, zorder=5)
    if all(r["tests"] >= 1 for rows in lanes.values() for r in rows):
        ax.set_xscale("log")
    ax.set_xlabel("tests per hunt (installs; log scale unless a hunt ran none)")
    ax.set_ylabel("adapters destroyed per hunt")
    ax.set_title("Cost of each hunt (X: mean)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    days = [np.array([r["lab_minutes"] for r in lanes[lb]], dtype=float) / MINUTES_PER_DAY
            for lb in labels]
    shown = [(lb, d) for lb, d in zip(labels, days, strict=True) if len(d)]
    if shown:
        bx.boxplot([d for _, d in shown], orientation="horizontal", whis=(5, 95), showmeans=True)
        bx.set_yticks(range(1, len(shown) + 1), [lb for lb, _ in shown], fontsize=8)
    bx.set_xlabel("lab days per hunt (box: quartiles, whiskers: 5-95%, triangle: mean)")
    bx.set_title("Lab time")
    bx.grid(alpha=0.3, axis="x")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)


def plot_hunt(title: str, trace: Retrace, path: Path) -> None:
    """One hunt: the posterior over the range after each test (all of it, and zoomed on where
    the mass ended up), the tests marked pass or fail, and the adapters as they died."""
    plt = _pyplot()
    fig, (ax, zx, bx) = plt.subplots(3, 1, figsize=(12, 10), sharex=True,
                                     gridspec_kw={"height_ratios": [3, 2, 1.3]})
    beliefs = np.maximum(trace.beliefs, 1e-6)
    failed = np.array([t["failed"] for t in trace.tests], dtype=bool)
    image = _heat(ax, beliefs, failed, trace, (0, beliefs.shape[1]))
    ax.set_title("Posterior over the range after each test")
    ax.legend(loc="upper right", fontsize=8, facecolor="grey", framealpha=0.6)
    window = _zoom_window(beliefs)
    _heat(zx, beliefs, failed, trace, window)
    zx.set_title(f"Zoomed on candidates {window[0]}..{window[1] - 1}, where the mass ended up")
    fig.colorbar(image, ax=[ax, zx], label="P(culprit = commit)", pad=0.01)
    steps = np.arange(len(beliefs))
    died = np.cumsum([t["adapters_destroyed"] for t in trace.tests])
    bx.step(steps, np.concatenate([[0], died]), where="post", color="firebrick",
            label="adapters destroyed")
    bx2 = bx.twinx()
    bx2.plot(steps, beliefs.max(axis=1), color="navy", label="top candidate's probability")
    bx2.set_ylim(0, 1.02)
    bx2.set_ylabel("top probability")
    bx.set_xlabel("tests")
    bx.set_ylabel("adapters destroyed")
    bx.grid(alpha=0.3)
    lines, lines2 = bx.get_legend_handles_labels(), bx2.get_legend_handles_labels()
    bx.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


def _heat(ax: Any, beliefs: np.ndarray, failed: np.ndarray, trace: Retrace,
          window: tuple[int, int]) -> Any:
    """A heat strip of the beliefs over candidates window[0]..window[1]-1, tests on top."""
    from matplotlib.colors import LogNorm

    lo, hi = window
    image = ax.imshow(beliefs[:, lo:hi].T, aspect="auto", origin="lower",
                      interpolation="nearest", norm=LogNorm(vmin=1e-6, vmax=1.0), cmap="magma",
                      extent=(-0.5, len(beliefs) - 0.5, lo - 0.5, hi - 0.5))
    x, tested = np.arange(1, len(beliefs)), trace.tested
    inside = (tested >= lo) & (tested < hi)
    ax.scatter(x[~failed & inside], tested[~failed & inside], marker="o", s=22,
               facecolor="none", edgecolor="lime", label="tested: all boots passed")
    ax.scatter(x[failed & inside], tested[failed & inside], marker="x", s=30, color="cyan",
               label="tested: an adapter died")
    if trace.truth is not None and lo <= trace.truth < hi:
        ax.axhline(trace.truth, color="white", linestyle="--", linewidth=0.8, label="true culprit")
    ax.set_ylim(lo - 0.5, hi - 0.5)
    ax.set_ylabel("candidate (oldest at the bottom)")
    return image


def _zoom_window(beliefs: np.ndarray, share: float = 0.01, least: int = 24) -> tuple[int, int]:
    """The candidates holding ``share`` of the final mass, padded, at least ``least`` wide (a
    hunt that wandered has held mass everywhere; where it ended is what the zoom is for)."""
    held = np.flatnonzero(beliefs[-1] >= share)
    n = beliefs.shape[1]
    if len(held) == 0:
        held = np.array([int(np.argmax(beliefs[-1]))])
    lo, hi = int(held.min()), int(held.max()) + 1
    pad = max((hi - lo) // 10, (least - (hi - lo)) // 2, 1)
    return max(lo - pad, 0), min(hi + pad, n)
