"""A small FastAPI app mounted in the Airflow API server at ``/churnguard``: serves a day's reports
(drift HTML, validation and summary JSON) and their shared assets (plotly.js) from the data root, wherever
it is (file:// or S3), the day's validation page (``validation.html``, rendered from its ``validation.json``
by :func:`churnguard.validation.html.render_page`), and the Model Health pages and their JSON under
``/churnguard/health`` (:mod:`churnguard_airflow.health_app`).

Airflow does not authenticate the routes of a plugin's app, so every route here depends on
:func:`read_access`: an Airflow user (JWT as ``Authorization: Bearer`` or the UI's ``_token`` cookie) allowed
to read the DAG that writes the reports. Without credentials Airflow answers 401, with a bad token 403.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import HTMLResponse

from churnguard_airflow.access import airflow_user
from churnguard_airflow.health_app import router as health_router

log = logging.getLogger(__name__)

REPORTS_DAG_ID = "churn_daily_monitoring"
REPORTS = {"drift.html", "drift.json", "validation.json", "summary.json"}  # served as stored
PAGES = {"validation.html"}  # rendered from the day's JSON
DS = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ASSET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.js$")
MEDIA_TYPES = {"html": "text/html", "json": "application/json", "js": "text/javascript"}  # text/*: utf-8 added


def read_access(request: Request, user: Annotated[Any, Depends(airflow_user)]) -> None:
    """Airflow's ``requires_access_dag("GET")`` on the DAG that writes the reports; 403 if not allowed."""
    from airflow.api_fastapi.core_api.security import requires_access_dag

    requires_access_dag("GET", param_dag_id=REPORTS_DAG_ID)(request, user)


# No /docs or /openapi.json: they would be the only routes without read_access (the health JSON's OpenAPI is
# served at /health/api/openapi.json, behind read_access like every route).
app = FastAPI(
    title="churnguard reports",
    dependencies=[Depends(read_access)],
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)
app.include_router(health_router)


@app.get("/reports/_assets/{name}")
def asset(name: str) -> Response:
    """A file shared by every day's reports, e.g. the plotly.js a ``drift.html`` loads."""
    if not ASSET.match(name):
        raise HTTPException(404, f"no asset '{name}' (assets are .js files)")
    from churnguard.dataroot import DataRoot

    return _serve(DataRoot.asset_key(name), cache=True)


@app.get("/reports/{ds}/validation.html", response_class=HTMLResponse)
def validation_page(ds: str) -> HTMLResponse:
    """The day's validation page: churnguard's PASS / WARN / FAIL overall and per expectation, from the day's
    ``validation.json`` (the "Validation results" link of the ``validate`` task and the Model Health run tab)."""
    _check_report(ds, "validation.html")
    from churnguard.dataroot import DataRoot
    from churnguard.validation.html import render_page

    key = DataRoot.report_key(ds, "validation.json")
    try:
        report = json.loads(_read(key))
    except ValueError:
        raise HTTPException(502, f"{key} is not valid JSON") from None
    links = {"validation.json (raw)": "validation.json", "Model Health: this day": f"../../health/run/{ds}"}
    return HTMLResponse(render_page(report, ds, links))


@app.get("/reports/{ds}/{name}")
def report(ds: str, name: str) -> Response:
    """One of a day's reports, as the daily run wrote it."""
    _check_report(ds, name)
    from churnguard.dataroot import DataRoot

    return _serve(DataRoot.report_key(ds, name))


def _check_report(ds: str, name: str) -> None:
    if not DS.match(ds) or name not in REPORTS | PAGES:
        raise HTTPException(404, f"no report '{name}' for '{ds}' (reports: {', '.join(sorted(REPORTS | PAGES))})")


def _serve(key: str, cache: bool = False) -> Response:
    """The object at ``key`` of the data root as it is stored."""
    # An asset's name carries its version, so the browser may keep it instead of re-fetching megabytes.
    headers = {"Cache-Control": "private, max-age=31536000, immutable"} if cache else None
    return Response(_read(key), media_type=MEDIA_TYPES[key.rpartition(".")[2]], headers=headers)


def _read(key: str) -> bytes:
    """The object at ``key`` of the data root: 404 if absent, 502 if storage fails."""
    from churnguard.dataroot import DataRoot

    try:
        return DataRoot.open().storage.read_bytes(key)
    except FileNotFoundError:
        raise HTTPException(404, f"{key} does not exist (yet)") from None
    except Exception as exc:  # a storage failure must not look like a missing report
        log.exception("reading %s failed", key)
        raise HTTPException(502, f"reading {key} from the data root failed: {type(exc).__name__}") from None
