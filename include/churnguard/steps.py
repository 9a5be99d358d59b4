"""The daily monitoring run's steps, in order: the one registry that :func:`run_day` (the plain loop, without
Airflow), the operators and the DAG file use, so a step is named, ordered and documented once.

A :class:`Step` is its result type (whose ``step`` is the task id and the ``day_steps`` row), the function of
:mod:`churnguard.daily` that makes it, and the line the UI shows for its task. A step with a ``verdict`` runs
only on a day decided so (the DAG's branch). The function is resolved when the step runs, not when this module
is imported: the DAG file imports the registry at parse time, and parsing must not import the data stack
(``tests/dags/test_dags.py`` holds every step's function to its result type).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from churnguard.results import (
    DayOutcome,
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
    from churnguard.context import DayContext, RunOptions

log = logging.getLogger(__name__)


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


def run_day(
    ds: str,
    options: RunOptions | None = None,
    *,
    observe: Callable[[str], contextlib.AbstractContextManager] | None = None,
) -> DayOutcome:
    """Every step of the daily DAG for ``ds`` (:data:`churnguard.steps.STEPS`, in order; a step with a verdict
    only on a day decided so), in this process, on one :class:`DayContext` (so the batch is read once); returns
    the decision summary. ``observe(step)`` wraps each step (timing).

    Configs and the MLflow server are checked before anything is written (:func:`check_run`). A batch that
    cannot be read or fails validation is quarantined and raises :class:`BatchRejected`, as in the DAG. The
    date's lease (:mod:`churnguard.store.lease`) is held from before ingest until the run ends: a run of the
    same date elsewhere waits for this one, and this one for it.
    """
    from churnguard.arrow import release_arrow_memory
    from churnguard.context import DayContext, RunOptions, check_run

    observe = observe or (lambda step: contextlib.nullcontext())
    options = options or RunOptions()
    check_run(options)
    ctx = DayContext.build(ds, options)
    results = {}
    try:
        for step in STEPS:
            if step.verdict is not None and results[Decision].decision != step.verdict:
                continue
            with observe(step.name):
                ctx.claim()
                results[step.result] = step(ctx)
                release_arrow_memory()  # the next step starts from what this one still holds, not what it used
    finally:
        ctx.release()
    published, retrained = results[Published], results.get(Retrained)
    return DayOutcome(
        published.summary_uri,
        published.mlflow_run_id,
        published.decision,
        results[Decision].reasons,
        results[Promotion].promoted,
        retrained.version if retrained and retrained.registered else None,
    )


def day_range(start: date, end: date, today: date | None = None) -> list[date]:
    """The days ``start``..``end``; a reversed range or a day after ``today`` (UTC) is a one-line ValueError."""
    today = today or datetime.now(UTC).date()
    if end < start:
        raise ValueError(f"empty range: --end {end} is before --start {start}")
    if end > today:
        raise ValueError(f"{end} is in the future (today is {today} UTC): no batch can have landed for it")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def run_days(start: date, end: date, options: RunOptions | None = None) -> tuple[list[DayOutcome], dict[str, str]]:
    """:func:`run_day` for each day from ``start`` to ``end``, in order, with progress.

    A day whose batch is missing or was quarantined is reported in one line and the next day goes on, as the
    DAG fails that date's run only; returns the results and ``{day: reason}`` of the days that failed.
    Anything else (a server down, a bad config) stops the range.
    """
    from churnguard.daily import BatchMissing, BatchRejected
    from churnguard.progress import progress

    days = day_range(start, end)
    results, failed = [], {}
    for day in progress(days, len(days), "daily runs"):
        try:
            result = run_day(day.isoformat(), options)
        except (BatchRejected, BatchMissing) as exc:
            log.warning("%s", exc)
            failed[day.isoformat()] = str(exc)
            continue
        log.info("%s %s%s", day, result.decision, " (promoted)" if result.promoted else "")
        results.append(result)
    return results, failed
