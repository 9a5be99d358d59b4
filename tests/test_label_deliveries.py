"""A label delivery is measured exactly once, whatever happened to the day it landed on: a quarantined batch, a
run that crashed, the first day with labels ever; through ``churnguard run-days`` on real homes.

Labels are 2 days late, so the delivery of 09-03 holds the labels of 09-01's customers: the first delivery of
the home, landing on the day whose batch is spoiled."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import SavedWorld, churnguard_cli

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("label_deliveries")]

LANDED = "2026-09-03"  # the first label delivery (for 09-01) lands on this day
NEXT = "2026-09-04"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SavedWorld:
    world = SavedWorld(
        tmp_path_factory.mktemp("label-deliveries"),
        ("bootstrap", "--seed", "0"),
        (
            "simulate",
            "--start",
            "2026-09-01",
            "--days",
            "6",
            "--rows-per-day",
            "300",
            "--label-delay",
            "2",
            "--seed",
            "1",
        ),
    )
    world.save()
    return world


def rows(home: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(home / "monitoring.db") as conn:
        return conn.execute(sql).fetchall()


def measured(home: Path) -> dict[str, str]:
    """observed day -> the date whose run measured it (champion rows)."""
    return dict(rows(home, "SELECT observed_ds, measured_ds FROM performance WHERE role = 'champion'"))


def deliveries(home: Path) -> dict[str, str]:
    return dict(rows(home, "SELECT delivery_ds, measured_ds FROM label_deliveries"))


def summary_deliveries(data: Path, ds: str) -> list[str]:
    summary = json.loads((data / "reports" / f"ds={ds}" / "summary.json").read_text())
    return [d["ds"] for d in summary["performance"]["deliveries"]]


def test_the_first_delivery_landing_on_a_quarantined_day_is_measured_by_the_next_run_once(world):
    data = world.restore()
    (data / "landing" / f"ds={LANDED}" / "part-00000.parquet").write_bytes(b"")  # an empty file: quarantined

    first = churnguard_cli(world.env, "run-days", "--start", "2026-09-01", "--end", "2026-09-06")
    again = churnguard_cli(world.env, "run-days", "--start", "2026-09-01", "--end", "2026-09-06")

    assert first.returncode == 1 and f"1 of 6 days failed: {LANDED}" in first.stderr, first.stderr[-3000:]
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert (data / "quarantine" / f"ds={LANDED}").is_dir()
    assert measured(world.home) == {"2026-09-01": NEXT, "2026-09-02": NEXT, "2026-09-04": "2026-09-06"}
    assert deliveries(world.home) == {LANDED: NEXT, NEXT: NEXT, "2026-09-05": "2026-09-05", "2026-09-06": "2026-09-06"}
    assert summary_deliveries(data, NEXT) == [LANDED, NEXT]
    counts = rows(world.home, "SELECT observed_ds, count(*) FROM performance GROUP BY observed_ds, role")
    assert all(n == 1 for _, n in counts)


def test_a_delivery_on_a_day_whose_run_crashed_is_measured_by_the_next_run_and_not_again_by_its_rerun(world):
    data = world.restore()
    assert churnguard_cli(world.env, "run-days", "--start", "2026-09-01", "--end", "2026-09-02").returncode == 0
    crashed = churnguard_cli(world.env, "run-days", "--start", LANDED, crash_at="store.feature_drift.written")
    assert crashed.returncode == -9, crashed.stderr[-3000:]  # killed in drift: the performance step never ran

    later = churnguard_cli(world.env, "run-days", "--start", NEXT, "--end", "2026-09-05")
    rerun = churnguard_cli(world.env, "run-days", "--start", LANDED)

    assert later.returncode == 0 and rerun.returncode == 0, (later.stderr[-2000:], rerun.stderr[-2000:])
    assert measured(world.home) == {"2026-09-01": NEXT, "2026-09-02": NEXT, "2026-09-03": "2026-09-05"}
    assert deliveries(world.home)[LANDED] == NEXT
    assert summary_deliveries(data, NEXT) == [LANDED, NEXT]
    assert summary_deliveries(data, LANDED) == []  # the re-run of the crashed day measures it no second time
