"""A simulated 60-day history for the Model Health pages, in a real churnguard home: the monitoring store filled
through its own upserts the way :mod:`benchmarks.health_bench` fills it (daily runs, feature drift, performance
per role, failure risk, model events, alerts), a drift.json per day shaped and sized like a real one, and the
last day's validation result; and `airflow api-server` over it (SimpleAuthManager, an admin and a viewer with known
passwords, the DAGs serialized into the metadata DB so they can be triggered)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import random
import secrets
import subprocess
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from churnguard.store import schema
from tests.conftest import BIN, ROOT, running_api_server, warn_level_validation

HISTORY_DAYS = 60


def _health_bench(days: int):
    """benchmarks/health_bench.py (not a package) with its history shortened to ``days``."""
    spec = importlib.util.spec_from_file_location("_health_bench_ui", ROOT / "benchmarks" / "health_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.DAYS = days
    return module


def build_history(home: Path, days: int = HISTORY_DAYS) -> list[str]:
    """Fill the churnguard home ``home`` (CHURNGUARD_HOME must point at it) with ``days`` monitored days; returns
    the days. A retrain registers v2 on day 60 of health_bench's cycle, so with 60 days v1 is the only champion:
    one extra promotion of v2 on the last but ten day gives the Models page a version to roll back to; the last
    three days' decision, observed as the daily run records it, is an open alert episode to acknowledge."""
    from churnguard import alerts
    from churnguard.dataroot import DataRoot
    from churnguard.settings import get_settings
    from churnguard.store import open_store

    get_settings.cache_clear()
    bench = _health_bench(days)
    rng = random.Random(13)
    store, root = open_store(), DataRoot.open()
    bench.fill_store(store, rng)
    all_days = bench.days()
    store.record_event(all_days[-20], "registered", "churn-model", 2, reason="drift: critical")
    store.record_event(
        all_days[-10], "promoted", "churn-model", 2, from_version=1, reason="challenger better on 9 labelled days"
    )
    moved = []
    for k, ds in enumerate(all_days[-20:]):
        (row,) = store.rows(schema.daily_runs, where={"ds": ds})
        row.update(
            champion_version=1 if k < 10 else 2,
            challenger_version=2 if k < 10 else None,
            promoted=k == 10,
            decision="promoted" if k == 10 else row["decision"],
        )
        moved.append(row)
    store.upsert(schema.daily_runs, moved)
    for ds in all_days[-3:]:
        alerts.observe(
            store,
            ds,
            alerts.DECISION,
            alerts.Alert(ds, alerts.DECISION, alerts.WARNING, "decision=alert: moderate drift (top tenure)"),
        )
    for ds in all_days:
        root.write_report(ds, "drift.json", json.dumps(bench.drift_doc(rng)).encode())
    root.write_report(all_days[-1], "validation.json", warn_level_validation(all_days[-1]).to_json().encode())
    store.engine.dispose()
    return all_days


def first_day() -> date:
    return _health_bench(HISTORY_DAYS).FIRST


def last_day(days: int = HISTORY_DAYS) -> str:
    return (first_day() + timedelta(days=days - 1)).isoformat()


@contextlib.contextmanager
def api_server(airflow_env: dict[str, str], home: Path, viewer: str | None = None) -> Iterator[dict]:
    """`airflow api-server` on a free loopback port over the churnguard home ``home``, with a user ``admin``
    (role admin) and optionally ``viewer`` (role viewer: may read, not trigger), passwords known; the DAGs are
    serialized first. Stopped (with its workers) on exit."""
    roles = {"admin": "admin", **({viewer: "viewer"} if viewer else {})}
    passwords = {user: secrets.token_urlsafe(12) for user in roles}
    (home / "passwords.json").write_text(json.dumps(passwords))
    env = {
        **airflow_env,
        "CHURNGUARD_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(f"{u}:{r}" for u, r in roles.items()),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }
    result = subprocess.run(
        [str(BIN / "airflow"), "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with running_api_server(env, home) as url:
        yield {"url": url, "home": home, "passwords": passwords, "env": env}
