"""The docker-compose topology, run natively on loopback (``make stack`` / ``make stack-down``).

    python scripts/stack.py up [DAG_ID FROM TO]   # the stack (+ a backfill created once it is up, DAG paused)
    python scripts/airflow_stack.py follow DAG_ID # unpause, follow the backfill until it has finished
    python scripts/stack.py env                   # export lines: the environment a client of the stack needs
    python scripts/stack.py down                  # stop every service, drop its databases, free its ports

On the machine's own PostgreSQL (127.0.0.1:5432, user postgres) and Redis (127.0.0.1:6379), fresh for each
stack: three databases named ``churnguard_<id>_{airflow,mlflow,store}`` (Airflow metadata and Celery
results, MLflow's tracking and registry store, the monitoring store) and an empty Redis database as the
Celery broker. Beside them, each in its own process group with a PID file under ``$CHURNGUARD_HOME/run``
and a log under ``$CHURNGUARD_HOME/logs`` (:mod:`airflow_stack`): SeaweedFS as S3 (``weed server -s3``,
bucket ``churnguard``: the data root under ``data/``, MLflow's artifacts under ``mlartifacts/``), ``mlflow
server`` proxying those artifacts, and Airflow on the CeleryExecutor: api-server, scheduler, dag-processor,
triggerer and two Celery workers of two processes each. Every server listens on 127.0.0.1 on a free port;
``run/stack.json`` holds the URLs, the environment a client needs, and what ``down`` must release.

``up`` returns once the stack answers, and leaves it running: a stack outlives the command that started it, and
``down`` (``make stack-down``) ends it. An ``up`` that fails, or is stopped by SIGTERM or SIGINT (``timeout``, ``kill``,
Ctrl-C) while it starts the stack, takes down what it had started, as ``down`` would: no process, database or Redis
database of it is left (:mod:`clean_stop`). There is no SIGTERM to send after ``up`` has returned: it has exited.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import airflow_stack
import clean_stop
from airflow_stack import BIN, _spawn, free_port, home, stack_file, wait_for_port

SCRIPTS = Path(__file__).resolve().parent
PG = "postgres@127.0.0.1:5432"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BUCKET = "churnguard"
OWNER_KEY = "churnguard:stack"  # set in the Redis database a stack claimed, holding the stack's id
WORKERS = 2
WORKER_CONCURRENCY = 2  # two workers of two task processes: four tasks at once on two cores
DATABASES = ("airflow", "mlflow", "store")


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the workers: the Celery worker's name, so each task instance records
    which of the workers (all on this host) ran it."""
    return os.environ.get("CHURNGUARD_WORKER_NAME") or socket.getfqdn()


def __getattr__(name: str) -> dict:
    """``stack.CELERY_CONFIG``, the workers' ``[celery] celery_config_options``, built on first access (``down``
    never imports Airflow): Airflow's defaults, plus the preload module imported by each worker before it
    forks its pool, so every task process starts with churnguard and its heavy dependencies imported."""
    if name != "CELERY_CONFIG":
        raise AttributeError(name)
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    return {**DEFAULT_CELERY_CONFIG, "imports": ["churnguard_airflow.preload"]}


def pg_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://{PG}/{database}"


def _admin():
    from sqlalchemy import create_engine

    return create_engine(pg_url("postgres"), isolation_level="AUTOCOMMIT")


def create_databases(stack_id: str, purposes: tuple[str, ...] = DATABASES) -> dict[str, str]:
    """A PostgreSQL database per purpose (of :data:`DATABASES`), named after the stack: {purpose: name}."""
    from sqlalchemy import text

    names = {purpose: f"churnguard_{stack_id}_{purpose}" for purpose in purposes}
    engine = _admin()
    with engine.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return names


def drop_databases(names: list[str]) -> None:
    from sqlalchemy import text

    engine = _admin()
    with engine.connect() as conn:
        for name in names:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def claim_redis_db(stack_id: str) -> int:
    """An empty Redis database (1-15; 0 is everyone's default), claimed atomically for this stack."""
    import redis

    for number in range(1, 16):
        client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
        try:
            if client.dbsize() == 0 and client.set(OWNER_KEY, stack_id, nx=True):
                return number
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis database on {REDIS_HOST}:{REDIS_PORT} to use as the Celery broker")


def release_redis_db(number: int, stack_id: str) -> None:
    import redis

    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=number)
    try:
        if client.get(OWNER_KEY) == stack_id.encode():  # never flush a database another stack claimed since
            client.flushdb()
    finally:
        client.close()


