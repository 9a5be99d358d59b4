"""Airflow's share of the daily monitoring: a backfill through the scheduler vs the same days as a loop,
and vs Airflow's own floor for the DAG's shape.

Both sides start from the same state in their own temporary home (champion bootstrapped, the same
simulated days, embedded defaults: SQLite stores, file:// data root, LocalExecutor): the plain loop runs
``churnguard run-days`` (every step of the DAG, in order, in one process), the backfill runs
``churn_daily_monitoring`` over the same days with ``airflow backfill create`` through a real scheduler,
api-server, dag-processor and triggerer (scripts/airflow_stack.py). Both outputs are compared day by day.

Then, through the same services, the same days of ``churn_noop_floor``: a no-op twin of the daily DAG
generated from it on every run (``benchmarks/noop_dag.py``: its tasks, edges, trigger rules, branch and
schedule read from a DagBag of the real DAG), written beside symlinks to the real DAG files in the bench's
own dags folder. Its backfill is timed as the real one is: ``noop_s`` is what Airflow alone costs for this
shape and these days, so ``floor_ratio = backfill_s / (loop_s + noop_s)`` is the backfill against the
work plus that floor (target <= 1.3), and ``ratio = backfill_s / loop_s`` against the work alone (target <= 3).
Not a test: numbers to read (noisy on a small shared machine). The last line is machine-readable.

    python benchmarks/dag_bench.py [--days 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_ID, TWIN_ID = "churn_daily_monitoring", "churn_noop_floor"
TARGETS = {"ratio": 3.0, "floor_ratio": 1.3}
sys.path.insert(0, str(ROOT / "scripts"))

import airflow_stack  # noqa: E402
import clean_stop  # noqa: E402


def prepare(home: Path, start: date, days: int) -> dict[str, str]:
    """An environment on a fresh home with a champion and ``days`` simulated days (untimed)."""
    env = {
        **os.environ,
        "CHURNGUARD_HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
    last = start + timedelta(days=days - 1)
    os.environ.update(env)
    env["CHURNGUARD_CONFIG_DIR"] = str(airflow_stack.schedule_configs(start.isoformat(), last.isoformat()))
    onset = start + timedelta(days=days // 2)
    for args in (
        ["bootstrap"],
        [
            "simulate",
            "--start",
            start.isoformat(),
            "--days",
            str(days),
            "--scenario",
            "gradual+concept",
            "--onset",
            onset.isoformat(),
        ],
    ):
        subprocess.run([str(BIN / "churnguard"), *args], env=env, check=True, capture_output=True)
    return env


def decisions(env: dict[str, str]) -> dict[str, str]:
    code = (
        "import json; from churnguard.store import open_store, schema; "
        "print(json.dumps({r['ds']: r['decision'] for r in open_store().rows(schema.daily_runs)}))"
    )
    out = subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def dags_with_twin(folder: Path, env: dict[str, str]) -> dict:
    """``folder``: the real DAG files (symlinked) and the no-op twin generated from the daily DAG as it is now
    (untimed); returns the twin's shape (tasks, edges)."""
    folder.mkdir()
    for path in sorted((ROOT / "dags").glob("*.py")):
        (folder / path.name).symlink_to(path)
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "plugins"), env.get("PYTHONPATH")) if p)}
    out = subprocess.run(
        [
            str(BIN / "python"),
            str(ROOT / "benchmarks" / "noop_dag.py"),
            str(ROOT / "dags" / f"{DAG_ID}.py"),
            str(folder / f"{TWIN_ID}.py"),
            "--dag-id",
            DAG_ID,
            "--twin-id",
            TWIN_ID,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        lines = out.stderr.strip().splitlines() or [f"exit code {out.returncode}"]
        raise SystemExit(f"dag-bench: could not generate the no-op twin of {DAG_ID}: {lines[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def backfill_twin(stack: dict, first: str, last: str) -> dict:
    """Queue the twin's backfill as ``airflow_stack.start`` queues the real one (the twin is paused since its
    creation), then follow it the same way."""
    airflow_stack.create_backfill({**os.environ, **stack["env"]}, TWIN_ID, first, last)
    return airflow_stack.follow(
        TWIN_ID,
        stack,
        on_progress=lambda s: print(
            "  no-op backfill: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())), flush=True
        ),
    )


def verdict(value: float, target: float) -> str:
    return f"{value:.2f} (target <= {target:g}: {'met' if value <= target else 'not met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 9, 1))
    args = parser.parse_args()
    last = args.start + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="dag-bench-") as tmp:
        loop_env = prepare(Path(tmp) / "loop", args.start, args.days)
        started = time.monotonic()
        subprocess.run(
            [str(BIN / "churnguard"), "run-days", "--start", args.start.isoformat(), "--end", last.isoformat()],
            env=loop_env,
            check=True,
            capture_output=True,
        )
        loop_s = time.monotonic() - started
        print(f"plain loop: {args.days} days in {loop_s:.1f}s ({loop_s / args.days:.2f}s a day)", flush=True)

        dag_env = prepare(Path(tmp) / "airflow", args.start, args.days)
        dag_env["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(tmp) / "dags")
        twin = dags_with_twin(Path(tmp) / "dags", dag_env)
        print(f"{TWIN_ID}: generated from {DAG_ID}: {twin['tasks']} tasks, {twin['edges']} edges", flush=True)
        os.environ.update(dag_env)
        try:
            stack = airflow_stack.start((DAG_ID, args.start.isoformat(), last.isoformat()), with_mlflow=False)
            result = airflow_stack.follow(
                DAG_ID,
                stack,
                on_progress=lambda s: print(
                    "  backfill: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())), flush=True
                ),
            )
            floor = backfill_twin(stack, args.start.isoformat(), last.isoformat())
        finally:
            clean_stop.stop_services(Path(dag_env["CHURNGUARD_HOME"]) / "run")
        backfill_s, noop_s = result["seconds"], floor["seconds"]
        same = decisions(loop_env) == decisions(dag_env)

    ratio, floor_ratio = backfill_s / loop_s, backfill_s / (loop_s + noop_s)
    print()
    print(f"{'':<44}{'runs':>6}{'seconds':>10}{'s a day':>9}  states")
    for name, runs, seconds, states in (
        ("plain loop (churnguard run-days)", args.days, loop_s, "-"),
        (f"backfill {DAG_ID}", result["runs"], backfill_s, result["states"]),
        (f"backfill {TWIN_ID} (no-op twin)", floor["runs"], noop_s, floor["states"]),
    ):
        print(f"{name:<44}{runs:>6}{seconds:>10.1f}{seconds / args.days:>9.2f}  {states}")
    print(
        f"Airflow overhead: {backfill_s - loop_s:.1f}s over the loop ({(backfill_s - loop_s) / args.days:.2f}s a "
        f"run); the no-op floor is {noop_s / args.days:.2f}s a run"
    )
    print(f"same decision on every day in both: {same}")
    print(f"ratio = backfill / loop: {verdict(ratio, TARGETS['ratio'])}")
    print(f"floor_ratio = backfill / (loop + no-op): {verdict(floor_ratio, TARGETS['floor_ratio'])}")
    print(
        f"dag-bench backfill_s={backfill_s:.1f} loop_s={loop_s:.1f} noop_s={noop_s:.1f} ratio={ratio:.2f} "
        f"floor_ratio={floor_ratio:.2f}"
    )


if __name__ == "__main__":
    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the services stop, the temporary homes go
        main()
