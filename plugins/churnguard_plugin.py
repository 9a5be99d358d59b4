"""Registers churnguard's operator extra links, its daily schedule and its reports web app with Airflow."""

from __future__ import annotations

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

from churnguard_airflow.links import DriftReportLink, MLflowRunLink, ModelVersionLink, ValidationReportLink
from churnguard_airflow.reports_app import app
from churnguard_airflow.timetables import DailyBatches


class QuietTaskWarnings:
    """Airflow parses a task's DAG file inside ``warnings.catch_warnings()``, which drops the filters our
    package installs on import; installed again when the task starts, they keep third-party deprecation
    noise (over a thousand lines a task) out of the task logs."""

    @hookimpl
    def on_task_instance_running(self, previous_state, task_instance):
        from churnguard.quiet import silence_third_party_warnings

        silence_third_party_warnings()


class ChurnguardPlugin(AirflowPlugin):
    name = "churnguard"
    operator_extra_links = [DriftReportLink(), ValidationReportLink(), MLflowRunLink(), ModelVersionLink()]
    timetables = [DailyBatches]
    listeners = [QuietTaskWarnings()]
    fastapi_apps = [{"app": app, "url_prefix": "/churnguard", "name": "churnguard reports"}]
