"""Model Health: the data behind the health pages, one JSON-able dict per chart or panel.

Plain functions over the monitoring store (``store``, default :func:`churnguard.store.open_store`) and the
day's reports in the data root (``root``, default :meth:`DataRoot.open`); the Airflow plugin's pages only
draw what these return. Days are ``YYYY-MM-DD`` strings; ``start`` and ``end`` bound a series (either end
open). Every number is a float or None (never NaN), so each answer serialises with ``json.dumps``.

=========================  ===========================================================================
function                    what
=========================  ===========================================================================
:func:`overview`            champion/challenger, the day's decision and reasons, failure risk, open alerts
:func:`drift_heatmap`       PSI per feature and day (features × days), drifted flags
:func:`score_distribution`  the prediction PSI per day, and the score histogram per day from drift.json
:func:`feature_distribution` reference vs current bins of one feature on one day (that day's drift.json)
:func:`performance`         AUC, F1, precision, recall per role and observed day, bands, label delay
:func:`models`              versions: events (registered, promoted, rolled back) + registry tags/metrics
:func:`alerts`              the alert history with severities, episodes and who acknowledged them
:func:`run_day`             one day: its row, summary, validation result, drift report and report links
=========================  ===========================================================================
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from churnguard.dataroot import DataRoot
from churnguard.store import MonitoringStore, open_store, schema

log = logging.getLogger(__name__)

ROLES = ("champion", "challenger")
METRICS = ("roc_auc", "f1", "precision", "recall")
SEVERITY_RANK = {"info": 0, "warn": 1, "warning": 1, "moderate": 1, "critical": 2}
REPORT_NAMES = ("summary.json", "validation.json", "validation.html", "drift.json", "drift.html")
RENDERED_FROM = {"validation.html": "validation.json"}  # pages the reports app renders from a day's JSON
REGISTRY_TIMEOUT_S = 3.0
WILSON_Z = 1.959964  # two-sided 95 %


def _store(store: MonitoringStore | None) -> MonitoringStore:
    return store or open_store()


def _root(root: DataRoot | None) -> DataRoot:
    return root or DataRoot.open()


def _day(value: str | date | None) -> str | None:
    """``value`` as ``YYYY-MM-DD`` (ValueError for anything else), None stays None."""
    if value is None or value == "":
        return None
    return (value if isinstance(value, date) else date.fromisoformat(str(value))).isoformat()


def _num(value: Any, digits: int = 6) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _last_day(store: MonitoringStore) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(select(func.max(schema.daily_runs.c.ds))).scalar_one_or_none()


def _read_json(root: DataRoot, ds: str, name: str) -> tuple[dict | None, str | None]:
    """A day's JSON report and None, or None and why not (absent, unreadable)."""
    try:
        return json.loads(root.read_report(ds, name)), None
    except FileNotFoundError:
        return None, f"{name} of {ds} does not exist"
    except Exception as exc:  # storage trouble or a broken file: the page says so, it does not fail
        log.warning("reading %s of %s failed: %s", name, ds, exc)
        return None, f"reading {name} of {ds} failed: {type(exc).__name__}"


