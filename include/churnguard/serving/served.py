"""A model version the service holds: loaded from the registry, tried on canary rows, then served as is.

A version is immutable, so what is loaded once is served until an alias moves away from it; a
:class:`ServedModel` is never changed, only replaced (:mod:`.refresh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from churnguard.models import TrainedModel
from churnguard.registry import ModelRegistry, VersionInfo
from churnguard.serving.explain import Explainer, Explanation
from churnguard.training import load_run_model

# The canary's tolerance between the TreeSHAP sum and the margin of the served score (float32 arithmetic).
MARGIN_TOLERANCE = 1e-3


class CanaryError(RuntimeError):
    """A loaded version scored or explained the canary rows wrongly: it must not serve."""


@dataclass(frozen=True)
class ServedModel:
    """A loaded version: the model, what answered for it, and when it was loaded."""

    name: str
    version: int
    run_id: str
    model: TrainedModel
    explainer: Explainer
    loaded_at: datetime

    @property
    def threshold(self) -> float:
        return self.model.threshold

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """Churn probabilities, one per row (the model's own ``predict_proba``)."""
        return self.model.predict_proba(frame)

    def explain(self, frame: pd.DataFrame) -> list[Explanation]:
        return self.explainer.explain(frame)


def load_served(models: ModelRegistry, info: VersionInfo, canary: pd.DataFrame) -> ServedModel:
    """Load ``info``'s model and hold it to the canary (:func:`check_canary`); raises what the load raised
    (``RegistryError`` when the registry could not answer) or :class:`CanaryError`."""
    model = load_run_model(models, info.run_id)
    served = ServedModel(info.name, info.version, info.run_id, model, Explainer(model), datetime.now(UTC))
    check_canary(served, canary)
    return served


def check_canary(served: ServedModel, canary: pd.DataFrame) -> None:
    """The version scores every canary row with a probability in [0, 1], a threshold in (0, 1), and explains
    each row so that the base value plus the contributions is the margin of that probability."""
    scores = np.asarray(served.scores(canary), dtype="float64")
    where = f"{served.name} v{served.version}"
    if scores.shape != (len(canary),):
        raise CanaryError(f"{where}: {scores.shape} scores for {len(canary)} canary rows")
    if not np.all(np.isfinite(scores)) or scores.min() < 0 or scores.max() > 1:
        raise CanaryError(f"{where}: canary scores outside [0, 1]: {scores.min()}..{scores.max()}")
    if not 0 < served.threshold < 1:
        raise CanaryError(f"{where}: threshold {served.threshold} outside (0, 1)")
    for score, explained in zip(scores, served.explain(canary), strict=True):
        total = explained.base_value + sum(c for _, c in explained.contributions)
        logit = np.log(score / (1 - score)) if 0 < score < 1 else explained.margin
        if abs(total - explained.margin) > MARGIN_TOLERANCE or abs(logit - explained.margin) > 10 * MARGIN_TOLERANCE:
            raise CanaryError(f"{where}: explanation sums to {total:.5f}, the score's margin is {logit:.5f}")
