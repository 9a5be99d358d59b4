"""The daily monitoring run's steps, in order: the one registry that :func:`churnguard.daily.run_day`, the
operators and the DAG file use, so a step is named, ordered and documented once.

A :class:`Step` is its result type (whose ``step`` is the task id and the ``day_steps`` row), the function of
:mod:`churnguard.daily` that makes it, and the line the UI shows for its task. A step with a ``verdict`` runs
only on a day decided so (the DAG's branch). The function is resolved when the step runs, not when this module
is imported: the DAG file imports the registry at parse time, and parsing must not import the data stack
(``tests/dags/test_dags.py`` holds every step's function to its result type).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from churnguard.results import (
    Decision,
    DriftSummary,
    FailureRisk,
    Ingested,
    PerformanceSummary,
    Promotion,
    Published,
    Retrained,
    Scored,
    StepResult,
    Validated,
    Verdict,
)

if TYPE_CHECKING:
    from churnguard.context import DayContext


@dataclass(frozen=True)
class Step:
    """One step of the day: ``function`` (of :mod:`churnguard.daily`) makes a ``result``; ``doc`` is its task's
    documentation; ``verdict``: it runs only on a day with that decision."""

    result: type[StepResult]
    function_name: str
    doc: str
    verdict: Verdict | None = None

    @property
    def name(self) -> str:
        """The task id, and the step's row in the day's results."""
        return self.result.step

    @property
    def function(self) -> Callable[[DayContext], StepResult]:
        from churnguard import daily

        return getattr(daily, self.function_name)

    def __call__(self, ctx: DayContext) -> StepResult:
        return self.function(ctx)


INGEST = Step(Ingested, "ingest", "Read every file of the batch once (unreadable ones quarantine it) and stage it.")
VALIDATE = Step(Validated, "validate", "Validate the staged batch against the pinned champion's profile (GX).")
SCORE = Step(
    Scored, "score", "Score with the champion, and the challenger as a shadow: the versions pinned for the day."
)
DRIFT = Step(DriftSummary, "drift", "Drift of the batch and the champion's scores against its reference profile.")
PERFORMANCE = Step(
    PerformanceSummary, "performance", "Metrics on labels that arrived today, per observed day; 30-day history."
)
FAILURE_RISK = Step(
    FailureRisk, "failure_risk", "P(champion fails within the horizon), or unavailable with the reason."
)
DECIDE = Step(
    Decision, "decide_day", "healthy / alert / retrain from the day's drift, performance and risk, in one line."
)
RETRAIN = Step(
    Retrained,
    "retrain",
    "Train on recent labelled days, validate on the latest matured ones, register as challenger.",
    verdict=Verdict.RETRAIN,
)
PROMOTE = Step(Promotion, "promote", "Promote the challenger when it has proven itself (or the champion failed).")
PUBLISH = Step(
    Published,
    "publish",
    "summary.json, the day's MLflow run, the store row: from the day's recorded results; then the day's alerts "
    "are delivered.",
)

STEPS: tuple[Step, ...] = (INGEST, VALIDATE, SCORE, DRIFT, PERFORMANCE, FAILURE_RISK, DECIDE, RETRAIN, PROMOTE, PUBLISH)
