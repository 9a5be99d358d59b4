"""The prediction service as a caller meets it: `churnguard serve` (uvicorn, its own process group) on a free
loopback port, over a real MLflow store and the models bootstrap registered, called over HTTP.

The world (v1 champion, v2 trained with another seed and made challenger) is built once; one service in
``split`` mode serves it for the whole module, a second one in ``shadow`` mode for its test. The last two tests
move the aliases (a promotion, then a broken champion), so they run last and assert relative to what was
served before them.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import numpy as np
import pandas as pd
import pytest
from airflow_stack import free_port, wait_for_port
from prometheus_client.parser import text_string_to_metric_families

import churnguard
from churnguard.settings import get_settings
from tests.conftest import (
    BIN,
    HOME_VARS,
    SavedWorld,
    churnguard_cli,
    day_context,
    forget_open_stores,
    home_env,
    stop_group,
)
from tests.registry_helpers import churn_registry

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("serving")]
KEY, ADMIN_KEY = "client-key-3f9a", "admin-key-77c1"
ID = "customer_id"


# --- the world and the services -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """v1 champion, v2 (seed 1) registered beside it and made challenger."""
    saved = SavedWorld(
        tmp_path_factory.mktemp("serving-world"), ("bootstrap", "--seed", "0"), ("bootstrap", "--seed", "1")
    )
    with at_home(saved.home):
        from churnguard.promotion import set_challenger
        from churnguard.store import open_store

        assert set_challenger(open_store(), churn_registry(), 2) is None
    return saved


@contextlib.contextmanager
def at_home(home: Path) -> Iterator[None]:
    """This process's settings (and MLflow, store connections) on ``home``; the module's world is built before
    any test's own home, so the variables an earlier test's MLflow left in the environment go first."""
    with pytest.MonkeyPatch.context() as patch:
        for var in HOME_VARS:
            patch.delenv(var, raising=False)
        patch.setenv("CHURNGUARD_HOME", str(home))
        get_settings.cache_clear()
        forget_open_stores()
        try:
            yield
        finally:
            forget_open_stores()
            get_settings.cache_clear()


@pytest.fixture
def world(saved):
    """A test's own process works on the world's home."""
    with at_home(saved.home):
        yield saved


def serving_configs(folder: Path, **serving) -> Path:
    """A copy of the package's configs with ``serving.yaml`` set to ``serving``."""
    import shutil

    from churnguard.settings import PACKAGE_DIR

    shutil.copytree(PACKAGE_DIR / "configs", folder)
    (folder / "serving.yaml").write_text(json.dumps(serving))  # JSON is YAML
    return folder


@contextlib.contextmanager
def running_service(home: Path, configs: Path | None = None) -> Iterator[httpx.Client]:
    """`churnguard serve` on ``home`` (the churnguard this test imports), on a free loopback port; yields a
    client carrying the client key once it listens; stops the service and its workers, also on failure."""
    port = free_port()
    env = {
        **home_env(home),
        "PYTHONPATH": str(Path(churnguard.__file__).parents[1]),
        "CHURNGUARD_API_KEYS": KEY,
        "CHURNGUARD_ADMIN_API_KEYS": ADMIN_KEY,
        **({"CHURNGUARD_CONFIG_DIR": str(configs)} if configs else {}),
    }
    home.mkdir(parents=True, exist_ok=True)
    with (home / f"serve-{port}.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "churnguard"), "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc, timeout=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": KEY}, timeout=60) as client:
            yield client
    finally:
        stop_group(proc)


def wait_ready(client: httpx.Client, timeout: float = 120) -> dict:
    """Until /ready answers 200 (the first poll loaded the champion)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get("/ready")
        if answer.status_code == 200 or time.monotonic() > deadline:
            assert answer.status_code == 200, answer.text
            return answer.json()
        time.sleep(0.1)


@pytest.fixture(scope="module")
def service(saved, tmp_path_factory) -> Iterator[httpx.Client]:
    """The world's service in split mode (10 % of the customers answered by the challenger)."""
    # no poll after the first: the aliases move only when a test says so, and it refreshes the service itself
    configs = serving_configs(
        tmp_path_factory.mktemp("split") / "configs", mode="split", challenger_share=0.1, refresh_seconds=3600
    )
    with running_service(saved.home, configs) as client:
        wait_ready(client)
        yield client


# --- helpers -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def customers(saved) -> pd.DataFrame:
    """The reference test split: customers the models were not trained on (a few lack total_charges)."""
    with at_home(saved.home):
        from churnguard.dataroot import DataRoot

        return DataRoot.open().read_reference("telco", "test").drop(columns="churn")


def as_json(frame: pd.DataFrame) -> list[dict]:
    """Rows as a caller sends them: plain numbers and text, null for a missing value."""
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in json.loads(frame.to_json(orient="records"))
    ]


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    """The sum of a /metrics sample over the series whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def local_models(*versions: int) -> dict:
    """The registered versions loaded in this process: what the service's answers are compared with."""
    from churnguard.training import load_version_model

    return {v: load_version_model(churn_registry(), v) for v in versions}


