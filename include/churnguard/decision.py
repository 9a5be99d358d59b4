"""The daily decision: ``healthy``, ``alert`` or ``retrain``, with the reasons that led to it.

- ``retrain``: critical drift, failure risk above ``decision.risk_retrain``, a measured failure, a champion
  validated after a change that is due a refresh (:func:`churnguard.retrain.refresh_due`), or the manual
  ``force_retrain``; unless a challenger is already in its shadow period (then ``alert``: a second
  challenger would only replace the first before it could prove itself), which ``force_retrain`` overrides,
  and so does a measured failure when that challenger was not validated on post-change days (it was trained
  before the change showed, and the failing champion must be replaced by one that learnt it).
  Within ``decision.retrain_cooldown_days`` of the last registered version, drift and risk alone only
  alert: the new model was trained on the drifted days, so the same drift says nothing new about it.
- ``alert``: moderate drift or failure risk above ``decision.risk_warn``.
- ``healthy``: none of these.
"""

from __future__ import annotations

from churnguard.config import MonitoringConfig
from churnguard.results import Decision, DriftSummary, FailureRisk, PerformanceSummary, Verdict

MEASURED_FAILURE = "measured failure on"  # how the reason given for a measured failure begins
REFRESH = "refresh"  # how the reason given for a due refresh begins


def decide(
    drift: DriftSummary | None,
    performance: PerformanceSummary,
    risk: FailureRisk,
    cfg: MonitoringConfig,
    challenger_version: int | None = None,
    force_retrain: bool = False,
    days_since_registered: int | None = None,
    challenger_post_change: bool = False,
    refresh: str | None = None,
) -> Decision:
    retrain, alert = [], []
    cooling = days_since_registered is not None and days_since_registered < cfg.decision.retrain_cooldown_days
    if force_retrain:
        retrain.append("manual force_retrain")
    severity = drift.severity if drift else None
    if severity == "critical" and cooling:
        alert.append(
            f"critical drift ({_drift_detail(drift)}), but a version was registered "
            f"{days_since_registered} day(s) ago: not retraining on drift alone"
        )
    elif severity == "critical":
        retrain.append(f"critical drift ({_drift_detail(drift)})")
    elif severity == "moderate":
        alert.append(f"moderate drift ({_drift_detail(drift)})")
    if performance.measured_failure:
        retrain.append(f"{MEASURED_FAILURE} " + ", ".join(performance.measured_failure_days))
    if refresh:
        retrain.append(f"{REFRESH}: {refresh}")
    if risk.available:
        value = risk.risk
        if value >= cfg.decision.risk_retrain and not cooling:
            retrain.append(f"failure risk {value:.2f} >= {cfg.decision.risk_retrain}")
        elif value >= cfg.decision.risk_warn:
            alert.append(f"failure risk {value:.2f} >= {cfg.decision.risk_warn}")
    replace_stale = performance.measured_failure and not challenger_post_change
    if retrain and challenger_version is not None and not force_retrain and not replace_stale:
        return Decision(
            Verdict.ALERT, [*retrain, f"challenger v{challenger_version} already in shadow: not retraining", *alert]
        )
    if retrain:
        return Decision(Verdict.RETRAIN, retrain + alert)
    return Decision(Verdict.ALERT, alert) if alert else Decision(Verdict.HEALTHY, [])


def _drift_detail(drift: DriftSummary) -> str:
    top, share = drift.top_features, drift.drift_share
    parts = [f"share drifted {share:.2f}" if share is not None else None, "top " + ", ".join(top[:3]) if top else None]
    return ", ".join(p for p in parts if p)
