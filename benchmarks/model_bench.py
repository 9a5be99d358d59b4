"""Quality of the baseline churn model on the Telco test split (target: ROC AUC >= 0.84).

Prints the test metrics and, as a baseline measured in the same run, a logistic regression on the same
one-hot features, with the ratio of the two AUCs. Not a test: a number to read.
"""

from __future__ import annotations

import time

from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from churnguard.config import load_dataset_config, load_model_config
from churnguard.data import load_reference, split_reference, target_array
from churnguard.models import NumericCleaner, evaluate, train_model


def main() -> None:
    cfg = load_dataset_config()
    split = split_reference(load_reference(cfg), cfg)
    start = time.perf_counter()
    model = train_model(split.train, split.validation, cfg, load_model_config())
    fit_s = time.perf_counter() - start
    metrics = evaluate(model, split.test, cfg)
    baseline = make_pipeline(
        NumericCleaner(cfg.numeric),
        ColumnTransformer(
            [
                ("num", StandardScaler(), [*cfg.numeric, *cfg.binary]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), cfg.categorical),
            ]
        ),
        LogisticRegression(max_iter=2000),
    ).fit(split.train[cfg.features], target_array(split.train, cfg))
    base_auc = roc_auc_score(target_array(split.test, cfg), baseline.predict_proba(split.test[cfg.features])[:, 1])
    for key, value in metrics.items():
        print(f"{key:>18}: {value}")
    print(f"{'fit seconds':>18}: {fit_s:.2f} (best iteration {model.best_iteration})")
    print(
        f"model-bench roc_auc={metrics['roc_auc']:.4f} logreg_roc_auc={base_auc:.4f} "
        f"ratio={metrics['roc_auc'] / base_auc:.3f} target=0.84 met={metrics['roc_auc'] >= 0.84}"
    )


if __name__ == "__main__":
    main()