# --- tests -----------------------------------------------------------------------------------------------------
def test_ready_is_503_and_predictions_wait_while_no_champion_is_registered(churnguard_home, customers):
    with running_service(churnguard_home) as client:
        refreshed = client.post("/admin/refresh", headers={"X-API-Key": ADMIN_KEY})  # the aliases, read now
        assert refreshed.status_code == 200 and refreshed.json()["models"]["models"] == {}
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/ready").status_code == 503
        answer = client.post("/v1/predict", json=as_json(customers.head(1))[0])
        assert answer.status_code == 503 and answer.json()["error"] == "no champion loaded yet"
        assert client.get("/v1/models").json()["models"] == {}


def test_serve_without_any_key_refuses_to_start_in_one_line(churnguard_home):
    proc = churnguard_cli(home_env(churnguard_home), "serve", "--port", str(free_port()))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "churnguard serve: no API keys: set CHURNGUARD_API_KEYS or CHURNGUARD_API_KEYS_FILE "
        "(and CHURNGUARD_ADMIN_API_KEYS for /admin)"
    )


def test_predict_and_batch_answer_with_each_models_own_probability(service, customers, world):
    new = customers.head(3).assign(total_charges=np.nan, **{ID: lambda f: f[ID] + "-NEW"})  # first month
    rows = pd.concat([new, customers.head(297)], ignore_index=True)
    models = local_models(1, 2)
    batch = service.post("/v1/predict/batch", json={"customers": as_json(rows)})
    assert batch.status_code == 200, batch.text
    answers = batch.json()["predictions"]
    assert [a[ID] for a in answers] == rows[ID].tolist()
    singles = [service.post("/v1/predict", json=row).json() for row in as_json(rows.head(25))]
    assert {s["request_id"] for s in singles}.isdisjoint({batch.json()["request_id"]})
    for answer in [*answers, *singles]:
        model = answer["model"]
        assert (model["name"], model["alias"], model["version"]) in {
            ("churn-model", "champion", 1),
            ("churn-model", "challenger", 2),
        }
    assert [(s[ID], s["model"]) for s in singles] == [(a[ID], a["model"]) for a in answers[:25]]  # sticky
    by_version = pd.Series([a["model"]["version"] for a in answers], index=rows.index)
    for version, model in models.items():
        mine = by_version == version
        served = np.array([a["churn_probability"] for a, m in zip(answers, mine, strict=True) if m])
        np.testing.assert_allclose(served, model.predict_proba(rows[mine]), atol=1e-6)
        labels = [a["churn"] for a, m in zip(answers, mine, strict=True) if m]
        assert labels == (served >= model.threshold).tolist()
    assert (by_version == 1).sum() > (by_version == 2).sum() > 0
    answered = metric(service, "churnguard_serving_requests_total", route="/v1/predict", alias="champion", version="1")
    assert answered == sum(s["model"]["alias"] == "champion" for s in singles)
    assert all(a["churn_probability"] > 0 for a in answers[:3])  # an optional feature missing: imputed, not refused


