"""Settings and YAML configs: defaults, env overrides, and one-line errors naming file and key."""

from __future__ import annotations

import pytest

from churnguard.config import (
    ConfigError,
    load_dataset_config,
    load_drift_config,
    load_model_config,
)
from churnguard.settings import get_settings


def test_embedded_defaults_live_under_home(churnguard_home):
    s = get_settings()
    assert s.data_url == (churnguard_home / "data").as_uri()
    assert s.db_url == f"sqlite:///{churnguard_home / 'monitoring.db'}"
    assert s.mlflow_tracking_uri == f"sqlite:///{churnguard_home / 'mlflow.db'}"


def test_environment_overrides_settings(monkeypatch):
    monkeypatch.setenv("CHURNGUARD_DATA_URL", "s3://bucket/prefix")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    get_settings.cache_clear()
    assert get_settings().data_url == "s3://bucket/prefix"
    assert get_settings().mlflow_tracking_uri == "http://127.0.0.1:5000"


def test_telco_schema_lists_every_feature_once():
    cfg = load_dataset_config("telco")
    assert cfg.target.column == "churn" and cfg.target.positive == "Yes"
    assert len(cfg.features) == len(set(cfg.features)) == 19
    assert cfg.domain["tenure"].min == 0


def test_unknown_key_names_file_and_key(config_dir):
    (config_dir / "model.yaml").write_text("xgboost:\n  max_depht: 3\n")
    with pytest.raises(ConfigError) as err:
        load_model_config()
    message = str(err.value)
    assert "model.yaml" in message and "unknown key 'xgboost.max_depht'" in message
    assert "\n" not in message


def test_missing_required_key_names_file_and_key(config_dir):
    path = config_dir / "datasets" / "telco.yaml"
    path.write_text(path.read_text().replace("target:\n  column: churn\n", "target:\n"))
    with pytest.raises(ConfigError, match=r"telco\.yaml: missing required key 'target.column'"):
        load_dataset_config("telco")


def test_invalid_value_and_bad_yaml_are_one_line_errors(config_dir):
    (config_dir / "drift.yaml").write_text("psi:\n  bins: 1\n")
    with pytest.raises(ConfigError, match=r"drift\.yaml: key 'psi.bins'"):
        load_drift_config()
    (config_dir / "drift.yaml").write_text("psi: [unclosed\n")
    with pytest.raises(ConfigError, match=r"drift\.yaml: not valid YAML \(line 2\)"):
        load_drift_config()


def test_unknown_dataset_lists_known_ones(config_dir):
    with pytest.raises(ConfigError, match="no dataset config named 'nope' .*telco"):
        load_dataset_config("nope")


def test_feature_listed_twice_is_rejected(config_dir):
    path = config_dir / "datasets" / "telco.yaml"
    path.write_text(path.read_text().replace("binary: [female,", "binary: [tenure, female,"))
    with pytest.raises(ConfigError, match="column 'tenure' is listed twice"):
        load_dataset_config("telco")


def test_overrides_merge_over_file_values():
    cfg = load_drift_config({"psi": {"critical": 0.5}})
    assert cfg.psi.critical == 0.5 and cfg.psi.moderate == load_drift_config().psi.moderate


def test_segments_must_name_binary_or_categorical_columns(config_dir):
    assert load_dataset_config("telco").segments == ["contract", "internet_service"]
    path = config_dir / "datasets" / "telco.yaml"
    original = path.read_text()
    path.write_text(original.replace("segments: [contract, internet_service]", "segments: [contract, tenure]"))
    with pytest.raises(ConfigError) as err:
        load_dataset_config("telco")
    assert str(err.value).endswith(
        "telco.yaml: segments: 'tenure' is a numeric column; a segment must be a binary or categorical column"
    )
    path.write_text(original.replace("segments: [contract, internet_service]", "segments: [plan]"))
    with pytest.raises(ConfigError, match=r"telco\.yaml: segments: 'plan' is not a feature"):
        load_dataset_config("telco")
