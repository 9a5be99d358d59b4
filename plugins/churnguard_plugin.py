"""Registers churnguard's operator extra links, its daily schedule, its reports web app and the Model Health
views (in the UI's Browse menu and as a tab of every DAG run) with Airflow."""

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


# Model Health in Airflow's own UI: each entry is an iframe of a page the app above serves (same origin, so the
# UI's _token cookie authenticates it). The UI substitutes {DAG_ID} and {RUN_ID} (also {TASK_ID}, {MAP_INDEX})
# in the href of a view whose destination is not "nav"; a run's date is no placeholder, so the page resolves
# the run id to its batch date. Airflow shows a dag_run view on the runs of every DAG: the page says so for
# another DAG's run. Every key is one of ExternalViewResponse's: an invalid entry drops the whole plugin from
# GET /api/v2/plugins, which the UI builds its menus from.
HEALTH_VIEWS = [
    {
        "name": "Model Health",
        "href": "/churnguard/health/overview",
        "url_route": "churnguard-model-health",
        "category": "browse",
        "destination": "nav",
    },
    {
        "name": "Model Health",
        "href": "/churnguard/health/dag_run/{DAG_ID}/{RUN_ID}",
        "url_route": "churnguard-model-health-run",
        "destination": "dag_run",
    },
]


class ChurnguardPlugin(AirflowPlugin):
    name = "churnguard"
    operator_extra_links = [DriftReportLink(), ValidationReportLink(), MLflowRunLink(), ModelVersionLink()]
    timetables = [DailyBatches]
    listeners = [QuietTaskWarnings()]
    fastapi_apps = [{"app": app, "url_prefix": "/churnguard", "name": "churnguard reports"}]
    external_views = HEALTH_VIEWS
