"""What each step of a day's monitoring run returns: one frozen dataclass per step, and its one mapping to and
from JSON (the ``day_steps`` table of the monitoring store, XCom, ``summary.json``).

A step records its result with ``ctx.record(result)`` (the class names the step) and a later step reads it back
typed with ``ctx.require(DriftSummary)``. A result read from the store ignores keys it no longer has and
fills new fields with their defaults, so a day recorded by an older release still reads.

The order of the steps and which function makes which result: :mod:`churnguard.steps`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar, Self


class Verdict(StrEnum):
    """The day's decision; its value is also the id of the branch task the DAG follows."""

    HEALTHY = "healthy"
    ALERT = "alert"
    RETRAIN = "retrain"

    @property
    def edge(self) -> str:
        """How the DAG's branch edge to this verdict is labelled."""
        return {
            Verdict.HEALTHY: "no drift, no risk",
            Verdict.ALERT: "moderate drift or risk",
            Verdict.RETRAIN: "critical drift, risk or failure",
        }[self]


@dataclass(frozen=True)
class StepResult:
    """A step's result: ``step`` names the step (and its row in ``day_steps``)."""

    step: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Self:
        return cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})


@dataclass(frozen=True)
class Ingested(StepResult):
    """The day's batch, read once and staged for the later steps."""

    step: ClassVar[str] = "ingest"
    ds: str
    rows: int
    data_version: str
    landing_uri: str
    staged_uri: str


@dataclass(frozen=True)
class Validated(StepResult):
    """The validation gate's verdict on the staged batch (errors never get here: they quarantine it)."""

    step: ClassVar[str] = "validate"
    ds: str
    status: str
    exit_code: int
    failures: list[str]
    warnings: list[str]
    report_uri: str


@dataclass(frozen=True)
class Scored(StepResult):
    """The day's scores partition and the versions that wrote it (the challenger's None without one)."""

    step: ClassVar[str] = "score"
    scores_uri: str
    rows: int
    champion_version: int | None
    challenger_version: int | None


@dataclass(frozen=True)
class DriftSummary(StepResult):
    """The headline of the day's drift report (the report itself: ``report_uri``, ``html_uri``)."""

    step: ClassVar[str] = "drift"
    ds: str
    severity: str
    drift_share: float
    weighted_drift: float
    n_drifted: int
    prediction_psi: float | None
    top_features: list[str]
    profile_version: str | None
    champion_version: int
    report_uri: str
    html_uri: str


@dataclass(frozen=True)
class PerformanceSummary(StepResult):
    """What the label deliveries measured today (``measured``: the per-day rows with their segments)."""

    step: ClassVar[str] = "performance"
    ds: str
    measured: list[dict] = field(default_factory=list)
    measured_failure_days: list[str] = field(default_factory=list)
    measured_failure: bool = False
    earlier_champion_failure_days: list[str] = field(default_factory=list)
    history_days: int = 0
    auc_slope_per_day: float | None = None
    latest_auc: float | None = None
    deliveries: list[dict] = field(default_factory=list)
    unknown_ids: int = 0


@dataclass(frozen=True)
class FailureRisk(StepResult):
    """P(the champion fails within the horizon), or unavailable with the reason."""

    step: ClassVar[str] = "failure_risk"
    available: bool
    risk: float | None = None
    top_drivers: list[dict] = field(default_factory=list)
    reason: str | None = None
    model_version: int | None = None
    alarm: bool | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class Decision(StepResult):
    """The day's decision and the reasons that led to it (see :mod:`churnguard.decision`)."""

    step: ClassVar[str] = "decide"
    decision: Verdict
    reasons: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision", Verdict(self.decision))

    def line(self) -> str:
        """The one log line that states the decision and its reasons."""
        return f"decision={self.decision}: " + ("; ".join(self.reasons) or "no drift, risk or failure signal")


@dataclass(frozen=True)
class Retrained(StepResult):
    """A challenger trained for the day: its window, metrics and gates, and the version registered (if any)."""

    step: ClassVar[str] = "retrain"
    ds: str
    reason: str
    dry_run: bool = False
    change_day: str | None = None
    refresh_of: int | None = None
    registered: bool = False
    version: int | None = None
    passed: bool = False
    gates: dict[str, bool] = field(default_factory=dict)
    window: dict[str, str] | None = None
    candidate: str | None = None
    candidate_validation_auc: dict[str, float] | None = None
    metrics: dict[str, float] | None = None
    rejected: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Promotion(StepResult):
    """Whether the day promoted a challenger (``version``, from ``from_version``) and why (or why not)."""

    step: ClassVar[str] = "promote"
    promoted: bool
    reason: str | None = None
    version: int | None = None
    from_version: int | None = None


@dataclass(frozen=True)
class Published(StepResult):
    """Where the day's summary went: ``summary.json``, the day's MLflow run."""

    step: ClassVar[str] = "publish"
    summary_uri: str
    mlflow_run_id: str
    decision: Verdict


@dataclass(frozen=True)
class DayOutcome:
    """What a whole day's run (:func:`churnguard.steps.run_day`) decided and changed."""

    summary_uri: str
    mlflow_run_id: str
    decision: Verdict
    reasons: list[str]
    promoted: bool
    registered: int | None  # the challenger version the day registered
