"""Who calls the churnguard app, and what Airflow lets them do: the app's routes are no routes of Airflow's own
API, so each one asks Airflow's security module, as Airflow's routes do.

- :func:`airflow_user`: Airflow's ``get_user``: the bearer token if one is sent, else the UI's ``_token``
  cookie; 401 without, 403 with an invalid token;
- :func:`dag_access`: a dependency that wants ``requires_access_dag(method, access_entity)`` on
  ``churn_daily_monitoring`` (the DAG that writes what the app shows); 403 if not allowed.

Airflow's security module is imported inside the calls, not at the top: every task process loads the plugin, and
that import would pull the API server's stack (~235 modules, ~0.2 s) into each of them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

MONITORING_DAG_ID = "churn_daily_monitoring"

# The bearer scheme Airflow's get_user reads, built from FastAPI alone.
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


async def airflow_user(request: Request, bearer: BearerDep) -> Any:
    """The Airflow user of the request (FastAPI resolves it once per request, however many checks want it)."""
    from airflow.api_fastapi.core_api.security import get_user

    return await get_user(request, _oauth_token=None, bearer_credentials=bearer)


AirflowUser = Annotated[Any, Depends(airflow_user)]


def dag_access(method: str, access_entity: str | None = None):
    """A dependency: the user may ``method`` (``GET``, ``PUT``…) the ``access_entity`` (a ``DagAccessEntity``
    name, e.g. ``RUN``; None: the DAG itself) of ``churn_daily_monitoring``."""

    def check(request: Request, user: AirflowUser) -> None:
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
        from airflow.api_fastapi.core_api.security import requires_access_dag

        entity = DagAccessEntity[access_entity] if access_entity else None
        requires_access_dag(method, entity, param_dag_id=MONITORING_DAG_ID)(request, user)

    check.__name__ = f"dag_access_{method.lower()}_{(access_entity or 'dag').lower()}"
    return check