# -- overview ------------------------------------------------------------------------------------------
def overview(store: MonitoringStore | None = None, ds: str | None = None) -> dict:
    """The day ``ds`` (default: the last monitored day): champion and challenger versions, the decision with
    its reasons, drift, the failure risk with its drivers, and the alerts of the last 7 days up to it, each with
    its episode (state, who acknowledged it)."""
    store = _store(store)
    ds = _day(ds) or _last_day(store)
    if ds is None:
        return {
            "ds": None,
            "note": "no day monitored yet",
            "run": None,
            "failure_risk": None,
            "open_alerts": [],
            "last_promotion": None,
        }
    runs = store.rows(schema.daily_runs, where={"ds": ds})
    run = None
    if runs:
        r = runs[0]
        run = {
            "ds": r["ds"],
            "rows": r["rows"],
            "validation_status": r["validation_status"],
            "champion_version": r["champion_version"],
            "challenger_version": r["challenger_version"],
            "decision": r["decision"],
            "reasons": r["reasons"] or [],
            "promoted": bool(r["promoted"]),
            "drift_severity": r["drift_severity"],
            "drift_share": _num(r["drift_share"]),
            "weighted_drift": _num(r["weighted_drift"]),
            "prediction_psi": _num(r["prediction_psi"]),
        }
    risks = store.rows(schema.failure_risk, where={"ds": ds})
    risk = None
    if risks:
        f = risks[0]
        risk = {
            "available": bool(f["available"]),
            "risk": _num(f["risk"]),
            "drivers": f["drivers"] or [],
            "model_version": f["model_version"],
            "reason": f["reason"],
        }
    since = (date.fromisoformat(ds) - timedelta(days=6)).isoformat()
    open_alerts = [_alert(a) for a in store.rows(schema.alerts, since=since, until=ds)]
    _attach_episodes(store, open_alerts)
    open_alerts.sort(key=lambda a: (a["ds"], SEVERITY_RANK.get(a["severity"], 0)), reverse=True)
    events = store.tuples(
        schema.model_events, ["ds", "event", "model_version", "from_version", "reason"], until=ds, order_by=("ds", "id")
    )
    moves = [e for e in events if e[1] in ("promoted", "rolled_back")]
    last_move = (
        None
        if not moves
        else {
            "ds": moves[-1][0],
            "event": moves[-1][1],
            "version": moves[-1][2],
            "from_version": moves[-1][3],
            "reason": moves[-1][4],
        }
    )
    return {
        "ds": ds,
        "run": run,
        "failure_risk": risk,
        "open_alerts": open_alerts,
        "last_promotion": last_move,
        "note": None if run else f"{ds} has no daily run recorded",
    }


def story(store: MonitoringStore | None = None) -> dict:
    """The monitored days as one story (the chart on top of Overview): the failure risk of each day with the
    alarm threshold, the champion's AUC on each day's customers once their labels arrived, and the milestones of
    :func:`churnguard.status.timeline`: the first sustained drift, the risk alarm, the day the labels confirmed
    the failure (and the day they measured), the lead between them, promotions and rollbacks."""
    from churnguard.status import timeline

    tl = timeline(_store(store))
    days, m = tl["days"], tl["milestones"]
    warning = m["early_warning"]
    moves = [
        {"ds": e["ds"], "event": event, "version": e["version"], "from_version": e["from_version"]}
        for event in ("promoted", "rolled_back")
        for e in m[event]
    ]
    return {
        "days": [d["ds"] for d in days],
        "risk": [_num(d["failure_risk"]) for d in days],
        "auc": [_num(d["auc"]) for d in days],
        "auc_version": [d["auc_version"] for d in days],
        "risk_warn": warning["risk_warn"],
        "first_drift": m["first_drift"],
        "alarm": warning["alert_ds"],
        "confirmed": warning["confirmed_ds"],
        "failed": warning["failed_ds"],
        "lead_days": warning["lead_days"],
        "moves": sorted(moves, key=lambda e: e["ds"]),
    }


# -- drift -----------------------------------------------------------------------------------------------
def drift_heatmap(store: MonitoringStore | None = None, start: str | None = None, end: str | None = None) -> dict:
    """PSI of every feature on every day with drift recorded: ``psi[i][j]`` is feature ``features[i]`` on
    ``days[j]`` (None where not computed), ``drifted`` the same shape of flags; features ordered by their
    mean PSI, most drifted first."""
    rows = _store(store).tuples(
        schema.feature_drift,
        ["ds", "feature", "psi", "drifted", "psi_threshold"],
        _day(start),
        _day(end),
        order_by=("ds", "feature"),
    )
    days = sorted({r[0] for r in rows})
    col = {d: j for j, d in enumerate(days)}
    cells: dict[str, list] = {}
    flags: dict[str, list] = {}
    thresholds: dict[str, float | None] = {}
    for ds, feature, psi, drifted, threshold in rows:
        if feature not in cells:
            cells[feature], flags[feature] = [None] * len(days), [False] * len(days)
        cells[feature][col[ds]] = _num(psi)
        flags[feature][col[ds]] = bool(drifted)
        thresholds[feature] = _num(threshold)

    def mean_psi(feature: str) -> float:
        values = [v for v in cells[feature] if v is not None]
        return sum(values) / len(values) if values else 0.0

    features = sorted(cells, key=lambda f: (-mean_psi(f), f))
    return {
        "days": days,
        "features": features,
        "psi": [cells[f] for f in features],
        "drifted": [flags[f] for f in features],
        "psi_threshold": {f: thresholds[f] for f in features},
        "drifted_per_day": [sum(flags[f][j] for f in features) for j in range(len(days))],
    }


