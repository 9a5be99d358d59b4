"""churn_daily_monitoring driven by `airflow dags test` over simulated days, against a real MLflow
SQLite store and the SQLite monitoring store: healthy days, idempotent re-runs, quarantine, retraining."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from churnguard import training
from churnguard.config import load_dataset_config
from churnguard.dataroot import DataRoot
from churnguard.landing import simulate
from churnguard.simulate import Scenario
from churnguard.storage import open_storage
from churnguard.store import open_store, schema
from tests.conftest import dag_test, run_day, with_home
from tests.registry_helpers import bootstrap, churn_registry

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("daily_dag")]


@pytest.fixture
def world(churnguard_home, airflow_env, config_dir):
    """A champion, 45 simulated days from 2026-08-15, and a config whose sensor gives up quickly."""
    configs = config_dir
    monitoring = configs / "monitoring.yaml"
    monitoring.write_text(
        monitoring.read_text()
        .replace("sensor_timeout_minutes: 60", "sensor_timeout_minutes: 0.1")
        .replace("sensor_poke_seconds: 60", "sensor_poke_seconds: 2")
    )
    bootstrap("telco", seed=0)
    simulate(date(2026, 8, 15), 45, "none", rows_per_day=300, seed=1, root=DataRoot.open(), cfg=load_dataset_config())
    env = with_home(airflow_env, churnguard_home, CHURNGUARD_CONFIG_DIR=str(configs))
    return env


def table_counts() -> dict[str, int]:
    store = open_store()
    tables = (schema.daily_runs, schema.feature_drift, schema.performance, schema.model_events, schema.alerts)
    return {table.name: store.count(table) for table in (*tables, schema.failure_risk)}


def latest_link(env: dict[str, str], task_id: str, key: str) -> str:
    """The extra-link URL the task runner stored in XCom for the latest run of ``task_id``."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        (value,) = db.execute(
            "SELECT value FROM xcom WHERE task_id = ? AND key = ? ORDER BY timestamp DESC LIMIT 1", (task_id, key)
        ).fetchone()
    return json.loads(value)


def task_states(env: dict[str, str], day: str) -> dict[str, str]:
    """The end state of every task of the latest churn_daily_monitoring run dated ``day``, as the grid shows it."""
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as db:
        rows = db.execute(
            "SELECT ti.task_id, ti.state FROM task_instance ti JOIN dag_run dr ON dr.dag_id = ti.dag_id "
            "AND dr.run_id = ti.run_id WHERE dr.id = (SELECT MAX(id) FROM dag_run WHERE dag_id = ? "
            "AND substr(logical_date, 1, 10) = ?)",
            ("churn_daily_monitoring", day),
        ).fetchall()
    return dict(rows)


def test_a_stable_day_is_healthy_and_a_rerun_changes_no_row_counts(world):
    assert run_day(world, "2026-09-05") == "success"
    assert latest_link(world, "drift", "_link_DriftReportLink") == "/churnguard/reports/2026-09-05/drift.html"
    assert (
        latest_link(world, "validate", "_link_ValidationReportLink") == "/churnguard/reports/2026-09-05/validation.html"
    )
    states = task_states(world, "2026-09-05")
    assert (states["promote"], states["publish"]) == ("skipped", "success")  # no promotion: promote is not green
    store, storage = open_store(), open_storage()
    (row,) = store.rows(schema.daily_runs)
    assert row["decision"] == "healthy" and row["rows"] == 300 and row["validation_status"] in ("pass", "warn")
    assert store.count(schema.feature_drift) == 19
    summary = json.loads(storage.read_bytes("reports/ds=2026-09-05/summary.json"))
    assert summary["failure_risk"]["available"] is False and "failure-model" in summary["failure_risk"]["reason"]
    assert summary["champion_version"] == 1 and summary["promoted"] is False
    assert storage.exists("reports/ds=2026-09-05/drift.html")
    before = table_counts()
    scores_before = storage.read_partition("scores", "2026-09-05")
    assert run_day(world, "2026-09-05") == "success"
    assert table_counts() == before
    pd.testing.assert_frame_equal(storage.read_partition("scores", "2026-09-05"), scores_before)
    assert churn_registry().version_by_alias("challenger") is None


