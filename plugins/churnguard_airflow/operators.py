"""Operators for the churnguard steps users reuse in their own DAGs. Each is a thin shell over
:mod:`churnguard.daily`: work happens in ``execute`` (nothing heavy at parse time), inputs are templated
so they can be XComArgs, and the result is a small JSON-able dict."""

from __future__ import annotations

import inspect
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from churnguard_airflow.links import (
    DriftReportLink,
    MLflowRunLink,
    ModelVersionLink,
    ValidationReportLink,
    model_version_url,
    record_link,
    report_url,
    run_url,
)


def _documented(operator: BaseOperator, kwargs: dict) -> dict:
    """The operator's docstring is the task's documentation in the UI, unless the DAG gives its own."""
    return {"doc_md": inspect.cleandoc(type(operator).__doc__), **kwargs}


class LandingSensor(BaseSensorOperator):
    """Wait for the day's ``landing/ds=…`` partition; when it never comes, end with one clear line."""

    template_fields = ("ds",)
    ui_color = "#e8f6f3"

    def __init__(self, *, ds: Any, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds = ds

    def poke(self, context) -> bool:
        from churnguard.daily import landing_ready

        return landing_ready(self.ds)

    def execute(self, context) -> None:
        from churnguard.daily import missing_batch

        try:
            super().execute(context)
        except AirflowSensorTimeout:
            raise AirflowSensorTimeout(missing_batch(self.ds, self.timeout)) from None


class ValidateBatchOperator(BaseOperator):
    """Validate the day's landing batch with the Great Expectations suite of the champion's profile.

    Error-level failures quarantine the batch, raise an alert and fail the task (nothing downstream runs);
    warnings pass through.
    """

    template_fields = ("ds",)
    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#fdebd0"

    def __init__(self, *, ds: Any, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds = ds

    def execute(self, context) -> dict:
        from churnguard import daily

        record_link(self, ValidationReportLink(), report_url(self.ds, "validation.json"))
        try:
            return daily.validate(self.ds)
        except daily.BatchRejected as exc:
            raise AirflowFailException(str(exc)) from None


class DriftReportOperator(BaseOperator):
    """Drift of the day's batch and scores against the champion's reference profile (JSON + HTML)."""

    template_fields = ("ds", "overrides")
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#d6eaf8"

    def __init__(self, *, ds: Any, overrides: Any = None, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds, self.overrides = ds, overrides

    def execute(self, context) -> dict:
        from churnguard import daily

        result = daily.drift(self.ds, self.overrides or {})
        record_link(self, DriftReportLink(), report_url(self.ds, "drift.html"))
        return result


class RetrainChallengerOperator(BaseOperator):
    """Train on recent labelled days, validate on the latest matured ones, register as ``challenger``."""

    template_fields = ("ds", "decision", "run_params")
    operator_extra_links = (MLflowRunLink(), ModelVersionLink())
    ui_color = "#e8daef"

    def __init__(self, *, ds: Any, decision: Any, run_params: Any, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds, self.decision, self.run_params = ds, decision, run_params

    def execute(self, context) -> dict:
        from churnguard import daily, registry

        result = daily.retrain(self.ds, self.decision, self.run_params)
        if result.get("run_id"):
            record_link(self, MLflowRunLink(), run_url(registry.configure_mlflow(), result["run_id"]))
        if result.get("version"):
            record_link(self, ModelVersionLink(), model_version_url(result["version"]))
        return result


class PromoteModelOperator(BaseOperator):
    """Promote the challenger when it has proven itself (or the champion failed); aliases move atomically."""

    template_fields = ("ds", "performance", "run_params")
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#d5f5e3"

    def __init__(self, *, ds: Any, performance: Any, run_params: Any = None, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds, self.performance, self.run_params = ds, performance, run_params

    def execute(self, context) -> dict:
        from churnguard import daily

        result = daily.promote(self.ds, self.performance, self.run_params or {})
        if result.get("promoted"):
            record_link(self, ModelVersionLink(), model_version_url(result["version"]))
        return result


class RollbackModelOperator(BaseOperator):
    """Point ``champion`` back at ``target`` (a version number or ``previous``) and record ``reason``.

    The event is dated by the run's logical date, or today (UTC) for a run without one. A target that does
    not exist or is not READY fails the task at once (no retries) with a one-line message, and ``champion``
    stays where it was.
    """

    template_fields = ("target", "reason")
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#fadbd8"

    def __init__(self, *, target: Any = "previous", reason: Any, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.target, self.reason = target, reason

    def execute(self, context) -> dict:
        from datetime import UTC, datetime

        from mlflow.exceptions import MlflowException

        from churnguard.config import load_model_config
        from churnguard.promotion import rollback

        day = (context.get("logical_date") or datetime.now(UTC)).date().isoformat()
        name = load_model_config().registered_name
        try:
            result = rollback(day, self.target, self.reason)
        except (LookupError, ValueError, RuntimeError, MlflowException) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise AirflowFailException(f"cannot roll back {name} to {self.target!r}: "
                                       f"{message.strip().splitlines()[0]}") from None
        record_link(self, ModelVersionLink(), model_version_url(result["version"]))
        return result