def score_distribution(
    store: MonitoringStore | None = None,
    root: DataRoot | None = None,
    start: str | None = None,
    end: str | None = None,
    max_days: int = 60,
) -> dict:
    """The prediction's drift over time: its PSI per monitored day (``daily_runs.prediction_psi``, every day in
    range), and the champion's score histogram of the last ``max_days`` days in range with a drift report
    (``prediction.histogram`` of each day's drift.json, shares per bin, with the reference's shares)."""
    store, root = _store(store), _root(root)
    runs = store.tuples(schema.daily_runs, ["ds", "prediction_psi"], _day(start), _day(end))
    psi = {"days": [r[0] for r in runs], "prediction_psi": [_num(r[1]) for r in runs]}
    days = [r[0] for r in runs][-max_days:] if max_days > 0 else []
    hist_days, current, missing = [], [], []
    edges = reference = None
    for ds in days:
        hist, why = _prediction_histogram(root, ds)
        if hist is None:
            missing.append({"ds": ds, "why": why})
            continue
        if edges is None:
            edges, reference = hist["edges"], _shares(hist["reference"])
        elif hist["edges"] != edges:  # another reference (a new champion's profile): its own bins
            missing.append({"ds": ds, "why": "scored against another reference's bins"})
            continue
        hist_days.append(ds)
        current.append(_shares(hist["current"]))
    return {
        **psi,
        "histogram": {
            "edges": edges,
            "reference": reference,
            "days": hist_days,
            "current": current,
            "max_days": max_days,
        },
        "missing": missing,
    }


def _shares(counts: list | None) -> list[float | None]:
    total = sum(c or 0 for c in counts or [])
    return [_num((c or 0) / total) if total else None for c in counts or []]


_histograms: dict[tuple[str, str], tuple[float, dict | None, str | None]] = {}
_histograms_lock = threading.Lock()


def _prediction_histogram(root: DataRoot, ds: str) -> tuple[dict | None, str | None]:
    """``prediction.histogram`` of the day's drift.json; remembered for 60 s per data root and day (a re-run
    of the day rewrites it, so not longer)."""
    key = (root.url, ds)
    with _histograms_lock:
        hit = _histograms.get(key)
    if hit is not None and time.monotonic() - hit[0] < 60:
        return hit[1], hit[2]
    doc, why = _read_json(root, ds, "drift.json")
    hist = ((doc or {}).get("prediction") or {}).get("histogram")
    if doc is not None and not hist:
        why = "the drift report has no prediction histogram"
    with _histograms_lock:
        _histograms[key] = (time.monotonic(), hist, why)
    return hist, why


def feature_distribution(ds: str, feature: str | None = None, root: DataRoot | None = None) -> dict:
    """Reference vs current of ``feature`` (default: the day's most drifted by PSI) on day ``ds``, from that
    day's drift.json: PSI bins for a numeric feature, category counts for a categorical one, as counts and
    shares, with the feature's PSI, test and severity."""
    ds = _day(ds)
    doc, why = _read_json(_root(root), ds, "drift.json")
    if doc is None:
        return {"ds": ds, "feature": feature, "available": False, "why": why, "features": []}
    features = doc.get("features") or {}
    names = sorted(features, key=lambda f: (-(features[f].get("psi") or 0), f))
    if feature is None and names:
        feature = names[0]
    block = features.get(feature)
    if block is None:
        return {
            "ds": ds,
            "feature": feature,
            "available": False,
            "features": names,
            "why": f"{feature!r} is not in the drift report of {ds}",
        }
    out = {
        "ds": ds,
        "feature": feature,
        "available": True,
        "features": names,
        "kind": block.get("kind"),
        "psi": _num(block.get("psi")),
        "severity": block.get("severity"),
        "drifted": bool(block.get("drifted")),
        "psi_threshold": block.get("psi_threshold"),
        "test": block.get("test"),
        "missing_rate": block.get("missing_rate"),
    }
    if block.get("bins"):
        bins = block["bins"]
        out.update(
            labels=bin_labels(bins["edges"], len(bins["reference"])),
            edges=bins["edges"],
            reference_counts=bins["reference"],
            current_counts=bins["current"],
        )
    elif block.get("categories"):
        cats = block["categories"]
        labels = sorted(set(cats.get("reference") or {}) | set(cats.get("current") or {}))
        out.update(
            labels=labels,
            reference_counts=[(cats.get("reference") or {}).get(c, 0) for c in labels],
            current_counts=[(cats.get("current") or {}).get(c, 0) for c in labels],
        )
    else:
        out.update(labels=[], reference_counts=[], current_counts=[])
    out["reference"], out["current"] = _shares(out["reference_counts"]), _shares(out["current_counts"])
    return out


