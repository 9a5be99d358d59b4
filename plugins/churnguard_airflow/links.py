"""Operator extra links: buttons on a task instance that open its drift report, validation page, MLflow run
or model version. An operator records each URL on itself while it runs (:func:`record_link`); when the task
finishes, Airflow 3's task runner asks every extra link for its URL and stores it in XCom under the
link's key, which the API server reads to draw the button."""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink

from churnguard.settings import get_settings


def mlflow_ui_url() -> str:
    return get_settings().mlflow_ui_url.rstrip("/")


class _RecordedLink(BaseOperatorLink):
    def get_link(self, operator, *, ti_key) -> str:
        return getattr(operator, "recorded_links", {}).get(self.name, "")


class DriftReportLink(_RecordedLink):
    name = "Drift report"


class ValidationReportLink(_RecordedLink):
    name = "Validation results"


class MLflowRunLink(_RecordedLink):
    name = "MLflow run"


class ModelVersionLink(_RecordedLink):
    name = "MLflow model version"


def report_url(ds: str, name: str) -> str:
    """The report as served by the churnguard web app mounted in the API server."""
    return f"/churnguard/reports/{ds}/{name}"


def run_url(experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(version: int) -> str:
    """A version of the churn model (``model.yaml``'s ``registered_name``) in the MLflow UI."""
    from churnguard.config import load_model_config

    return f"{mlflow_ui_url()}/#/models/{load_model_config().registered_name}/versions/{version}"


def record_link(operator, link: BaseOperatorLink, url: str) -> None:
    operator.recorded_links = {**getattr(operator, "recorded_links", {}), link.name: url}
