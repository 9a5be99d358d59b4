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
from churnguard.crashpoints import crash_point
from churnguard.data import data_version, load_batch
from churnguard.decision import decide
from churnguard.performance import measure_day
from churnguard.progress import progress
from churnguard.promotion import promote_day
from churnguard.scoring import read_scores, recorded_versions, score_day
from churnguard.simulate import LANDING
from churnguard.storage import open_storage
from churnguard.store import open_store
from churnguard.training import load_run_profile

log = logging.getLogger(__name__)
REPORTS, QUARANTINE = "reports", "quarantine"


class BatchRejected(Exception):
    """The day's batch failed validation (or could not be read) and was quarantined; nothing downstream may
    run."""


class BatchMissing(FileNotFoundError):
    """No landing partition for the day: nothing was read, written or decided."""


def check_run(overrides: dict | None = None, drift_overrides: dict | None = None) -> None:
    """Everything a run needs, checked before it writes anything: every config with this run's overrides
    (a bad key or value is one :class:`~churnguard.config.ConfigError` line) and the MLflow server (a
    :class:`~churnguard.registry.RegistryError` within seconds, not minutes)."""
    from churnguard.config import load_drift_config
    from churnguard.failure.config import load_failure_config
    from churnguard.validation import load_validation_config

    load_dataset_config()
    load_model_config()
    load_monitoring_config(overrides or {})
    load_drift_config(drift_overrides or {})
    load_validation_config()
    load_failure_config()
    registry.check_connection()


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
    """The batch landed (or was quarantined by an earlier run of the date, which ``ingest`` reports again)."""
    storage = open_storage()
    ready = storage.partition_exists(LANDING, ds) or _quarantined(storage, ds)
    if not ready:
        log.info("landing/ds=%s has not landed yet", ds)
    return ready


def _quarantined(storage, ds: str) -> bool:
    return storage.exists(f"{QUARANTINE}/ds={ds}")


def missing_batch(ds: str, waited_seconds: float) -> str:
    """The one line a run ends with when the day's batch never landed."""
    where = open_storage().uri(f"{LANDING}/ds={ds}")
    return (f"no batch for {ds}: {where} did not land within {waited_seconds / 60:g} min; nothing was ingested, "
            f"scored or decided for this date: re-run it (clear the run) once the batch has landed")


def ingest(ds: str) -> dict:
    """Read every file of the day's partition with the classifying reader, before anything else touches it:
    an unreadable file (empty, truncated, not parquet, junk beside a good file) or a batch without its id
    column is quarantined with the reason, an alert and a validation report, as a failed expectation is."""
    from churnguard.validation import Issue, UnreadableBatch, ValidationResult
    from churnguard.validation.runner import read_stored
    from churnguard.validation.suite import ERROR

    storage, cfg = open_storage(), load_dataset_config()
    storage.sweep_tmp()
    if not storage.partition_exists(LANDING, ds):
        if _quarantined(storage, ds) and storage.exists(report_key(ds, "validation.json")):
            _record_rejection(ds, storage, cfg)  # quarantined before (maybe by a run that crashed after the move)
        raise BatchMissing(f"no batch for {ds}: {storage.uri(f'{LANDING}/ds={ds}')} has no parquet files")
    source = storage.uri(f"{LANDING}/ds={ds}")
    issue = None
    try:
        raw = read_stored(storage, f"{LANDING}/ds={ds}")
    except UnreadableBatch as exc:
        issue, status = Issue(ERROR, "readable", None, str(exc)), "unreadable"
    else:
        if cfg.id.column not in raw.columns:
            issue, status = Issue(ERROR, "column_set", None, f"missing key column '{cfg.id.column}'"), "fail"
    if issue is not None:
        _reject(ds, ValidationResult(source=source, dataset=cfg.name, status=status, issues=[issue]), storage, cfg)
    batch = raw.drop_duplicates(subset=cfg.id.column, keep="last").reset_index(drop=True)
    duplicates = len(raw) - len(batch)
    info = {"ds": ds, "rows": len(batch), "duplicates_dropped": duplicates, "data_version": data_version(batch),
            "landing_uri": storage.uri(f"{LANDING}/ds={ds}")}
    log.info("ingest %s: %d rows (%d duplicate ids dropped), data version %s", ds, len(batch), duplicates,
             info["data_version"])
    return info


