"""The tree stays as `make lint` wants it: ruff's rules and ruff's format, checked by the gate too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # runs ruff as a process

ROOT = Path(__file__).resolve().parents[1]
TREES = ["include", "dags", "plugins", "tests", "benchmarks", "scripts"]
RUFF = str(Path(sys.executable).parent / "ruff")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["rules", "format"])
def test_the_tree_passes_ruff(command):
    proc = subprocess.run([RUFF, *command, *TREES], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
