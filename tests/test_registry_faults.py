"""Registry faults against a real `mlflow server` reached through a proxy that drops or fails chosen requests:
a failed registry read is an error (retried, then one ``RegistryError``), never "absent", so it can neither
move the champion nor register a duplicate."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from churnguard import registry, training
from churnguard.cli import main
from churnguard.settings import get_settings
from tests.conftest import free_port, mlflow_server_process
from tests.registry_helpers import bootstrap, churn_registry

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("mlflow_faults")]

MODEL = "churn-model"
ALIAS_PATH = "/api/2.0/mlflow/registered-models/alias"
SEARCH_VERSIONS_PATH = "/api/2.0/mlflow/model-versions/search"
CREATE_VERSION_PATH = "/api/2.0/mlflow/model-versions/create"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "proxy-connection"}


class FaultyProxy:
    """A threaded HTTP proxy on a free loopback port in front of ``upstream_port``.

    ``fail(method, path, how, times)`` makes the next ``times`` matching requests (every one when None) fail:
    ``drop`` closes the connection without forwarding or answering, ``lose_answer`` forwards the request and
    then closes without answering (the server did the work, the client never hears), ``503`` answers
    Service Unavailable, ``stall`` holds the request open without answering until the proxy stops.
    """

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.rules: list[dict] = []
        self.failed: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), _relay_handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, method: str | None, path: str | None, how: str = "drop", times: int | None = 1) -> None:
        with self.lock:
            self.rules.append({"method": method, "path": path, "how": how, "left": times})

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def fault_for(self, method: str, path: str) -> str | None:
        with self.lock:
            for rule in self.rules:
                if rule["method"] in (None, method) and rule["path"] in (None, path) and rule["left"] != 0:
                    if rule["left"] is not None:
                        rule["left"] -= 1
                    self.failed.append((method, path, rule["how"]))
                    return rule["how"]
        return None

    def stop(self) -> None:
        """Stop listening (connections are refused from now on); stalled requests are hung up."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _relay_handler(proxy: FaultyProxy) -> type[BaseHTTPRequestHandler]:
    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as MLflow's requests session expects

        def relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            how = proxy.fault_for(self.command, urlsplit(self.path).path)
            if how == "drop":
                return self.hang_up()
            if how == "stall":
                proxy.stopping.wait(60)
                return self.hang_up()
            if how == "503":
                return self.answer(503, b"upstream unavailable", [("Content-Type", "text/plain")])
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream.request(self.command, self.path, body, headers)  # Host: the server's own address
                response = upstream.getresponse()
                data = response.read()
            finally:
                upstream.close()
            if how == "lose_answer":
                return self.hang_up()
            self.answer(
                response.status, data, [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            )

        def answer(self, status: int, data: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def hang_up(self) -> None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay

        def log_message(self, format, *args) -> None:  # noqa: A002 - the base class names it so
            pass

    return Relay


@pytest.fixture
def mlflow_upstream(tmp_path) -> int:
    """A real `mlflow server` on a free loopback port; the proxy forwards to it."""
    with mlflow_server_process(tmp_path) as port:
        yield port


@pytest.fixture
def proxy(mlflow_upstream, monkeypatch) -> FaultyProxy:
    """The faulty proxy in front of the server, configured as the MLflow tracking + registry URI."""
    proxy = FaultyProxy(mlflow_upstream)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", proxy.url)
    get_settings.cache_clear()
    try:
        yield proxy
    finally:
        proxy.stop()


def versions() -> list[int]:
    return sorted(int(mv.version) for mv in churn_registry().client.search_model_versions(f"name = '{MODEL}'"))


def champion() -> int:
    return churn_registry().version_by_alias(registry.CHAMPION).version


def test_a_failed_champion_read_never_moves_the_champion(proxy):
    assert bootstrap("telco", seed=0)["champion_version"] == 1

    proxy.fail("GET", ALIAS_PATH, "drop", times=None)  # every alias read: retried, then an error
    with pytest.raises(registry.RegistryError, match=r"get_model_version_by_alias\(churn-model, champion\)"):
        bootstrap("telco", seed=1)
    proxy.clear()
    assert champion() == 1 and versions() == [1, 2]

    proxy.fail("GET", ALIAS_PATH, "drop", times=1)  # one alias read: the retry answers
    again = bootstrap("telco", seed=1)
    assert again["fit"]["reused_version"] == 2 and again["version"]["created"] is False
    assert again["champion_version"] == 1 and "already has champion v1" in again["message"]
    assert champion() == 1 and versions() == [1, 2]
    assert ("GET", ALIAS_PATH, "drop") in proxy.failed


def test_a_failed_fingerprint_search_does_not_register_a_duplicate(proxy):
    bootstrap("telco", seed=0)
    before = versions()

    proxy.fail("GET", SEARCH_VERSIONS_PATH, "drop", times=1)
    again = bootstrap("telco", seed=0)

    assert again["fit"]["reused_version"] == 1, "the retried search found the version: nothing retrained"
    assert again["version"]["created"] is False and versions() == before == [1]
    assert proxy.failed == [("GET", SEARCH_VERSIONS_PATH, "drop")]

    proxy.fail("GET", SEARCH_VERSIONS_PATH, "drop", times=None)  # the search keeps failing: an error, not "new"
    with pytest.raises(registry.RegistryError, match=r"failed search_model_versions\(name = 'churn-model'"):
        bootstrap("telco", seed=0)
    proxy.clear()
    assert versions() == [1]


def test_a_registration_whose_answer_is_lost_is_not_registered_twice(proxy):
    bootstrap("telco", seed=0)

    proxy.fail("POST", CREATE_VERSION_PATH, "lose_answer", times=1)  # v2 is created, the client never hears
    result = bootstrap("telco", seed=1)

    assert result["version"]["version"] == 2 and versions() == [1, 2]
    assert ("POST", CREATE_VERSION_PATH, "lose_answer") in proxy.failed
    assert champion() == 1


@pytest.mark.parametrize("how", ["refused", "503", "drop", "stall"])
def test_an_unreachable_registry_fails_in_seconds_naming_the_server_and_the_call(proxy, how, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")  # a stalled request times out after 1 s
    if how == "refused":
        proxy.stop()
    else:
        proxy.fail(None, None, how, times=None)

    started = time.monotonic()
    with pytest.raises(registry.RegistryError) as failure:
        churn_registry().version_by_alias(registry.CHAMPION)
    elapsed = time.monotonic() - started

    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(
        f"MLflow at {proxy.url} failed get_model_version_by_alias(churn-model, champion) "
        f"after {registry.RETRY_ATTEMPTS} attempts: "
    )
    assert elapsed < 30, f"took {elapsed:.1f} s"

    started = time.monotonic()
    with pytest.raises(registry.RegistryError, match=rf"^MLflow at {proxy.url} failed search_registered_models"):
        registry.check_connection(timeout_s=2)
    assert time.monotonic() - started < 5


def test_check_connection_gives_up_on_a_stalled_server_after_its_timeout(proxy):
    assert registry.check_connection(timeout_s=2) is None

    proxy.fail(None, None, "stall", times=None)
    started = time.monotonic()
    with pytest.raises(registry.RegistryError, match="failed search_registered_models"):
        registry.check_connection(timeout_s=1)
    assert time.monotonic() - started < 5


def test_the_cli_reports_an_unreachable_registry_as_one_line_with_exit_code_3(proxy, capsys):
    proxy.stop()

    assert main(["status"]) == 3

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"churnguard status: MLflow at {proxy.url} failed ")
    assert "Traceback" not in "\n".join(err)


def test_a_missing_alias_or_model_is_still_absent_over_rest(proxy):
    assert churn_registry().version_by_alias(registry.CHAMPION) is None  # no such model
    assert churn_registry().find_version("0123456789abcdef") is None
    bootstrap("telco", seed=0)

    assert churn_registry().version_by_alias(registry.CHALLENGER) is None  # no such alias
    assert churn_registry().version_by_alias(registry.CHAMPION).version == 1
    assert training.load_alias_model(churn_registry(), registry.PREVIOUS) is None
    assert proxy.failed == []


def test_trained_customers_are_none_only_when_the_run_logged_none_not_when_the_server_fails(proxy):
    """Whom a model was trained on is left out of holdouts and shadow days: a server error taken for "none
    logged" would quietly score a challenger on its own training customers."""
    import mlflow
    import numpy as np

    from churnguard.retrain import _log_trained_customers, load_trained_customers

    bootstrap("telco", seed=0)
    assert (
        load_trained_customers(churn_registry(), churn_registry().version_by_alias(registry.CHAMPION).run_id) is None
    )  # none logged
    churn_registry().configure()
    with mlflow.start_run() as run:
        _log_trained_customers(np.array([1, 5, 9], dtype=np.uint64))
    assert load_trained_customers(churn_registry(), run.info.run_id).tolist() == [1, 5, 9]

    proxy.fail("GET", None, "503", times=None)
    call = rf"download_run_artifact\({run.info.run_id}, trained_customers.npy\)"
    with pytest.raises(registry.RegistryError, match=rf"failed {call}"):
        load_trained_customers(churn_registry(), run.info.run_id)
