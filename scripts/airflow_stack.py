"""The Airflow 3 services that `make demo` and `benchmarks/dag_bench.py` run backfills on, and the backfill.

    python scripts/airflow_stack.py configs FROM TO          # $CHURNGUARD_HOME/configs: the DAG scheduled FROM..TO
    python scripts/airflow_stack.py start [DAG_ID FROM TO]   # services (+ a backfill queued before they start)
    python scripts/airflow_stack.py follow DAG_ID            # unpause, follow the backfill until it has finished
    python scripts/airflow_stack.py urls [--final]           # once the api-server answers: UI, login, Model Health
    bash scripts/stop.sh                                     # (make stop) ends every service and its children

Each service runs in its own process group with a PID file under ``$CHURNGUARD_HOME/run`` and a log under
``$CHURNGUARD_HOME/logs``; ports are chosen free and written to ``run/stack.json``. The LocalExecutor gets one
worker process per core (Airflow's default of 32 swamps a small machine). A backfill goes through the
scheduler: ``airflow backfill create`` queues every date while the DAG is paused and before the services
start (the embedded SQLite metadata DB takes one writer at a time), then ``follow`` unpauses the DAG and
follows the runs through the REST API until all have finished, printing progress.

``start`` leaves the services running once it has printed their URLs (``make stop`` ends them); a ``start`` that
fails, or is stopped by SIGTERM or SIGINT while it starts them, stops every one it started (:mod:`clean_stop`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import clean_stop

BIN = Path(sys.executable).parent
PLUGINS = Path(os.environ.get("AIRFLOW__CORE__PLUGINS_FOLDER", Path(__file__).resolve().parents[1] / "plugins"))
FINISHED = {"success", "failed"}
HEALTH = "/api/v2/monitor/health"
# Model Health: the page the plugin's "nav" view shows (churnguard_plugin.HEALTH_VIEWS: its href under the app's
# /churnguard mount), and the UI's page that frames it (Browse -> Model Health, its url_route).
MODEL_HEALTH, MODEL_HEALTH_IN_UI = "/churnguard/health/overview", "/plugin/churnguard-model-health"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 60.0) -> None:
    """Until something listens on 127.0.0.1:``port``; fails at once when ``proc`` (the server) has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s (logs in {home() / 'logs'})")


def home() -> Path:
    return Path(os.environ.get("CHURNGUARD_HOME", Path(__file__).resolve().parents[1] / ".churnguard")).resolve()


def stack_file() -> Path:
    return home() / "run" / "stack.json"


def schedule_configs(first: str, last: str) -> Path:
    """A copy of the package's configs under the home whose daily DAG is scheduled from ``first`` to ``last``
    (export it as CHURNGUARD_CONFIG_DIR): catch-up then never reaches past the simulated days."""
    import shutil

    import yaml

    from churnguard.settings import PACKAGE_DIR

    target = home() / "configs"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(PACKAGE_DIR / "configs", target)
    path = target / "monitoring.yaml"
    text = path.read_text()
    schedule = yaml.safe_load(text)["schedule"]
    for key, value in (("start_date", first), ("end_date", last)):
        text = text.replace(
            f"  {key}: {json.dumps(schedule[key]) if schedule[key] else 'null'}", f'  {key}: "{value}"', 1
        )
    path.write_text(text)
    written = yaml.safe_load(text)["schedule"]
    if (written["start_date"], written["end_date"]) != (first, last):
        raise ValueError(f"{path}: could not set schedule.start_date/end_date to {first}, {last}")
    return target


def stack_env(api_port: int, mlflow_url: str | None = None) -> dict[str, str]:
    """The environment every Airflow component and task of the stack shares."""
    url = f"http://127.0.0.1:{api_port}"
    env = {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # one slot more than cores: while two days overlap, the later one's wait_for_previous_day sleeps in one
        "AIRFLOW__CORE__PARALLELISM": str(max(2, os.cpu_count() or 2) + 1),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{url}/execution/",
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        # a new DAG file is picked up within seconds, and the scheduler reacts without idling
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.05",
        # a task's supervisor notices its process has exited at its next heartbeat tick (default every 5 s),
        # keeping the executor worker busy that long after every task, however short
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        # executor workers come from a forkserver that has imported Airflow's task runner, churnguard and
        # their heavy dependencies, so each forked task process starts warm instead of importing for
        # seconds; Python 3.11's forkserver does not inherit sys.path, hence the plugins folder on PYTHONPATH
        "AIRFLOW__SCHEDULER__MP_START_METHOD": "forkserver",
        "AIRFLOW__SCHEDULER__MP_FORKSERVER_PRELOAD": "churnguard_airflow.preload",
        "PYTHONPATH": os.pathsep.join(p for p in (str(PLUGINS), os.environ.get("PYTHONPATH")) if p),
    }
    if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in env:
        # SQLite lets one writer in at a time and pysqlite gives up after 5 s: a busy scheduler on 2 cores holds
        # the lock longer than that, and the api-server then answers a trigger with 500
        db = Path(env.get("AIRFLOW_HOME", Path.home() / "airflow")) / "airflow.db"
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{db}?timeout=60"
    if mlflow_url:
        env["CHURNGUARD_MLFLOW_UI_URL"] = mlflow_url
    return env


