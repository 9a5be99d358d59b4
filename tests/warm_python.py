"""A warm interpreter for the suite's many short `churnguard` processes: a server imports churnguard and its
heavy dependencies once (GX, MLflow, XGBoost, skops: ~13 s a process on a slow machine), then forks a child
per command. The child is a real process with its own environment, working directory, stdout and stderr
files and exit code; a crash point SIGKILLs it as it would a cold one. The preload is the task workers'
library half (``churnguard.preload``; ``churnguard_airflow.preload`` adds Airflow): only imports, no
connection, file or thread.

Commands whose import-time output is under test (``tests/test_quiet.py``) start cold, as a user's would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PRELOAD = {
    "churnguard": "import churnguard.preload",
    # Airflow reads its home and metadata database at import: this server is for one AIRFLOW_HOME and
    # settings (the env it is started with); the plugins folder is on sys.path once airflow is imported.
    "airflow": """
import airflow.__main__, airflow.cli.cli_parser
import churnguard_airflow.preload
""",
}


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _child(request: dict) -> int:
    """Run one command in this (forked) process; its exit code."""
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    argv = request["argv"]
    try:
        if argv[0] == "-c":
            sys.argv = ["-c", *argv[2:]]
            exec(compile(argv[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102
            return 0
        sys.argv = argv
        if argv[0] == "airflow":
            from airflow.__main__ import main as airflow_main

            airflow_main()  # it exits through SystemExit or returns None
            return 0
        from churnguard.cli import main

        return main(argv[1:])
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException:  # noqa: BLE001  a cold interpreter prints the traceback and exits 1
        import traceback

        traceback.print_exc()
        return 1


def serve(path: str, kind: str) -> None:
    exec(PRELOAD[kind], {})  # noqa: S102
    import threading

    assert threading.active_count() == 1, "the preload started a thread: forking would be unsafe"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    Path(path).with_name("ready").touch()
    while True:
        conn, _ = listener.accept()
        with conn, conn.makefile("rw") as stream:
            line = stream.readline()
            if not line:
                continue
            request = json.loads(line)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                listener.close()
                conn.close()
                code = 1
                try:
                    code = _child(request)
                finally:
                    for stream_ in (sys.stdout, sys.stderr):
                        try:
                            stream_.flush()
                        except Exception:  # noqa: BLE001, S110
                            pass
                    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)
            stream.write(json.dumps({"pid": pid}) + "\n")
            stream.flush()
            _, status = os.waitpid(pid, 0)
            stream.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
            stream.flush()


class WarmPython:
    """A server for one test process; :meth:`run` is ``subprocess.run(..., capture_output=True, text=True)``
    for ``["churnguard", *args]`` or ``["-c", code, *args]`` (kind ``churnguard``), or ``["airflow", *args]``
    (kind ``airflow``, for the Airflow home and settings of ``env``)."""

    def __init__(self, kind: str = "churnguard", env: dict[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="warm-python-"))
        self.socket = str(self.folder / "server.sock")
        with (self.folder / "server.log").open("w") as log:  # Airflow logs to stdout as it is imported
            self.proc = subprocess.Popen(
                [sys.executable, __file__, self.socket, kind], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        while not Path(self.folder / "ready").exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the warm interpreter did not start: {(self.folder / 'server.log').read_text()}")
            time.sleep(0.1)

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        out, err = self.folder / "stdout", self.folder / "stderr"
        request = {"argv": argv, "env": env, "cwd": os.getcwd(), "stdout": str(out), "stderr": str(err)}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self.socket)
            conn.settimeout(timeout)
            with conn.makefile("rw") as stream:
                stream.write(json.dumps(request) + "\n")
                stream.flush()
                pid = json.loads(stream.readline())["pid"]
                try:
                    returncode = json.loads(stream.readline())["returncode"]
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired(argv, timeout) from None
        return subprocess.CompletedProcess(
            argv, returncode, out.read_text(errors="replace"), err.read_text(errors="replace")
        )

    def close(self) -> None:
        import shutil

        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
