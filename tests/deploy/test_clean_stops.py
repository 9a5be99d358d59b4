"""Clean stops (issue #31): a script or benchmark stopped by SIGTERM (as ``timeout`` stops it) or SIGINT (Ctrl-C)
while it runs leaves none of the processes it started running: not its servers, not their workers, not the
grandchildren that put themselves in process groups of their own (Airflow's task processes). Every process a test
starts is killed by the test itself, and a stack it leaves behind is taken down, whether the test passed or not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
import stack as native

from tests.conftest import BIN, ROOT, databases_left, home_env

pytestmark = pytest.mark.xdist_group("clean_stops")
GRACE_S = 30  # after the stopped script has exited, what it started must be gone within this


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    return {
        **home_env(home),
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        **extra,
    }


def process_tree(pid: int) -> dict[int, int]:
    """pid -> process group of ``pid`` and every process below it, as they are now."""
    tree = {}
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return tree
    for proc in procs:
        try:
            tree[proc.pid] = os.getpgid(proc.pid)
        except ProcessLookupError:
            pass
    return tree


def pid_files(home: Path) -> dict[int, int]:
    """pid -> process group of every service with a PID file below ``home``."""
    found = {}
    for path in home.rglob("run/*.pid"):
        pid = int(path.read_text())
        try:
            found[pid] = os.getpgid(pid)
        except ProcessLookupError:
            pass
    return found


def still_running(pids: set[int], groups: set[int]) -> list[str]:
    """The processes among ``pids`` or in ``groups`` that are alive (zombies count as ended)."""
    left = []
    for proc in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and (proc.pid in pids or os.getpgid(proc.pid) in groups):
                left.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:150]}")
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return left


def running_below(pid: int, command: str) -> bool:
    """Whether a process below ``pid`` runs ``command`` (a part of its command line)."""
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if command in " ".join(proc.cmdline()):
                return True
        except psutil.NoSuchProcess:
            pass
    return False


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    """Until ``ready()`` holds; fails at once when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"exited with {proc.returncode} before it was stopped:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


