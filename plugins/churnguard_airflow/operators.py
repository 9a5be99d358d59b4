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
    """Wait for the day's batch in the data root's landing area; when it never comes, end with one clear line.

    A batch still missing ``fail_after_hours`` after its day ended is not waited for: a catch-up run of an
    old date fails at once instead of holding later dates behind it for the whole timeout.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    :param fail_after_hours: fail at the first poke when the day ended longer ago than this
    """

    template_fields = ("ds",)
    ui_color = "#e8f6f3"

    def __init__(self, *, ds: str | None = None, fail_after_hours: float = 2, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds, self.fail_after_hours = ds, fail_after_hours

    def poke(self, context) -> bool:
        from datetime import timedelta

        from churnguard.daily import batch_overdue, landing_ready, missing_batch
        from churnguard.dataroot import DataRoot
        from churnguard_airflow.day import batch_date

        day, root = batch_date(context, self.ds), DataRoot.open()
        if landing_ready(root, day):
            return True
        if batch_overdue(day, timedelta(hours=self.fail_after_hours)):
            raise AirflowFailException(missing_batch(
                root, day, f"is still missing {self.fail_after_hours:g} h after the day ended "
                           f"(schedule.missing_batch_fail_hours)"))
        return False

    def execute(self, context) -> None:
        from churnguard.daily import missing_batch
        from churnguard.dataroot import DataRoot
        from churnguard_airflow.day import batch_date

        try:
            super().execute(context)
        except AirflowSensorTimeout:
            raise AirflowSensorTimeout(missing_batch(
                DataRoot.open(), batch_date(context, self.ds),
                f"did not land within {self.timeout / 60:g} min")) from None


class ValidateBatchOperator(BaseOperator):
    """Validate the day's staged batch with the Great Expectations suite of the pinned champion's profile.

    Error-level failures quarantine the batch, raise an alert and fail the task (nothing downstream runs);
    warnings pass through.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    template_fields = ("ds",)
    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#fdebd0"

    def __init__(self, *, ds: str | None = None, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds = ds

    def execute(self, context) -> dict:
        from churnguard import daily
        from churnguard_airflow.day import day_context

        ctx = day_context(context, self.ds)
        record_link(self, ValidationReportLink(), report_url(ctx.ds, "validation.json"))
        try:
            return daily.validate(ctx)
        except daily.BatchRejected as exc:
            raise AirflowFailException(str(exc)) from None


class DriftReportOperator(BaseOperator):
    """Drift of the day's batch and scores against the pinned champion's reference profile (JSON + HTML).

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    template_fields = ("ds",)
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#d6eaf8"

    def __init__(self, *, ds: str | None = None, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds = ds

    def execute(self, context) -> dict:
        from churnguard import daily
        from churnguard_airflow.day import day_context

        ctx = day_context(context, self.ds)
        result = daily.drift(ctx)
        record_link(self, DriftReportLink(), report_url(ctx.ds, "drift.html"))
        return result


class RetrainChallengerOperator(BaseOperator):
    """Train on recent labelled days, validate on the latest matured ones, register as ``challenger``.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    template_fields = ("ds",)
    operator_extra_links = (MLflowRunLink(), ModelVersionLink())
    ui_color = "#e8daef"

    def __init__(self, *, ds: str | None = None, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds = ds

    def execute(self, context) -> dict:
        from churnguard import daily, registry
        from churnguard_airflow.day import day_context

        result = daily.retrain(day_context(context, self.ds))
        if result.get("run_id"):
            record_link(self, MLflowRunLink(), run_url(registry.configure_mlflow(), result["run_id"]))
        if result.get("version"):
            record_link(self, ModelVersionLink(), model_version_url(result["version"]))
        return result


class PromoteModelOperator(BaseOperator):
    """Promote the challenger when it has proven itself (or the champion failed); aliases move atomically.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    template_fields = ("ds",)
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#d5f5e3"

    def __init__(self, *, ds: str | None = None, **kwargs):
        super().__init__(**_documented(self, kwargs))
        self.ds = ds

    def execute(self, context) -> dict:
        from churnguard import daily
        from churnguard_airflow.day import day_context

        result = daily.promote(day_context(context, self.ds))
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
