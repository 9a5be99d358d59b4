"""Daily failure risk from the stored signal history, with the three features that pushed it most."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from churnguard.failure.features import failure_features

log = logging.getLogger(__name__)


def _unavailable(reason: str, version: int | None = None) -> dict:
    return {"risk": None, "top_drivers": [], "available": False, "reason": reason, "model_version": version}


def load_failure_champion():
    """``(FailureModel, VersionInfo)`` of ``failure-model@champion``, or None when none is registered."""
    from churnguard import registry
    from churnguard.failure.config import load_failure_config
    from churnguard.failure.pipeline import load_run_failure_model

    version = registry.version_by_alias(load_failure_config().registered_name, registry.CHAMPION)
    if version is None:
        return None
    return load_run_failure_model(version.run_id)[0], version


def score_failure_risk(signal_history: Sequence[Mapping[str, Any]], model=None) -> dict:
    """P(the champion fails within the horizon) from ``signal_history`` (day signals, oldest first).

    Returns ``{"risk", "top_drivers", "available", "reason", "model_version"}``; never raises: without a
    registered ``failure-model@champion`` or without signals, ``available`` is False and ``reason`` says
    why. ``model``: a ``(FailureModel, version)`` pair to use instead of the registered champion.
    """
    try:
        found = model if model is not None else load_failure_champion()
    except Exception as exc:  # a broken registry must not break the daily run
        log.warning("failure model could not be loaded: %s", exc)
        return _unavailable(f"failure model could not be loaded: {exc}")
    if found is None:
        return _unavailable("no failure-model@champion registered: run the churn_failure_model_training DAG")
    failure_model, version = found
    number = getattr(version, "version", version)
    if not signal_history:
        return _unavailable("no day signals yet: nothing to score", number)
    try:
        row = pd.DataFrame([failure_features(list(signal_history), failure_model.meta.get("trend_days", 7))])
        risk = float(failure_model.predict_risk(row)[0])
        drivers = failure_model.drivers(row, k=3)
    except Exception as exc:
        log.warning("failure risk could not be computed: %s", exc)
        return _unavailable(f"failure risk could not be computed: {exc}", number)
    return {"risk": risk, "top_drivers": drivers, "available": True,
            "reason": f"risk {risk:.2f} vs alarm threshold {failure_model.threshold:.2f}",
            "model_version": number, "alarm": risk >= failure_model.threshold,
            "threshold": failure_model.threshold}
