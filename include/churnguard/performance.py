"""Measured performance: labels that arrived today are joined to the scores of the days they belong to.

A day's AUC from a few hundred labels is noisy (at 26 % churn, ±0.04 from 200 labels), so each day also
gets one-sided confidence bounds (DeLong for the AUC, a bootstrap for F1). A *measured failure* is the
failure-risk model's failure (:func:`churnguard.failure.labels.day_failure`, one rule for both): on the
labels of the ``window_days`` days ending on the day, AUC confidently more than ``auc_tolerance`` below the
reference, or F1 confidently more than ``f1_relative_drop`` below it; a window with too few labels (or of
one class) is no failure. The definition is ``failure.yaml``'s ``failure`` block with this run's knobs
from ``monitoring.yaml`` (``performance.auc_tolerance``, ``performance.f1_relative_drop``,
``labels.min_labels``, ``labels.delay_days``) applied: :func:`measured_failure_definition`.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import pandas as pd

from churnguard import registry
from churnguard.config import MonitoringConfig, load_dataset_config, load_model_config, load_monitoring_config
from churnguard.data import target_array
from churnguard.failure.config import FailureDefinition, load_failure_config
from churnguard.failure.labels import day_failure, delong_auc, label_day_metrics
from churnguard.scoring import ROLES, SCORES
from churnguard.simulate import LABELS
from churnguard.storage import PartitionNotFound, Storage, open_storage
from churnguard.store import MonitoringStore, open_store

__all__ = ["champion_history", "day_metrics", "delong_auc", "is_measured_failure", "measure_day",
           "measured_failure_definition", "reference_metrics"]
log = logging.getLogger(__name__)
STORED = ("labelled_rows", "roc_auc", "roc_auc_lower", "f1", "precision", "recall", "brier", "churn_rate")


def measured_failure_definition(cfg: MonitoringConfig) -> FailureDefinition:
    """``failure.yaml``'s failure definition with the daily run's knobs of ``cfg`` applied."""
    return load_failure_config({"failure": {
        "tolerance": cfg.performance.auc_tolerance, "f1_relative_drop": cfg.performance.f1_relative_drop,
        "min_labels": cfg.labels.min_labels, "label_delay_days": cfg.labels.delay_days}}).failure


def day_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, confidence: float | None = None) -> dict:
    """Metrics of labelled customers with the bounds of the failure rule; AUC fields are None when only
    one class is present. ``confidence``: default the failure definition's."""
    confidence = load_failure_config().failure.confidence if confidence is None else confidence
    return label_day_metrics(np.asarray(y), np.asarray(scores, dtype=float), threshold, confidence)


def is_measured_failure(metrics: dict, reference_auc: float, reference_f1: float, cfg: MonitoringConfig) -> bool:
    """:func:`~churnguard.failure.labels.day_failure` under :func:`measured_failure_definition`; a window
    without a failure status (too few labels) is no failure."""
    return day_failure(metrics, reference_auc, reference_f1, measured_failure_definition(cfg)) is True


def reference_metrics(version: int) -> tuple[float, float]:
    """The reference AUC and F1 a version is held to (tags written when it was registered)."""
    name = load_model_config().registered_name
    tags = registry.client().get_model_version(name, str(version)).tags
    return float(tags["reference_auc"]), float(tags["reference_f1"])


def _arrived_labels(storage: Storage, arrival_days: list[date], data_cfg) -> pd.DataFrame:
    """Labels that arrived on ``arrival_days`` joined to the scores of the days they belong to, with
    ``observed_ds`` and ``arrived_ds`` as ISO strings."""
    frames = []
    for arrived in arrival_days:
        try:
            labels = storage.read_partition(LABELS, arrived)
        except PartitionNotFound:
            continue
        for observed_ds, day_labels in labels.groupby("observed_ds", sort=True):
            try:
                scores = storage.read_partition(SCORES, observed_ds)
            except PartitionNotFound:
                log.warning("labels for %s arrived but that day was never scored: skipped", observed_ds)
                continue
            joined = day_labels.merge(scores, on=data_cfg.id.column, how="inner")
            frames.append(joined.assign(observed_ds=str(observed_ds), arrived_ds=arrived.isoformat()))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["observed_ds", "arrived_ds"])


def measure_day(ds: date | str, storage: Storage | None = None, store: MonitoringStore | None = None,
                cfg: MonitoringConfig | None = None) -> dict:
    """Join the labels that landed on ``ds`` to their scores, store per-day metrics, summarise history.

    The champion's failure status of an observed day pools its labels with those of the preceding
    ``window_days - 1`` days that arrived in the last ``window_days`` days (all of them at a fixed delay).
    A failure counts only when the current champion scored the day: labels keep arriving for days an
    earlier champion scored, and they say nothing about this one (``earlier_champion_failure_days``).
    """
    storage, store = storage or open_storage(), store or open_store()
    cfg = cfg or load_monitoring_config()
    definition = measured_failure_definition(cfg)
    data_cfg, name = load_dataset_config(), load_model_config().registered_name
    today = date.fromisoformat(str(ds))
    arrived = _arrived_labels(storage, [today - timedelta(days=k) for k in range(definition.window_days)],
                              data_cfg)
    champion_version = f"{registry.CHAMPION}_version"
    current = registry.version_by_alias(name, registry.CHAMPION)
    measured, failures, earlier = [], [], []
    for observed_ds, day in arrived[arrived["arrived_ds"] == today.isoformat()].groupby("observed_ds"):
        y = target_array(day, data_cfg)
        for role in ROLES:
            if f"{role}_score" not in day or day[f"{role}_version"].isna().all():
                continue
            version = int(day[f"{role}_version"].iloc[0])
            threshold = registry.load_version_model(name, version).threshold
            metrics = day_metrics(y, day[f"{role}_score"].to_numpy(), threshold, definition.confidence)
            row = {"observed_ds": observed_ds, "role": role, "model_version": version, "measured_ds": str(ds),
                   **{k: metrics[k] for k in STORED}}
            store.upsert("performance", [row])
            if role == registry.CHAMPION:
                first = (date.fromisoformat(observed_ds) - timedelta(days=definition.window_days - 1)).isoformat()
                window = arrived[arrived["observed_ds"].between(first, observed_ds)
                                 & (arrived[champion_version] == version)]
                pooled = day_metrics(target_array(window, data_cfg), window[f"{role}_score"].to_numpy(),
                                     threshold, definition.confidence)
                ref_auc, ref_f1 = reference_metrics(version)
                if day_failure(pooled, ref_auc, ref_f1, definition) is True:
                    (failures if current is None or version == current.version else earlier).append(observed_ds)
            measured.append({**row, "roc_auc_upper": metrics["roc_auc_upper"]})
    history = champion_history(store, ds, cfg)
    if earlier:
        log.info("performance %s: failures on %s were measured for an earlier champion: not this one's", ds,
                 ", ".join(earlier))
    return {"ds": str(ds), "measured": measured, "measured_failure_days": failures,
            "measured_failure": bool(failures), "earlier_champion_failure_days": earlier,
            "history_days": len(history["roc_auc"]),
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
