"""Engine, migrations and upserts of the monitoring store."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, and_, create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import Connection

from churnguard.crashpoints import crash_point
from churnguard.settings import get_settings
from churnguard.store import schema

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def _alembic_config(connection: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@contextlib.contextmanager
def exclusive(engine: Engine, name: str) -> Iterator[None]:
    """Held by one process at a time per ``name``: a PostgreSQL advisory lock, or a file lock in the folder
    ``<database>.locks`` beside the SQLite file (an in-memory database is private to its process and needs
    none). The lock files stay: removing a flocked file lets a waiter and a newcomer hold two different files."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": name})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
                conn.commit()
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    folder = Path(f"{database}.locks")
    folder.mkdir(exist_ok=True)
    with (folder / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; concurrent processes migrate one after another."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise in CLI output and task logs
    from alembic import command

    with exclusive(engine, "churnguard-migrate"), engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")


def _engine(url: str) -> Engine:
    with _engines_lock:
        if url not in _engines:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"timeout": 60})

                @event.listens_for(engine, "connect")
                def _sqlite_pragmas(dbapi_conn, _):  # concurrent readers + one writer, waits not errors
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA busy_timeout=60000")
                    cur.close()
            else:
                engine = create_engine(url, pool_pre_ping=True)
            migrate(engine)
            _engines[url] = engine
        return _engines[url]


def _iso(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


class MonitoringStore:
    """Upserts and reads over the monitoring tables."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @staticmethod
    def _table(table: Table) -> Table:
        """Tables are named by their objects in :mod:`churnguard.store.schema`, never by a string."""
        if not isinstance(table, Table):
            raise TypeError(f"name the table by its object in churnguard.store.schema, not {table!r}")
        return table

    @staticmethod
    def _dialect_insert(conn: Connection, table):
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(table)

    def _insert(self, conn: Connection, table, rows: list[dict], keys: list[str]) -> None:
        stmt = self._dialect_insert(conn, table).values(rows)
        updates = {
            c.name: stmt.excluded[c.name]
            for c in table.columns
            if c.name not in keys and not c.primary_key and c.name in rows[0]
        }
        conn.execute(
            stmt.on_conflict_do_update(index_elements=keys, set_=updates)
            if updates
            else stmt.on_conflict_do_nothing(index_elements=keys)
        )

    def upsert(
        self,
        table: Table,
        rows: Iterable[dict[str, Any]],
        keys: list[str] | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Insert ``rows`` into ``table``, replacing rows with the same key (default: primary key); in
        ``conn``'s transaction when given, else in one of its own."""
        rows = list(rows)
        if not rows:
            return 0
        table = self._table(table)
        keys = keys or [c.name for c in table.primary_key.columns]
        if conn is not None:
            self._insert(conn, table, rows, keys)
            return len(rows)
        with self.engine.begin() as own:
            self._insert(own, table, rows, keys)
        crash_point(f"store.{table.name}.written")
        return len(rows)

    def add_if_absent(self, table: Table, row: dict[str, Any]) -> dict:
        """Insert ``row`` unless a row with its primary key exists; returns the stored row (the first writer
        wins, so runs of one date at once agree on it)."""
        table = self._table(table)
        keys = [c.name for c in table.primary_key.columns]
        with self.engine.begin() as conn:
            conn.execute(self._dialect_insert(conn, table).values([row]).on_conflict_do_nothing(index_elements=keys))
            stored = conn.execute(select(table).where(and_(*(table.c[k] == row[k] for k in keys)))).one()
        crash_point(f"store.{table.name}.written")
        return dict(stored._mapping)

    def replace_day(self, table: Table, ds: date | str, rows: Iterable[dict[str, Any]], day_column: str = "ds") -> int:
        """Replace all rows of one day in ``table`` with ``rows`` (one transaction)."""
        rows = [{**r, day_column: _iso(ds)} for r in rows]
        table = self._table(table)
        with self.engine.begin() as conn:
            conn.execute(delete(table).where(table.c[day_column] == _iso(ds)))
            if rows:
                conn.execute(insert(table), rows)
        crash_point(f"store.{table.name}.written")
        return len(rows)

    def record_event(
        self,
        ds: date | str,
        event_name: str,
        model_name: str,
        version: int,
        from_version: int | None = None,
        reason: str = "",
        conn: Connection | None = None,
    ) -> None:
        """A model event, once per (day, event, model, version): a re-run does not duplicate it."""
        row = {
            "ds": _iso(ds),
            "event": event_name,
            "model_name": model_name,
            "model_version": version,
            "from_version": from_version,
            "reason": reason,
        }
        self.upsert(schema.model_events, [row], keys=["ds", "event", "model_name", "model_version"], conn=conn)

    def _select(
        self,
        table: Table,
        columns: list[str] | None,
        where: dict[str, Any] | None,
        since: str | None,
        until: str | None,
        order_by: str | tuple[str, ...] | None,
        day_column: str,
    ):
        """The SELECT of ``columns`` (all: None) of ``table``, filtered by ``where`` and the day range."""
        table = self._table(table)
        clauses = [table.c[k] == v for k, v in (where or {}).items()]
        if since is not None:
            clauses.append(table.c[day_column] >= _iso(since))
        if until is not None:
            clauses.append(table.c[day_column] <= _iso(until))
        stmt = select(*(table.c[col] for col in columns)) if columns else select(table)
        if clauses:
            stmt = stmt.where(and_(*clauses))
        for col in (order_by,) if isinstance(order_by, str) else order_by or ():
            stmt = stmt.order_by(table.c[col])
        return stmt

    def rows(
        self,
        table: Table,
        where: dict[str, Any] | None = None,
        since: str | None = None,
        until: str | None = None,
        order_by: str | None = None,
        day_column: str = "ds",
    ) -> list[dict]:
        stmt = self._select(table, None, where, since, until, order_by, day_column)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def tuples(
        self,
        table: Table,
        columns: list[str],
        since: str | None = None,
        until: str | None = None,
        day_column: str = "ds",
        order_by: str | tuple[str, ...] = ("ds",),
        where: dict[str, Any] | None = None,
    ) -> list[tuple]:
        """Only ``columns``, as tuples: what a page over a long history reads (a dict per row costs more)."""
        stmt = self._select(table, columns, where, since, until, order_by, day_column)
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]

    def count(self, table: Table) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(self._table(table))).scalar_one()


def open_store(url: str | None = None) -> MonitoringStore:
    """The monitoring store at ``url`` (default ``CHURNGUARD_DB_URL``), migrated to the newest schema."""
    return MonitoringStore(_engine(url or get_settings().db_url))
