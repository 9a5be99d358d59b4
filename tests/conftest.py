"""Shared fixtures: an isolated churnguard home per test, a real S3 server (moto, over HTTP), and a
temporary Airflow home with a migrated metadata DB. Every process started here is stopped here."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_stack import free_port, wait_for_port
from sqlalchemy import create_engine, text

from churnguard.settings import get_settings
from tests.warm_python import WarmPython

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def pytest_configure(config):
    """pytest collects inside ``warnings.catch_warnings()``, which drops the filters ``import churnguard``
    installed: install them for the session."""
    from churnguard.quiet import silence_third_party_warnings

    silence_third_party_warnings()


def stop_process(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and every worker it forked."""
    import signal

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def mlflow_server_process(folder: Path) -> Iterator[int]:
    """`mlflow server` on a free loopback port with its own SQLite store under ``folder``; yields the port and
    stops it with its workers."""
    port = free_port()
    # Job execution would start a runner and seven huey consumers (~250 MB each) that no test uses.
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'mlflow-server.db'}",
            "--default-artifact-root",
            (folder / "mlflow-artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(folder / "mlflow-server.log").open("w"),
        start_new_session=True,
    )  # its own process group: the uvicorn workers stop with it
    try:
        wait_for_port(port, proc, timeout=90)
        yield port
    finally:
        stop_group(proc)


HOME_VARS = (
    "CHURNGUARD_HOME",
    "CHURNGUARD_DATA_URL",
    "CHURNGUARD_DB_URL",
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "CHURNGUARD_MLFLOW_TRACKING_URI",
    "CHURNGUARD_MLFLOW_ARTIFACT_URI",
    "CHURNGUARD_DATASET",
    "CHURNGUARD_S3_ENDPOINT_URL",
)


@pytest.fixture(autouse=True)
def churnguard_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own data root, MLflow store and monitoring DB under tmp_path."""
    home = tmp_path / "churnguard-home"
    for var in HOME_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CHURNGUARD_HOME", str(home))
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()


@pytest.fixture
def config_dir(tmp_path, monkeypatch) -> Path:
    """A writable copy of the package's configs, made the active config folder."""
    import shutil

    from churnguard.settings import PACKAGE_DIR

    target = tmp_path / "configs"
    shutil.copytree(PACKAGE_DIR / "configs", target)
    monkeypatch.setenv("CHURNGUARD_CONFIG_DIR", str(target))
    get_settings.cache_clear()
    return target


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """moto's standalone S3 server on a free loopback port, for the whole session."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def s3_data_url(s3_endpoint, monkeypatch) -> str:
    """A fresh bucket on the S3 server, configured as the data root."""
    import boto3

    bucket = f"cg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/churnguard"
    monkeypatch.setenv("CHURNGUARD_DATA_URL", url)
    monkeypatch.setenv("CHURNGUARD_S3_ENDPOINT_URL", s3_endpoint)
    get_settings.cache_clear()
    return url


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> dict[str, str]:
    """Environment of a temporary AIRFLOW_HOME (SQLite metadata DB migrated) pointed at our DAGs."""
    home = tmp_path_factory.mktemp("airflow-home")
    # MLflow exports MLFLOW_TRACKING_URI into os.environ once used in-process: never inherit another
    # test's store; each test passes its own CHURNGUARD_HOME through `with_home`.
    inherited = {k: v for k, v in os.environ.items() if k not in HOME_VARS}
    env = {
        **inherited,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    _warm_airflow_settings.add(airflow_settings(env))
    return env


def with_home(env: dict[str, str], home: Path, **extra: str) -> dict[str, str]:
    """``env`` for a subprocess working on the churnguard home of the current test."""
    return {**env, "CHURNGUARD_HOME": str(home), **extra}


def airflow_settings(env: dict[str, str]) -> tuple:
    """What Airflow reads at import: its home and every ``AIRFLOW__`` setting."""
    return env.get("AIRFLOW_HOME"), tuple(sorted((k, v) for k, v in env.items() if k.startswith("AIRFLOW__")))


_warm_airflow_settings: set[tuple] = set()  # the session's Airflow homes: their commands fork from a warm server


def run_airflow(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`airflow ARGS` in its own process: forked from a warm interpreter of the session's Airflow home, or the
    console script for any other home or settings."""
    settings = airflow_settings(env)
    if settings in _warm_airflow_settings:
        return _warm_server(settings, "airflow", env).run(["airflow", *args], env, timeout)
    return subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def airflow_json(env: dict[str, str], *args: str):
    """Run an `airflow … -o json` command; its JSON is the last stdout line (logs come before it)."""
    result = run_airflow(env, *args, "-o", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("[", "{"))]
    assert lines, result.stdout[-3000:]
    return json.loads(lines[-1])


