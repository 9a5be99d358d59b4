"""churn_daily_monitoring against real servers: the data root on S3 (moto's server over HTTP), and the
MLflow tracking + registry behind a real `mlflow server` process reached over its REST API."""

from __future__ import annotations

import json
from datetime import date

import pytest

from churnguard import registry
from churnguard.config import load_dataset_config
from churnguard.dataroot import DataRoot
from churnguard.landing import simulate
from churnguard.settings import get_settings
from churnguard.store import open_store, schema
from tests.conftest import mlflow_server_process, run_day, with_home
from tests.registry_helpers import bootstrap

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("daily_dag")]

DAY = "2026-09-05"


@pytest.fixture
def quick_sensor(config_dir):
    """The package's configs, with a sensor that gives up after a minute instead of an hour."""
    monitoring = config_dir / "monitoring.yaml"
    monitoring.write_text(
        monitoring.read_text()
        .replace("sensor_timeout_minutes: 60", "sensor_timeout_minutes: 1")
        .replace("sensor_poke_seconds: 60", "sensor_poke_seconds: 5")
    )
    return config_dir


def seed_world() -> None:
    """A champion and eight simulated days up to DAY; labels of the first day land on DAY."""
    bootstrap("telco", seed=0)
    simulate(date(2026, 8, 29), 8, "none", rows_per_day=300, seed=1, root=DataRoot.open(), cfg=load_dataset_config())


@pytest.fixture
def mlflow_server(tmp_path, monkeypatch) -> str:
    """A real `mlflow server`, configured as the tracking + registry URI."""
    with mlflow_server_process(tmp_path) as port:
        url = f"http://127.0.0.1:{port}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
        get_settings.cache_clear()
        yield url


def test_a_daily_run_on_an_s3_data_root_publishes_its_summary_to_s3(
    s3_data_url, s3_endpoint, quick_sensor, airflow_env, churnguard_home
):
    import boto3

    seed_world()
    env = with_home(
        airflow_env,
        churnguard_home,
        CHURNGUARD_CONFIG_DIR=str(quick_sensor),
        CHURNGUARD_DATA_URL=s3_data_url,
        CHURNGUARD_S3_ENDPOINT_URL=s3_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )

    assert run_day(env, DAY) == "success"

    bucket, prefix = s3_data_url.removeprefix("s3://").split("/", 1)
    obj = boto3.client("s3", endpoint_url=s3_endpoint).get_object(
        Bucket=bucket, Key=f"{prefix}/reports/ds={DAY}/summary.json"
    )
    summary = json.loads(obj["Body"].read())
    assert summary["ds"] == DAY and summary["rows"] == 300 and summary["champion_version"] == 1
    (row,) = open_store().rows(schema.daily_runs, where={"ds": DAY})
    assert row["rows"] == 300 and row["decision"] == summary["decision"]
    assert not (churnguard_home / "data").exists(), "nothing may land on the local file system"


def test_a_daily_run_against_an_mlflow_server_logs_its_run_through_the_rest_api(
    mlflow_server, quick_sensor, airflow_env, churnguard_home
):
    from mlflow import MlflowClient

    seed_world()
    env = with_home(
        airflow_env, churnguard_home, CHURNGUARD_CONFIG_DIR=str(quick_sensor), MLFLOW_TRACKING_URI=mlflow_server
    )

    assert run_day(env, DAY) == "success"

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    experiment = client.get_experiment_by_name(get_settings().mlflow_experiment)
    (run,) = client.search_runs(
        [experiment.experiment_id], f"tags.`churnguard.kind` = 'daily' and tags.`churnguard.ds` = '{DAY}'"
    )
    assert run.info.status == "FINISHED"
    champion = client.get_model_version_by_alias("churn-model", registry.CHAMPION)
    assert champion.version == "1" and champion.status == "READY"
    assert run.data.tags["decision"] == open_store().rows(schema.daily_runs, where={"ds": DAY})[0]["decision"]
    assert not (churnguard_home / "mlflow.db").exists(), "the default SQLite store must not be used"
