"""Failure risk: P(the champion fails within the next ``horizon_days``) from what is known today.

Labels arrive ``label_delay_days`` late, so measured performance always lags. Every day the monitoring
DAG turns what it knows into one dict of signals, keeps those dicts, and scores the history:

.. code-block:: python

    from churnguard.failure import day_signals, score_failure_risk

    signals = day_signals(
        drift_report: dict,                 # DriftReport.to_dict() of the day, computed with scores
        champion_scores: np.ndarray,        # the champion's scores on the day's customers
        matured_performance: list[dict],    # per-day metrics of days whose labels have arrived
                                            # (rows of the performance store: observed_ds,
                                            #  labelled_rows, roc_auc, f1, churn_rate, brier)
        *, reference: dict,                 # champion_reference(...) of the champion (JSON)
        ds: str | None = None, matured_window: int = 14, min_labels: int = 200,
    ) -> dict                               # {"ds": ..., signal name: float | None}

    score_failure_risk(signal_history: list[dict], model: (FailureModel, version)) -> FailureRisk
        # churnguard.results.FailureRisk: risk (float | None), top_drivers ([{"feature", "contribution",
        #  "value"}], 3), available, reason, model_version, alarm, threshold
        # never raises: without signals, available=False and reason says why; with the registered
        # failure-model@champion: churnguard.failure_training.failure_risk_today(signal_history, load_champion)

``champion_reference(scores, labels, threshold) -> dict`` builds ``reference`` from the champion's
scores on the labelled test split; the training run logs the one it used as ``champion_reference.json``.

A *failure* (``configs/failure.yaml``): the champion's ROC AUC confidently more than ``tolerance``
below its reference AUC, or its F1 confidently more than ``f1_relative_drop`` below (see
:mod:`churnguard.failure.labels`). The model is trained on simulated trajectories
(:mod:`~churnguard.failure.trajectories`) by the steps of :mod:`~churnguard.failure_training`, which
the ``churn_failure_model_training`` DAG runs.
"""

from churnguard.failure.config import FailureConfig, load_failure_config
from churnguard.failure.features import failure_features, feature_frame
from churnguard.failure.labels import day_failure, failure_labels, label_day_metrics
from churnguard.failure.scoring import score_failure_risk
from churnguard.failure.signals import champion_reference, day_signals

__all__ = [
    "FailureConfig",
    "champion_reference",
    "day_failure",
    "day_signals",
    "failure_features",
    "failure_labels",
    "feature_frame",
    "label_day_metrics",
    "load_failure_config",
    "score_failure_risk",
]
