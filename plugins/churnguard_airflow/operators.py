"""Operators for the churnguard steps users reuse in their own DAGs. Each is a thin shell over
:mod:`churnguard.daily`: work happens in ``execute`` (nothing heavy at parse time), inputs are templated
so they can be XComArgs, and the result is a small JSON-able dict."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from churnguard_airflow.links import (
    DriftReportLink,
    MLflowRunLink,
    ModelVersionLink,
    ValidationReportLink,
    model_version_url,
    push_link,
    report_url,
    run_url,
)


class ValidateBatchOperator(BaseOperator):
    """Validate the day's landing batch with the Great Expectations suite of the champion's profile.

    Error-level failures quarantine the batch, raise an alert and fail the task (nothing downstream runs);
    warnings pass through.
    """

    template_fields = ("ds",)
    operator_extra_links = (ValidationReportLink(),)
    ui_color = "#fdebd0"

    def __init__(self, *, ds: Any, **kwargs):
        super().__init__(**kwargs)
        self.ds = ds

    def execute(self, context) -> dict:
        from churnguard import daily

        push_link(context, ValidationReportLink(), report_url(self.ds, "validation.json"))
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
        super().__init__(**kwargs)
        self.ds, self.overrides = ds, overrides

    def execute(self, context) -> dict:
        from churnguard import daily

        result = daily.drift(self.ds, self.overrides or {})
        push_link(context, DriftReportLink(), report_url(self.ds, "drift.html"))
        return result


class RetrainChallengerOperator(BaseOperator):
    """Train on recent labelled days, validate on the latest matured ones, register as ``challenger``."""

    template_fields = ("ds", "decision", "run_params")
    operator_extra_links = (MLflowRunLink(), ModelVersionLink())
    ui_color = "#e8daef"

    def __init__(self, *, ds: Any, decision: Any, run_params: Any, **kwargs):
        super().__init__(**kwargs)
        self.ds, self.decision, self.run_params = ds, decision, run_params

    def execute(self, context) -> dict:
        from churnguard import daily, registry
        from churnguard.config import load_model_config

        result = daily.retrain(self.ds, self.decision, self.run_params)
        if result.get("run_id"):
            push_link(context, MLflowRunLink(), run_url(registry.configure_mlflow(), result["run_id"]))
        if result.get("version"):
            push_link(context, ModelVersionLink(),
                      model_version_url(load_model_config().registered_name, result["version"]))
        return result


class PromoteModelOperator(BaseOperator):
    """Promote the challenger when it has proven itself (or the champion failed); aliases move atomically."""

    template_fields = ("ds", "performance", "run_params")
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#d5f5e3"

    def __init__(self, *, ds: Any, performance: Any, run_params: Any = None, retrain_task_id: str = "retrain",
                 **kwargs):
        super().__init__(**kwargs)
        self.ds, self.performance, self.run_params = ds, performance, run_params
        self.retrain_task_id = retrain_task_id

    def execute(self, context) -> dict:
        from churnguard import daily
        from churnguard.config import load_model_config

        # The retrain task may have been skipped by the branch: then there is no result to pull.
        retrained = context["ti"].xcom_pull(task_ids=self.retrain_task_id)
        result = daily.promote(self.ds, self.performance, retrained, self.run_params or {})
        if result.get("promoted"):
            push_link(context, ModelVersionLink(),
                      model_version_url(load_model_config().registered_name, result["version"]))
        return result
