"""Crash-point suite: a real process is SIGKILLed at every named point around a write, the date is run again,
and what is left must equal an uninterrupted run: the batch visible exactly once, no partition missing, the
same store rows, no duplicate model version, ``champion`` != ``previous``, one daily MLflow run per date (none
left RUNNING), and ``_tmp/`` empty after the sweep.

One world (a champion and 20 simulated days, 19 of them already monitored) is built once and restored at the
same path before each case, so MLflow's absolute artifact paths stay valid."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import SavedWorld, churnguard_cli, warm_python

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("crash_points")]

DAY = "2026-09-20"  # labels of 09-13 arrive; force_retrain registers challenger v2
BAD_DAY = "2026-09-21"  # a junk file lands beside the good one: quarantined

# What a uninterrupted run and a crashed-then-repeated run are compared on (printed as JSON by a subprocess,
# so no engine or MLflow client of this process holds the restored files open).
DUMP = r"""
import json
from datetime import timedelta
from sqlalchemy import create_engine, inspect, text
from churnguard import registry
from churnguard.settings import get_settings
from churnguard.storage import open_storage
import mlflow

settings = get_settings()
storage = open_storage()
engine = create_engine(settings.db_url)
tables = {}
with engine.connect() as conn:
    for name in sorted(inspect(engine).get_table_names()):
        if name == "alembic_version":
            continue
        rows = [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {name}"))]
        for r in rows:
            for volatile in ("id", "created_at", "updated_at", "pinned_at"):
                r.pop(volatile, None)
            if name == "day_steps":  # a retrain's MLflow run id differs from one execution to the next
                r["result"] = {k: v for k, v in json.loads(r["result"]).items() if k != "run_id"}
        tables[name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
name = "churn-model"
models = registry.ModelRegistry(name)
client = models.client
aliases = {a: (v.version if (v := models.version_by_alias(a)) else None)
           for a in ("champion", "challenger", "previous")}
versions = sorted((int(mv.version), mv.tags.get(registry.FINGERPRINT_TAG)) for mv in
                  client.search_model_versions(f"name = '{name}'"))
daily = [(r.data.tags["churnguard.ds"], r.info.status) for r in
         mlflow.search_runs(filter_string="tags.`churnguard.kind` = 'daily'", output_format="list")]
swept = storage.sweep_tmp(timedelta(0))
tmp = settings.home / "data" / "_tmp"
print(json.dumps({"tables": tables, "aliases": aliases, "versions": versions, "daily_runs": sorted(daily),
                  "keys": storage.list_keys(""), "swept": swept,
                  "tmp_left": sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []}))
"""


def dump(env: dict) -> dict:
    proc = warm_python(env, ["-c", DUMP], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A monitored world at a fixed path, its pristine snapshot, and the state after an uninterrupted run."""
    base = tmp_path_factory.mktemp("crash-world")
    saved = SavedWorld(
        base,
        ("bootstrap", "--seed", "0"),
        (
            "simulate",
            "--start",
            "2026-09-01",
            "--days",
            "21",
            "--scenario",
            "none",
            "--rows-per-day",
            "300",
            "--seed",
            "1",
        ),
        ("run-days", "--start", "2026-09-01", "--end", "2026-09-19"),
    )
    home, env, restore = saved.home, saved.env, saved.restore
    bad = home / "data" / "landing" / f"ds={BAD_DAY}"
    (bad / "part-00001.parquet").write_bytes(b"garbage")  # 7 bytes of junk beside a good file
    saved.save()
    retrained = base / "retrained"

    reference = {}
    for day, extra in ((DAY, ("--force-retrain",)), (BAD_DAY, ())):
        restore()
        proc = churnguard_cli(env, "run-days", "--start", day, *extra)
        assert proc.returncode == (0 if day == DAY else 1), proc.stderr[-3000:]
        reference[day] = dump(env)
        if day == DAY:
            saved.save(retrained)  # champion v1, challenger v2: where promotions start
    yield {"env": env, "home": home, "restore": restore, "retrained": retrained, "reference": reference}


def assert_same_as_uninterrupted(state: dict, reference: dict, day: str, home: Path) -> None:
    assert state["tables"] == reference["tables"]
    assert state["versions"] == reference["versions"]  # no duplicate model version
    assert len({fp for _, fp in state["versions"]}) == len(state["versions"])
    assert state["aliases"] == reference["aliases"]
    assert state["aliases"]["champion"] != state["aliases"]["previous"]
    days = [d for d, _ in state["daily_runs"]]
    assert len(days) == len(set(days)), state["daily_runs"]  # one daily MLflow run per date
    assert all(status == "FINISHED" for _, status in state["daily_runs"]), state["daily_runs"]
    assert state["keys"] == reference["keys"]  # no partition missing, none extra
    visible = [k for k in state["keys"] if k.startswith((f"landing/ds={day}/", f"quarantine/ds={day}/"))]
    assert {k.split("/")[0] for k in visible} in ({"landing"}, {"quarantine"})  # the batch exactly once
    assert not state["tmp_left"]


DAILY_POINTS = [
    "storage.write_one.staged",
    "storage.replace.staged",
    "store.feature_drift.written",
    "store.performance.written",
    "store.failure_risk.written",
    "registry.version_registered",
    "registry.alias_set",
    "store.model_events.written",
    "daily.mlflow_run.started",
    "store.daily_runs.written",
]


@pytest.mark.parametrize("point", DAILY_POINTS)
def test_a_day_killed_at_a_write_and_run_again_equals_an_uninterrupted_run(world, point):
    world["restore"]()
    env = world["env"]

    crashed = churnguard_cli(env, "run-days", "--start", DAY, "--force-retrain", crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr[-2000:])
    assert f"crash point {point} reached" in crashed.stderr

    again = churnguard_cli(env, "run-days", "--start", DAY, "--force-retrain")
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same_as_uninterrupted(dump(env), world["reference"][DAY], DAY, world["home"])


@pytest.mark.parametrize("point", ["storage.write_one.staged", "storage.move.moved", "store.alerts.written"])
def test_a_quarantine_killed_halfway_and_run_again_leaves_the_batch_quarantined_once(world, point):
    world["restore"]()
    env = world["env"]

    crashed = churnguard_cli(env, "run-days", "--start", BAD_DAY, crash_at=point)
    assert crashed.returncode == -signal.SIGKILL, (point, crashed.stderr[-2000:])

    again = churnguard_cli(env, "run-days", "--start", BAD_DAY)
    assert again.returncode == 1, again.stderr[-3000:]
    assert f"{BAD_DAY}" in again.stderr and "part-00001.parquet" in again.stderr
    assert_same_as_uninterrupted(dump(env), world["reference"][BAD_DAY], BAD_DAY, world["home"])


PROMOTE = """
import json, sys
from churnguard.context import DayContext
from churnguard.promotion import promote_day, rollback
if sys.argv[1] == "promote":
    print(json.dumps(promote_day(DayContext.build("2026-09-22"), False, decide=lambda: (True, "test promotion"))))
else:
    ctx = DayContext.build("2026-09-23")
    print(json.dumps(rollback(ctx.store, ctx.registry, ctx.ds, "previous", "test rollback")))
"""


MOVES = [
    (action, point)
    for action in ("promote", "rollback")
    for point in (
        "promotion.intent_recorded",
        "promotion.previous_cleared",
        "promotion.champion_moved",
        "promotion.previous_moved",
        "promotion.challenger_cleared",
    )
    # a promotion's target is never `previous`; a rollback clears no challenger
    if (action, point) not in (("promote", "promotion.previous_cleared"), ("rollback", "promotion.challenger_cleared"))
]


@pytest.mark.parametrize(("action", "point"), MOVES)
def test_a_promotion_or_rollback_killed_at_any_step_is_completed_by_the_retry(world, action, point):
    world["restore"](world["retrained"])  # champion v1, challenger v2
    env = world["env"]
    if action == "rollback":  # v2 champion, v1 previous: roll back to v1
        proc = warm_python(env, ["-c", PROMOTE, "promote"])
        assert proc.returncode == 0, proc.stderr[-2000:]

    crashed = warm_python({**env, "CHURNGUARD_CRASH_AT": point}, ["-c", PROMOTE, action])
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]

    retry = warm_python(env, ["-c", PROMOTE, action])
    assert retry.returncode == 0, retry.stderr[-2000:]
    state = dump(env)
    expected = (
        {"champion": 2, "previous": 1, "challenger": None}
        if action == "promote"
        else {"champion": 1, "previous": 2, "challenger": None}
    )
    assert state["aliases"] == expected
    events = [json.loads(r) for r in state["tables"]["model_events"]]
    moved = [e for e in events if e["event"] in ("promoted", "rolled_back")]
    wanted = "promoted" if action == "promote" else "rolled_back"
    assert [(e["event"], e["model_version"], e["from_version"]) for e in moved if e["event"] == wanted] == [
        (wanted, expected["champion"], expected["previous"])
    ]  # once, and never "promoted 2 from 2"
    assert all(json.loads(r)["state"] == "done" for r in state["tables"]["alias_moves"])
