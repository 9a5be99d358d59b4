"""What is deployed, what has landed and what happened: champion/challenger versions with their test
metrics, the partitions in the data root, and the day-by-day timeline of the monitoring store. Backs
``churnguard status``, ``churnguard timeline`` and the end of ``make demo``."""

from __future__ import annotations

from datetime import date, timedelta

from churnguard import registry
from churnguard.config import load_model_config, load_monitoring_config
from churnguard.dataroot import DataRoot
from churnguard.decision import MEASURED_FAILURE
from churnguard.settings import get_settings
from churnguard.store import MonitoringStore, open_store, schema


def project_status() -> dict:
    """What is deployed and what happened last: the churn model's aliased versions with their test metrics,
    the failure-risk champion with its held-out evaluation (what its alarms are worth), the latest day's
    decision from the monitoring store, and the landed partitions."""
    from churnguard.failure.config import load_failure_config

    settings = get_settings()
    name = load_model_config().registered_name
    churn = registry.ModelRegistry(name, settings)
    models = {}
    for alias in (registry.CHAMPION, registry.CHALLENGER, registry.PREVIOUS):
        version = churn.version_by_alias(alias)
        if version is not None:
            metrics = churn.client.get_run(version.run_id).data.metrics
            models[alias] = {
                "version": version.version,
                "run_id": version.run_id,
                **{k.removeprefix("test_"): round(v, 4) for k, v in sorted(metrics.items())},
            }
    failure_name = load_failure_config().registered_name
    failure = registry.ModelRegistry(failure_name, settings, tag_type=registry.FailureVersionTags)
    failure_version = failure.version_by_alias(registry.CHAMPION)
    failure_model = None
    if failure_version is not None:
        metrics = failure.client.get_run(failure_version.run_id).data.metrics
        failure_model = {
            "name": failure_name,
            "version": failure_version.version,
            "run_id": failure_version.run_id,
            "kind": failure_version.tags.kind,
            "threshold": failure_version.tags.threshold,
            **{k.removeprefix("eval_"): round(v, 4) for k, v in sorted(metrics.items()) if k.startswith("eval_")},
        }
    runs = open_store().rows(schema.daily_runs, order_by="ds")
    last_decision = None
    if runs:
        last = runs[-1]
        last_decision = {
            "ds": last["ds"],
            "decision": last["decision"],
            "reasons": last["reasons"] or [],
            "drift_severity": last["drift_severity"],
            "failure_risk": last["failure_risk"],
        }
    areas = DataRoot.open().inventory()
    return {
        "model": name,
        "models": models,
        "failure_model": failure_model,
        "last_decision": last_decision,
        "data": areas,
        "mlflow_tracking_uri": settings.mlflow_tracking_uri,
    }


def format_status(status: dict) -> str:
    lines = [f"MLflow store: {status['mlflow_tracking_uri']}"]
    if not status["models"]:
        lines.append(f"{status['model']}: no champion registered yet (run churn_bootstrap)")
    for alias, info in status["models"].items():
        metrics = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("version", "run_id"))
        lines.append(f"{status['model']} @{alias}: v{info['version']} (run {info['run_id']}) {metrics}")
    failure = status["failure_model"]
    if failure is None:
        lines.append("failure model: no failure model registered (run churn_failure_model_training)")
    else:
        metrics = ", ".join(
            f"{k}={v}" for k, v in failure.items() if k not in ("name", "version", "run_id", "kind", "threshold")
        )
        lines.append(
            f"failure model: {failure['name']} @champion v{failure['version']} (run {failure['run_id']}) "
            f"{failure['kind'] or '?'}, alarm threshold {failure['threshold']}; held-out "
            f"{metrics or 'evaluation not logged'}"
        )
    last = status["last_decision"]
    if last is None:
        lines.append("last decision: none yet (no day monitored)")
    else:
        risk = "-" if last["failure_risk"] is None else f"{last['failure_risk']:.2f}"
        reasons = "; ".join(last["reasons"]) or "no reasons recorded"
        lines.append(
            f"last decision: {last['ds']} {last['decision']} (drift {last['drift_severity'] or '-'}, "
            f"failure risk {risk}): {reasons}"
        )
    for area, info in status["data"].items():
        span = f"{info['first']} .. {info['last']}" if info["partitions"] else "empty"
        lines.append(f"{area}: {info['partitions']} daily partitions, {span} at {info['uri']}")
    return "\n".join(lines)


