"""From an Airflow task's context to churnguard's day: the batch date the user picked and the run's options.

The date is the ``batch_date`` Param when given, else the run's logical date: a scheduled run, a backfill,
``airflow dags test DAG DATE`` and a trigger with a logical date (UI or REST) all process that day. A run
with neither fails at once with one line saying what to set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from churnguard.context import DayContext, RunOptions


def run_options(params: Mapping[str, Any]) -> RunOptions:
    """The run's Params as churnguard options (config overrides and switches)."""
    from churnguard.context import RunOptions

    overrides = {}
    if params.get("retrain_window_days") is not None:
        overrides["retrain"] = {"window_days": params["retrain_window_days"]}
    if params.get("risk_retrain") is not None:
        overrides["decision"] = {"risk_retrain": params["risk_retrain"]}
    drift = {"psi": {"critical": params["psi_critical"]}} if params.get("psi_critical") is not None else {}
    return RunOptions(
        overrides=overrides,
        drift_overrides=drift,
        force_retrain=bool(params.get("force_retrain")),
        dry_run=bool(params.get("dry_run")),
    )


def batch_date(context: Mapping[str, Any], ds: Any = None) -> str:
    """``ds`` when the task was given one, else the ``batch_date`` Param, else the run's logical date. No date
    (or one that is no date) fails the task at once: retrying cannot help."""
    from airflow.sdk.exceptions import AirflowFailException

    from churnguard.daily import resolve_ds

    params = context.get("params") or {}
    try:
        return resolve_ds(ds or params.get("batch_date"), context.get("logical_date"))
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


def run_holder(context: Mapping[str, Any]) -> str:
    """The DAG run's name for its date's lease (:mod:`churnguard.store.lease`): every task and retry of one run
    holds it as one, and a second run of the date (another DAG run, a CLI run) waits for it."""
    return f"airflow:{context['dag'].dag_id}:{context['run_id']}"


def day_context(context: Mapping[str, Any] | None = None, ds: Any = None) -> DayContext:
    """The :class:`~churnguard.context.DayContext` of the running task (default: the current context)."""
    from churnguard.context import DayContext

    if context is None:
        from airflow.sdk import get_current_context

        context = get_current_context()
    return DayContext.build(
        batch_date(context, ds), run_options(context.get("params") or {}), holder=run_holder(context)
    )
