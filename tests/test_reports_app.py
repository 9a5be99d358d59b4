"""The reports app inside a real `airflow api-server` (SimpleAuthManager, a known viewer): every route wants
an Airflow user, by bearer token or by the UI's `_token` cookie; reports and plotly.js come from the data root."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from airflow_stack import wait_http

from churnguard.dataroot import DataRoot
from churnguard.settings import get_settings
from churnguard.storage import open_storage
from tests.conftest import BIN, ROOT, free_port, stop_group, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow_stack")]

DAY = "2026-09-01"
SUMMARY = {"ds": DAY, "decision": "healthy", "drift": {"severity": "stable"}}
EMPTY_REPORT = {"features": {}, "severity": "stable", "n_drifted": 0, "n_features": 0, "weighted_psi": None,
                "n_rows": 0, "profile_version": "test"}
ROUTES = [f"/reports/{DAY}/summary.json", f"/reports/{DAY}/drift.html", "/reports/2031-01-01/drift.json",
          f"/reports/{DAY}/not-a-report.json", "/reports/_assets/plotly-0.0.0.min.js"]


@pytest.fixture(scope="module")
def api_server(airflow_env, tmp_path_factory) -> dict:
    """`airflow api-server` on a free port, its own churnguard home, one viewer with a known password."""
    home = tmp_path_factory.mktemp("reports-home")
    password = secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({"viewer": password}))
    port = free_port()
    env = {**airflow_env, "CHURNGUARD_HOME": str(home),
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "viewer:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json")}
    (home / "run").mkdir()
    with (home / "api-server.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: its workers stop with it
    pid_file = home / "run" / "api-server.pid"
    pid_file.write_text(str(proc.pid))  # `make stop` with this home ends it too
    try:
        wait_for_port(port, proc, timeout=120)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/v2/monitor/health")
        yield {"url": url, "home": home, "user": "viewer", "password": password}
    finally:
        stop_group(proc)
        pid_file.unlink()


@pytest.fixture(scope="module")
def token(api_server) -> str:
    """A JWT from `POST /auth/token`, as a script would get one."""
    body = {"username": api_server["user"], "password": api_server["password"]}
    response = httpx.post(f"{api_server['url']}/auth/token", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


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
    from churnguard.drift.html import PLOTLY_ASSET

    return f"/reports/_assets/{PLOTLY_ASSET.rsplit('/', 1)[1]}"


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
    from churnguard.drift.html import PLOTLY_SRC, ensure_plotly_asset, plotly_asset_bytes, render_html

    ensure_plotly_asset(DataRoot(served_storage))
    page = render_html(EMPTY_REPORT, {"numeric": {}}, plotlyjs=PLOTLY_SRC)
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
    code = ("import sys, churnguard_airflow.reports_app; "
            "print(sorted(m for m in sys.modules if m.startswith('airflow.api_fastapi')))")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT / "plugins")},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
