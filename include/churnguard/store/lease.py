"""One run per date: a lease in the monitoring store, taken before a run's first write and released at its end.

Two runs of one date at once (two ``churnguard run-days``, a CLI run beside an Airflow run, a manual Airflow
run beside the scheduled one) would interleave their steps: the second's retrain finds the first's version and
moves ``challenger`` after the first promoted it. So each run names itself (its *holder*), takes the date's
lease before it writes, renews it at every step and releases it when it ends; a second run waits, saying once
whom it waits for, and goes on when the lease is released (a re-run of the date, idempotent).

A lease is taken over without waiting for a holder that cannot be running any more: a process of this machine
that is gone (a SIGKILLed CLI run, whose re-run must not wait), or any holder whose lease expired
(:data:`TTL` after its last renewal: a host that died). The row is compared and set in one statement, so of two
runs taking over one stale lease exactly one gets it.

Example::

    with held(store, "2026-09-03", process_holder()):
        ...  # the date's steps
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, select, update

from churnguard.store import schema
from churnguard.store.core import MonitoringStore

log = logging.getLogger(__name__)
TTL = timedelta(hours=2)  # longer than any step (a 10M-row day's longest step takes minutes)
POLL_SECONDS = 0.5
_PROCESS = "process"


def process_holder(pid: int | None = None) -> str:
    """The holder name of a process of this machine: ``process:<host>:<pid>:<start time>`` (the start time
    tells a reused pid from the process that held the lease)."""
    pid = os.getpid() if pid is None else pid
    return f"{_PROCESS}:{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as fh:  # field 22, after the parenthesised command name
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "0"


def _gone(holder: str) -> bool:
    """The holder is a process of this machine that no longer runs."""
    kind, _, rest = holder.partition(":")
    host, _, rest = rest.partition(":")
    if kind != _PROCESS or host != socket.gethostname():
        return False
    pid, _, started = rest.partition(":")
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return _start_time(int(pid)) != started


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite returns naive datetimes


def try_acquire(store: MonitoringStore, ds: str, holder: str) -> dict | None:
    """Take or renew the lease of ``ds`` for ``holder``; returns None when it is ours now, else the row of the
    run that holds it."""
    table = schema.day_leases
    now = _now()
    with store.engine.begin() as conn:
        conn.execute(
            store._dialect_insert(conn, table)
            .values(ds=ds, holder=holder, acquired_at=now, expires_at=now + TTL)
            .on_conflict_do_nothing(index_elements=["ds"])
        )
        row = conn.execute(select(table).where(table.c.ds == ds)).one()._asdict()
        if row["holder"] == holder:
            conn.execute(update(table).where(table.c.ds == ds).values(expires_at=now + TTL))
            return None
        if not (_aware(row["expires_at"]) <= now or _gone(row["holder"])):
            return row
        taken = conn.execute(
            update(table)
            .where(and_(table.c.ds == ds, table.c.holder == row["holder"]))
            .values(holder=holder, acquired_at=now, expires_at=now + TTL)
        ).rowcount
    if taken:
        log.warning(
            "%s: took over the lease of %s (%s)",
            ds,
            row["holder"],
            "expired" if _aware(row["expires_at"]) <= now else "its process is gone",
        )
        return None
    return row  # another run took it over first: wait for that one


def acquire(store: MonitoringStore, ds: str, holder: str) -> None:
    """:func:`try_acquire`, waiting while another run holds the date (one line when the wait starts, one a
    minute after that)."""
    said = 0.0
    while (row := try_acquire(store, ds, holder)) is not None:
        if time.monotonic() - said >= 60:
            log.warning(
                "%s is being processed by %s (since %s UTC): waiting for it to end",
                ds,
                row["holder"],
                _aware(row["acquired_at"]).strftime("%H:%M:%S"),
            )
            said = time.monotonic()
        time.sleep(POLL_SECONDS)


def release(store: MonitoringStore, ds: str, holder: str) -> bool:
    """End ``holder``'s lease of ``ds`` (nothing when another run holds it); True when one was released."""
    table = schema.day_leases
    with store.engine.begin() as conn:
        return bool(conn.execute(delete(table).where(and_(table.c.ds == ds, table.c.holder == holder))).rowcount)


def holder_of(store: MonitoringStore, ds: str) -> str | None:
    rows = store.rows(schema.day_leases, where={"ds": ds})
    return rows[0]["holder"] if rows else None


@contextlib.contextmanager
def held(store: MonitoringStore, ds: str, holder: str) -> Iterator[None]:
    """The lease of ``ds`` for the block (waiting for another run first), released however the block ends."""
    acquire(store, ds, holder)
    try:
        yield
    finally:
        release(store, ds, holder)
