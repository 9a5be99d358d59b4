"""The validation gate's settings: ``configs/validation.yaml`` (strict; unknown keys are errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from churnguard.config import ConfigError, DatasetConfig, load_yaml_model
from churnguard.settings import get_settings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RangesConfig(_Strict):
    tolerance: float = Field(default=0.1, ge=0)
    error_share: float | None = Field(default=None, ge=0, le=1)


class MissingConfig(_Strict):
    max_share: float = Field(default=0.05, ge=0, le=1)
    optional: dict[str, list[str]] = {}


class ValidationConfig(_Strict):
    """How strict each check is; see the comments in ``configs/validation.yaml``."""

    ranges: RangesConfig = RangesConfig()
    missing: MissingConfig = MissingConfig()
    sample_size: int = Field(default=5, ge=1, le=100)

    def optional_features(self, dataset_cfg: DatasetConfig) -> list[str]:
        """Features of ``dataset_cfg`` that may be missing (up to ``missing.max_share``)."""
        names = self.missing.optional.get(dataset_cfg.name, [])
        unknown = [n for n in names if n not in dataset_cfg.features]
        if unknown:
            raise ConfigError(f"validation config: missing.optional.{dataset_cfg.name} lists "
                              f"{', '.join(unknown)}, not a feature of dataset '{dataset_cfg.name}'")
        return list(names)


def load_validation_config(overrides: dict[str, Any] | None = None) -> ValidationConfig:
    return load_yaml_model(get_settings().config_dir / "validation.yaml", ValidationConfig, overrides)
