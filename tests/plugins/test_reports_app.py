"""The reports app inside a real `airflow api-server` (SimpleAuthManager, a known viewer and editor): every route
wants an Airflow user, by bearer token or by the UI's `_token` cookie; reports and plotly.js come from the data
root. The Model Health pages and JSON (under /churnguard/health), acknowledging an alert episode (the editor may,
the viewer may not), and the plugin's external views, as the UI reads them from GET /api/v2/plugins."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, urljoin

import airflow_stack
import httpx
import pytest

from churnguard.dataroot import DataRoot
from churnguard.settings import get_settings
from churnguard.storage import open_storage
from tests.conftest import ROOT, running_api_server, warn_level_validation

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow_stack")]

DAY = "2026-09-01"
SUMMARY = {"ds": DAY, "decision": "healthy", "drift": {"severity": "stable"}}
EMPTY_REPORT = {
    "features": {},
    "severity": "stable",
    "n_drifted": 0,
    "n_features": 0,
    "weighted_psi": None,
    "n_rows": 0,
    "profile_version": "test",
}
HEALTH_DAY = "2026-03-04"  # the last day tests.test_health.fill writes
HEALTH_PAGES = [
    "/health/",
    "/health/overview",
    "/health/drift",
    "/health/performance",
    "/health/models",
    "/health/alerts",
    f"/health/run/{HEALTH_DAY}",
    "/health/dag_run/churn_daily_monitoring/no-such-run",
    "/health/static/health.js",
    "/health/static/health.css",
]
HEALTH_API = [
    "/health/api/overview",
    "/health/api/story",
    "/health/api/drift/heatmap",
    "/health/api/drift/scores",
    f"/health/api/drift/feature?ds={HEALTH_DAY}",
    "/health/api/performance",
    "/health/api/models",
    "/health/api/alerts",
    f"/health/api/run/{HEALTH_DAY}",
    "/health/api/dag_run/churn_daily_monitoring/no-such-run",
    "/health/api/openapi.json",
]
HEALTH_ROUTES = HEALTH_PAGES + HEALTH_API
ACKNOWLEDGE = "/health/api/alerts/episodes/{episode_id}/acknowledge"
ROUTES = [
    f"/reports/{DAY}/summary.json",
    f"/reports/{DAY}/drift.html",
    f"/reports/{DAY}/validation.html",
    "/reports/2031-01-01/drift.json",
    f"/reports/{DAY}/not-a-report.json",
    "/reports/_assets/plotly-0.0.0.min.js",
    *HEALTH_ROUTES,
]


@pytest.fixture(scope="module")
def api_server(airflow_env, tmp_path_factory) -> dict:
    """`airflow api-server` on a free port, its own churnguard home, users with known passwords: a viewer (may
    read) and an editor (role user: may also edit DAG runs)."""
    home = tmp_path_factory.mktemp("reports-home")
    passwords = {"viewer": secrets.token_urlsafe(12), "editor": secrets.token_urlsafe(12)}
    (home / "passwords.json").write_text(json.dumps(passwords))
    env = {
        **airflow_env,
        "CHURNGUARD_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "viewer:viewer,editor:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }
    with running_api_server(env, home) as url:
        yield {"url": url, "home": home, "user": "viewer", "password": passwords["viewer"], "passwords": passwords}


def user_token(api_server, user: str) -> str:
    """A JWT of ``user`` from `POST /auth/token`, as a script would get one."""
    body = {"username": user, "password": api_server["passwords"][user]}
    response = httpx.post(f"{api_server['url']}/auth/token", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


@pytest.fixture(scope="module")
def token(api_server) -> str:
    """The viewer's JWT."""
    return user_token(api_server, "viewer")


@pytest.fixture
def served_storage(api_server, monkeypatch):
    """The data root the server reads, made this test's: what the test writes, the server serves."""
    monkeypatch.setenv("CHURNGUARD_HOME", str(api_server["home"]))
    get_settings.cache_clear()
    return open_storage()


