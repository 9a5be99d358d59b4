"""One day through ``churnguard.steps.run_day`` at 100k, 1M and 10M rows: wall time and peak RSS per step.

Each size runs in a subprocess of its own (fresh memory) on a temporary home of its own
(``CHURNGUARD_HOME``, ``AIRFLOW_HOME`` under it, embedded defaults: SQLite stores, file:// data root). Untimed
set-up there: ``churnguard bootstrap`` (per size: ~10 s; MLflow keeps absolute artifact paths, so a
bootstrapped home copied elsewhere would still point at the original's files), then the day's
batch landed in ``landing/ds=D`` with its labels in ``labels/ds=D`` (arrived the same day, so the
performance step measures them): the simulator's day of at most 1M rows, drawn once and written as
``part-0000k.parquet`` files of 1M rows with distinct customer ids (``simulate`` itself holds the whole day
and its ids as Python strings: 1M rows took 5 s and 1 GB, so 10M would need roughly ten times that).

The measured subprocess first imports what the Airflow workers preload (``churnguard_airflow.preload``,
Airflow itself left out), reported as ``(imports)``; then it calls ``run_day(D, observe=…)``, whose
``observe(step)`` context wraps each step. Per step: wall seconds and peak RSS, the larger of VmRSS sampled
every 20 ms by a thread (reset at each step start) and the kernel's high-water mark VmHWM, reset at each
step start through ``/proc/self/clear_refs`` (catches peaks between samples; ``ru_maxrss`` cannot be
reset). ``(rest of run_day)`` is run_day's time outside its steps (checks, context); "process" is the peak
of the whole process, imports included. The day's seconds are run_day's wall time, imports excluded.

A size that runs out of memory or time must not end the bench: the parent watches the subprocess's RSS and
kills its process group above ``--max-gb`` (default 6; a watcher rather than RLIMIT_AS, since the address
space that BLAS, XGBoost and Arrow threads reserve is far larger than what they touch) or after
``--timeout-min`` (default 15), and the table says ``failed: <reason>`` for that size.
Not a test: numbers to read (noisy on a shared 2-core machine). The last line is machine-readable.

    python benchmarks/day_bench.py [--sizes 100000,1000000,10000000] [--keep] [--max-gb 6] [--timeout-min 15]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

BIN = Path(sys.executable).parent
DAY = date(2026, 9, 1)
PART_ROWS = 1_000_000
SIZES = (100_000, 1_000_000, 10_000_000)
STEPS = (
    "ingest",
    "validate",
    "score",
    "drift",
    "performance",
    "failure_risk",
    "decide",
    "retrain",
    "promote",
    "publish",
)
# What plugins/churnguard_airflow/preload.py imports into every Airflow worker, without Airflow.
WARM_IMPORTS = (
    "great_expectations",
    "mlflow",
    "mlflow.sklearn",
    "mlflow.store.model_registry.sqlalchemy_store",
    "mlflow.store.tracking.sqlalchemy_store",
    "plotly.graph_objects",
    "skops.io",
    "xgboost",
    "churnguard.daily",
    "churnguard.failure",
    "churnguard.retrain",
    "churnguard.validation",
    "churnguard.drift",
)
# rows a day: (run_day seconds, process peak GB)
TARGETS = {1_000_000: (30.0, 1.5), 10_000_000: (300.0, 3.0)}
GB = 1e9


def status_kb(field: str, pid: int | str = "self") -> int:
    """A ``kB`` field (VmRSS, VmHWM) of ``/proc/<pid>/status``; 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


class StepPeaks:
    """Peak RSS since the last :meth:`reset`, from a sampling thread and the kernel's resettable high-water mark."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.hwm_resettable = self._reset_hwm()
        self.process_kb = status_kb("VmHWM")
        self._peak_kb = status_kb("VmRSS")
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        threading.Thread(target=self._sample, name="rss-sampler", daemon=True).start()

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")  # VmHWM := VmRSS (Linux >= 4.0)
        except OSError:
            return False
        return True

    def _sample(self) -> None:
        while not self._stopped.wait(self.interval):
            rss = status_kb("VmRSS")
            with self._lock:
                self._peak_kb = max(self._peak_kb, rss)

    def peak_kb(self) -> int:
        """The highest RSS since the last reset."""
        hwm = status_kb("VmHWM") if self.hwm_resettable else 0
        with self._lock:
            return max(self._peak_kb, hwm, status_kb("VmRSS"))

    def reset(self) -> None:
        """A step starts: the peak so far counts for the process, the step's starts at the current RSS."""
        self.process_kb = max(self.process_kb, self.peak_kb())
        with self._lock:
            if self.hwm_resettable:
                self._reset_hwm()
            self._peak_kb = status_kb("VmRSS")

    def process_peak_kb(self) -> int:
        return max(self.process_kb, self.peak_kb())


def emit(out: Path, event: dict) -> None:
    """One event line, flushed at once: the parent reads them even after killing this process."""
    with out.open("a") as events:
        events.write(json.dumps(event) + "\n")


