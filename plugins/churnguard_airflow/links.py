"""Operator extra links: buttons on a task instance that open its drift report, MLflow run or model
version. Each operator pushes the finished URL to XCom under the link's key while it runs; Airflow 3's
API server serialises a link as (name, XCom key) and reads that XCom to draw the button."""

from __future__ import annotations

import os

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom


def mlflow_ui_url() -> str:
    return os.environ.get("CHURNGUARD_MLFLOW_UI_URL", "http://127.0.0.1:5000").rstrip("/")


class _XComLink(BaseOperatorLink):
    def get_link(self, operator, *, ti_key) -> str:
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""


class DriftReportLink(_XComLink):
    name = "Drift report"


class ValidationReportLink(_XComLink):
    name = "Validation results"


class MLflowRunLink(_XComLink):
    name = "MLflow run"


class ModelVersionLink(_XComLink):
    name = "MLflow model version"


def report_url(ds: str, name: str) -> str:
    """The report as served by the churnguard web app mounted in the API server."""
    return f"/churnguard/reports/{ds}/{name}"


def run_url(experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def model_version_url(name: str, version: int) -> str:
    return f"{mlflow_ui_url()}/#/models/{name}/versions/{version}"


def push_link(context, link: BaseOperatorLink, url: str) -> None:
    context["ti"].xcom_push(key=link.xcom_key, value=url)
