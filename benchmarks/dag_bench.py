"""Airflow's share of the daily monitoring: a backfill through the scheduler vs the same days as a loop.

Both sides start from the same state in their own temporary home (champion bootstrapped, the same
simulated days, embedded defaults: SQLite stores, file:// data root, LocalExecutor): the plain loop runs
``churnguard run-days`` (every step of the DAG, in order, in one process), the backfill runs
``churn_daily_monitoring`` over the same days with ``airflow backfill create`` through a real scheduler,
api-server, dag-processor and triggerer (scripts/airflow_stack.py). Both outputs are compared day by day.
Not a test: numbers to read. The last line is machine-readable.

    python benchmarks/dag_bench.py [--days 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "scripts"))

import airflow_stack  # noqa: E402


def prepare(home: Path, start: date, days: int) -> dict[str, str]:
    """An environment on a fresh home with a champion and ``days`` simulated days (untimed)."""
    env = {**os.environ, "CHURNGUARD_HOME": str(home), "AIRFLOW_HOME": str(home / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "MLFLOW_DISABLE_TELEMETRY": "true",
           "GX_ANALYTICS_ENABLED": "false"}
    last = start + timedelta(days=days - 1)
    os.environ.update(env)
    env["CHURNGUARD_CONFIG_DIR"] = str(airflow_stack.schedule_configs(start.isoformat(), last.isoformat()))
    onset = start + timedelta(days=days // 2)
    for args in (["bootstrap"], ["simulate", "--start", start.isoformat(), "--days", str(days),
                                 "--scenario", "gradual+concept", "--onset", onset.isoformat()]):
        subprocess.run([str(BIN / "churnguard"), *args], env=env, check=True, capture_output=True)
    return env


def decisions(env: dict[str, str]) -> dict[str, str]:
    code = ("import json; from churnguard.store import open_store; "
            "print(json.dumps({r['ds']: r['decision'] for r in open_store().rows('daily_runs')}))")
    out = subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True, capture_output=True, text=True)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 9, 1))
    args = parser.parse_args()
    last = args.start + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="dag-bench-") as tmp:
        loop_env = prepare(Path(tmp) / "loop", args.start, args.days)
        started = time.monotonic()
        subprocess.run([str(BIN / "churnguard"), "run-days", "--start", args.start.isoformat(),
                        "--end", last.isoformat()], env=loop_env, check=True, capture_output=True)
        loop_s = time.monotonic() - started
        print(f"plain loop: {args.days} days in {loop_s:.1f}s ({loop_s / args.days:.2f}s a day)", flush=True)

        dag_env = prepare(Path(tmp) / "airflow", args.start, args.days)
        os.environ.update(dag_env)
        try:
            stack = airflow_stack.start(("churn_daily_monitoring", args.start.isoformat(), last.isoformat()),
                                        with_mlflow=False)
            result = airflow_stack.follow(
                "churn_daily_monitoring", stack,
                on_progress=lambda s: print("  backfill: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())),
                                            flush=True))
        finally:
            subprocess.run(["bash", str(ROOT / "scripts" / "stop.sh")], env=dag_env, capture_output=True)
        backfill_s = result["seconds"]
        print(f"backfill: {result['runs']} runs {result['states']} in {backfill_s:.1f}s "
              f"({backfill_s / args.days:.2f}s a run); Airflow overhead {backfill_s - loop_s:.1f}s "
              f"({(backfill_s - loop_s) / args.days:.2f}s a run)")
        same = decisions(loop_env) == decisions(dag_env)
        print(f"same decision on every day in both: {same}")
    print(f"dag-bench backfill_s={backfill_s:.1f} loop_s={loop_s:.1f} ratio={backfill_s / loop_s:.2f}")


if __name__ == "__main__":
    main()