def test_explain_contributions_and_base_value_sum_to_the_models_margin(service, customers, world):
    from sklearn.pipeline import Pipeline

    from churnguard.config import load_dataset_config

    rows = customers.head(5)
    models = local_models(1, 2)
    for row, frame in zip(as_json(rows), (rows.iloc[[i]] for i in range(len(rows))), strict=True):
        answer = service.post("/v1/explain", json=row)
        assert answer.status_code == 200, answer.text
        explained = answer.json()
        model = models[explained["model"]["version"]]
        pipeline = model.pipeline
        encoded = Pipeline(pipeline.steps[:-1]).transform(frame[model.features])
        margin = float(pipeline.named_steps["model"].predict(encoded, output_margin=True)[0])
        contributions = [c["contribution"] for c in explained["contributions"]]
        assert explained["base_value"] + sum(contributions) == pytest.approx(margin, abs=1e-4)
        assert explained["margin"] == pytest.approx(margin, abs=1e-5)
        assert explained["churn_probability"] == pytest.approx(float(model.predict_proba(frame)[0]), abs=1e-6)
        assert [c["feature"] for c in explained["contributions"]] != []
        assert sorted(c["feature"] for c in explained["contributions"]) == sorted(load_dataset_config().features)
        assert contributions == sorted(contributions, key=abs, reverse=True)
        assert {c["feature"]: c["value"] for c in explained["contributions"]}["contract"] == row["contract"]


def test_every_bad_input_is_refused_naming_the_field_and_nothing_is_scored(service, customers):
    row = as_json(customers.head(1))[0]
    without = {k: v for k, v in row.items() if k != "contract"}
    cases = [
        ("/v1/predict", {**row, "tenure": "12"}, 422, "tenure"),  # wrong type
        ("/v1/predict", without, 422, "contract"),  # missing field
        ("/v1/predict", {**row, "monthly_charges": None}, 422, "monthly_charges"),  # null where required
        ("/v1/predict", {**row, "tenure": -3}, 422, "tenure"),  # outside the config's domain
        ("/v1/predict", {**row, "payment_method": "Digital wallet"}, 422, "payment_method"),  # unknown category
        ("/v1/predict", {**row, "female": True}, 422, "female"),
        ("/v1/predict", {**row, "churn": "Yes"}, 422, "churn"),  # not an input
        ("/v1/predict", {k: v for k, v in row.items() if k != ID}, 422, ID),
        ("/v1/predict", b'{"tenure": 1,', 422, "body"),  # malformed JSON
        ("/v1/predict", json.dumps({**row, "tenure": float("nan")}).encode(), 422, "tenure"),
        ("/v1/predict", [row], 422, "body"),
        ("/v1/explain", {**row, "contract": 2}, 422, "contract"),
        ("/v1/predict", {**row, "note": "x" * 20_000}, 413, "body"),  # larger than any row
        ("/v1/predict/batch", {"customers": [row] * 1001}, 413, "customers"),  # max_batch_rows is 1000
        ("/v1/predict/batch", {"customers": [row, row, without]}, 422, "customers.2.contract"),
        ("/v1/predict/batch", {"customers": []}, 422, "customers"),
        ("/v1/predict/batch", [row], 422, "body"),
    ]
    scored = metric(service, "churnguard_serving_scored_rows_total")
    for route, body, status, field in cases:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = service.post(route, content=content, headers={"Content-Type": "application/json"})
        assert answer.status_code == status, (route, field, answer.text)
        error = answer.json()
        assert error["error"].startswith(f"{field}: "), (field, error)
        assert error["errors"][0]["field"] == field and error["request_id"]
    assert metric(service, "churnguard_serving_scored_rows_total") == scored
    assert metric(service, "churnguard_serving_requests_total", route="/v1/predict/batch", status="413") == 1