def bin_labels(edges: list[float], n_bins: int) -> list[str]:
    """Labels of ``n_bins`` bins: a feature's PSI bins have inner ``edges`` only (``n_bins == len(edges) + 1``,
    the outer bins open), a histogram has both outer edges (``n_bins == len(edges) - 1``)."""
    if n_bins == len(edges) + 1:
        if not edges:
            return ["all"]
        return (
            [f"< {edges[0]:.4g}"]
            + [f"[{a:.4g}, {b:.4g})" for a, b in zip(edges[:-1], edges[1:], strict=True)]
            + [f"≥ {edges[-1]:.4g}"]
        )
    return [f"[{a:.4g}, {b:.4g})" for a, b in zip(edges[:-1], edges[1:], strict=True)]


# -- performance ------------------------------------------------------------------------------------------
def performance(
    store: MonitoringStore | None = None,
    start: str | None = None,
    end: str | None = None,
    delay_days: int | None = None,
) -> dict:
    """Per role (champion, challenger) and observed day: AUC with its one-sided lower bound (DeLong, stored),
    F1, precision and recall with 95 % Wilson intervals (recall over the day's churners, precision over the
    customers predicted to churn, both counted back from the stored rates), labelled rows, model version.
    ``label_delay``: the monitored days in range without labels yet (after the last measured day), and the
    configured label delay."""
    store = _store(store)
    start, end = _day(start), _day(end)
    if delay_days is None:
        from churnguard.config import load_monitoring_config

        delay_days = load_monitoring_config().labels.delay_days
    rows = store.tuples(
        schema.performance,
        [
            "observed_ds",
            "role",
            "model_version",
            "measured_ds",
            "labelled_rows",
            "roc_auc",
            "roc_auc_lower",
            "f1",
            "precision",
            "recall",
            "churn_rate",
        ],
        start,
        end,
        day_column="observed_ds",
        order_by=("observed_ds", "role"),
    )
    series: dict[str, dict[str, list]] = {}
    for obs, role, version, measured, n, auc, auc_lower, f1, precision, recall, churn_rate in rows:
        s = series.setdefault(
            role,
            {
                k: []
                for k in (
                    "observed_ds",
                    "model_version",
                    "measured_ds",
                    "labelled_rows",
                    "roc_auc",
                    "roc_auc_lower",
                    "f1",
                    "precision",
                    "precision_lower",
                    "precision_upper",
                    "recall",
                    "recall_lower",
                    "recall_upper",
                )
            },
        )
        positives = round((n or 0) * (churn_rate or 0))
        predicted = round(recall * positives / precision) if recall and precision else 0
        s["observed_ds"].append(obs)
        s["model_version"].append(version)
        s["measured_ds"].append(measured)
        s["labelled_rows"].append(n)
        s["roc_auc"].append(_num(auc))
        s["roc_auc_lower"].append(_num(auc_lower))
        s["f1"].append(_num(f1))
        for metric, value, count in (("precision", precision, predicted), ("recall", recall, positives)):
            low, high = wilson(value, count)
            s[metric].append(_num(value))
            s[f"{metric}_lower"].append(low)
            s[f"{metric}_upper"].append(high)
    measured_days = {r[0] for r in rows}
    last_measured = max(measured_days) if measured_days else None
    runs = [r[0] for r in store.tuples(schema.daily_runs, ["ds"], start, end)]
    pending = [d for d in runs if last_measured is None or d > last_measured]
    return {
        "roles": [r for r in ROLES if r in series] + sorted(set(series) - set(ROLES)),
        "series": series,
        "metrics": list(METRICS),
        "last_measured": last_measured,
        "label_delay": {
            "delay_days": delay_days,
            "pending_days": pending,
            "from": pending[0] if pending else None,
            "to": pending[-1] if pending else None,
        },
        "bands": {
            "roc_auc": "one-sided lower confidence bound (DeLong), as measured",
            "precision": "95 % Wilson interval over the customers predicted to churn",
            "recall": "95 % Wilson interval over the day's churners",
            "f1": "no band recorded",
        },
    }


