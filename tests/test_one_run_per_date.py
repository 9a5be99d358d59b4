"""Two runs of the same dates at once, as two users would start them: two ``churnguard run-days`` of one range
with forced retrains, on SQLite and on PostgreSQL, started at the same instant. The date's lease makes one
wait for the other, so while they run ``champion`` never equals ``challenger`` (sampled throughout), every date
gets one decision, and the end state equals that of a single run: the same store rows, versions, aliases and
MLflow runs. A batch both runs find bad is quarantined once, and neither stops at it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import BIN, SavedWorld, churnguard_cli

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("one_run_per_date")]

FIRST, LAST, BAD = "2026-09-01", "2026-09-18", "2026-09-05"
RANGE = ("run-days", "--start", FIRST, "--end", LAST, "--force-retrain")

# Each racer imports churnguard, then waits for the go file, so both start their range at the same moment.
RACER = """
import os, sys, time
from churnguard.cli import main
go = sys.argv[1]
while not os.path.exists(go):
    time.sleep(0.01)
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A champion, 18 days whose labels (2 days late) flip for two-year contracts from 09-07 (so forced
    retrains register challengers and two of them are promoted), a junk file beside 09-05's batch; and the
    state a single run of the range leaves."""
    world = SavedWorld(
        tmp_path_factory.mktemp("one-run-per-date"),
        ("bootstrap", "--seed", "0"),
        (
            "simulate",
            "--start",
            FIRST,
            "--days",
            "18",
            "--rows-per-day",
            "400",
            "--label-delay",
            "2",
            "--scenario",
            "concept",
            "--onset",
            "2026-09-07",
            "--intensity",
            "2",
            "--seed",
            "1",
        ),
    )
    (world.home / "data" / "landing" / f"ds={BAD}" / "part-00001.parquet").write_bytes(b"garbage")
    world.save()
    single = churnguard_cli(world.env, *RANGE)
    assert single.returncode == 1 and f"1 of 18 days failed: {BAD}" in single.stderr, single.stderr[-3000:]
    reference = end_state(world.home, world.env)
    assert len([e for e in reference["events"] if e[1] == "promoted"]) == 2  # the race has promotions to spoil
    return world, reference


def end_state(home: Path, env: dict) -> dict:
    """What two runs must leave as one did, read the same way from SQLite and PostgreSQL."""
    engine = create_engine(env.get("CHURNGUARD_DB_URL") or f"sqlite:///{home / 'monitoring.db'}")
    queries = {
        "days": "SELECT ds, decision, promoted, champion_version, challenger_version, rows FROM daily_runs",
        "pinned": "SELECT ds, champion_version, challenger_version FROM day_models",
        "events": "SELECT ds, event, model_version, from_version FROM model_events",
        "performance": "SELECT observed_ds, role, model_version, measured_ds, labelled_rows, roc_auc FROM performance",
        "deliveries": "SELECT delivery_ds, measured_ds, status FROM label_deliveries",
        # the race's moves: bootstrap's ('assigned') is in the store it ran against, before the race's
        "moves": "SELECT ds, event, to_version, from_version, state FROM alias_moves WHERE event <> 'assigned'",
        "steps": "SELECT ds, step FROM day_steps",
        "alerts": "SELECT ds, kind, severity FROM alerts",
        "leases": "SELECT ds FROM day_leases",
    }
    try:
        with engine.connect() as conn:
            state = {
                k: sorted(tuple(str(int(v) if isinstance(v, bool) else v) for v in r) for r in conn.execute(text(q)))
                for k, q in queries.items()
            }
    finally:
        engine.dispose()
    with sqlite3.connect(home / "mlflow.db") as mlflow:
        state["aliases"] = sorted(mlflow.execute("SELECT alias, version FROM registered_model_aliases").fetchall())
        state["versions"] = sorted(mlflow.execute("SELECT version, run_id FROM model_versions").fetchall())
        state["runs"] = sorted(
            mlflow.execute(
                "SELECT t.value, count(*) FROM tags t JOIN runs r ON r.run_uuid = t.run_uuid "
                "WHERE t.key = 'churnguard.kind' GROUP BY t.value"
            ).fetchall()
        )
        # a retrain run whose model is no version says why (churnguard.unregistered)
        state["unexplained_runs"] = mlflow.execute(
            "SELECT count(*) FROM tags t WHERE t.key = 'churnguard.kind' AND t.value = 'retrain' "
            "AND t.run_uuid NOT IN (SELECT run_id FROM model_versions) AND t.run_uuid NOT IN "
            "(SELECT run_uuid FROM tags WHERE key = 'churnguard.unregistered')"
        ).fetchone()[0]
    state["versions"] = len(state["versions"])  # run ids differ from one execution to the next
    state["quarantined"] = sorted(p.name for p in (home / "data" / "quarantine").glob("ds=*"))
    return state


class AliasSampler(threading.Thread):
    """Reads the aliases from MLflow's database every few milliseconds while the runs race."""

    def __init__(self, mlflow_db: Path):
        super().__init__(daemon=True)
        self.db, self.samples, self.stop = mlflow_db, [], threading.Event()

    def run(self) -> None:
        with sqlite3.connect(self.db, timeout=30) as conn:
            while not self.stop.is_set():
                try:
                    aliases = dict(conn.execute("SELECT alias, version FROM registered_model_aliases").fetchall())
                except sqlite3.OperationalError:  # locked by a writer for longer than the timeout
                    continue
                self.samples.append(aliases)
                time.sleep(0.005)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_runs_of_the_same_dates_at_once_end_as_one_run_and_never_make_the_champion_a_challenger(
    world, backend, tmp_path, request
):
    world, reference = world
    world.restore()
    env = dict(world.env)
    if backend == "postgresql":
        env["CHURNGUARD_DB_URL"] = request.getfixturevalue("postgres_url")
        assert churnguard_cli(env, "status").returncode == 0  # migrate the fresh database before the race
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [str(BIN / "python"), "-c", RACER, str(go), *RANGE],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    sampler = AliasSampler(world.home / "mlflow.db")
    try:
        sampler.start()
        go.touch()
        outs = [p.communicate(timeout=600) for p in racers]
    finally:
        sampler.stop.set()
        for p in racers:
            if p.poll() is None:
                os.killpg(p.pid, 9)
                p.wait()
        sampler.join()

    for p, (_, err) in zip(racers, outs, strict=True):
        assert p.returncode == 1, err[-3000:]  # the bad day fails in both, and both reach the end of the range
        assert f"1 of 18 days failed: {BAD}" in err and "Traceback" not in err, err[-3000:]
    assert len(sampler.samples) > 100
    assert all(s.get("champion") != s.get("challenger") for s in sampler.samples if "champion" in s), [
        s for s in sampler.samples if s.get("champion") == s.get("challenger")
    ][:3]
    state = end_state(world.home, env)
    assert state == reference, {k: (state[k], reference[k]) for k in state if state[k] != reference[k]}
    assert state["quarantined"] == [f"ds={BAD}"] and state["leases"] == [] and state["unexplained_runs"] == 0
    assert any("being processed by" in err for _, err in outs)  # one waited for the other at least once
