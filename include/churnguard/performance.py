"""Measured performance: label deliveries are checked, then joined to the scores of the days they belong to.

A day's AUC from a few hundred labels is noisy (at 26 % churn, ±0.04 from 200 labels), so each day also
gets one-sided confidence bounds (DeLong for the AUC, a bootstrap for F1). A *measured failure* is the
failure-risk model's failure (:func:`churnguard.failure.labels.day_failure`, one rule for both): on the
labels of the ``window_days`` days ending on the day, AUC confidently more than ``auc_tolerance`` below the
reference, or F1 confidently more than ``f1_relative_drop`` below it; a window with too few labels (or of
one class) is no failure. The definition is ``failure.yaml``'s ``failure`` block with this run's knobs
from ``monitoring.yaml`` (``performance.auc_tolerance``, ``performance.f1_relative_drop``,
``labels.min_labels``, ``labels.delay_days``) applied: :func:`measured_failure_definition`.

Each measured day also gets the AUC within every segment the dataset config names (:func:`segment_aucs`),
the customers' segment values read with their scores (the scores partition carries them).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnguard import registry, training
from churnguard.arrow import release_arrow_memory
from churnguard.config import MonitoringConfig
from churnguard.crashpoints import crash_point
from churnguard.data import target_array
from churnguard.dataroot import DataRoot
from churnguard.drift.profile import category_key
from churnguard.failure.config import FailureConfig, FailureDefinition
from churnguard.failure.labels import day_failure, delong_auc, label_day_metrics
from churnguard.labels import OBSERVED, REPORT, LabelCheck, row_hashes, validate_labels
from churnguard.results import PerformanceSummary
from churnguard.scoring import ROLES
from churnguard.store import MonitoringStore, schema

if TYPE_CHECKING:
    from churnguard.context import DayContext

__all__ = [
    "champion_history",
    "day_metrics",
    "delong_auc",
    "is_measured_failure",
    "measure_day",
    "measured_failure_definition",
    "reference_metrics",
    "segment_aucs",
]
log = logging.getLogger(__name__)
Y = "y"  # 1 = the dataset's positive class, in the joined labels
SEGMENT = "segment:"  # prefix of a dataset segment's column in the joined labels
STORED = ("labelled_rows", "roc_auc", "roc_auc_lower", "f1", "precision", "recall", "brier", "churn_rate")


def measured_failure_definition(cfg: MonitoringConfig, failure_cfg: FailureConfig) -> FailureDefinition:
    """The failure definition of ``failure_cfg`` (``failure.yaml``) with the daily run's knobs of ``cfg``
    applied."""
    knobs = {
        "tolerance": cfg.performance.auc_tolerance,
        "f1_relative_drop": cfg.performance.f1_relative_drop,
        "min_labels": cfg.labels.min_labels,
        "label_delay_days": cfg.labels.delay_days,
    }
    return failure_cfg.failure.with_overrides(knobs, "failure.yaml's failure definition, monitoring.yaml's knobs")


def day_metrics(y: np.ndarray, scores: np.ndarray, threshold: float, confidence: float) -> dict:
    """Metrics of labelled customers with the bounds of the failure rule at ``confidence`` (the failure
    definition's); AUC fields are None when only one class is present."""
    return label_day_metrics(np.asarray(y), np.asarray(scores, dtype=float), threshold, confidence)


def is_measured_failure(
    metrics: dict, reference_auc: float, reference_f1: float, cfg: MonitoringConfig, failure_cfg: FailureConfig
) -> bool:
    """:func:`~churnguard.failure.labels.day_failure` under :func:`measured_failure_definition`; a window
    without a failure status (too few labels) is no failure."""
    definition = measured_failure_definition(cfg, failure_cfg)
    return day_failure(metrics, reference_auc, reference_f1, definition) is True


def reference_metrics(models: registry.ModelRegistry, version: int) -> tuple[float, float]:
    """The reference AUC and F1 a version is held to (tags written when it was registered)."""
    tags = models.require_ready(version).tags
    return tags.reference_auc, tags.reference_f1


def measure_day(ctx: DayContext) -> PerformanceSummary:
    """Check the label deliveries not measured yet, store per-day metrics of the days they name, summarise.

    Which deliveries: every delivery that arrived by ``ds`` and was not measured by the run of another date
    (:func:`_deliveries_to_measure`). So deliveries a run never measured (its batch was quarantined, it crashed
    before this step) are measured by the next run that gets here, and re-running a date measures what it
    measured then.
    Each is checked first (:func:`read_labels`): a rejected one is quarantined with its
    report and an alert, and produces no row (``labels`` says why).

    An observed day named by those deliveries is (re)computed from every valid delivery for it that arrived
    by ``ds`` (arrival dates ``observed_ds``..``ds``; a later label of a customer replaces an earlier one),
    never from the latest delivery alone. Labels whose customer is not in that day's scores are counted
    (``unknown_ids``), not measured.

    The champion's failure status of an observed day pools its labels with those of the preceding
    ``window_days - 1`` days that arrived by ``ds``. A failure counts only when the champion pinned for
    ``ds`` scored the day: labels keep arriving for days an earlier champion scored, and they say nothing
    about this one (``earlier_champion_failure_days``).
    """
    root, store, cfg, ds = ctx.root, ctx.store, ctx.monitoring, ctx.ds
    definition = measured_failure_definition(cfg, ctx.failure_config)
    data_cfg = ctx.dataset
    today = ctx.day
    scored = root.scored_days()
    new = _deliveries_to_measure(store, root, ds)
    checks = {d: read_labels(root, d, data_cfg, scored) for d in new}
    observed_days = sorted({o for c in checks.values() if c.ok for o in c.labels[OBSERVED].unique()})
    if observed_days:  # every delivery that may hold labels of these days or of their failure windows
        since = date.fromisoformat(observed_days[0]) - timedelta(days=definition.window_days - 1)
        older = [d for d in root.label_days(since=since, until=today) if d not in checks]
        checks.update({d: read_labels(root, d, data_cfg, scored) for d in older})
    for check in checks.values():
        if not check.ok:
            _reject(root, store, check)
    for d in new:
        if checks[d].ok:
            save_label_check(root, checks[d])
    labels = _latest_labels(checks.values(), data_cfg)
    release_arrow_memory()  # what reading and checking the deliveries used
    if observed_days:
        inside = _days_between(labels[OBSERVED], since.isoformat(), observed_days[-1])
        labels = labels if inside.all() else labels[inside]
    joined, unknown = _join_scores(root, labels, data_cfg, scored)
    release_arrow_memory()

    champion_version = f"{registry.CHAMPION}_version"
    pinned = ctx.versions.champion
    thresholds: dict[int, float] = {}
    rows, measured, failures, earlier = [], [], [], []
    for observed_ds in observed_days:
        day = _rows(joined, joined[OBSERVED] == observed_ds)
        if day.empty:
            continue
        y = day[Y].to_numpy()
        for role in ROLES:
            if f"{role}_score" not in day or day[f"{role}_version"].isna().all():
                continue
            version = int(day[f"{role}_version"].iloc[0])
            if version not in thresholds:
                thresholds[version] = training.load_version_model(ctx.registry, version).threshold
            threshold = thresholds[version]
            metrics = day_metrics(y, day[f"{role}_score"].to_numpy(), threshold, definition.confidence)
            row = {
                "observed_ds": observed_ds,
                "role": role,
                "model_version": version,
                "measured_ds": str(ds),
                **{k: metrics[k] for k in STORED},
            }
            if role == registry.CHAMPION:
                first = (date.fromisoformat(observed_ds) - timedelta(days=definition.window_days - 1)).isoformat()
                window = _rows(
                    joined, _days_between(joined[OBSERVED], first, observed_ds) & (joined[champion_version] == version)
                )
                pooled = day_metrics(
                    window[Y].to_numpy(), window[f"{role}_score"].to_numpy(), threshold, definition.confidence
                )
                ref_auc, ref_f1 = reference_metrics(ctx.registry, version)
                if day_failure(pooled, ref_auc, ref_f1, definition) is True:
                    (failures if version == pinned else earlier).append(observed_ds)
            rows.append(row)
            measured.append(
                {
                    **row,
                    "roc_auc_upper": metrics["roc_auc_upper"],
                    "unknown_ids": unknown[observed_ds],
                    "segments": segment_aucs(
                        y,
                        day[f"{role}_score"].to_numpy(),
                        _segments_of(day, data_cfg),
                        cfg.performance.segment_min_labels,
                    ),
                }
            )
    # A re-run of an old date leaves the days a later run measured (with more labels) as that run left them.
    later = {
        (r["observed_ds"], r["role"])
        for r in store.rows(schema.performance, since=(today + timedelta(days=1)), day_column="measured_ds")
    }
    with store.engine.begin() as conn:  # the rows and which deliveries they measured: one transaction
        store.upsert(schema.performance, [r for r in rows if (r["observed_ds"], r["role"]) not in later], conn=conn)
        store.upsert(
            schema.label_deliveries,
            [
                {"delivery_ds": str(d), "measured_ds": str(ds), "status": checks[d].status, "rows": checks[d].rows}
                for d in new
            ],
            conn=conn,
        )
    crash_point("store.performance.written")
    history = champion_history(store, ds, cfg)
    if earlier:
        log.info(
            "performance %s: failures on %s were measured for an earlier champion: not this one's",
            ds,
            ", ".join(earlier),
        )
    deliveries = [_delivery(c) for d, c in sorted(checks.items()) if d in new or not c.ok]
    unknown_ids = sum(unknown.get(o, 0) for o in observed_days)
    log.info(
        "performance %s: %d label deliveries (%s), %d observed days measured, %d unknown ids",
        ds,
        len(deliveries),
        ", ".join(f"{e['ds']} {e['status']}" for e in deliveries) or "none",
        len({m["observed_ds"] for m in measured}),
        unknown_ids,
    )
    return PerformanceSummary(
        ds=str(ds),
        measured=measured,
        measured_failure_days=failures,
        measured_failure=bool(failures),
        earlier_champion_failure_days=earlier,
        history_days=len(history["roc_auc"]),
        auc_slope_per_day=history["slope"],
        latest_auc=history["roc_auc"][-1] if history["roc_auc"] else None,
        deliveries=deliveries,
        unknown_ids=unknown_ids,
    )


def _deliveries_to_measure(store: MonitoringStore, root: DataRoot, ds: str) -> list[date]:
    """The label deliveries that arrived by ``ds`` and that no run of another date measured (the
    ``label_deliveries`` table, written with the performance rows): whatever happened to the days they landed on
    (a quarantined batch, a crashed run, a day not run yet, the first day ever), each is measured once; a
    re-run of ``ds`` measures again what ``ds`` measured."""
    measured = {
        r["delivery_ds"]: r["measured_ds"]
        for r in store.rows(schema.label_deliveries, until=ds, day_column="delivery_ds")
    }
    return [d for d in root.label_days(until=date.fromisoformat(ds)) if measured.get(d.isoformat(), ds) == ds]


def read_labels(root: DataRoot, ds: date | str, dataset_cfg, scored_days: set[str]) -> LabelCheck:
    """Read the delivery of ``ds`` with the classifying reader batches are read with and check it
    (:func:`churnguard.labels.validate_labels`): an unreadable file (empty, truncated, CSV named ``.parquet``,
    junk) is a rejected delivery, status ``unreadable``."""
    from churnguard.batches import UnreadableBatch, read_stored
    from churnguard.validation import Issue
    from churnguard.validation.suite import ERROR

    key, day = root.labels_key(ds), str(ds)
    try:
        frame = read_stored(root.storage, key)
    except UnreadableBatch as exc:
        return LabelCheck(day, key, "unreadable", [Issue(ERROR, "readable", None, str(exc))])
    return validate_labels(frame, dataset_cfg, scored_days, ds=ds, source=key)


def save_label_check(root: DataRoot, check: LabelCheck) -> str:
    """Write the delivery's report (``labels_validation.json`` among the day's reports); returns its URI."""
    import json

    return root.write_report(check.ds, REPORT, json.dumps(check.to_dict(), indent=2, allow_nan=False).encode())


def quarantine_labels(root: DataRoot, check: LabelCheck) -> str:
    """Move a rejected delivery to the labels' quarantine (replacing one there) after writing its report;
    returns where it went."""
    check.quarantined_to = root.labels_quarantine_uri(check.ds)
    save_label_check(root, check)  # first: a crash before the move leaves the delivery in place, rejected again
    root.quarantine_labels(check.ds)
    log.warning("%s; quarantined to %s", check.reason(), check.quarantined_to)
    return check.quarantined_to


def _reject(root: DataRoot, store: MonitoringStore, check: LabelCheck) -> None:
    """Quarantine a rejected delivery and raise an alert dated by its arrival."""
    where = quarantine_labels(root, check)
    from churnguard import alerts

    ds = check.ds.isoformat() if hasattr(check.ds, "isoformat") else str(check.ds)
    alerts.observe(
        store,
        ds,
        alerts.LABEL_DELIVERY,
        alerts.Alert(ds, alerts.LABEL_DELIVERY, alerts.CRITICAL, f"{check.reason()} (quarantined to {where})"),
    )


def _latest_labels(checks, data_cfg) -> pd.DataFrame:
    """The valid deliveries as one frame of what measuring needs: the customer id, the observed day (a
    category) and ``y`` (1 = the positive class); per (customer, observed day) the latest label. Each
    delivery's checked frame is handed over by its check and dropped once compacted."""
    id_col, frames = data_cfg.id.column, []
    for check in sorted((c for c in checks if c.ok), key=lambda c: c.ds):
        labels = check.hand_over_labels()
        frames.append(
            pd.DataFrame(
                {
                    id_col: labels[id_col],
                    OBSERVED: labels[OBSERVED].astype("category"),
                    Y: target_array(labels, data_cfg).astype(np.int8),
                }
            )
        )
        del labels
    if not frames:
        return pd.DataFrame(
            {id_col: pd.Series(dtype="str"), OBSERVED: pd.Series(dtype="category"), Y: pd.Series(dtype=np.int8)}
        )
    if len(frames) == 1:  # a checked delivery keeps one label per (customer, observed day) already
        return frames[0]
    both = pd.concat(frames, ignore_index=True)
    both[OBSERVED] = both[OBSERVED].astype(str)
    return both.drop_duplicates([id_col, OBSERVED], keep="last").astype({OBSERVED: "category"})


def _join_scores(root: DataRoot, labels: pd.DataFrame, data_cfg, scored: set[str]) -> tuple[pd.DataFrame, dict]:
    """Labels joined to the scores of their observed days (in the labels' order): per labelled customer
    found in the day's scores, the observed day, ``y`` and each role's score and version; and per observed
    day how many labels name a customer its scores do not have. Days never scored are left out (the label
    check counted them). A day's scores are read a chunk at a time and matched by :func:`_match_ids`, so
    neither side's ids are copied or held twice."""
    id_col, frames, unknown = data_cfg.id.column, [], {}
    segment_values: dict[str, dict[str, int]] = {col: {} for col in data_cfg.segments}  # value -> code, all days
    days = sorted(d for d in (str(d) for d in labels[OBSERVED].unique()) if d in scored)
    for observed_ds in days:
        day = _rows(labels, labels[OBSERVED] == observed_ds)
        ids = pa.array(day[id_col], type=pa.large_string())
        matcher = _IdMatcher(ids)
        columns: dict[str, np.ndarray] = {}
        segments = {col: np.full(len(ids), -1, dtype=np.int32) for col in segment_values}  # -1: no value
        for chunk in root.read_scores_chunks(observed_ds):
            at, rows = matcher.match(pa.array(chunk[id_col], type=pa.large_string()))
            for name in chunk.columns.drop(id_col):
                if name in segment_values:
                    segments[name][at] = _segment_codes(chunk[name].take(rows), segment_values[name])
                    continue
                values = chunk[name].to_numpy()
                if name not in columns:
                    columns[name] = np.zeros(len(ids), dtype=values.dtype)
                columns[name][at] = values[rows]
        known = np.flatnonzero(matcher.found)
        unknown[observed_ds] = int(len(ids) - len(known))
        frames.append(
            pd.DataFrame(
                {
                    **{n: v[known] for n, v in columns.items()},
                    **{SEGMENT + col: codes[known] for col, codes in segments.items()},
                    Y: day[Y].to_numpy()[known],
                    OBSERVED: pd.Categorical.from_codes(np.full(len(known), len(frames)), categories=days),
                }
            )
        )
        del ids, matcher, columns
    if not frames:
        return pd.DataFrame({OBSERVED: pd.Categorical([], categories=days), Y: np.zeros(0, np.int8)}), unknown
    joined = pd.concat(frames, ignore_index=True)
    for col, values in segment_values.items():  # codes are shared by every day: one set of categories fits all
        joined[SEGMENT + col] = pd.Categorical.from_codes(joined[SEGMENT + col], categories=list(values))
    return joined, unknown


def _segment_codes(values: pd.Series, index: dict[str, int]) -> np.ndarray:
    """Each value as its code in ``index`` (shared by every day; extended as values appear; -1: missing)."""
    codes, uniques = pd.factorize(values)
    remap = [index.setdefault(category_key(u), len(index)) for u in uniques]
    return np.array([*remap, -1], dtype=np.int32)[codes]


def _segments_of(day: pd.DataFrame, data_cfg) -> dict[str, pd.Series]:
    return {col: day[SEGMENT + col] for col in data_cfg.segments if SEGMENT + col in day}


def segment_aucs(y: np.ndarray, scores: np.ndarray, segments: dict[str, pd.Series], min_labels: int) -> dict:
    """ROC AUC of the labelled customers of each segment value (``segments``: column -> each customer's value,
    categorical). A value with fewer than ``min_labels`` labels, or of one class only, gets ``roc_auc`` None
    and the ``reason``; customers without a value (missing, or scored before the segments were configured)
    are only counted.

    >>> segment_aucs(np.array([0, 1, 0, 1]), np.array([.1, .9, .2, .8]),
    ...              {"contract": pd.Series(pd.Categorical(["a"] * 4))}, 2)["contract"]["values"]["a"]["roc_auc"]
    1.0
    """
    out = {}
    for col, values in segments.items():
        codes = values.cat.codes.to_numpy()
        blocks = {}
        for code, value in enumerate(values.cat.categories):
            inside = codes == code
            n, positives = int(inside.sum()), int(y[inside].sum())
            if n == 0:
                continue
            block = {"labelled_rows": n, "positives": positives, "roc_auc": None, "reason": None}
            if n < min_labels:
                block["reason"] = f"{n} labels < performance.segment_min_labels {min_labels}"
            elif positives in (0, n):
                block["reason"] = f"one class only: {'all' if positives else 'none'} of {n} churned"
            else:
                block["roc_auc"] = delong_auc(y[inside], scores[inside])[0]
            blocks[str(value)] = block
        out[col] = {"values": blocks, "without_value": int((codes < 0).sum())}
    return out


def _days_between(days: pd.Series, first: str, last: str) -> pd.Series:
    """Which rows of a categorical column of ISO days fall in ``first``..``last``."""
    return days.isin([d for d in days.cat.categories if first <= d <= last])


def _rows(frame: pd.DataFrame, mask: pd.Series) -> pd.DataFrame:
    """``frame[mask]``, without copying the frame when every row is kept (a day's 10M labels, often)."""
    return frame if mask.all() else frame[mask]


class _IdMatcher:
    """Finds ids (unique, e.g. a day's labelled customers) among chunks of other ids (a day's scores) by
    their hashes, sorted once; every match is confirmed on the ids themselves, so a hash collision never
    pairs two customers. Holds 24 bytes an id instead of a hash table of the strings."""

    def __init__(self, ids: pa.Array, hash_ids=row_hashes):
        self.ids, self.hash_ids = ids, hash_ids
        hashes = hash_ids(ids)
        self.order = np.argsort(hashes, kind="stable")
        self.sorted = hashes[self.order]
        self.found = np.zeros(len(ids), dtype=bool)

    def match(self, chunk: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Positions among ``self.ids`` and among ``chunk`` of the ids both hold (marked in ``found``)."""
        hashes, last = self.hash_ids(chunk), len(self.sorted) - 1
        if last < 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        by_hash = np.argsort(hashes)  # sorted keys: the binary searches walk the sorted hashes in order
        first = np.empty(len(hashes), dtype=np.int64)
        first[by_hash] = np.minimum(np.searchsorted(self.sorted, hashes[by_hash]), last)
        rows = np.flatnonzero(self.sorted[first] == hashes)
        at = self.order[first[rows]]
        same = pc.equal(self.ids.take(pa.array(at)), chunk.take(pa.array(rows))).to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(~same):  # another id has the same hash: compare the ids that share it
            j, row = first[rows[i]], chunk[int(rows[i])]
            while j <= last and self.sorted[j] == hashes[rows[i]]:
                if self.ids[int(self.order[j])] == row:
                    at[i], same[i] = self.order[j], True
                    break
                j += 1
        at, rows = at[same], rows[same]
        self.found[at] = True
        return at, rows


def _delivery(check: LabelCheck) -> dict:
    """A delivery in the day's summary: its date, status, rows and issue lines (and where a rejected one went)."""
    entry = {"ds": check.ds, "status": check.status, "rows": check.rows, "issues": check.lines()}
    if check.quarantined_to:
        entry["quarantined_to"] = check.quarantined_to
    return entry


def champion_history(store: MonitoringStore, ds: date | str, cfg: MonitoringConfig) -> dict:
    """Champion AUC over the last ``history_days`` observed days (up to ``ds``) and its slope per day."""
    since = date.fromisoformat(str(ds)) - pd.Timedelta(days=cfg.performance.history_days).to_pytimedelta()
    rows = [
        r
        for r in store.rows(
            schema.performance,
            where={"role": registry.CHAMPION},
            since=since.isoformat(),
            until=str(ds),
            order_by="observed_ds",
            day_column="observed_ds",
        )
        if r["roc_auc"] is not None and r["labelled_rows"] >= cfg.labels.min_labels
    ]
    days = [date.fromisoformat(r["observed_ds"]).toordinal() for r in rows]
    aucs = [r["roc_auc"] for r in rows]
    slope = float(np.polyfit(days, aucs, 1)[0]) if len(rows) >= 3 else None
    return {"observed_ds": [r["observed_ds"] for r in rows], "roc_auc": aucs, "slope": slope}


def champion_failure_days(store: MonitoringStore, ds: date | str, champion: int, cfg: MonitoringConfig) -> list[str]:
    """Every observed day (over the last ``history_days`` up to ``ds``) measured as a failure of ``champion``:
    the failure days each day's performance step found while ``champion`` was that day's pinned champion.
    One day's step reports only the days it measured; a change point taken from them alone would move forward
    with every retrain and never gather the post-change labelled days a challenger needs."""
    since = (date.fromisoformat(str(ds)) - timedelta(days=cfg.performance.history_days)).isoformat()
    pinned = {r["ds"]: r["champion_version"] for r in store.rows(schema.day_models, since=since, until=str(ds))}
    days: set[str] = set()
    for step in store.rows(schema.day_steps, where={"step": "performance"}, since=since, until=str(ds)):
        if pinned.get(step["ds"]) == champion:
            days.update(step["result"].get("measured_failure_days", []))
    return sorted(days)
