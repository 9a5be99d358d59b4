"""The one settings object: environment variables (prefix ``CHURNGUARD_``) over embedded defaults.

Every default points under the project's ``.churnguard/`` folder, so a fresh clone runs with nothing
configured. ``.env.example`` lists every variable read here.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parents[1]


class Settings(BaseSettings):
    """Runtime settings. Derived defaults are filled from ``home`` after the environment is read."""

    model_config = SettingsConfigDict(env_prefix="CHURNGUARD_", extra="ignore")

    home: Path = Field(default=PROJECT_ROOT / ".churnguard", description="Local state folder.")
    data_url: str = Field(default="", description="Data root: file:///path or s3://bucket/prefix.")
    db_url: str = Field(default="", description="SQLAlchemy URL of the monitoring store.")
    s3_endpoint_url: str | None = Field(default=None, description="S3 API endpoint (moto, SeaweedFS).")
    s3_access_key_id: str | None = Field(default=None, description="S3 key id (default: boto3's own chain).")
    s3_secret_access_key: str | None = Field(default=None, description="S3 secret key (with the key id).")
    s3_region: str | None = Field(default=None, description="S3 region (default: boto3's own chain).")
    config_dir: Path = Field(default=PACKAGE_DIR / "configs", description="Folder of the YAML configs.")
    dataset: str = Field(default="telco", description="Dataset config name (configs/datasets/NAME.yaml).")
    mlflow_tracking_uri: str = Field(
        default="",
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "CHURNGUARD_MLFLOW_TRACKING_URI"),
        description="MLflow tracking + registry store.",
    )
    mlflow_artifact_uri: str = Field(default="", description="Artifact root of the MLflow experiment.")
    mlflow_experiment: str = Field(default="churnguard", description="MLflow experiment name.")
    mlflow_ui_url: str = Field(default="http://127.0.0.1:5000", description="MLflow UI the Airflow links open.")
    api_keys: SecretStr = Field(default=SecretStr(""), description="Keys of the prediction service, comma-separated.")
    api_keys_file: Path | None = Field(default=None, description="A file of more service keys, one a line.")
    admin_api_keys: SecretStr = Field(default=SecretStr(""), description="Keys that may also call /admin routes.")
    admin_api_keys_file: Path | None = Field(default=None, description="A file of more admin keys, one a line.")
    start_date: str | None = Field(
        default=None,
        description="First scheduled day of the daily DAG "
        "(YYYY-MM-DD); overrides monitoring.yaml's schedule.start_date.",
    )

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        home = self.home.resolve()
        self.home = home
        if not self.data_url:
            self.data_url = (home / "data").as_uri()
        if not self.db_url:
            self.db_url = f"sqlite:///{home / 'monitoring.db'}"
        if not self.mlflow_tracking_uri:
            self.mlflow_tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
        if not self.mlflow_artifact_uri:
            self.mlflow_artifact_uri = (home / "mlartifacts").as_uri()
        return self


_overrides: dict[str, object] = {}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # bars garble task logs
    return Settings(**_overrides)


def override_settings(**values: object) -> Settings:
    """Set settings for the rest of this process (what an Airflow connection stands for, in a task's own
    process): they win over the environment, are validated as it is, and every later :func:`get_settings`
    sees them. Returns the settings now in force."""
    Settings(**{**_overrides, **values})  # a bad value raises here, before anything changes
    _overrides.update(values)
    get_settings.cache_clear()
    return get_settings()


def reset_settings() -> None:
    """Forget every :func:`override_settings` of this process: the environment and the defaults again."""
    _overrides.clear()
    get_settings.cache_clear()
