"""The churn model: one scikit-learn Pipeline (cleaning -> one-hot -> XGBClassifier), trained with early
stopping on a validation split, its decision threshold chosen on that split, evaluated on a test split.

``cfg`` (the dataset config) and ``model_cfg`` (the model config) are the caller's:

>>> split = split_reference(load_reference(cfg), cfg)
>>> trained = train_model(split.train, split.validation, cfg, model_cfg)
>>> evaluate(trained, split.test, cfg)["roc_auc"] > 0.8
True
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from churnguard.config import DatasetConfig, ModelConfig
from churnguard.data import target_array

log = logging.getLogger(__name__)
SAMPLE_WEIGHT = "__sample_weight"


class NumericCleaner(TransformerMixin, BaseEstimator):
    """Median imputation and IQR clipping of numeric columns, learned on the training data.

    Non-numeric columns pass through untouched; ±inf counts as missing.
    """

    def __init__(self, columns: list[str] | None = None, iqr_factor: float = 1.5):
        self.columns = columns
        self.iqr_factor = iqr_factor

    def fit(self, X: pd.DataFrame, y=None) -> NumericCleaner:
        cols = list(self.columns or [])
        values = X[cols].apply(pd.to_numeric, errors="coerce").replace([np.inf, -np.inf], np.nan)
        q1, q3 = values.quantile(0.25), values.quantile(0.75)
        iqr = q3 - q1
        self.medians_ = values.median().to_dict()
        self.lower_ = (q1 - self.iqr_factor * iqr).to_dict()
        self.upper_ = (q3 + self.iqr_factor * iqr).to_dict()
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        out = X.copy()
        for col, median in self.medians_.items():
            values = pd.to_numeric(out[col], errors="coerce").replace([np.inf, -np.inf], np.nan)
            out[col] = values.fillna(median).clip(self.lower_[col], self.upper_[col]).astype("float64")
        return out


def dedupe_customers(df: pd.DataFrame, cfg: DatasetConfig) -> pd.DataFrame:
    """Keep the last row per customer id (a row-level step, so it runs before the Pipeline)."""
    return df.drop_duplicates(subset=cfg.id.column, keep="last").reset_index(drop=True)


def build_pipeline(cfg: DatasetConfig, model_cfg: ModelConfig, random_state: int = 0) -> Pipeline:
    from xgboost import XGBClassifier

    x = model_cfg.xgboost
    encode = ColumnTransformer(
        [
            ("numeric", "passthrough", cfg.numeric),
            ("binary", "passthrough", cfg.binary),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cfg.categorical),
        ],
        verbose_feature_names_out=True,
    )
    booster = XGBClassifier(
        n_estimators=x.n_estimators,
        learning_rate=x.learning_rate,
        max_depth=x.max_depth,
        min_child_weight=x.min_child_weight,
        subsample=x.subsample,
        colsample_bytree=x.colsample_bytree,
        reg_lambda=x.reg_lambda,
        early_stopping_rounds=x.early_stopping_rounds,
        n_jobs=x.n_jobs,
        eval_metric="logloss",
        random_state=random_state,
        tree_method="hist",
    )
    return Pipeline(
        [
            ("clean", NumericCleaner(cfg.numeric, model_cfg.cleaning.iqr_factor)),
            ("encode", encode),
            ("model", booster),
        ]
    )


@dataclass
class TrainedModel:
    """A fitted pipeline with its decision threshold and what it was trained on."""

    pipeline: Pipeline
    threshold: float
    features: list[str]
    best_iteration: int
    params: dict = field(default_factory=dict)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return self.pipeline.predict_proba(df[self.features])[:, 1]

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(df) >= self.threshold).astype("int64")

    def feature_importance(self) -> dict[str, float]:
        """Gain importance summed over each input column's one-hot children, normalised to 1."""
        return self.per_input_column(self.pipeline.named_steps["model"].feature_importances_)

    def per_input_column(self, values) -> dict[str, float]:
        """Sum per-encoded-column ``values`` over each input column's one-hot children; normalise to 1."""
        names = self.pipeline.named_steps["encode"].get_feature_names_out()
        totals: dict[str, float] = dict.fromkeys(self.features, 0.0)
        for name, value in zip(names, values, strict=True):
            column = name.split("__", 1)[1]
            owner = (
                column if column in totals else max((f for f in self.features if column.startswith(f + "_")), key=len)
            )
            totals[owner] += float(value)
        total = sum(totals.values()) or 1.0
        return {k: v / total for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def best_f1_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def train_model(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    cfg: DatasetConfig,
    model_cfg: ModelConfig,
    random_state: int = 0,
    sample_weight: np.ndarray | None = None,
    init_model: TrainedModel | None = None,
) -> TrainedModel:
    """Fit cleaning and encoding on ``train``; early-stop and choose the threshold on ``validation``.
    ``sample_weight``: one weight per row of ``train`` for the booster (cleaning and encoding are unweighted).
    ``init_model``: continue boosting it instead: its cleaning, encoding and trees up to its best iteration are
    kept, and new trees are fitted to ``train`` on top (a few hundred rows can then correct what changed
    instead of learning everything again)."""
    weighted = sample_weight is not None
    if weighted:  # carried as a column, so deduplication keeps each row's weight with it
        train = train.assign(**{SAMPLE_WEIGHT: np.asarray(sample_weight, dtype=float)})
    train, validation = dedupe_customers(train, cfg), dedupe_customers(validation, cfg)
    weights = train.pop(SAMPLE_WEIGHT).to_numpy() if weighted else None
    y_train, y_val = target_array(train, cfg), target_array(validation, cfg)
    for name, y in (("train", y_train), ("validation", y_val)):
        if len(np.unique(y)) < 2:
            raise ValueError(f"{name} data has a single class; cannot train a churn model")
    if init_model is None:
        pipe, base = build_pipeline(cfg, model_cfg, random_state), None
        prep = Pipeline(pipe.steps[:-1]).fit(train[cfg.features], y_train)
    else:
        if list(init_model.features) != list(cfg.features):
            raise ValueError(
                f"cannot continue a model of features {init_model.features}: the dataset has {cfg.features}"
            )
        pipe = copy.deepcopy(init_model.pipeline)
        prep = Pipeline(pipe.steps[:-1])
        base = pipe.named_steps["model"].get_booster()[: init_model.best_iteration + 1]
        pipe.named_steps["model"].set_params(random_state=random_state)
    booster = pipe.named_steps["model"]
    booster.fit(
        prep.transform(train[cfg.features]),
        y_train,
        sample_weight=weights,
        xgb_model=base,
        eval_set=[(prep.transform(validation[cfg.features]), y_val)],
        verbose=False,
    )
    trained = TrainedModel(
        pipe,
        0.5,
        list(cfg.features),
        int(booster.best_iteration),
        params={**model_cfg.xgboost.model_dump(), "random_state": random_state},
    )
    trained.threshold = best_f1_threshold(y_val, trained.predict_proba(validation))
    log.info("trained: best iteration %d, threshold %.3f", trained.best_iteration, trained.threshold)
    return trained


def evaluate(model: TrainedModel, df: pd.DataFrame, cfg: DatasetConfig) -> dict:
    """Classification metrics of ``model`` on labelled ``df`` at the model's threshold."""
    y = target_array(df, cfg)
    scores = model.predict_proba(df)
    pred = (scores >= model.threshold).astype("int64")
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    both = len(np.unique(y)) == 2
    return {
        "rows": len(df),
        "accuracy": float(accuracy_score(y, pred)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y, scores)) if both else None,
        "pr_auc": float(average_precision_score(y, scores)) if both else None,
        "brier": float(brier_score_loss(y, scores)),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
