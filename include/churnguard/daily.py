"""The steps of the daily monitoring run, one function per DAG task. Each takes the batch date and small
JSON-able dicts and returns one, so the DAG passes URIs and summaries through XCom, never frames.

ingest -> validate -> score -> drift -> performance -> failure risk -> decide -> (retrain) -> promote ->
publish. Every step is idempotent per date: partitions are replaced, store rows upserted by date, and a
re-run scores with the model versions recorded for that date.

:func:`run_day` runs the same steps in one process, in the DAG's order (``churnguard run-days``): the plain
loop that ``benchmarks/dag_bench.py`` holds the Airflow runs against, and a way to replay days without Airflow.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

from churnguard import registry
from churnguard.config import load_dataset_config, load_model_config, load_monitoring_config
from churnguard.data import data_version, load_batch
from churnguard.decision import decide
from churnguard.performance import measure_day
from churnguard.progress import progress
from churnguard.promotion import promote_challenger, should_promote
from churnguard.scoring import read_scores, score_day
from churnguard.simulate import LANDING
from churnguard.storage import open_storage
from churnguard.store import open_store
from churnguard.training import load_run_profile

log = logging.getLogger(__name__)
REPORTS, QUARANTINE = "reports", "quarantine"


class BatchRejected(Exception):
    """The day's batch failed validation and was quarantined; nothing downstream may run."""


def report_key(ds: str, name: str) -> str:
    return f"{REPORTS}/ds={ds}/{name}"


def resolve_ds(param_ds: str | None, data_interval_start) -> str:
    """The batch date: the ``batch_date`` Param when given (manual runs), else the data interval start."""
    if param_ds:
        return date.fromisoformat(str(param_ds)).isoformat()
    if data_interval_start is None:
        raise ValueError("no batch date: set the 'batch_date' Param (YYYY-MM-DD) for a run without a logical date")
    if hasattr(data_interval_start, "date"):
        return data_interval_start.date().isoformat()
    return str(data_interval_start)[:10]


def landing_ready(ds: str) -> bool:
    ready = open_storage().partition_exists(LANDING, ds)
    if not ready:
        log.info("landing/ds=%s has not landed yet", ds)
    return ready


def missing_batch(ds: str, waited_seconds: float) -> str:
    """The one line a run ends with when the day's batch never landed."""
    where = open_storage().uri(f"{LANDING}/ds={ds}")
    return (f"no batch for {ds}: {where} did not land within {waited_seconds / 60:g} min; nothing was ingested, "
            f"scored or decided for this date: re-run it (clear the run) once the batch has landed")


def ingest(ds: str) -> dict:
    storage, cfg = open_storage(), load_dataset_config()
    batch, duplicates = load_batch(storage, ds, cfg)
    info = {"ds": ds, "rows": len(batch), "duplicates_dropped": duplicates, "data_version": data_version(batch),
            "landing_uri": storage.uri(f"{LANDING}/ds={ds}")}
    log.info("ingest %s: %d rows (%d duplicate ids dropped), data version %s", ds, len(batch), duplicates,
             info["data_version"])
    return info


def champion_profile() -> tuple[dict, int]:
    name = load_model_config().registered_name
    champion = registry.version_by_alias(name, registry.CHAMPION)
    if champion is None:
        raise LookupError(f"no '{registry.CHAMPION}' alias on {name}: run churn_bootstrap first")
    return load_run_profile(champion.run_id), champion.version


def validate(ds: str) -> dict:
    """Validate the landing batch; on error-level failures move it to quarantine, alert and raise."""
    from churnguard.validation import validate_batch

    storage, store, cfg = open_storage(), open_store(), load_dataset_config()
    profile, _ = champion_profile()
    files = storage.partition_files(LANDING, ds)
    result = validate_batch(storage.uri(files[0]) if len(files) == 1 else storage.read_partition(LANDING, ds),
                            cfg, profile)
    result.save(storage, ds)
    summary = {"ds": ds, "status": result.status, "exit_code": result.exit_code,
               "failures": result.failures, "warnings": result.warnings,
               "report_uri": storage.uri(report_key(ds, "validation.json"))}
    if result.exit_code >= 2:
        quarantined = storage.move_partition(LANDING, ds, QUARANTINE)
        message = f"batch {ds} quarantined to {quarantined}: " + "; ".join(result.failures[:3])
        store.upsert("alerts", [{"ds": ds, "kind": "validation", "severity": "critical", "message": message}])
        store.upsert("daily_runs", [{"ds": ds, "dataset": cfg.name, "validation_status": result.status,
                                     "decision": "quarantined", "reasons": result.failures[:10]}])
        raise BatchRejected(message)
    return summary


