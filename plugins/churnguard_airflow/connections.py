"""Credentials the Airflow way: a task takes the data root's S3 endpoint and keys, and the monitoring store's
URL, from the Airflow connections ``churnguard_s3`` (type ``aws``, ``endpoint_url`` in its extras) and
``churnguard_store`` (type ``postgres``) when they are defined, so a secrets backend or ``AIRFLOW_CONN_…``
variables work. churnguard's own environment variables stay the fallback, and the only way outside Airflow.

The connections become settings of churnguard's one settings object (:func:`churnguard.settings.override_settings`),
in the task's own process, before the task runs (:func:`use_connections`, every churnguard DAG's ``pre_execute``
hook); nothing is written to the environment.
"""

from __future__ import annotations

from typing import Any

S3_CONN_ID = "churnguard_s3"
STORE_CONN_ID = "churnguard_store"


def _connection(conn_id: str) -> Any | None:
    """The connection, or None when it is not defined; any other failure (a secrets backend down) raises."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def s3_settings(conn: Any) -> dict[str, str]:
    """The churnguard settings an ``aws`` connection stands for."""
    extra = conn.extra_dejson
    endpoint = extra.get("endpoint_url") or extra.get("service_config", {}).get("s3", {}).get("endpoint_url")
    values = {
        "s3_access_key_id": conn.login,
        "s3_secret_access_key": conn.password,
        "s3_region": extra.get("region_name"),
        "s3_endpoint_url": endpoint,
    }
    return {k: v for k, v in values.items() if v}


def store_url(conn: Any) -> str:
    """The SQLAlchemy URL of a ``postgres`` (or ``sqlite``) connection."""
    from sqlalchemy.engine import URL

    if conn.conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    if conn.conn_type not in ("postgres", "postgresql"):
        raise ValueError(f"connection {conn.conn_id}: type {conn.conn_type!r}, expected postgres or sqlite")
    return URL.create(
        "postgresql+psycopg2",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
    ).render_as_string(hide_password=False)


def connection_settings() -> dict[str, str]:
    """The settings the defined connections stand for (empty when neither is defined)."""
    values = {}
    if (s3 := _connection(S3_CONN_ID)) is not None:
        values.update(s3_settings(s3))
    if (store := _connection(STORE_CONN_ID)) is not None:
        values["db_url"] = store_url(store)
    return values


def use_connections(context: Any = None) -> None:
    """A task's ``pre_execute`` hook (every churnguard DAG sets it in ``default_args``): the connections are
    applied before the task opens anything, and a failure to read them (a secrets backend down) fails the
    task instead of leaving it on the fallback."""
    apply_connections()


def apply_connections() -> dict[str, str]:
    """Make the connections' settings this process's (a task's own) through the settings object; returns them."""
    values = connection_settings()
    if values:
        from churnguard.settings import override_settings

        override_settings(**values)
    return values