def timeline(store: MonitoringStore | None = None) -> dict:
    """Every monitored day (decision, drift, failure risk, the champion's measured AUC on that day's
    customers once their labels arrived) and the milestones of the story: first drift, first risk alert,
    first measured failure, the early warning (the risk alert's lead over the labels' confirmation), the
    change points retraining used, challengers registered, promotions and rollbacks, and the AUC before and
    after. ``store``: default, the configured one."""
    store = store or open_store()
    perf = {(r["observed_ds"], r["role"]): r for r in store.rows(schema.performance)}
    events = store.rows(schema.model_events, order_by="id")
    days = []
    for run in store.rows(schema.daily_runs, order_by="ds"):
        measured = perf.get((run["ds"], registry.CHAMPION))
        days.append(
            {
                "ds": run["ds"],
                "rows": run["rows"],
                "validation": run["validation_status"],
                "drift": run["drift_severity"],
                "drift_share": run["drift_share"],
                "failure_risk": run["failure_risk"],
                "decision": run["decision"],
                "champion": run["champion_version"],
                "challenger": run["challenger_version"],
                "promoted": bool(run["promoted"]),
                "reasons": run["reasons"] or [],
                "auc": measured["roc_auc"] if measured else None,
                "auc_version": measured["model_version"] if measured else None,
            }
        )

    def first(pred) -> str | None:
        return next((d["ds"] for d in days if pred(d)), None)

    cfg = load_monitoring_config()
    risk_warn = cfg.decision.risk_warn
    promoted = [e for e in events if e["event"] == "promoted"]
    milestones = {
        "first_drift": first_sustained_drift(days, cfg.timeline.sustained_drift_days),
        "first_critical_drift": first(lambda d: d["drift"] == "critical"),
        "first_risk_alert": first(lambda d: (d["failure_risk"] or 0) >= risk_warn),
        "first_measured_failure_reported": first(lambda d: any(r.startswith(MEASURED_FAILURE) for r in d["reasons"])),
        "registered": [
            {"ds": e["ds"], "version": e["model_version"], "reason": e["reason"]}
            for e in events
            if e["event"] == "registered"
        ],
        "promoted": [
            {"ds": e["ds"], "version": e["model_version"], "from_version": e["from_version"], "reason": e["reason"]}
            for e in promoted
        ],
        "rolled_back": [
            {"ds": e["ds"], "version": e["model_version"], "from_version": e["from_version"], "reason": e["reason"]}
            for e in events
            if e["event"] == "rolled_back"
        ],
        "quarantined": [d["ds"] for d in days if d["decision"] == "quarantined"],
        "change_points": change_points(store.rows(schema.day_steps, where={"step": "retrain"}, order_by="ds")),
    }
    milestones["early_warning"] = early_warning(days, risk_warn)
    drift_on, initial = milestones["first_drift"], days[0]["champion"] if days else None
    by_version: dict[str, list[float]] = {}
    for d in days:
        if d["auc"] is not None:
            stage = (
                ""
                if d["auc_version"] != initial or drift_on is None
                else (" before drift" if d["ds"] < drift_on else " after drift")
            )
            by_version.setdefault(f"v{d['auc_version']}{stage}", []).append(d["auc"])
    milestones["auc_by_champion"] = {k: {"mean": _mean(v), "days": len(v)} for k, v in by_version.items()}
    return {"days": days, "milestones": milestones}


def first_sustained_drift(days: list[dict], sustained: int) -> str | None:
    """The first day of the first run of ``sustained`` consecutive monitored days with moderate or critical
    drift: a lone false alarm before the onset is not "the first drift"."""
    streak: list[str] = []
    for d in days:
        drifted = d["drift"] in ("moderate", "critical")
        if drifted and streak and date.fromisoformat(d["ds"]) - date.fromisoformat(streak[-1]) != timedelta(days=1):
            streak = []
        streak = [*streak, d["ds"]] if drifted else []
        if len(streak) >= sustained:
            return streak[0]
    return None