def _spawn(name: str, args: list[str], env: dict[str, str]) -> int:
    run, logs = home() / "run", home() / "logs"
    run.mkdir(parents=True, exist_ok=True)
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{name}.log").open("ab") as log:
        proc = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )  # its own process group: stop.sh ends the children too
    (run / f"{name}.pid").write_text(str(proc.pid))
    return proc.pid


def wait_http(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s (logs in {home() / 'logs'})")


def start(backfill: tuple[str, str, str] | None = None, with_mlflow: bool = True) -> dict:
    """Start the services, after queueing ``backfill`` = (dag_id, from, to) if given; return (and write to
    run/stack.json) their URLs and the UI login."""
    from churnguard.settings import get_settings

    settings = get_settings()
    api_port = free_port()
    mlflow_url = None
    try:
        if with_mlflow:
            mlflow_port = free_port()
            mlflow_url = f"http://127.0.0.1:{mlflow_port}"
            _spawn(
                "mlflow",
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    settings.mlflow_tracking_uri,
                    "--default-artifact-root",
                    settings.mlflow_artifact_uri,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )  # no job runner + 7 workers
        return launch(stack_env(api_port, mlflow_url), backfill, mlflow_url=mlflow_url)
    except BaseException:  # failed or stopped half-way: services half started are of no use
        clean_stop.stop_services(home() / "run")
        raise


def create_backfill(env: dict[str, str], dag_id: str, first: str, last: str) -> None:
    """Queue a backfill of ``dag_id`` from ``first`` to ``last`` with as many runs at once as the DAG allows:
    a backfill's own limit (default 10) replaces the DAG's ``max_active_runs``."""
    details = subprocess.run(
        [str(BIN / "airflow"), "dags", "details", dag_id, "-o", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    runs = json.loads(next(line for line in details.splitlines()[::-1] if line.startswith("[{")))[0]["max_active_runs"]
    _airflow(
        env,
        "backfill",
        "create",
        "--dag-id",
        dag_id,
        "--from-date",
        first,
        "--to-date",
        last,
        "--max-active-runs",
        str(runs),
    )


def launch(
    env: dict[str, str],
    backfill: tuple[str, str, str] | None = None,
    workers: dict[str, tuple[list[str], dict[str, str]]] | None = None,
    info: dict | None = None,
    mlflow_url: str | None = None,
) -> dict:
    """Migrate the metadata DB of ``env``, queue ``backfill``, start the Airflow services (and ``workers``:
    name -> (arguments after ``airflow``, extra environment)), wait for them (and the MLflow server at
    ``mlflow_url``); write run/stack.json (``info`` merged in)."""
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True)
    _sqlite_wal(env)
    # Serialize the DAGs now, so the backfill can be created before the dag-processor's first pass.
    subprocess.run([str(BIN / "airflow"), "dags", "reserialize"], env=env, check=True, capture_output=True)
    if backfill:
        dag_id, first, last = backfill
        _airflow(env, "dags", "pause", dag_id)
        create_backfill(env, dag_id, first, last)
    for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
        # the triggerer's log server would bind 0.0.0.0:8794 in every stack; its logs are read from the folder
        _spawn(name, [str(BIN / "airflow"), name, *(["--skip-serve-logs"] if name == "triggerer" else [])], env)
    for name, (args, extra) in (workers or {}).items():
        _spawn(name, [str(BIN / "airflow"), *args], {**env, **extra})
    api = env["AIRFLOW__API__BASE_URL"]
    wait_http(f"{api}{HEALTH}")
    if mlflow_url:
        wait_http(f"{mlflow_url}/health")
    passwords = Path(env.get("AIRFLOW_HOME", "")) / "simple_auth_manager_passwords.json.generated"
    login = json.loads(passwords.read_text()) if passwords.exists() else {}
    stack = {
        **(info or {}),
        "api": api,
        "mlflow": mlflow_url,
        "login": login,
        "env": {
            **(info or {}).get("env", {}),
            **{k: v for k, v in env.items() if k.startswith(("AIRFLOW", "CHURNGUARD_", "MLFLOW_", "GX_"))},
        },
    }
    stack_file().write_text(json.dumps(stack, indent=1))
    return stack


def _sqlite_wal(env: dict[str, str]) -> None:
    """Put an embedded SQLite metadata DB in WAL mode (it stays so): the scheduler, the api-server's task
    state updates and the dag-processor then stop waiting on each other's readers."""
    url = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN") or f"sqlite:///{Path(env['AIRFLOW_HOME']) / 'airflow.db'}"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///").partition("?")[0]) as conn:
            conn.execute("PRAGMA journal_mode=WAL")


def _airflow(env: dict[str, str], *args: str, tries: int = 5) -> None:
    for attempt in range(tries):
        result = subprocess.run([str(BIN / "airflow"), *args], env=env, capture_output=True, text=True)
        if not result.returncode:
            return
        if "database is locked" not in result.stderr or attempt == tries - 1:
            errors = [line for line in result.stderr.splitlines() if "Error" in line or "Exception" in line]
            raise RuntimeError(f"airflow {' '.join(args)} failed: {(errors or ['see its output'])[-1].strip()}")
        time.sleep(2)


def ui_urls(stack: dict, final: bool = False) -> str:
    """What to open, as ``make demo`` prints it: the UI with its login, the monitoring runs and Model Health
    (``final``: also a day's report and MLflow, then how to stop; Model Health last)."""
    api, login = stack["api"], stack.get("login") or {}
    user = next(iter(login), None)
    credentials = f"login {user} / {login[user]}" if user else "login: your auth manager's users"
    lines = [
        f"Airflow UI      {api}  ({credentials})",
        f'  the runs      {api}/dags/churn_daily_monitoring  (grid: a task\'s "Drift report" / "MLflow run" buttons)',
    ]
    if final:
        lines.append(
            f"  a day report  {api}/churnguard/reports/YYYY-MM-DD/drift.html  (also summary.json, validation.json)"
        )
        if stack.get("mlflow"):
            lines.append(
                f"MLflow UI       {stack['mlflow']}  (churn-model: champion / challenger / previous; failure-model)"
            )
        lines.append(
            "make stack-down ends the stack: services, databases, ports"
            if stack.get("databases")
            else "make stop       ends every process this demo started"
        )
    lines.append(f"Model Health    {api}{MODEL_HEALTH}  (in the UI: Browse -> Model Health, {api}{MODEL_HEALTH_IN_UI})")
    return "\n".join(lines)


def wait_for_ui(stack: dict | None = None, timeout: float = 300.0) -> dict:
    """Poll the api-server's health endpoint until it answers; the stack (default: run/stack.json)."""
    stack = stack or json.loads(stack_file().read_text())
    wait_http(f"{stack['api']}{HEALTH}", timeout)
    return stack


class Api:
    """REST calls to the api-server, authenticated as the simple auth manager's admin."""

    def __init__(self, stack: dict):
        self.base = stack["api"]
        user, password = next(iter(stack["login"].items()))
        body = json.dumps({"username": user, "password": password}).encode()
        request = urllib.request.Request(f"{self.base}/auth/token", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            self.token = json.loads(response.read())["access_token"]

    def get(self, path: str) -> dict:
        return self.call("GET", path)

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data, headers, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


def follow(
    dag_id: str,
    stack: dict | None = None,
    on_progress: Callable[[dict[str, int]], None] | None = None,
    timeout: float = 7200,
) -> dict:
    """Unpause ``dag_id`` and wait until every one of its backfill runs has finished."""
    stack = stack or json.loads(stack_file().read_text())
    started = time.monotonic()
    _airflow({**os.environ, **stack["env"]}, "dags", "unpause", dag_id)
    api, last = Api(stack), None
    while time.monotonic() - started < timeout:
        runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns?run_type=backfill&limit=1000")["dag_runs"]
        states: dict[str, int] = {}
        for run in runs:
            states[run["state"]] = states.get(run["state"], 0) + 1
        if on_progress and states != last:
            on_progress(states)
        last = states
        if runs and sum(states.get(s, 0) for s in FINISHED) == len(runs):
            return {"runs": len(runs), "states": states, "seconds": time.monotonic() - started}
        time.sleep(2)
    raise TimeoutError(f"backfill of {dag_id} not finished after {timeout:.0f}s: {last}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["configs"] and len(argv) == 3:
        print(schedule_configs(*argv[1:]))
    elif argv[:1] == ["start"] and len(argv) in (1, 4):
        print(json.dumps(start(tuple(argv[1:]) or None), indent=1))
    elif argv[:1] == ["follow"] and len(argv) == 2:

        def show(states: dict[str, int]) -> None:
            print(" ".join(f"{k}={v}" for k, v in sorted(states.items())), flush=True)

        print(json.dumps(follow(argv[1], on_progress=show)))
    elif argv[:1] == ["urls"] and argv[1:] in ([], ["--final"]):
        print(ui_urls(wait_for_ui(), final=argv[1:] == ["--final"]), flush=True)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    with clean_stop.on_signals():
        sys.exit(main(sys.argv[1:]))