class Started:
    """Scripts started in sessions of their own, each with what was seen running below it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path, self.procs, self.seen = tmp_path, [], {}

    def __call__(self, args: list[str], env: dict[str, str], name: str) -> tuple[subprocess.Popen, Path]:
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                args,
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc, log

    def signal(self, proc: subprocess.Popen, signum: int, then_group: bool = False) -> tuple[set[int], set[int]]:
        """Send ``signum`` to ``proc`` (``then_group``: and then to its process group, as ``timeout`` does); the
        processes running below it just before, and their process groups (its PID files' services included)."""
        seen = {**process_tree(proc.pid), **pid_files(self.tmp_path)}
        self.seen.update(seen)
        proc.send_signal(signum)
        if then_group:
            os.killpg(proc.pid, signum)
        return set(seen), set(seen.values())

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.seen.update(process_tree(proc.pid))
        self.seen.update(pid_files(self.tmp_path))
        for group in set(self.seen.values()) - {os.getpgid(0)}:
            try:
                os.killpg(group, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            proc.wait()
        for stack_json in self.tmp_path.rglob("run/stack.json"):  # its databases and Redis database
            subprocess.run(
                [str(BIN / "python"), str(ROOT / "scripts" / "stack.py"), "down"],
                env=airflow_env(stack_json.parents[1]),
                capture_output=True,
                timeout=120,
            )


@pytest.fixture
def started(tmp_path) -> Iterator[Started]:
    start = Started(tmp_path)
    try:
        yield start
    finally:
        start.kill_all()


def assert_all_gone(
    proc: subprocess.Popen,
    log: Path,
    pids: set[int],
    groups: set[int],
    exits_within: float = 180,
) -> None:
    """``proc`` exits (its own teardown first: services stopped, databases dropped) within ``exits_within`` seconds,
    then none of ``pids`` and nothing in ``groups`` is left running after :data:`GRACE_S` more."""
    try:
        proc.wait(timeout=exits_within)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {exits_within:.0f}s after the signal:\n{log.read_text()[-3000:]}")
    deadline = time.monotonic() + GRACE_S
    while (left := still_running(pids, groups)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, (left, log.read_text()[-3000:])


SCRIPT = """
import os, subprocess, sys, time
sys.path.insert(0, {scripts!r})
import clean_stop

nested = "import os, subprocess, time; os.setpgid(0, 0); subprocess.Popen(['sleep', '300']); time.sleep(300)"
with clean_stop.on_signals():
    try:
        # a service in a session of its own whose child, like an Airflow task process, leads a group of its own
        server = subprocess.Popen([sys.executable, "-c", "import subprocess, time; "
                                   "subprocess.Popen([" + repr(sys.executable) + ", '-c', " + repr(nested) + "]); "
                                   "time.sleep(300)"], start_new_session=True)
        helper = subprocess.Popen(["sleep", "300"])  # in this script's own group, as a pool worker is
        time.sleep(300)
    finally:
        open({marker!r}, "w").write("teardown ran")
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("signum", "then_group"),
    [(signal.SIGTERM, False), (signal.SIGTERM, True), (signal.SIGINT, False)],
    ids=["SIGTERM", "SIGTERM-then-its-group-as-timeout-sends-it", "SIGINT"],
)
def test_a_stopped_script_runs_its_teardown_and_ends_the_process_groups_below_it(started, tmp_path, signum, then_group):
    marker = tmp_path / "teardown"
    script = tmp_path / "script.py"
    script.write_text(SCRIPT.format(scripts=str(ROOT / "scripts"), marker=str(marker)))
    proc, log = started([sys.executable, str(script)], dict(os.environ), "script")
    wait_until(lambda: len(process_tree(proc.pid)) == 5, proc, log, timeout=30)  # it, server, nested, sleep, helper

    pids, groups = started.signal(proc, signum, then_group)

    assert len(groups) == 3  # the script's, the server's and the nested one's
    assert_all_gone(proc, log, pids, groups)
    assert proc.returncode == (143 if signum == signal.SIGTERM else -signal.SIGINT)
    assert marker.read_text() == "teardown ran"


@pytest.mark.integration
def test_sigterm_while_stack_up_starts_the_stack_leaves_none_of_its_processes_or_databases(started, tmp_path):
    home = tmp_path / "home"
    proc, log = started([str(BIN / "python"), str(ROOT / "scripts" / "stack.py"), "up"], airflow_env(home), "stack-up")
    wait_until(lambda: (home / "run" / "worker-2.pid").exists(), proc, log)  # every server spawned, none waited for
    databases = json.loads((home / "run" / "stack.json").read_text())["databases"]

    pids, groups = started.signal(proc, signal.SIGTERM)

    assert_all_gone(proc, log, pids, groups)
    assert proc.returncode == 143, log.read_text()[-3000:]
    left = databases_left(databases, native.pg_url("postgres"))
    assert not left and not (home / "run" / "stack.json").exists()


@pytest.mark.integration
def test_sigterm_to_the_scale_benchmark_on_its_running_stack_leaves_none_of_its_processes(started, tmp_path):
    # the case: LocalExecutor on the native stack (PostgreSQL, SeaweedFS, MLflow), stopped as `timeout` does
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc, log = started(
        [str(BIN / "python"), str(ROOT / "benchmarks" / "scale_bench.py"), "--days", "1", "--skip-big"],
        airflow_env(tmp_path / "unused", TMPDIR=str(scratch)),
        "scale-bench",
    )

    def stack_is_up() -> bool:
        try:
            return any("api" in json.loads(path.read_text()) for path in scratch.glob("scale-bench-*/*/run/stack.json"))
        except (OSError, ValueError):
            return False  # being written

    wait_until(stack_is_up, proc, log)

    pids, groups = started.signal(proc, signal.SIGTERM)

    assert len(groups) >= 7  # the bench's own, SeaweedFS, MLflow, api-server, scheduler, dag-processor, triggerer
    assert_all_gone(proc, log, pids, groups)
    assert proc.returncode == 143, log.read_text()[-3000:]
    assert not list(scratch.glob("scale-bench-*"))  # its temporary homes went too (SeaweedFS logs to TMPDIR)


@pytest.mark.integration
def test_sigint_while_airflow_stack_starts_the_demo_services_leaves_none_of_them(started, tmp_path):
    home = tmp_path / "home"
    proc, log = started(
        [str(BIN / "python"), str(ROOT / "scripts" / "airflow_stack.py"), "start"], airflow_env(home), "airflow-stack"
    )
    wait_until(lambda: (home / "run" / "triggerer.pid").exists(), proc, log)

    pids, groups = started.signal(proc, signal.SIGINT)

    assert_all_gone(proc, log, pids, groups)
    assert proc.returncode == -signal.SIGINT, log.read_text()[-3000:]
    assert not list((home / "run").glob("*.pid"))  # make stop has nothing left to stop


@pytest.mark.integration
def test_sigterm_to_the_demo_stops_the_step_it_was_running_at_once(started, tmp_path):
    home = tmp_path / "home"
    proc, log = started(["bash", str(ROOT / "scripts" / "demo.sh")], airflow_env(home), "demo")

    wait_until(lambda: running_below(proc.pid, "dags test churn_bootstrap"), proc, log)  # a minute's work

    pids, groups = started.signal(proc, signal.SIGTERM)

    assert_all_gone(proc, log, pids, groups, exits_within=30)
    assert proc.returncode == 143, log.read_text()[-3000:]
