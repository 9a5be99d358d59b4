"""Model Health in a real browser (issue #13's acceptance): a simulated 60-day history, `airflow api-server` with
the plugin on a loopback port, headless Chromium (Debian's, driven by Playwright; no browser download) logging in
through Airflow's login page, opening Browse → Model Health and every page and the DAG-run tab: the charts are
drawn, no console error, and the actions ("Retrain now", "Roll back to vN") start DAG runs through Airflow's REST
API with the conf they should carry (a user who may not trigger gets one line with the 403); "Acknowledge" on the
Alerts page records the user on the open alert episode and shows it.

Screenshots of each page go to the test's tmp folder, or to ``$CHURNGUARD_SCREENSHOTS`` (e.g. ``docs/img``)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright import sync_api
from playwright.sync_api import expect
from ui_browser import MONITORING, NAV_ROUTE, Session, launch, location, wait_charts

from tests.conftest import BIN
from tests.ui_world import HISTORY_DAYS, api_server, build_history

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow_stack")]

ROLLBACK = "churn_model_rollback"
# page → the Plotly charts it draws from the 60 days (models: SHAP only with a registry, none here)
CHARTS = {"overview": 2, "drift": 4, "performance": 4, "models": 0, "alerts": 1}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A churnguard home with 60 monitored days (store rows, a drift.json a day, a validation result)."""
    home = tmp_path_factory.mktemp("ui-home")
    from churnguard.settings import get_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHURNGUARD_HOME", str(home))
        days = build_history(home)
    get_settings.cache_clear()
    assert len(days) == HISTORY_DAYS
    return {"home": home, "days": days, "last": days[-1]}


@pytest.fixture(scope="module")
def server(airflow_env, world, tmp_path_factory) -> dict:
    """The api-server on its own metadata DB: the runs this module triggers stay out of the session's."""
    env = {**airflow_env, "AIRFLOW_HOME": str(tmp_path_factory.mktemp("ui-airflow-home"))}
    migrated = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    with api_server(env, world["home"], viewer="viewer") as srv:
        warm_registry(srv)
        yield srv


