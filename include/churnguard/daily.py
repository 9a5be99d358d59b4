"""The steps of the daily monitoring run, one function per DAG task, each handed the day's
:class:`~churnguard.context.DayContext` (configs, data root, store, pinned model versions) and returning its
typed result (:mod:`churnguard.results`), which it also records in the store: later steps and ``publish`` read
the day's results there, so the DAG passes nothing but the run itself between tasks. Their order, task ids and
documentation: :mod:`churnguard.steps`.

ingest -> validate -> score -> drift -> performance -> failure risk -> decide -> (retrain) -> promote ->
publish. Every step is idempotent per date: partitions are replaced, store rows upserted by date, every step
uses the model versions pinned for the date, and the steps with side effects on the registry (retrain,
promote) act once per date and report that action again when the date is re-run.

:func:`run_day` runs the same steps in one process, in the DAG's order (``churnguard run-days``): the plain
loop that ``benchmarks/dag_bench.py`` holds the Airflow runs against, and a way to replay days without Airflow.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta

from churnguard import alerts, registry
from churnguard.context import IN_MEMORY_ROWS, DayContext
from churnguard.crashpoints import crash_point
from churnguard.data import data_version
from churnguard.dataroot import DataRoot
from churnguard.decision import REFRESH, decide
from churnguard.performance import champion_failure_days, champion_history, measure_day
from churnguard.promotion import promote_day, set_challenger
from churnguard.results import (
    Decision,
    DriftSummary,
    FailureRisk,
    Ingested,
    PerformanceSummary,
    Promotion,
    Published,
    Retrained,
    Scored,
    Validated,
)
from churnguard.scoring import score_day
from churnguard.store import schema
from churnguard.training import load_version_model

log = logging.getLogger(__name__)


class BatchRejected(Exception):
    """The day's batch failed validation (or could not be read) and was quarantined; nothing downstream may
    run."""


class BatchMissing(FileNotFoundError):
    """No landing partition for the day: nothing was read, written or decided."""


def resolve_ds(batch_date: str | None, logical_date) -> str:
    """The date the user picked: the ``batch_date`` Param when given, else the run's logical date (a
    scheduled run, a backfill, ``airflow dags test DAG DATE`` and a trigger with a logical date all name the
    batch by it); a run with neither is one line saying what to set."""
    if batch_date:
        return date.fromisoformat(str(batch_date)).isoformat()
    if logical_date is None:
        raise ValueError(
            "no batch date: this run has no logical date; trigger it with a logical date or set "
            "the 'batch_date' Param (YYYY-MM-DD)"
        )
    return (
        logical_date.date() if hasattr(logical_date, "date") else date.fromisoformat(str(logical_date)[:10])
    ).isoformat()


def landing_ready(root: DataRoot, ds: str) -> bool:
    """The batch landed (or was quarantined by an earlier run of the date, which ``ingest`` reports again)."""
    ready = root.batch_landed(ds) or root.batch_quarantined(ds)
    if not ready:
        log.info("%s has not landed yet", root.batch_uri(ds))
    return ready


def batch_overdue(ds: str, max_age: timedelta, now: datetime | None = None) -> bool:
    """A batch still missing this long after its day ended will not come: a catch-up run fails at once."""
    end_of_day = datetime.combine(date.fromisoformat(ds) + timedelta(days=1), datetime.min.time(), UTC)
    return (now or datetime.now(UTC)) - end_of_day > max_age


def missing_batch(root: DataRoot, ds: str, waited: str) -> str:
    """The one line a run ends with when the day's batch never landed."""
    return (
        f"no batch for {ds}: {root.batch_uri(ds)} {waited}; nothing was ingested, scored or decided for "
        f"this date: re-run it (clear the run) once the batch has landed"
    )


