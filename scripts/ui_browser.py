"""Model Health in headless Chromium (Debian's, driven by Playwright; no browser download): a logged-in tab, the
pages opened the way a user opens them (Browse → Model Health, the iframe's nav bar, a DAG run's tab), and
screenshots of Airflow's whole UI around them. The browser test drives it over a simulated history; `make
screenshots` over the running demo's real one (after `make demo`), into ``docs/img``:

    python scripts/ui_browser.py docs/img [--day YYYY-MM-DD]

``--day``: the day whose DAG run the run tab shows (default: the day the demo promoted a challenger)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import quote

from churnguard.store import schema

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}
NAV_ROUTE = "churnguard-model-health"
RUN_ROUTE = "churnguard-model-health-run"
MONITORING = "churn_daily_monitoring"
PAGES = ("overview", "drift", "performance", "models", "alerts")


class Session:
    """A logged-in browser tab and every console error and uncaught exception of it and its frames."""

    def __init__(self, browser, url: str, user: str, password: str) -> None:
        self.url = url
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.goto(f"{self.url}/")
        self.page.wait_for_url(re.compile(r"/auth/login"))  # not logged in: Airflow sends us to its login page
        # Listening from here: before login the UI's own probe of the API is a 401 by design
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text} {m.location}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.get_by_label(re.compile("username", re.I)).fill(user)
        self.page.get_by_label(re.compile("password", re.I)).fill(password)
        self.page.get_by_role("button", name=re.compile("sign in|log ?in", re.I)).click()
        self.page.wait_for_url(lambda u: "/auth/login" not in u, timeout=30_000)

    def frame(self):
        """The Model Health iframe of the current UI page (a locator: it survives the UI re-rendering the iframe),
        once its script has replaced "Loading…"."""
        from playwright.sync_api import expect

        frame = self.page.frame_locator("iframe[src*='/churnguard/health/']")
        expect(frame.locator("#main")).not_to_have_text(re.compile(r"^\s*Loading"), timeout=30_000)
        return frame

    def open_page(self, name: str):
        """Browse → Model Health, then the page ``name`` through the iframe's nav bar."""
        from playwright.sync_api import expect

        self.page.goto(f"{self.url}/plugin/{NAV_ROUTE}")
        frame = self.frame()
        if name != "overview":
            frame.locator(f"nav.bar a[href$='health/{name}']").click()
            active = frame.locator("nav.bar a.active")
            expect(active).to_have_attribute("href", re.compile(f"health/{name}$"), timeout=30_000)
            frame = self.frame()
        return frame

    def open_run_tab(self, run_id: str, dag_id: str = MONITORING):
        """The Model Health tab of the DAG run ``run_id``."""
        self.page.goto(f"{self.url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/plugin/{RUN_ROUTE}")
        return self.frame()

    def shoot(self, folder: Path, name: str) -> Path:
        """The whole UI (Airflow's chrome with the iframe) as ``model-health-<name>.png``."""
        self.page.wait_for_timeout(300)  # Plotly's transitions
        path = folder / f"model-health-{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def close(self) -> None:
        self.context.close()


def location(frame) -> str:
    return frame.locator("body").evaluate("() => location.href")


def wait_charts(frame, n: int | None = None) -> int:
    """The Plotly charts drawn in ``frame`` (each an SVG inside ``.js-plotly-plot``), once ``n`` are (``None``:
    once every chart container has been drawn)."""
    from playwright.sync_api import expect

    drawn = frame.locator(".js-plotly-plot:has(.main-svg)")  # a chart Plotly has drawn holds its SVG layers
    if n is None:
        expect(frame.locator(".js-plotly-plot:not(:has(.main-svg))")).to_have_count(0, timeout=30_000)
    elif n:
        expect(drawn).to_have_count(n, timeout=30_000)
    return frame.locator(".js-plotly-plot").count()


def launch(playwright):
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True)


def _run_of_day(stack: dict, day: str) -> str:
    """The id of the monitoring run that processed ``day`` (its batch date), through Airflow's REST API."""
    from airflow_stack import Api

    runs = Api(stack).get(f"/api/v2/dags/{MONITORING}/dagRuns?limit=1000&state=success")["dag_runs"]
    for run in runs:
        if (run.get("conf") or {}).get("batch_date") == day or (run["logical_date"] or "").startswith(day):
            return run["dag_run_id"]
    raise SystemExit(f"no successful {MONITORING} run for {day} at {stack['api']}")


def _promotion_day() -> str | None:
    from churnguard.store import open_store

    store = open_store()
    promoted = [r["ds"] for r in store.rows(schema.model_events, where={"event": "promoted"})]
    store.engine.dispose()
    return str(max(promoted)) if promoted else None


def screenshots(stack: dict, folder: Path, day: str) -> list[Path]:
    """Every Model Health page, the run tab of ``day`` and its validation page, of the running UI ``stack``
    (run/stack.json), into ``folder``; raises when a page logged a console error."""
    from playwright import sync_api
    from playwright.sync_api import expect

    folder.mkdir(parents=True, exist_ok=True)
    user, password = next(iter(stack["login"].items()))
    run_id = _run_of_day(stack, day)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        session = Session(browser, stack["api"], user, password)
        try:
            paths = []
            for name in PAGES:
                wait_charts(session.open_page(name))
                paths.append(session.shoot(folder, name))
            frame = session.open_run_tab(run_id)
            wait_charts(frame)
            paths.append(session.shoot(folder, "run"))
            frame.get_by_role("link", name="Open the validation page").click()  # the day's validation page
            expect(session.page.frame_locator("iframe[src*='/churnguard/health/']").locator("h1")).to_have_text(
                re.compile(f"^Validation of {day}"), timeout=30_000
            )
            paths.append(session.shoot(folder, "validation"))
        finally:
            session.close()
            browser.close()
    if session.errors:
        raise SystemExit("console errors: " + "; ".join(session.errors))
    return paths


def main(argv: list[str]) -> int:
    from airflow_stack import stack_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--day", help="the run tab's day (default: the last promotion's)")
    args = parser.parse_args(argv)
    if not stack_file().exists():
        raise SystemExit(f"no running UI ({stack_file()} is missing): `make demo` first")
    day = args.day or _promotion_day()
    if day is None:
        raise SystemExit("no promotion in the store: name the run tab's day with --day")
    for path in screenshots(json.loads(stack_file().read_text()), args.folder, day):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
