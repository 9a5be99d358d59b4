"""Third-party warnings stay out of our output; warnings raised by churnguard itself still show."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from churnguard.quiet import IGNORED
from tests.conftest import churnguard_cli, home_env

# Warnings seen on our code paths (PYTHONWARNINGS=default run-days, bootstrap, airflow dags test), with their
# real categories and the module each is attributed to.
SEEN = [
    (
        "airflow.utils.deprecation_tools.DeprecatedImportWarning",
        "skops.io._utils",
        "The `airflow.utils.timezone.psi` attribute is deprecated. Please use `'airflow.sdk.timezone.psi'`.",
    ),
    (
        "airflow.utils.deprecation_tools.DeprecatedImportWarning",
        "skops.io._utils",
        "The `airflow.utils.entry_points.jv` is deprecated and will be removed in a future version.",
    ),
    (
        "sqlalchemy.exc.SADeprecationWarning",
        "mlflow.store.tracking.sqlalchemy_store",
        "The ``noload`` loader strategy is deprecated and will be removed in a future release.",
    ),
    (
        "pandas.errors.Pandas4Warning",
        "mlflow.models.utils",
        "Operation with range is deprecated. In a future version these will be treated as scalar-like.",
    ),
    (
        "builtins.UserWarning",
        "mlflow.types.utils",
        "Hint: Inferred schema contains integer column(s). Integer columns in Python cannot represent missing values.",
    ),
    (
        "builtins.DeprecationWarning",
        "great_expectations.datasource.fluent.data_connector.file_path_data_connector",
        "module 'sre_constants' is deprecated",
    ),
    (
        "builtins.DeprecationWarning",
        "great_expectations.datasource.fluent.data_connector.file_path_data_connector",
        "module 'sre_parse' is deprecated",
    ),
]
OURS = ["churnguard.daily", "churnguard.registry", "churnguard_airflow.operators", "__main__"]

# Raises every SEEN warning as if from its library, then from each of OURS, in a process that imported
# churnguard and runs with PYTHONWARNINGS=default: each warning that gets through is one "MODULE|message" line.
RAISE_SEEN = """
import importlib, sys, warnings
import churnguard  # installs the filters, as every task, CLI command and test does

categories = [getattr(importlib.import_module(path.rsplit(".", 1)[0]), path.rsplit(".", 1)[1]) for path, _, _ in SEEN]
warnings.showwarning = lambda message, category, filename, lineno, file=None, line=None: print(
    f"{filename.removesuffix('.py')}|{message}", file=sys.stderr)  # after the imports: Airflow sets its own
for category, (_, origin, message) in zip(categories, SEEN):
    for raiser in [origin, *OURS]:
        warnings.warn_explicit(message, category, f"{raiser}.py", 1, module=raiser)
"""


@pytest.mark.integration
def test_the_third_party_warnings_seen_are_silenced_and_the_same_from_our_modules_still_show():
    code = f"SEEN = {SEEN!r}\nOURS = {OURS!r}\n{RAISE_SEEN}"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    shown = sorted(proc.stderr.splitlines())
    assert shown == sorted(f"{raiser}|{message}" for _, _, message in SEEN for raiser in OURS)


@pytest.mark.parametrize("ignored", IGNORED, ids=lambda i: i.module)
def test_each_filter_names_one_third_party_warning_never_ours(ignored):
    assert ignored.category not in (Warning, Exception) and issubclass(ignored.category, Warning)
    assert ignored.module.startswith("^") and len(ignored.message) >= 15
    for ours in OURS + ["churnguard", "churnguard.quiet", "dags.churn_daily_monitoring"]:
        assert not re.match(ignored.module, ours), ours


@pytest.mark.integration
def test_our_commands_print_no_third_party_deprecation_warnings(tmp_path):
    env = {**home_env(tmp_path / "home"), "PYTHONWARNINGS": "default"}
    batch = str(tmp_path / "home" / "data" / "landing" / "ds=2026-09-01")
    for args, codes in (
        (("bootstrap",), {0}),
        (("simulate", "--start", "2026-09-01", "--days", "2", "--rows-per-day", "300"), {0}),
        (("validate", batch), {0, 1}),  # 1: a warned expectation, still validated
        (("run-days", "--start", "2026-09-01", "--end", "2026-09-02"), {0}),
    ):
        proc = churnguard_cli(env, *args, cold=True)  # import-time warnings are under test
        assert proc.returncode in codes, (args, proc.stderr[-3000:])
        leaked = [
            line
            for line in proc.stderr.splitlines()
            if re.search(r"site-packages/.*:\d+: \w*(Deprecation|Future|Pandas\d)\w*Warning: ", line)
        ]
        assert leaked == [], args