def test_a_corrupt_batch_is_quarantined_and_nothing_downstream_runs(world):
    storage = open_storage()
    batch = storage.read_partition("landing", "2026-09-07")
    batch.loc[:4, "tenure"] = -5.0
    storage.write_partition("landing", "2026-09-07", batch)
    assert run_day(world, "2026-09-07") == "failed"
    assert not storage.partition_exists("landing", "2026-09-07")
    assert len(storage.read_partition("quarantine", "2026-09-07")) == 300
    assert not storage.partition_exists("scores", "2026-09-07")
    (alert,) = open_store().rows(schema.alerts, where={"ds": "2026-09-07"})
    assert alert["kind"] == "validation" and "tenure" in alert["message"] and "domain" in alert["message"]
    assert open_store().rows(schema.feature_drift) == []


@pytest.mark.parametrize("age", ["today", "old"])
def test_a_missing_day_ends_the_run_with_one_clear_line_and_writes_nothing(world, age):
    """Today's batch is waited for until the sensor's timeout; a batch still missing hours after its day
    ended (a catch-up run) fails at the first poke instead of holding later dates behind it."""
    from datetime import UTC, datetime

    day = datetime.now(UTC).date().isoformat() if age == "today" else "2026-10-15"
    before = table_counts()
    started = time.monotonic()
    state, log = dag_test(world, "churn_daily_monitoring", day)  # no batch_date: the logical date names the day
    assert state == "failed"
    waited = (
        "did not land within 0.1 min"
        if age == "today"
        else "is still missing 2 h after the day ended (schedule.missing_batch_fail_hours)"
    )
    error = "AirflowSensorTimeout" if age == "today" else "AirflowFailException"
    assert re.search(
        rf"{error}: no batch for {day}: \S+/landing/ds={day} {re.escape(waited)}; nothing was "
        r"ingested, scored or decided for this date",
        log,
    ), log[-3000:]
    assert "Sensor has timed out" not in log and "[DAG TEST] starting task_id=ingest" not in log
    if age == "old":
        assert time.monotonic() - started < 60  # no poke interval waited out
    assert table_counts() == before
    assert not open_storage().list_partitions("scores") and not open_storage().exists(f"reports/ds={day}")


def test_force_retrain_with_dry_run_registers_nothing_and_without_it_registers_a_challenger(world):
    # Labels flip for the two-year-contract segment from 08-20: a model trained on recent days beats the champion.
    simulate(
        date(2026, 8, 15),
        45,
        Scenario.parse("concept", onset="2026-08-20"),
        rows_per_day=300,
        seed=1,
        root=DataRoot.open(),
        cfg=load_dataset_config(),
    )
    assert run_day(world, "2026-09-20", force_retrain=True, dry_run=True) == "success"
    assert len(churn_registry().client.search_model_versions("name = 'churn-model'")) == 1
    assert churn_registry().version_by_alias("challenger") is None
    assert open_store().rows(schema.daily_runs)[0]["decision"] == "retrain"

    assert run_day(world, "2026-09-20", force_retrain=True) == "success"
    challenger = churn_registry().version_by_alias("challenger")
    assert challenger is not None and challenger.version == 2
    assert challenger.tags.trigger == "manual force_retrain"
    assert churn_registry().version_by_alias("champion").version == 1
    (event,) = open_store().rows(schema.model_events)
    assert event["event"] == "registered" and event["model_version"] == 2
    assert latest_link(world, "retrain", "_link_ModelVersionLink").endswith("/#/models/churn-model/versions/2")
    assert latest_link(world, "retrain", "_link_MLflowRunLink").endswith(f"/runs/{challenger.run_id}")
    run = churn_registry().client.get_run(challenger.run_id)
    artifacts = {a.path for a in churn_registry().client.list_artifacts(run.info.run_id)}
    assert {"shap_importance.json", "reference_profile.json"} <= artifacts


