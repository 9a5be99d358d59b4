"""Promotion and rollback of the churn model: alias moves under a lock, each recorded as a model event.

A challenger becomes ``champion`` when, on matured labels of its shadow period, it beat the champion by
``promotion.shadow_margin`` AUC on each of the last ``promotion.shadow_days`` days measured for both, or
at once when the champion has measurably failed and the challenger passed validation. The old champion
keeps alias ``previous``. Aliases are re-read inside the lock, so two runs cannot promote at once.
"""

from __future__ import annotations

import logging

from churnguard import registry
from churnguard.config import MonitoringConfig, load_model_config, load_monitoring_config
from churnguard.store import MonitoringStore, exclusive, open_store

log = logging.getLogger(__name__)


def _alias_lock(store: MonitoringStore, name: str):
    """Held while the aliases of model ``name`` are read and moved: one promotion or rollback at a time."""
    return exclusive(store.engine, f"churnguard-promote-{name}")


def shadow_wins(store: MonitoringStore, challenger_version: int, cfg: MonitoringConfig) -> list[dict]:
    """Last ``shadow_days`` observed days with matured labels for both roles, with the AUC margin."""
    rows = store.rows("performance", order_by="observed_ds", day_column="observed_ds")
    by_day: dict[str, dict] = {}
    for r in rows:
        if r["roc_auc"] is None or r["labelled_rows"] < cfg.labels.min_labels:
            continue
        by_day.setdefault(r["observed_ds"], {})[r["role"]] = r
    shared = [{"observed_ds": d, "margin": v["challenger"]["roc_auc"] - v["champion"]["roc_auc"]}
              for d, v in sorted(by_day.items())
              if "champion" in v and "challenger" in v and v["challenger"]["model_version"] == challenger_version]
    return shared[-cfg.promotion.shadow_days:]


def should_promote(store: MonitoringStore, champion_failed: bool,
                   cfg: MonitoringConfig | None = None) -> tuple[bool, str]:
    """Whether the ``challenger`` should become champion now, and why (or why not).

    A version carries the ``challenger`` alias only once it has passed the retraining gates (validation),
    so a measured failure of the champion promotes it at once.
    """
    cfg = cfg or load_monitoring_config()
    name = load_model_config().registered_name
    challenger = registry.version_by_alias(name, registry.CHALLENGER)
    if challenger is None:
        return False, "no challenger"
    if champion_failed:
        return True, f"champion measurably failed and challenger v{challenger.version} passed validation"
    wins = shadow_wins(store, challenger.version, cfg)
    if len(wins) == cfg.promotion.shadow_days and all(w["margin"] > cfg.promotion.shadow_margin for w in wins):
        days = ", ".join(f"{w['observed_ds']} (+{w['margin']:.3f})" for w in wins)
        margin = cfg.promotion.shadow_margin
        return True, f"challenger v{challenger.version} beat the champion by > {margin} AUC on {days}"
    return False, (f"challenger v{challenger.version} in shadow: {len(wins)}/{cfg.promotion.shadow_days} "
                   f"matured days measured, margins {[round(w['margin'], 3) for w in wins]}")


def promote_challenger(ds: str, reason: str, store: MonitoringStore | None = None) -> dict:
    """Move ``champion`` to the challenger (old champion becomes ``previous``), atomically and once."""
    store = store or open_store()
    name = load_model_config().registered_name
    with _alias_lock(store, name):
        challenger = registry.version_by_alias(name, registry.CHALLENGER)
        champion = registry.version_by_alias(name, registry.CHAMPION)
        if challenger is None:
            return {"promoted": False, "reason": "challenger alias is gone (promoted by a concurrent run?)"}
        if champion is not None:
            registry.set_alias(name, registry.PREVIOUS, champion.version)
        registry.set_alias(name, registry.CHAMPION, challenger.version)
        registry.client().delete_registered_model_alias(name, registry.CHALLENGER)
        store.record_event(ds, "promoted", name, challenger.version,
                           champion.version if champion else None, reason)
    log.info("promoted %s v%d to champion (was v%s): %s", name, challenger.version,
             champion.version if champion else None, reason)
    return {"promoted": True, "version": challenger.version,
            "from_version": champion.version if champion else None, "reason": reason}


def rollback(ds: str, target: str | int, reason: str, store: MonitoringStore | None = None) -> dict:
    """Point ``champion`` at ``target`` (a version number or ``previous``) and record why."""
    store = store or open_store()
    name = load_model_config().registered_name
    with _alias_lock(store, name):
        champion = registry.version_by_alias(name, registry.CHAMPION)
        if str(target) == registry.PREVIOUS:
            previous = registry.version_by_alias(name, registry.PREVIOUS)
            if previous is None:
                raise ValueError(f"{name} has no '{registry.PREVIOUS}' alias to roll back to")
            version = previous.version
        else:
            version = int(target)
        registry.set_alias(name, registry.CHAMPION, version)  # refuses a version that is not READY
        if champion is not None and champion.version != version:
            registry.set_alias(name, registry.PREVIOUS, champion.version)
        store.record_event(ds, "rolled_back", name, version, champion.version if champion else None, reason)
    log.info("rolled back %s champion to v%d (was v%s): %s", name, version,
             champion.version if champion else None, reason)
    return {"version": version, "from_version": champion.version if champion else None, "reason": reason}