def ingest(ctx: DayContext) -> Ingested:
    """Read every file of the day's partition with the classifying reader, once, before anything else
    touches it, and stage it as one file for the later steps. An unreadable file (empty, truncated, not
    parquet, junk beside a good file) or a batch without its id column is quarantined with the reason, an
    alert and a validation report, as a failed expectation is."""
    from churnguard.batches import UnreadableBatch, read_stored, stored_rows
    from churnguard.validation import Issue, ValidationResult
    from churnguard.validation.suite import ERROR

    root, ds, cfg = ctx.root, ctx.ds, ctx.dataset
    root.sweep_tmp()
    if not root.batch_landed(ds):
        if root.batch_quarantined(ds) and root.report_exists(ds, "validation.json"):
            _record_rejection(ctx)  # quarantined before (maybe by a run that crashed after the move)
        raise BatchMissing(missing_batch(root, ds, "has no parquet files"))
    issue = None
    landed = stored_rows(root.storage, root.batch_key(ds))
    try:
        if landed is not None and landed > IN_MEMORY_ROWS:
            staged, rows, version = _stage_streamed(ctx)
        else:
            batch = read_stored(root.storage, root.batch_key(ds))
            if cfg.id.column not in batch.columns:
                raise _MissingKey
            staged, rows, version = root.stage_batch(ds, batch), len(batch), data_version(batch)
            ctx.keep_batch(batch)
    except UnreadableBatch as exc:
        issue, status = Issue(ERROR, "readable", None, str(exc)), "unreadable"
    except _MissingKey:
        issue, status = Issue(ERROR, "column_set", None, f"missing key column '{cfg.id.column}'"), "fail"
    if issue is not None:
        _reject(ctx, ValidationResult(source=root.batch_uri(ds), dataset=cfg.name, status=status, issues=[issue]))
    log.info("ingest %s: %d rows, data version %s", ds, rows, version)
    return ctx.record(Ingested(ds, rows, version, root.batch_uri(ds), staged))


class _MissingKey(Exception):
    """The batch lacks its id column."""


def _stage_streamed(ctx: DayContext) -> tuple[str, int, str]:
    """A batch too large to hold (over ``IN_MEMORY_ROWS``), staged chunk by chunk as it is read and
    classified; returns the staged URI, the rows and the data version (that of the whole frame)."""
    from churnguard.batches import read_stored_chunks
    from churnguard.data import ChunkedDataVersion
    from churnguard.storage import CHUNK_ROWS

    root, id_col = ctx.root, ctx.dataset.id.column
    version, rows = ChunkedDataVersion(), 0

    def chunks():
        nonlocal rows
        for chunk in read_stored_chunks(root.storage, root.batch_key(ctx.ds), CHUNK_ROWS):
            if id_col not in chunk.columns:
                raise _MissingKey
            rows += len(chunk)
            yield version.update(chunk)

    staged = root.stage_batch_chunks(ctx.ds, chunks())
    ctx.keep_batch(None, rows)
    return staged, rows, version.hexdigest()


def champion_profile(ctx: DayContext) -> dict:
    """The reference profile of the champion pinned for the day (from MLflow once per version)."""
    from churnguard.training import load_run_profile

    version = ctx.versions.champion
    return ctx.model_summary(
        version, "reference_profile", lambda: load_run_profile(ctx.registry, ctx.registry.require_ready(version).run_id)
    )


def validate(ctx: DayContext) -> Validated:
    """Validate the staged batch against the pinned champion's profile; on error-level failures move the
    landing batch to quarantine, alert and raise."""
    from churnguard.validation import validate_batch

    root, ds = ctx.root, ctx.ds
    batch = ctx.batch() if ctx.batch_in_memory else ctx.batch_chunks()  # held: sliced for GX; else streamed
    result = validate_batch(batch, ctx.dataset, champion_profile(ctx), ctx.validation_config, name=root.batch_uri(ds))
    if result.exit_code >= 2:
        _reject(ctx, result)
    save_validation(root, ds, result)
    _observe(
        ctx,
        alerts.VALIDATION,
        alerts.WARNING if result.warnings else None,
        f"batch {ds} passed validation with warnings: " + "; ".join(result.warnings[:3]),
    )
    return ctx.record(
        Validated(
            ds,
            result.status,
            result.exit_code,
            result.failures,
            result.warnings,
            root.report_uri(ds, "validation.json"),
        )
    )


def save_validation(root: DataRoot, ds: str, result) -> str:
    """The day's ``validation.json`` report (the reports app renders its page from it); returns its URI."""
    return root.write_report(ds, "validation.json", result.to_json().encode())


def _reject(ctx: DayContext, result) -> None:
    """Quarantine the day's batch with its validation report, an alert and the day's row; then raise.

    Ordered so a crash anywhere is finished by a re-run: the report is written first, the move is one step,
    and the rows are written again by :func:`ingest` when it finds the batch in quarantine.
    """
    save_validation(ctx.root, ctx.ds, result)
    ctx.root.quarantine_batch(ctx.ds)
    _record_rejection(ctx)


