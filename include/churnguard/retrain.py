"""Retraining: a challenger trained on recent labelled days plus the reference, validated on the most
recent matured days, registered as ``challenger`` with its data window, trigger and metrics.

Gates, in order (all from ``monitoring.yaml``): holdout AUC ≥ ``min_roc_auc``; train AUC − validation AUC ≤
``max_overfit_gap`` (the validation split is drawn from the same pool as the training rows, so the gap is
overfitting, not the drift the holdout may carry); holdout AUC > champion's holdout AUC +
``margin_over_champion``. A challenger that
fails a gate is logged (with the reason) but never registered; neither is one from a dry run.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from churnguard import registry
from churnguard.config import DatasetConfig, load_dataset_config
from churnguard.data import data_version, target_array
from churnguard.dataroot import DataRoot
from churnguard.models import TrainedModel, train_model
from churnguard.storage import PartitionNotFound
from churnguard.training import log_reference_profile, model_fingerprint

if TYPE_CHECKING:
    from churnguard.context import DayContext

log = logging.getLogger(__name__)


def labelled_days(root: DataRoot, ds: date, first: date, last: date, cfg: DatasetConfig) -> pd.DataFrame:
    """Landed rows of observed days ``first``..``last`` joined with the valid labels that landed by ``ds``,
    reading only the deliveries that arrived in ``first``..``ds`` (a delivery never holds days observed after
    it arrived): a delivery the label suite rejects (:func:`churnguard.labels.read_labels`) is skipped, as
    measuring skips it; a later label of a customer replaces an earlier one."""
    from churnguard.labels import read_labels

    scored = root.scored_days()
    frames = []
    for labels_ds in root.label_days(since=first, until=ds):
        check = read_labels(root, labels_ds, cfg, scored)
        if not check.ok:
            log.warning("retraining skips %s", check.reason())
            continue
        labels = check.labels
        labels = labels[(labels["observed_ds"] >= first.isoformat()) & (labels["observed_ds"] <= last.isoformat())]
        for observed, part in labels.groupby("observed_ds"):
            try:  # as landed: days before monitoring started count too
                batch = root.read_batch(observed)
            except PartitionNotFound:  # quarantined or never landed
                continue
            frames.append(batch.merge(part, on=cfg.id.column, how="inner"))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).drop_duplicates(cfg.id.column, keep="last")


def _auc(model: TrainedModel, df: pd.DataFrame) -> float:
    y = target_array(df, load_dataset_config())
    return float(roc_auc_score(y, model.predict_proba(df))) if len(np.unique(y)) == 2 else float("nan")


def shap_importance(model: TrainedModel, df: pd.DataFrame) -> dict[str, float]:
    """Mean |SHAP| per input column (xgboost's TreeSHAP, one-hot children summed), normalised to 1."""
    import xgboost as xgb

    prep = model.pipeline[:-1]
    booster = model.pipeline.named_steps["model"].get_booster()
    contribs = booster.predict(xgb.DMatrix(prep.transform(df[model.features])), pred_contribs=True)[:, :-1]
    return model.per_input_column(np.abs(contribs).mean(axis=0))


def retrain_challenger(ctx: DayContext, reason: str, seed: int = 0) -> dict:
    """Train, validate and (unless the run is a dry run or a gate fails) register a challenger for the day,
    held against the champion pinned for the day."""
    import mlflow

    ds, root, cfg, dry_run = ctx.day, ctx.root, ctx.monitoring, ctx.options.dry_run
    data_cfg, name = ctx.dataset, ctx.model_name
    last_matured = ds - timedelta(days=cfg.labels.delay_days)
    holdout_first = last_matured - timedelta(days=cfg.retrain.holdout_days - 1)
    window_first = holdout_first - timedelta(days=cfg.retrain.window_days)
    labelled = labelled_days(root, ds, window_first, last_matured, data_cfg)
    observed = labelled["observed_ds"] if len(labelled) else pd.Series(dtype=str)
    recent = labelled[observed < holdout_first.isoformat()]
    holdout = labelled[observed >= holdout_first.isoformat()]
    window = {"train_from": window_first.isoformat(), "train_to": (holdout_first - timedelta(days=1)).isoformat(),
              "holdout_from": holdout_first.isoformat(), "holdout_to": last_matured.isoformat()}
    result = {"ds": ds.isoformat(), "reason": reason, "dry_run": dry_run, "window": window,
              "registered": False, "version": None, "passed": False, "gates": {}}
    if len(recent) < 50 or len(holdout) < 50 or len(np.unique(target_array(holdout, data_cfg))) < 2:
        result["rejected"] = f"not enough labelled data: {len(recent)} recent rows, {len(holdout)} holdout rows"
        log.warning("retrain %s: %s", ds, result["rejected"])
        return result

    reference = root.read_reference(data_cfg.name, "train")
    pool = pd.concat([reference, recent[reference.columns]], ignore_index=True)
    train, val = train_test_split(pool, test_size=0.2, stratify=target_array(pool, data_cfg), random_state=seed)
    challenger = train_model(train, val, data_cfg, random_state=seed)
    champion = registry.load_version_model(name, ctx.versions.champion)
    metrics = {"train_auc": _auc(challenger, train), "validation_auc": _auc(challenger, val),
               "holdout_auc": _auc(challenger, holdout),
               "champion_holdout_auc": _auc(champion, holdout), "holdout_rows": len(holdout),
               "recent_rows": len(recent)}
    from churnguard.models import evaluate

    holdout_eval = evaluate(challenger, holdout, data_cfg)
    gates = {
        "min_roc_auc": metrics["holdout_auc"] >= cfg.retrain.min_roc_auc,
        "overfit": metrics["train_auc"] - metrics["validation_auc"] <= cfg.retrain.max_overfit_gap,
        "beats_champion": metrics["holdout_auc"] > metrics["champion_holdout_auc"] + cfg.retrain.margin_over_champion,
    }
    passed = all(gates.values())
    result.update(metrics=metrics, gates=gates, passed=passed)
    log.info("retrain %s (%s): holdout AUC %.4f vs champion %.4f, train %.4f, validation %.4f; gates %s", ds,
             reason, metrics["holdout_auc"], metrics["champion_holdout_auc"], metrics["train_auc"],
             metrics["validation_auc"], gates)
    if dry_run or not passed:
        result["rejected"] = "dry run: nothing registered" if dry_run else \
            "failed gate(s): " + ", ".join(g for g, ok in gates.items() if not ok)
        return result

    version_of_data = data_version(train, val)
    fingerprint = model_fingerprint(version_of_data, seed)
    existing = registry.find_version(name, fingerprint)
    if existing is None:
        registry.configure_mlflow()
        with mlflow.start_run(run_name=f"retrain-{ds.isoformat()}") as run:
            mlflow.set_tags({registry.FINGERPRINT_TAG: fingerprint, "churnguard.kind": "retrain",
                             "trigger": reason, "data_version": version_of_data, **window})
            mlflow.log_params({"threshold": round(challenger.threshold, 6), "best_iteration": challenger.best_iteration,
                               "seed": seed, "data_version": version_of_data, **window,
                               "trigger": reason[:250]})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.log_dict({"features": challenger.features}, "features.json")
            mlflow.log_dict(challenger.feature_importance(), "feature_importance.json")
            mlflow.log_dict(shap_importance(challenger, holdout), "shap_importance.json")
            registry.log_model(challenger.pipeline, train[challenger.features].head(5))
            log_reference_profile(challenger, train, data_cfg, root)
        existing = registry.register_run_model(run.info.run_id, name, {
            registry.FINGERPRINT_TAG: fingerprint, "trigger": reason[:250], "threshold": f"{challenger.threshold:.6f}",
            "reference_auc": f"{metrics['holdout_auc']:.6f}", "reference_f1": f"{holdout_eval['f1']:.6f}",
            **window})
    registry.set_alias(name, registry.CHALLENGER, existing.version)
    result.update(registered=True, version=existing.version, run_id=existing.run_id)
    return result