def start_s3(ports: dict[str, int], access_key: str, secret_key: str) -> str:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) with one identity; returns the
    endpoint once bucket ``churnguard`` exists."""
    import boto3

    folder = home() / "seaweedfs"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "churnguard",
                        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    config.chmod(0o600)
    sockets = socket_dir(ports)  # a Unix socket path may not exceed 107 bytes: not under a deep home
    sockets.mkdir(mode=0o700, exist_ok=True)
    args = [
        str(BIN / "weed"),
        "server",
        "-ip",
        "127.0.0.1",
        "-ip.bind",
        "127.0.0.1",
        "-dir",
        str(folder),
        "-volume.max",
        "0",
        "-master.volumeSizeLimitMB",
        "256",  # small volumes: a test stack is tiny
        "-filer.localSocket",
        str(sockets / "filer.sock"),
        "-s3",
        "-s3.config",
        str(config),
        "-s3.localSocket",
        str(sockets / "s3.sock"),
        "-s3.port.iceberg",
        "0",
        "-s3.port.lance",
        "0",
    ]
    for flag in (
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
    ):
        args += [f"-{flag}", str(ports[f"s3_{flag}"])]
    _start("seaweedfs", args, dict(os.environ))
    endpoint = f"http://127.0.0.1:{ports['s3_s3.port']}"
    wait_for_port(ports["s3_s3.port"])
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )
    deadline = time.monotonic() + 60
    while True:  # the gateway listens before its filer has a volume to write to
        try:
            client.create_bucket(Bucket=BUCKET)
            return endpoint
        except client.exceptions.BucketAlreadyOwnedByYou:
            return endpoint
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def socket_dir(ports: dict[str, int]) -> Path:
    """Where SeaweedFS's local sockets go: a short folder in /tmp named by the stack's S3 port."""
    return Path("/tmp") / f"churnguard-weed-{ports['s3_s3.port']}"


def _start(name: str, args: list[str], env: dict[str, str]) -> None:
    """Spawn a server the stack can restart (:func:`restart`): its command line is kept beside its PID file."""
    command = home() / "run" / f"{name}.command.json"
    command.parent.mkdir(parents=True, exist_ok=True)
    command.touch(mode=0o600)  # its environment holds the stack's keys
    command.write_text(json.dumps({"args": args, "env": env}))
    _spawn(name, args, env)


def stop(name: str) -> None:
    """Kill server ``name`` (its process group) as a crash would, for the fault drills."""
    os.killpg(int((home() / "run" / f"{name}.pid").read_text()), signal.SIGKILL)


def restart(name: str, port: int) -> None:
    """Start server ``name`` again as it was started, and wait until it listens on ``port``."""
    command = json.loads((home() / "run" / f"{name}.command.json").read_text())
    _spawn(name, command["args"], command["env"])
    wait_for_port(port)


def up(backfill: tuple[str, str, str] | None = None, workers: int = WORKERS) -> dict:
    """Start the stack (``down`` first if one is recorded under this home) with ``workers`` Celery workers, or
    with ``workers=0`` on the LocalExecutor (the same PostgreSQL, S3 and MLflow, tasks run by the
    scheduler); returns run/stack.json."""
    from cryptography.fernet import Fernet

    if stack_file().exists():
        down()
    stack_id = secrets.token_hex(4)
    names = (
        "api",
        "mlflow",
        "s3_master.port",
        "s3_master.port.grpc",
        "s3_volume.port",
        "s3_volume.port.grpc",
        "s3_filer.port",
        "s3_filer.port.grpc",
        "s3_s3.port",
        "s3_s3.port.grpc",
    )
    ports: dict[str, int] = {}
    while len(set(ports.values())) < len(names):  # a port handed out twice would be caught here, not at bind
        ports = {name: free_port() for name in names}
    access_key, secret_key = "churnguard", secrets.token_urlsafe(24)
    info: dict = {"id": stack_id, "ports": ports, "databases": [], "redis_db": None}
    stack_file().parent.mkdir(parents=True, exist_ok=True)

    def record() -> None:  # what down() must release, written before each resource is taken
        stack_file().write_text(json.dumps(info, indent=1))

    record()
    try:
        info["databases"] = [f"churnguard_{stack_id}_{purpose}" for purpose in DATABASES]
        record()
        dbs = dict(zip(DATABASES, info["databases"], strict=True))
        create_databases(stack_id)
        info["redis_db"] = claim_redis_db(stack_id)
        record()
        s3 = start_s3(ports, access_key, secret_key)
        aws = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_DEFAULT_REGION": "us-east-1"}
        mlflow = f"http://127.0.0.1:{ports['mlflow']}"
        _start(
            "mlflow",
            [
                str(BIN / "mlflow"),
                "server",
                "--backend-store-uri",
                pg_url(dbs["mlflow"]),
                "--artifacts-destination",
                f"s3://{BUCKET}/mlartifacts",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["mlflow"]),
                "--workers",
                "1",
                "--allowed-hosts",
                f"127.0.0.1:{ports['mlflow']},localhost:{ports['mlflow']}",
            ],
            {**os.environ, **aws, "MLFLOW_S3_ENDPOINT_URL": s3, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # no job runner + 7 huey workers
        churnguard = {
            "CHURNGUARD_DATA_URL": f"s3://{BUCKET}/data",
            "CHURNGUARD_S3_ENDPOINT_URL": s3,
            "CHURNGUARD_DB_URL": pg_url(dbs["store"]),
            "MLFLOW_TRACKING_URI": mlflow,
            # artifacts go through the MLflow server: clients need no S3 credentials of their own for them
            "CHURNGUARD_MLFLOW_ARTIFACT_URI": "mlflow-artifacts:/churnguard",
            # the Airflow way to the same S3 and store (a secrets backend can replace these)
            "AIRFLOW_CONN_CHURNGUARD_S3": json.dumps(
                {
                    "conn_type": "aws",
                    "login": access_key,
                    "password": secret_key,
                    "extra": {"endpoint_url": s3, "region_name": "us-east-1"},
                }
            ),
            "AIRFLOW_CONN_CHURNGUARD_STORE": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "login": "postgres",
                    "schema": dbs["store"],
                }
            ),
            **aws,
        }
        env = {
            **airflow_stack.stack_env(ports["api"], mlflow),
            **churnguard,
            **(
                {
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CORE__PARALLELISM": str(workers * WORKER_CONCURRENCY),
                }
                if workers
                else {}
            ),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(dbs["airflow"]),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{info['redis_db']}",
            "AIRFLOW__CELERY__RESULT_BACKEND": pg_url(dbs["airflow"], "db+postgresql"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # a task whose worker died is failed after 30 s of silence (not 5 min) and retried on another
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "3",  # over 30 s: S3 or MLflow restarting in between
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "10",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        }
        celery_workers = {
            f"worker-{n}": (
                [
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"worker-{n}@{stack_id}",
                    "--concurrency",
                    str(WORKER_CONCURRENCY),
                    "--skip-serve-logs",
                ],  # logs are read from the shared folder
                {
                    "CHURNGUARD_WORKER_NAME": f"worker-{n}",
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "stack.worker_hostname",
                    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "stack.CELERY_CONFIG",
                    "PYTHONPATH": os.pathsep.join((str(SCRIPTS), env["PYTHONPATH"])),
                },
            )
            for n in range(1, workers + 1)
        }
        info.update(s3=s3, env={**aws, "CHURNGUARD_S3_ENDPOINT_URL": s3})
        stack = airflow_stack.launch(env, None, celery_workers, info, mlflow)
        if backfill:
            dag_id, first, last = backfill
            airflow_stack.create_backfill(env, dag_id, first, last)
        return stack
    except BaseException:
        down()
        raise


def down() -> list[int]:
    """Stop every service of the stack recorded under this home, drop its databases, release its Redis
    database; returns the ports still open afterwards (none, unless something else took one)."""
    info = json.loads(stack_file().read_text()) if stack_file().exists() else {}
    if (home() / "run" / "seaweedfs.pid").exists():  # its data goes with the databases, and it ignores SIGTERM
        with contextlib.suppress(ProcessLookupError):  # past the grace period of clean_stop
            stop("seaweedfs")
        (home() / "run" / "seaweedfs.pid").unlink()
    clean_stop.stop_services(home() / "run")
    if info.get("databases"):
        drop_databases(info["databases"])
    if info.get("redis_db") is not None:
        release_redis_db(info["redis_db"], info["id"])
    ports = info.get("ports", {})
    for name, port in ports.items():  # SeaweedFS leaves its gRPC sockets in /tmp, named by port
        if name.endswith(".grpc"):
            kind = name.removeprefix("s3_").split(".")[0]
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)
    for command in (home() / "run").glob("*.command.json"):
        command.unlink()
    if "s3_s3.port" in ports:
        shutil.rmtree(socket_dir(ports), ignore_errors=True)
    shutil.rmtree(home() / "seaweedfs", ignore_errors=True)
    stack_file().unlink(missing_ok=True)
    return [port for port in ports.values() if _listening(port)]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if argv[:1] == ["up"] and len(argv) in (1, 4):
        stack = up(tuple(argv[1:]) or None)
        user, password = next(iter(stack["login"].items()))
        print(
            f"Airflow UI  {stack['api']}  (login {user} / {password})\nMLflow UI   {stack['mlflow']}\n"
            f"S3          {stack['s3']}  (bucket {BUCKET})\nstack.json  {stack_file()}"
        )
    elif argv == ["env"]:  # eval "$(python scripts/stack.py env)": a shell becomes a client of the stack
        import shlex

        for key, value in sorted(json.loads(stack_file().read_text())["env"].items()):
            print(f"export {key}={shlex.quote(value)}")
    elif argv == ["down"]:
        still_open = down()
        if still_open:
            print(f"stack down, but ports still open: {still_open}", file=sys.stderr)
            return 1
        print("stack down: services stopped, databases dropped, ports free")
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    with clean_stop.on_signals():
        sys.exit(main(sys.argv[1:]))
