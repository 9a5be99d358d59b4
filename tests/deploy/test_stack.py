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
from airflow_stack import Api, create_backfill, follow, schedule_configs

from benchmarks.dag_bench import decisions
from tests.conftest import BIN, ROOT, churnguard_cli, databases_left, home_env

# Part of make test, in a group of its own: its three stacks (1,461 s of one worker on a slow machine) run
# beside the rest of the suite on the other worker; alone: make test-stack.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("native_stack")]
DAG = "churn_daily_monitoring"
START, DAYS = date(2026, 9, 1), 14
LAST = START + timedelta(days=DAYS - 1)
DATES = [(START + timedelta(days=k)).isoformat() for k in range(DAYS)]
DRILL_DAYS = 5


def simulate(days: int) -> tuple[str, ...]:
    return (
        "simulate",
        "--start",
        START.isoformat(),
        "--days",
        str(days),
        "--scenario",
        "gradual+concept",
        "--onset",
        (START + timedelta(days=days // 2)).isoformat(),
    )


def prepare(env: dict[str, str], days: int) -> None:
    """A champion, ``days`` simulated days and their backfill created (the DAG stays paused)."""
    for args in (("bootstrap",), simulate(days)):
        proc = churnguard_cli(env, *args)
        assert proc.returncode == 0, (args, proc.stderr[-3000:])
    last = (START + timedelta(days=days - 1)).isoformat()
    create_backfill(env, DAG, START.isoformat(), last)


def task_instances(api: Api) -> list[dict]:
    runs = api.get(f"/api/v2/dags/{DAG}/dagRuns?limit=100")["dag_runs"]
    return [
        ti
        for run in runs
        for ti in api.get(f"/api/v2/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
    ]


def rows_per_day(env: dict[str, str]) -> dict[str, int]:
    from sqlalchemy import create_engine, text

    store = create_engine(env["CHURNGUARD_DB_URL"])
    with store.connect() as conn:
        counts = dict(conn.execute(text("SELECT ds, COUNT(*) FROM daily_runs GROUP BY ds")).all())
    store.dispose()
    return counts


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
def native_stack(churnguard_home, monkeypatch, request):
    """The stack on a fresh home, its DAG scheduled over the first ``request.param`` (default ``DAYS``) simulated
    days; torn down afterwards, and checked to have left no process, port or database."""
    last = START + timedelta(days=getattr(request, "param", DAYS) - 1)
    for key, value in {
        "AIRFLOW_HOME": str(churnguard_home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CHURNGUARD_CONFIG_DIR", str(schedule_configs(START.isoformat(), last.isoformat())))
    try:
        yield native.up()
    finally:
        pids = [int(p.read_text()) for p in (churnguard_home / "run").glob("*.pid")]
        databases = json.loads(native.stack_file().read_text()).get("databases", [])
        still_open = native.down()
        left = databases_left(databases, native.pg_url("postgres"))
        assert not still_open and not left and not [pid for pid in pids if _alive(pid)], (still_open, left)


def test_a_backfill_on_the_native_stack_decides_as_the_embedded_run(native_stack, tmp_path):
    env = {**os.environ, **native_stack["env"]}
    embedded = {**home_env(tmp_path / "embedded"), "CHURNGUARD_CONFIG_DIR": os.environ["CHURNGUARD_CONFIG_DIR"]}
    # The embedded twin runs on the other core while the stack works through its backfill.
    twin = subprocess.Popen(
        [
            "bash",
            "-c",
            f"set -e; {BIN}/churnguard bootstrap; {BIN}/churnguard "
            f"{' '.join(simulate(DAYS))}; {BIN}/churnguard run-days --start {START} --end {LAST}",
        ],
        env=embedded,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "embedded.log").open("w"),
    )
    try:
        prepare(env, DAYS)
        result = follow(DAG, native_stack, timeout=1800)
        twin.wait(timeout=1800)
    finally:
        twin.kill()
    assert twin.returncode == 0, (tmp_path / "embedded.log").read_text()[-3000:]

    assert result["states"] == {"success": DAYS}
    api = Api(native_stack)
    runs = api.get(f"/api/v2/dags/{DAG}/dagRuns?limit=100")["dag_runs"]
    assert sorted(r["logical_date"][:10] for r in runs) == DATES
    assert {ti["hostname"] for ti in task_instances(api) if ti["hostname"]} == {"worker-1", "worker-2"}

    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=native_stack["s3"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    keys = {
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=native.BUCKET)
        for o in page.get("Contents", [])
    }
    for ds in DATES:
        assert f"data/scores/ds={ds}/part-00000.parquet" in keys
        assert f"data/reports/ds={ds}/summary.json" in keys
    assert any(key.startswith("mlartifacts/") and key.endswith("model.skops") for key in keys)

    assert rows_per_day(env) == dict.fromkeys(DATES, 1)
    assert decisions(env) == decisions(embedded)

    def aliases(run_env: dict) -> dict[str, int]:
        status = json.loads(churnguard_cli(run_env, "status", "--json").stdout)
        return {alias: model["version"] for alias, model in status["models"].items()}

    assert "champion" in aliases(env)
    assert aliases(env) == aliases(embedded)


@pytest.mark.parametrize("native_stack", [DRILL_DAYS], indirect=True)
def test_a_worker_killed_mid_backfill_leaves_every_day_done_once(native_stack, monkeypatch):
    """A Celery worker killed (its process group, SIGKILL) while it runs a task: the task is failed for silence,
    retried on the other worker, and the backfill ends with every day done once and whole."""
    import signal
    import time

    from mlflow import MlflowClient

    from churnguard.dataroot import DataRoot

    env = {**os.environ, **native_stack["env"]}
    prepare(env, DRILL_DAYS)
    api = Api(native_stack)
    subprocess.run([str(BIN / "airflow"), "dags", "unpause", DAG], env=env, check=True, capture_output=True)
    worker = int((native.home() / "run" / "worker-1.pid").read_text())
    deadline, victim = time.monotonic() + 600, None
    while victim is None and time.monotonic() < deadline:
        candidate = next(
            (
                ti
                for ti in api.get(f"/api/v2/dags/{DAG}/dagRuns/~/taskInstances?state=running")["task_instances"]
                if ti["hostname"] == "worker-1"
                and ti["task_id"] != "run_settings"
                and ti["logical_date"][:10] > DATES[0]
            ),
            None,
        )  # a real step of a later day
        if candidate is None:
            time.sleep(0.2)
            continue
        os.killpg(worker, signal.SIGSTOP)  # frozen: the task cannot finish between this look and the kill
        path = f"/api/v2/dags/{DAG}/dagRuns/{candidate['dag_run_id']}/taskInstances/{candidate['task_id']}"
        if api.get(path)["state"] == "running":
            os.killpg(worker, signal.SIGKILL)
            victim = candidate
        else:
            os.killpg(worker, signal.SIGCONT)
    assert victim, "no task ran on worker-1"

    result = follow(DAG, native_stack, timeout=1800)
    assert result["states"] == {"success": DRILL_DAYS}
    retried = api.get(f"/api/v2/dags/{DAG}/dagRuns/{victim['dag_run_id']}/taskInstances/{victim['task_id']}")
    assert retried["state"] == "success" and retried["try_number"] >= 2 and retried["hostname"] == "worker-2"
    days = DATES[:DRILL_DAYS]
    assert rows_per_day(env) == dict.fromkeys(days, 1)
    for key, value in native_stack["env"].items():  # read the data root as the tasks do
        monkeypatch.setenv(key, value)
    from churnguard.settings import get_settings

    get_settings.cache_clear()
    root = DataRoot.open()
    for ds in days:  # one whole file per partition: no half-written or doubled partition
        for area in ("staged", "scores"):
            assert root.storage.list_keys(f"{area}/ds={ds}") == [f"{area}/ds={ds}/part-00000.parquet"]
        assert len(root.read_scores(ds)) == 500
    versions = MlflowClient(
        tracking_uri=native_stack["mlflow"], registry_uri=native_stack["mlflow"]
    ).search_model_versions("name='churn-model'")
    fingerprints = [v.tags.get("churnguard.fingerprint") for v in versions]
    assert len(fingerprints) == len(set(fingerprints))


def running(api: Api, task_ids: set[str] | None = None, timeout: float = 600) -> dict:
    """The first task instance seen running (one of ``task_ids``, else any but run_settings) of a day after the
    first: a real step, mid-backfill."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ti in task_instances(api):
            if (
                ti["state"] == "running"
                and ti["logical_date"][:10] > DATES[0]
                and (ti["task_id"] in task_ids if task_ids else ti["task_id"] != "run_settings")
            ):
                return ti
        time.sleep(0.5)
    raise TimeoutError(f"no task of {task_ids or 'the DAG'} ran within {timeout:.0f}s")


def first_failure(api: Api, seen: list[dict], timeout: float = 300) -> dict:
    """The first task instance seen failed or waiting for its retry, other than those ``seen``."""
    import time

    known = {(ti["dag_run_id"], ti["task_id"]) for ti in seen}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failed = [
            ti
            for ti in task_instances(api)
            if ti["state"] in ("up_for_retry", "failed") and (ti["dag_run_id"], ti["task_id"]) not in known
        ]
        if failed:
            return failed[0]
        time.sleep(0.5)
    raise TimeoutError(f"no task failed within {timeout:.0f}s")


@pytest.mark.parametrize("native_stack", [DRILL_DAYS], indirect=True)
def test_tasks_retry_through_an_s3_and_an_mlflow_outage(native_stack):
    """S3 killed while a task runs, then the MLflow server: the task that hit the outage fails, the server comes
    back, its retry succeeds, and the backfill ends with every day done once."""
    env = {**os.environ, **native_stack["env"]}
    prepare(env, DRILL_DAYS)
    api = Api(native_stack)
    subprocess.run([str(BIN / "airflow"), "dags", "unpause", DAG], env=env, check=True, capture_output=True)
    hit = []
    for server, port, steps in (
        ("seaweedfs", native_stack["ports"]["s3_s3.port"], {"ingest", "validate"}),
        ("mlflow", native_stack["ports"]["mlflow"], {"score"}),
    ):
        running(api, steps)
        native.stop(server)
        hit.append(first_failure(api, hit))
        native.restart(server, port)

    result = follow(DAG, native_stack, timeout=1800)
    assert result["states"] == {"success": DRILL_DAYS}
    every = task_instances(api)
    for ti in hit:
        retried = next(t for t in every if (t["dag_run_id"], t["task_id"]) == (ti["dag_run_id"], ti["task_id"]))
        # the retry ends as the same step ends on the days no outage hit: success, or for `promote` on days that
        # promote nothing, skipped (an outage that hits it while it reads the registry is as likely as any)
        unhit = {t["state"] for t in every if t["task_id"] == ti["task_id"] and t["dag_run_id"] != ti["dag_run_id"]}
        assert retried["try_number"] >= 2 and retried["state"] in unhit & {"success", "skipped"}, (retried, unhit)
    assert rows_per_day(env) == dict.fromkeys(DATES[:DRILL_DAYS], 1)