def dag_test(env: dict[str, str], dag_id: str, *args: str, conf: dict | None = None) -> tuple[str, str]:
    """`airflow dags test DAG_ID ARGS -c CONF`; the run's final state and its log, which is also kept in the
    churnguard home (a failing task is logged, not raised, so the state is read from the log)."""
    extra = ["-c", json.dumps(conf)] if conf is not None else []
    result = run_airflow(env, "dags", "test", dag_id, *args, *extra)
    log = result.stdout + result.stderr
    name = "-".join([dag_id, *args, *(str(v) for v in (conf or {}).values())])[:120]
    (Path(env["CHURNGUARD_HOME"]) / f"dags-test-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log").write_text(log)
    finished = re.findall(r"DagRun Finished: .*?state=(\w+)", log)
    assert finished, log[-4000:]
    return finished[-1], log


def day_context(ds, storage=None, store=None, options=None):
    """The :class:`~churnguard.context.DayContext` of ``ds`` over ``storage`` and ``store`` (default: the
    configured ones)."""
    from churnguard.context import DayContext
    from churnguard.dataroot import DataRoot
    from churnguard.storage import open_storage
    from churnguard.store import open_store

    return DayContext.build(ds, options, root=DataRoot(storage or open_storage()), store=store or open_store())


def warn_level_validation(ds: str):
    """Day ``ds``'s validation result as validate_batch makes it: one expectation failed at warn level."""
    from churnguard.validation.runner import Issue, Outcome, ValidationResult

    observed = "3 of 300 rows (1.0%) with a category not seen in the reference, e.g. 'Digital wallet'"
    issue = Issue("warn", "value_set", "payment_method", observed, ("TELCO-00007",))
    return ValidationResult(
        source=f"file:///data/landing/ds={ds}",
        dataset="telco",
        status="warn",
        issues=[issue],
        n_rows=300,
        n_columns=20,
        profile_version="v1",
        suite_name="telco-v1",
        evaluated=2,
        expectations=[
            Outcome(
                "pass",
                "error",
                "not_null",
                "customer_id",
                "0 of 300 rows (0.0%) null",
                "expect_column_values_to_not_be_null",
            ),
            Outcome(
                "warn",
                "warn",
                "value_set",
                "payment_method",
                observed,
                "expect_column_values_to_be_in_set",
                ("TELCO-00007",),
            ),
        ],
    )


def run_day(env: dict[str, str], day: str, **conf) -> str:
    """churn_daily_monitoring dated ``day`` (no ``batch_date``: the logical date names the batch) with ``conf``;
    the run's final state."""
    return dag_test(env, "churn_daily_monitoring", day, conf=conf or None)[0]


PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def databases_left(names: list[str], admin_url: str = PG_ADMIN) -> list[str]:
    """Which of the databases ``names`` still exist on the PostgreSQL server of ``admin_url``."""
    admin = create_engine(admin_url)
    try:
        with admin.connect() as conn:
            query = text("SELECT datname FROM pg_database WHERE datname = ANY(:names)")
            return list(conn.execute(query, {"names": names}).scalars())
    finally:
        admin.dispose()


@pytest.fixture
def postgres_url():
    """A throw-away database on the local PostgreSQL server, dropped afterwards."""
    name = f"cg_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    yield url
    from churnguard.store import core

    engine = core._engines.pop(url, None)
    if engine is not None:
        engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def home_env(home: Path) -> dict[str, str]:
    """This process's environment for a `churnguard` subprocess working on ``home`` (no crash point armed)."""
    env = {k: v for k, v in os.environ.items() if k not in HOME_VARS and k != "CHURNGUARD_CRASH_AT"}
    return {**env, "CHURNGUARD_HOME": str(home), "MLFLOW_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false"}


_warm: dict = {}  # this test process's warm interpreters (churnguard; airflow by its settings), started on first use


def _warm_server(key, kind: str = "churnguard", env: dict[str, str] | None = None) -> WarmPython:
    """This test process's warm interpreter for ``key``, started on first use."""
    if key not in _warm:
        _warm[key] = WarmPython(kind, env)
    return _warm[key]


@pytest.fixture(scope="session", autouse=True)
def _stop_warm_python():
    yield
    while _warm:
        _warm.popitem()[1].close()