@pytest.fixture
def client(api_server):
    with httpx.Client(base_url=f"{api_server['url']}/churnguard", timeout=30) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def plotly_asset_url() -> str:
    from churnguard.drift.html import PLOTLY_FILE

    return f"/reports/_assets/{PLOTLY_FILE}"


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_answers_401_without_credentials(client, served_storage, path):
    served_storage.write_bytes(f"reports/ds={DAY}/summary.json", json.dumps(SUMMARY).encode())
    response = client.get(path)
    # 401 even where the report does not exist: nothing about the data root is told before login
    assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}


def test_a_forged_token_is_refused_with_403_by_header_or_cookie(client):
    path = f"/reports/{DAY}/summary.json"
    assert client.get(path, headers=bearer("not-a-jwt")).status_code == 403
    response = client.get(path, cookies={"_token": "not-a-jwt"})
    assert response.status_code == 403 and response.json() == {"detail": "Invalid JWT token"}


def test_the_app_publishes_no_unauthenticated_docs(client, token):
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path, headers=bearer(token)).status_code == 404, path


def test_a_bearer_token_from_auth_token_reads_a_days_summary(client, served_storage, token):
    body = json.dumps(SUMMARY, indent=1).encode()
    served_storage.write_bytes(f"reports/ds={DAY}/summary.json", body)
    response = client.get(f"/reports/{DAY}/summary.json", headers=bearer(token))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.content == body


def test_the_ui_token_cookie_reads_a_days_summary(client, served_storage, token):
    body = json.dumps(SUMMARY).encode()
    served_storage.write_bytes(f"reports/ds={DAY}/summary.json", body)
    response = client.get(f"/reports/{DAY}/summary.json", cookies={"_token": token})
    assert response.status_code == 200 and response.content == body


def test_a_drift_page_loads_plotly_from_the_asset_route(api_server, client, served_storage, token):
    from churnguard.drift.html import PLOTLY_FILE, plotly_asset_bytes, render_html

    DataRoot(served_storage).ensure_asset(PLOTLY_FILE, plotly_asset_bytes)
    page = render_html(EMPTY_REPORT, {"numeric": {}}, plotlyjs=DataRoot.asset_src(PLOTLY_FILE))
    served_storage.write_bytes(f"reports/ds={DAY}/drift.html", page.encode())
    page_url = f"{api_server['url']}/churnguard/reports/{DAY}/drift.html"
    served = client.get(page_url, cookies={"_token": token})
    assert served.status_code == 200 and served.headers["content-type"] == "text/html; charset=utf-8"
    assert served.text == page and len(served.content) < 500_000
    (src,) = re.findall(r'<script charset="utf-8" src="([^"]+)"', served.text)
    script_url = urljoin(page_url, src)
    assert script_url == f"{api_server['url']}/churnguard{plotly_asset_url()}"  # not swallowed by {ds}
    script = client.get(script_url, cookies={"_token": token})
    assert script.status_code == 200 and script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert script.content == plotly_asset_bytes() and "immutable" in script.headers["cache-control"]
    assert client.get(script_url).status_code == 401


def test_the_validation_page_shows_churnguards_warn_rendered_from_the_days_json(
    api_server, client, served_storage, token
):
    served_storage.write_bytes(f"reports/ds={DAY}/validation.json", warn_level_validation(DAY).to_json().encode())

    page = client.get(f"/reports/{DAY}/validation.html", cookies={"_token": token})

    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert f"Validation of {DAY}: <span class='status warn'>WARN</span>" in page.text
    assert (
        "<td><span class='status warn'>WARN</span></td><td>payment_method</td><td>value_set</td><td>warn</td>"
        "<td>3 of 300 rows (1.0%)"
    ) in page.text
    assert f"file:///data/landing/ds={DAY}" in page.text and "1 passed" in page.text
    assert "Failed" not in page.text and "<script" not in page.text and "http" not in page.text  # offline
    links = {href: urljoin(str(page.url), href) for href in re.findall(r'href="([^"]+)"', page.text)}
    assert links == {
        "validation.json": f"{api_server['url']}/churnguard/reports/{DAY}/validation.json",
        f"../../health/run/{DAY}": f"{api_server['url']}/churnguard/health/run/{DAY}",
    }
    assert client.get(links["validation.json"], cookies={"_token": token}).json()["status"] == "warn"
    assert client.get(links[f"../../health/run/{DAY}"], cookies={"_token": token}).status_code == 200
    missing = client.get("/reports/2031-01-01/validation.html", cookies={"_token": token})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "reports/ds=2031-01-01/validation.json does not exist (yet)"


