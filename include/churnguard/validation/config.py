"""The validation gate's settings: ``configs/validation.yaml`` (strict; unknown keys are errors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from churnguard.config import DatasetConfig, check_features, check_features_by_dataset, load_yaml_model
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
        # checked at load against the dataset configs on disk; again here for a dataset config built in code
        check_features(f"validation config: missing.optional.{dataset_cfg.name}", dataset_cfg, names)
        return list(names)


def load_validation_config(overrides: dict[str, Any] | None = None) -> ValidationConfig:
    """``configs/validation.yaml`` with ``overrides``; every dataset named in ``missing.optional`` must have a
    config, and every feature listed for it must be one of its features."""
    path = get_settings().config_dir / "validation.yaml"
    cfg = load_yaml_model(path, ValidationConfig, overrides)
    check_features_by_dataset(path, "missing.optional", cfg.missing.optional)
    return cfg
