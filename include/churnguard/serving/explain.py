"""Per-customer explanations from xgboost's own TreeSHAP, in the dataset's columns.

``Booster.predict(DMatrix, pred_contribs=True)`` on the pipeline's encoded input gives one contribution per
encoded column plus a bias; the one-hot children of a categorical column are summed back into it, so the
caller reads ``contract: +0.8`` rather than ``categorical__contract_Month-to-month``. The trees are those the
classifier predicts with (up to its best iteration), so ``base_value + sum(contributions)`` is the margin
(the logit) of the score the service answers with: the canary check holds every loaded version to that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from churnguard.models import TrainedModel


@dataclass(frozen=True)
class Explanation:
    """One row's explanation: contributions by dataset column, largest magnitude first, in margin units."""

    base_value: float
    margin: float
    contributions: list[tuple[str, float]]


class Explainer:
    """TreeSHAP of one :class:`~churnguard.models.TrainedModel`, prepared once when the version is loaded."""

    def __init__(self, model: TrainedModel) -> None:
        import xgboost

        self._xgb = xgboost
        steps = model.pipeline.steps
        self.prepare = Pipeline(steps[:-1])
        classifier = steps[-1][1]
        self.booster = classifier.get_booster()
        # the trees predict_proba uses: up to the early-stopping optimum when there is one
        best = getattr(classifier, "best_iteration", None)
        self.iterations = (0, int(best) + 1) if best is not None else (0, 0)
        self.features = list(model.features)
        names = model.pipeline.named_steps["encode"].get_feature_names_out()
        self.owners = owner_matrix(list(names), self.features)

    def explain(self, frame: pd.DataFrame) -> list[Explanation]:
        matrix = self._xgb.DMatrix(self.prepare.transform(frame[self.features]))
        contribs = self.booster.predict(matrix, pred_contribs=True, iteration_range=self.iterations)
        margins = self.booster.predict(matrix, output_margin=True, iteration_range=self.iterations)
        by_column = contribs[:, :-1].astype("float64") @ self.owners
        out = []
        for row, bias, margin in zip(by_column, contribs[:, -1], margins, strict=True):
            order = np.argsort(-np.abs(row), kind="stable")
            pairs = [(self.features[i], float(row[i])) for i in order]
            out.append(Explanation(float(bias), float(margin), pairs))
        return out


def owner_matrix(encoded: list[str], features: list[str]) -> np.ndarray:
    """``(len(encoded), len(features))`` 0/1: which dataset column each encoded column came from
    (``numeric__tenure`` -> ``tenure``, ``categorical__contract_One year`` -> ``contract``; the longest
    matching name wins, so ``streaming_tv`` never takes ``streaming_tv_x``'s children)."""
    index = {name: i for i, name in enumerate(features)}
    out = np.zeros((len(encoded), len(features)))
    for row, name in enumerate(encoded):
        column = name.split("__", 1)[1]
        owner = column if column in index else max((f for f in features if column.startswith(f + "_")), key=len)
        out[row, index[owner]] = 1.0
    return out