def _record_rejection(ctx: DayContext) -> None:
    """The alert and the day's row of a quarantined batch, from its saved validation report; raises."""
    root, ds = ctx.root, ctx.ds
    root.drop_staged(ds)  # a crash may have left it between the move and the drop
    report = json.loads(root.read_report(ds, "validation.json"))
    message = f"batch {ds} quarantined to {root.uri(root.quarantine_key(ds))}: " + "; ".join(report["failures"][:3])
    _observe(ctx, alerts.VALIDATION, alerts.CRITICAL, message)
    ctx.store.upsert(
        schema.daily_runs,
        [
            {
                "ds": ds,
                "dataset": ctx.dataset.name,
                "validation_status": report["status"],
                "decision": "quarantined",
                "reasons": report["failures"][:10],
            }
        ],
    )
    raise BatchRejected(message)


def score(ctx: DayContext) -> Scored:
    """Score the staged batch with the versions pinned for the date (see :func:`churnguard.scoring.score_day`)."""
    return ctx.record(score_day(ctx))


def drift(ctx: DayContext) -> DriftSummary:
    """Drift of the batch and the champion's scores against the pinned champion's reference profile."""
    from churnguard.drift import drift_report, render_html
    from churnguard.drift.html import PLOTLY_FILE, plotly_asset_bytes

    root, store, ds = ctx.root, ctx.store, ctx.ds
    profile = champion_profile(ctx)
    since = (ctx.day - timedelta(days=30)).isoformat()
    history: dict[str, dict] = {}
    for row in store.rows(schema.feature_drift, since=since, until=ds):
        if row["ds"] < ds:
            history.setdefault(row["ds"], {})[row["feature"]] = bool(row["drifted"])
    if ctx.batch_in_memory:
        batch, scores = ctx.batch(), _champion_scores(ctx)
    else:  # streamed: each chunk carries its customers' champion scores as a column
        batch, scores = _chunks_with_scores(ctx), SCORE_COLUMN
    report = drift_report(
        profile,
        batch,
        ctx.drift_config,
        scores=scores,
        history=[history[d] for d in sorted(history)],
        overrides=ctx.options.drift_overrides,
    )
    doc = report.to_dict()
    root.write_report(ds, "drift.json", json.dumps(doc, indent=1).encode())
    root.ensure_asset(PLOTLY_FILE, plotly_asset_bytes)  # plotly.js once for every day's report, not inlined in each
    page = render_html(report, profile, None, plotlyjs=DataRoot.asset_src(PLOTLY_FILE))
    html_uri = root.write_report(ds, "drift.html", page.encode())
    store.replace_day(schema.feature_drift, ds, [_feature_row(name, f) for name, f in doc["features"].items()])
    ranked = sorted(doc["features"].items(), key=lambda kv: -(kv[1].get("weighted_psi") or 0))
    summary = DriftSummary(
        ds=ds,
        severity=doc["severity"],
        drift_share=doc["drift_share"],
        weighted_drift=doc["weighted_psi"],
        n_drifted=doc["n_drifted"],
        prediction_psi=(doc.get("prediction") or {}).get("psi"),
        top_features=[name for name, f in ranked if f["drifted"]][:5],
        profile_version=doc["profile_version"],
        champion_version=ctx.versions.champion,
        report_uri=root.report_uri(ds, "drift.json"),
        html_uri=html_uri,
    )
    log.info(
        "drift %s: %s, %d/%d features drifted, top %s",
        ds,
        doc["severity"],
        doc["n_drifted"],
        doc["n_features"],
        summary.top_features[:3],
    )
    return ctx.record(summary)


SCORE_COLUMN = f"{registry.CHAMPION}_score"


def _champion_scores(ctx: DayContext):
    """The champion's scores of the day's customers, in batch order (one float array, read column-wise)."""
    import numpy as np

    from churnguard.storage import PartitionNotFound

    try:
        return np.concatenate(
            [c[SCORE_COLUMN].to_numpy() for c in ctx.root.read_scores_chunks(ctx.ds, columns=[SCORE_COLUMN])]
        )
    except PartitionNotFound:
        raise LookupError(f"{ctx.ds} has no scores: run the score step first") from None


def _chunks_with_scores(ctx: DayContext):
    scores = _champion_scores(ctx)
    offset = 0
    for chunk in ctx.batch_chunks():
        yield chunk.assign(**{SCORE_COLUMN: scores[offset : offset + len(chunk)]})
        offset += len(chunk)


