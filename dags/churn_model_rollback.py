"""
### churn_model_rollback

Manual: point the `champion` alias of `churn-model` back at an earlier version and record why.

* `version`: a version number, or `previous` (the version that was champion before the last promotion).
* `reason`: required; stored with a `rolled_back` model event in the monitoring store, dated by the
  run's logical date (today when the run has none).
* The old champion becomes `previous`, so rolling back twice with `previous` undoes the first rollback.
* A version that does not exist or is not READY fails the run with a one-line message; `champion` does
  not move. The logic lives in `churnguard.promotion.rollback`; this file is wiring only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag

from churnguard_airflow.connections import use_connections
from churnguard_airflow.operators import RollbackModelOperator


@dag(
    doc_md=__doc__,
    default_args={"pre_execute": use_connections},  # credentials from Airflow connections first
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["churnguard", "model"],
    params={
        "version": Param(
            "previous",
            type="string",
            pattern=r"^(previous|[1-9][0-9]*)$",
            title="Version",
            description="Version number of churn-model to make champion, or 'previous'.",
        ),
        "reason": Param(
            type="string",
            pattern=r"\S",
            title="Reason",
            description="Why the champion is rolled back; recorded with the model event.",
        ),
    },
)
def churn_model_rollback():
    RollbackModelOperator(
        task_id="rollback_champion",
        target="{{ params.version }}",
        reason="{{ params.reason }}",
        retries=0,
        doc_md="Re-point `champion`; the old champion becomes `previous`.",
    )


churn_model_rollback()
