"""Model features of a day from the signal history up to it: the day's signals, their recent mean,
their change and slope over ``trend_days``, the slow trend (change and slope over twice ``trend_days``) of
the main drift and score signals, and how many recent days showed drift.

:func:`feature_frame` builds every day of a history at once (training); :func:`failure_features` the
last day only (production). Both run the same code, so the model sees the same features in both.

Features mean the same on any dataset: the signed changes of the champion's scores (:data:`SIGNED`) enter
as their size (``<name>_abs``), because which way harmful drift moves the scores depends on which columns
drift and how they relate to churn there (Telco's simulated drifts lower the scores, mlc_churn's raise
them). Then every feature but :data:`FREE` grows with trouble, and :func:`monotone_directions` lets the
model hold it to that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# Signals whose sign says which way the scores moved: the features keep their size only.
SIGNED = (
    "score_mean_change",
    "score_std_change",
    "positive_rate_change",
    "cbpe_auc_drop",
    "cbpe_f1_drop",
    "atc_accuracy_drop",
)
# Label-free signals whose recent trend matters (drift that keeps growing is what hurts).
TRENDED = (
    "drift_weighted",
    "drift_psi_max",
    "drift_psi_mean",
    "drift_ks_max",
    "drift_share",
    "score_psi",
    "score_mean_change",
    "positive_rate_change",
    "cbpe_auc_drop",
    "cbpe_f1_drop",
    "atc_accuracy_drop",
)
# ... and whose slow trend (over twice trend_days) matters too: a covariate shift that ramps for weeks.
SLOW = (
    "drift_weighted",
    "drift_psi_max",
    "drift_js_max",
    "score_psi",
    "prediction_psi",
    "score_mean_change",
    "cbpe_auc_drop",
    "cbpe_f1_drop",
)
LABEL_FREE = (
    *TRENDED,
    "drift_js_max",
    "drift_js_mean",
    "drift_ks_mean",
    "drift_wasserstein_max",
    "drift_missing_max",
    "drift_correlation",
    "prediction_psi",
    "prediction_ks",
    "score_std_change",
)
# Features that do not grow with trouble: how many labelled days there are, and the churn rate's change
# (a prior shift moves it either way).
FREE = ("matured_days", "matured_churn_change")
MATURED = (
    "matured_days",
    "matured_auc_drop",
    "matured_auc_drop_mean3",
    "matured_auc_drop_max3",
    "matured_auc_slope",
    "matured_f1_drop",
    "matured_f1_drop_mean3",
    "matured_churn_change",
    "matured_brier_change",
)


def _slope(y: np.ndarray) -> float:
    if len(y) < 3:
        return 0.0
    x = np.arange(len(y)) - (len(y) - 1) / 2
    return float(np.sum(x * (y - y.mean())) / np.sum(x * x))


def _feature(signal: str) -> str:
    return f"{signal}_abs" if signal in SIGNED else signal


def _signal(frame: pd.DataFrame, name: str) -> pd.Series:
    values = frame[name].astype(float)
    return values.abs() if name in SIGNED else values


def feature_frame(history: pd.DataFrame | Sequence[Mapping[str, Any]], trend_days: int = 7) -> pd.DataFrame:
    """One feature row per day of ``history`` (signal dicts of one trajectory, oldest first)."""
    frame = pd.DataFrame(list(history) if not isinstance(history, pd.DataFrame) else history)
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    for name in LABEL_FREE:
        out[_feature(name)] = _signal(frame, name)
    for name in TRENDED:
        values = _signal(frame, name)
        out[f"{_feature(name)}_mean3"] = values.rolling(3, min_periods=1).mean()
        out[f"{_feature(name)}_delta"] = values - values.shift(trend_days).fillna(values.iloc[0])
        out[f"{_feature(name)}_slope"] = values.rolling(trend_days, min_periods=1).apply(_slope, raw=True)
    long_days = 2 * trend_days
    for name in SLOW:
        values = _signal(frame, name)
        out[f"{_feature(name)}_slope_long"] = values.rolling(long_days, min_periods=1).apply(_slope, raw=True)
        out[f"{_feature(name)}_delta_long"] = values - values.shift(long_days).fillna(values.iloc[0])
    out["drifted_days"] = (frame["drift_share"].astype(float) > 0).rolling(trend_days, min_periods=1).sum()
    for name in MATURED:
        out[name] = pd.to_numeric(frame.get(name), errors="coerce").fillna(0.0)
    out["matured_auc_drop_delta"] = out["matured_auc_drop_mean3"] - out["matured_auc_drop_mean3"].shift(
        trend_days
    ).fillna(0.0)
    return out.astype(float)


def feature_names(trend_days: int = 7) -> list[str]:
    """Column order of :func:`feature_frame` (the model's input)."""
    probe = {name: 0.0 for name in (*LABEL_FREE, *MATURED)}
    return list(feature_frame([probe], trend_days).columns)


def monotone_directions(features: Sequence[str]) -> list[int]:
    """Per feature, 1 when the risk may only rise with it (everything but :data:`FREE`), else 0."""
    return [0 if name in FREE else 1 for name in features]


def failure_features(signal_history: Sequence[Mapping[str, Any]], trend_days: int = 7) -> dict[str, float]:
    """Features of the last day of ``signal_history`` (oldest first), as ``{name: value}``."""
    if not signal_history:
        raise ValueError("signal_history is empty: need at least today's signals")
    return feature_frame(signal_history[-(2 * trend_days + 1) :], trend_days).iloc[-1].to_dict()
