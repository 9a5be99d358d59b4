"""The `churnguard` console script: simulate, status, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from churnguard.cli import main
from churnguard.storage import open_storage

BIN = Path(sys.executable).parent


def test_simulate_writes_partitions_and_prints_the_summary(tmp_path, capsys):
    root = tmp_path / "data"
    code = main(["simulate", "--start", "2026-02-01", "--days", "3", "--scenario", "sudden",
                 "--onset", "2026-02-02", "--rows-per-day", "20", "--data-url", root.as_uri()])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["days"] == 3 and summary["scenario"] == "sudden" and summary["onset"] == "2026-02-02"
    assert len(open_storage(root.as_uri()).list_partitions("landing")) == 3


def test_bad_scenario_is_one_line_on_stderr_with_exit_2():
    proc = subprocess.run([str(BIN / "churnguard"), "simulate", "--start", "2026-02-01", "--days", "1",
                           "--scenario", "meteor"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "scenario 'meteor': unknown family" in proc.stderr


def test_unknown_dataset_is_one_line_with_exit_2(capsys):
    code = main(["simulate", "--start", "2026-02-01", "--days", "1", "--dataset", "nope"])
    assert code == 2
    assert "no dataset config named 'nope'" in capsys.readouterr().err


@pytest.mark.integration
def test_status_reports_missing_then_present_champion(capsys):
    assert main(["status", "--require-champion"]) == 1
    assert "no champion registered yet" in capsys.readouterr().out
    assert main(["bootstrap", "--seed", "0"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["models"]["champion"]["version"] == 1
    assert status["models"]["champion"]["roc_auc"] >= 0.82
