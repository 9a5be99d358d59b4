"""What is known on a day, as one flat dict of numbers: :func:`day_signals`.

The same function builds the signals of every simulated training day and of every real production day,
so the failure model sees identical features in both. Its inputs:

- ``drift_report``: the day's drift report as a dict (``DriftReport.to_dict()`` of ``churnguard.drift``,
  computed with the champion's scores so that it has a ``prediction`` block);
- ``champion_scores``: the champion's scores on the day's customers;
- ``matured_performance``: per-day metrics of the days whose labels have arrived (rows of the
  ``performance`` store, or :func:`churnguard.failure.labels.label_day_metrics`), any order;
- ``reference``: :func:`champion_reference` of the champion (calibration map, reference metrics),
  computed once per champion version and stored as JSON.

Label-free performance estimates: **CBPE** (confidence-based performance estimation: with calibrated
scores ``p``, the expected confusion matrix and the expected ROC AUC follow from ``p`` alone) and
**ATC** (average thresholded confidence: the share of customers whose confidence exceeds the
threshold that, on the reference, reproduces the reference accuracy). Both assume the relation between
features and churn is unchanged, so both are blind to concept drift; matured labels are not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from churnguard.failure.labels import delong_auc, f1_with_upper

if TYPE_CHECKING:
    from churnguard.drift import DriftReport

PSI_EPS = 1e-4


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    r = np.maximum(ref_counts / max(ref_counts.sum(), 1), PSI_EPS)
    c = np.maximum(cur_counts / max(cur_counts.sum(), 1), PSI_EPS)
    return float(np.sum((c - r) * np.log(c / r)))


# --- the champion's reference --------------------------------------------------------------------------
def champion_reference(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """JSON-able reference of a champion from its ``scores`` on a labelled held-out split (the test
    split) with their ``labels``, and its decision ``threshold``."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels).astype(int)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
    calib = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    p = np.interp(scores, calib["x"], calib["y"])
    pred = scores >= threshold
    accuracy = float(np.mean(pred == labels))
    confidence = np.where(pred, p, 1 - p)
    ref = {
        "threshold": float(threshold),
        "reference_auc": delong_auc(labels, scores)[0],
        "reference_f1": f1_with_upper(labels, pred, 0.5)[0],
        "reference_accuracy": accuracy,
        "reference_churn_rate": float(labels.mean()),
        "reference_brier": float(np.mean((scores - labels) ** 2)),
        "calibration": calib,
        # ATC: the confidence level above which the reference share equals the reference accuracy
        "atc_threshold": float(np.quantile(confidence, 1 - accuracy)),
        "score_edges": np.unique(np.quantile(scores, np.arange(1, 10) / 10)).tolist(),
        "score_mean": float(scores.mean()),
        "score_std": float(scores.std()),
        "positive_rate": float(pred.mean()),
    }
    ref["score_counts"] = np.bincount(
        np.searchsorted(ref["score_edges"], scores, side="right"), minlength=len(ref["score_edges"]) + 1
    ).tolist()
    est = estimate_performance(scores, ref)
    ref["cbpe_reference_auc"], ref["cbpe_reference_f1"] = est["cbpe_auc"], est["cbpe_f1"]
    ref["atc_reference_accuracy"] = est["atc_accuracy"]
    return ref


def estimate_performance(scores: np.ndarray, reference: Mapping[str, Any]) -> dict:
    """CBPE expected AUC and F1, and the ATC accuracy estimate, from the champion's scores alone."""
    scores = np.asarray(scores, dtype=float)
    cal = reference["calibration"]
    p = np.interp(scores, cal["x"], cal["y"])
    pred = scores >= reference["threshold"]
    tp, fp, fn = p[pred].sum(), (1 - p[pred]).sum(), p[~pred].sum()
    order = np.argsort(scores, kind="stable")
    ps = p[order]
    negatives_below = np.concatenate([[0.0], np.cumsum(1 - ps)[:-1]])
    pairs = ps.sum() * (1 - ps).sum() - np.sum(ps * (1 - ps))
    auc = float(np.sum(ps * negatives_below) / pairs) if pairs > 0 else math.nan
    confidence = np.where(pred, p, 1 - p)
    return {
        "cbpe_auc": auc,
        "cbpe_f1": float(2 * tp / max(2 * tp + fp + fn, 1e-12)),
        "atc_accuracy": float(np.mean(confidence > reference["atc_threshold"])),
    }


# --- the drift report ------------------------------------------------------------------------------------
def signal_report(report: DriftReport) -> dict[str, Any]:
    """``report.to_dict()`` cut to what :func:`day_signals` reads: the same signals, without converting
    the bins, categories and config that make up most of a report (most of a simulated day's cost)."""
    features = {
        name: {key: f.get(key) for key in ("psi", "js_distance", "test", "wasserstein", "missing_rate")}
        for name, f in report.features.items()
    }
    prediction = report.prediction and {key: report.prediction.get(key) for key in ("psi", "test")}
    correlation = report.correlation and {"max_change": report.correlation.get("max_change")}
    return replace(
        report, features=features, prediction=prediction, correlation=correlation, label=None, config={}, segments=None
    ).to_dict()