def _feature_row(name: str, f: dict) -> dict:
    test = f.get("test") or {}
    return {
        "feature": name,
        "kind": f.get("kind"),
        "psi": f.get("psi"),
        "psi_threshold": (f.get("psi_threshold") or {}).get("moderate"),
        "statistic": test.get("statistic"),
        "p_value": test.get("p_adjusted", test.get("p_value")),
        "js_distance": f.get("js_distance"),
        "wasserstein": (f.get("wasserstein") or {}).get("normalised"),
        "missing_delta": (f.get("missing_rate") or {}).get("change"),
        "drifted": bool(f.get("drifted")),
        "consecutive_days": f.get("drift_days", 0),
    }


def performance(ctx: DayContext) -> PerformanceSummary:
    """Measure the label deliveries no run measured yet (see :func:`churnguard.performance.measure_day`)."""
    result = measure_day(ctx)
    if result.deliveries and not any(d.get("quarantined_to") for d in result.deliveries):
        _observe(ctx, alerts.LABEL_DELIVERY, None, "")  # labels arrived and every delivery was accepted
    return ctx.record(result)


def failure_risk(ctx: DayContext) -> FailureRisk:
    """P(champion fails within the horizon) from the failure model, or unavailable with the reason."""
    store, ds = ctx.store, ctx.ds
    try:
        from churnguard.failure import day_signals
        from churnguard.failure_training import failure_risk_today
    except ImportError as exc:  # the failure-risk package is optional for the daily run
        result, signals = FailureRisk(available=False, reason=f"failure model code: {exc}"), None
    else:
        report = json.loads(ctx.root.read_report(ds, "drift.json"))
        matured = store.rows(schema.performance, where={"role": registry.CHAMPION}, until=ds, day_column="observed_ds")
        signals = day_signals(report, _champion_scores(ctx), matured, reference=champion_reference(ctx), ds=ds)
        past = [
            r["signals"]
            for r in store.rows(schema.failure_risk, until=ds, order_by="ds")
            if r["ds"] < ds and r["signals"]
        ]
        result = failure_risk_today([*past, signals], lambda: ctx.failure_champion)
    store.upsert(
        schema.failure_risk,
        [
            {
                "ds": ds,
                "available": result.available,
                "risk": result.risk,
                "drivers": result.top_drivers,
                "signals": signals,
                "model_version": result.model_version,
                "reason": result.reason,
            }
        ],
    )
    log.info("failure risk %s: %s", ds, f"{result.risk:.3f}" if result.available else f"unavailable ({result.reason})")
    return ctx.record(result)


REFERENCE_SUMMARY = "failure_reference"


def champion_reference(ctx: DayContext) -> dict:
    """The pinned champion's scores and labels on the reference test split, summarised for label-free
    estimates: computed once per champion version and stored with it."""
    from churnguard.data import target_array
    from churnguard.failure import champion_reference as summarise

    version = ctx.versions.champion

    def compute() -> dict:
        model = load_version_model(ctx.registry, version)
        test = ctx.root.read_reference(ctx.dataset.name, "test")
        return summarise(model.predict_proba(test), target_array(test, ctx.dataset), model.threshold)

    return ctx.model_summary(version, REFERENCE_SUMMARY, compute)


def decide_day(ctx: DayContext) -> Decision:
    """Decided on the state the day started from, so a re-run (after a crash too) decides the same: the
    challenger pinned for the day, and versions registered before the day."""
    from churnguard.retrain import refresh_due

    store, ds = ctx.store, ctx.ds
    last = max(
        (e["ds"] for e in store.rows(schema.model_events, where={"event": "registered"}, until=ds) if e["ds"] < ds),
        default=None,
    )
    challenger = ctx.versions.challenger
    champion = ctx.registry.require_ready(ctx.versions.champion)
    refresh = refresh_due(champion.tags, ctx.day, ctx.monitoring.labels.delay_days, ctx.monitoring.retrain.window_days)
    decision = decide(
        ctx.require(DriftSummary),
        ctx.require(PerformanceSummary),
        ctx.require(FailureRisk),
        ctx.monitoring,
        challenger_version=challenger,
        force_retrain=ctx.options.force_retrain,
        days_since_registered=(ctx.day - date.fromisoformat(last)).days if last else None,
        challenger_post_change=challenger is not None
        and ctx.registry.require_ready(challenger).tags.post_change_from is not None,
        refresh=refresh,
    )
    log.info("%s %s", ds, decision.line())
    _observe(ctx, alerts.DECISION, alerts.decision_severity(decision.decision), decision.line())
    return ctx.record(decision)


