"""Score a day's batch with the champion and, as a shadow, the challenger; scores go to
``scores/ds=YYYY-MM-DD/`` (customer id, score and model version per role)."""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd

from churnguard import registry
from churnguard.config import load_dataset_config, load_model_config
from churnguard.data import load_batch
from churnguard.storage import PartitionNotFound, Storage, open_storage

log = logging.getLogger(__name__)
SCORES = "scores"
ROLES = (registry.CHAMPION, registry.CHALLENGER)


def recorded_versions(storage: Storage, ds: date | str) -> dict[str, int | None]:
    """Model versions that scored ``ds`` before (a re-run replays them), or {} if it was never scored."""
    try:
        scores = storage.read_partition(SCORES, ds)
    except PartitionNotFound:
        return {}
    return {role: (int(scores[f"{role}_version"].iloc[0]) if f"{role}_version" in scores
                   and scores[f"{role}_version"].notna().any() else None) for role in ROLES}


def score_day(ds: date | str, storage: Storage | None = None, replay: bool = True) -> dict:
    """Score the landing batch of ``ds``; with ``replay`` a re-run uses the versions recorded for it."""
    storage = storage or open_storage()
    cfg, name = load_dataset_config(), load_model_config().registered_name
    batch, _ = load_batch(storage, ds, cfg)
    versions = recorded_versions(storage, ds) if replay else {}
    out = pd.DataFrame({cfg.id.column: batch[cfg.id.column]})
    used = {}
    for role in ROLES:
        if versions:
            version = versions.get(role)
        else:
            info = registry.version_by_alias(name, role)
            version = info.version if info else None
        if version is None:
            if role == registry.CHAMPION:
                raise LookupError(f"no '{registry.CHAMPION}' alias on {name}: run churn_bootstrap first")
            continue
        model = registry.load_version_model(name, version)
        out[f"{role}_score"] = model.predict_proba(batch)
        out[f"{role}_version"] = version
        used[role] = version
    uri = storage.write_partition(SCORES, ds, out)
    log.info("scored %d customers of %s with %s", len(out), ds,
             ", ".join(f"{r} v{v}" for r, v in used.items()))
    return {"scores_uri": uri, "rows": len(out), "champion_version": used.get(registry.CHAMPION),
            "challenger_version": used.get(registry.CHALLENGER)}


def read_scores(storage: Storage, ds: date | str, role: str = registry.CHAMPION) -> pd.Series | None:
    try:
        scores = storage.read_partition(SCORES, ds)
    except PartitionNotFound:
        return None
    column = f"{role}_score"
    return scores[column] if column in scores else None
