"""Scale-out on the deployment's topology: the same backfill on the LocalExecutor and on Celery with one and
two workers, and one 1M-row day through the scheduler on S3 with the peak memory of its heaviest task.

Every configuration runs on a fresh native stack (``scripts/stack.py``: PostgreSQL databases, a Redis
database, SeaweedFS as S3, an MLflow server on PostgreSQL + S3, Airflow's api-server, scheduler,
dag-processor and triggerer) on a fresh home: ``local`` is the LocalExecutor on that PostgreSQL (tasks run
by the scheduler), ``celery1`` and ``celery2`` the CeleryExecutor with one and two workers of two processes.
Untimed set-up: ``churnguard bootstrap`` and ``--days`` simulated days (the demo's gradual+concept scenario)
on the stack's S3 and MLflow, and the backfill created with the DAG paused. Timed: from unpausing until every
run has finished (``airflow_stack.follow``). Runs of consecutive dates overlap until ingest
(``max_active_runs`` 2, ``wait_for_previous_day``), so a second worker can only take the overlapping part and
the parallel branches of a day. The three configurations must decide the same on every day.

The big day: another fresh stack with two workers, the champion bootstrapped, one day of ``--big-rows`` rows
(and its labels) landed in S3 as ``benchmarks/day_bench.py`` lands it, and its one-day backfill; its seconds
are the DAG run's own, start to end as Airflow records them (the wall time from unpausing, which adds the
scheduler's pick-up and the bench's 2-second polling, is printed beside them). Meanwhile a thread samples
every 100 ms the VmRSS and VmHWM of each task process (title ``airflow worker -- <task instance id>``); the
heaviest task is named from the task instances' ids.

Not a test: numbers to read (noisy on a small shared machine). The last line is machine-readable.

    python benchmarks/scale_bench.py [--days 30] [--big-rows 1000000] [--skip-big | --big-only]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DAG_ID = "churn_daily_monitoring"
TARGETS = {"speedup": 1.3, "big_batch_s": 60.0, "big_batch_peak_gb": 1.5}
CONFIGS = (
    ("local", 0, "LocalExecutor + PostgreSQL"),
    ("celery1", 1, "Celery, 1 worker"),
    ("celery2", 2, "Celery, 2 workers"),
)
sys.path.insert(0, str(ROOT / "scripts"))

import airflow_stack  # noqa: E402
import clean_stop  # noqa: E402
import stack as native  # noqa: E402
from dag_bench import decisions  # noqa: E402  (this folder: the script's own)


@contextlib.contextmanager
def fresh_stack(home: Path, first: str, last: str, workers: int):
    """A stack of ``workers`` Celery workers (0: LocalExecutor) on ``home``, the daily DAG scheduled from
    ``first`` to ``last``; yields (stack, client environment) and takes it down afterwards."""
    os.environ.update(
        {
            "CHURNGUARD_HOME": str(home),
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "GX_ANALYTICS_ENABLED": "false",
        }
    )
    os.environ["CHURNGUARD_CONFIG_DIR"] = str(airflow_stack.schedule_configs(first, last))
    try:
        stack = native.up(workers=workers)
        yield stack, {**os.environ, **stack["env"]}
    finally:
        native.down()


def churnguard(env: dict[str, str], *args: str) -> None:
    out = subprocess.run([str(BIN / "churnguard"), *args], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"scale-bench: churnguard {' '.join(args)} failed: {out.stderr.strip()[-500:]}")


def backfill(name: str, stack: dict, env: dict[str, str], first: str, last: str) -> dict:
    airflow_stack.create_backfill(env, DAG_ID, first, last)
    return airflow_stack.follow(
        DAG_ID,
        stack,
        on_progress=lambda s: print(f"  {name}: " + " ".join(f"{k}={v}" for k, v in sorted(s.items())), flush=True),
    )


def run_config(name: str, workers: int, home: Path, start: date, days: int) -> dict:
    first, last = start.isoformat(), (start + timedelta(days=days - 1)).isoformat()
    with fresh_stack(home, first, last, workers) as (stack, env):
        churnguard(env, "bootstrap")
        churnguard(
            env,
            "simulate",
            "--start",
            first,
            "--days",
            str(days),
            "--scenario",
            "gradual+concept",
            "--onset",
            (start + timedelta(days=days // 2)).isoformat(),
        )
        result = backfill(name, stack, env, first, last)
        return {**result, "decisions": decisions(env)}


class TaskMemory:
    """Peak RSS of every task process under the stack's workers, sampled every ``every`` seconds."""

    def __init__(self, every: float = 0.1):
        self.every, self.peak_kb, self.done = every, {}, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TaskMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()

    def _sample(self) -> None:
        while not self.done.wait(self.every):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    title = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                    if not title.startswith("airflow worker -- ") or "Executor" in title:
                        continue
                    ti_id = title.split(" -- ", 1)[1].strip()
                    status = dict(
                        line.split(":", 1)
                        for line in (proc / "status").read_text().splitlines()
                        if line.startswith(("VmRSS", "VmHWM"))
                    )
                except (OSError, ValueError):
                    continue  # the process ended between listing and reading
                kb = max(int(v.split()[0]) for v in status.values()) if status else 0
                self.peak_kb[ti_id] = max(self.peak_kb.get(ti_id, 0), kb)