def _observe(ctx: DayContext, kind: str, severity: str | None, message: str) -> None:
    """What the day found for condition ``kind`` (severity None: it is clear), through the alert episodes."""
    alert = alerts.Alert(ctx.ds, kind, severity, message) if severity else None
    alerts.observe(ctx.store, ctx.ds, kind, alert, notify_cleared=ctx.monitoring.alerts.notify_cleared)


def retrain(ctx: DayContext) -> Retrained:
    """Train, validate and register a challenger, once per date: a re-run reports the first run's result
    instead of moving the ``challenger`` alias again (a dry run is not the date's retrain: nothing recorded).
    The change point comes from the champion's measured history and every failure measured for it so far."""
    from churnguard.retrain import change_point, retrain_challenger

    done = ctx.result(Retrained)
    if done is not None:
        return done
    history = champion_history(ctx.store, ctx.ds, ctx.monitoring)
    failures = champion_failure_days(ctx.store, ctx.ds, ctx.versions.champion, ctx.monitoring)
    change = change_point(
        history["observed_ds"], history["roc_auc"], failures, ctx.monitoring.performance.auc_tolerance
    )
    reasons = ctx.require(Decision).reasons
    result = retrain_challenger(
        ctx, "; ".join(reasons), change_day=change, refresh=any(r.startswith(f"{REFRESH}:") for r in reasons)
    )
    if result["registered"] and (refused := set_challenger(ctx.store, ctx.registry, result["version"])):
        result.update(registered=False, rejected=refused)
    if result["registered"]:
        ctx.store.record_event(ctx.ds, "registered", ctx.model_name, result["version"], reason=result["reason"])
    retrained = Retrained.from_json(result)
    return retrained if ctx.options.dry_run else ctx.record(retrained)


DRY_RUN_PROMOTION = Promotion(promoted=False, reason="dry run")


def promote(ctx: DayContext) -> Promotion:
    """Promote the challenger when it has proven itself, once per date (a re-run reports that day's result)."""
    done = ctx.result(Promotion)
    if done is not None:
        return done
    if ctx.options.dry_run:
        return DRY_RUN_PROMOTION
    failed = ctx.require(PerformanceSummary).measured_failure
    result = Promotion.from_json(promote_day(ctx, failed))
    if result.promoted:
        _observe(
            ctx,
            alerts.PROMOTION,
            alerts.INFO,
            f"{ctx.model_name} v{result.version} promoted to "
            f"champion (was v{result.from_version}): {result.reason or ''}".rstrip(": "),
        )
    return ctx.record(result)


def publish(ctx: DayContext) -> Published:
    """The day's ``summary.json`` report, the day's MLflow run, and the day's row in the monitoring store, from
    the day's recorded step results; the versions are those pinned for the day and what the day changed."""
    summary = day_summary(ctx)
    summary_uri = ctx.root.write_report(ctx.ds, "summary.json", json.dumps(summary, indent=1, default=str).encode())
    run_id = _log_day_run(ctx, summary)
    ctx.store.upsert(schema.daily_runs, [daily_row(summary, ctx.dataset.name, summary_uri)])
    ctx.release()  # the run of the date has ended: another may take it
    return Published(summary_uri, run_id, summary["decision"])


def day_summary(ctx: DayContext) -> dict:
    """``summary.json``: every step's recorded result of the day, and the versions the day left deployed."""
    ingested, validated, scored = ctx.require(Ingested), ctx.require(Validated), ctx.require(Scored)
    drifted, measured, risk = ctx.require(DriftSummary), ctx.require(PerformanceSummary), ctx.require(FailureRisk)
    decision = ctx.require(Decision)
    promotion = ctx.result(Promotion) or (DRY_RUN_PROMOTION if ctx.options.dry_run else None)
    retrained = ctx.result(Retrained)
    promoted = bool(promotion and promotion.promoted)
    registered = retrained.version if retrained and retrained.registered else None
    return {
        "ds": ctx.ds,
        "rows": ingested.rows,
        "data_version": ingested.data_version,
        "validation_status": validated.status,
        "validation_warnings": validated.warnings,
        "drift": drifted.to_json(),
        "prediction_drift": drifted.prediction_psi,
        "performance": measured.to_json(),
        "failure_risk": risk.to_json(),
        "decision": decision.decision,
        "reasons": decision.reasons,
        "scored_with": {"champion": scored.champion_version, "challenger": scored.challenger_version},
        "champion_version": promotion.version if promoted else ctx.versions.champion,
        "challenger_version": None if promoted else (registered or ctx.versions.challenger),
        "promoted": promoted,
        "promotion": promotion.to_json() if promotion else {},
    }


