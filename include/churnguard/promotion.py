"""Promotion and rollback of the churn model: alias moves recorded as intentions, applied under a lock.

A challenger becomes ``champion`` when, on matured labels of its shadow period, it beat the champion by
``promotion.shadow_margin`` AUC on each of the last ``promotion.shadow_days`` days measured for both, or
at once when the champion has measurably failed and the challenger passed validation on labelled days after
the change (its ``VersionTags.post_change_from``): one validated on older days may be as wrong about the new
concept as the champion. The old champion keeps alias ``previous``.

The shadow comparison holds both on customers the challenger was not trained on: on a day whose scores name
customers in the challenger's ``trained_customers.npy`` (:mod:`churnguard.retrain`), the two AUCs are computed
again without those rows (:func:`unseen_margin`); other days keep the margin measured daily.

Crash safety: a move is first written to the monitoring store (``alias_moves``, state ``pending``) with the
versions it moves from and to, then applied in steps that are each idempotent, then marked ``done`` in the
same transaction that records its model event. Any later promotion, rollback or re-run of the day first
completes a pending move from its recorded versions, so a kill at any step never leaves ``previous`` equal to
``champion``, never records an event twice, and never reads "promoted 3 from 3". The steps are ordered so
``champion`` and ``previous`` differ at every instant (``previous`` is cleared before ``champion`` takes its
version, and set after). Bootstrap's first champion moves the same way (:func:`assign_champion`), recorded
without a model event: every alias moves here, under the lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sqlalchemy import insert, select, update

from churnguard import registry
from churnguard.config import MonitoringConfig
from churnguard.crashpoints import crash_point
from churnguard.registry import ModelRegistry
from churnguard.store import MonitoringStore, exclusive, schema

if TYPE_CHECKING:
    from churnguard.context import DayContext

log = logging.getLogger(__name__)
PROMOTED, ROLLED_BACK = "promoted", "rolled_back"
ASSIGNED = "assigned"  # bootstrap made a version champion: an alias move without a model event
CRASH_POINTS = (
    "promotion.intent_recorded",
    "promotion.challenger_cleared",
    "promotion.previous_cleared",
    "promotion.champion_moved",
    "promotion.previous_moved",
)


def _alias_lock(store: MonitoringStore, name: str):
    """Held while the aliases of model ``name`` are read and moved: one promotion or rollback at a time."""
    return exclusive(store.engine, f"churnguard-promote-{name}")


def shadow_wins(
    store: MonitoringStore,
    challenger_version: int,
    cfg: MonitoringConfig,
    trained: np.ndarray | None = None,
    root=None,
    dataset=None,
) -> list[dict]:
    """Last ``shadow_days`` observed days with matured labels for both roles, with the AUC margin; with
    ``trained`` (the challenger's training customers), on each day without the rows of those customers
    (:func:`unseen_margin`; a day left with too few labels does not count)."""
    rows = store.rows(schema.performance, order_by="observed_ds", day_column="observed_ds")
    by_day: dict[str, dict] = {}
    for r in rows:
        if r["roc_auc"] is None or r["labelled_rows"] < cfg.labels.min_labels:
            continue
        by_day.setdefault(r["observed_ds"], {})[r["role"]] = r
    shared = [
        {
            "observed_ds": d,
            "margin": v["challenger"]["roc_auc"] - v["champion"]["roc_auc"],
            "measured_ds": v["challenger"]["measured_ds"],
        }
        for d, v in sorted(by_day.items())
        if "champion" in v and "challenger" in v and v["challenger"]["model_version"] == challenger_version
    ]
    if trained is None or not len(trained):
        return [{k: w[k] for k in ("observed_ds", "margin")} for w in shared[-cfg.promotion.shadow_days :]]
    wins: list[dict] = []
    for day in reversed(shared):  # newest first, until shadow_days days count
        kept = unseen_margin(root, dataset, day, trained, cfg.labels.min_labels)
        if kept is not None:
            wins.insert(0, kept)
        if len(wins) == cfg.promotion.shadow_days:
            break
    return wins


def unseen_margin(root, dataset, day: dict, trained: np.ndarray, min_labels: int) -> dict | None:
    """The shadow margin of observed ``day`` on the customers the challenger was not trained on: the stored
    margin when the day's scores name none of ``trained``, else both AUCs again on the other labelled rows
    (labels as they had arrived when the day was measured); None when too few labels (or one class) are left."""
    from churnguard.data import target_array
    from churnguard.retrain import customer_hashes, labelled_days

    id_col, observed = dataset.id.column, day["observed_ds"]
    plain = {"observed_ds": observed, "margin": day["margin"]}
    scores = root.read_scores(observed)
    if scores is None or "challenger_score" not in scores:
        return plain
    seen = np.isin(customer_hashes(scores[id_col].to_numpy()), trained)
    if not seen.any():
        return plain
    first = pd.Timestamp(observed).date()
    labels = labelled_days(root, pd.Timestamp(day["measured_ds"]).date(), first, first, dataset)
    if labels.empty:
        return None
    rows = scores[~seen].merge(labels[[id_col, dataset.target.column]], on=id_col)
    y = target_array(rows, dataset)
    if len(rows) < min_labels or len(np.unique(y)) < 2:
        return None
    margin = float(roc_auc_score(y, rows["challenger_score"]) - roc_auc_score(y, rows["champion_score"]))
    return {**plain, "margin": margin, "left_out": int(seen.sum())}


def should_promote(ctx: DayContext, champion_failed: bool) -> tuple[bool, str]:
    """Whether the ``challenger`` should become champion now, and why (or why not).

    A version carries the ``challenger`` alias only once it has passed the retraining gates (validation),
    so a measured failure of the champion promotes it at once if that validation was on post-change days;
    any other challenger stays in shadow.
    """
    cfg, models = ctx.monitoring, ctx.registry
    challenger = models.version_by_alias(registry.CHALLENGER)
    if challenger is None:
        return False, "no challenger"
    post_change = challenger.tags.post_change_from
    if champion_failed and post_change:
        return True, (
            f"champion measurably failed and challenger v{challenger.version} passed validation on "
            f"labelled days from the change on {post_change}"
        )
    refreshed = _refresh_margin(models, challenger)
    if refreshed is not None and refreshed > cfg.retrain.margin_over_champion:
        tags = challenger.tags
        return True, (
            f"challenger v{challenger.version} refreshes champion v{tags.refresh_of} on more "
            f"labelled days since the change on {post_change}: +{refreshed:.3f} AUC over it on "
            f"{tags.window.holdout_from}..{tags.window.holdout_to} (customers neither was trained on)"
        )
    from churnguard.retrain import load_trained_customers

    trained = load_trained_customers(models, challenger.run_id)
    wins = shadow_wins(
        ctx.store, challenger.version, cfg, trained, ctx.root if trained is not None else None, ctx.dataset
    )
    if len(wins) == cfg.promotion.shadow_days and all(w["margin"] > cfg.promotion.shadow_margin for w in wins):
        days = ", ".join(f"{w['observed_ds']} (+{w['margin']:.3f})" for w in wins)
        margin = cfg.promotion.shadow_margin
        return True, f"challenger v{challenger.version} beat the champion by > {margin} AUC on {days}"
    return False, (
        f"challenger v{challenger.version} in shadow: {len(wins)}/{cfg.promotion.shadow_days} "
        f"matured days measured, margins {[round(w['margin'], 3) for w in wins]}"
    )


def _refresh_margin(models: ModelRegistry, challenger: registry.VersionInfo) -> float | None:
    """The holdout AUC margin of a refresh ``challenger`` over the champion it was trained to replace, or None
    when it is no refresh of the current champion (which is only read for a refresh)."""
    tags = challenger.tags
    if tags.refresh_of is None:
        return None
    champion = models.version_by_alias(registry.CHAMPION)
    if champion is None or tags.refresh_of != champion.version:
        return None
    return tags.reference_auc - tags.champion_holdout_auc


def _result(move: dict) -> dict:
    return {
        "promoted": move["event"] == PROMOTED,
        "version": move["to_version"],
        "from_version": move["from_version"],
        "reason": move["reason"],
    }


def _record(store: MonitoringStore, move: dict) -> dict:
    """Write the intention (state ``pending``) before any alias moves; returns it with its id."""
    table = schema.alias_moves
    with store.engine.begin() as conn:
        move_id = conn.execute(insert(table).values(**move, state="pending")).inserted_primary_key[0]
    crash_point("promotion.intent_recorded")
    return {**move, "id": move_id, "state": "pending"}


def _apply(store: MonitoringStore, models: ModelRegistry, move: dict) -> dict:
    """Carry a recorded move through; every step may run again after a crash with the same outcome."""
    name, to, old = move["model_name"], move["to_version"], move["from_version"]
    if name != models.name:
        raise ValueError(f"a move of {name} applied through the registry of {models.name}")
    if move["clear_challenger"]:  # first: never champion == challenger, not even for a moment
        challenger = models.version_by_alias(registry.CHALLENGER)
        if challenger is not None and challenger.version == to:
            models.delete_alias(registry.CHALLENGER)
            crash_point("promotion.challenger_cleared")
    previous = models.version_by_alias(registry.PREVIOUS)
    if previous is not None and previous.version == to:  # never champion == previous, not even for a moment
        models.delete_alias(registry.PREVIOUS)
        crash_point("promotion.previous_cleared")
    models.set_alias(registry.CHAMPION, to)
    crash_point("promotion.champion_moved")
    if old is not None and old != to:
        models.set_alias(registry.PREVIOUS, old)
        crash_point("promotion.previous_moved")
    table = schema.alias_moves
    with store.engine.begin() as conn:  # the event and the end of the move commit together: written once
        if move["event"] != ASSIGNED:  # a bootstrap's champion is no model event (it is "registered")
            store.record_event(move["ds"], move["event"], name, to, old, move["reason"] or "", conn=conn)
        conn.execute(update(table).where(table.c.id == move["id"]).values(state="done"))
    if move["event"] != ASSIGNED:
        log.info("%s %s v%d to champion (was v%s): %s", move["event"].replace("_", " "), name, to, old, move["reason"])
    return {**move, "state": "done"}


def _moves(store: MonitoringStore, name: str, **where) -> list[dict]:
    table = schema.alias_moves
    stmt = select(table).where(table.c.model_name == name, *(table.c[k] == v for k, v in where.items()))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt.order_by(table.c.id))]


def complete_pending(store: MonitoringStore, models: ModelRegistry) -> list[dict]:
    """Finish every move a crash left half-done (call with the alias lock held); returns them."""
    finished = [_apply(store, models, move) for move in _moves(store, models.name, state="pending")]
    for move in finished:
        log.warning(
            "completed the %s of %s v%d recorded on %s, interrupted by a crash",
            move["event"],
            models.name,
            move["to_version"],
            move["ds"],
        )
    return finished


def promote_day(ctx: DayContext, champion_failed: bool, decide: Callable[[], tuple[bool, str]] | None = None) -> dict:
    """The daily run's promotion step: decide (:func:`should_promote`, or ``decide``) and move under the lock,
    once per day.

    A day that already promoted (this run before a crash, or an earlier run of the same date) returns that
    promotion again instead of deciding anew, so a re-run publishes what the first run did.
    """
    store, models = ctx.store, ctx.registry
    with _alias_lock(store, models.name):
        complete_pending(store, models)
        done = _moves(store, models.name, ds=ctx.ds, event=PROMOTED, state="done")
        if done:
            return _result(done[-1])
        ok, reason = decide() if decide is not None else should_promote(ctx, champion_failed)
        log.info("promotion %s: %s", "yes" if ok else "no", reason)
        return _promote_locked(ctx.ds, reason, store, models) if ok else {"promoted": False, "reason": reason}


def set_challenger(store: MonitoringStore, models: ModelRegistry, version: int) -> str | None:
    """Point ``challenger`` at ``version`` under the alias lock, unless the version already holds another alias
    (it was promoted, or it is the champion's ``previous``): then nothing moves and the reason comes back. Only
    a promotion or rollback moves an alias onto a version that holds one."""
    with _alias_lock(store, models.name):
        complete_pending(store, models)
        for alias in (registry.CHAMPION, registry.PREVIOUS):
            holder = models.version_by_alias(alias)
            if holder is not None and holder.version == version:
                reason = f"v{version} is '{alias}' already: not set as '{registry.CHALLENGER}'"
                log.warning("%s %s", models.name, reason)
                return reason
        models.set_alias(registry.CHALLENGER, version)
    return None


def assign_champion(
    store: MonitoringStore, models: ModelRegistry, ds: str, version: int, replace: bool = False
) -> tuple[registry.VersionInfo | None, str]:
    """Bootstrap's move: make ``version`` the champion if there is none (or ``replace``), under the alias lock
    and recorded like a promotion (the old champion becomes ``previous``), without a model event. Returns
    the champion after it and what happened, in a line.

    "None" means MLflow answered that the alias does not exist; a failed read raises
    ``registry.RegistryError`` before any alias moves.
    """
    with _alias_lock(store, models.name):
        complete_pending(store, models)
        current = models.version_by_alias(registry.CHAMPION)
        if current is not None and current.version == version:
            message = f"{models.name} v{current.version} is already the champion"
        elif current is not None and not replace:
            message = (
                f"{models.name} already has champion v{current.version}; registered v{version} "
                f"without moving it (trigger with replace_champion=true to promote)"
            )
        else:
            move = {
                "ds": ds,
                "event": ASSIGNED,
                "model_name": models.name,
                "to_version": version,
                "from_version": current.version if current else None,
                "clear_challenger": False,
                "reason": "bootstrap",
            }
            models.require_ready(version)  # a missing or unfinished version fails before anything is recorded
            _apply(store, models, _record(store, move))
            message = f"{models.name} v{version} is now the champion"
        log.info(message)
        return models.version_by_alias(registry.CHAMPION), message


def _promote_locked(ds: str, reason: str, store: MonitoringStore, models: ModelRegistry) -> dict:
    challenger = models.version_by_alias(registry.CHALLENGER)
    champion = models.version_by_alias(registry.CHAMPION)
    if challenger is None:
        return {"promoted": False, "reason": "challenger alias is gone (promoted by a concurrent run?)"}
    move = _record(
        store,
        {
            "ds": ds,
            "event": PROMOTED,
            "model_name": models.name,
            "to_version": challenger.version,
            "from_version": champion.version if champion else None,
            "clear_challenger": True,
            "reason": reason,
        },
    )
    return _result(_apply(store, models, move))


def rollback(store: MonitoringStore, models: ModelRegistry, ds: str, target: str | int, reason: str) -> dict:
    """Point ``champion`` at ``target`` (a version number or ``previous``) and record why; the same rollback
    (day and reason) run again returns the first one instead of moving the aliases a second time."""
    name = models.name
    with _alias_lock(store, name):
        complete_pending(store, models)
        done = _moves(store, name, ds=ds, event=ROLLED_BACK, reason=reason, state="done")
        if done:  # the same rollback again (a retried task): it happened once, say so again
            return {"version": done[-1]["to_version"], "from_version": done[-1]["from_version"], "reason": reason}
        champion = models.version_by_alias(registry.CHAMPION)
        if str(target) == registry.PREVIOUS:
            previous = models.version_by_alias(registry.PREVIOUS)
            if previous is None:
                raise ValueError(f"{name} has no '{registry.PREVIOUS}' alias to roll back to")
            version = previous.version
        else:
            version = int(target)
        models.require_ready(version)  # a missing or unfinished version fails before anything is recorded
        move = _record(
            store,
            {
                "ds": ds,
                "event": ROLLED_BACK,
                "model_name": name,
                "to_version": version,
                "from_version": champion.version if champion else None,
                "clear_challenger": False,
                "reason": reason,
            },
        )
        done = _apply(store, models, move)
    return {"version": done["to_version"], "from_version": done["from_version"], "reason": reason}
