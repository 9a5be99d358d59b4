"""The suite's own plumbing: a command forked from the warm interpreter behaves as the same command started
cold (its own environment, directory, output streams and exit code; a crash point kills only it)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.conftest import churnguard_cli, home_env, warm_python

pytestmark = pytest.mark.integration  # a warm interpreter server and the processes it forks

SHOW = """
import os, sys
print(os.environ["CG_PROBE"], os.getcwd(), sys.argv[1:])
print("to stderr", file=sys.stderr)
raise SystemExit(int(sys.argv[1]))
"""


def test_a_forked_command_has_its_own_environment_directory_streams_and_exit_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for code, probe in ((0, "first"), (4, "second")):
        warm = warm_python({"CG_PROBE": probe}, ["-c", SHOW, str(code)], timeout=60)
        cold = subprocess.run(
            [sys.executable, "-c", SHOW, str(code)], env={"CG_PROBE": probe}, capture_output=True, text=True, timeout=60
        )
        assert (warm.returncode, warm.stdout, warm.stderr) == (cold.returncode, cold.stdout, cold.stderr)
        assert warm.stdout == f"{probe} {tmp_path} ['{code}']\n" and warm.returncode == code


def test_a_crash_point_kills_the_forked_command_and_the_interpreter_serves_the_next(tmp_path):
    env = home_env(tmp_path / "home")
    crashed = churnguard_cli(
        env,
        "simulate",
        "--start",
        "2026-09-01",
        "--days",
        "1",
        "--rows-per-day",
        "300",
        crash_at="storage.write_one.staged",
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert "crash point storage.write_one.staged reached" in crashed.stderr

    again = churnguard_cli(env, "simulate", "--start", "2026-09-01", "--days", "1", "--rows-per-day", "300")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "home" / "data" / "landing" / "ds=2026-09-01").is_dir()