def test_an_unknown_report_day_or_asset_is_404_with_one_line(client, served_storage, token):
    served_storage.write_bytes(f"reports/ds={DAY}/summary.json", json.dumps(SUMMARY).encode())
    expected = {
        f"/reports/{DAY}/not-a-report.json": f"no report 'not-a-report.json' for '{DAY}' (reports: drift.html,",
        "/reports/2031-01-01/summary.json": "reports/ds=2031-01-01/summary.json does not exist (yet)",
        "/reports/_assets/plotly-0.0.0.min.js": "reports/_assets/plotly-0.0.0.min.js does not exist (yet)",
        "/reports/_assets/notes.txt": "no asset 'notes.txt' (assets are .js files)",
    }
    for path, detail in expected.items():
        response = client.get(path, headers=bearer(token))
        assert response.status_code == 404 and response.json()["detail"].startswith(detail), path
        assert "\n" not in response.json()["detail"]


def test_a_storage_error_is_a_502_not_a_404(client, served_storage, token):
    broken = Path(served_storage.root) / "reports/ds=2026-09-03/summary.json"
    broken.mkdir(parents=True)  # reading it raises IsADirectoryError: storage trouble, not a missing report
    response = client.get("/reports/2026-09-03/summary.json", headers=bearer(token))
    assert response.status_code == 502
    assert response.json()["detail"] == (
        "reading reports/ds=2026-09-03/summary.json from the data root failed: IsADirectoryError"
    )


