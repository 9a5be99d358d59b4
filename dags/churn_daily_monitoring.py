"""
### churn_daily_monitoring

Every day: wait for the day's batch → ingest → wait for the run of the day before → validate (GX; errors
quarantine the batch) → score with
the champion (and the challenger, in shadow) → drift → performance on labels that arrived today →
failure risk → **decide**: `healthy`, `alert`, or `retrain` (train on recent labelled days, validate,
register as `challenger`) → promote when the challenger has proven itself → publish the day's summary.
`promote` is green only on a day that promoted; on every other day it ends skipped, and `publish` runs anyway.

A run processes the day it is dated: a scheduled run, a backfill, `airflow dags test` with a date and a
trigger with a logical date all process that day's batch; the `batch_date` Param picks another. Every
task reads the day from the run itself and its inputs from the day's results in the monitoring store, so
the graph's edges are the flow of the day. Two runs may be active at once: a day lands and is ingested while
the day before decides, and validates (pinning the champion) only once that run has ended, so days decide as
they would one at a time. Logic lives in `churnguard.daily`; operators in `plugins/churnguard_airflow`.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Label, Param, TriggerRule, dag, task

from churnguard import steps
from churnguard.config import load_monitoring_config
from churnguard.results import Decision, Verdict
from churnguard_airflow.connections import use_connections
from churnguard_airflow.notify import day_deadline, on_day_published, on_task_failure
from churnguard_airflow.operators import (
    DayStepOperator,
    DriftReportOperator,
    LandingSensor,
    PreviousDaySensor,
    PromoteModelOperator,
    RetrainChallengerOperator,
    ValidateBatchOperator,
)
from churnguard_airflow.timetables import DailyBatches

CFG = load_monitoring_config()
LAST_DAY = CFG.schedule.end_date.isoformat() if CFG.schedule.end_date else None


@dag(
    doc_md=__doc__,
    default_args={
        "pre_execute": use_connections,  # credentials from Airflow connections first
        "on_failure_callback": on_task_failure,
    },  # a failed task: a critical alert, delivered
    deadline=day_deadline(CFG.alerts.deadline_hours),  # unfinished alerts.deadline_hours after the batch was due
    schedule=DailyBatches(LAST_DAY),
    start_date=pendulum.datetime(*CFG.schedule.start_date.timetuple()[:3], tz="UTC"),
    catchup=True,
    max_active_runs=CFG.schedule.max_active_runs,
    tags=["churnguard", "monitoring"],
    params={
        "batch_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Batch date",
            description="YYYY-MM-DD of the batch to process. Empty: the run's logical date.",
        ),
        "force_retrain": Param(
            False, type="boolean", title="Force retrain", description="Retrain a challenger whatever the signals say."
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Compute and report everything; register and promote nothing.",
        ),
        "retrain_window_days": Param(
            CFG.retrain.window_days,
            type="integer",
            minimum=1,
            title="Retrain window",
            description="Recent labelled days a challenger is trained on.",
        ),
        "risk_retrain": Param(
            CFG.decision.risk_retrain,
            type="number",
            minimum=0,
            maximum=1,
            title="Failure risk: retrain",
            description="Risk at or above which to retrain.",
        ),
        "psi_critical": Param(
            None,
            type=["null", "number"],
            title="PSI critical override",
            description="Critical PSI threshold for this run (empty: drift.yaml).",
        ),
    },
)
def churn_daily_monitoring():
    @task
    def run_settings() -> dict:
        """The batch date (Param or logical date) and this run's options; every config and the MLflow server
        are checked here, before any task writes."""
        from airflow.sdk import get_current_context

        from churnguard.context import check_run
        from churnguard_airflow.day import batch_date, run_options

        context = get_current_context()
        day, options = batch_date(context), run_options(context["params"])
        check_run(options)
        return {"batch_date": day, **options.to_dict()}

    @task.branch
    def route(decision: dict) -> str:
        """Follow the decision: its verdict is the id of the task to run."""
        return Decision.from_json(decision).decision.value

    waited = LandingSensor(
        task_id="wait_for_landing",
        mode="reschedule",
        poke_interval=CFG.schedule.sensor_poke_seconds,
        timeout=CFG.schedule.sensor_timeout_minutes * 60,
        fail_after_hours=CFG.schedule.missing_batch_fail_hours,
    )
    ingest = DayStepOperator(step=steps.INGEST)
    scored = DayStepOperator(step=steps.SCORE)
    ready = run_settings() >> waited >> ingest >> PreviousDaySensor(task_id="wait_for_previous_day")
    ready >> ValidateBatchOperator() >> scored
    risk = DayStepOperator(step=steps.FAILURE_RISK)
    scored >> [DriftReportOperator(), DayStepOperator(step=steps.PERFORMANCE)] >> risk
    decision = DayStepOperator(step=steps.DECIDE)
    risk >> decision
    branch = route(decision.output)
    promote = PromoteModelOperator(trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)
    for verdict in Verdict:
        follow = (
            RetrainChallengerOperator()
            if verdict is steps.RETRAIN.verdict
            else EmptyOperator(task_id=verdict.value, doc_md=f"Decision: {verdict.edge}.")
        )
        branch >> Label(verdict.edge) >> follow >> promote
    promote >> DayStepOperator(
        step=steps.PUBLISH, trigger_rule=TriggerRule.NONE_FAILED, on_success_callback=on_day_published
    )


churn_daily_monitoring()
