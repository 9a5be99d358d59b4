"""The monitoring store: daily runs, feature drift, performance, failure risk, model events, alerts.

SQLAlchemy over ``CHURNGUARD_DB_URL`` (a SQLite file by default, PostgreSQL when scaled out), schema
managed by Alembic migrations that run when the store is opened. Writes are upserts keyed by date, so a
re-run or a backfill of a day replaces that day's rows and never duplicates them.

>>> store = open_store("sqlite:///:memory:")
>>> store.upsert(schema.alerts, [{"ds": "2026-01-01", "kind": "drift", "severity": "warn", "message": "m"}])
"""

from churnguard.store import schema
from churnguard.store.core import MonitoringStore, exclusive, migrate, open_store

__all__ = ["MonitoringStore", "exclusive", "migrate", "open_store", "schema"]
