"""The daily decision and the measured-failure rule."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnguard.config import load_monitoring_config
from churnguard.decision import decide
from churnguard.failure.config import load_failure_config
from churnguard.performance import day_metrics, delong_auc, is_measured_failure
from churnguard.results import DriftSummary, FailureRisk, PerformanceSummary, Verdict

HEALTHY, ALERT, RETRAIN = Verdict
CFG = load_monitoring_config()
FAILURE = load_failure_config()
CONFIDENCE = FAILURE.failure.confidence
DAY = "2026-09-03"


def drift(severity: str = "stable", share: float = 0.0, top: tuple[str, ...] = ()) -> DriftSummary:
    return DriftSummary(DAY, severity, share, share, len(top), None, list(top), None, 1, "drift.json", "drift.html")


def failed(*days: str) -> PerformanceSummary:
    return PerformanceSummary(DAY, measured_failure_days=list(days), measured_failure=bool(days))


def risk(value: float) -> FailureRisk:
    return FailureRisk(available=True, risk=value)


CALM, NO_FAILURE, NO_RISK = drift(), failed(), FailureRisk(available=False, reason="no failure model")


def test_calm_day_is_healthy_even_without_a_failure_model():
    decision = decide(CALM, NO_FAILURE, NO_RISK, CFG)
    assert decision.decision == HEALTHY
    assert decision.line() == "decision=healthy: no drift, risk or failure signal"


def test_moderate_drift_alerts_and_critical_drift_retrains():
    moderate = drift("moderate", 0.1, ("tenure",))
    assert decide(moderate, NO_FAILURE, NO_RISK, CFG).decision == ALERT
    critical = drift("critical", 0.6, ("monthly_charges", "tenure"))
    decision = decide(critical, NO_FAILURE, NO_RISK, CFG)
    assert decision.decision == RETRAIN
    assert "critical drift (share drifted 0.60, top monthly_charges, tenure)" in decision.reasons[0]


@pytest.mark.parametrize("value, expected", [(0.3, HEALTHY), (0.6, ALERT), (0.9, RETRAIN)])
def test_failure_risk_levels(value, expected):
    assert decide(CALM, NO_FAILURE, risk(value), CFG).decision == expected


def test_measured_failure_and_force_retrain_retrain():
    failing = failed("2026-09-03")
    assert decide(CALM, failing, NO_RISK, CFG).reasons == ["measured failure on 2026-09-03"]
    assert decide(CALM, NO_FAILURE, NO_RISK, CFG, force_retrain=True).decision == RETRAIN


def test_a_challenger_in_shadow_holds_retraining_unless_forced():
    failing = failed("2026-09-03")
    held = decide(CALM, failing, NO_RISK, CFG, challenger_version=3, challenger_post_change=True)
    assert held.decision == ALERT and "challenger v3 already in shadow" in held.line()
    assert decide(CALM, failing, NO_RISK, CFG, challenger_version=3, force_retrain=True).decision == RETRAIN
    critical = drift("critical", 0.6, ("tenure",))
    assert decide(critical, NO_FAILURE, NO_RISK, CFG, challenger_version=3).decision == ALERT


def test_a_measured_failure_replaces_a_challenger_not_validated_after_the_change():
    # v2 was trained before the change showed: as wrong about the new concept as the failing champion
    failing = failed("2026-09-26")
    assert decide(CALM, failing, NO_RISK, CFG, challenger_version=2).decision == RETRAIN


def test_delong_auc_equals_sklearn_and_its_error_matches_the_bootstrap():
    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.26).astype(int)
    scores = y * 0.9 + rng.normal(0, 0.8, 600)
    auc = roc_auc_score(y, scores)
    boot = []
    for _ in range(400):
        idx = rng.integers(0, 600, 600)
        boot.append(roc_auc_score(y[idx], scores[idx]))
    delong, se = delong_auc(y, scores)
    assert delong == pytest.approx(auc, abs=1e-12)
    assert se == pytest.approx(np.std(boot), rel=0.15)


def test_measured_failure_needs_enough_labels_and_a_confident_drop():
    rng = np.random.default_rng(1)
    y = (rng.random(1000) < 0.26).astype(int)
    good = y * 1.5 + rng.normal(0, 1, 1000)
    bad = y * 0.3 + rng.normal(0, 1, 1000)
    ref_auc, ref_f1 = 0.85, 0.62
    assert not is_measured_failure(day_metrics(y, good, 0.5, CONFIDENCE), ref_auc, ref_f1, CFG, FAILURE)
    assert is_measured_failure(day_metrics(y, bad, 0.5, CONFIDENCE), ref_auc, ref_f1, CFG, FAILURE)
    few = day_metrics(y[:100], bad[:100], 0.5, CONFIDENCE)
    assert few["labelled_rows"] == 100 and not is_measured_failure(few, ref_auc, ref_f1, CFG, FAILURE)


def test_single_class_day_has_no_auc_but_no_nan():
    metrics = day_metrics(np.zeros(50, dtype=int), np.linspace(0, 1, 50), 0.5, CONFIDENCE)
    assert metrics["roc_auc"] is None and metrics["churn_rate"] == 0.0


def test_after_a_recent_registration_drift_and_risk_alone_only_alert():
    critical = drift("critical", 0.6, ("tenure",))
    high_risk = risk(0.95)
    cooling = decide(critical, NO_FAILURE, high_risk, CFG, days_since_registered=2)
    assert cooling.decision == ALERT and "registered 2 day(s) ago" in cooling.reasons[0]
    assert decide(critical, NO_FAILURE, high_risk, CFG, days_since_registered=7).decision == RETRAIN
    failing = failed("2026-09-03")
    assert decide(critical, failing, NO_RISK, CFG, days_since_registered=1).decision == RETRAIN


def test_a_due_refresh_retrains_unless_a_challenger_is_in_shadow():
    due = "champion learnt the change of 2026-09-26 from 3 labelled day(s); 6 are labelled now"
    decision = decide(CALM, NO_FAILURE, NO_RISK, CFG, refresh=due, days_since_registered=3)  # no cooldown
    assert decision.decision == RETRAIN and decision.reasons == [f"refresh: {due}"]
    held = decide(CALM, NO_FAILURE, NO_RISK, CFG, challenger_version=4, challenger_post_change=True, refresh=due)
    assert held.decision == ALERT and "challenger v4 already in shadow" in held.line()
