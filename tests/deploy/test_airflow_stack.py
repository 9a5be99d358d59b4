"""scripts/airflow_stack.py's side of `make demo` that runs without Airflow: once the api-server answers its health
endpoint (a real loopback server here), the demo prints the UI's URL and login and the Model Health page."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator

import airflow_stack
import pytest

HEALTH_BODY = b'{"metadatabase": {"status": "healthy"}}'


@contextlib.contextmanager
def health_server(port: int, status: int = 200) -> Iterator[list[str]]:
    """An api-server stand-in on loopback ``port`` answering every GET with ``status``; yields the paths asked."""
    asked: list[str] = []

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            asked.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(HEALTH_BODY)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Health)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


def test_urls_polls_until_the_api_server_answers_then_prints_the_ui_login_and_model_health(
    churnguard_home, monkeypatch, capsys
):
    url = f"http://127.0.0.1:{(port := airflow_stack.free_port())}"
    stack = {"api": url, "mlflow": "http://127.0.0.1:5999", "login": {"admin": "s3cret"}, "env": {}}
    (churnguard_home / "run").mkdir(parents=True)
    (churnguard_home / "run" / "stack.json").write_text(json.dumps(stack))
    with contextlib.ExitStack() as servers:
        waits: list[float] = []
        started: list[list[str]] = []  # the paths the server is asked, once it runs

        def api_server_comes_up(seconds: float) -> None:  # the poll's pause: the server starts meanwhile
            waits.append(seconds)
            if not started:
                started.append(servers.enter_context(health_server(port)))

        monkeypatch.setattr(airflow_stack.time, "sleep", api_server_comes_up)
        assert airflow_stack.main(["urls"]) == 0
        early = capsys.readouterr().out.splitlines()
        assert airflow_stack.main(["urls", "--final"]) == 0
        final = capsys.readouterr().out.splitlines()
    assert len(waits) == 1 and started[0] == ["/api/v2/monitor/health"] * 2  # refused once, then asked
    assert early == [
        f"Airflow UI      {url}  (login admin / s3cret)",
        f'  the runs      {url}/dags/churn_daily_monitoring  (grid: a task\'s "Drift report" / "MLflow run" buttons)',
        f"Model Health    {url}/churnguard/health/overview  (in the UI: Browse -> Model Health, "
        f"{url}/plugin/churnguard-model-health)",
    ]
    assert final[:2] == early[:2] and final[-1] == early[-1]  # it ends with Model Health
    assert final[3].startswith("MLflow UI       http://127.0.0.1:5999") and final[4].startswith("make stop")


def test_an_api_server_answering_503_while_a_component_starts_is_up():
    """Any HTTP answer means the api-server serves: the UI is there, whatever its health says of the rest."""
    port = airflow_stack.free_port()
    with health_server(port, status=503) as asked:
        stack = {"api": f"http://127.0.0.1:{port}"}
        assert airflow_stack.wait_for_ui(stack, timeout=10) is stack
    assert asked == ["/api/v2/monitor/health"]


def test_no_api_server_is_a_timeout_naming_the_health_url():
    url = f"http://127.0.0.1:{airflow_stack.free_port()}"
    with pytest.raises(TimeoutError, match=f"{url}/api/v2/monitor/health did not answer within 1s"):
        airflow_stack.wait_for_ui({"api": url}, timeout=1)
