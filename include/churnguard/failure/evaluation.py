"""Evaluation of failure-risk scores on held-out trajectories, next to simple baselines, and the same
numbers on the training trajectories' out-of-fold scores (:func:`validation_metrics`, what the alarm
threshold was chosen on).

Every score is judged on the days that have a failure label. Besides AUROC: precision and recall of
the alarm ``score >= threshold``; false alarms (alert days without a failure in the next ``horizon``
days, harmless drift included) per 90 such days; and, per failing trajectory, the **lead time**: days
from the first alert in the run-up to the first failure (from ``horizon`` days before it) to the day
the failure shows in measured performance (the failure day plus the label delay), 0 when no alert came
before the labels did (then the failure counts as not *detected*).

**Visible** failures are decided by the data (``failure_kind`` of each trajectory, see
:mod:`churnguard.failure.trajectories`): a failure is visible when the same trajectory without its concept
component also makes the champion fail, and before the labels show the first failure (first failure day +
label delay), else *concept-only*. :func:`visible_rows` is every trajectory but
the concept-only ones (the harmless-drift and no-failure trajectories stay as negatives);
:func:`concept_only_rows` the concept-only ones.

**Blind days** (:func:`blind_days`): the failure-coming days of concept-only trajectories before their labels
show the first failure. No label-free signal sees a pure concept change, so on these days only the first,
smaller drops in the labels of the days after the change can; :func:`auroc_by_sight` splits the AUROC into
its blind and its other positive days (the AUROC is the weighted mean of the two, by the positives' weight).
**Unseen days** (:func:`unseen_days`) are the blind days of a world that nothing observable tells from one
without drift yet (:func:`unchanged_world_days`: before the onset, or a pure concept change before its onset
day's labels arrive): no score can know them, and their share of the positives caps the AUROC (``ceiling``).

**Every family equally weighted** (``weighted=True`` of :func:`alert_metrics`): AUROC with sample weight
1 / (labelled days of the day's family in the table), the detection share as the mean of the per-family
shares, and the median lead as the weighted median with weight 1 / (failing trajectories of its family).
False alarms per 90 days stay a plain rate over all days without a coming failure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

# name -> (column of the evaluation table, alert threshold of the rule)
BASELINES: dict[str, tuple[str, float]] = {
    "max PSI > 0.25": ("drift_psi_max", 0.25),
    "half of features drifted": ("drift_share", 0.5),
    "CBPE est. AUC drop > 0.05": ("cbpe_auc_drop", 0.05),
    "ATC est. accuracy drop > 0.05": ("atc_accuracy_drop", 0.05),
    "latest measured AUC drop > 0.05": ("matured_auc_drop", 0.05),
}
CONCEPT_ONLY = "concept_only"  # failure_kind of a failure only the labels can show (see trajectories.py)
PURE_CONCEPT, NO_DRIFT = "concept", "none"  # simulator scenarios: a concept change alone; no drift at all


def visible_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Days of every trajectory but those whose failure is concept-only."""
    return table[table["failure_kind"] != CONCEPT_ONLY]


