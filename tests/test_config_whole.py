"""The whole config is checked when it is loaded, so before a run writes anything: a dataset-keyed map names
only datasets that have a config and only their features, and every model hyperparameter is bounded as xgboost
bounds it. Each refusal is one line naming the file and the key."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from churnguard.config import (
    ConfigError,
    DatasetConfig,
    DriftConfig,
    ModelConfig,
    MonitoringConfig,
    load_dataset_config,
    load_drift_config,
    load_model_config,
    load_monitoring_config,
)
from churnguard.failure.config import FailureConfig
from churnguard.settings import PACKAGE_DIR
from churnguard.validation import ValidationConfig, load_validation_config
from tests.conftest import SavedWorld, churnguard_cli

TELCO_OPTIONAL = "    telco: [total_charges]"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


# --- dataset-keyed maps ----------------------------------------------------------------------------------------
def test_a_dataset_typo_in_missing_optional_names_file_key_and_the_known_datasets(config_dir):
    edit(config_dir / "validation.yaml", TELCO_OPTIONAL, "    telcoo: [total_charges]")
    with pytest.raises(ConfigError) as err:
        load_validation_config()
    assert str(err.value) == (
        f"{config_dir}/validation.yaml: missing.optional.telcoo: no dataset config named "
        "'telcoo' (known: mlc_churn, telco)"
    )


def test_an_unknown_optional_feature_is_refused_at_load_naming_file_key_and_the_features(config_dir):
    edit(config_dir / "validation.yaml", TELCO_OPTIONAL, "    telco: [total_charges, foo]")
    with pytest.raises(ConfigError) as err:
        load_validation_config()
    message = str(err.value)
    assert message.startswith(
        f"{config_dir}/validation.yaml: missing.optional.telco: unknown feature 'foo' "
        "(features: tenure, monthly_charges, total_charges, "
    )
    assert "\n" not in message


def test_optional_features_of_another_dataset_are_checked_against_its_own_config(config_dir):
    edit(config_dir / "validation.yaml", TELCO_OPTIONAL, f"{TELCO_OPTIONAL}\n    mlc_churn: [total_charges]")
    with pytest.raises(
        ConfigError,
        match=r"missing\.optional\.mlc_churn: unknown feature 'total_charges' "
        r"\(features: account_length, ",
    ):
        load_validation_config()
    edit(config_dir / "validation.yaml", "mlc_churn: [total_charges]", "mlc_churn: [total_day_minutes]")
    assert load_validation_config().missing.optional["mlc_churn"] == ["total_day_minutes"]


def test_overrides_of_the_validation_config_are_checked_like_the_file():
    with pytest.raises(ConfigError, match=r"validation\.yaml: missing\.optional\.telcoo: no dataset config"):
        load_validation_config({"missing": {"optional": {"telcoo": ["tenure"]}}})


def test_a_dataset_config_named_unlike_its_file_is_refused(config_dir):
    """Dataset-keyed maps use the file's name; a config calling itself otherwise would match none of them."""
    edit(config_dir / "datasets" / "telco.yaml", "name: telco", "name: telcoo")
    with pytest.raises(ConfigError) as err:
        load_dataset_config("telco")
    assert str(err.value) == f"{config_dir}/datasets/telco.yaml: name: 'telcoo' differs from the file's name 'telco'"


def test_without_any_dataset_config_the_error_says_there_is_none(config_dir):
    shutil.rmtree(config_dir / "datasets")
    with pytest.raises(ConfigError) as err:
        load_dataset_config("telco")
    assert str(err.value) == (
        f"{config_dir}/datasets/telco.yaml: no dataset config named 'telco' "
        f"(no dataset configs in {config_dir}/datasets)"
    )


