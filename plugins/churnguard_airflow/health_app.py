"""Model Health: JSON endpoints and pages of :mod:`churnguard.health`, included in the reports app at
``/churnguard/health`` (so every route depends on the app's :func:`~churnguard_airflow.reports_app.read_access`:
an Airflow user allowed to read ``churn_daily_monitoring``).

==============================================  ===========================================================
route (under ``/churnguard/health``)             what
==============================================  ===========================================================
``/overview`` ``/drift`` ``/performance``        the pages (one HTML template, Plotly charts drawn in the
``/models`` ``/alerts``                          browser from the JSON endpoints, a nav bar between them)
``/run/{ds}``                                    one day: summary, validation result, drift report
``/dag_run/{dag_id}/{run_id}``                   the same for an Airflow run (the DAG-run tab): the run's
                                                 ``batch_date`` Param, else its logical date
``/api/<chart>``                                 the JSON of each chart (``start``, ``end``, ``ds``, ``feature``)
``POST /api/alerts/episodes/{id}/acknowledge``  acknowledge an alert episode (who, when; the first one stays):
                                                 wants ``PUT`` on the runs of ``churn_daily_monitoring``
``/api/openapi.json``                            the OpenAPI of these endpoints (authenticated like the rest)
``/static/{name}``                               the pages' script and style
==============================================  ===========================================================

The pages' actions ("Retrain now" on Overview, "Roll back to vN" on Models) are no routes here: the page calls
Airflow's own REST API (``POST /api/v2/dags/{dag_id}/dagRuns``, same origin, authenticated by the UI's HttpOnly
``_token`` cookie that ``get_user`` of Airflow's ``core_api/security.py`` falls back to), so Airflow's permissions
decide who may trigger ``churn_daily_monitoring`` (``force_retrain``) and ``churn_model_rollback`` (a reason).

Acknowledging is a write of churnguard's own (the monitoring store's ``alert_episodes``), so it is a route here:
besides reading the DAG (every route) it wants what Airflow asks to set a run's note or state (``PUT`` on
``DagAccessEntity.RUN`` of ``churn_daily_monitoring``, :func:`~churnguard_airflow.access.dag_access`): Airflow's
``User`` role and above, not ``Viewer``. The acknowledger is the Airflow user's name.

Nothing heavy is imported at module level: every task process loads the plugin, and the library (pandas,
SQLAlchemy, the store) is imported when a route is first called, inside the API server.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse

from churnguard_airflow.access import AirflowUser, dag_access

HERE = Path(__file__).resolve().parent / "health"
PAGES = {"overview": "Overview", "drift": "Drift", "performance": "Performance", "models": "Models", "alerts": "Alerts"}
STATIC = {"health.js": "text/javascript", "health.css": "text/css"}
MONITORING_DAG_ID = "churn_daily_monitoring"
DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
SAFE = re.compile(r"^[A-Za-z0-9_.:+~-]+$")

Day = Annotated[str | None, Query(pattern=DAY_PATTERN, description="a day, YYYY-MM-DD")]
Start = Annotated[str | None, Query(pattern=DAY_PATTERN, description="first day of the series (YYYY-MM-DD)")]
End = Annotated[str | None, Query(pattern=DAY_PATTERN, description="last day of the series (YYYY-MM-DD)")]
DsPath = Annotated[str, PathParam(pattern=DAY_PATTERN, description="the batch date, YYYY-MM-DD")]

router = APIRouter(prefix="/health")
API_TAG = "Model Health JSON"


def _call(fn, *args, **kwargs) -> Any:
    """``fn(*args, **kwargs)``: a day that is no date (e.g. 2026-02-30) is a 422 with one line."""
    try:
        return fn(*args, **kwargs)
    except ValueError as exc:
        raise HTTPException(422, f"invalid day: {exc}") from None


def _json(data: Any) -> JSONResponse:
    return JSONResponse(data)


# -- JSON -------------------------------------------------------------------------------------------------
@router.get("/api/overview", tags=[API_TAG], summary="Overview: versions, decision, failure risk, open alerts")
def api_overview(ds: Day = None) -> JSONResponse:
    """The day ``ds`` (default: the last monitored day): champion and challenger versions, the decision and
    its reasons, drift headline, failure risk with its drivers, alerts of the last 7 days, the last promotion."""
    from churnguard import health

    return _json(_call(health.overview, None, ds))


@router.get("/api/story", tags=[API_TAG], summary="The story: failure risk, champion AUC and milestones per day")
def api_story() -> JSONResponse:
    """Every monitored day's failure risk (``risk_warn``: the alarm threshold) and the champion's AUC on its
    customers once labelled; the first sustained drift, the risk alarm, the labels' confirmation (``failed``: the
    day they measured), the lead between them, and promotions and rollbacks (``moves``)."""
    from churnguard import health

    return _json(health.story())


@router.get("/api/drift/heatmap", tags=[API_TAG], summary="PSI per feature and day (heatmap)")
def api_drift_heatmap(start: Start = None, end: End = None) -> JSONResponse:
    """``psi[i][j]``: PSI of ``features[i]`` on ``days[j]``; ``drifted`` the same shape; most drifted first."""
    from churnguard import health

    return _json(_call(health.drift_heatmap, None, start, end))


@router.get("/api/drift/scores", tags=[API_TAG], summary="Prediction-score distribution over time")
def api_drift_scores(
    start: Start = None,
    end: End = None,
    max_days: Annotated[int, Query(ge=0, le=366, description="days of histograms")] = 60,
) -> JSONResponse:
    """The prediction PSI of every monitored day, and the score histogram (shares per bin, with the
    reference's) of the last ``max_days`` days from their drift reports."""
    from churnguard import health

    return _json(_call(health.score_distribution, None, None, start, end, max_days))


@router.get("/api/drift/feature", tags=[API_TAG], summary="Reference vs current distribution of a feature")
def api_drift_feature(
    ds: Annotated[str, Query(pattern=DAY_PATTERN, description="the day, YYYY-MM-DD")],
    feature: Annotated[str | None, Query(max_length=128, description="default: most drifted")] = None,
) -> JSONResponse:
    """Bins (numeric) or categories of ``feature`` on day ``ds``: counts and shares, reference and current."""
    from churnguard import health

    return _json(_call(health.feature_distribution, ds, feature))


@router.get("/api/performance", tags=[API_TAG], summary="AUC, F1, precision, recall over time, per role")
def api_performance(start: Start = None, end: End = None) -> JSONResponse:
    """Per role and observed day: AUC with its lower bound, F1, precision and recall with 95 % intervals; the
    monitored days whose labels have not arrived (the label-delay band)."""
    from churnguard import health

    return _json(_call(health.performance, None, start, end))


@router.get("/api/models", tags=[API_TAG], summary="Model versions, metrics, windows, SHAP, promotions")
def api_models() -> JSONResponse:
    """Every version with its events, champion/challenger days, registry tags (trigger, training window,
    reference metrics), run metrics and SHAP importance where recorded; promotion and rollback history."""
    from churnguard import health

    return _json(health.models())


@router.get("/api/alerts", tags=[API_TAG], summary="Alert history with severities")
def api_alerts(
    start: Start = None, end: End = None, severity: Annotated[str | None, Query(max_length=16)] = None
) -> JSONResponse:
    """Alerts in range, newest and most severe first, with counts per severity and kind."""
    from churnguard import health

    return _json(_call(health.alerts, None, start, end, severity))


@router.post(
    "/api/alerts/episodes/{episode_id}/acknowledge",
    tags=[API_TAG],
    summary="Acknowledge an alert episode",
    dependencies=[Depends(dag_access("PUT", "RUN"))],
)
def api_acknowledge(
    episode_id: Annotated[int, PathParam(ge=1, description="the episode's id")], user: AirflowUser
) -> JSONResponse:
    """Record that the calling Airflow user acknowledged the episode now; acknowledging it again keeps the
    first acknowledgement. While it stays open the episode notifies nothing more; 404 for no such episode."""
    from churnguard import alerts, health
    from churnguard.store import open_store

    stored = alerts.acknowledge(open_store(), episode_id, user.get_name())
    if stored is None:
        raise HTTPException(404, f"no alert episode {episode_id}")
    return _json(health.episode(stored))


@router.get("/api/run/{ds}", tags=[API_TAG], summary="One day: its run, summary, validation, drift report")
def api_run(ds: DsPath) -> JSONResponse:
    """The day's daily run row, summary.json, validation result, drift headline, failure risk, alerts, model
    events and which reports exist."""
    from churnguard import health

    return _json(_call(health.run_day, ds))


@router.get("/api/dag_run/{dag_id}/{run_id}", tags=[API_TAG], summary="The day an Airflow DAG run processed")
def api_dag_run(dag_id: str, run_id: str) -> JSONResponse:
    """``{dag_id, run_id, ds, note}``: the run's ``batch_date`` Param, else its logical date; ``ds`` is null
    (with a note) for another DAG, an unknown run or a run without either."""
    return _json(resolve_dag_run(dag_id, run_id))


@router.get("/api/openapi.json", include_in_schema=False)
def api_openapi(request: Request) -> JSONResponse:
    """The OpenAPI of the Model Health JSON endpoints (behind the same login as everything else)."""
    from fastapi.openapi.utils import get_openapi

    routes = [
        r
        for r in router.routes
        if getattr(r, "path", "").startswith("/health/api/") and getattr(r, "include_in_schema", False)
    ]
    doc = get_openapi(
        title="churnguard Model Health",
        version="1",
        routes=routes,
        description="JSON behind the Model Health pages. Every route needs an Airflow user "
        "(bearer token or the UI's _token cookie) allowed to read churn_daily_monitoring; "
        "acknowledging wants the permission to edit its runs.",
    )
    doc["servers"] = [{"url": request.scope.get("root_path", "") or "/"}]
    return _json(doc)


def resolve_dag_run(dag_id: str, run_id: str) -> dict:
    """The batch date an Airflow run processes, read from Airflow's metadata DB (the API server's session)."""
    out = {"dag_id": dag_id, "run_id": run_id, "ds": None, "note": None}
    if dag_id != MONITORING_DAG_ID:
        out["note"] = f"Model Health shows runs of {MONITORING_DAG_ID}; {dag_id} is another DAG"
        return out
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from churnguard.daily import resolve_ds

    with create_session() as session:
        found = session.execute(
            select(DagRun.logical_date, DagRun.conf).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).first()
    if found is None:
        out["note"] = f"no run {run_id} of {dag_id}"
        return out
    logical_date, conf = found
    try:
        out["ds"] = resolve_ds((conf or {}).get("batch_date"), logical_date)
    except ValueError as exc:
        out["note"] = str(exc)
    return out


# -- pages ------------------------------------------------------------------------------------------------
def _page(page: str, title: str, depth: int, data: dict | None = None) -> HTMLResponse:
    """The shared template for ``page``; ``depth``: path segments of the page below ``/churnguard/health/``
    (``overview`` 1, ``run/{ds}`` 2): its links are relative, so the pages work under any base URL."""
    from churnguard.dataroot import DataRoot
    from churnguard.drift.html import PLOTLY_FILE

    _ensure_plotly()
    base = "../" * depth  # to /churnguard/
    nav = "".join(
        f'<a href="{base}health/{p}"{" class=active" if p == page else ""}>{label}</a>' for p, label in PAGES.items()
    )
    template = (HERE / "page.html").read_text(encoding="utf-8")
    body = (
        template.replace("{{title}}", html.escape(title))
        .replace("{{nav}}", nav)
        .replace("{{base}}", base)
        .replace("{{page}}", page)
        .replace("{{plotly}}", base + DataRoot.asset_key(PLOTLY_FILE))  # served at its key
        .replace("{{data}}", html.escape(json.dumps(data or {}), quote=True))
    )
    return HTMLResponse(body)


_plotly_ready: set[str] = set()


def _ensure_plotly() -> None:
    """The shared plotly.js in the data root (the reports app serves it), written once if a fresh install has
    not run a day yet."""
    from churnguard.dataroot import DataRoot
    from churnguard.drift.html import PLOTLY_FILE, plotly_asset_bytes

    root = DataRoot.open()
    if root.url not in _plotly_ready:
        root.ensure_asset(PLOTLY_FILE, plotly_asset_bytes)
        _plotly_ready.add(root.url)


def _page_route(page: str, label: str):
    def view() -> HTMLResponse:
        return _page(page, f"Model Health · {label}", 1)

    view.__name__ = f"page_{page}"
    view.__doc__ = f"The {label} page."
    router.add_api_route(f"/{page}", view, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)


for _name, _label in PAGES.items():
    _page_route(_name, _label)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index() -> HTMLResponse:
    return _page("overview", "Model Health · Overview", 1)


@router.get("/run/{ds}", response_class=HTMLResponse, include_in_schema=False)
def run_page(ds: DsPath) -> HTMLResponse:
    """One day's page: summary, validation result, drift report (linked and embedded)."""
    return _page("run", f"Model Health · {ds}", 2, {"ds": ds})


@router.get("/dag_run/{dag_id}/{run_id}", response_class=HTMLResponse, include_in_schema=False)
def dag_run_page(dag_id: str, run_id: str) -> HTMLResponse:
    """The DAG-run tab: the day the run processed, as :func:`run_page` shows it."""
    resolved = resolve_dag_run(dag_id, run_id)
    title = f"Model Health · {resolved['ds'] or run_id}"
    return _page("run", title, 3, resolved)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in STATIC:
        raise HTTPException(404, f"no static file '{name}'")
    return Response((HERE / name).read_bytes(), media_type=STATIC[name])