def champion_profile(ds: str | None = None) -> tuple[dict, int]:
    """The reference profile of the champion that scored ``ds`` (a re-run compares with the model that
    scored the day, not whatever the alias points at now), else of the current champion."""
    name = load_model_config().registered_name
    version = recorded_versions(open_storage(), ds).get(registry.CHAMPION) if ds else None
    if version is not None:
        return load_run_profile(registry.require_ready(name, version).run_id), version
    champion = registry.version_by_alias(name, registry.CHAMPION)
    if champion is None:
        raise LookupError(f"no '{registry.CHAMPION}' alias on {name}: run churn_bootstrap first")
    return load_run_profile(champion.run_id), champion.version


def validate(ds: str) -> dict:
    """Validate the landing batch; on error-level failures move it to quarantine, alert and raise."""
    from churnguard.validation import validate_batch

    storage, cfg = open_storage(), load_dataset_config()
    profile, _ = champion_profile(ds)
    result = validate_batch(storage.uri(f"{LANDING}/ds={ds}"), cfg, profile)
    if result.exit_code >= 2:
        _reject(ds, result, storage, cfg)
    result.save(storage, ds)
    return {"ds": ds, "status": result.status, "exit_code": result.exit_code,
            "failures": result.failures, "warnings": result.warnings,
            "report_uri": storage.uri(report_key(ds, "validation.json"))}


def _reject(ds: str, result, storage, cfg) -> None:
    """Quarantine the day's batch with its validation report, an alert and the day's row; then raise.

    Ordered so a crash anywhere is finished by a re-run: the report is written first, the move is one step,
    and the rows are written again by :func:`ingest` when it finds the batch in quarantine.
    """
    result.save(storage, ds)
    storage.move_partition(LANDING, ds, QUARANTINE)
    _record_rejection(ds, storage, cfg)


def _record_rejection(ds: str, storage, cfg) -> None:
    """The alert and the day's row of a quarantined batch, from its saved validation report; raises."""
    report = json.loads(storage.read_bytes(report_key(ds, "validation.json")))
    message = (f"batch {ds} quarantined to {storage.uri(f'{QUARANTINE}/ds={ds}')}: "
               + "; ".join(report["failures"][:3]))
    store = open_store()
    store.upsert("alerts", [{"ds": ds, "kind": "validation", "severity": "critical", "message": message}])
    store.upsert("daily_runs", [{"ds": ds, "dataset": cfg.name, "validation_status": report["status"],
                                 "decision": "quarantined", "reasons": report["failures"][:10]}])
    raise BatchRejected(message)


def score(ds: str) -> dict:
    return score_day(ds)


def drift(ds: str, overrides: dict | None = None) -> dict:
    """Drift of the batch and the champion's scores against the champion's reference profile."""
    from churnguard.drift import drift_report, render_html
    from churnguard.drift.html import PLOTLY_SRC, ensure_plotly_asset

    storage, store, cfg = open_storage(), open_store(), load_dataset_config()
    profile, version = champion_profile(ds)
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
    ensure_plotly_asset(storage)  # plotly.js once for every day's report, not inlined in each
    page = render_html(report, profile, None, plotlyjs=PLOTLY_SRC)
    html_uri = storage.write_bytes(report_key(ds, "drift.html"), page.encode())
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
    """Decided on the state the day started from, so a re-run (after a crash too) decides the same: the
    challenger that shadow-scored the day, and versions registered before the day."""
    cfg = load_monitoring_config(params.get("overrides") or {})
    challenger = recorded_versions(open_storage(), ds).get(registry.CHALLENGER)
    store = open_store()
    last = max((e["ds"] for e in store.rows("model_events", where={"event": "registered"}, until=ds)
                if e["ds"] < ds), default=None)
    decision = decide(drift_summary, performance_summary, risk, cfg, challenger_version=challenger,
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
    return promote_day(ds, performance_summary.get("measured_failure", False),
                       load_monitoring_config(params.get("overrides") or {}))


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


DAY_RUN_FILTER = "tags.`churnguard.kind` = 'daily'"


def _log_day_run(ds: str, summary: dict, storage) -> str:
    """One MLflow run per day, even for runs of one date at once: found again by its ``ds`` tag, created
    under the store's lock for that date. A run a killed process left RUNNING is closed first."""
    import mlflow

    from churnguard.store import exclusive

    registry.configure_mlflow()
    store = open_store()
    _close_orphaned_day_runs(store, ds)
    with exclusive(store.engine, f"churnguard-daily-run-{ds}"):
        found = mlflow.search_runs(filter_string=f"tags.`churnguard.ds` = '{ds}' and {DAY_RUN_FILTER}",
                                   order_by=["attributes.start_time ASC"], output_format="list")
        run_id = found[0].info.run_id if found else None
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else f"daily-{ds}") as run:
            mlflow.set_tags({"churnguard.ds": ds, "churnguard.kind": "daily", "decision": summary["decision"],
                             "drift_severity": summary["drift"]["severity"],
                             "drift_report": storage.uri(report_key(ds, "drift.html"))})
            crash_point("daily.mlflow_run.started")
            metrics = {"rows": summary["rows"], "drift_share": summary["drift"]["drift_share"],
                       "weighted_drift": summary["drift"]["weighted_drift"]}
            if summary["failure_risk"].get("risk") is not None:
                metrics["failure_risk"] = summary["failure_risk"]["risk"]
            if summary["drift"].get("prediction_psi") is not None:
                metrics["prediction_psi"] = summary["drift"]["prediction_psi"]
            mlflow.log_metrics(metrics)
            mlflow.log_dict(summary, "summary.json")
            # The JSON, not the HTML: the page lives in the data root (tag drift_report), stored once.
            mlflow.log_text(storage.read_bytes(report_key(ds, "drift.json")).decode(), "drift.json")
            if storage.exists(report_key(ds, "validation.json")):
                mlflow.log_text(storage.read_bytes(report_key(ds, "validation.json")).decode(), "validation.json")
    return run.info.run_id