def early_warning(days: list[dict], risk_warn: float) -> dict:
    """How far ahead the failure risk warned: the first day its risk reached ``risk_warn`` (the decision's
    alert threshold), the first day a measured failure was reported (the labels confirmed it; the day they
    measured is in the reason), the lead in days from the one to the other (negative: the risk came after the
    labels) and, of the days from the alert up to the confirmation, on how many the risk was at or above
    ``risk_warn`` (a lone blip weeks ahead warns of little)."""
    alert = next((d for d in days if d["failure_risk"] is not None and d["failure_risk"] >= risk_warn), None)
    confirmed = next((d for d in days if any(r.startswith(MEASURED_FAILURE) for r in d["reasons"])), None)
    warning = {
        "risk_warn": risk_warn,
        "alert_ds": alert["ds"] if alert else None,
        "alert_risk": alert["failure_risk"] if alert else None,
        "confirmed_ds": confirmed["ds"] if confirmed else None,
        "failed_ds": _measured_days(confirmed["reasons"])[0] if confirmed else None,
        "lead_days": None,
        "alert_days": None,
    }
    if alert and confirmed:
        warning["lead_days"] = (date.fromisoformat(confirmed["ds"]) - date.fromisoformat(alert["ds"])).days
        if warning["lead_days"] > 0:
            ahead = [d for d in days if alert["ds"] <= d["ds"] < confirmed["ds"]]
            warning["alert_days"] = [sum((d["failure_risk"] or 0) >= risk_warn for d in ahead), len(ahead)]
    return warning


def _measured_days(reasons: list[str]) -> list[str]:
    """The failed days a measured-failure reason names ("measured failure on 2026-10-09, 2026-10-10")."""
    reason = next(r for r in reasons if r.startswith(MEASURED_FAILURE))
    return [d.strip() for d in reason.removeprefix(MEASURED_FAILURE).split(",")]


def change_points(retrains: list[dict]) -> list[dict]:
    """The change points retraining used (the first observed day after a measured failure or a detected change
    in the champion's AUC; its challenger is validated on labelled days from it on), each with the retrains
    that used it: ``{"change_day", "retrains": [{"ds", "version" (None: nothing registered), "outcome"}]}``,
    from the retrain step's results in the store."""
    found: dict[str, list[dict]] = {}
    for step in retrains:
        result = step["result"]
        if result.get("change_day") and not result.get("dry_run"):
            outcome = "registered" if result.get("registered") else str(result.get("rejected", "")).split(":")[0]
            found.setdefault(result["change_day"], []).append(
                {
                    "ds": step["ds"],
                    "version": result.get("version") if result.get("registered") else None,
                    "outcome": outcome,
                }
            )
    return [{"change_day": day, "retrains": used} for day, used in sorted(found.items())]


def format_early_warning(warning: dict) -> str:
    """The early warning as one line: when the risk alerted, when the labels confirmed, the lead between."""
    warn = f"{warning['risk_warn']:g} (decision.risk_warn)"
    alert, confirmed, lead = warning["alert_ds"], warning["confirmed_ds"], warning["lead_days"]
    measured = f" (the customers of {warning['failed_ds']})" if warning["failed_ds"] else ""
    if alert is None:
        return f"no early warning: the failure risk never reached {warn}" + (
            f"; the labels confirmed the failure{measured} on {confirmed}"
            if confirmed
            else "; the labels confirmed no failure"
        )
    risk = f"failure risk {warning['alert_risk']:.2f} >= {warn} on {alert}"
    if confirmed is None:
        return f"early warning: {risk}; the labels confirmed no failure (none measured)"
    if lead <= 0:
        when = "the same day" if lead == 0 else f"{-lead} day(s) after"
        return f"no early warning: the {risk}, {when} the labels confirmed the failure{measured} on {confirmed}"
    held, span = warning["alert_days"]
    return (
        f"early warning: {risk}; the labels confirmed the failure{measured} on {confirmed}: {lead} days "
        f"ahead (the risk was at or above {warning['risk_warn']:g} on {held} of those {span} days)"
    )


