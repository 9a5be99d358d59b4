"""Operators for the churnguard steps users reuse in their own DAGs. Each is a thin shell over
:mod:`churnguard.daily`: work happens in ``execute`` (nothing heavy at parse time), inputs are templated
so they can be XComArgs, and what they push to XCom is the step's typed result as a small JSON-able dict."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from churnguard import steps
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

if TYPE_CHECKING:
    from churnguard.results import StepResult


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
            raise AirflowFailException(
                missing_batch(
                    root,
                    day,
                    f"is still missing {self.fail_after_hours:g} h after the day ended "
                    f"(schedule.missing_batch_fail_hours)",
                )
            )
        return False

    def execute(self, context) -> None:
        from churnguard.daily import missing_batch
        from churnguard.dataroot import DataRoot
        from churnguard_airflow.day import batch_date

        try:
            super().execute(context)
        except AirflowSensorTimeout:
            raise AirflowSensorTimeout(
                missing_batch(
                    DataRoot.open(), batch_date(context, self.ds), f"did not land within {self.timeout / 60:g} min"
                )
            ) from None


class PreviousDaySensor(BaseSensorOperator):
    """Wait until this DAG's run for the date before has finished, whatever its end state.

    Runs for consecutive dates overlap (``max_active_runs`` > 1): a day lands and is ingested (staged) while
    the day before is still deciding. From here on every step needs what the day before left (validation
    and scoring pin the champion it may have promoted; drift, risk and the decision read its rows in the
    monitoring store), so the day goes on only once that run is done, and its results equal those of runs
    one at a time. A failed day before does not hold this one, as with
    runs one at a time; a day before that has not started (queued) is not waited for, so two runs never wait
    on each other.
    """

    ui_color = "#f2f3f4"

    def __init__(self, *, poke_interval: float = 0.25, mode: str = "poke", timeout: float = 24 * 3600, **kwargs):
        super().__init__(
            **_documented(self, {"poke_interval": poke_interval, "mode": mode, "timeout": timeout, **kwargs})
        )

    def poke(self, context) -> bool:
        previous = context["ti"].get_previous_dagrun()
        if previous is None or previous.state != "running":
            return True
        self.log.info("waiting for %s (logical date %s) to finish", previous.run_id, previous.logical_date)
        return False


class DayStepOperator(BaseOperator):
    """One step of the daily monitoring (a :class:`churnguard.steps.Step`) for the run's day.

    The step runs holding the DAG run's lease of the date (taken by its first step, released by ``publish`` or
    when a task of the run fails for good), so two runs of one date never interleave: the second waits.
    A batch the step rejects fails the task at once (no retries) with its one-line reason.

    :param step: the step (``churnguard.steps.INGEST``, ``SCORE``, ...); its name is the task id unless one
        is given, its documentation the task's
    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    template_fields = ("ds",)
    step: steps.Step | None = None

    def __init__(self, *, step: steps.Step | None = None, ds: str | None = None, **kwargs):
        step = step or type(self).step
        if step is None:
            raise ValueError(f"{type(self).__name__}: no step given (one of churnguard.steps.STEPS)")
        kwargs.setdefault("task_id", step.name)
        if type(self) is DayStepOperator:
            kwargs.setdefault("doc_md", step.doc)
        super().__init__(**_documented(self, kwargs))
        self.step, self.ds = step, ds

    def execute(self, context) -> dict:
        from churnguard import daily
        from churnguard_airflow.day import day_context

        ctx = day_context(context, self.ds)
        self.record_links(ctx, None)
        ctx.claim()  # the run's lease of the date: a run of the same date elsewhere is waited for
        try:
            result = self.step(ctx)
        except daily.BatchRejected as exc:
            raise AirflowFailException(str(exc)) from None
        self.record_links(ctx, result)
        return result.to_json()

    def record_links(self, ctx, result: StepResult | None) -> None:
        """Extra links of the step: called before the work (``result`` None, so a failed task still shows
        what it was writing) and after it."""


class ValidateBatchOperator(DayStepOperator):
    """Validate the day's staged batch with the Great Expectations suite of the pinned champion's profile.

    Error-level failures quarantine the batch, raise an alert and fail the task (nothing downstream runs);
    warnings pass through.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    step = steps.VALIDATE
    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#fdebd0"

    def record_links(self, ctx, result: StepResult | None) -> None:
        if result is None:
            record_link(self, ValidationReportLink(), report_url(ctx.ds, "validation.html"))


class DriftReportOperator(DayStepOperator):
    """Drift of the day's batch and scores against the pinned champion's reference profile (JSON + HTML).

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    step = steps.DRIFT
    operator_extra_links = (DriftReportLink(),)
    ui_color = "#d6eaf8"

    def record_links(self, ctx, result: StepResult | None) -> None:
        if result is not None:
            record_link(self, DriftReportLink(), report_url(ctx.ds, "drift.html"))


class RetrainChallengerOperator(DayStepOperator):
    """Train on recent labelled days, validate on the latest matured ones, register as ``challenger``.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    step = steps.RETRAIN
    operator_extra_links = (MLflowRunLink(), ModelVersionLink())
    ui_color = "#e8daef"

    def record_links(self, ctx, result: StepResult | None) -> None:
        if result and result.run_id:
            record_link(self, MLflowRunLink(), run_url(ctx.registry.configure(), result.run_id))
        if result and result.version:
            record_link(self, ModelVersionLink(), model_version_url(result.version))


class PromoteModelOperator(DayStepOperator):
    """Promote the challenger when it has proven itself (or the champion failed); aliases move atomically.

    Ends **skipped** on a day that promotes nothing (its log says "Skipping task." with the reason), so in the
    grid and graph only a promotion day's task is green. A task downstream that must run either way needs a trigger
    rule that accepts a skip, e.g. ``none_failed``.

    :param ds: the batch date (templated; default: the run's ``batch_date`` Param, else its logical date)
    """

    step = steps.PROMOTE
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#d5f5e3"

    def record_links(self, ctx, result: StepResult | None) -> None:
        if result and result.promoted:
            record_link(self, ModelVersionLink(), model_version_url(result.version))

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        result = super().execute(context)  # recorded for publish first, promoted or not
        if not result["promoted"]:
            # A skip is the one mark a task can set on itself: Airflow 3.3's task SDK cannot write a run's or
            # task instance's note.
            raise AirflowSkipException(f"no promotion: {result.get('reason') or 'nothing to promote'}")
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
        from churnguard.registry import ModelRegistry
        from churnguard.store import open_store

        day = (context.get("logical_date") or datetime.now(UTC)).date().isoformat()
        name = load_model_config().registered_name
        try:
            result = rollback(open_store(), ModelRegistry(name), day, self.target, self.reason)
        except (LookupError, ValueError, RuntimeError, MlflowException) as exc:
            message = getattr(exc, "message", None) or str(exc)
            raise AirflowFailException(
                f"cannot roll back {name} to {self.target!r}: {message.strip().splitlines()[0]}"
            ) from None
        record_link(self, ModelVersionLink(), model_version_url(result["version"]))
        return result