def big_day(home: Path, start: date, rows: int) -> dict:
    ds = start.isoformat()
    with fresh_stack(home, ds, ds, 2) as (stack, env):
        churnguard(env, "bootstrap")
        land = (
            f"from datetime import date; from benchmarks.day_bench import land; "
            f"land(date.fromisoformat({ds!r}), {rows})"
        )
        subprocess.run(
            [str(BIN / "python"), "-c", land], env={**env, "PYTHONPATH": str(ROOT)}, check=True, capture_output=True
        )
        with TaskMemory() as memory:
            result = backfill("big day", stack, env, ds, ds)
        api = airflow_stack.Api(stack)
        run = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?limit=1")["dag_runs"][0]
        tis = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        names = {ti["id"]: ti["task_id"] for ti in tis}
        run_s = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()
        per_task = {names.get(ti_id, ti_id): kb * 1024 / 1e9 for ti_id, kb in memory.peak_kb.items()}
        heaviest = max(per_task, key=per_task.get) if per_task else None
        began = datetime.fromisoformat(run["start_date"])

        def offset(ts: str | None) -> float:
            return (datetime.fromisoformat(ts) - began).total_seconds() if ts else float("nan")

        timing = sorted(
            (
                (
                    ti["task_id"],
                    offset(ti.get("queued_when")),
                    offset(ti["start_date"]),
                    offset(ti["end_date"]),
                    ti.get("hostname"),
                )
                for ti in tis
            ),
            key=lambda t: t[2],
        )
        return {
            **result,
            "run_s": run_s,
            "per_task_gb": per_task,
            "heaviest": heaviest,
            "timing": timing,
            "peak_gb": per_task[heaviest] if heaviest else float("nan"),
        }


def verdict(value: float, target: float, higher: bool = False) -> str:
    met = value >= target if higher else value <= target
    return f"{value:.2f} (target {'>=' if higher else '<='} {target:g}: {'met' if met else 'not met'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 9, 1))
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-big", action="store_true", help="only the three backfills")
    parser.add_argument("--big-only", action="store_true", help="only the big day")
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        for name, workers, title in () if args.big_only else CONFIGS:
            print(f"{title}: {args.days}-day backfill on a fresh stack", flush=True)
            results[name] = run_config(name, workers, Path(tmp) / name, args.start, args.days)
            print(f"  {name}: {results[name]['seconds']:.1f}s", flush=True)
        big = None if args.skip_big else big_day(Path(tmp) / "big", args.start, args.big_rows)

    speedup = float("nan")
    if results:
        print()
        print(f"{'':<30}{'runs':>6}{'seconds':>10}{'s a day':>9}  states")
        for name, _, title in CONFIGS:
            r = results[name]
            print(f"{title:<30}{r['runs']:>6}{r['seconds']:>10.1f}{r['seconds'] / args.days:>9.2f}  {r['states']}")
        same = all(results[name]["decisions"] == results["local"]["decisions"] for name in results)
        print(f"same decision on every day in all three: {same}")
        speedup = results["celery1"]["seconds"] / results["celery2"]["seconds"]
        print(f"speed-up, 2 workers over 1: {verdict(speedup, TARGETS['speedup'], higher=True)}")
    big_s = big_gb = float("nan")
    if big:
        big_s, big_gb = big["run_s"], big["peak_gb"]
        print(
            f"\n{args.big_rows:,}-row day through the scheduler on S3 (2 workers): {big['states']}; the run took "
            f"{big_s:.1f} s as Airflow recorded it (start to end), {big['seconds']:.1f} s from unpausing the DAG "
            f"until the bench saw it finished (polled every 2 s)"
        )
        print(f"  {'task':<24}{'peak GB':>8}{'queued':>8}{'start':>8}{'end':>8}  worker (seconds from the run's start)")
        for task, queued, began, ended, host in big["timing"]:
            print(
                f"  {task:<24}{big['per_task_gb'].get(task, float('nan')):>8.2f}{queued:>8.1f}{began:>8.1f}"
                f"{ended:>8.1f}  {host}"
            )
        print(
            f"day: {verdict(big_s, TARGETS['big_batch_s'])} s; heaviest task {big['heaviest']}: "
            f"{verdict(big_gb, TARGETS['big_batch_peak_gb'])} GB"
        )
    seconds = {name: results[name]["seconds"] if name in results else float("nan") for name, _, _ in CONFIGS}
    print(
        f"scale-bench local_s={seconds['local']:.1f} celery1_s={seconds['celery1']:.1f} "
        f"celery2_s={seconds['celery2']:.1f} speedup={speedup:.2f} big_batch_s={big_s:.1f} "
        f"big_batch_peak_gb={big_gb:.2f}"
    )


if __name__ == "__main__":
    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the stack goes down, databases and all
        main()