def wilson(p: float | None, n: int) -> tuple[float | None, float | None]:
    """The 95 % Wilson score interval of a proportion ``p`` observed on ``n`` trials ((None, None) without)."""
    if p is None or not n or not math.isfinite(p):
        return None, None
    z2 = WILSON_Z**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = WILSON_Z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return _num(max(0.0, centre - half)), _num(min(1.0, centre + half))


# -- models ----------------------------------------------------------------------------------------------
RegistryLookup = Callable[[str], dict[int, dict]]


def models(
    store: MonitoringStore | None = None, lookup: RegistryLookup | None | bool = True, model_name: str | None = None
) -> dict:
    """Every churn-model version the store knows (from ``model_events``) with its history (registered,
    promoted, rolled back: day, from which version, why), the days it was champion or challenger, and what the
    registry says of it (``lookup``: name → {version: info}; default :func:`registry_versions`, False for
    none; at most :data:`REGISTRY_TIMEOUT_S` is waited for it, and its answer is reused for
    :data:`REGISTRY_TTL_S`): trigger, training window, reference metrics, run metrics and SHAP importance
    where recorded."""
    store = _store(store)
    if model_name is None:
        from churnguard.config import load_model_config

        model_name = load_model_config().registered_name
    events = store.tuples(
        schema.model_events,
        ["ds", "event", "model_version", "from_version", "reason"],
        order_by=("ds", "id"),
        where={"model_name": model_name},
    )
    runs = store.tuples(schema.daily_runs, ["ds", "champion_version", "challenger_version"])
    versions: dict[int, dict] = {}

    def entry(v: int) -> dict:
        return versions.setdefault(
            v,
            {
                "version": v,
                "events": [],
                "champion_days": 0,
                "challenger_days": 0,
                "first_champion": None,
                "last_champion": None,
            },
        )

    for ds, event, version, from_version, reason in events:
        entry(version)["events"].append({"ds": ds, "event": event, "from_version": from_version, "reason": reason})
    for ds, champion, challenger in runs:
        if champion is not None:
            e = entry(champion)
            e["champion_days"] += 1
            e["first_champion"] = e["first_champion"] or ds
            e["last_champion"] = ds
        if challenger is not None:
            entry(challenger)["challenger_days"] += 1
    registry_note = None
    found: dict[int, dict] = {}
    if lookup is not False:
        lookup = registry_versions if lookup is True or lookup is None else lookup
        found, registry_note = _registry_answer(lookup, model_name, REGISTRY_TIMEOUT_S)
        found = found or {}
    for v in found:
        entry(v)
    current = runs[-1] if runs else (None, None, None)
    out = []
    for v in sorted(versions, reverse=True):
        info = found.get(v)
        out.append(
            {
                **versions[v],
                "role_now": ("champion" if v == current[1] else "challenger" if v == current[2] else None),
                "registry": info,
                "shap_importance": (info or {}).get("shap_importance"),
                "shap_note": _shap_note(info, registry_note),
            }
        )
    history = [
        {"ds": ds, "event": event, "version": version, "from_version": from_version, "reason": reason}
        for ds, event, version, from_version, reason in events
        if event in ("promoted", "rolled_back")
    ]
    return {"model_name": model_name, "versions": out, "history": history, "registry_note": registry_note}


def _shap_note(info: dict | None, registry_note: str | None) -> str | None:
    if info is None:
        return registry_note or "not in the registry"
    if info.get("shap_importance") is None:
        return "not recorded (only retrained versions log shap_importance.json; bootstrap versions do not)"
    return None


_lookups: dict[tuple[Any, str], tuple[float, Any]] = {}  # (lookup, name) → (started, future)
_lookups_lock = threading.Lock()
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="churnguard-registry")
REGISTRY_TTL_S = 30.0


def _registry_answer(lookup: RegistryLookup, name: str, timeout: float) -> tuple[Any, str | None]:
    """``lookup(name)`` in a worker thread, waited for at most ``timeout`` seconds: (result, None) or (None, why
    not). An answer is reused for :data:`REGISTRY_TTL_S`; a lookup still running is waited for again, never
    started twice (a registry that hangs holds one thread, not one per page view)."""
    key = (lookup, name)
    with _lookups_lock:
        started, future = _lookups.get(key, (0.0, None))
        if future is None or (future.done() and time.monotonic() - started > REGISTRY_TTL_S):
            started, future = time.monotonic(), _pool.submit(lookup, name)
            _lookups[key] = (started, future)
    try:
        return future.result(timeout=timeout), None
    except FutureTimeout:
        return None, f"the MLflow registry did not answer within {timeout:g} s"
    except Exception as exc:
        with _lookups_lock:  # a failure is not remembered: the next page view asks again
            if _lookups.get(key, (0, None))[1] is future:
                del _lookups[key]
        log.warning("registry lookup failed: %s", exc)
        return None, f"the MLflow registry failed: {type(exc).__name__}: {str(exc)[:200]}"