def concept_only_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Days of the trajectories whose failure is concept-only (their counterfactual does not fail)."""
    return table[table["failure_kind"] == CONCEPT_ONLY]


def first_failure_day(table: pd.DataFrame) -> pd.Series:
    """Per row: the first day its trajectory failed (NaN for a trajectory that never did)."""
    failed = table["failed_today"].fillna(False).astype(bool)
    return table["trajectory"].map(table.loc[failed].groupby("trajectory")["day"].min())


def blind_days(table: pd.DataFrame, delay: int) -> pd.Series:
    """Per row: a failure-coming day of a concept-only trajectory before its labels show the first failure
    (``day < first failure day + delay``)."""
    return (
        (table["label"] == 1)
        & (table["failure_kind"] == CONCEPT_ONLY)
        & (table["day"] < first_failure_day(table) + delay).fillna(False)
    )


def unchanged_world_days(table: pd.DataFrame, delay: int) -> pd.Series:
    """Per row: nothing a monitor can observe on that day differs yet from a world without drift. That is
    every day of a scenario without drift, the days before the onset, and, where the only drift is a concept
    change (which moves no feature and no score), the days before the labels of the onset day arrive
    (``day < onset_day + delay``)."""
    scenario = table["scenario"].astype(str)
    until = table["onset_day"] + np.where(scenario == PURE_CONCEPT, delay, 0)
    return (scenario == NO_DRIFT) | (table["day"] < until)


def unseen_days(table: pd.DataFrame, delay: int) -> pd.Series:
    """Per row: a blind day (:func:`blind_days`) of a world that has not visibly changed yet
    (:func:`unchanged_world_days`): a failure-coming day no score can know."""
    return blind_days(table, delay) & unchanged_world_days(table, delay)


def auroc_by_sight(table: pd.DataFrame, score: str, delay: int) -> dict:
    """Family-weighted AUROC of ``score`` against all negative days, on the blind days' positives
    (``blind``) and on every other positive (``seen``), with the blind days' share of the positives' weight
    (``blind_share``): the overall AUROC is ``(1 - blind_share) * seen + blind_share * blind``.

    The same for the blind days of an unchanged world (``unseen``, ``unseen_share``), also against the
    negative days of an unchanged world only (``unseen_vs_unchanged``: about 0.5 when nothing tells them
    apart), and the AUROC this score would reach with every other positive day ranked above every negative
    day (``ceiling``: ``1 - unseen_share * (1 - unseen)``); ``chance_ceiling`` is that at 0.5 on the unseen
    days."""
    y = table["label"].astype(int).to_numpy()
    s = table[score].astype(float).fillna(-1e9).to_numpy()
    w = family_weights(table["family"])
    blind = blind_days(table, delay).to_numpy()
    unchanged = unchanged_world_days(table, delay).to_numpy()
    neg, pos = y == 0, y == 1
    unseen = unseen_days(table, delay).to_numpy()

    def share(positives: np.ndarray) -> float | None:
        return float(w[positives].sum() / w[pos].sum()) if pos.any() else None

    out = {"blind_share": share(blind), "unseen_share": share(unseen)}
    for name, positives, negatives in (
        ("seen", pos & ~blind, neg),
        ("blind", blind, neg),
        ("unseen", unseen, neg),
        ("unseen_vs_unchanged", unseen, neg & unchanged),
    ):
        rows = positives | negatives
        out[name] = auroc(y[rows], s[rows], w[rows]) if positives.any() and negatives.any() else None
    known = out["unseen"] is not None
    out["ceiling"] = 1 - out["unseen_share"] * (1 - out["unseen"]) if known else None
    out["chance_ceiling"] = 1 - out["unseen_share"] * 0.5 if known else None
    return out


def family_weights(families: pd.Series) -> np.ndarray:
    """Per row, 1 / (rows of its family): every family weighs the same in total."""
    counts = families.map(families.value_counts())
    return (1.0 / counts.astype(float)).to_numpy()


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float | None:
    """The median of ``values`` with ``weights`` (equal weights: ``np.median``)."""
    values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    if not len(values):
        return None
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum, half = np.cumsum(w), w.sum() / 2
    i = int(np.searchsorted(cum, half - 1e-12 * w.sum()))
    if np.isclose(cum[i], half) and i + 1 < len(v):
        return float((v[i] + v[i + 1]) / 2)
    return float(v[i])


def false_alarms_per_90(y: np.ndarray, alerts: np.ndarray) -> float:
    """Alert days among days without a coming failure, per 90 such days."""
    negatives = y == 0
    return float(90 * alerts[negatives].sum() / max(negatives.sum(), 1))


def auroc(y: np.ndarray, score: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    return float(roc_auc_score(y, score, sample_weight=weights)) if len(np.unique(y)) == 2 else None


def trajectory_bootstrap(
    table: pd.DataFrame, stat: Callable[[pd.DataFrame], float | None], n_boot: int = 500, seed: int = 0
) -> tuple[float, float]:
    """95 % percentile interval of ``stat`` when whole trajectories are resampled with replacement."""
    rng = np.random.default_rng(seed)
    groups = {k: g for k, g in table.groupby("trajectory")}
    keys = np.array(list(groups))
    values = []
    for _ in range(n_boot):
        sample = pd.concat([groups[k] for k in rng.choice(keys, size=len(keys))], ignore_index=True)
        value = stat(sample)
        if value is not None:
            values.append(value)
    if not values:  # no resample had both classes (a set where every day fails, or none does): no interval
        return float("nan"), float("nan")
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def lead_times(table: pd.DataFrame, score: str, threshold: float, delay: int, horizon: int) -> pd.DataFrame:
    """Per failing trajectory: first failure day, day labels show it, first alert, lead, detected."""
    rows = []
    for tid, g in table.groupby("trajectory"):
        failed = g.loc[g["failed_today"].fillna(False).astype(bool), "day"]
        if failed.empty:
            continue
        first = int(failed.min())
        shown = first + delay
        window = g[(g["day"] >= first - horizon) & (g["day"] < shown)]
        alerts = window.loc[window[score] >= threshold, "day"]
        alert = int(alerts.min()) if not alerts.empty else None
        rows.append(
            {
                "trajectory": tid,
                "family": g["family"].iloc[0],
                "first_failure_day": first,
                "shown_day": shown,
                "first_alert_day": alert,
                "lead_days": shown - alert if alert is not None else 0,
                "detected": alert is not None,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["trajectory", "family", "first_failure_day", "shown_day", "first_alert_day", "lead_days", "detected"],
    )


def alert_metrics(
    table: pd.DataFrame, score: str, threshold: float, delay: int, horizon: int, weighted: bool = False
) -> dict:
    """AUROC plus the alarm's precision, recall, false alarms per 90 days, detection share and lead;
    ``weighted``: every family weighs the same (see the module docstring)."""
    y = table["label"].astype(int).to_numpy()
    s = table[score].astype(float).fillna(-np.inf).to_numpy()
    alerts = s >= threshold
    tp = int((alerts & (y == 1)).sum())
    leads = lead_times(table, score, threshold, delay, horizon)
    if weighted and len(leads):
        detected = float(leads.groupby("family")["detected"].mean().mean())
        lead = weighted_median(leads["lead_days"].to_numpy(), family_weights(leads["family"]))
    else:
        detected = float(leads["detected"].mean()) if len(leads) else None
        lead = float(leads["lead_days"].median()) if len(leads) else None
    weights = family_weights(table["family"]) if weighted else None
    return {
        "auroc": auroc(y, np.nan_to_num(s, neginf=-1e9), weights),
        "threshold": threshold,
        "precision": tp / alerts.sum() if alerts.sum() else None,
        "recall": tp / (y == 1).sum() if (y == 1).sum() else None,
        "false_alarms_per_90d": false_alarms_per_90(y, alerts),
        "failing_trajectories": len(leads),
        "detected": detected,
        "median_lead_days": lead,
    }


def validation_metrics(
    table: pd.DataFrame, risks: list[np.ndarray], threshold: float, delay: int, horizon: int, weighted: bool = False
) -> dict:
    """:func:`alert_metrics` of the alarm ``risk >= threshold`` on the out-of-fold ``risks`` of ``table``'s
    rows (one array per cross-validation repeat), each number averaged over the repeats where it is defined:
    the numbers the threshold was chosen on, from training trajectories only."""
    runs = [alert_metrics(table.assign(risk=risk), "risk", threshold, delay, horizon, weighted) for risk in risks]
    out = {}
    for key in runs[0]:
        values = [run[key] for run in runs if run[key] is not None]
        out[key] = float(np.mean(values)) if values else None
    out["failing_trajectories"] = runs[0]["failing_trajectories"]
    return out


def threshold_sensitivity(
    table: pd.DataFrame, score: str, delay: int, horizon: int, thresholds: np.ndarray | None = None
) -> pd.DataFrame:
    thresholds = np.round(np.arange(0.1, 0.96, 0.05), 2) if thresholds is None else thresholds
    rows = [
        {k: v for k, v in alert_metrics(table, score, float(t), delay, horizon).items() if k != "auroc"}
        for t in thresholds
    ]
    return pd.DataFrame(rows)