def test_a_sudden_drift_triggers_a_retrain_that_registers_a_challenger(world):
    # monthly_charges jumps by 25 from 09-10: critical drift on the first drifted day
    simulate(
        date(2026, 8, 15),
        45,
        Scenario.parse("sudden", onset="2026-09-10"),
        rows_per_day=300,
        seed=1,
        root=DataRoot.open(),
        cfg=load_dataset_config(),
    )
    assert run_day(world, "2026-09-10") == "success"
    (row,) = open_store().rows(schema.daily_runs)
    assert row["decision"] == "retrain" and row["drift_severity"] == "critical"
    assert any("critical drift" in r and "monthly_charges" in r for r in row["reasons"])
    challenger = churn_registry().version_by_alias("challenger")
    assert challenger is not None and challenger.version == 2 and "critical drift" in challenger.tags.trigger
    assert churn_registry().version_by_alias("champion").version == 1  # shadow first: no failure yet
    (event,) = open_store().rows(schema.model_events)
    assert (event["event"], event["model_version"]) == ("registered", 2)


def test_a_concept_drift_with_measured_failure_ends_with_a_promoted_champion_that_does_better(world, config_dir):
    from sklearn.metrics import roc_auc_score

    from churnguard.config import load_dataset_config
    from churnguard.data import target_array
    from churnguard.status import timeline
    from churnguard.steps import run_days

    # Labels flip for the two-year-contract segment from 08-25; no feature moves. Retrain on the last 10
    # labelled days, so a challenger learns the new concept once those days are labelled.
    monitoring = config_dir / "monitoring.yaml"
    monitoring.write_text(monitoring.read_text().replace("window_days: 28", "window_days: 10"))
    simulate(
        date(2026, 8, 15),
        45,
        Scenario.parse("concept", onset="2026-08-25"),
        rows_per_day=300,
        seed=1,
        root=DataRoot.open(),
        cfg=load_dataset_config(),
    )
    run_days(date(2026, 8, 15), date(2026, 8, 31))  # the plain loop: the same steps, faster than 17 DAG runs
    assert churn_registry().version_by_alias("champion").version == 1
    promoted_on = None
    for day in ("2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04"):  # labels of the concept days arrive
        assert run_day(world, day) == "success"
        promoted = bool(open_store().rows(schema.model_events, where={"event": "promoted"}))
        # in the grid, promote is green on the promotion day only; publish runs on every day
        assert (task_states(world, day)["promote"], task_states(world, day)["publish"]) == (
            "success" if promoted else "skipped",
            "success",
        )
        if promoted:
            promoted_on = day
            break
    assert promoted_on is not None, open_store().rows(schema.daily_runs, since="2026-09-01")
    (event,) = open_store().rows(schema.model_events, where={"event": "promoted"})
    assert event["from_version"] == 1 and "measurably failed" in event["reason"]
    assert churn_registry().version_by_alias("previous").version == 1
    milestones = timeline()["milestones"]
    assert milestones["promoted"][0]["ds"] == promoted_on and milestones["first_measured_failure_reported"]

    # the days go on: a champion that fails again is replaced by one trained on more of the new concept
    run_days(date.fromisoformat(promoted_on) + timedelta(days=1), date(2026, 9, 14))
    champion = churn_registry().version_by_alias("champion").version
    assert champion > 1
    # on the days after (never seen in training), the last champion ranks churners better than the first
    storage, cfg = open_storage(), load_dataset_config()
    days = pd.date_range("2026-09-15", "2026-09-28").strftime("%Y-%m-%d")
    batch = pd.concat([storage.read_partition("landing", d) for d in days], ignore_index=True)
    labels = pd.concat(
        [storage.read_partition("labels", d) for d in pd.date_range("2026-09-22", "2026-10-05").strftime("%Y-%m-%d")],
        ignore_index=True,
    )
    joined = batch.merge(labels, on=cfg.id.column)
    y = target_array(joined, cfg)
    auc = {
        v: roc_auc_score(y, training.load_version_model(churn_registry(), v).predict_proba(joined))
        for v in (1, champion)
    }
    assert auc[champion] > auc[1] + 0.02, auc
