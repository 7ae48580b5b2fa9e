"""The exact posterior over the culprit of a DAG range, with unknown detection rates marginalised.

Model: the culprit c is one candidate commit. A test of commit x boots it n times (stopping at the
first failure) and sees k failures. If c is an ancestor-or-self of x, x is bad and each boot fails
with the detection rate p; otherwise each boot fails with the false-positive rate f. The detection
rate p (and f) are unknown: they live on grids with priors, and are summed out exactly.

Everything the data says about c is in two numbers per candidate: the boots and the failures of
the tests of its descendants-or-self (B_c, K_c). Candidates sharing (B_c, K_c) share a
likelihood, so the posterior costs O(N + distinct pairs x grid) per update.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np
from scipy.special import betainc, xlog1py, xlogy

from bisectlab import compiled
from bisectlab.errors import clipped

HINT_WEIGHT = 0.5  # the share of the prior on p that a hint (--detect-prior) takes over


def logsumexp(a: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """log(sum(exp(a))) over ``axis``, bit for bit scipy.special.logsumexp's result (the largest
    terms kept out of the sum, then log1p) at a fraction of its per-call cost, which dominated
    every posterior update."""
    with np.errstate(invalid="ignore"):
        return _logsumexp(np.asarray(a, dtype=float), axis)


def _logsumexp(a: np.ndarray, axis: int | tuple[int, ...] | None) -> np.ndarray:
    """:func:`logsumexp` with invalid operations already silenced by the caller."""
    if axis is None and 0 < a.size <= NUMPY_BUFFER and a.flags.c_contiguous:
        kernels = compiled.exact_math()
        if kernels is not None:  # one call, where the passes below make ten
            out = np.empty(())
            kernels.lse_all(a, out)
            return out
    lines = _lines(a, axis) if compiled.kernels is not None else None
    if lines is not None:
        return _compiled_logsumexp(a, *lines)
    if axis is None and a.flags.c_contiguous and a.ndim:
        return _logsumexp_all(a)
    top = np.max(a, axis=axis, keepdims=True)
    is_top = a == top
    count = np.sum(is_top, axis=axis, keepdims=True, dtype=float)
    rest = np.sum(np.exp(np.where(is_top, -np.inf, a) - top), axis=axis, keepdims=True)
    rest = np.where(rest == 0, rest, rest / count)
    out = np.where(top == -np.inf, -np.inf, np.log1p(rest) + np.log(count) + top)
    return out.squeeze(axis=axis) if axis is not None else out.reshape(())


def _logsumexp_all(a: np.ndarray) -> np.ndarray:
    """:func:`logsumexp` of every element of a contiguous array: the same operations on the same
    elements in the same order, with fewer passes and temporaries."""
    top = a.max()
    if top == -np.inf:
        return np.array(-np.inf)
    is_top = a == top
    count = np.float64(np.count_nonzero(is_top))
    shifted = a - top
    shifted[is_top] = -np.inf
    rest = np.exp(shifted, out=shifted).sum()
    if rest != 0:
        rest = rest / count
    return np.asarray(np.log1p(rest) + np.log(count) + top)


def _lines(a: np.ndarray, axis: int | tuple[int, ...] | None
           ) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """How the compiled kernels walk a log-sum-exp of ``a`` over ``axis`` (see
    :func:`_line_plan`); None where they do not: a layout other than C order, or nothing to
    sum (numpy's passes then run, or raise as numpy does)."""
    if not a.flags.c_contiguous or a.size == 0:
        return None
    given = tuple(range(a.ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    if any(isinstance(x, bool | np.bool_) or not isinstance(x, int | np.integer) for x in given):
        return None  # numpy's passes then raise numpy's error
    return _line_plan(a.shape, tuple(int(x) for x in given))


@lru_cache(maxsize=256)
def _line_plan(shape: tuple[int, ...], given: tuple[int, ...]
               ) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """The lines of values a log-sum-exp over the axes ``given`` of a C-order array of ``shape``
    sums (n lines of m, value j of line i at i * line + j * step, summed pairwise along a
    contiguous run as numpy sums it) and the result's shape; None for axes other than the
    trailing ones or the leading one, and for a contiguous run longer than numpy's buffer (numpy
    before 2.3 sums it a buffer at a time)."""
    ndim = len(shape)
    axes = tuple(sorted({x % ndim for x in given})) if ndim else ()
    if not axes or len(axes) != len(given) or any(not -ndim <= x < ndim for x in given):
        return None  # numpy's passes then raise numpy's error (a repeated axis, or no such)
    size = math.prod(shape)
    if axes == tuple(range(axes[0], ndim)):      # the trailing axes: contiguous runs
        m = math.prod(shape[axes[0]:])
        n, step, line, pairwise = size // m, 1, m, True
    elif axes == (0,):                           # the leading one: across rows
        m = shape[0]
        n = size // m
        step, line, pairwise = n, 1, n == 1
    else:
        return None
    if pairwise and m > NUMPY_BUFFER:
        return None
    lines = np.array([n, m, step, line, pairwise], dtype=np.int64)
    lines.flags.writeable = False
    return lines, tuple(length for i, length in enumerate(shape) if i not in axes)


NUMPY_BUFFER = 8192  # numpy's default buffer, in elements


def _compiled_logsumexp(a: np.ndarray, lines: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The numpy passes of :func:`_logsumexp` with all but numpy's exp, log and log1p compiled:
    the same operations in the same order, so the same bits on any CPU."""
    kernels = compiled.kernels
    n = int(lines[0])
    shifted, top, count, rest = np.empty(a.size), np.empty(n), np.empty(n), np.empty(n)
    kernels.lse_shift(a, shifted, top, count, lines)
    np.exp(shifted, out=shifted)
    kernels.lse_rest(shifted, count, rest, lines)
    out = np.log1p(rest)
    out += np.log(count)
    out += top
    out[top == -np.inf] = -np.inf
    return out.reshape(shape)


def entropy_bits(q: np.ndarray | float) -> np.ndarray:
    """Binary entropy H(q) in bits (0 at q = 0 or 1): -(q log q + (1 - q) log1p(-q)) / log 2,
    with numpy's vectorised logarithms (scipy's xlogy and xlog1py give the same to the last
    bit or so, five times slower), taken in chunks so that the result is the only array as long
    as q (a decision over 10^6 candidates takes three). The compiled kernel, where built, does
    what follows the logarithms in one pass; a small table, where numpy's logarithms are the
    C library's, is one call that takes them too."""
    q = np.asarray(q, dtype=float)
    h = np.empty(q.shape)  # C order, so that its flat view is itself, whatever q's layout
    exact = compiled.exact_math()
    if exact is not None and q.size <= CHUNK and q.flags.c_contiguous:
        exact.entropy_exact(q, LN2, h)  # one call, the logarithms taken in it
        return h[()]
    flat_q, flat_h = q.reshape(-1), h.reshape(-1)
    kernels = compiled.kernels
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, flat_q.size, CHUNK):
            part = np.clip(flat_q[start:start + CHUNK], 0.0, 1.0)
            if kernels is not None:
                logs = _logs(part)
                kernels.entropy(part, *logs, LN2, flat_h[start:start + CHUNK])
            else:
                _numpy_entropy(part, flat_h[start:start + CHUNK])
    return h[()]


LN2 = np.array(np.log(2))  # numpy's log 2, which entropy_bits divides by
LN2.flags.writeable = False


def _logs(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """numpy's log(p) and log1p(-p), what the compiled kernels of the entropy take."""
    return np.log(p), np.log1p(np.negative(p))


def _numpy_entropy(part: np.ndarray, out: np.ndarray) -> None:
    """The bits of probabilities ``part`` (clipped to [0, 1], and taken over) into ``out``."""
    rest = 1 - part
    bits = np.log(part)
    bits *= part
    np.copyto(bits, 0.0, where=part == 0)
    other = np.negative(part, out=part)
    np.log1p(other, out=other)
    other *= rest
    np.copyto(other, 0.0, where=rest == 0)
    bits += other
    np.negative(bits, out=bits)
    np.divide(bits, LN2, out=out)


CHUNK = 1 << 16  # elements per step of an elementwise pass done in pieces


def z_channel_information(u: np.ndarray, fail_bad: float, fail_good: float) -> np.ndarray:
    """Bits a test with P(bad) = u gives about the culprit (science.md §1)."""
    return (entropy_bits(u * fail_bad + (1 - u) * fail_good)
            - u * entropy_bits(fail_bad) - (1 - u) * entropy_bits(fail_good))


def information_bits(u_pass: np.ndarray, cond_entropy: np.ndarray) -> np.ndarray:
    """Bits a test gives about the culprit: H(outcome) minus its expected entropy given c."""
    bits = np.asarray(entropy_bits(u_pass))
    bits -= cond_entropy
    return np.maximum(bits, 0.0, out=bits)[()]


@dataclass(frozen=True)
class LabMinutes:
    """What a test of each candidate is expected to cost in lab minutes, per b of a ladder:
    ``install`` (N) unless a rig has it, then the boots and a swap per b (``per_b``, (L, 3):
    b, the boots a bad commit takes, the chance it fails) at ``boot`` and ``swap`` minutes."""

    install: np.ndarray
    per_b: np.ndarray
    boot: float
    swap: float

    def of(self, u: np.ndarray) -> np.ndarray:
        """The expected minutes (L, N) of candidates that are bad with probability u."""
        b, boots_if_bad, fail_if_bad = (self.per_b[:, k:k + 1] for k in range(3))
        return (self.install[None, :] + self.boot * (u[None, :] * boots_if_bad
                                                     + (1 - u[None, :]) * b)
                + self.swap * u[None, :] * fail_if_bad)


def information_per_cost(p_pass: np.ndarray, cond_entropy: np.ndarray, weight: float,
                         u: np.ndarray, minutes: LabMinutes | None = None) -> np.ndarray:
    """Each test's information (L, N) over its cost, 1 + ``weight`` P(it fails), and then over
    its expected lab minutes if ``minutes`` prices it. ``p_pass``, P(each test passes), must be
    in [0, 1] (the caller clips it): the compiled kernel, where built, does it all in one pass
    after numpy's logarithms of p_pass as it is, where the numpy passes would clip it again."""
    kernels = compiled.kernels
    if kernels is None:
        score = information_bits(p_pass, cond_entropy)
        score /= 1 + weight * (1 - p_pass)
        if minutes is not None:
            score /= minutes.of(u)
        return score
    p_pass = np.ascontiguousarray(p_pass, dtype=float)
    cond_entropy, u = (np.ascontiguousarray(a, dtype=float) for a in (cond_entropy, u))
    score = np.empty(p_pass.shape)
    install, per_b, consts = _prices(minutes, len(p_pass), weight)
    pieces = _chunks(*p_pass.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for rows, columns in pieces:
            part = p_pass[rows, columns]
            kernels.lab_scores(part, *_logs(part), cond_entropy[rows, columns], u[columns],
                               install[columns] if len(install) else install, per_b[rows],
                               consts, score[rows, columns])
    return score


def sums_per_cost(sums: np.ndarray, good: np.ndarray, weight: float,
                  minutes: LabMinutes | None = None) -> np.ndarray:
    """:func:`information_per_cost` (L, N) of candidates given by their ancestor sums (k, N):
    u, the L sums of P(pass | bad) and the L of its entropy, and, where a good commit can fail
    (k = 1 + 4 L), the L sums of P(pass | good) and of its entropy; ``good`` (2, L): per b,
    the totals of those last two (a good commit always passes: the total mass, and 0).

    The compiled kernel, where numpy's log and log1p are the C library's, takes each run of
    neighbouring candidates with the same sums and price once (above a hunt's lowest failure,
    most of them): one pass, a fraction of the numpy passes' cost on a thousand candidates."""
    sums, good = np.asarray(sums, dtype=float), np.asarray(good, dtype=float)
    width = len(good[0])
    kernels = compiled.exact_math()
    if kernels is not None:
        score = np.empty((width, sums.shape[1]))
        kernels.sum_scores(np.ascontiguousarray(sums), np.ascontiguousarray(good),
                           *_prices(minutes, width, weight), score)
        return score
    u, p_pass, cond = pass_terms(sums, good)
    return information_per_cost(p_pass, cond, weight, u, minutes)


def pass_terms(sums: np.ndarray, good: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """u (N,), P(each test passes) (L, N), clipped, and the expected entropy of its outcome
    given the culprit (L, N), from ancestor sums and totals laid out as :func:`sums_per_cost`
    takes them."""
    width = len(good[0])
    bad_in, h_bad_in = sums[1:1 + width], sums[1 + width:1 + 2 * width]
    if len(sums) == 1 + 2 * width:
        good_in, h_good_in = sums[:1], 0.0
    else:
        good_in, h_good_in = sums[1 + 2 * width:1 + 3 * width], sums[1 + 3 * width:]
    p_pass = np.clip(bad_in + good[0][:, None] - good_in, 0.0, 1.0)
    return np.clip(sums[0], 0.0, 1.0), p_pass, h_bad_in + good[1][:, None] - h_good_in


def _prices(minutes: LabMinutes | None, rows: int, weight: float
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the score kernels take of ``minutes`` and the failure ``weight``: install (empty:
    unpriced), per_b, and the constants ln 2, weight, boot and swap."""
    if minutes is None:
        return np.empty(0), np.empty((rows, 3)), np.array([float(LN2), weight, 0.0, 0.0])
    return (np.ascontiguousarray(minutes.install, dtype=float),
            np.ascontiguousarray(minutes.per_b, dtype=float),
            np.array([float(LN2), weight, minutes.boot, minutes.swap]))


def _chunks(rows: int, columns: int) -> list[tuple[slice, slice]]:
    """Pieces of a C-order (rows, columns) matrix, each contiguous, of about CHUNK cells (whole
    rows together where they fit, else a row's piece at a time): the logarithms of a piece are
    the only other arrays as long as it."""
    if rows * columns <= CHUNK:
        return [(slice(None), slice(None))]
    if columns <= CHUNK:
        step = CHUNK // columns
        return [(slice(row, row + step), slice(None)) for row in range(0, rows, step)]
    return [(slice(row, row + 1), slice(start, start + CHUNK))
            for row in range(rows) for start in range(0, columns, CHUNK)]


def capacity(p: float, f: float = 0.0) -> float:
    """Capacity C(p, f) of one boot, in bits: max over u of the information."""
    u = np.linspace(0.0, 1.0, 20001)
    return float(z_channel_information(u, p, f).max())


def lower_bound_tests(n: int, p: float, f: float = 0.0, delta: float = 0.01) -> float:
    """Fano bound on expected boots to name the culprit among n with error delta (§2)."""
    bits = (1 - delta) * np.log2(n) - float(entropy_bits(delta))
    return max(bits, 0.0) / capacity(p, f)


@dataclass(frozen=True)
class RateModel:
    """Grids and priors for the detection rate p and the false-positive rate f."""

    p_grid: np.ndarray
    p_prior: np.ndarray
    f_grid: np.ndarray
    f_prior: np.ndarray

    @classmethod
    def build(cls, detect: float | None = None, false_positive: float | None = 0.0,
              points: int = 48, deterministic_mass: float = 0.1, caution: float = 0.5,
              fp_grid: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03),
              fp_prior: tuple[float, ...] = (0.7, 0.1, 0.1, 0.1),
              hint: DetectHint | None = None) -> RateModel:
        """p unknown on (0, 1] unless ``detect`` fixes it; f fixed, or learnt (None) on a grid.

        The prior on p is a point mass on a deterministic bug (p = 1) plus a density
        proportional to (1 - p)^caution on a grid fine in log-odds: over-estimating p makes a
        hunt confidently wrong while under-estimating it only costs tests, so the prior leans low.
        A ``hint`` (what a bug report says of p) takes over half of that prior: it leans it, and
        never rules a rate out.
        """
        if detect is not None:
            p_grid, p_prior = np.array([detect]), np.array([1.0])
        else:
            edges = 1 / (1 + np.exp(-np.linspace(np.log(0.005 / 0.995), np.log(0.995 / 0.005),
                                                 points + 1)))
            edges[0], edges[-1] = 0.0, 1.0
            p_grid = np.append((edges[:-1] + edges[1:]) / 2, 1.0)
            density = (1 - edges[:-1]) ** (caution + 1) - (1 - edges[1:]) ** (caution + 1)
            p_prior = np.append(density / density.sum() * (1 - deterministic_mass),
                                deterministic_mass)
            if hint is not None:
                p_prior = (1 - HINT_WEIGHT) * p_prior + HINT_WEIGHT * hint.cells(edges)
        if false_positive is not None:
            f_grid, f_prior = np.array([false_positive]), np.array([1.0])
        else:
            f_grid, f_prior = np.array(fp_grid), np.array(fp_prior) / sum(fp_prior)
        return cls(p_grid, p_prior, f_grid, f_prior)

    def at_detect(self, p: float) -> RateModel:
        """The same model with p fixed (the rates of f kept): one per p, kept, so that what it
        works out once (its log prior, its survival) a verdict's every check does not redo."""
        kept = self._at_detect
        if p not in kept:
            kept[p] = replace(self, p_grid=np.array([p]), p_prior=np.array([1.0]))
        return kept[p]

    @cached_property
    def _at_detect(self) -> dict[float, RateModel]:
        return {}

    @cached_property
    def p_known(self) -> bool:
        """Whether p is assumed (one point), not learnt."""
        return len(self.p_grid) == 1

    @cached_property
    def deterministic(self) -> bool:
        """Whether the bug is assumed to show at every boot (p = 1)."""
        return bool(np.all(self.p_grid == 1.0))

    @cached_property
    def no_false_positives(self) -> bool:
        """Whether a good commit is assumed never to fail (f = 0)."""
        return bool(np.all(self.f_grid == 0.0))

    def ladder_terms(self, ladder: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per p of the grid and b of ``ladder`` (P, L): the expected boots of a test of up to
        b boots of a bad commit (it stops at the first failure), and P(it fails)."""
        key = tuple(ladder)
        if key not in self._ladder_terms:
            p, b = self.p_grid, np.asarray(ladder, dtype=float)
            survive = (1 - p)[:, None] ** b[None, :]
            self._ladder_terms[key] = (
                np.where(p[:, None] > 0, (1 - survive) / np.maximum(p, 1e-12)[:, None],
                         b[None, :]), 1 - survive)
        return self._ladder_terms[key]

    @cached_property
    def _ladder_terms(self) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
        return {}

    def survival(self, ladder: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """P(all of b boots pass) per b of ``ladder``, at a bad commit for every (p, f) pair
        (L, P, F) and at a good one for every f (L, F)."""
        key = tuple(ladder)
        if key not in self._survival:
            b = np.asarray(ladder, dtype=float)
            self._survival[key] = ((1 - self.fail_rates())[None] ** b[:, None, None],
                                   (1 - self.f_grid)[None] ** b[:, None])
        return self._survival[key]

    @cached_property
    def _survival(self) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
        return {}

    def fail_rates(self) -> np.ndarray:
        """Per-boot failure rate of a bad commit, for every (p, f) pair: shape (P, F)."""
        return self._fail_rates

    def log_prior(self) -> np.ndarray:
        """Log prior of every (p, f) pair: shape (P, F) (read-only)."""
        return self._log_prior

    @cached_property
    def _fail_rates(self) -> np.ndarray:
        return np.broadcast_to(self.p_grid[:, None], (len(self.p_grid), len(self.f_grid)))

    @cached_property
    def _log_prior(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            out = np.log(self.p_prior)[:, None] + np.log(self.f_prior)[None, :]
        out.flags.writeable = False
        return out


@dataclass(frozen=True)
class DetectHint:
    """What a bug report says of the detection rate p: a range of p, or a Beta(a, b) density.

    Parsed from text: '10-30 reboots' (the bug shows within 10 to 30 boots: p in [1/30, 1/10]),
    '20 reboots' (p about 1/20: [1/40, 1/10]), '0.03-0.1' (a range of p), 'beta(2, 38)'.
    """

    low: float = 0.0
    high: float = 1.0
    beta: tuple[float, float] | None = None

    @classmethod
    def parse(cls, text: str) -> DetectHint:
        """The hint in ``text``; ValueError, saying what is understood, if it is not one."""
        t = text.strip().lower()
        number = r"(\d+(?:\.\d*)?|\.\d+)"
        if m := re.fullmatch(rf"beta\(\s*{number}\s*,\s*{number}\s*\)", t):
            a, b = float(m[1]), float(m[2])
            if not (0 < a <= 1e6 and 0 < b <= 1e6):
                raise ValueError(f"beta({a:g}, {b:g}) needs 0 < a, b <= 1e6")
            return cls(beta=(a, b))
        if m := re.fullmatch(rf"{number}\s*(?:-|to|\.\.)\s*{number}\s*(reboots?|boots?)?", t):
            a, b = sorted((float(m[1]), float(m[2])))
            if m[3]:
                if not 1 <= a <= b <= 1e9:
                    raise ValueError(f"'{text}': boot counts must lie in [1, 1e9]")
                return cls(1 / b, 1 / a)
            if not 0 < a <= b <= 1:
                raise ValueError(f"'{text}': a range of p must lie in (0, 1]")
            return cls(a, b)
        if m := re.fullmatch(rf"{number}\s*(reboots?|boots?)", t):
            n = float(m[1])
            if not 1 <= n <= 1e9:
                raise ValueError(f"'{text}': a boot count must lie in [1, 1e9]")
            return cls(min(1.0, 1 / (2 * n)), min(1.0, 2 / n))
        raise ValueError(f"'{clipped(text)}' is not a detection-rate hint (try '10-30 reboots', "
                         "'0.03-0.1' or 'beta(2, 38)')")

    def cells(self, edges: np.ndarray) -> np.ndarray:
        """The hint's probability of each cell of the p grid (plus 0 for the point p = 1)."""
        if self.beta is not None:
            mass = np.diff(betainc(self.beta[0], self.beta[1], edges))
        else:  # uniform in log p over [low, high], cut at the grid's ends
            lo, hi = np.log(max(self.low, 1e-12)), np.log(self.high)
            e = np.log(np.clip(edges, 1e-12, 1.0))
            width = max(hi - lo, 1e-9)
            mass = np.clip(np.minimum(e[1:], hi) - np.maximum(e[:-1], lo), 0.0, None) / width
            if mass.sum() == 0:  # a point: the cell it falls in
                mass[min(np.searchsorted(edges, self.high) - 1, len(mass) - 1)] = 1.0
        return np.append(mass / mass.sum(), 0.0)


def _index_type(count: int) -> np.dtype:
    """The smallest integer type that indexes ``count`` items (a byte per candidate, mostly)."""
    return np.dtype(np.uint8 if count <= 256 else np.uint16 if count <= 65536 else np.int64)


class Evidence:
    """Per candidate, the boots and failures of tests of its descendants-or-self.

    Kept as the distinct (boots, failures) pairs, sorted, and each candidate's pair: candidates
    sharing a pair share a likelihood, and however many the candidates the pairs are few, so a
    test costs a few passes over the candidates and no sort of them.
    """

    def __init__(self, n: int):
        self.pair = np.zeros(n, dtype=np.uint8)              # each candidate's pair
        self.pair_boots = np.zeros(min(n, 1), dtype=np.int64)
        self.pair_fails = np.zeros(min(n, 1), dtype=np.int64)
        self.boots = 0
        self.fails = 0

    @property
    def boots_below(self) -> np.ndarray:
        return self.pair_boots[self.pair]

    @property
    def fails_below(self) -> np.ndarray:
        return self.pair_fails[self.pair]

    def copy(self) -> Evidence:
        """An independent copy (to weigh an outcome without taking it in)."""
        other = Evidence(0)
        other.pair, other.pair_boots = self.pair.copy(), self.pair_boots.copy()
        other.pair_fails, other.boots, other.fails = self.pair_fails.copy(), self.boots, self.fails
        return other

    def add(self, ancestors: np.ndarray, boots: int, failures: int) -> None:
        """A test of a commit whose ancestors-or-self (among candidates) are ``ancestors``."""
        ancestors = np.asarray(ancestors)
        if compiled.kernels is not None and len(self.pair_boots) and _indices(ancestors):
            self._add_compiled(ancestors, boots, failures)
        else:  # numpy's passes, which read a mask, or a negative index from the end, as numpy does
            self._add(ancestors, boots, failures)
        self.boots += boots
        self.fails += failures

    def _add_compiled(self, ancestors: np.ndarray, boots: int, failures: int) -> None:
        """:meth:`_add`'s pairs and ranks in one compiled pass (split_pairs)."""
        room = 2 * len(self.pair_boots)
        pair, pair_boots, pair_fails = (np.empty(len(self.pair), dtype=np.int64),
                                        np.empty(room, dtype=np.int64), np.empty(room, dtype=np.int64))
        count = compiled.kernels.split_pairs(
            self.pair.astype(np.int64), np.asarray(ancestors, dtype=np.int64), self.pair_boots,
            self.pair_fails, np.array([boots, failures], dtype=np.int64), pair, pair_boots,
            pair_fails)
        self.pair = pair.astype(_index_type(count))
        self.pair_boots, self.pair_fails = pair_boots[:count].copy(), pair_fails[:count].copy()

    def _add(self, ancestors: np.ndarray, boots: int, failures: int) -> None:
        """The pairs :meth:`add` leaves, in numpy passes: each pair split by whether the tested
        commit is bad for its candidates, the distinct ones sorted and ranked."""
        split = self.pair.astype(np.intp)
        split *= 2
        split[ancestors] += 1                   # 2 u + 1: pair u, and the tested commit is bad
        used = np.flatnonzero(np.bincount(split, minlength=2 * len(self.pair_boots)))
        bad = used % 2
        pair_boots = self.pair_boots[used // 2] + bad * boots
        pair_fails = self.pair_fails[used // 2] + bad * failures
        order = np.lexsort((pair_fails, pair_boots))
        pair_boots, pair_fails = pair_boots[order], pair_fails[order]
        first = np.empty(len(pair_boots), dtype=bool)
        first[:1] = True
        np.not_equal(pair_boots[1:], pair_boots[:-1], out=first[1:])
        first[1:] |= pair_fails[1:] != pair_fails[:-1]
        rank = np.zeros(2 * len(self.pair_boots), dtype=_index_type(int(first.sum())))
        rank[used[order]] = np.cumsum(first) - 1
        self.pair = rank[split]
        self.pair_boots, self.pair_fails = pair_boots[first], pair_fails[first]


def _indices(a: np.ndarray) -> bool:
    """Whether ``a`` holds plain indices (integers, none negative), which the kernels take."""
    return a.dtype.kind == "u" or (a.dtype.kind == "i" and (a.size == 0 or a.min() >= 0))


@dataclass(frozen=True)
class Posterior:
    """The posterior over the culprit, and over the rates."""

    mass: np.ndarray       # P(culprit = c), over candidates
    rates: np.ndarray      # P(p = p_j, f = f_k), shape (P, F)
    model: RateModel
    conditional: np.ndarray  # P(p_j, f_k | culprit in likelihood class u), shape (U, P, F)
    classes: np.ndarray      # the likelihood class of each candidate, shape (N,)

    @property
    def p_mass(self) -> np.ndarray:
        return self.rates.sum(axis=1)

    @property
    def f_mass(self) -> np.ndarray:
        return self.rates.sum(axis=0)

    @property
    def p_mean(self) -> float:
        return float(self.p_mass @ self.model.p_grid)

    @property
    def f_mean(self) -> float:
        return float(self.f_mass @ self.model.f_grid)

    def pass_given_culprit(self, boots: int) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate c, P(all of b boots pass | culprit c) at a bad and at a good commit.

        The rates are summed out given c: the past tests that c makes bad tell how often the bug
        shows, so a test of a surely bad commit still says something about c.
        """
        bad, good = self.pass_by_class([boots]), self.good_pass_by_class([boots])
        return bad[self.classes, 0], good[self.classes, 0]

    def pass_by_class(self, ladder: Sequence[int]) -> np.ndarray:
        """P(all of b boots pass | culprit c) at a bad commit, per likelihood class of c
        (``classes`` maps candidates to them) and per b of ``ladder``: shape (U, L)."""
        return np.einsum("upf,lpf->ul", self.conditional, self.model.survival(ladder)[0])

    def good_pass_by_class(self, ladder: Sequence[int]) -> np.ndarray:
        """:meth:`pass_by_class` at a good commit (all 1 where no false positive is possible)."""
        return np.einsum("uf,lf->ul", self.conditional.sum(axis=1), self.model.survival(ladder)[1])


def compute_posterior(evidence: Evidence, log_prior: np.ndarray, model: RateModel) -> Posterior:
    """The exact joint posterior, summed over the rate grids."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return _compute_posterior(evidence, log_prior, model)


def culprit_mass(evidence: Evidence, log_prior: np.ndarray, model: RateModel,
                 i: int | np.ndarray) -> float:
    """The posterior mass of candidate i (of the candidates i, for an index array), without
    the posterior over the rates: what a verdict's check needs, bit for bit
    :func:`compute_posterior`'s ``mass[i].sum()``, at a fraction of its cost."""
    with np.errstate(invalid="ignore", divide="ignore"):
        _, _, log_mass, total = _log_mass(evidence, log_prior, model)
        return float(np.sum(np.exp(log_mass[i] - total)))


def _log_mass(evidence: Evidence, log_prior: np.ndarray, model: RateModel
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The joint log likelihood and prior of each pair and rates (U, P, F), summed over the
    rates (U,), each candidate's unnormalised log mass (N,) and its log total; ValueError if
    every candidate is impossible."""
    b = evidence.pair_boots.astype(float)[:, None]
    k = evidence.pair_fails.astype(float)[:, None]
    p = model.p_grid[None, :]  # a bad commit's failure rate is p, whatever f (fail_rates)
    f = model.f_grid[None, :]
    tb, tk = float(evidence.boots), float(evidence.fails)
    # the terms in p and in f are taken on (U, P) and (U, F), then added in the order the
    # (U, P, F) sum of all four would add them: the same bits for a fraction of the logarithms
    on_p = xlogy(k, p) + xlog1py(b - k, -p)
    on_f, on_f2 = xlogy(tk - k, f), xlog1py(tb - b - tk + k, -f)
    kernels = compiled.exact_math()
    if kernels is not None:
        joint = np.empty((len(b), len(model.p_grid), len(model.f_grid)))
        per_pair = np.empty(len(b))
        kernels.pair_likelihoods(on_p, on_f, on_f2, model.log_prior(), joint, per_pair)
    else:
        loglik = on_p[:, :, None] + on_f[:, None, :]
        loglik += on_f2[:, None, :]
        loglik[np.isnan(loglik)] = -np.inf
        joint = loglik + model.log_prior()[None, :, :]          # (U, P, F)
        per_pair = _logsumexp(joint, axis=(1, 2))                 # (U,)
    log_mass = log_prior + per_pair[evidence.pair]
    total = _logsumexp(log_mass, None)
    if not np.isfinite(total):
        raise ValueError("the observations are impossible under the model")
    return joint, per_pair, log_mass, total


def _compute_posterior(evidence: Evidence, log_prior: np.ndarray, model: RateModel) -> Posterior:
    inverse = evidence.pair
    joint, per_pair, log_mass, total = _log_mass(evidence, log_prior, model)
    log_mass -= total
    mass = np.exp(log_mass, out=log_mass)
    pair_weight = np.bincount(inverse, weights=_prior_weights(log_prior), minlength=len(per_pair))
    kernels = compiled.exact_math()
    if kernels is not None:
        rate_joint, conditional = np.empty(joint.shape[1:]), np.empty(joint.shape)
        kernels.rate_posteriors(joint, per_pair, np.log(pair_weight), rate_joint, conditional)
    else:
        rate_joint, conditional = _rates_and_conditional(joint, per_pair, pair_weight)
    rate_joint = np.exp(rate_joint - _logsumexp(rate_joint, None))
    return Posterior(mass, rate_joint, model, conditional, inverse)


def _rates_and_conditional(joint: np.ndarray, per_pair: np.ndarray, pair_weight: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray]:
    """The log posterior of the rates, unnormalised (P, F), and P(rates | the culprit's pair)
    (U, P, F), 0 for a pair the data rule out."""
    rate_joint = _logsumexp(joint + np.log(pair_weight)[:, None, None], axis=0)
    possible = np.isfinite(per_pair)
    if possible.all():
        conditional = np.exp(joint - per_pair[:, None, None])
    else:
        conditional = np.zeros_like(joint)
        conditional[possible] = np.exp(joint[possible] - per_pair[possible, None, None])
    return rate_joint, conditional


_last_prior: tuple[np.ndarray, np.ndarray] | None = None  # a log prior and its weights
PRIOR_WEIGHTS_KEPT = 1 << 16  # the longest log prior whose weights are kept


def _prior_weights(log_prior: np.ndarray) -> np.ndarray:
    """exp(log_prior - max), kept for the log prior last asked about (a hunt asks about its
    own, unchanged, at every update) unless it is long (then it costs little next to the rest)."""
    global _last_prior
    last = _last_prior
    if last is not None and last[0] is log_prior:
        return last[1]
    weights = np.exp(log_prior - log_prior.max())
    if len(log_prior) <= PRIOR_WEIGHTS_KEPT:
        _last_prior = (log_prior, weights)
    return weights