def test_no_key_is_401_a_wrong_or_non_admin_key_403_health_ready_and_metrics_are_open(service, customers):
    row = as_json(customers.head(1))[0]
    for method, route in (("POST", "/v1/predict"), ("POST", "/v1/explain"), ("GET", "/v1/models")):
        body = {"json": row} if method == "POST" else {}
        assert service.request(method, route, headers={"X-API-Key": ""}, **body).status_code == 401
        wrong = service.request(method, route, headers={"X-API-Key": KEY + "x"}, **body)
        assert wrong.status_code == 403 and wrong.json()["error"] == "X-API-Key: not a key of this service"
    assert service.post("/admin/refresh", headers={"X-API-Key": ""}).status_code == 401
    refused = service.post("/admin/refresh")  # the client key
    assert refused.status_code == 403 and refused.json()["error"] == "X-API-Key: not an admin key"
    assert service.get("/v1/models", headers={"X-API-Key": ADMIN_KEY}).status_code == 200  # admin is a client too
    for route in ("/health", "/ready", "/metrics"):
        assert service.get(route, headers={"X-API-Key": ""}).status_code == 200


def test_split_answers_the_configured_share_by_challenger_sticky_per_customer(service, customers):
    pool = as_json(customers)
    rows = [{**pool[i % len(pool)], ID: f"SPLIT-{i:05d}"} for i in range(2000)]
    first = {}
    for start in range(0, len(rows), 500):
        answer = service.post("/v1/predict/batch", json={"customers": rows[start : start + 500]})
        first.update({a[ID]: a["model"]["alias"] for a in answer.json()["predictions"]})
    share = sum(alias == "challenger" for alias in first.values()) / len(first)
    assert len(first) == 2000 and abs(share - 0.10) < 0.025, share
    again = service.post("/v1/predict/batch", json={"customers": rows[::-1][:1000]}).json()["predictions"]
    assert all(a["model"]["alias"] == first[a[ID]] for a in again)  # other batch, other order: same model
    for row in rows[:40]:
        assert service.post("/v1/predict", json=row).json()["model"]["alias"] == first[row[ID]]
    served = service.get("/v1/models").json()
    assert served["mode"] == "split"
    assert {a: (m["version"], m["share"]) for a, m in served["models"].items()} == {
        "champion": (1, pytest.approx(0.9)),
        "challenger": (2, pytest.approx(0.1)),
    }


def test_shadow_mode_answers_with_the_champion_and_the_challenger_scores_every_row(saved, customers, tmp_path):
    configs = serving_configs(tmp_path / "configs", mode="shadow")
    with running_service(saved.home, configs) as client:
        wait_ready(client)
        assert client.post("/admin/refresh", headers={"X-API-Key": ADMIN_KEY}).status_code == 200
        rows = as_json(customers.head(200))
        answers = client.post("/v1/predict/batch", json={"customers": rows}).json()["predictions"]
        assert {(a["model"]["alias"], a["model"]["version"]) for a in answers} == {("champion", 1)}
        deadline = time.monotonic() + 30  # the shadow scores after the answer was sent
        while metric(client, "churnguard_serving_scored_rows_total", role="shadow") < 200:
            assert time.monotonic() < deadline, client.get("/metrics").text
            time.sleep(0.05)
        assert metric(client, "churnguard_serving_scored_rows_total", alias="challenger", version="2") == 200
        assert metric(client, "churnguard_serving_scored_rows_total", alias="champion", role="answer") == 200
        models = client.get("/v1/models").json()["models"]
        assert models["challenger"]["shadow"] is True and models["challenger"]["share"] == 0


