"""Drift statistics on binned counts: PSI, Jensen–Shannon, chi-squared, KS and Wasserstein.

Everything here works on counts accumulated against the reference (bin counts, category counts, or
counts and sums on the reference's value grid), never on the raw batch, so a batch can be streamed in
chunks. The one exception, :func:`wasserstein`'s optional ``values``, makes the distance exact when the
whole batch is in memory.

Sample-size aware PSI threshold
-------------------------------
With reference and current bin shares ``r_i`` and ``c_i``, ``PSI = Σ (c_i - r_i) ln(c_i / r_i)``.
Expanding the log to second order gives ``PSI ≈ Σ (c_i - r_i)² / r_i``. Under no drift both samples
come from the same multinomial ``p``, and ``Var(c_i - r_i) = p_i (1 - p_i) (1/n_ref + 1/n_cur)``, so
``n_eff · PSI`` with ``n_eff = n_ref · n_cur / (n_ref + n_cur)`` is Pearson's two-sample
chi-squared statistic: approximately ``χ²(k - 1)`` for ``k`` non-empty reference bins. Hence
``E[PSI] ≈ (k - 1)(1/n_ref + 1/n_cur)``, and a chance allowance ``χ²_q(k - 1) / n_eff`` (``q`` =
``psi.chance_quantile``) is added to each configured threshold: never below the configured value,
and vanishing as batches grow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats as sps
from scipy.special import chdtrc, gammaincinv, rel_entr


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, epsilon: float) -> float:
    """Population stability index of two count vectors over the same bins.

    Empty bins get share ``epsilon`` (on the side where they are empty, without renormalising, which
    distorts each share by at most ``epsilon``), so an empty bin adds a large but finite term.
    """
    r = np.maximum(ref_counts / ref_counts.sum(), epsilon)
    c = np.maximum(cur_counts / cur_counts.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


@lru_cache(maxsize=4096)  # the same few (bins, sizes) recur every day, and the chi2 quantile is slow
def chance_psi(k: int, n_ref: int, n_cur: int, quantile: float) -> float:
    """The ``quantile`` of PSI under no drift for ``k`` non-empty bins (see the module docstring)."""
    if k < 2 or n_ref == 0 or n_cur == 0:
        return 0.0
    n_eff = n_ref * n_cur / (n_ref + n_cur)
    # chi2.ppf's own formula, without the distribution object's overhead (~0.1 ms a call, 100+ calls a report)
    return float(2 * gammaincinv((k - 1) / 2, quantile) / n_eff)


def js_distance(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance in base 2 (0 = same, 1 = disjoint); equals scipy's ``jensenshannon``."""
    p = ref_counts / ref_counts.sum()
    q = cur_counts / cur_counts.sum()
    m = (p + q) / 2
    divergence = (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / 2 / np.log(2)
    return float(np.sqrt(max(divergence, 0.0)))  # rounding may leave -1e-17 for identical inputs


@dataclass(frozen=True)
class TestResult:
    """A two-sample test: its statistic, p-value, and effect size (KS D, or Cramér's V)."""

    statistic: float
    p_value: float
    effect: float


def chi2_test(ref_counts: np.ndarray, cur_counts: np.ndarray) -> TestResult:
    """Chi-squared homogeneity test of a 2×k table, without Yates' correction.

    Equals ``scipy.stats.chi2_contingency(table, correction=False)`` on the table of the categories
    seen on either side; Yates' correction is left out because it only applies to 2×2 tables and would
    make binary features less sensitive than the others.
    """
    table = np.vstack([ref_counts, cur_counts]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return TestResult(0.0, 1.0, 0.0)  # one category on both sides: nothing to compare
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    p_value = float(chdtrc(table.shape[1] - 1, statistic))  # = chi2.sf, without the distribution object
    return TestResult(statistic, p_value, float(np.sqrt(statistic / table.sum())))


@dataclass(frozen=True)
class GridCounts:
    """A numeric batch accumulated on the reference grid ``r_0 < … < r_{K-1}``.

    Slot ``i`` of each array (length ``K + 1``) holds the values with ``r_{i-1} <= x < r_i`` (slot 0:
    below ``r_0``; slot ``K``: at or above ``r_{K-1}``): their count, their sum, and how many equal
    ``r_{i-1}`` exactly (ties matter for the KS statistic).
    """

    counts: np.ndarray
    sums: np.ndarray
    ties: np.ndarray

    @property
    def n(self) -> int:
        return int(self.counts.sum())


def grid_slots(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Slot of each value on ``grid`` (see :class:`GridCounts`); ``x`` must hold no NaN."""
    return np.searchsorted(grid, x, side="right")


def grid_ties(grid: np.ndarray, x: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Which values equal the grid point at the bottom of their slot."""
    return (slots > 0) & (x == grid[np.maximum(slots - 1, 0)])


def grid_counts(grid: np.ndarray, x: np.ndarray, slots: np.ndarray, tied: np.ndarray | None = None) -> GridCounts:
    size = len(grid) + 1
    tied = grid_ties(grid, x, slots) if tied is None else tied
    return GridCounts(
        np.bincount(slots, minlength=size),
        np.bincount(slots, weights=x, minlength=size),
        np.bincount(slots[tied], minlength=size),
    )


def grouped_grid_counts(
    size: int, x: np.ndarray, slots: np.ndarray, tied: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`grid_counts` of each group at once: ``(n_groups, size)`` counts, sums and ties.

    ``groups`` holds each value's group in ``0..n_groups-1``.
    """
    cell = groups * size
    cell += slots  # in place: one temporary the size of the chunk, not two
    shape, length = (n_groups, size), n_groups * size
    return (
        np.bincount(cell, minlength=length).reshape(shape),
        np.bincount(cell, weights=x, minlength=length).reshape(shape),
        np.bincount(cell[tied], minlength=length).reshape(shape),
    )


def coarsen(counts: GridCounts, grid: np.ndarray, target: np.ndarray) -> GridCounts:
    """Counts on ``grid`` re-expressed on ``target``, a subset of its points (exact: slots nest).

    A fine slot starting at a target point carries that point's ties; the others carry none.
    """
    slot = np.concatenate([[0], np.searchsorted(target, grid, side="right")])
    starts = np.concatenate([[False], np.isin(grid, target)])
    size = len(target) + 1
    return GridCounts(
        np.bincount(slot, weights=counts.counts, minlength=size).astype(np.int64),
        np.bincount(slot, weights=counts.sums, minlength=size),
        np.bincount(slot[starts], weights=counts.ties[starts], minlength=size).astype(np.int64),
    )


def ks_test(grid: np.ndarray, cdf: np.ndarray, n_ref: int, cur: GridCounts) -> TestResult:
    """Two-sample KS of the batch against the reference ECDF ``cdf`` given on ``grid``.

    The supremum of ``|F_cur - F_ref|`` is attained at a grid point or just below one (``F_ref`` is
    constant between grid points while ``F_cur`` only rises), so the slot counts give it exactly. When
    the grid is the full reference sample this is scipy's statistic; from a quantile summary it is
    within the summary's ECDF error. The p-value is Smirnov's asymptotic distribution, as
    ``scipy.stats.ks_2samp(method="asymp")``.
    """
    n = cur.n
    below = np.cumsum(cur.counts)[:-1]  # values < r_j
    at_or_below = below + cur.ties[1:]
    prev_cdf = np.concatenate([[0.0], cdf[:-1]])
    d = float(max(np.abs(at_or_below / n - cdf).max(), np.abs(below / n - prev_cdf).max()))
    m, k = sorted([float(n_ref), float(n)], reverse=True)
    p_value = float(np.clip(sps.kstwo.sf(d, np.round(m * k / (m + k))), 0, 1))
    return TestResult(d, p_value, d)


def wasserstein(
    grid: np.ndarray,
    cdf: np.ndarray,
    cur: GridCounts,
    values: np.ndarray | None = None,
    slots: np.ndarray | None = None,
) -> tuple[float, float]:
    """Wasserstein-1 distance ``∫|F_cur - F_ref| dx`` and a bound on its error from the batch side.

    Between grid points ``F_ref`` is a constant ``c``; where ``F_cur - c`` keeps its sign the integral
    follows exactly from the slot's count and sum. Where it changes sign inside a slot, the exact value
    needs the batch's values there: given ``values`` (and their ``slots``) it is computed exactly,
    otherwise the midpoint of the interval ``[|S|, |S| + 2·h·min(b - c, c - a)]`` is used and the half
    width returned as the bound (``h`` the slot width, ``a``/``b`` ``F_cur`` at its ends).
    """
    n = cur.n
    counts, sums = cur.counts.astype(float), cur.sums
    below = np.cumsum(counts)  # below[j] = values < r_j (j < K)
    total = (counts[0] * grid[0] - sums[0] + sums[-1] - counts[-1] * grid[-1]) / n  # the two tails
    if len(grid) == 1:
        return float(total), 0.0
    lo, hi = grid[:-1], grid[1:]
    width, level = hi - lo, cdf[:-1]
    start = (below[:-2] + cur.ties[1:-1]) / n  # F_cur at lo
    end = below[1:-1] / n  # F_cur just below hi
    signed = (below[:-2] * width + counts[1:-1] * hi - sums[1:-1]) / n - level * width
    rising = start >= level
    falling = ~rising & (end <= level)
    crossing = ~rising & ~falling
    total += signed[rising].sum() - signed[falling].sum()
    if not crossing.any():
        return float(total), 0.0
    if values is None:
        slack = width[crossing] * np.minimum(end[crossing] - level[crossing], level[crossing] - start[crossing])
        return float(total + np.abs(signed[crossing]).sum() + slack.sum()), float(slack.sum())
    return float(total + _crossing_exact(grid, level, below, n, crossing, values, slots)), 0.0


def _crossing_exact(grid, level, below, n, crossing, values, slots) -> float:
    """``∫|F_cur - c|`` over the slots where the sign changes, from the batch values inside them."""
    in_crossing = np.zeros(len(grid) + 1, dtype=bool)
    in_crossing[1:-1] = crossing
    v = np.sort(values[in_crossing[slots]])
    s = grid_slots(grid, v)  # sorted values keep their slots in order
    first = np.searchsorted(s, s, side="left")
    rank = np.arange(len(v)) - first
    last = np.append(s[1:] != s[:-1], True)
    nxt = np.where(last, grid[np.minimum(s, len(grid) - 1)], np.append(v[1:], 0.0))
    c = level[s - 1]
    inside = ((nxt - v) * np.abs((below[s - 1] + rank + 1) / n - c)).sum()
    heads = first == np.arange(len(v))
    lead = ((v[heads] - grid[s[heads] - 1]) * np.abs(below[s[heads] - 1] / n - c[heads])).sum()
    return float(inside + lead)


def adjust_p_values(p_values: list[float], method: str) -> list[float]:
    """Holm (family-wise error) or Benjamini–Hochberg (false discovery rate) adjusted p-values."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p)
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adjusted = np.minimum.accumulate((m / np.arange(1, m + 1) * ranked)[::-1])[::-1]
    else:
        raise ValueError(f"unknown multiple-testing correction '{method}' (expected 'holm' or 'bh')")
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()