def score(ds: str) -> dict:
    return score_day(ds)


def drift(ds: str, overrides: dict | None = None) -> dict:
    """Drift of the batch and the champion's scores against the champion's reference profile."""
    from churnguard.drift import drift_report, render_html

    storage, store, cfg = open_storage(), open_store(), load_dataset_config()
    profile, version = champion_profile()
    batch, _ = load_batch(storage, ds, cfg)
    since = (date.fromisoformat(ds) - timedelta(days=30)).isoformat()
    history: dict[str, dict] = {}
    for row in store.rows("feature_drift", since=since, until=ds):
        if row["ds"] < ds:
            history.setdefault(row["ds"], {})[row["feature"]] = bool(row["drifted"])
    report = drift_report(profile, batch, scores=read_scores(storage, ds).to_numpy(),
                          history=[history[d] for d in sorted(history)], overrides=overrides or {})
    doc = report.to_dict()
    storage.write_bytes(report_key(ds, "drift.json"), json.dumps(doc, indent=1).encode())
    html_uri = storage.write_bytes(report_key(ds, "drift.html"), render_html(report, profile, None).encode())
    store.replace_day("feature_drift", ds, [_feature_row(name, f) for name, f in doc["features"].items()])
    ranked = sorted(doc["features"].items(), key=lambda kv: -(kv[1].get("weighted_psi") or 0))
    summary = {"ds": ds, "severity": doc["severity"], "drift_share": doc["drift_share"],
               "weighted_drift": doc["weighted_psi"], "n_drifted": doc["n_drifted"],
               "prediction_psi": (doc.get("prediction") or {}).get("psi"),
               "top_features": [name for name, f in ranked if f["drifted"]][:5],
               "profile_version": doc["profile_version"], "champion_version": version,
               "report_uri": storage.uri(report_key(ds, "drift.json")), "html_uri": html_uri}
    log.info("drift %s: %s, %d/%d features drifted, top %s", ds, doc["severity"], doc["n_drifted"],
             doc["n_features"], summary["top_features"][:3])
    return summary


def _feature_row(name: str, f: dict) -> dict:
    test = f.get("test") or {}
    return {"feature": name, "kind": f.get("kind"), "psi": f.get("psi"),
            "psi_threshold": (f.get("psi_threshold") or {}).get("moderate"),
            "statistic": test.get("statistic"), "p_value": test.get("p_adjusted", test.get("p_value")),
            "js_distance": f.get("js_distance"), "wasserstein": (f.get("wasserstein") or {}).get("normalised"),
            "missing_delta": (f.get("missing_rate") or {}).get("change"), "drifted": bool(f.get("drifted")),
            "consecutive_days": f.get("drift_days", 0)}


def performance(ds: str) -> dict:
    return measure_day(ds)


def failure_risk(ds: str, drift_summary: dict, performance_summary: dict) -> dict:
    """P(champion fails within the horizon) from the failure model, or unavailable with the reason."""
    store = open_store()
    try:
        from churnguard.failure import champion_reference, day_signals, score_failure_risk
    except ImportError as exc:  # the failure-risk package is optional for the daily run
        result = {"available": False, "risk": None, "top_drivers": [], "reason": f"failure model code: {exc}"}
    else:
        storage = open_storage()
        report = json.loads(storage.read_bytes(report_key(ds, "drift.json")))
        matured = [r for r in store.rows("performance", where={"role": registry.CHAMPION}, until=ds,
                                         day_column="observed_ds")]
        signals = day_signals(report, read_scores(storage, ds).to_numpy(), matured,
                              reference=_champion_reference(champion_reference), ds=ds)
        past = [r["signals"] for r in store.rows("failure_risk", until=ds, order_by="ds")
                if r["ds"] < ds and r["signals"]]
        result = score_failure_risk([*past, signals])
        result["signals"] = signals
    store.upsert("failure_risk", [{"ds": ds, "available": bool(result["available"]), "risk": result.get("risk"),
                                   "drivers": result.get("top_drivers"), "signals": result.get("signals"),
                                   "model_version": result.get("model_version"), "reason": result.get("reason")}])
    log.info("failure risk %s: %s", ds, f"{result['risk']:.3f}" if result["available"] else
             f"unavailable ({result['reason']})")
    return {k: v for k, v in result.items() if k != "signals"}


