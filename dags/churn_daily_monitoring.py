"""
### churn_daily_monitoring

Every day: wait for `landing/ds=…` → ingest → validate (GX; errors quarantine the batch) → score with
the champion (and the challenger, in shadow) → drift → performance on labels that arrived today →
failure risk → **decide**: `healthy`, `alert`, or `retrain` (train on recent labelled days, validate,
register as `challenger`) → promote when the challenger has proven itself → publish the day's summary.

The run for a date processes that date's partition (a data interval of one day, so backfills and
catch-up map one run to one batch). A manual run names its date with the `batch_date` Param. Logic lives in
`churnguard.daily`; operators in `plugins/churnguard_airflow`.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import CronDataIntervalTimetable, Label, Param, TriggerRule, dag, task

from churnguard.config import load_monitoring_config
from churnguard_airflow.operators import (
    DriftReportOperator,
    LandingSensor,
    PromoteModelOperator,
    RetrainChallengerOperator,
    ValidateBatchOperator,
)

CFG = load_monitoring_config()


@dag(
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.parse(CFG.schedule.start_date, tz="UTC"),
    end_date=pendulum.parse(CFG.schedule.end_date, tz="UTC") if CFG.schedule.end_date else None,
    catchup=True,
    max_active_runs=CFG.schedule.max_active_runs,
    tags=["churnguard", "monitoring"],
    params={
        "batch_date": Param(None, type=["null", "string"], format="date", title="Batch date",
                    description="YYYY-MM-DD of the batch to process. Empty: the run's data interval start."),
        "force_retrain": Param(False, type="boolean", title="Force retrain",
                               description="Retrain a challenger whatever the signals say."),
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Compute and report everything; register and promote nothing."),
        "retrain_window_days": Param(CFG.retrain.window_days, type="integer", minimum=1, title="Retrain window",
                                     description="Recent labelled days a challenger is trained on."),
        "risk_retrain": Param(CFG.decision.risk_retrain, type="number", minimum=0, maximum=1,
                              title="Failure risk: retrain", description="Risk at or above which to retrain."),
        "psi_critical": Param(None, type=["null", "number"], title="PSI critical override",
                              description="Critical PSI threshold for this run (empty: drift.yaml)."),
    },
)
def churn_daily_monitoring():
    @task(multiple_outputs=True)
    def run_settings(params: dict | None = None, data_interval_start=None) -> dict:
        """Batch date and per-run overrides, from Params; every config and the MLflow server are checked here,
        before any task writes."""
        from churnguard.daily import check_run, resolve_ds

        overrides = {"retrain": {"window_days": params["retrain_window_days"]},
                     "decision": {"risk_retrain": params["risk_retrain"]}}
        drift = {"psi": {"critical": params["psi_critical"]}} if params["psi_critical"] is not None else {}
        check_run(overrides, drift)
        return {"day": resolve_ds(params["batch_date"], data_interval_start), "drift_overrides": drift,
                "run": {"force_retrain": params["force_retrain"], "dry_run": params["dry_run"],
                        "overrides": overrides}}

    @task
    def ingest(day: str) -> dict:
        """Read every file of the batch (unreadable ones quarantine it) and dedupe; row count and data version."""
        from airflow.sdk.exceptions import AirflowFailException

        from churnguard import daily

        try:
            return daily.ingest(day)
        except daily.BatchRejected as exc:
            raise AirflowFailException(str(exc)) from None

    @task
    def score(day: str, validation: dict) -> dict:
        """Score with the champion, and the challenger as a shadow."""
        from churnguard import daily

        return daily.score(day)

    @task
    def performance(day: str, scored: dict) -> dict:
        """Metrics on labels that arrived today, per observed day; 30-day history and slope."""
        from churnguard import daily

        return daily.performance(day)

    @task
    def failure_risk(day: str, drift: dict, perf: dict) -> dict:
        """P(champion fails within the horizon), or unavailable with the reason."""
        from churnguard import daily

        return daily.failure_risk(day, drift, perf)

    @task
    def decide(day: str, drift: dict, perf: dict, risk: dict, run: dict) -> dict:
        """healthy / alert / retrain, with the reasons in one log line."""
        from churnguard import daily

        return daily.decide_day(day, drift, perf, risk, run)

    @task.branch
    def route(decision: dict) -> str:
        """Follow the decision."""
        return decision["decision"]

    @task(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    def publish(day: str, ingested: dict, validation: dict, scored: dict, drift: dict, perf: dict,
                risk: dict, decision: dict, promotion: dict) -> dict:
        """summary.json, the day's MLflow run, the monitoring-store row."""
        from churnguard import daily

        return daily.publish(day, ingested, validation, scored, drift, perf, risk, decision, promotion)

    settings = run_settings()
    day, run = settings["day"], settings["run"]
    ingested = ingest(day)
    LandingSensor(task_id="wait_for_landing", ds=day, mode="reschedule", poke_interval=CFG.schedule.sensor_poke_seconds,
                  timeout=CFG.schedule.sensor_timeout_minutes * 60) >> ingested
    validation = ValidateBatchOperator(task_id="validate", ds=day)
    ingested >> validation
    scored = score(day, validation.output)
    drift = DriftReportOperator(task_id="drift", ds=day, overrides=settings["drift_overrides"])
    scored >> drift
    perf = performance(day, scored)
    risk = failure_risk(day, drift.output, perf)
    decision = decide(day, drift.output, perf, risk, run)
    branch = route(decision)
    retrain = RetrainChallengerOperator(task_id="retrain", ds=day, decision=decision, run_params=run)
    promote = PromoteModelOperator(task_id="promote", ds=day, performance=perf, run_params=run,
                                   trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    for name, label in (("healthy", "no drift, no risk"), ("alert", "moderate drift or risk")):
        branch >> Label(label) >> EmptyOperator(task_id=name, doc_md=f"Decision: {label}.") >> promote
    branch >> Label("critical drift, risk or failure") >> retrain >> promote
    publish(day, ingested, validation.output, scored, drift.output, perf, risk, decision, promote.output)


churn_daily_monitoring()
