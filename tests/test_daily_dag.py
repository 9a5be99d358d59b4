"""churn_daily_monitoring driven by `airflow dags test` over simulated days, against a real MLflow
SQLite store and the SQLite monitoring store: healthy days, idempotent re-runs, quarantine, retraining."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from churnguard import registry
from churnguard.simulate import Scenario, simulate
from churnguard.storage import open_storage
from churnguard.store import open_store
from churnguard.training import bootstrap
from tests.conftest import run_airflow, with_home

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("daily_dag")]


@pytest.fixture
def world(churnguard_home, airflow_env, config_dir):
    """A champion, 45 simulated days from 2026-08-15, and a config whose sensor gives up quickly."""
    configs = config_dir
    monitoring = configs / "monitoring.yaml"
    monitoring.write_text(monitoring.read_text().replace("sensor_timeout_minutes: 60", "sensor_timeout_minutes: 1")
                          .replace("sensor_poke_seconds: 60", "sensor_poke_seconds: 5"))
    bootstrap("telco", seed=0)
    simulate(date(2026, 8, 15), 45, "none", rows_per_day=300, seed=1)
    env = with_home(airflow_env, churnguard_home, CHURNGUARD_CONFIG_DIR=str(configs))
    return env


def run_day(env: dict, day: str, **conf) -> str:
    """Run the DAG for ``day``; return the run's final state (a failing task is logged, not raised)."""
    result = run_airflow(env, "dags", "test", "churn_daily_monitoring", day,
                         "-c", json.dumps({"batch_date": day, **conf}))
    (Path(env["CHURNGUARD_HOME"]) / f"dags-test-{day}.log").write_text(result.stdout + result.stderr)
    finished = re.findall(r"DagRun Finished: .*?state=(\w+)", result.stdout + result.stderr)
    assert finished, (result.stdout + result.stderr)[-4000:]
    return finished[-1]


def table_counts() -> dict[str, int]:
    store = open_store()
    return {name: store.count(name) for name in ("daily_runs", "feature_drift", "performance", "model_events",
                                                   "alerts", "failure_risk")}


def test_a_stable_day_is_healthy_and_a_rerun_changes_no_row_counts(world):
    assert run_day(world, "2026-09-05") == "success"
    store, storage = open_store(), open_storage()
    (row,) = store.rows("daily_runs")
    assert row["decision"] == "healthy" and row["rows"] == 300 and row["validation_status"] in ("pass", "warn")
    assert store.count("feature_drift") == 19
    summary = json.loads(storage.read_bytes("reports/ds=2026-09-05/summary.json"))
    assert summary["failure_risk"]["available"] is False and "failure-model" in summary["failure_risk"]["reason"]
    assert summary["champion_version"] == 1 and summary["promoted"] is False
    assert storage.exists("reports/ds=2026-09-05/drift.html")
    before = table_counts()
    scores_before = storage.read_partition("scores", "2026-09-05")
    assert run_day(world, "2026-09-05") == "success"
    assert table_counts() == before
    pd.testing.assert_frame_equal(storage.read_partition("scores", "2026-09-05"), scores_before)
    assert registry.version_by_alias("churn-model", "challenger") is None


def test_a_corrupt_batch_is_quarantined_and_nothing_downstream_runs(world):
    storage = open_storage()
    batch = storage.read_partition("landing", "2026-09-07")
    batch.loc[:4, "tenure"] = -5.0
    storage.write_partition("landing", "2026-09-07", batch)
    assert run_day(world, "2026-09-07") == "failed"
    assert not storage.partition_exists("landing", "2026-09-07")
    assert len(storage.read_partition("quarantine", "2026-09-07")) == 300
    assert not storage.partition_exists("scores", "2026-09-07")
    (alert,) = open_store().rows("alerts", where={"ds": "2026-09-07"})
    assert alert["kind"] == "validation" and "tenure" in alert["message"] and "domain" in alert["message"]
    assert open_store().rows("feature_drift") == []


def test_force_retrain_with_dry_run_registers_nothing_and_without_it_registers_a_challenger(world):
    # Labels flip for the two-year-contract segment from 08-20: a model trained on recent days beats the champion.
    simulate(date(2026, 8, 15), 45, Scenario.parse("concept", onset="2026-08-20"), rows_per_day=300, seed=1)
    assert run_day(world, "2026-09-20", force_retrain=True, dry_run=True) == "success"
    assert len(registry.client().search_model_versions("name = 'churn-model'")) == 1
    assert registry.version_by_alias("churn-model", "challenger") is None
    assert open_store().rows("daily_runs")[0]["decision"] == "retrain"

    assert run_day(world, "2026-09-20", force_retrain=True) == "success"
    challenger = registry.version_by_alias("churn-model", "challenger")
    assert challenger is not None and challenger.version == 2
    assert challenger.tags["trigger"] == "manual force_retrain"
    assert registry.version_by_alias("churn-model", "champion").version == 1
    (event,) = open_store().rows("model_events")
    assert event["event"] == "registered" and event["model_version"] == 2
    run = registry.client().get_run(challenger.run_id)
    artifacts = {a.path for a in registry.client().list_artifacts(run.info.run_id)}
    assert {"shap_importance.json", "reference_profile.json"} <= artifacts
