"""Daily failure risk from the stored signal history, with the three features that pushed it most."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from churnguard.failure.features import failure_features
from churnguard.results import FailureRisk

log = logging.getLogger(__name__)


def unavailable_risk(reason: str, version: int | None = None) -> FailureRisk:
    """A day's risk that could not be scored, with the reason."""
    return FailureRisk(available=False, reason=reason, model_version=version)


def score_failure_risk(signal_history: Sequence[Mapping[str, Any]], model: tuple[Any, Any]) -> FailureRisk:
    """P(the champion fails within the horizon) from ``signal_history`` (day signals, oldest first) with
    ``model``, a ``(FailureModel, version)`` pair (the registered one: ``failure_training.failure_risk_today``).

    Never raises: without signals, or when the model cannot score them, ``available`` is False and ``reason``
    says why.
    """
    failure_model, version = model
    number = getattr(version, "version", version)
    if not signal_history:
        return unavailable_risk("no day signals yet: nothing to score", number)
    try:
        row = pd.DataFrame([failure_features(list(signal_history), failure_model.meta.get("trend_days", 7))])
        risk = float(failure_model.predict_risk(row)[0])
        drivers = failure_model.drivers(row, k=3)
    except Exception as exc:
        log.warning("failure risk could not be computed: %s", exc)
        return unavailable_risk(f"failure risk could not be computed: {exc}", number)
    return FailureRisk(
        available=True,
        risk=risk,
        top_drivers=drivers,
        reason=f"risk {risk:.2f} vs alarm threshold {failure_model.threshold:.2f}",
        model_version=number,
        alarm=bool(risk >= failure_model.threshold),
        threshold=failure_model.threshold,
    )
