"""The Airflow shell around churnguard (plugins/churnguard_airflow): the run's date, and credentials the
Airflow way. Inside Airflow, the data root's S3 and the monitoring store come from the
connections ``churnguard_s3`` and ``churnguard_store`` (here as ``AIRFLOW_CONN_…`` JSON, as a deployment or
a secrets backend gives them); churnguard's own variables are the fallback."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from sqlalchemy.engine import make_url

from churnguard.settings import get_settings, reset_settings
from churnguard.storage import open_storage
from churnguard.store import open_store, schema
from churnguard_airflow.connections import apply_connections, connection_settings


@pytest.fixture
def clean_env(monkeypatch):
    for var in (
        "CHURNGUARD_DB_URL",
        "CHURNGUARD_S3_ENDPOINT_URL",
        "AIRFLOW_CONN_CHURNGUARD_S3",
        "AIRFLOW_CONN_CHURNGUARD_STORE",
    ):
        monkeypatch.delenv(var, raising=False)
    yield monkeypatch
    reset_settings()


def test_without_connections_churnguard_keeps_its_own_variables(clean_env):
    clean_env.setenv("CHURNGUARD_DB_URL", "sqlite:///kept.db")
    assert connection_settings() == {} and apply_connections() == {}
    assert get_settings().db_url == "sqlite:///kept.db"


@pytest.mark.integration
def test_the_connections_give_the_store_and_the_data_root_credentials(clean_env, postgres_url, s3_endpoint):
    import boto3

    db = make_url(postgres_url)
    clean_env.setenv(
        "AIRFLOW_CONN_CHURNGUARD_STORE",
        json.dumps(
            {"conn_type": "postgres", "login": db.username, "host": db.host, "port": db.port, "schema": db.database}
        ),
    )
    clean_env.setenv(
        "AIRFLOW_CONN_CHURNGUARD_S3",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    bucket = f"cg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    clean_env.setenv("CHURNGUARD_DATA_URL", f"s3://{bucket}/data")
    clean_env.setenv("CHURNGUARD_DB_URL", "sqlite:///never-used.db")  # the connection wins inside Airflow

    applied = apply_connections()

    assert applied["db_url"] == postgres_url and applied["s3_endpoint_url"] == s3_endpoint
    assert os.environ["CHURNGUARD_DB_URL"] == "sqlite:///never-used.db"  # the environment is left as it was
    store = open_store()
    assert store.engine.url.render_as_string(hide_password=False) == postgres_url
    store.upsert(schema.alerts, [{"ds": "2026-09-01", "kind": "decision", "severity": "warning", "message": "m"}])
    assert [r["message"] for r in open_store(postgres_url).rows(schema.alerts)] == ["m"]
    open_storage().write_bytes("probe.txt", b"ok")
    assert (
        boto3.client("s3", endpoint_url=s3_endpoint).get_object(Bucket=bucket, Key="data/probe.txt")["Body"].read()
        == b"ok"
    )


def test_a_password_with_url_characters_survives_into_the_store_url(clean_env):
    clean_env.setenv(
        "AIRFLOW_CONN_CHURNGUARD_STORE",
        json.dumps(
            {
                "conn_type": "postgres",
                "login": "cg",
                "password": "p@ss/w:rd",
                "host": "db",
                "port": 5432,
                "schema": "churnguard",
            }
        ),
    )
    url = make_url(connection_settings()["db_url"])
    assert (url.drivername, url.password, url.host, url.database) == (
        "postgresql+psycopg2",
        "p@ss/w:rd",
        "db",
        "churnguard",
    )


def test_a_store_connection_of_another_type_is_an_error_naming_it(clean_env):
    clean_env.setenv("AIRFLOW_CONN_CHURNGUARD_STORE", json.dumps({"conn_type": "mysql", "host": "db"}))
    with pytest.raises(ValueError, match="churnguard_store: type 'mysql', expected postgres or sqlite"):
        connection_settings()


@pytest.mark.parametrize(
    ("context", "says"),
    [
        ({"params": {}, "logical_date": None}, "no batch date: this run has no logical date"),
        ({"params": {"batch_date": "yesterday"}, "logical_date": None}, "yesterday"),
    ],
)
def test_a_run_without_a_usable_date_fails_at_once_without_retries(context, says):
    from airflow.sdk.exceptions import AirflowFailException

    from churnguard_airflow.day import batch_date

    with pytest.raises(AirflowFailException, match=says):
        batch_date(context)