def _drift_features(report: Mapping[str, Any]) -> dict[str, float]:
    """Summaries of a ``churnguard.drift`` report dict (``DriftReport.to_dict()``) as flat numbers."""
    feats = [f for f in report["features"].values() if f.get("psi") is not None]
    psi = np.array([f["psi"] for f in feats] or [0.0], dtype=float)
    js = np.array([f.get("js_distance") or 0.0 for f in feats] or [0.0], dtype=float)
    ks = np.array(
        [f["test"]["statistic"] for f in feats if (f.get("test") or {}).get("name") == "ks"] or [0.0], dtype=float
    )
    wasserstein = np.array([(f.get("wasserstein") or {}).get("normalised") or 0.0 for f in feats] or [0.0])
    missing = np.array([abs((f.get("missing_rate") or {}).get("change") or 0.0) for f in feats] or [0.0])
    prediction = report.get("prediction") or {}
    correlation = report.get("correlation") or {}
    return {
        "drift_psi_max": float(psi.max()),
        "drift_psi_mean": float(psi.mean()),
        "drift_js_max": float(js.max()),
        "drift_js_mean": float(js.mean()),
        "drift_ks_max": float(ks.max()),
        "drift_ks_mean": float(ks.mean()),
        "drift_wasserstein_max": float(wasserstein.max()),
        "drift_share": float(report.get("drift_share") or 0.0),
        "drift_weighted": float(report.get("weighted_psi") or 0.0),
        "drift_missing_max": float(missing.max()),
        "drift_correlation": float(correlation.get("max_change") or 0.0),
        "prediction_psi": float(prediction.get("psi") or 0.0),
        "prediction_ks": float((prediction.get("test") or {}).get("statistic") or 0.0),
    }


# --- the day's signals -------------------------------------------------------------------------------------
def _score_signals(scores: np.ndarray, ref: Mapping[str, Any]) -> dict[str, float]:
    edges = np.asarray(ref["score_edges"])
    counts = np.bincount(np.searchsorted(edges, scores, side="right"), minlength=len(edges) + 1)
    ref_counts = np.asarray(ref["score_counts"], dtype=float)
    est = estimate_performance(scores, ref)
    return {
        "score_psi": _psi(ref_counts, counts),
        "score_mean_change": float(scores.mean() - ref["score_mean"]),
        "score_std_change": float(scores.std() - ref["score_std"]),
        "positive_rate_change": float(np.mean(scores >= ref["threshold"]) - ref["positive_rate"]),
        "cbpe_auc_drop": ref["cbpe_reference_auc"] - est["cbpe_auc"],
        "cbpe_f1_drop": (ref["cbpe_reference_f1"] - est["cbpe_f1"]) / max(ref["cbpe_reference_f1"], 1e-9),
        "atc_accuracy_drop": ref["atc_reference_accuracy"] - est["atc_accuracy"],
    }


def _slope(y: Sequence[float]) -> float:
    y = np.asarray(y, dtype=float)
    if len(y) < 3:
        return 0.0
    x = np.arange(len(y)) - (len(y) - 1) / 2
    return float(np.sum(x * (y - y.mean())) / np.sum(x * x))


def _matured_signals(
    matured: Sequence[Mapping[str, Any]], ref: Mapping[str, Any], window: int, min_labels: int
) -> dict[str, float | None]:
    rows = [r for r in matured if r.get("roc_auc") is not None and r.get("labelled_rows", 0) >= min_labels]
    rows = sorted(rows, key=lambda r: str(r.get("observed_ds", "")))[-window:]
    if not rows:
        return dict.fromkeys(
            (
                "matured_auc_drop",
                "matured_auc_drop_mean3",
                "matured_auc_drop_max3",
                "matured_auc_slope",
                "matured_f1_drop",
                "matured_f1_drop_mean3",
                "matured_churn_change",
                "matured_brier_change",
            ),
            None,
        ) | {"matured_days": 0.0}
    auc_drop = [ref["reference_auc"] - r["roc_auc"] for r in rows]
    f1_drop = [1 - r["f1"] / max(ref["reference_f1"], 1e-9) for r in rows]
    last3 = slice(-3, None)
    return {
        "matured_days": float(len(rows)),
        "matured_auc_drop": auc_drop[-1],
        "matured_auc_drop_mean3": float(np.mean(auc_drop[last3])),
        "matured_auc_drop_max3": float(np.max(auc_drop[last3])),
        "matured_auc_slope": -_slope([r["roc_auc"] for r in rows]),
        "matured_f1_drop": f1_drop[-1],
        "matured_f1_drop_mean3": float(np.mean(f1_drop[last3])),
        "matured_churn_change": float(np.mean([r["churn_rate"] for r in rows[last3]]) - ref["reference_churn_rate"]),
        "matured_brier_change": float(np.mean([r["brier"] for r in rows[last3]]) - ref["reference_brier"]),
    }


def day_signals(
    drift_report: Mapping[str, Any],
    champion_scores: np.ndarray,
    matured_performance: Sequence[Mapping[str, Any]],
    *,
    reference: Mapping[str, Any],
    ds: str | None = None,
    matured_window: int = 14,
    min_labels: int = 200,
) -> dict:
    """Everything known on day ``ds`` as ``{name: float | None}`` (plus ``ds``); see the module docstring.

    ``matured_performance`` must hold only days whose labels have arrived by ``ds``.
    """
    scores = np.asarray(champion_scores, dtype=float)
    return {
        "ds": ds,
        **_drift_features(drift_report),
        **_score_signals(scores, reference),
        **_matured_signals(matured_performance, reference, matured_window, min_labels),
    }
