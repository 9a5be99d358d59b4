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

from dataclasses import asdict, dataclass, field

from churnguard.config import MonitoringConfig

HEALTHY, ALERT, RETRAIN = "healthy", "alert", "retrain"
MEASURED_FAILURE = "measured failure on"  # how the reason given for a measured failure begins
REFRESH = "refresh"  # how the reason given for a due refresh begins


@dataclass
class Decision:
    decision: str
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """The one log line that states the decision and its reasons."""
        return f"decision={self.decision}: " + ("; ".join(self.reasons) or "no drift, risk or failure signal")


def decide(
    drift: dict | None,
    performance: dict,
    risk: dict,
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
    severity = (drift or {}).get("severity")
    if severity == "critical" and cooling:
        alert.append(
            f"critical drift ({_drift_detail(drift)}), but a version was registered "
            f"{days_since_registered} day(s) ago: not retraining on drift alone"
        )
    elif severity == "critical":
        retrain.append(f"critical drift ({_drift_detail(drift)})")
    elif severity == "moderate":
        alert.append(f"moderate drift ({_drift_detail(drift)})")
    if performance.get("measured_failure"):
        retrain.append(f"{MEASURED_FAILURE} " + ", ".join(performance["measured_failure_days"]))
    if refresh:
        retrain.append(f"{REFRESH}: {refresh}")
    if risk.get("available"):
        value = risk["risk"]
        if value >= cfg.decision.risk_retrain and not cooling:
            retrain.append(f"failure risk {value:.2f} >= {cfg.decision.risk_retrain}")
        elif value >= cfg.decision.risk_warn:
            alert.append(f"failure risk {value:.2f} >= {cfg.decision.risk_warn}")
    replace_stale = bool(performance.get("measured_failure")) and not challenger_post_change
    if retrain and challenger_version is not None and not force_retrain and not replace_stale:
        return Decision(
            ALERT, [*retrain, f"challenger v{challenger_version} already in shadow: not retraining", *alert]
        )
    if retrain:
        return Decision(RETRAIN, retrain + alert)
    return Decision(ALERT, alert) if alert else Decision(HEALTHY, [])


def _drift_detail(drift: dict) -> str:
    top = drift.get("top_features") or []
    share = drift.get("drift_share")
    parts = [f"share drifted {share:.2f}" if share is not None else None, "top " + ", ".join(top[:3]) if top else None]
    return ", ".join(p for p in parts if p)
