"""Runs of different dates overlapping: several processes promoting or writing the store at the same moment
leave one promotion, consistent aliases and no duplicate or lost rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from churnguard.settings import get_settings
from churnguard.store import open_store, schema
from tests.registry_helpers import bootstrap, churn_registry

pytestmark = pytest.mark.integration

# Each process imports churnguard, then waits for the go file, so that all of them act at the same moment.
RACER = """
import json, os, sys, time
from churnguard.context import DayContext
from churnguard.promotion import promote_day
from churnguard.store import open_store
from churnguard.store import schema
go, action, arg = sys.argv[1], sys.argv[2], sys.argv[3]
store = open_store()
while not os.path.exists(go):
    time.sleep(0.01)
if action == "promote":
    print(json.dumps(promote_day(DayContext.build(arg), False, decide=lambda: (True, "race"))))
elif action == "daily_run":
    from churnguard.daily import _log_day_run
    summary = {"decision": "healthy", "rows": 10, "failure_risk": {},
               "drift": {"severity": "stable", "drift_share": 0.0, "weighted_drift": 0.0}}
    print(json.dumps({"run_id": _log_day_run(DayContext.build(arg), summary)}))
else:
    for i in range(20):
        row = {"ds": arg, "dataset": "telco", "rows": i, "decision": "healthy", "reasons": []}
        store.upsert(schema.daily_runs, [row])
    print(json.dumps({"ds": arg}))
"""


def race(tmp_path: Path, action: str, args: list[str]) -> list[dict]:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(go), action, arg],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for arg in args
    ]
    try:
        go.touch()
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def test_four_runs_promoting_at_once_promote_exactly_once(tmp_path):
    bootstrap("telco", seed=0)
    churn_registry().set_alias("challenger", bootstrap("telco", seed=1)["version"]["version"])

    results = race(tmp_path, "promote", ["2026-09-10", "2026-09-11", "2026-09-12", "2026-09-13"])

    assert sum(r["promoted"] for r in results) == 1
    assert all("concurrent run" in r["reason"] for r in results if not r["promoted"])
    assert churn_registry().version_by_alias("champion").version == 2
    assert churn_registry().version_by_alias("previous").version == 1
    assert churn_registry().version_by_alias("challenger") is None
    (event,) = open_store().rows(schema.model_events, where={"event": "promoted"})
    assert event["model_version"] == 2 and event["from_version"] == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_overlapping_runs_of_different_dates_write_the_store_without_losing_or_duplicating_rows(
    backend, tmp_path, monkeypatch, request
):
    if backend == "postgresql":
        monkeypatch.setenv("CHURNGUARD_DB_URL", request.getfixturevalue("postgres_url"))
        get_settings.cache_clear()
    days = [f"2026-09-{d:02d}" for d in range(1, 7)]

    race(tmp_path, "upsert", days)

    rows = open_store().rows(schema.daily_runs)
    assert sorted(r["ds"] for r in rows) == days
    assert {r["rows"] for r in rows} == {19}


DAY_SUMMARY = {
    "decision": "healthy",
    "rows": 10,
    "failure_risk": {},
    "drift": {"severity": "stable", "drift_share": 0.0, "weighted_drift": 0.0},
}


def _daily_runs(ds: str) -> list:
    import mlflow

    churn_registry().configure()
    return mlflow.search_runs(
        filter_string=f"tags.`churnguard.ds` = '{ds}' and tags.`churnguard.kind` = 'daily'", output_format="list"
    )


def test_four_runs_of_one_date_publishing_at_once_share_one_daily_mlflow_run(tmp_path):
    from churnguard.storage import open_storage

    open_storage().write_bytes("reports/ds=2026-09-10/drift.json", b"{}")
    churn_registry().configure()  # the MLflow store exists (bootstrap made it): its own schema is not raced here

    results = race(tmp_path, "daily_run", ["2026-09-10"] * 4)

    assert len({r["run_id"] for r in results}) == 1
    (run,) = _daily_runs("2026-09-10")
    assert run.info.status == "FINISHED"


def test_a_daily_mlflow_run_left_running_by_a_killed_process_is_closed_by_the_next_run():
    from churnguard.daily import _log_day_run
    from churnguard.storage import open_storage
    from tests.conftest import day_context

    storage = open_storage()
    for ds in ("2026-09-10", "2026-09-11"):
        storage.write_bytes(f"reports/ds={ds}/drift.json", b"{}")
    orphan = churn_registry().client.create_run(
        churn_registry().configure(),  # what a SIGKILL inside the run leaves
        tags={"churnguard.ds": "2026-09-10", "churnguard.kind": "daily"},
    )
    assert churn_registry().client.get_run(orphan.info.run_id).info.status == "RUNNING"

    _log_day_run(day_context("2026-09-11"), DAY_SUMMARY)

    assert churn_registry().client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert _daily_runs("2026-09-11")[0].info.status == "FINISHED"
    _log_day_run(day_context("2026-09-10"), DAY_SUMMARY)  # its own date reuses the run: still one for the date
    (run,) = _daily_runs("2026-09-10")
    assert run.info.run_id == orphan.info.run_id and run.info.status == "FINISHED"
