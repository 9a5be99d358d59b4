"""The failure model's config (``configs/failure.yaml``): strict keys, read with ``load_yaml_model``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from churnguard.config import _Strict, load_yaml_model
from churnguard.settings import get_settings


class FailureDefinition(_Strict):
    tolerance: float = Field(default=0.05, ge=0, lt=1)
    f1_relative_drop: float = Field(default=0.10, ge=0, le=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    min_labels: int = Field(default=200, ge=10)
    min_class_count: int = Field(default=20, ge=1)
    window_days: int = Field(default=3, ge=1)
    horizon_days: int = Field(default=7, ge=1)
    label_delay_days: int = Field(default=7, ge=0)


class FeatureConfig(_Strict):
    trend_days: int = Field(default=7, ge=2)
    matured_window: int = Field(default=14, ge=3)


class TrajectoryConfig(_Strict):
    count: int = Field(default=864, ge=9)
    days: int = Field(default=80, ge=20)
    rows_per_day: int = Field(default=500, ge=50)
    onset_min: int = Field(default=20, ge=1)
    onset_max: int = Field(default=50, ge=1)
    intensity_min: float = Field(default=0.1, gt=0)
    intensity_max: float = Field(default=3.0, gt=0)
    warmup_days: int = Field(default=14, ge=1)
    evaluation_every: int = Field(default=3, ge=2)
    seed: int = 7

    @model_validator(mode="after")
    def _ordered(self) -> TrajectoryConfig:
        if self.onset_max < self.onset_min or self.onset_max >= self.days:
            raise ValueError(f"need onset_min <= onset_max < days, got {self.onset_min}, {self.onset_max}, {self.days}")
        if self.intensity_max < self.intensity_min:
            raise ValueError(f"intensity_max ({self.intensity_max}) is below intensity_min ({self.intensity_min})")
        return self


class TrainingConfig(_Strict):
    cv_folds: int = Field(default=3, ge=2)
    cv_repeats: int = Field(default=1, ge=1)
    max_false_alarms_per_90d: float = Field(default=1.0, ge=0)
    early_warning_weight: float = Field(default=1.0, ge=1.0)


class FailureConfig(_Strict):
    registered_name: str = "failure-model"
    failure: FailureDefinition = FailureDefinition()
    features: FeatureConfig = FeatureConfig()
    trajectories: TrajectoryConfig = TrajectoryConfig()
    training: TrainingConfig = TrainingConfig()


def load_failure_config(overrides: dict[str, Any] | None = None) -> FailureConfig:
    """``configs/failure.yaml`` with ``overrides`` (nested dict) merged in."""
    return load_yaml_model(get_settings().config_dir / "failure.yaml", FailureConfig, overrides)