def _close_orphaned_day_runs(store, ds: str) -> None:
    """End as KILLED the daily runs of other dates that are RUNNING with nobody holding their date's lock: a
    process was killed inside :func:`_log_day_run` (one of this date is reopened and finished instead)."""
    import mlflow

    from churnguard.store import exclusive

    running = mlflow.search_runs(filter_string=f"{DAY_RUN_FILTER} and attributes.status = 'RUNNING'",
                                 output_format="list")
    for run in running:
        day = run.data.tags.get("churnguard.ds")
        if day == ds:
            continue
        with exclusive(store.engine, f"churnguard-daily-run-{day}"):  # one lock at a time: no deadlock
            if mlflow.get_run(run.info.run_id).info.status == "RUNNING":
                registry.client().set_terminated(run.info.run_id, status="KILLED")
                log.warning("closed the daily MLflow run of %s (%s) left RUNNING by a killed process", day,
                            run.info.run_id)


def run_day(ds: str, *, force_retrain: bool = False, dry_run: bool = False, overrides: dict | None = None,
            drift_overrides: dict | None = None) -> dict:
    """Every step of the daily DAG for ``ds``, in its order, in this process; returns the decision summary.

    Configs and the MLflow server are checked before anything is written (:func:`check_run`). A batch that
    cannot be read or fails validation is quarantined and raises :class:`BatchRejected`, as in the DAG.
    """
    check_run(overrides, drift_overrides)
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


def day_range(start: date, end: date, today: date | None = None) -> list[date]:
    """The days ``start``..``end``; a reversed range or a day after ``today`` (UTC) is a one-line ValueError."""
    from datetime import UTC, datetime

    today = today or datetime.now(UTC).date()
    if end < start:
        raise ValueError(f"empty range: --end {end} is before --start {start}")
    if end > today:
        raise ValueError(f"{end} is in the future (today is {today} UTC): no batch can have landed for it")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def run_days(start: date, end: date, **options) -> tuple[list[dict], dict[str, str]]:
    """:func:`run_day` for each day from ``start`` to ``end``, in order, with progress.

    A day whose batch is missing or was quarantined is reported in one line and the next day goes on, as the
    DAG fails that date's run only; returns the results and ``{day: reason}`` of the days that failed.
    Anything else (a server down, a bad config) stops the range.
    """
    days = day_range(start, end)
    results, failed = [], {}
    for day in progress(days, len(days), "daily runs"):
        try:
            result = run_day(day.isoformat(), **options)
        except (BatchRejected, BatchMissing) as exc:
            log.warning("%s", exc)
            failed[day.isoformat()] = str(exc)
            continue
        log.info("%s %s%s", day, result["decision"], " (promoted)" if result["promoted"] else "")
        results.append(result)
    return results, failed
