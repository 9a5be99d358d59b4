"""The failure model: a logistic regression and a gradient-boosted alternative on the day features,
both monotone (the risk never falls as a feature that grows with trouble grows, see
:func:`~churnguard.failure.features.monotone_directions`), chosen by grouped (by trajectory)
cross-validated AUROC on the training trajectories, calibrated with Platt scaling on the out-of-fold
scores, with an alarm threshold set on those calibrated scores to at most ``max_false_alarms_per_90d``
false alarms per 90 days without a coming failure.

Monotone, because without it the logistic model leaned on opposite-signed weights of correlated drift
statistics that cancel on Telco's trajectories and not on another dataset's, whose drift statistics sit
at other levels (unconstrained, it ranked mlc_churn's days worse than chance).

Early warning: the days on which an alert counts as detecting a coming failure (from ``horizon`` days
before a trajectory's first failure to the day before its labels show it) weigh ``early_warning_weight``
in every fit (:func:`early_warning_weights`); the calibration and the threshold use unweighted days.

The cross-validation is repeated (``cv_repeats`` fold assignments) because false alarms cluster in a few
trajectories (harmless drift, a degraded model just short of a confirmed failure): one split's threshold
swings with where those trajectories fall. :func:`fit_failure_model` drops the evaluation trajectories
before anything else, so no choice (model kind, calibration, threshold) can read them; the threshold's
numbers on the out-of-fold scores (:func:`~churnguard.failure.evaluation.validation_metrics`) are returned
with the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from churnguard.failure.config import FailureConfig
from churnguard.failure.evaluation import CONCEPT_ONLY, false_alarms_per_90, first_failure_day, validation_metrics
from churnguard.failure.features import monotone_directions

log = logging.getLogger(__name__)
KINDS = ("logistic", "xgboost")


class MonotoneLogistic(ClassifierMixin, BaseEstimator):
    """L2-penalised logistic regression (scikit-learn's objective with ``C``) whose coefficients are at
    least 0 where ``monotone`` is 1 and free where it is 0.

    >>> MonotoneLogistic(C=1.0, monotone=(1,)).fit([[0.0], [1.0], [2.0], [3.0]], [1, 0, 1, 0]).coef_
    array([[0.]])
    """

    def __init__(self, C: float = 1.0, monotone: tuple[int, ...] = ()):
        self.C = C
        self.monotone = monotone

    def fit(self, X, y, sample_weight=None) -> MonotoneLogistic:
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
        if len(self.monotone) != X.shape[1]:
            raise ValueError(f"monotone has {len(self.monotone)} entries, X has {X.shape[1]} columns")
        sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=float)

        def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
            z = X @ w[:-1] + w[-1]
            err = sw * (1 / (1 + np.exp(-z)) - y)
            grad = self.C * np.append(X.T @ err, err.sum())
            grad[:-1] += w[:-1]
            return (self.C * float(np.sum(sw * (np.logaddexp(0, z) - y * z))) + 0.5 * float(w[:-1] @ w[:-1]), grad)

        bounds = [(0.0, None) if m else (None, None) for m in self.monotone] + [(None, None)]
        w = minimize(
            loss, np.zeros(X.shape[1] + 1), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 5000}
        ).x
        self.coef_, self.intercept_ = w[:-1].reshape(1, -1), w[-1:]
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X) -> np.ndarray:
        p = 1 / (1 + np.exp(-(np.asarray(X, dtype=float) @ self.coef_[0] + self.intercept_[0])))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def _estimator(kind: str, monotone: list[int], seed: int = 0):
    """A candidate whose risk may only rise with the features marked 1 in ``monotone`` (a positive
    scaling keeps the logistic model's directions)."""
    if kind == "logistic":
        return Pipeline([("scale", StandardScaler()), ("model", MonotoneLogistic(C=0.3, monotone=tuple(monotone)))])
    from xgboost import XGBClassifier

    return XGBClassifier(
        n_estimators=300,
        learning_rate=0.05,
        max_depth=3,
        min_child_weight=5,
        subsample=0.8,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        n_jobs=1,
        random_state=seed,
        tree_method="hist",
        eval_metric="logloss",
        monotone_constraints=tuple(monotone),
    )


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


@dataclass
class FailureModel:
    """A fitted failure model: ``predict_risk`` gives calibrated P(failure within the horizon)."""

    kind: str
    estimator: Any
    features: list[str]
    platt: tuple[float, float]
    threshold: float
    meta: dict = field(default_factory=dict)

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        # a model trained on features that are no longer built (renamed, dropped) must not score zeros
        missing = [name for name in self.features if name not in X.columns]
        if missing:
            raise ValueError(
                f"the model needs feature(s) {', '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''} that are not built any more: retrain it"
            )
        return X[self.features].astype(float).fillna(0.0).to_numpy()

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.estimator.predict_proba(self._matrix(X))[:, 1]
        a, b = self.platt
        return 1 / (1 + np.exp(-(a * _logit(raw) + b)))

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per-feature push on the log-odds: coefficient x standardised value (logistic) or the trees'
        SHAP contributions (xgboost)."""
        m = self._matrix(X)
        if self.kind == "logistic":
            scale, lr = self.estimator.named_steps["scale"], self.estimator.named_steps["model"]
            return scale.transform(m) * lr.coef_[0]
        import xgboost as xgb

        return self.estimator.get_booster().predict(xgb.DMatrix(m), pred_contribs=True)[:, :-1]

    def drivers(self, X: pd.DataFrame, k: int = 3) -> list[dict]:
        """The ``k`` features that pushed the first row's risk up the most."""
        contrib = self.contributions(X.iloc[:1])[0]
        order = np.argsort(-contrib)[:k]
        row = X.iloc[0]
        return [
            {
                "feature": self.features[i],
                "contribution": round(float(contrib[i]), 4),
                "value": round(float(row.get(self.features[i], 0.0)), 4),
            }
            for i in order
        ]


def calibrated_threshold(y: np.ndarray, risks: list[np.ndarray], max_fa_per_90: float) -> float:
    """The lowest risk threshold whose false alarms per 90 negative days, averaged over the out-of-fold
    ``risks`` of the repeats, are at most ``max_fa_per_90``."""
    for t in np.round(np.arange(0.05, 1.0, 0.01), 2):
        if np.mean([false_alarms_per_90(y, risk >= t) for risk in risks]) <= max_fa_per_90:
            return float(t)
    return 0.99


def _fit(kind: str, monotone: list[int], seed: int, X: np.ndarray, y: np.ndarray, weights: np.ndarray | None):
    estimator = _estimator(kind, monotone, seed)
    if weights is None:
        return estimator.fit(X, y)
    key = "model__sample_weight" if kind == "logistic" else "sample_weight"
    return estimator.fit(X, y, **{key: weights})


def early_warning_weights(train: pd.DataFrame, weight: float, delay: int, horizon: int) -> np.ndarray | None:
    """Per row of ``train``: ``weight`` on the days where an alert counts as an early warning (from
    ``horizon`` days before a trajectory's first failure to the day before its labels show it), else 1;
    None when ``weight`` is 1 (plain fit)."""
    if weight == 1.0:
        return None
    first_day = first_failure_day(train)
    run_up = (train["day"] >= first_day - horizon) & (train["day"] < first_day + delay)
    return np.where(run_up.fillna(False).to_numpy(), weight, 1.0)


def _out_of_fold(
    X: np.ndarray,
    y: np.ndarray,
    kind: str,
    monotone: list[int],
    folds: list,
    seed: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Scores of every row by the candidate fitted on the other folds."""
    pred = np.zeros(len(y))
    for fit_idx, test_idx in folds:
        if len(np.unique(y[fit_idx])) < 2:  # tiny runs: a fold without failures predicts the base rate
            pred[test_idx] = y[fit_idx].mean()
            continue
        candidate = _fit(kind, monotone, seed, X[fit_idx], y[fit_idx], None if weights is None else weights[fit_idx])
        pred[test_idx] = candidate.predict_proba(X[test_idx])[:, 1]
    return pred


REQUIRED = ("split", "trajectory", "label", "day", "failed_today", "family")


def fit_failure_model(
    table: pd.DataFrame, features: list[str], cfg: FailureConfig, seed: int = 0
) -> tuple[FailureModel, dict]:
    """Fit both candidates on the training trajectories of ``table`` (``split == "train"``; the evaluation
    rows are dropped first) and keep the better one.

    Model choice, Platt calibration and the alarm threshold all come from out-of-fold scores of
    ``cv_repeats`` different grouped ``cv_folds``-fold splits of the training trajectories: the threshold is
    the lowest whose false-alarm rate, averaged over the repeats, stays within the budget. The report's
    ``validation`` holds that alarm's numbers on those out-of-fold scores.
    """
    missing = [c for c in (*REQUIRED, *features) if c not in table.columns]
    if missing:
        raise ValueError(f"the failure dataset lacks column(s) {', '.join(missing)}")
    train = table[table["split"] == "train"]
    tc, fd = cfg.training, cfg.failure
    X = train[features].astype(float).fillna(0.0).to_numpy()
    y = train["label"].astype(int).to_numpy()
    groups = train["trajectory"].to_numpy()
    if len(np.unique(y)) < 2:
        raise ValueError(
            f"training days have a single label ({y[0] if len(y) else 'no rows'}): simulate more trajectories"
        )
    splits = [
        list(StratifiedGroupKFold(n_splits=tc.cv_folds, shuffle=True, random_state=seed + r).split(X, y, groups))
        for r in range(tc.cv_repeats)
    ]
    monotone = monotone_directions(features)
    weights = early_warning_weights(train, tc.early_warning_weight, fd.label_delay_days, fd.horizon_days)
    oof = {kind: [_out_of_fold(X, y, kind, monotone, folds, seed, weights) for folds in splits] for kind in KINDS}
    cv_auc = {kind: float(np.mean([roc_auc_score(y, p) for p in oof[kind]])) for kind in KINDS}
    kind = max(KINDS, key=lambda k: cv_auc[k])
    stacked = np.concatenate(oof[kind])
    platt_lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(stacked).reshape(-1, 1), np.tile(y, tc.cv_repeats))
    platt = (float(platt_lr.coef_[0, 0]), float(platt_lr.intercept_[0]))
    risks = [1 / (1 + np.exp(-(platt[0] * _logit(p) + platt[1]))) for p in oof[kind]]
    threshold = calibrated_threshold(y, risks, tc.max_false_alarms_per_90d)
    validation = validation_metrics(train, risks, threshold, fd.label_delay_days, fd.horizon_days)
    # the same alarm on the visible failures, every family weighing the same (the headline's definition)
    visible = (
        (train["failure_kind"] != CONCEPT_ONLY).to_numpy()
        if "failure_kind" in train
        else np.ones(len(train), dtype=bool)
    )
    validation_visible = validation_metrics(
        train[visible], [r[visible] for r in risks], threshold, fd.label_delay_days, fd.horizon_days, weighted=True
    )
    model = FailureModel(
        kind, _fit(kind, monotone, seed, X, y, weights), list(features), platt, threshold, meta={"cv_auroc": cv_auc}
    )
    log.info(
        "failure model: %s (grouped-CV AUROC %s), threshold %.2f (out-of-fold: %.2f false alarms / 90 "
        "days, %s of failing trajectories detected)",
        kind,
        ", ".join(f"{k}={v:.4f}" for k, v in cv_auc.items()),
        threshold,
        validation["false_alarms_per_90d"],
        validation["detected"],
    )
    return model, {
        "chosen": kind,
        "cv_auroc": cv_auc,
        "threshold": threshold,
        "platt": list(platt),
        "validation": validation,
        "validation_visible": validation_visible,
        "cv_folds": tc.cv_folds,
        "cv_repeats": tc.cv_repeats,
        "train_rows": len(y),
        "train_positive_rate": float(y.mean()),
        "train_trajectories": int(len(np.unique(groups))),
    }
