"""The `churnguard` console script: simulate, drift, validate, status, plain --help, and one-line errors
with their exit codes."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from churnguard.cli import main
from churnguard.config import load_dataset_config, load_drift_config
from churnguard.data import load_reference, split_reference
from churnguard.drift import fit_profile
from churnguard.storage import open_storage
from churnguard.store import open_store, schema
from tests.conftest import churnguard_cli, free_port, home_env

BIN = Path(sys.executable).parent
DRIFT = load_drift_config()


def test_simulate_writes_partitions_and_prints_the_summary(tmp_path, capsys):
    root = tmp_path / "data"
    code = main(
        [
            "simulate",
            "--start",
            "2026-02-01",
            "--days",
            "3",
            "--scenario",
            "sudden",
            "--onset",
            "2026-02-02",
            "--rows-per-day",
            "20",
            "--data-url",
            root.as_uri(),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["days"] == 3 and summary["scenario"] == "sudden" and summary["onset"] == "2026-02-02"
    assert len(open_storage(root.as_uri()).list_partitions("landing")) == 3


@pytest.mark.integration
def test_bad_scenario_is_one_line_on_stderr_with_exit_2():
    proc = subprocess.run(
        [str(BIN / "churnguard"), "simulate", "--start", "2026-02-01", "--days", "1", "--scenario", "meteor"],
        capture_output=True,
        text=True,
    )
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


# --- help ---------------------------------------------------------------------------------------------------
COMMANDS = ["simulate", "bootstrap", "run-days", "status", "timeline", "serve", "drift", "validate"]


@pytest.mark.integration
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_is_plain_text_that_fits_a_terminal(command):
    proc = subprocess.run(
        [str(BIN / "churnguard"), *filter(None, [command]), "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80"},
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert not re.search(r"\x1b\[|``|:(func|class|mod|meth|data):|\*\*", proc.stdout)
    assert max(len(line) for line in proc.stdout.splitlines()) <= 80
    assert proc.stdout.startswith(f"usage: churnguard {command}".rstrip())


def test_every_command_and_option_is_explained_in_its_help():
    from churnguard.cli import DELEGATED, _parser
    from churnguard.cli_drift import _parser as drift_parser
    from churnguard.cli_validate import _parser as validate_parser

    (commands,) = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parsers = {name: p for name, p in commands.choices.items() if name not in DELEGATED}
    parsers |= {"drift": drift_parser(), "validate": validate_parser()}
    assert sorted(parsers) == sorted(COMMANDS)
    for name, parser in parsers.items():
        assert parser.description, name
        assert [a.dest for a in parser._actions if not a.help] == [], name


@pytest.mark.parametrize(
    "command, codes", [("", "exit codes:\n  0"), ("drift", "exit codes:\n  0"), ("validate", "exit codes:\n  0")]
)
def test_exit_codes_are_documented_in_the_help(command, codes, capsys):
    with contextlib.suppress(SystemExit):
        main([*filter(None, [command]), "--help"])
    assert codes in capsys.readouterr().out


# --- drift --------------------------------------------------------------------------------------------------
@pytest.fixture
def drifted_day(tmp_path) -> tuple[Path, Path]:
    """A reference profile JSON and the landing partition folder of one day with a strong sudden shift."""
    root = tmp_path / "data"
    assert (
        main(
            [
                "simulate",
                "--start",
                "2026-02-01",
                "--days",
                "1",
                "--scenario",
                "sudden",
                "--intensity",
                "3",
                "--rows-per-day",
                "300",
                "--data-url",
                root.as_uri(),
            ]
        )
        == 0
    )
    cfg = load_dataset_config()
    profile = tmp_path / "profile.json"
    profile.write_text(fit_profile(split_reference(load_reference(cfg), cfg).train, cfg, DRIFT).to_json())
    return profile, root / "landing" / "ds=2026-02-01"


def test_drift_of_a_partition_folder_is_the_drift_of_its_files(drifted_day, capsys):
    profile, folder = drifted_day
    (part,) = folder.glob("*.parquet")
    capsys.readouterr()
    assert main(["drift", str(profile), str(folder), "--json"]) == 0
    of_folder = json.loads(capsys.readouterr().out)
    assert main(["drift", str(profile), str(part), "--json"]) == 0
    of_file = json.loads(capsys.readouterr().out)

    def verdict(report: dict) -> dict:  # a file is streamed by row groups, so distance estimates differ a bit
        return {
            "severity": report["severity"],
            "n_rows": report["n_rows"],
            "features": {n: (f["severity"], f["psi"]) for n, f in report["features"].items()},
        }

    assert of_folder["n_rows"] == 300 and of_folder["severity"] == "critical"
    assert verdict(of_folder) == verdict(of_file)


@pytest.mark.parametrize("fail_on, code", [(None, 0), ("critical", 1), ("moderate", 1)])
def test_drift_fails_only_at_or_above_the_fail_on_level(drifted_day, capsys, fail_on, code):
    profile, folder = drifted_day
    argv = ["drift", str(profile), str(folder), *(["--fail-on", fail_on] if fail_on else [])]
    assert main(argv) == code
    assert capsys.readouterr().out.startswith("severity critical:")  # the report is printed either way


def test_a_stable_batch_passes_fail_on_moderate(tmp_path, capsys):
    root = tmp_path / "data"
    assert (
        main(["simulate", "--start", "2026-02-01", "--days", "1", "--rows-per-day", "300", "--data-url", root.as_uri()])
        == 0
    )
    cfg = load_dataset_config()
    profile = tmp_path / "profile.json"
    profile.write_text(fit_profile(split_reference(load_reference(cfg), cfg).train, cfg, DRIFT).to_json())
    capsys.readouterr()
    assert main(["drift", str(profile), str(root / "landing" / "ds=2026-02-01"), "--fail-on", "moderate"]) == 0
    assert capsys.readouterr().out.startswith("severity stable:")


@pytest.mark.parametrize(
    "make, reason", [(lambda d: None, "no such file"), (lambda d: d.mkdir(), "no parquet files in this folder")]
)
def test_a_missing_or_empty_folder_is_one_line_with_exit_2(drifted_day, capsys, make, reason):
    profile, folder = drifted_day
    other = folder.parent / "ds=2026-02-09"
    make(other)
    assert main(["drift", str(profile), str(other)]) == 2
    assert capsys.readouterr().err == f"churnguard drift: {other}: {reason}\n"


# --- validate: the champion's profile by default -----------------------------------------------------------
@pytest.mark.integration
def test_validate_checks_against_the_champions_profile_as_the_dag_does(tmp_path, churnguard_home):
    env = home_env(churnguard_home)
    simulate = churnguard_cli(env, "simulate", "--start", "2026-09-01", "--days", "1", "--rows-per-day", "300")
    assert simulate.returncode == 0, simulate.stderr[-2000:]
    batch = str(churnguard_home / "data" / "landing" / "ds=2026-09-01")

    before = churnguard_cli(env, "validate", batch)  # nothing bootstrapped yet: the reference train split
    assert before.returncode in (0, 1), before.stderr[-2000:]
    assert (
        "churnguard validate: no churn-model@champion registered: checking against the reference train split"
    ) in before.stderr.splitlines()

    boot = churnguard_cli(env, "bootstrap")
    assert boot.returncode == 0, boot.stderr[-2000:]
    champion_profile = json.loads(boot.stdout)["fit"]["profile_version"]
    after = churnguard_cli(env, "validate", batch, "--json")
    assert after.returncode in (0, 1), after.stderr[-2000:]
    assert json.loads(after.stdout)["profile_version"] == champion_profile
    assert "no churn-model@champion" not in after.stderr


@pytest.mark.integration
def test_validate_with_the_registry_down_is_one_line_with_exit_3(churnguard_home):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = churnguard_cli(
        {**home_env(churnguard_home), "MLFLOW_TRACKING_URI": closed},
        "validate",
        str(churnguard_home / "no-batch-needed"),
    )
    assert proc.returncode == 3
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("churnguard validate:")]
    assert line.startswith(f"churnguard validate: MLflow at {closed} failed") and "Traceback" not in proc.stderr


# --- status: the last decision and the failure model -------------------------------------------------------
SMALL_TRAJECTORIES = {
    "days": 30,
    "rows_per_day": 300,
    "onset_min": 15,
    "onset_max": 17,
    "intensity_min": 1.0,
    "intensity_max": 3.0,
    "warmup_days": 14,
}


def test_status_says_when_nothing_is_monitored_or_registered_yet(capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "failure model: no failure model registered" in out
    assert "last decision: none yet (no day monitored)" in out
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["failure_model"] is None and status["last_decision"] is None


@pytest.mark.integration
def test_status_shows_the_last_decision_and_the_failure_model(config_dir, capsys):
    failure_yaml = config_dir / "failure.yaml"
    failure = yaml.safe_load(failure_yaml.read_text())
    failure["trajectories"].update(SMALL_TRAJECTORIES)
    failure_yaml.write_text(yaml.safe_dump(failure))
    assert main(["bootstrap", "--seed", "0"]) == 0
    from churnguard.config import load_drift_config, load_model_config
    from churnguard.failure.config import load_failure_config
    from churnguard.failure_training import failure_overrides, train_all

    failure_cfg, model_cfg = load_failure_config(failure_overrides(horizon=5)), load_model_config()
    configs = (load_dataset_config(), model_cfg, load_drift_config())
    train_all(open_storage(), open_store(), failure_cfg, *configs, model_cfg.registered_name, count=18)
    open_store().upsert(
        schema.daily_runs,
        [  # what publish records for two monitored days
            {
                "ds": "2026-09-02",
                "dataset": "telco",
                "decision": "retrain",
                "drift_severity": "critical",
                "failure_risk": 0.613,
                "reasons": ["critical drift (share drifted 0.05, top monthly_charges)"],
            },
            {
                "ds": "2026-09-01",
                "dataset": "telco",
                "decision": "healthy",
                "drift_severity": "stable",
                "failure_risk": 0.02,
                "reasons": [],
            },
        ],
    )
    capsys.readouterr()

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["last_decision"] == {
        "ds": "2026-09-02",
        "decision": "retrain",
        "drift_severity": "critical",
        "failure_risk": 0.613,
        "reasons": ["critical drift (share drifted 0.05, top monthly_charges)"],
    }
    failure_model = status["failure_model"]
    assert failure_model["name"] == "failure-model" and failure_model["version"] == 1
    assert failure_model["kind"] in ("logistic", "xgboost") and 0 < failure_model["threshold"] < 1
    assert 0 <= failure_model["auroc"] <= 1 and failure_model["false_alarms_per_90d"] >= 0

    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert (
        "last decision: 2026-09-02 retrain (drift critical, failure risk 0.61): critical drift (share "
        "drifted 0.05, top monthly_charges)"
    ) in out.splitlines()
    assert f"failure model: failure-model @champion v1 (run {failure_model['run_id']}) {failure_model['kind']}" in out
    assert f"auroc={failure_model['auroc']}" in out