def test_reports_app_imports_without_the_api_server_stack():
    """Every task process loads the plugin: importing the app must not import Airflow's API server."""
    code = (
        "import sys, churnguard_airflow.reports_app; "
        "print(sorted(m for m in sys.modules if m.startswith('airflow.api_fastapi')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "[]"


# -- Model Health ----------------------------------------------------------------------------------------------
@pytest.fixture
def health_store(served_storage):
    """The server's monitoring store with the rows of tests.test_health (four days, two roles, events, alerts)."""
    from churnguard.store import open_store
    from tests.test_health import fill

    store = open_store()
    fill(store)
    return store


@pytest.mark.parametrize("path", HEALTH_ROUTES)
def test_every_health_route_answers_200_with_a_bearer_token(client, health_store, token, path):
    response = client.get(path, headers=bearer(token))
    assert response.status_code == 200, response.text[:500]
    kind = (
        "application/json"
        if "/api/" in path
        else "text/javascript"
        if path.endswith(".js")
        else "text/css"
        if path.endswith(".css")
        else "text/html"
    )
    assert response.headers["content-type"].startswith(kind)


def test_the_plugin_lists_its_model_health_views(api_server, token):
    """What the UI builds its Browse menu and DAG-run tabs from: an invalid entry would drop the plugin here."""
    response = httpx.get(f"{api_server['url']}/api/v2/plugins", headers=bearer(token), timeout=30)
    assert response.status_code == 200
    (plugin,) = [p for p in response.json()["plugins"] if p["name"] == "churnguard"]
    views = {v["url_route"]: v for v in plugin["external_views"]}
    assert views["churnguard-model-health"] | {"icon": None} == {
        "name": "Model Health",
        "href": "/churnguard/health/overview",
        "url_route": "churnguard-model-health",
        "category": "browse",
        "destination": "nav",
        "icon": None,
        "icon_dark_mode": None,
        "nav_top_level": False,
    }
    # what make demo prints as Model Health (scripts/airflow_stack.py)
    assert (airflow_stack.MODEL_HEALTH, airflow_stack.MODEL_HEALTH_IN_UI) == (
        views["churnguard-model-health"]["href"],
        "/plugin/churnguard-model-health",
    )
    run_view = views["churnguard-model-health-run"]
    assert (run_view["destination"], run_view["href"]) == ("dag_run", "/churnguard/health/dag_run/{DAG_ID}/{RUN_ID}")
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/churnguard"]
    errors = httpx.get(f"{api_server['url']}/api/v2/plugins/importErrors", headers=bearer(token), timeout=30)
    assert errors.json()["import_errors"] == []


def test_health_json_has_the_numbers_of_the_rows_written(client, health_store, token):
    get = lambda path: client.get(path, headers=bearer(token)).json()  # noqa: E731
    overview = get("/health/api/overview")
    assert overview["ds"] == HEALTH_DAY and overview["run"]["champion_version"] == 2
    assert overview["failure_risk"]["risk"] == 0.6 and overview["open_alerts"][0]["severity"] == "critical"
    heatmap = get("/health/api/drift/heatmap?start=2026-03-02")
    assert heatmap["days"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert heatmap["features"] == ["tenure", "monthly_charges"] and heatmap["psi"][0] == [0.05, 0.2, 0.4]
    perf = get("/health/api/performance")
    assert perf["series"]["champion"]["roc_auc"] == [0.84, 0.78]
    assert perf["series"]["challenger"]["roc_auc_lower"] == [0.79]
    assert perf["label_delay"]["pending_days"] == ["2026-03-03", "2026-03-04"]
    models = get("/health/api/models")
    assert [(v["version"], v["role_now"]) for v in models["versions"]][:2] == [(2, "champion"), (1, None)]
    assert models["history"][0]["from_version"] == 1
    assert get("/health/api/alerts?severity=critical")["total"] == 2
    assert client.get("/health/api/drift/heatmap?start=2026-02-30", headers=bearer(token)).status_code == 422


def test_the_health_openapi_documents_every_json_endpoint(client, token):
    doc = client.get("/health/api/openapi.json", headers=bearer(token)).json()
    documented = {path: op["summary"] for path, ops in doc["paths"].items() for op in ops.values()}
    expected = {p.split("?")[0] for p in HEALTH_API if not p.endswith("openapi.json")} | {ACKNOWLEDGE}
    assert {
        p.replace("{ds}", HEALTH_DAY).replace("{dag_id}/{run_id}", "churn_daily_monitoring/no-such-run")
        for p in documented
    } == expected
    assert list(doc["paths"][ACKNOWLEDGE]) == ["post"]
    assert all(documented.values()) and doc["servers"] == [{"url": "/churnguard"}]


def test_a_health_page_loads_plotly_and_its_script_from_the_app(api_server, client, health_store, token):
    page_url = f"{api_server['url']}/churnguard/health/drift"
    page = client.get(page_url, cookies={"_token": token})
    assert page.status_code == 200 and "cdn" not in page.text.lower()
    sources = re.findall(r'<script charset="utf-8" src="([^"]+)"', page.text)
    assert [urljoin(page_url, s) for s in sources] == [
        f"{api_server['url']}/churnguard{plotly_asset_url()}",
        f"{api_server['url']}/churnguard/health/static/health.js",
    ]
    for src in sources:  # plotly.js offline, from the data root the page just made sure of
        script = client.get(urljoin(page_url, src), cookies={"_token": token})
        assert script.status_code == 200 and len(script.content) > 10_000
    nav = re.findall(r'<a href="([^"]+)"', page.text)
    assert [urljoin(page_url, h) for h in nav] == [
        f"{api_server['url']}/churnguard/health/{p}" for p in ("overview", "drift", "performance", "models", "alerts")
    ]


def add_dag_runs(env: dict, runs: list[tuple[str, str, str | None, dict]]) -> None:
    """DAG runs (dag_id, run_id, logical date, conf) in the server's metadata DB, as the scheduler records them."""
    code = """
import json, sys
from datetime import datetime
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
with create_session() as session:
    for dag_id, run_id, logical, conf in json.loads(sys.argv[1]):
        when = datetime.fromisoformat(logical) if logical else None
        session.add(DagRun(dag_id=dag_id, run_id=run_id, logical_date=when, run_type="manual", conf=conf,
                           run_after=when or datetime.now().astimezone(), state="success"))
"""
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(runs)], env=env, check=True, capture_output=True, timeout=300
    )