_run_details: dict[str, dict] = {}


def registry_versions(model_name: str) -> dict[int, dict]:
    """The registry's versions of ``model_name``: tags (trigger, training window, reference metrics), aliases,
    the run's metrics and its SHAP importance (``shap_importance.json``, logged by retraining). A run's
    metrics and artifacts never change, so they are fetched once per process."""
    from churnguard import registry

    # The registry's client alone, without its retries (an unreachable server fails in seconds) and without
    # configure(): reading must neither create the experiment nor move the process's global tracking URI
    # (this runs inside the API server).
    client = registry.ModelRegistry(model_name).client
    out = {}
    aliases: dict[int, list[str]] = {}  # search_model_versions leaves a version's aliases out
    from mlflow.exceptions import MlflowException

    try:
        registered = client.get_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":  # nothing registered yet: no versions, not a failure
            return out
        raise
    for alias, version in sorted((registered.aliases or {}).items()):
        aliases.setdefault(int(version), []).append(alias)
    for mv in client.search_model_versions(f"name = '{model_name}'"):
        tags = registry.VersionTags.from_mlflow(mv.tags or {})
        run_id = mv.run_id
        if run_id and run_id not in _run_details:
            _run_details[run_id] = _run_detail(client, run_id)
        detail = _run_details.get(run_id, {})
        out[int(mv.version)] = {
            "run_id": run_id,
            "status": mv.status,
            "aliases": aliases.get(int(mv.version), []),
            "created": _num(mv.creation_timestamp, 0),
            "trigger": tags.trigger,
            "training_window": tags.training_window(),
            "threshold": _num(tags.threshold),
            "reference_auc": _num(tags.reference_auc),
            "reference_f1": _num(tags.reference_f1),
            "metrics": detail.get("metrics", {}),
            "shap_importance": detail.get("shap_importance"),
        }
    return out


def _run_detail(client, run_id: str) -> dict:
    """The run's metrics and SHAP importance (None when it logged none: bootstrap versions). A failing server
    raises, so the lookup reports it and nothing is remembered as if the run had none."""
    import tempfile
    from pathlib import Path

    from churnguard.registry import logged_artifact

    metrics = {k: _num(v) for k, v in sorted(client.get_run(run_id).data.metrics.items())}
    with tempfile.TemporaryDirectory() as folder:
        local = logged_artifact(client, run_id, "shap_importance.json", folder)
        shap = None if local is None else json.loads(Path(local).read_text())
    if shap is not None:
        shap = dict(sorted(((k, _num(v)) for k, v in shap.items()), key=lambda kv: -(kv[1] or 0)))
    return {"metrics": metrics, "shap_importance": shap}


# -- alerts ----------------------------------------------------------------------------------------------
def _alert(row: dict) -> dict:
    created = row.get("created_at")
    return {
        "ds": row["ds"],
        "kind": row["kind"],
        "severity": row["severity"],
        "message": row["message"],
        "created_at": created.isoformat() if hasattr(created, "isoformat") else created,
        "episode_id": row.get("episode_id"),
    }


def _utc(value: datetime | None) -> str | None:
    """A stored time as ISO text in UTC (SQLite gives it back without its zone)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat(timespec="seconds")


def episode(row: dict) -> dict:
    """An alert episode as the Alerts page shows it: its span, state and who acknowledged it when."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "first_ds": row["first_ds"],
        "last_ds": row["last_ds"],
        "severity": row["severity"],
        "message": row["message"],
        "state": row["state"],
        "cleared_ds": row["cleared_ds"],
        "acknowledged_by": row["acknowledged_by"],
        "acknowledged_at": _utc(row["acknowledged_at"]),
    }


