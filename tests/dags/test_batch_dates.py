"""The date the user picked, through a real scheduler and api-server: a scheduled run, a backfill, a trigger
with a logical date (REST, as the UI sends it), a trigger with ``batch_date`` after the schedule's last day,
and ``airflow dags test DAG DATE`` each process that day's batch; a run with neither a logical date nor
``batch_date`` fails at once; no run ends green without task instances. And a fresh deployment unpaused with
no batches fails its catch-up runs at once instead of waiting out the sensor for each."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise

import pytest
import stack as native
from airflow_stack import FINISHED, Api, start

from churnguard.store import schema
from tests.conftest import BIN, ROOT, dag_test

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow_stack")]
DAG = "churn_daily_monitoring"


@pytest.fixture
def stack_home(churnguard_home, tmp_path, monkeypatch):
    """A fresh Airflow home beside the churnguard home, its metadata in a PostgreSQL database of its own (on
    SQLite the api-server waited out the scheduler's write lock and a trigger timed out); every service started
    is stopped and the database dropped afterwards."""
    databases = native.create_databases(f"dates{os.getpid()}", ("airflow",))
    for key, value in {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": native.pg_url(databases["airflow"]),
    }.items():
        monkeypatch.setenv(key, value)
    try:
        yield churnguard_home
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], capture_output=True, check=False)
        native.drop_databases(list(databases.values()))


def finished_runs(api: Api, expected: int, timeout: float = 600) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api.get(f"/api/v2/dags/{DAG}/dagRuns?limit=100")["dag_runs"]
        if len(runs) >= expected and all(r["state"] in FINISHED for r in runs):
            return runs
        time.sleep(2)
    raise TimeoutError([(r["dag_run_id"], r["state"]) for r in runs])


def task_states(api: Api, run: dict) -> dict[str, str]:
    tis = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti["state"] for ti in tis}


def test_every_way_of_naming_a_date_processes_that_days_batch(stack_home, config_dir, monkeypatch):
    from churnguard.config import load_dataset_config
    from churnguard.dataroot import DataRoot
    from churnguard.landing import simulate
    from churnguard.store import open_store
    from tests.registry_helpers import bootstrap

    monitoring = config_dir / "monitoring.yaml"
    monitoring.write_text(monitoring.read_text().replace("end_date: null", 'end_date: "2026-09-03"'))
    bootstrap("telco", seed=0)
    simulate(date(2026, 9, 1), 6, "none", rows_per_day=300, seed=1, root=DataRoot.open(), cfg=load_dataset_config())
    env = dict(os.environ)
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    state, _ = dag_test(env, DAG, "2026-09-06")  # airflow dags test DAG DATE, no batch_date
    assert state == "success"

    stack = start(backfill=(DAG, "2026-09-01", "2026-09-01"), with_mlflow=False)
    api = Api(stack)
    subprocess.run(
        [str(BIN / "airflow"), "dags", "unpause", DAG], env={**env, **stack["env"]}, check=True, capture_output=True
    )  # the backfill, then the schedule after it: 09-02 and 09-03, its last day
    api.call("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": "2026-09-04T00:00:00Z", "conf": {}})
    now = datetime.now(UTC).isoformat()  # the UI's default logical date, long after the schedule's last day
    api.call("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": now, "conf": {"batch_date": "2026-09-05"}})
    api.call("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None, "conf": {}})

    runs = finished_runs(api, expected=7)
    by_kind = {(r["run_type"], (r["logical_date"] or "none")[:10]): r for r in runs}
    assert set(by_kind) == {
        ("backfill", "2026-09-01"),
        ("scheduled", "2026-09-02"),
        ("scheduled", "2026-09-03"),
        ("manual", "2026-09-04"),
        ("manual", now[:10]),
        ("manual", "none"),
        ("manual", "2026-09-06"),
    }, list(by_kind)
    for key, run in by_kind.items():
        states = task_states(api, run)
        assert states, f"{key}: a run without task instances"
        if key == ("manual", "none"):  # neither a logical date nor batch_date: fails at its first task
            assert run["state"] == "failed" and states["run_settings"] == "failed"
            assert set(states.values()) - {"failed"} <= {None, "upstream_failed"}
        else:
            assert run["state"] == "success", (key, states)
    processed = {r["ds"] for r in open_store().rows(schema.daily_runs)}
    assert processed == {f"2026-09-0{d}" for d in range(1, 7)}  # each run its own day, no day before it

    # Runs of consecutive dates overlap (max_active_runs 2), but a day validates, pinning the champion, only
    # once the run of the date before has ended.
    def moment(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    def started(run: dict, task_id: str) -> datetime:
        tis = api.get(f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        return moment(next(ti["start_date"] for ti in tis if ti["task_id"] == task_id))

    # (the manual 09-04 run is left out: it may start before the scheduler has created the 09-03 run, and a
    # run can only wait for runs that exist)
    chain = [
        by_kind[("backfill", "2026-09-01")],
        by_kind[("scheduled", "2026-09-02")],
        by_kind[("scheduled", "2026-09-03")],
    ]
    for before, after in pairwise(chain):
        assert started(after, "validate") >= moment(before["end_date"]), (before["dag_run_id"], after["dag_run_id"])


def test_a_fresh_deployment_fails_its_catch_up_runs_without_waiting_for_batches(stack_home, monkeypatch):
    """The default config, a start date three days back (CHURNGUARD_START_DATE) and no batch at all: every
    catch-up run of a day that ended over 2 hours ago fails at its sensor's first poke, one line saying so."""
    from tests.registry_helpers import bootstrap

    today = datetime.now(UTC).date()
    monkeypatch.setenv("CHURNGUARD_START_DATE", (today - timedelta(days=3)).isoformat())
    bootstrap("telco", seed=0)
    stack = start(with_mlflow=False)
    api = Api(stack)
    started = time.monotonic()
    subprocess.run(
        [str(BIN / "airflow"), "dags", "unpause", DAG],
        env={**os.environ, **stack["env"]},
        check=True,
        capture_output=True,
    )
    overdue = [
        today - timedelta(days=k)
        for k in (3, 2, 1)
        if datetime.now(UTC) - datetime.combine(today - timedelta(days=k - 1), datetime.min.time(), UTC)
        > timedelta(hours=2)
    ]
    deadline, runs = time.monotonic() + 300, []
    while time.monotonic() < deadline:
        runs = [
            r
            for r in api.get(f"/api/v2/dags/{DAG}/dagRuns?limit=100")["dag_runs"]
            if date.fromisoformat(r["logical_date"][:10]) in overdue
        ]
        if len(runs) == len(overdue) and all(r["state"] in FINISHED for r in runs):
            break
        time.sleep(2)
    assert sorted(r["logical_date"][:10] for r in runs) == sorted(d.isoformat() for d in overdue)
    assert all(r["state"] == "failed" for r in runs)
    for run in runs:
        assert task_states(api, run)["wait_for_landing"] == "failed"
    assert time.monotonic() - started < 300  # minutes for all of them, not an hour per run