def _maps(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Dotted keys of every mapping field of ``model`` and the models it nests."""
    found = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if typing.get_origin(kind) is dict:
            found.add(prefix + name)
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            found |= _maps(kind, f"{prefix}{name}.")
    return found


def test_every_map_in_the_configs_is_keyed_by_something_checked_at_load():
    """A new map keyed by dataset name must be checked like ``missing.optional`` (then listed here)."""
    models = {
        "validation": ValidationConfig,
        "monitoring": MonitoringConfig,
        "drift": DriftConfig,
        "model": ModelConfig,
        "failure": FailureConfig,
        "dataset": DatasetConfig,
    }
    maps = {f"{file}: {key}" for file, model in models.items() for key in _maps(model)}
    assert maps == {
        "validation: missing.optional",  # dataset name -> features: check_features_by_dataset
        "dataset: domain",  # numeric column -> rule: DatasetConfig._columns_consistent
        "dataset: scenarios.concept.segment",  # feature -> value: DatasetConfig._scenario_columns
    }


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        (
            "sudden: {column: monthly_charges",
            "sudden: {column: contract",
            "scenarios.sudden.column: 'contract' is a categorical column; the scenario shifts a numeric column",
        ),
        (
            "gradual: {columns: [monthly_charges, tenure]",
            "gradual: {columns: [monthly_charges, tenur]",
            "scenarios.gradual.columns: 'tenur' is not a feature; the scenario shifts a numeric column",
        ),
        (
            "new_category: {column: payment_method",
            "new_category: {column: tenure",
            "scenarios.new_category.column: 'tenure' is a numeric column; a new category needs a categorical column",
        ),
        (
            "concept: {segment: {contract: Two year}",
            "concept: {segment: {contrct: Two year}",
            "scenarios.concept.segment: 'contrct' is not a feature",
        ),
    ],
    ids=["sudden_categorical", "gradual_typo", "new_category_numeric", "concept_typo"],
)
def test_scenario_columns_must_be_features_of_the_kind_the_scenario_changes(config_dir, old, new, line):
    edit(config_dir / "datasets" / "telco.yaml", old, new)
    with pytest.raises(ConfigError) as err:
        load_dataset_config("telco")
    assert str(err.value) == f"{config_dir}/datasets/telco.yaml: {line}"


# --- model hyperparameters ---------------------------------------------------------------------------------------
XGB_REFUSES = [
    ("reg_lambda", -1),
    ("min_child_weight", -1),
    ("learning_rate", -0.1),
    ("max_depth", -1),
    ("subsample", 1.5),
    ("colsample_bytree", 1.5),
]
LEARNS_NOTHING = [
    ("learning_rate", 0),
    ("max_depth", 0),
    ("subsample", 0),
    ("colsample_bytree", 0),
    ("n_estimators", 0),
    ("early_stopping_rounds", 0),
    ("learning_rate", float("inf")),
]


@pytest.mark.parametrize(
    ("key", "value"), XGB_REFUSES + LEARNS_NOTHING, ids=[f"{k}={v}" for k, v in XGB_REFUSES + LEARNS_NOTHING]
)
def test_a_hyperparameter_out_of_bounds_is_one_line_naming_file_key_and_value(config_dir, key, value):
    text = (config_dir / "model.yaml").read_text()
    start, written = text.index(f"  {key}: "), ".inf" if value == float("inf") else value
    (config_dir / "model.yaml").write_text(f"{text[:start]}  {key}: {written}{text[text.index(chr(10), start) :]}")
    with pytest.raises(ConfigError) as err:
        load_model_config()
    message = str(err.value)
    assert message.startswith(f"{config_dir}/model.yaml: key 'xgboost.{key}': ")
    assert message.endswith(f" (got {value})") and "\n" not in message


def _fit_tiny(params: dict) -> None:
    import numpy as np
    from xgboost import XGBClassifier

    x = np.random.default_rng(0).normal(size=(60, 2))
    XGBClassifier(**params, n_estimators=2, tree_method="hist").fit(x, (x[:, 0] > 0).astype(int))


@pytest.mark.parametrize(("key", "value"), XGB_REFUSES, ids=[f"{k}={v}" for k, v in XGB_REFUSES])
def test_what_xgboost_refuses_at_fit_is_refused_at_load(key, value):
    with pytest.raises(Exception, match=f"value {value} for Parameter {key}"):
        _fit_tiny({key: value})
    with pytest.raises(ConfigError, match=f"key 'xgboost.{key}'"):
        load_model_config({"xgboost": {key: value}})


def test_the_edges_the_config_accepts_xgboost_fits_too():
    edges = {"min_child_weight": 0, "reg_lambda": 0, "subsample": 1, "colsample_bytree": 1, "max_depth": 1}
    xgb = load_model_config({"xgboost": edges}).xgboost
    _fit_tiny({k: getattr(xgb, k) for k in edges})


# --- overrides and the run's up-front check -----------------------------------------------------------------------
def test_run_overrides_are_validated_like_the_files():
    with pytest.raises(ConfigError, match=r"monitoring\.yaml: retrain\.window_days \(2\) must be at least"):
        load_monitoring_config({"retrain": {"window_days": 2}})
    with pytest.raises(ConfigError, match=r"drift\.yaml: key 'psi\.bins': .* \(got 1\)$"):
        load_drift_config({"psi": {"bins": 1}})
    with pytest.raises(ConfigError, match=r"drift overrides: key 'psi\.bins': .* \(got 1\)$"):
        load_drift_config().with_overrides({"psi": {"bins": 1}}, "drift overrides")


def test_check_run_refuses_a_dataset_typo_before_reaching_the_registry(config_dir, monkeypatch):
    from churnguard import context, registry

    monkeypatch.setattr(registry, "check_connection", lambda: pytest.fail("configs are checked first"))
    edit(config_dir / "validation.yaml", TELCO_OPTIONAL, "    telcoo: [total_charges]")
    with pytest.raises(ConfigError, match=r"validation\.yaml: missing\.optional\.telcoo: "):
        context.check_run()


# --- through `churnguard run-days` on a real home -----------------------------------------------------------------
RUN_DAY, NEXT_DAY = "2026-09-01", "2026-09-02"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> SavedWorld:
    """A champion, two simulated days and the first one monitored: a store and data root with content."""
    world = SavedWorld(
        tmp_path_factory.mktemp("config-whole"),
        ("bootstrap", "--seed", "0"),
        ("simulate", "--start", RUN_DAY, "--days", "2", "--rows-per-day", "300", "--seed", "1"),
        ("run-days", "--start", RUN_DAY),
    )
    world.save()
    return world


def data_root_state(data: Path) -> dict[str, str]:
    """Every path under the data root, with its content's hash (folders: '')."""
    return {
        str(p.relative_to(data)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(data.rglob("*"))
    }


def store_state(home: Path) -> dict[str, list]:
    """Every table of the monitoring store with its rows."""
    conn = sqlite3.connect(f"file:{home / 'monitoring.db'}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        conn.close()


@pytest.mark.integration
@pytest.mark.xdist_group("config_whole")
@pytest.mark.parametrize(
    ("file", "old", "new", "line"),
    [
        (
            "validation.yaml",
            TELCO_OPTIONAL,
            "    telcoo: [total_charges]",
            "validation.yaml: missing.optional.telcoo: no dataset config named 'telcoo' (known: mlc_churn, telco)",
        ),
        (
            "validation.yaml",
            TELCO_OPTIONAL,
            "    telco: [total_charges, foo]",
            "validation.yaml: missing.optional.telco: unknown feature 'foo' (features: tenure, ",
        ),
        (
            "model.yaml",
            "reg_lambda: 1.0",
            "reg_lambda: -1",
            "model.yaml: key 'xgboost.reg_lambda': Input should be greater than or equal to 0 (got -1)",
        ),
        (
            "model.yaml",
            "min_child_weight: 5",
            "min_child_weight: -1",
            "model.yaml: key 'xgboost.min_child_weight': Input should be greater than or equal to 0 (got -1)",
        ),
    ],
    ids=["dataset_typo", "unknown_feature", "reg_lambda", "min_child_weight"],
)
def test_a_bad_config_stops_run_days_with_one_line_and_nothing_written(world, tmp_path, file, old, new, line):
    data = world.restore()
    before_data, before_store = data_root_state(data), store_state(world.home)
    assert f"landing/ds={NEXT_DAY}" in before_data and before_store["daily_runs"]  # a run would write here
    configs = tmp_path / "configs"
    shutil.copytree(PACKAGE_DIR / "configs", configs)
    edit(configs / file, old, new)

    proc = churnguard_cli({**world.env, "CHURNGUARD_CONFIG_DIR": str(configs)}, "run-days", "--start", NEXT_DAY)

    assert proc.returncode == 2, proc.stderr[-3000:]
    (message,) = proc.stderr.strip().splitlines()
    assert message.startswith(f"churnguard run-days: {configs}/{line}")
    assert data_root_state(data) == before_data
    assert store_state(world.home) == before_store