def _attach_episodes(store: MonitoringStore, rows: list[dict]) -> dict[int, dict]:
    """Give each alert row its ``episode`` (None outside any); return every episode by id, oldest first."""
    episodes = {e["id"]: episode(e) for e in store.rows(schema.alert_episodes, order_by="id")}
    for r in rows:
        r["episode"] = episodes.get(r["episode_id"])
    return episodes


def alerts(
    store: MonitoringStore | None = None, start: str | None = None, end: str | None = None, severity: str | None = None
) -> dict:
    """The alert history in range, newest first, with counts per severity and kind; each day's alert with the
    episode it belongs to (``episode``: its state and acknowledgement; None for a row outside any episode), and
    every open episode (``open_episodes``, newest first: what is wrong now, whatever the range)."""
    store = _store(store)
    rows = [_alert(r) for r in store.rows(schema.alerts, since=_day(start), until=_day(end))]
    if severity:
        rows = [r for r in rows if r["severity"] == severity]
    rows.sort(key=lambda a: (a["ds"], SEVERITY_RANK.get(a["severity"], 0), a["kind"]), reverse=True)
    episodes = _attach_episodes(store, rows)
    by_severity: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for r in rows:
        by_severity[r["severity"]] = by_severity.get(r["severity"], 0) + 1
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + 1
    open_episodes = [e for e in reversed(episodes.values()) if e["state"] == "open"]
    return {
        "alerts": rows,
        "total": len(rows),
        "by_severity": by_severity,
        "by_kind": by_kind,
        "open_episodes": open_episodes,
    }


# -- one day ---------------------------------------------------------------------------------------------
def run_day(ds: str, store: MonitoringStore | None = None, root: DataRoot | None = None) -> dict:
    """Everything recorded of day ``ds``: its daily run row, failure risk, alerts, model events, the summary
    and validation result (the day's JSON reports), the drift report's headline and most drifted features,
    and which reports exist (to link or embed)."""
    store, root, ds = _store(store), _root(root), _day(ds)
    runs = store.rows(schema.daily_runs, where={"ds": ds})
    run = None
    if runs:
        run = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in runs[0].items()}
        run["promoted"] = bool(run["promoted"])
    summary, summary_why = _read_json(root, ds, "summary.json")
    validation, validation_why = _read_json(root, ds, "validation.json")
    drift_doc, drift_why = _read_json(root, ds, "drift.json")
    drift = None
    if drift_doc is not None:
        features = drift_doc.get("features") or {}
        top = sorted(features.items(), key=lambda kv: -(kv[1].get("psi") or 0))[:10]
        drift = {
            k: drift_doc.get(k)
            for k in (
                "severity",
                "n_rows",
                "n_features",
                "n_drifted",
                "drift_share",
                "weighted_psi",
                "profile_version",
                "notes",
            )
        }
        drift["prediction_psi"] = _num((drift_doc.get("prediction") or {}).get("psi"))
        drift["top_features"] = [
            {"feature": f, "psi": _num(b.get("psi")), "severity": b.get("severity"), "drifted": bool(b.get("drifted"))}
            for f, b in top
        ]
    if validation is not None:
        validation = {
            k: validation.get(k)
            for k in (
                "status",
                "summary",
                "n_rows",
                "n_columns",
                "failures",
                "warnings",
                "evaluated_expectations",
                "validated_at",
            )
        }
    reports = {name: root.report_exists(ds, RENDERED_FROM.get(name, name)) for name in REPORT_NAMES}
    risk = store.rows(schema.failure_risk, where={"ds": ds})
    return {
        "ds": ds,
        "run": run,
        "summary": summary,
        "validation": validation,
        "drift": drift,
        "failure_risk": (
            {
                "available": bool(risk[0]["available"]),
                "risk": _num(risk[0]["risk"]),
                "drivers": risk[0]["drivers"] or [],
                "model_version": risk[0]["model_version"],
                "reason": risk[0]["reason"],
            }
            if risk
            else None
        ),
        "alerts": [_alert(a) for a in store.rows(schema.alerts, where={"ds": ds})],
        "model_events": [
            {
                "event": e["event"],
                "version": e["model_version"],
                "from_version": e["from_version"],
                "reason": e["reason"],
            }
            for e in store.rows(schema.model_events, where={"ds": ds})
        ],
        "report_exists": reports,
        "why_missing": {
            k: v
            for k, v in (("summary.json", summary_why), ("validation.json", validation_why), ("drift.json", drift_why))
            if v
        },
        "note": None if run else f"{ds} has no daily run recorded",
    }
