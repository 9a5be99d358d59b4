"""The date's lease: one run per date; a second run waits, and a holder that cannot run any more is taken over."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from churnguard.store import lease, open_store, schema

DS = "2026-09-03"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])  # local PostgreSQL
def store(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'monitoring.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    return open_store(url)


def test_a_second_run_of_the_date_waits_until_the_first_releases_it(store, caplog):
    first, second = "airflow:churn_daily_monitoring:scheduled__2026-09-03", lease.process_holder()
    lease.acquire(store, DS, first)
    got = threading.Event()
    waiter = threading.Thread(target=lambda: (lease.acquire(store, DS, second), got.set()), daemon=True)
    with caplog.at_level("WARNING", logger="churnguard.store.lease"):
        waiter.start()
        assert not got.wait(1.5)  # still held by the first run
        assert lease.holder_of(store, DS) == first
        assert lease.release(store, DS, first)
        assert got.wait(10)
    waiter.join(10)
    assert lease.holder_of(store, DS) == second
    assert f"{DS} is being processed by {first}" in caplog.text


def test_a_run_renews_its_own_lease_and_releases_only_its_own(store):
    mine, other = lease.process_holder(), "airflow:d:manual__1"
    assert lease.try_acquire(store, DS, mine) is None
    assert lease.try_acquire(store, DS, mine) is None  # every step renews it
    assert lease.try_acquire(store, DS, other)["holder"] == mine
    assert not lease.release(store, DS, other)
    assert lease.release(store, DS, mine) and lease.holder_of(store, DS) is None


def test_the_lease_of_a_killed_process_of_this_machine_is_taken_over_at_once(store):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = lease.process_holder(proc.pid)
        assert lease.try_acquire(store, DS, dead) is None
        assert lease.try_acquire(store, DS, "airflow:d:r")["holder"] == dead  # alive: held
    finally:
        proc.kill()
        proc.wait()
    assert lease.try_acquire(store, DS, "airflow:d:r") is None
    assert lease.holder_of(store, DS) == "airflow:d:r"


def test_an_expired_lease_is_taken_over_by_exactly_one_run(store):
    lease.acquire(store, DS, "airflow:d:died-with-its-host")
    table = schema.day_leases
    with store.engine.begin() as conn:
        conn.execute(update(table).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    results = {}

    def take(name):
        results[name] = lease.try_acquire(store, DS, name)

    racers = [threading.Thread(target=take, args=(f"airflow:d:run-{i}",)) for i in range(4)]
    for t in racers:
        t.start()
    for t in racers:
        t.join(30)
    winners = [name for name, row in results.items() if row is None]
    assert len(winners) == 1 and lease.holder_of(store, DS) == winners[0]


def test_held_releases_the_date_however_the_block_ends(store):
    with pytest.raises(RuntimeError), lease.held(store, DS, lease.process_holder()):
        assert lease.holder_of(store, DS) is not None
        raise RuntimeError("a step failed")
    assert lease.holder_of(store, DS) is None
    started = time.monotonic()
    lease.acquire(store, DS, "airflow:d:next")  # nothing to wait for
    assert time.monotonic() - started < 5