def test_the_dag_run_tab_resolves_a_run_to_its_batch_date(airflow_env, client, health_store, token):
    suffix = uuid.uuid4().hex[:8]
    scheduled, param, dateless = f"scheduled__{suffix}", f"manual__{suffix}:+1", f"dateless__{suffix}"
    add_dag_runs(
        airflow_env,
        [
            ("churn_daily_monitoring", scheduled, "2026-03-03T00:00:00+00:00", {}),
            ("churn_daily_monitoring", param, "2026-05-01T06:00:00+00:00", {"batch_date": "2026-03-02"}),
            ("churn_daily_monitoring", dateless, None, {}),
        ],
    )
    get = lambda path: client.get(path, headers=bearer(token))  # noqa: E731
    resolved = get(f"/health/api/dag_run/churn_daily_monitoring/{scheduled}").json()
    assert resolved == {"dag_id": "churn_daily_monitoring", "run_id": scheduled, "ds": "2026-03-03", "note": None}
    # the UI encodes the run id it puts in {RUN_ID}
    assert get(f"/health/api/dag_run/churn_daily_monitoring/{quote(param, safe='')}").json()["ds"] == "2026-03-02"
    assert "no logical date" in get(f"/health/api/dag_run/churn_daily_monitoring/{dateless}").json()["note"]
    other = get(f"/health/api/dag_run/churn_bootstrap/{scheduled}").json()
    assert other["ds"] is None and "another DAG" in other["note"]
    page = get(f"/health/dag_run/churn_daily_monitoring/{scheduled}")
    assert page.status_code == 200 and 'data-base="../../../"' in page.text
    assert "&quot;ds&quot;: &quot;2026-03-03&quot;" in page.text
    day = get("/health/api/run/2026-03-03").json()
    assert day["run"]["decision"] == "promoted" and day["model_events"][0]["event"] == "promoted"


def test_acknowledging_an_episode_wants_a_user_who_may_edit_runs_and_keeps_the_first(
    client, health_store, token, api_server
):
    from churnguard import alerts
    from churnguard.alerts import Alert

    alerts.observe(health_store, "2026-09-05", "decision", Alert("2026-09-05", "decision", "warning", "alert"))
    (episode,) = alerts.episodes(health_store, kind="decision")
    path = ACKNOWLEDGE.format(episode_id=episode["id"])
    assert client.post(path).status_code == 401
    refused = client.post(path, headers=bearer(token))  # the viewer reads Model Health, may not edit runs
    assert refused.status_code == 403 and refused.json() == {"detail": "Forbidden"}
    assert alerts.episodes(health_store, kind="decision")[0]["acknowledged_at"] is None

    editor = user_token(api_server, "editor")
    done = client.post(path, cookies={"_token": editor})  # as the page sends it
    assert done.status_code == 200, done.text
    assert done.json()["acknowledged_by"] == "editor" and done.json()["state"] == "open"
    (stored,) = alerts.episodes(health_store, kind="decision")
    assert stored["acknowledged_by"] == "editor" and stored["acknowledged_at"] is not None
    again = client.post(path, headers=bearer(editor))  # by a script, later: the first acknowledgement stays
    assert again.status_code == 200 and again.json() == done.json()
    listed = client.get("/health/api/alerts", headers=bearer(token)).json()
    assert [(e["id"], e["acknowledged_by"]) for e in listed["open_episodes"]] == [(episode["id"], "editor")]
    missing = client.post(ACKNOWLEDGE.format(episode_id=episode["id"] + 1000), headers=bearer(editor))
    assert missing.status_code == 404 and missing.json() == {"detail": f"no alert episode {episode['id'] + 1000}"}
