"""Failure labels: when did the champion fail, and which days precede a failure.

A day ``d`` *fails* when, on the labels of the ``window_days`` days ending on ``d`` (known
``label_delay_days`` later; a window of a few days narrows the bounds), the champion's
ROC AUC is confidently more than ``tolerance`` below its reference AUC (the one-sided DeLong upper
bound at ``confidence`` is under ``reference_auc - tolerance``), or its F1 is confidently more than
``f1_relative_drop`` below the reference F1 (the bootstrap upper bound at ``confidence`` is under
``(1 - f1_relative_drop) * reference_f1``). A day with fewer than ``min_labels`` labels, or fewer than
``min_class_count`` of either class in its window, has no failure status (``None``): at 26 % churn an
AUC from 200 labels is only good to about ±0.04, so smaller windows say nothing either way.
Requiring confidence keeps sampling noise from labelling stable days as failures (a noisy "failure"
on one stable day in 60 would mark 7 stable days as "failure coming").

The *failure label* of day ``t`` is 1 when any of days ``t+1 … t+horizon`` fails, 0 when none of them
fails, at least one of them has a status and the whole window lies inside the data, else ``None``.

This is the only failure rule: the daily run's ``performance.is_measured_failure`` calls
:func:`day_failure` on the same pooled window, and ``performance.delong_auc`` is :func:`delong_auc`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from churnguard.failure.config import FailureDefinition

F1_BOOTSTRAP = 200


def midranks(x: np.ndarray) -> np.ndarray:
    """``scipy.stats.rankdata(x)`` (average ranks of ties), without its overhead on small arrays: every
    rank is a half-integer, exact in floating point, so both give the same numbers."""
    x = np.asarray(x, dtype=float)
    if np.isnan(x).any():
        return sps.rankdata(x)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_x[1:] != sorted_x[:-1]]))
    ends = np.append(starts[1:], len(x))
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(0.5 * (starts + ends + 1), ends - starts)
    return ranks


def delong_auc(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong (1988) standard error, from mid-ranks (ties count one half)."""
    y = np.asarray(y).astype(bool)
    pos, neg = scores[y], scores[~y]
    m, n = len(pos), len(neg)
    ranks_all = midranks(np.concatenate([pos, neg]))
    v10 = (ranks_all[:m] - midranks(pos)) / n  # per positive: share of negatives scored below
    v01 = 1 - (ranks_all[m:] - midranks(neg)) / m  # per negative: share of positives scored above
    auc = float(v10.mean())
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return auc, math.sqrt(max(var, 0.0))


def f1_with_upper(y: np.ndarray, pred: np.ndarray, quantile: float, seed: int = 0) -> tuple[float, float]:
    """F1 and the ``quantile`` of its bootstrap distribution (customers resampled with replacement).

    F1 depends on a resample only through its confusion counts, and resampling ``n`` customers with
    replacement draws those counts from a multinomial over the four cells: the same distribution in
    O(replicates) instead of O(replicates x customers) time and memory.
    """
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)

    def f1(tp, fp, fn):
        return 2 * tp / np.maximum(2 * tp + fp + fn, 1)

    cells = np.array([(y & pred).sum(), (~y & pred).sum(), (y & ~pred).sum(), (~y & ~pred).sum()])
    point = float(f1(*cells[:3]))
    if not len(y):
        return point, point
    boot = np.random.default_rng(seed).multinomial(len(y), cells / len(y), size=F1_BOOTSTRAP)
    return point, float(np.quantile(f1(boot[:, 0], boot[:, 1], boot[:, 2]), quantile))


def label_day_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, confidence: float = 0.95) -> dict:
    """Metrics of labelled customers (a day, or a pooled window) and the one-sided bounds at ``confidence``
    that :func:`day_failure` needs; ``performance.day_metrics`` is this function.

    ``roc_auc``/``roc_auc_lower``/``roc_auc_upper`` are None when a class is missing.
    """
    y, scores = np.asarray(y).astype(int), np.asarray(scores, dtype=float)
    pred = scores >= threshold
    n_pos, tp = int(y.sum()), int((pred & (y == 1)).sum())
    f1, f1_upper = f1_with_upper(y, pred, confidence) if len(y) else (0.0, 0.0)
    out = {
        "labelled_rows": len(y),
        "positives": n_pos,
        "negatives": len(y) - n_pos,
        "churn_rate": float(y.mean()) if len(y) else None,
        "f1": f1,
        "f1_upper": f1_upper,
        "precision": tp / int(pred.sum()) if pred.any() else 0.0,
        "recall": tp / n_pos if n_pos else 0.0,
        "brier": float(np.mean((scores - y) ** 2)) if len(y) else None,
        "mean_score": float(scores.mean()) if len(y) else None,
        "roc_auc": None,
        "roc_auc_lower": None,
        "roc_auc_upper": None,
    }
    if 0 < n_pos < len(y):
        auc, se = delong_auc(y, scores)
        z = float(sps.norm.ppf(confidence))
        out.update(roc_auc=auc, roc_auc_lower=auc - z * se, roc_auc_upper=auc + z * se)
    return out


def day_failure(metrics: dict, reference_auc: float, reference_f1: float, cfg: FailureDefinition) -> bool | None:
    """Did the champion fail on this day? ``None`` when the day has too few labels to say."""
    if (
        metrics["labelled_rows"] < cfg.min_labels
        or metrics["roc_auc"] is None
        or min(metrics["positives"], metrics["negatives"]) < cfg.min_class_count
    ):
        return None
    auc_fail = metrics["roc_auc_upper"] < reference_auc - cfg.tolerance
    f1_fail = metrics["f1_upper"] < (1 - cfg.f1_relative_drop) * reference_f1
    return bool(auc_fail or f1_fail)


def failure_labels(day_failures: list[bool | None], horizon: int) -> list[int | None]:
    """Label of each day: a failure on one of the next ``horizon`` days (see the module docstring).

    >>> failure_labels([False, False, True, None], horizon=2)
    [1, 1, None, None]
    """
    n = len(day_failures)
    out: list[int | None] = []
    for t in range(n):
        window = day_failures[t + 1 : t + 1 + horizon]
        if any(f is True for f in window):
            out.append(1)
        elif len(window) == horizon and any(f is False for f in window):
            out.append(0)
        else:
            out.append(None)
    return out