def measure(ds: str, out: Path) -> None:
    """The measured subprocess: warm imports, then one ``run_day`` with every step observed."""
    peaks = StepPeaks()

    @contextlib.contextmanager
    def observe(step: str) -> Iterator[None]:
        emit(out, {"event": "start", "step": step})
        peaks.reset()
        started = time.perf_counter()
        try:
            yield
        finally:
            emit(
                out,
                {"event": "step", "step": step, "seconds": time.perf_counter() - started, "peak_kb": peaks.peak_kb()},
            )

    try:
        with observe("(imports)"):
            for name in WARM_IMPORTS:
                importlib.import_module(name)
        try:  # where run_day lives since the step registry; before it, churnguard.daily
            from churnguard.steps import run_day
        except ImportError:
            from churnguard.daily import run_day

        started = time.perf_counter()
        if "observe" in inspect.signature(run_day).parameters:
            result = run_day(ds, observe=observe)
        else:  # run_day without per-step hooks: the whole day is one step
            with observe("run_day (whole; no observe=)"):
                result = run_day(ds)
        seconds = time.perf_counter() - started
    except BaseException as exc:
        emit(
            out,
            {
                "event": "error",
                "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                "peak_kb": peaks.process_peak_kb(),
            },
        )
        raise
    emit(
        out,
        {
            "event": "done",
            "seconds": seconds,
            "peak_kb": peaks.process_peak_kb(),
            "decision": result["decision"] if isinstance(result, dict) else result.decision,  # older run_day: a dict
            "hwm_reset": peaks.hwm_resettable,
        },
    )


def land(ds: date, rows: int) -> None:
    """``rows`` customers in ``landing/ds=…`` and their labels in ``labels/ds=…``, in files of <= 1M rows."""
    from churnguard.config import load_dataset_config
    from churnguard.dataroot import DataRoot
    from churnguard.simulate import BatchSimulator, Scenario
    from churnguard.storage import frame_to_parquet_bytes

    sim = BatchSimulator(load_dataset_config(), rows_per_day=min(rows, PART_ROWS))
    day, key = sim.day(ds, Scenario.parse("none")), sim.cfg.id.column
    landing, labels = {}, {}
    for part, first in enumerate(range(0, rows, PART_ROWS)):
        n, name = min(PART_ROWS, rows - first), f"part-{part:05d}.parquet"
        ids = f"p{part:03d}-" + day.landing[key].iloc[:n]  # the same draws, distinct customers in every file
        landing[name] = frame_to_parquet_bytes(day.landing.iloc[:n].assign(**{key: ids}))
        labels[name] = frame_to_parquet_bytes(day.labels.iloc[:n].assign(**{key: ids}))
    root = DataRoot.open()
    root.storage.write_files(root.batch_key(ds), landing)
    root.storage.write_files(root.labels_key(ds), labels)


def home_env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHURNGUARD_") and k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    return {
        **env,
        "CHURNGUARD_HOME": str(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }


def label(rows: int) -> str:
    for unit, scale in (("M", 1_000_000), ("k", 1_000)):
        if rows >= scale and rows % scale == 0:
            return f"{rows // scale}{unit}"
    return str(rows)