def _champion_reference(build) -> dict:
    """The champion's scores and labels on the reference test split, summarised for label-free estimates."""
    from churnguard.data import target_array
    from churnguard.training import read_reference

    cfg, name = load_dataset_config(), load_model_config().registered_name
    model, _ = registry.load_alias_model(name, registry.CHAMPION)
    test = read_reference({"dataset": cfg.name}, "test")
    return build(model.predict_proba(test), target_array(test, cfg), model.threshold)


def decide_day(ds: str, drift_summary: dict, performance_summary: dict, risk: dict, params: dict) -> dict:
    cfg = load_monitoring_config(params.get("overrides") or {})
    challenger = registry.version_by_alias(load_model_config().registered_name, registry.CHALLENGER)
    store = open_store()
    last = max((e["ds"] for e in store.rows("model_events", where={"event": "registered"}, until=ds)), default=None)
    decision = decide(drift_summary, performance_summary, risk, cfg,
                      challenger_version=challenger.version if challenger else None,
                      force_retrain=bool(params.get("force_retrain")),
                      days_since_registered=(date.fromisoformat(ds) - date.fromisoformat(last)).days if last else None)
    log.info("%s %s", ds, decision.line())
    if decision.decision != "healthy":
        store.upsert("alerts", [{"ds": ds, "kind": "decision", "severity": decision.decision,
                                 "message": decision.line()}])
    return decision.to_dict()


def retrain(ds: str, decision: dict, params: dict) -> dict:
    from churnguard.retrain import retrain_challenger

    cfg = load_monitoring_config(params.get("overrides") or {})
    result = retrain_challenger(ds, "; ".join(decision["reasons"]), dry_run=bool(params.get("dry_run")), cfg=cfg)
    if result["registered"]:
        open_store().record_event(ds, "registered", load_model_config().registered_name, result["version"],
                                  reason=result["reason"])
    return result


def promote(ds: str, performance_summary: dict, params: dict) -> dict:
    if params.get("dry_run"):
        return {"promoted": False, "reason": "dry run"}
    store = open_store()
    ok, reason = should_promote(store, performance_summary.get("measured_failure", False),
                                load_monitoring_config(params.get("overrides") or {}))
    log.info("promotion %s: %s", "yes" if ok else "no", reason)
    return promote_challenger(ds, reason, store) if ok else {"promoted": False, "reason": reason}


def publish(ds: str, ingest_info: dict, validation: dict, scored: dict, drift_summary: dict,
            performance_summary: dict, risk: dict, decision: dict, promotion: dict) -> dict:
    """``reports/ds=…/summary.json``, the day's MLflow run, and the day's row in the monitoring store."""
    storage, store, cfg = open_storage(), open_store(), load_dataset_config()
    name = load_model_config().registered_name
    champion = registry.version_by_alias(name, registry.CHAMPION)
    challenger = registry.version_by_alias(name, registry.CHALLENGER)
    summary = {
        "ds": ds, "rows": ingest_info["rows"], "validation_status": validation["status"],
        "validation_warnings": validation["warnings"], "drift": drift_summary,
        "prediction_drift": drift_summary.get("prediction_psi"), "performance": performance_summary,
        "failure_risk": risk, "decision": decision["decision"], "reasons": decision["reasons"],
        "scored_with": {"champion": scored["champion_version"], "challenger": scored["challenger_version"]},
        "champion_version": champion.version if champion else None,
        "challenger_version": challenger.version if challenger else None,
        "promoted": bool(promotion.get("promoted")), "promotion": promotion,
    }
    body = json.dumps(summary, indent=1, default=str).encode()
    summary_uri = storage.write_bytes(report_key(ds, "summary.json"), body)
    summary["mlflow_run_id"] = _log_day_run(ds, summary, storage)
    store.upsert("daily_runs", [{
        "ds": ds, "dataset": cfg.name, "rows": ingest_info["rows"], "data_version": ingest_info["data_version"],
        "validation_status": validation["status"], "drift_severity": drift_summary["severity"],
        "drift_share": drift_summary["drift_share"], "weighted_drift": drift_summary["weighted_drift"],
        "prediction_psi": drift_summary.get("prediction_psi"), "champion_version": scored["champion_version"],
        "challenger_version": scored["challenger_version"], "failure_risk": risk.get("risk"),
        "decision": decision["decision"], "reasons": decision["reasons"],
        "promoted": bool(promotion.get("promoted")), "summary_uri": summary_uri}])
    return {"summary_uri": summary_uri, "mlflow_run_id": summary["mlflow_run_id"], "decision": decision["decision"]}