def format_change_points(points: list[dict]) -> list[str]:
    """A line for each change point a registered challenger was validated from (with the retrains before it
    that waited); the change points no registered challenger used, one line each, or one line for all
    when there are more than two (a change point that moves on every retrain is one finding, not many)."""
    lines, unused = [], []
    for point in points:
        registered = [r for r in point["retrains"] if r["version"] is not None]
        if not registered:
            unused.append(point)
            continue
        first = registered[0]
        before = [r for r in point["retrains"] if r["ds"] < first["ds"]]
        waited = f"; before it: {_retrain_outcomes(before)}" if before else ""
        lines.append(
            f"change point: {point['change_day']} (used by the retrain of {first['ds']}: challenger "
            f"v{first['version']} validated on labelled days from it on{waited})"
        )
    if len(unused) <= 2:
        lines.extend(
            f"change point: {p['change_day']} (no challenger registered from it: {_retrain_outcomes(p['retrains'])})"
            for p in unused
        )
    else:
        days = sorted(r["ds"] for p in unused for r in p["retrains"])
        outcomes = sorted({r["outcome"] or "registered nothing" for p in unused for r in p["retrains"]})
        lines.append(
            f"change points without a registered challenger: {len(unused)}, from "
            f"{unused[0]['change_day']} to {unused[-1]['change_day']} (retrains of {days[0]} .. "
            f"{days[-1]}: {', '.join(outcomes)})"
        )
    return lines


def _retrain_outcomes(retrains: list[dict]) -> str:
    return "; ".join(f"{r['ds']} {r['outcome'] or 'registered nothing'}" for r in retrains)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def format_timeline(tl: dict) -> str:
    """The timeline as a table (one line a day) followed by the milestones."""

    def num(value, fmt: str) -> str:
        return format(value, fmt) if value is not None else "-"

    lines = [
        f"{'day':10s} {'rows':>5s} {'valid':>6s} {'drift':>8s} {'share':>6s} {'risk':>5s} {'AUC*':>6s} "
        f"{'champ':>5s} {'chall':>5s} decision"
    ]
    for d in tl["days"]:
        lines.append(
            f"{d['ds']:10s} {num(d['rows'], 'd'):>5s} {d['validation'] or '-':>6s} {d['drift'] or '-':>8s} "
            f"{num(d['drift_share'], '.2f'):>6s} {num(d['failure_risk'], '.2f'):>5s} "
            f"{num(d['auc'], '.3f'):>6s} {num(d['champion'], 'd'):>5s} {num(d['challenger'], 'd'):>5s} "
            f"{d['decision']}{' + promoted' if d['promoted'] else ''}"
        )
    lines.append("* AUC: the champion's on that day's customers, measured once their labels arrived")
    m = tl["milestones"]
    lines.append("")
    lines.append(
        f"first drift: {m['first_drift'] or '-'} (critical: {m['first_critical_drift'] or '-'}); "
        f"first failure-risk alert: {m['first_risk_alert'] or '-'}; "
        f"first measured failure reported: {m['first_measured_failure_reported'] or '-'}"
    )
    lines.append(format_early_warning(m["early_warning"]))
    lines.extend(format_change_points(m["change_points"]))
    for e in m["registered"]:
        lines.append(f"challenger v{e['version']} registered on {e['ds']}: {e['reason']}")
    for e in m["promoted"]:
        lines.append(f"v{e['version']} promoted to champion on {e['ds']} (was v{e['from_version']}): {e['reason']}")
    if m["auc_by_champion"]:
        lines.append(
            "champion AUC on its days' customers (mean over measured days): "
            + "; ".join(f"{k} {v['mean']:.3f} ({v['days']} days)" for k, v in m["auc_by_champion"].items())
        )
    if m["quarantined"]:
        lines.append("quarantined: " + ", ".join(m["quarantined"]))
    return "\n".join(lines)