def warm_python(env: dict, argv: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    """``argv`` (``["churnguard", *args]`` or ``["-c", code, *args]``) in a process forked from this test
    process's warm interpreter (:mod:`tests.warm_python`): what ``subprocess.run`` with ``capture_output``
    gives, without importing churnguard's dependencies again."""
    return _warm_server("churnguard").run(argv, env, timeout)


def churnguard_cli(
    env: dict, *args: str, crash_at: str | None = None, timeout: float = 900, cold: bool = False
) -> subprocess.CompletedProcess:
    """The `churnguard` command in its own process (forked warm; ``cold``: the console script, imports and
    all); ``crash_at`` arms a crash point in it."""
    run_env = {**env, **({"CHURNGUARD_CRASH_AT": crash_at} if crash_at else {})}
    if not cold:
        return warm_python(run_env, ["churnguard", *args], timeout)
    return subprocess.run(
        [str(BIN / "churnguard"), *args], env=run_env, capture_output=True, text=True, timeout=timeout
    )


def forget_open_stores() -> None:
    """Drop this process's pooled connections to the monitoring store and MLflow's SQLite stores, so a
    restored home is read from its new files (not through connections to the files it replaced)."""
    import importlib

    from churnguard.store import core

    for engine in core._engines.values():
        engine.dispose()
    core._engines.clear()
    for module in ("mlflow.store.tracking.sqlalchemy_store", "mlflow.store.model_registry.sqlalchemy_store"):
        engines = importlib.import_module(module).SqlAlchemyStore._engine_map
        for engine in engines.values():
            engine.dispose()
        engines.clear()
    from mlflow.tracking._model_registry.utils import _get_store_registry
    from mlflow.tracking._tracking_service.utils import _tracking_store_registry

    for registry in (_get_store_registry(), _tracking_store_registry):  # stores cached by URI hold engines
        registry._get_store_with_resolved_uri.cache_clear()
    from churnguard.registry import forget_configured

    forget_configured()  # the experiment is looked up again in the restored store


class SavedWorld:
    """A churnguard home built once by CLI commands and restored at the same path before each test (MLflow
    stores absolute artifact paths, so a copy elsewhere would read the original's files)."""

    def __init__(self, base: Path, *commands: tuple[str, ...]) -> None:
        self.home, self.snapshot = base / "home", base / "snapshot"
        self.env = home_env(self.home)
        for args in commands:
            proc = churnguard_cli(self.env, *args)
            assert proc.returncode == 0, (args, proc.stderr[-3000:])

    def save(self, to: Path | None = None) -> Path:
        """Keep the home as it is now (the pristine snapshot by default)."""
        import shutil

        shutil.copytree(self.home, to or self.snapshot)
        return to or self.snapshot

    def restore(self, source: Path | None = None) -> Path:
        """Put the snapshot (or ``source``) back at the home's path; returns the data root."""
        import shutil

        shutil.rmtree(self.home)
        shutil.copytree(source or self.snapshot, self.home)
        return self.home / "data"


def hidden_in_two_year(held_out, moved: int = 150):
    """The held-out rows with ``moved`` random month-to-month customers relabelled as two-year ones.

    Every feature column keeps exactly its values, so the pooled distributions do not change at all;
    the month-to-month segment loses a random subset (no drift); only the two-year segment changes: it
    now mixes in short-tenure customers.
    """
    import numpy as np

    rng = np.random.default_rng(7)
    month_to_month = np.flatnonzero((held_out["contract"] == "Month-to-month").to_numpy())
    batch = held_out.copy()
    batch.iloc[rng.choice(month_to_month, moved, replace=False), batch.columns.get_loc("contract")] = "Two year"
    return batch


@contextlib.contextmanager
def running_api_server(env: dict[str, str], home: Path) -> Iterator[str]:
    """`airflow api-server` with ``env`` on a free loopback port, logging to ``home/api-server.log``; yields its
    URL once healthy. Its PID file under ``home/run`` lets `make stop` with that home end it; stopped (with
    its workers: its own process group) on exit."""
    from airflow_stack import wait_http

    port = free_port()
    (home / "run").mkdir(exist_ok=True)
    with (home / "api-server.log").open("w") as log:
        proc = subprocess.Popen(
            [str(BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file = home / "run" / "api-server.pid"
    pid_file.write_text(str(proc.pid))
    try:
        wait_for_port(port, proc, timeout=120)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/api/v2/monitor/health")
        yield url
    finally:
        stop_group(proc)
        pid_file.unlink()
