"""The docker-compose topology run natively (``scripts/stack.py``, ``make stack``): PostgreSQL databases, a Redis
broker, SeaweedFS as S3, an MLflow server on both, Airflow on the CeleryExecutor with two workers. A backfill of
the daily DAG through its scheduler does on the stack what ``churnguard run-days`` does embedded, day for day,
and ``stack-down`` leaves no process, database or open port behind."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta

import pytest
import stack as native
from airflow_stack import Api, follow, schedule_configs

from benchmarks.dag_bench import decisions
from tests.conftest import BIN, ROOT, churnguard_cli, home_env

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow_stack")]
DAG = "churn_daily_monitoring"
START, DAYS = date(2026, 9, 1), 14
LAST = START + timedelta(days=DAYS - 1)
DATES = [(START + timedelta(days=k)).isoformat() for k in range(DAYS)]
SIMULATE = ("simulate", "--start", START.isoformat(), "--days", str(DAYS), "--scenario", "gradual+concept",
            "--onset", (START + timedelta(days=DAYS // 2)).isoformat())


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # the services are this process's children: reap those that have exited
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def native_stack(churnguard_home, monkeypatch):
    """The stack on a fresh home, its DAG scheduled over the simulated days; torn down afterwards, and checked
    to have left no process, port or database."""
    from sqlalchemy import create_engine, text

    for key, value in {"AIRFLOW_HOME": str(churnguard_home / "airflow"),
                       "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
                       "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
                       "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CHURNGUARD_CONFIG_DIR", str(schedule_configs(START.isoformat(), LAST.isoformat())))
    try:
        yield native.up()
    finally:
        pids = [int(p.read_text()) for p in (churnguard_home / "run").glob("*.pid")]
        databases = json.loads(native.stack_file().read_text()).get("databases", [])
        still_open = native.down()
        admin = create_engine(native.pg_url("postgres"))
        with admin.connect() as conn:
            left = conn.execute(text("SELECT datname FROM pg_database WHERE datname = ANY(:names)"),
                                {"names": databases}).scalars().all()
        admin.dispose()
        assert not still_open and not left and not [pid for pid in pids if _alive(pid)], (still_open, left)


def test_a_backfill_on_the_native_stack_decides_as_the_embedded_run(native_stack, tmp_path):
    env = {**os.environ, **native_stack["env"]}
    embedded = {**home_env(tmp_path / "embedded"), "CHURNGUARD_CONFIG_DIR": os.environ["CHURNGUARD_CONFIG_DIR"]}
    # The embedded twin runs on the other core while the stack works through its backfill.
    twin = subprocess.Popen(["bash", "-c", f"set -e; {BIN}/churnguard bootstrap; {BIN}/churnguard {' '.join(SIMULATE)};"
                             f" {BIN}/churnguard run-days --start {START} --end {LAST}"],
                            env=embedded, stdout=subprocess.DEVNULL, stderr=(tmp_path / "embedded.log").open("w"))
    try:
        for args in (("bootstrap",), SIMULATE):
            proc = churnguard_cli(env, *args)
            assert proc.returncode == 0, (args, proc.stderr[-3000:])
        subprocess.run([str(BIN / "airflow"), "backfill", "create", "--dag-id", DAG, "--from-date", DATES[0],
                        "--to-date", DATES[-1], "--max-active-runs", "1"], env=env, check=True, capture_output=True)
        result = follow(DAG, native_stack, timeout=1800)
        twin.wait(timeout=1800)
    finally:
        twin.kill()
    assert twin.returncode == 0, (tmp_path / "embedded.log").read_text()[-3000:]

    assert result["states"] == {"success": DAYS}
    api = Api(native_stack)
    runs = api.get(f"/api/v2/dags/{DAG}/dagRuns?limit=100")["dag_runs"]
    assert sorted(r["logical_date"][:10] for r in runs) == DATES
    hosts = {ti["hostname"] for run in runs for ti in api.get(
        f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"] if ti["hostname"]}
    assert hosts == {"worker-1", "worker-2"}

    import boto3

    s3 = boto3.client("s3", endpoint_url=native_stack["s3"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_DEFAULT_REGION"])
    keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=native.BUCKET)
            for o in page.get("Contents", [])}
    for ds in DATES:
        assert f"data/scores/ds={ds}/part-00000.parquet" in keys
        assert f"data/reports/ds={ds}/summary.json" in keys
    assert any(key.startswith("mlartifacts/") and key.endswith("model.skops") for key in keys)

    from sqlalchemy import create_engine, text

    store = create_engine(env["CHURNGUARD_DB_URL"])
    with store.connect() as conn:
        per_day = dict(conn.execute(text("SELECT ds, COUNT(*) FROM daily_runs GROUP BY ds")).all())
    store.dispose()
    assert per_day == dict.fromkeys(DATES, 1)
    assert decisions(env) == decisions(embedded)

    def aliases(run_env: dict) -> dict[str, int]:
        status = json.loads(churnguard_cli(run_env, "status", "--json").stdout)
        return {alias: model["version"] for alias, model in status["models"].items()}

    assert "champion" in aliases(env)
    assert aliases(env) == aliases(embedded)