def test_a_promotion_under_load_fails_no_request_and_later_answers_come_from_the_new_champion(
    service, customers, world
):
    from churnguard.promotion import promote_day

    rows = as_json(customers.head(50))
    results: list[tuple[float, int, int | None]] = []  # (time sent, status, version)
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(base_url=service.base_url, headers={"X-API-Key": KEY}, timeout=60) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    answer = client.post("/v1/predict", json=rows[i % len(rows)])
                    version = answer.json()["model"]["version"] if answer.status_code == 200 else None
                    results.append((sent, answer.status_code, version))
                except httpx.HTTPError:
                    results.append((sent, 0, None))

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        wait_for(lambda: len(results) >= 30)
        promoted = promote_day(day_context("2026-12-01"), False, decide=lambda: (True, "serving test"))
        assert promoted["promoted"] and promoted["version"] == 2
        refreshed = service.post("/admin/refresh", headers={"X-API-Key": ADMIN_KEY}).json()
        swapped_at = time.monotonic()
        assert refreshed["swapped"] == {"champion": 2, "challenger": None} and refreshed["refused"] == []
        wait_for(lambda: sum(t > swapped_at for t, *_ in results) >= 30)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert [r for r in results if r[1] != 200] == []
    assert {v for t, _, v in results if t < swapped_at} == {1, 2}  # split: v2 answered its share as challenger
    assert {v for t, _, v in results if t > swapped_at} == {2}
    models = service.get("/v1/models").json()["models"]
    assert list(models) == ["champion"] and models["champion"]["version"] == 2


def test_a_version_that_cannot_load_is_refused_and_the_old_champion_keeps_serving(service, customers, world):
    from churnguard.promotion import assign_champion
    from churnguard.store import open_store

    before = service.get("/v1/models").json()["models"]["champion"]["version"]
    broken = register_broken_version(customers)
    assign_champion(open_store(), churn_registry(), "2026-12-02", broken, replace=True)
    refreshed = service.post("/admin/refresh", headers={"X-API-Key": ADMIN_KEY}).json()
    assert refreshed["swapped"] == {}
    [refusal] = refreshed["refused"]
    assert (refusal["alias"], refusal["version"]) == ("champion", broken) and refusal["reason"]
    assert service.get("/ready").json() == {"ready": True, "champion": before}
    answer = service.post("/v1/predict", json=as_json(customers.head(1))[0])
    assert answer.status_code == 200 and answer.json()["model"]["version"] == before
    models = service.get("/v1/models").json()
    assert models["models"]["champion"]["version"] == before and models["refused"][0]["version"] == broken
    refused = metric(service, "churnguard_serving_refused_versions_total", alias="champion", version=str(broken))
    assert refused == 1


def register_broken_version(customers: pd.DataFrame) -> int:
    """A registered version whose logged model is garbage: the champion's pipeline logged again with its
    serialised file overwritten before registration."""
    import mlflow

    from churnguard import registry
    from churnguard.registry import VersionTags
    from churnguard.training import load_version_model

    models = churn_registry()
    source = load_version_model(models, models.version_by_alias("champion").version)
    models.configure()
    with mlflow.start_run(run_name="broken-for-serving") as run:
        mlflow.log_params({"threshold": 0.5, "best_iteration": source.best_iteration})
        mlflow.log_dict({"features": source.features}, "features.json")
        registry.log_model(source.pipeline, customers[source.features].head(5))
    [logged] = mlflow.search_logged_models(filter_string=f"source_run_id = '{run.info.run_id}'", output_format="list")
    files = list(Path(unquote(urlparse(logged.artifact_location).path)).rglob("*.skops"))
    assert files, logged.artifact_location
    for file in files:
        file.write_bytes(b"not a model")
    tags = VersionTags(fingerprint=f"broken-{run.info.run_id}", trigger="serving test")
    return models.register_run_model(run.info.run_id, tags).version


def wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
