"""Registers churnguard's operator extra links and its reports web app with Airflow."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from churnguard_airflow.links import DriftReportLink, MLflowRunLink, ModelVersionLink, ValidationReportLink
from churnguard_airflow.reports_app import app


class ChurnguardPlugin(AirflowPlugin):
    name = "churnguard"
    operator_extra_links = [DriftReportLink(), ValidationReportLink(), MLflowRunLink(), ModelVersionLink()]
    fastapi_apps = [{"app": app, "url_prefix": "/churnguard", "name": "churnguard reports"}]
