"""Bad files dropped into the layout and bad settings, as a new user would meet them: each ends in a quarantine
with the reason (and the next day goes on) or in one line naming the file and the key, with nothing written;
through `churnguard run-days` and through `airflow dags test`."""

from __future__ import annotations

import io
import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import SavedWorld, churnguard_cli, dag_test, run_airflow, with_home

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("bad_input")]

BAD, NEXT = "2026-09-08", "2026-09-09"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SavedWorld:
    """A champion and 10 simulated days, 7 of them monitored, restored at the same path for every test."""
    world = SavedWorld(
        tmp_path_factory.mktemp("bad-input"),
        ("bootstrap", "--seed", "0"),
        ("simulate", "--start", "2026-09-01", "--days", "10", "--rows-per-day", "300", "--seed", "1"),
        ("run-days", "--start", "2026-09-01", "--end", "2026-09-07"),
    )
    world.save()
    return world


def _landing(data: Path, day: str = BAD) -> Path:
    return data / "landing" / f"ds={day}"


def truncated(folder: Path) -> None:
    part = folder / "part-00000.parquet"
    part.write_bytes(part.read_bytes()[:1000])


def csv_named_parquet(folder: Path) -> None:
    part = folder / "part-00000.parquet"
    part.write_text(pd.read_parquet(part).to_csv(index=False))


def junk_beside_a_good_file(folder: Path) -> None:
    (folder / "part-00001.parquet").write_bytes(b"garbage")


def without_customer_id(folder: Path) -> None:
    part = folder / "part-00000.parquet"
    buf = io.BytesIO()
    pd.read_parquet(part).drop(columns=["customer_id"]).to_parquet(buf, index=False)
    part.write_bytes(buf.getvalue())


def empty_file(folder: Path) -> None:
    (folder / "part-00000.parquet").write_bytes(b"")


BAD_FILES = [
    (truncated, "part-00000.parquet: truncated parquet file"),
    (csv_named_parquet, "part-00000.parquet: not a parquet file (no PAR1 magic bytes; it looks like CSV text"),
    (junk_beside_a_good_file, "part-00001.parquet: not a parquet file"),
    (without_customer_id, "missing key column 'customer_id'"),
    (empty_file, "part-00000.parquet: empty file (0 bytes)"),
]


def store_rows(home: Path, table: str, ds: str) -> list[dict]:
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{home / 'monitoring.db'}")
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table} WHERE ds = :ds"), {"ds": ds})]
    finally:
        engine.dispose()


@pytest.mark.parametrize(("spoil", "reason"), BAD_FILES, ids=[f.__name__ for f, _ in BAD_FILES])
def test_an_unreadable_batch_is_quarantined_with_its_reason_and_run_days_goes_on(world, spoil, reason):
    data = world.restore()
    spoil(_landing(data))

    proc = churnguard_cli(world.env, "run-days", "--start", BAD, "--end", NEXT)

    assert proc.returncode == 1, proc.stderr[-3000:]
    assert reason in proc.stderr and "Traceback" not in proc.stderr
    assert f"1 of 2 days failed: {BAD}" in proc.stderr
    assert not _landing(data).exists() and (data / "quarantine" / f"ds={BAD}").is_dir()
    report = (data / "reports" / f"ds={BAD}" / "validation.json").read_text()
    assert reason in report
    (alert,) = store_rows(world.home, "alerts", BAD)
    assert alert["severity"] == "critical" and reason in alert["message"]
    (day,) = store_rows(world.home, "daily_runs", BAD)
    assert day["decision"] == "quarantined"
    assert not (data / "scores" / f"ds={BAD}").exists()
    (next_day,) = store_rows(world.home, "daily_runs", NEXT)  # the next day was processed all the same
    assert next_day["decision"] == "healthy"


@pytest.mark.parametrize(("spoil", "reason"), [BAD_FILES[2], BAD_FILES[3]], ids=["junk", "no_customer_id"])
def test_an_unreadable_batch_fails_only_its_dag_run_at_ingest_with_the_reason(world, airflow_env, spoil, reason):
    data = world.restore()
    spoil(_landing(data))
    env = with_home(airflow_env, world.home)

    state, log = dag_test(env, "churn_daily_monitoring", BAD, conf={"batch_date": BAD})

    assert state == "failed"
    assert f"AirflowFailException: batch {BAD} quarantined to" in log and reason in log
    assert "[DAG TEST] starting task_id=validate" not in log and "[DAG TEST] starting task_id=score" not in log
    assert (data / "quarantine" / f"ds={BAD}").is_dir() and not _landing(data).exists()
    assert store_rows(world.home, "daily_runs", BAD)[0]["decision"] == "quarantined"


def _config_copy(world, tmp_path: Path, edit) -> dict:
    from churnguard.settings import PACKAGE_DIR

    configs = tmp_path / "configs"
    shutil.copytree(PACKAGE_DIR / "configs", configs)
    monitoring = configs / "monitoring.yaml"
    monitoring.write_text(edit(monitoring.read_text()))
    return {**world.env, "CHURNGUARD_CONFIG_DIR": str(configs)}


