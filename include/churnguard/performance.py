"""Measured performance: labels that arrived today are joined to the scores of the days they belong to.

A day's AUC from a few hundred labels is noisy (at 26 % churn, ±0.04 from 200 labels), so each day also
gets a one-sided 95 % confidence band from the DeLong standard error, and a day with fewer
than ``labels.min_labels`` labels gets no measurement at all. A *measured failure* is a day whose AUC is
confidently below the reference (upper bound under ``reference_auc``) and more than ``auc_tolerance``
below it in point estimate, or whose F1 dropped more than ``f1_relative_drop`` relative.
"""

from __future__ import annotations

import logging
import math
from datetime import date

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import f1_score, precision_score, recall_score

from churnguard import registry
from churnguard.config import MonitoringConfig, load_dataset_config, load_model_config, load_monitoring_config
from churnguard.data import target_array
from churnguard.scoring import ROLES, SCORES
from churnguard.simulate import LABELS
from churnguard.storage import PartitionNotFound, Storage, open_storage
from churnguard.store import MonitoringStore, open_store

log = logging.getLogger(__name__)
Z95 = 1.6448536269514722  # one-sided 95 %


def delong_auc(y: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """ROC AUC and its DeLong (1988) standard error, by midranks in O(n log n) (Sun & Xu, 2014)."""
    pos, neg = scores[y == 1], scores[y == 0]
    m, n = len(pos), len(neg)
    ranks = rankdata(np.concatenate([pos, neg]))
    v10 = (ranks[:m] - rankdata(pos)) / n
    v01 = 1 - (ranks[m:] - rankdata(neg)) / m
    var = (v10.var(ddof=1) / m if m > 1 else 0.0) + (v01.var(ddof=1) / n if n > 1 else 0.0)
    return float(v10.mean()), math.sqrt(max(var, 0.0))


def day_metrics(y: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Metrics of one day's labelled customers; AUC fields are None when only one class is present."""
    pred = (scores >= threshold).astype(int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    out = {"labelled_rows": len(y), "churn_rate": float(y.mean()) if len(y) else None,
           "f1": float(f1_score(y, pred, zero_division=0)),
           "precision": float(precision_score(y, pred, zero_division=0)),
           "recall": float(recall_score(y, pred, zero_division=0)),
           "brier": float(np.mean((scores - y) ** 2)), "roc_auc": None, "roc_auc_lower": None,
           "roc_auc_upper": None}
    if n_pos and n_neg:
        auc, se = delong_auc(y, scores)
        out.update(roc_auc=auc, roc_auc_lower=auc - Z95 * se, roc_auc_upper=auc + Z95 * se)
    return out


def is_measured_failure(metrics: dict, reference_auc: float, reference_f1: float, cfg: MonitoringConfig) -> bool:
    if metrics.get("labelled_rows", 0) < cfg.labels.min_labels or metrics.get("roc_auc") is None:
        return False
    auc_fail = (metrics["roc_auc"] < reference_auc - cfg.performance.auc_tolerance
                and metrics["roc_auc_upper"] < reference_auc)
    f1_fail = metrics["f1"] < (1 - cfg.performance.f1_relative_drop) * reference_f1
    return bool(auc_fail or f1_fail)


def reference_metrics(version: int) -> tuple[float, float]:
    """The reference AUC and F1 a version is held to (tags written when it was registered)."""
    name = load_model_config().registered_name
    tags = registry.client().get_model_version(name, str(version)).tags
    return float(tags["reference_auc"]), float(tags["reference_f1"])


def measure_day(ds: date | str, storage: Storage | None = None, store: MonitoringStore | None = None,
                cfg: MonitoringConfig | None = None) -> dict:
    """Join the labels that landed on ``ds`` to their scores, store per-day metrics, summarise history."""
    storage, store = storage or open_storage(), store or open_store()
    cfg = cfg or load_monitoring_config()
    data_cfg, name = load_dataset_config(), load_model_config().registered_name
    try:
        labels = storage.read_partition(LABELS, ds)
    except PartitionNotFound:
        labels = pd.DataFrame(columns=[data_cfg.id.column, "observed_ds", data_cfg.target.column])
    measured, failures = [], []
    for observed_ds, day_labels in labels.groupby("observed_ds", sort=True):
        try:
            scores = storage.read_partition(SCORES, observed_ds)
        except PartitionNotFound:
            log.warning("labels for %s arrived but that day was never scored: skipped", observed_ds)
            continue
        joined = day_labels.merge(scores, on=data_cfg.id.column, how="inner")
        y = target_array(joined, data_cfg)
        for role in ROLES:
            if f"{role}_score" not in joined or joined[f"{role}_version"].isna().all():
                continue
            version = int(joined[f"{role}_version"].iloc[0])
            threshold = registry.load_version_model(name, version).threshold
            metrics = day_metrics(y, joined[f"{role}_score"].to_numpy(), threshold)
            row = {"observed_ds": str(observed_ds), "role": role, "model_version": version,
                   "measured_ds": str(ds), **{k: v for k, v in metrics.items() if k != "roc_auc_upper"}}
            store.upsert("performance", [row])
            if role == registry.CHAMPION and len(y) >= cfg.labels.min_labels:
                ref_auc, ref_f1 = reference_metrics(version)
                if is_measured_failure(metrics, ref_auc, ref_f1, cfg):
                    failures.append(str(observed_ds))
            measured.append({**row, "roc_auc_upper": metrics["roc_auc_upper"]})
    history = champion_history(store, ds, cfg)
    return {"ds": str(ds), "measured": measured, "measured_failure_days": failures,
            "measured_failure": bool(failures), "history_days": len(history["roc_auc"]),
            "auc_slope_per_day": history["slope"],
            "latest_auc": history["roc_auc"][-1] if history["roc_auc"] else None}


def champion_history(store: MonitoringStore, ds: date | str, cfg: MonitoringConfig) -> dict:
    """Champion AUC over the last ``history_days`` observed days (up to ``ds``) and its slope per day."""
    since = (date.fromisoformat(str(ds)) - pd.Timedelta(days=cfg.performance.history_days).to_pytimedelta())
    rows = [r for r in store.rows("performance", where={"role": registry.CHAMPION}, since=since.isoformat(),
                                   until=str(ds), order_by="observed_ds", day_column="observed_ds")
            if r["roc_auc"] is not None and r["labelled_rows"] >= cfg.labels.min_labels]
    days = [date.fromisoformat(r["observed_ds"]).toordinal() for r in rows]
    aucs = [r["roc_auc"] for r in rows]
    slope = float(np.polyfit(days, aucs, 1)[0]) if len(rows) >= 3 else None
    return {"observed_ds": [r["observed_ds"] for r in rows], "roc_auc": aucs, "slope": slope}
