"""The monitoring store on SQLite and on the machine's real PostgreSQL: migrations, upserts, no duplicates."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from churnguard.store import open_store, schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])  # local PostgreSQL
def store(request, tmp_path):
    if request.param == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'monitoring.db'}")
    return open_store(request.getfixturevalue("postgres_url"))


def test_migrations_build_exactly_the_declared_schema_and_stamp_the_newest_revision(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert set(inspect(store.engine).get_table_names()) == set(schema.metadata.tables) | {"alembic_version"}
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
        assert conn.execute(text("select version_num from alembic_version")).scalar_one() == "0007"


def test_upsert_by_date_replaces_instead_of_duplicating(store):
    row = {"ds": "2026-09-01", "dataset": "telco", "rows": 500, "decision": "healthy", "reasons": []}
    store.upsert(schema.daily_runs, [row])
    store.upsert(schema.daily_runs, [{**row, "rows": 499, "decision": "alert", "reasons": ["moderate drift"]}])
    rows = store.rows(schema.daily_runs)
    assert len(rows) == 1 and rows[0]["rows"] == 499 and rows[0]["reasons"] == ["moderate drift"]


def test_replace_day_swaps_one_days_rows_only(store):
    store.replace_day(
        schema.feature_drift,
        "2026-09-01",
        [{"feature": "tenure", "psi": 0.1, "drifted": False}, {"feature": "contract", "psi": 0.3, "drifted": True}],
    )
    store.replace_day(schema.feature_drift, "2026-09-02", [{"feature": "tenure", "psi": 0.2, "drifted": True}])
    store.replace_day(schema.feature_drift, "2026-09-01", [{"feature": "tenure", "psi": 0.5, "drifted": True}])
    assert store.count(schema.feature_drift) == 2
    assert [r["psi"] for r in store.rows(schema.feature_drift, order_by="ds")] == [0.5, 0.2]


def test_model_events_are_recorded_once_per_day_event_and_version(store):
    for _ in range(3):
        store.record_event("2026-09-10", "promoted", "churn-model", 2, 1, "beat champion")
    store.record_event("2026-09-11", "rolled_back", "churn-model", 1, 2, "manual")
    assert store.count(schema.model_events) == 2


def test_rows_filters_by_day_range(store):
    for day in ("2026-09-01", "2026-09-02", "2026-09-03"):
        store.upsert(schema.alerts, [{"ds": day, "kind": "drift", "severity": "warn", "message": day}])
    assert [r["ds"] for r in store.rows(schema.alerts, since="2026-09-02", order_by="ds")] == [
        "2026-09-02",
        "2026-09-03",
    ]
    assert [r["ds"] for r in store.rows(schema.alerts, until="2026-09-01")] == ["2026-09-01"]


def test_reopening_a_migrated_store_keeps_its_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'again.db'}"
    open_store(url).upsert(schema.alerts, [{"ds": "2026-09-01", "kind": "x", "severity": "warn", "message": "m"}])
    from churnguard.store import core, migrate

    migrate(core._engines[url])
    assert open_store(url).count(schema.alerts) == 1


def test_sqlite_locks_live_in_one_folder_beside_the_database_and_exclude_each_other(tmp_path):
    import threading

    from churnguard.store import core

    store = open_store(f"sqlite:///{tmp_path / 'monitoring.db'}")
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        with core.exclusive(store.engine, "churnguard-daily-run-2026-09-02"):
            order.append("second")

    with core.exclusive(store.engine, "churnguard-daily-run-2026-09-02"):
        waiter = threading.Thread(target=second)
        waiter.start()
        inside.wait(0.5)  # the waiter is blocked on the lock meanwhile
        order.append("first")
    waiter.join(10)
    assert order == ["first", "second"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".lock")]
    assert sorted(p.name for p in (tmp_path / "monitoring.db.locks").iterdir()) == [
        "churnguard-daily-run-2026-09-02.lock",
        "churnguard-migrate.lock",
    ]