def _log_day_run(ds: str, summary: dict, storage) -> str:
    """One MLflow run per day (found again by its ``ds`` tag on re-runs, never duplicated)."""
    import mlflow

    registry.configure_mlflow()
    found = mlflow.search_runs(filter_string=f"tags.`churnguard.ds` = '{ds}' and tags.`churnguard.kind` = 'daily'",
                               output_format="list")
    run_id = found[0].info.run_id if found else None
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else f"daily-{ds}") as run:
        mlflow.set_tags({"churnguard.ds": ds, "churnguard.kind": "daily", "decision": summary["decision"],
                         "drift_severity": summary["drift"]["severity"]})
        metrics = {"rows": summary["rows"], "drift_share": summary["drift"]["drift_share"],
                   "weighted_drift": summary["drift"]["weighted_drift"]}
        if summary["failure_risk"].get("risk") is not None:
            metrics["failure_risk"] = summary["failure_risk"]["risk"]
        if summary["drift"].get("prediction_psi") is not None:
            metrics["prediction_psi"] = summary["drift"]["prediction_psi"]
        mlflow.log_metrics(metrics)
        mlflow.log_dict(summary, "summary.json")
        mlflow.log_text(storage.read_bytes(report_key(ds, "drift.html")).decode(), "drift.html")
        if storage.exists(report_key(ds, "validation.json")):
            mlflow.log_text(storage.read_bytes(report_key(ds, "validation.json")).decode(), "validation.json")
    return run.info.run_id


def run_day(ds: str, *, force_retrain: bool = False, dry_run: bool = False, overrides: dict | None = None,
            drift_overrides: dict | None = None) -> dict:
    """Every step of the daily DAG for ``ds``, in its order, in this process; returns the decision summary.

    A batch that fails validation is quarantined and raises :class:`BatchRejected`, as in the DAG.
    """
    params = {"force_retrain": force_retrain, "dry_run": dry_run, "overrides": overrides or {}}
    ingested = ingest(ds)
    validation = validate(ds)
    scored = score(ds)
    drift_summary = drift(ds, drift_overrides)
    perf = performance(ds)
    risk = failure_risk(ds, drift_summary, perf)
    decision = decide_day(ds, drift_summary, perf, risk, params)
    retrained = retrain(ds, decision, params) if decision["decision"] == "retrain" else {}
    promotion = promote(ds, perf, params)
    published = publish(ds, ingested, validation, scored, drift_summary, perf, risk, decision, promotion)
    return {**published, "reasons": decision["reasons"], "promoted": bool(promotion.get("promoted")),
            "registered": retrained.get("version") if retrained.get("registered") else None}


def run_days(start: date, end: date, **options) -> list[dict]:
    """:func:`run_day` for each day from ``start`` to ``end``, in order, with progress; a quarantined day is
    logged and skipped, as the DAG's failed run for it would be."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    results = []
    for day in progress(days, len(days), "daily runs"):
        try:
            result = run_day(day.isoformat(), **options)
        except BatchRejected as exc:
            log.warning("%s", exc)
            continue
        log.info("%s %s%s", day, result["decision"], " (promoted)" if result["promoted"] else "")
        results.append(result)
    return results