def run_size(rows: int, home: Path, max_gb: float, timeout_s: float) -> dict:
    """Set up ``home``, then run the measured subprocess under the memory and time caps; its events, read back."""
    env, script = home_env(home), str(Path(__file__).resolve())
    home.mkdir(parents=True)
    try:
        subprocess.run(
            [str(BIN / "churnguard"), "bootstrap"], env=env, check=True, capture_output=True, timeout=timeout_s
        )
        subprocess.run(
            [sys.executable, script, "--land", str(rows)], env=env, check=True, capture_output=True, timeout=timeout_s
        )
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines() or [f"exit code {exc.returncode}"]
        return {"failed": f"set-up ({Path(exc.cmd[1]).name}): {lines[-1]}"}
    except subprocess.TimeoutExpired as exc:
        return {"failed": f"set-up ({Path(exc.cmd[1]).name}) over {timeout_s / 60:g} min"}
    out = home / "day-bench.jsonl"
    with (home / "day-bench.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, script, "--measure", str(out)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    killed, started, watched_kb = None, time.monotonic(), 0
    try:
        while proc.poll() is None and not killed:
            watched_kb = max(watched_kb, status_kb("VmRSS", proc.pid))
            if watched_kb > max_gb * GB / 1024:
                killed = f"RSS above {max_gb:g} GB"
            elif time.monotonic() - started > timeout_s:
                killed = f"over {timeout_s / 60:g} min"
            else:
                time.sleep(0.05)
    finally:
        if proc.poll() is None:  # capped, or this bench interrupted: end the subprocess and its children
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    events = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    result = {
        "steps": {e["step"]: e for e in events if e["event"] == "step"},
        "process_kb": max([watched_kb] + [e.get("peak_kb", 0) for e in events]),
    }
    done = next((e for e in events if e["event"] == "done"), None)
    if done:
        result.update(seconds=done["seconds"], decision=done["decision"], hwm_reset=done["hwm_reset"])
        return result
    started_steps = [e["step"] for e in events if e["event"] == "start"]
    where = f" in {started_steps[-1]}" if started_steps else ""
    error = next((e["error"] for e in events if e["event"] == "error"), None)
    if killed is None and proc.returncode == -signal.SIGKILL:
        killed = "killed by SIGKILL (the kernel's OOM killer?)"
    result["failed"] = f"{killed or error or f'exit code {proc.returncode}'}{where}, {elapsed:.0f} s after the start"
    result["failed_step"] = started_steps[-1] if started_steps else None
    return result


def table(results: dict[int, dict]) -> list[str]:
    sizes = list(results)
    head = f"{'step':<26}" + "".join(f"{label(n) + ' s':>10}{label(n) + ' GB':>10}" for n in sizes)
    lines = [head, "-" * len(head)]
    rows = [
        "(imports)",
        *STEPS,
        *sorted({s for r in results.values() for s in r.get("steps", {}) if s not in STEPS and s != "(imports)"}),
    ]
    for step in rows:
        cells = ""
        for n in sizes:
            e = results[n].get("steps", {}).get(step)
            if e:
                cells += f"{e['seconds']:>10.2f}{e['peak_kb'] * 1024 / GB:>10.2f}"
            elif results[n].get("failed_step") == step:
                cells += f"{'failed':>10}{'':>10}"
            else:
                cells += f"{'-':>10}{'-':>10}"
        lines.append(f"{step:<26}{cells}")
    rest, total = "", ""
    for n in sizes:
        r = results[n]
        if "seconds" in r:
            inside = sum(e["seconds"] for s, e in r["steps"].items() if s != "(imports)")
            rest += f"{r['seconds'] - inside:>10.2f}{'':>10}"
            total += f"{r['seconds']:>10.2f}{r['process_kb'] * 1024 / GB:>10.2f}"
        else:
            rest += f"{'-':>10}{'':>10}"
            total += f"{'failed':>10}{r.get('process_kb', 0) * 1024 / GB:>10.2f}"
    lines += [f"{'(rest of run_day)':<26}{rest}", "-" * len(head), f"{'run_day total / process':<26}{total}"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="rows per day, comma-separated")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes (printed)")
    parser.add_argument("--max-gb", type=float, default=6.0, help="kill a size's run above this RSS")
    parser.add_argument("--timeout-min", type=float, default=15.0, help="kill a size's run after this long")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: the measured subprocess
    parser.add_argument("--land", type=int, help=argparse.SUPPRESS)  # internal: the untimed landing
    args = parser.parse_args()
    if args.measure:
        measure(DAY.isoformat(), args.measure)
    elif args.land:
        land(DAY, args.land)
    else:
        bench([int(s) for s in args.sizes.split(",") if s.strip()], args.keep, args.max_gb, args.timeout_min * 60)


def bench(sizes: list[int], keep: bool, max_gb: float, timeout_s: float) -> None:
    base = Path(tempfile.mkdtemp(prefix="day-bench-"))
    results: dict[int, dict] = {}
    try:
        for n in sizes:
            print(f"{label(n)} rows: bootstrap, land, run_day ...", flush=True)
            results[n] = run_size(n, base / f"rows-{label(n)}", max_gb, timeout_s)
            r = results[n]
            print(
                f"  failed: {r['failed']}" if "failed" in r else f"  {r['seconds']:.1f} s, {r['decision']}", flush=True
            )
    finally:
        if keep:
            print(f"homes kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)

    print()
    print("\n".join(table(results)))
    if any(not r.get("hwm_reset", True) for r in results.values()):
        print("(VmHWM could not be reset here: step peaks are from 20 ms samples only)")
    for n, r in results.items():
        if "failed" in r:
            print(f"{label(n)}: failed: {r['failed']}")
    last = []
    for n, (limit_s, limit_gb) in TARGETS.items():
        r = results.get(n)
        key = label(n).lower()
        if r is None:
            print(f"target {label(n)} rows: <= {limit_s:g} s, <= {limit_gb:g} GB: not measured")
            last += [f"rows_{key}_s=nan", f"peak_{key}_gb=nan"]
        elif "failed" in r:
            print(f"target {label(n)} rows: <= {limit_s:g} s, <= {limit_gb:g} GB: not met (failed)")
            last += [f"rows_{key}_s=failed", f"peak_{key}_gb=failed"]
        else:
            seconds, peak = r["seconds"], r["process_kb"] * 1024 / GB
            print(
                f"target {label(n)} rows: <= {limit_s:g} s: {'met' if seconds <= limit_s else 'not met'} "
                f"({seconds:.1f} s); <= {limit_gb:g} GB: {'met' if peak <= limit_gb else 'not met'} ({peak:.2f} GB)"
            )
            last += [f"rows_{key}_s={seconds:.1f}", f"peak_{key}_gb={peak:.2f}"]
    print("day-bench " + " ".join(last))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import clean_stop

    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the measured run ends, the homes go
        main()