@pytest.mark.parametrize(
    ("edit", "line"),
    [
        (
            lambda t: t.replace("  risk_warn: 0.5", "  risk_warn: 0.5\n  risk_wran: 0.4"),
            "unknown key 'decision.risk_wran'",
        ),
        (
            lambda t: t.replace("risk_warn: 0.5", "risk_warn: 0.9"),
            "decision.risk_warn (0.9) must be below decision.risk_retrain (0.8)",
        ),
        (
            lambda t: t.replace("margin_over_champion: 0.0", "margin_over_champion: -0.1"),
            "key 'retrain.margin_over_champion': Input should be greater than or equal to 0",
        ),
        (
            lambda t: t.replace("window_days: 28", "window_days: 3"),
            "retrain.window_days (3) must be at least retrain.holdout_days (5)",
        ),
    ],
    ids=["unknown_key", "warn_above_retrain", "negative_margin", "window_below_holdout"],
)
def test_a_bad_monitoring_config_is_one_line_before_anything_is_written(world, tmp_path, edit, line):
    data = world.restore()
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    env = _config_copy(world, tmp_path, edit)

    proc = churnguard_cli(env, "run-days", "--start", BAD)

    assert proc.returncode == 2
    (message,) = proc.stderr.strip().splitlines()
    assert message.startswith("churnguard run-days: ") and "monitoring.yaml: " in message and line in message
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert store_rows(world.home, "daily_runs", BAD) == []


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--start", "2026-09-09", "--end", "2026-09-08"),
            "empty range: --end 2026-09-08 is before --start 2026-09-09",
        ),
        (("--start", "2999-01-01"), "2999-01-01 is in the future"),
    ],
    ids=["reversed", "future"],
)
def test_a_reversed_or_future_range_is_one_line_with_exit_2(world, args, line):
    proc = churnguard_cli(world.env, "run-days", *args)
    assert proc.returncode == 2
    (message,) = proc.stderr.strip().splitlines()
    assert line in message


def test_bad_label_values_are_quarantined_and_never_counted_as_no_churn(world):
    data = world.restore()
    part = data / "labels" / f"ds={BAD}" / "part-00000.parquet"  # the labels of 09-01's customers
    labels = pd.read_parquet(part)
    labels["churn"] = ["1" if v == "Yes" else "0" for v in labels["churn"]]
    buf = io.BytesIO()
    labels.to_parquet(buf, index=False)
    part.write_bytes(buf.getvalue())

    proc = churnguard_cli(world.env, "run-days", "--start", BAD)

    assert proc.returncode == 0, proc.stderr[-3000:]  # the day's batch is fine: only the labels are rejected
    assert (data / "quarantine" / "labels" / f"ds={BAD}").is_dir() and not part.exists()
    assert "column 'churn' value_set" in (data / "reports" / f"ds={BAD}" / "labels_validation.json").read_text()
    (alert,) = [a for a in store_rows(world.home, "alerts", BAD) if a["kind"] == "label_delivery"]
    assert "column 'churn' value_set" in alert["message"]
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{world.home / 'monitoring.db'}")
    with engine.connect() as conn:
        measured = conn.execute(text("SELECT count(*) FROM performance WHERE observed_ds = '2026-09-01'")).scalar()
    engine.dispose()
    assert measured == 0


def test_a_bad_monitoring_config_is_an_import_error_of_the_dag_naming_the_file_and_rule(world, airflow_env, tmp_path):
    data = world.restore()
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    configs = _config_copy(world, tmp_path, lambda t: t.replace("risk_warn: 0.5", "risk_warn: 0.9"))
    # its own metadata DB: the import error it records must not reach the other tests' DAG integrity checks
    env = with_home(
        airflow_env,
        world.home,
        CHURNGUARD_CONFIG_DIR=configs["CHURNGUARD_CONFIG_DIR"],
        AIRFLOW_HOME=str(tmp_path / "airflow"),
    )
    assert run_airflow(env, "db", "migrate").returncode == 0

    listed = run_airflow(env, "dags", "list-import-errors", "--local", "-o", "json")  # exit 1: there are errors
    errors = json.loads([line for line in listed.stdout.splitlines() if line.startswith("[")][-1])
    state = run_airflow(env, "dags", "test", "churn_daily_monitoring", BAD, "-c", json.dumps({"batch_date": BAD}))

    (error,) = [e for e in errors if e["filepath"].endswith("churn_daily_monitoring.py")]
    assert "monitoring.yaml: decision.risk_warn (0.9) must be below decision.risk_retrain (0.8)" in error["error"]
    assert state.returncode != 0 and "could not be found" in state.stdout + state.stderr  # no run can start
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


def test_a_bad_run_override_fails_the_dag_run_in_its_first_task_before_anything_is_written(world, airflow_env):
    data = world.restore()
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    env = with_home(airflow_env, world.home)

    state, log = dag_test(env, "churn_daily_monitoring", BAD, conf={"batch_date": BAD, "retrain_window_days": 2})

    assert state == "failed"
    assert "retrain.window_days (2) must be at least retrain.holdout_days (5)" in log
    assert "[DAG TEST] starting task_id=ingest" not in log and "[DAG TEST] starting task_id=wait_for_landing" not in log
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
    assert store_rows(world.home, "daily_runs", BAD) == []


def test_an_unreachable_mlflow_server_stops_run_days_in_seconds_with_one_line(world):
    from tests.conftest import free_port

    data = world.restore()
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    started = time.monotonic()
    proc = churnguard_cli({**world.env, "MLFLOW_TRACKING_URI": closed}, "run-days", "--start", BAD)
    elapsed = time.monotonic() - started

    assert proc.returncode == 3, proc.stderr[-2000:]
    (message,) = [line for line in proc.stderr.splitlines() if line.startswith("churnguard run-days:")]
    assert f"MLflow at {closed} failed" in message and "Traceback" not in proc.stderr
    assert elapsed < 60, elapsed  # the old path took minutes before "no champion alias"; bound kept loose
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before