def daily_row(summary: dict, dataset: str, summary_uri: str) -> dict:
    """The day's ``daily_runs`` row, from its :func:`day_summary`."""
    drifted = summary["drift"]
    return {
        "ds": summary["ds"],
        "dataset": dataset,
        "rows": summary["rows"],
        "data_version": summary["data_version"],
        "validation_status": summary["validation_status"],
        "drift_severity": drifted["severity"],
        "drift_share": drifted["drift_share"],
        "weighted_drift": drifted["weighted_drift"],
        "prediction_psi": drifted["prediction_psi"],
        "champion_version": summary["scored_with"]["champion"],
        "challenger_version": summary["scored_with"]["challenger"],
        "failure_risk": summary["failure_risk"]["risk"],
        "decision": summary["decision"],
        "reasons": summary["reasons"],
        "promoted": summary["promoted"],
        "summary_uri": summary_uri,
    }


DAY_RUN_FILTER = f"tags.`{registry.KIND_TAG}` = '{registry.DAILY_RUN}'"


def _log_day_run(ctx: DayContext, summary: dict) -> str:
    """One MLflow run per day, even for runs of one date at once: found again by its ``ds`` tag, created
    under the store's lock for that date. A run a killed process left RUNNING is closed first."""
    import mlflow

    from churnguard.store import exclusive

    ds, root, store = ctx.ds, ctx.root, ctx.store
    ctx.registry.configure()
    _close_orphaned_day_runs(store, ds, ctx.registry.client)
    with exclusive(store.engine, f"churnguard-daily-run-{ds}"):
        found = mlflow.search_runs(
            filter_string=f"tags.`{registry.DS_TAG}` = '{ds}' and {DAY_RUN_FILTER}",
            order_by=["attributes.start_time ASC"],
            output_format="list",
        )
        run_id = found[0].info.run_id if found else None
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else f"daily-{ds}") as run:
            mlflow.set_tags(
                {
                    registry.DS_TAG: ds,
                    registry.KIND_TAG: registry.DAILY_RUN,
                    registry.DECISION_TAG: summary["decision"],
                    registry.DRIFT_SEVERITY_TAG: summary["drift"]["severity"],
                    registry.DRIFT_REPORT_TAG: root.report_uri(ds, "drift.html"),
                }
            )
            crash_point("daily.mlflow_run.started")
            metrics = {
                "rows": summary["rows"],
                "drift_share": summary["drift"]["drift_share"],
                "weighted_drift": summary["drift"]["weighted_drift"],
            }
            if summary["failure_risk"].get("risk") is not None:
                metrics["failure_risk"] = summary["failure_risk"]["risk"]
            if summary["drift"].get("prediction_psi") is not None:
                metrics["prediction_psi"] = summary["drift"]["prediction_psi"]
            mlflow.log_metrics(metrics)
            mlflow.log_dict(summary, "summary.json")
            # The JSON, not the HTML: the page lives in the data root (tag drift_report), stored once.
            mlflow.log_text(root.read_report(ds, "drift.json").decode(), "drift.json")
            if root.report_exists(ds, "validation.json"):
                mlflow.log_text(root.read_report(ds, "validation.json").decode(), "validation.json")
    return run.info.run_id


def _close_orphaned_day_runs(store, ds: str, client) -> None:
    """End as KILLED the daily runs of other dates that are RUNNING with nobody holding their date's lock: a
    process was killed inside :func:`_log_day_run` (one of this date is reopened and finished instead)."""
    import mlflow

    from churnguard.store import exclusive

    running = mlflow.search_runs(
        filter_string=f"{DAY_RUN_FILTER} and attributes.status = 'RUNNING'", output_format="list"
    )
    for run in running:
        day = run.data.tags.get(registry.DS_TAG)
        if day == ds:
            continue
        with exclusive(store.engine, f"churnguard-daily-run-{day}"):  # one lock at a time: no deadlock
            if mlflow.get_run(run.info.run_id).info.status == "RUNNING":
                client.set_terminated(run.info.run_id, status="KILLED")
                log.warning(
                    "closed the daily MLflow run of %s (%s) left RUNNING by a killed process", day, run.info.run_id
                )