def warm_registry(server: dict, timeout: float = 120) -> None:
    """The server's first MLflow registry lookup imports MLflow, which takes longer than the models endpoint
    waits (health.REGISTRY_TIMEOUT_S) on a busy machine; its answer is kept, so ask until it has one."""
    import time

    headers, deadline = bearer(server), time.monotonic() + timeout
    while True:
        response = httpx.get(f"{server['url']}/churnguard/health/api/models", headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        if response.json()["registry_note"] is None or time.monotonic() > deadline:
            return
        time.sleep(1)


def bearer(server: dict, user: str = "admin") -> dict[str, str]:
    body = {"username": user, "password": server["passwords"][user]}
    response = httpx.post(f"{server['url']}/auth/token", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def dag_runs(server: dict, dag_id: str) -> list[dict]:
    response = httpx.get(f"{server['url']}/api/v2/dags/{dag_id}/dagRuns", headers=bearer(server), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["dag_runs"]


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    target = os.environ.get("CHURNGUARD_SCREENSHOTS")
    folder = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    # `make test` installs Chromium (the Makefile's `browser` target): missing, the test fails rather than skips
    with sync_api.sync_playwright() as p:
        chromium = launch(p)
        try:
            yield chromium
        finally:
            chromium.close()


def login(browser, server: dict, user: str) -> Session:
    return Session(browser, server["url"], user, server["passwords"][user])


@pytest.fixture(scope="module")
def admin(browser, server):
    session = login(browser, server, "admin")
    yield session
    session.close()


@pytest.fixture
def ui(admin):
    """The admin's tab; no console error may have happened during the test."""
    admin.errors.clear()
    yield admin
    assert admin.errors == []


def shoot(ui: Session, shots: Path, name: str) -> None:
    """The whole UI as ``model-health-<name>.png``: small enough for a README."""
    assert 10_000 < ui.shoot(shots, name).stat().st_size < 400_000


def test_login_then_browse_menu_opens_model_health(ui, shots):
    cookies = {c["name"] for c in ui.context.cookies()}
    assert "_token" in cookies
    ui.page.goto(f"{ui.url}/")
    ui.page.get_by_role("button", name=re.compile("^browse$", re.I)).click()
    ui.page.get_by_role("menuitem", name="Model Health").click()
    ui.page.wait_for_url(re.compile(f"/plugin/{NAV_ROUTE}$"))
    frame = ui.frame()
    assert location(frame).endswith("/churnguard/health/overview")
    assert wait_charts(frame, CHARTS["overview"]) == CHARTS["overview"]


@pytest.mark.parametrize("name", list(CHARTS))
def test_each_page_draws_its_charts_without_console_errors(ui, world, shots, name):
    frame = ui.open_page(name)
    assert wait_charts(frame, CHARTS[name]) == CHARTS[name]
    text = frame.locator("#main").inner_text()
    assert frame.locator("#main .error").all_inner_texts() == []
    expected = {
        "overview": [world["last"], "v2 / none", "Retrain now"],
        "drift": ["Reference vs current"],
        "performance": ["Shaded grey: monitored days without labels yet"],
        "models": ["Versions of churn-model", "Roll back to v1", "challenger better on 9 labelled days"],
        "alerts": ["History ("],
    }[name]
    for snippet in expected:
        assert snippet in text, (name, snippet)
    if name == "drift":  # the heatmap has all 60 days and 20 features
        days = frame.locator("#heatmap").evaluate("el => el.data[0].x.length")
        features = frame.locator("#heatmap").evaluate("el => el.data[0].y.length")
        assert (days, features) == (HISTORY_DAYS, 20)
    shoot(ui, shots, name)


def test_the_dag_run_tab_shows_the_day_the_run_processed(ui, server, world, shots):
    body = {"logical_date": None, "conf": {"batch_date": world["last"]}, "dag_run_id": "manual__ui-run-tab"}
    response = httpx.post(
        f"{server['url']}/api/v2/dags/{MONITORING}/dagRuns", json=body, headers=bearer(server), timeout=30
    )
    assert response.status_code == 200, response.text
    frame = ui.open_run_tab("manual__ui-run-tab")
    assert "/churnguard/health/dag_run/churn_daily_monitoring/manual__ui-run-tab" in location(frame)
    heading = frame.locator("#main h2").inner_text()
    assert heading == f"{world['last']} (manual__ui-run-tab)"
    text = frame.locator("#main").inner_text()
    assert (
        f"Validation\nwarn\n\nOpen the validation page (every expectation)\n\nfile:///data/landing/"
        f"ds={world['last']}: WARN (exit 1): 300 rows"
    ) in text
    assert "Reports: validation.json · validation.html · drift.json" in text
    shoot(ui, shots, "run")

    frame.get_by_role("link", name="Open the validation page").click()  # the day's validation page, in the tab
    page = ui.page.frame_locator("iframe[src*='/churnguard/health/']")
    expect(page.locator("h1")).to_have_text(f"Validation of {world['last']}: WARN", timeout=30_000)
    assert page.locator("tbody tr").first.inner_text().split("\t")[:4] == [
        "WARN",
        "payment_method",
        "value_set",
        "warn",
    ]
    shoot(ui, shots, "validation")


def test_retrain_now_starts_a_monitoring_run_with_force_retrain(ui, server, world):
    before = {r["dag_run_id"] for r in dag_runs(server, MONITORING)}
    frame = ui.open_page("overview")
    frame.locator("#retrain").click()
    link = frame.locator("#action-result a[data-run-id]")
    expect(link).to_have_count(1, timeout=30_000)
    run_id = link.get_attribute("data-run-id")
    assert link.get_attribute("target") == "_top"
    assert link.get_attribute("href") == f"../../dags/{MONITORING}/runs/{quote(run_id, safe='')}"
    assert "the DAG is paused" in frame.locator("#action-result").inner_text()  # nothing unpaused it: the run waits
    (new,) = [r for r in dag_runs(server, MONITORING) if r["dag_run_id"] not in before]
    assert new["dag_run_id"] == run_id and new["run_type"] == "manual" and new["state"] == "queued"
    assert new["conf"] == {"force_retrain": True, "batch_date": world["last"]}
    link.click()  # the link opens the run in Airflow's UI
    ui.page.wait_for_url(re.compile(f"/dags/{MONITORING}/runs/{re.escape(quote(run_id, safe=''))}$"))
    expect(ui.page.get_by_text(run_id).first).to_be_visible(timeout=30_000)


def test_roll_back_wants_a_reason_then_starts_the_rollback_dag(ui, server):
    frame = ui.open_page("models")
    frame.locator("button[data-rollback='1']").click()
    assert frame.locator("#action-result").inner_text() == "Type a reason for the rollback first."
    assert dag_runs(server, ROLLBACK) == []
    frame.locator("#rollback-reason").fill("v2 misses the new contract mix")
    frame.locator("button[data-rollback='1']").click()
    link = frame.locator("#action-result a[data-run-id]")
    expect(link).to_have_count(1, timeout=30_000)
    (run,) = dag_runs(server, ROLLBACK)
    assert run["dag_run_id"] == link.get_attribute("data-run-id")
    assert run["conf"] == {"version": "1", "reason": "v2 misses the new contract mix"}


def test_acknowledge_on_the_alerts_page_records_the_user_and_shows_it(ui, server):
    def open_episodes() -> list[dict]:
        response = httpx.get(f"{server['url']}/churnguard/health/api/alerts", headers=bearer(server), timeout=30)
        return response.json()["open_episodes"]

    (episode,) = open_episodes()
    assert episode["acknowledged_at"] is None
    frame = ui.open_page("alerts")
    buttons = frame.locator(f"button[data-ack='{episode['id']}']")
    assert buttons.count() == 4  # its row in the open episodes and its three days in the history
    buttons.first.click()
    expect(frame.locator(f"[data-acked='{episode['id']}']")).to_have_count(4, timeout=30_000)
    assert frame.locator(f"[data-acked='{episode['id']}']").first.inner_text() == "acknowledged by admin"
    assert buttons.count() == 0 and frame.locator("#main .error").count() == 0
    (stored,) = open_episodes()
    assert stored["acknowledged_by"] == "admin" and stored["acknowledged_at"] is not None


def test_a_user_who_may_not_trigger_gets_one_line_with_the_403(browser, server):
    viewer = login(browser, server, "viewer")
    try:
        viewer.page.goto(f"{server['url']}/plugin/{NAV_ROUTE}")
        frame = viewer.frame()
        frame.locator("#retrain").click()
        expect(frame.locator("#action-result.error")).to_have_count(1, timeout=30_000)
        line = frame.locator("#action-result").inner_text()
        assert line.startswith(f"Triggering {MONITORING} failed: 403 your Airflow user may not trigger"), line
        assert "\n" not in line
        # the browser logs the refused request itself; nothing else went wrong
        assert [e for e in viewer.errors if "403" not in e] == []
    finally:
        viewer.close()
