"""Simulated trajectories: the training data of the failure model.

Each trajectory is ``days`` daily batches of held-out customers from :class:`BatchSimulator` under one
scenario family, with a random onset and intensity. For every day it records what was known that day
(:func:`~churnguard.failure.signals.day_signals`) and, from the labels, whether the champion failed.

The mix (:func:`trajectory_specs`): the same number of trajectories for each of the nine families of
:data:`FAMILIES`, intensity log-uniform in ``[intensity_min, intensity_max]`` for every family, onset
uniform in ``[onset_min, onset_max]``, one simulator seed per trajectory; one trajectory in every
``evaluation_every`` of each family is held out for evaluation (the split is by trajectory). Days
before the onset, and the ``none`` family, are the stable control periods. Nothing is filtered
afterwards: a family whose drift never hurts the champion stays in the mix as harmless drift.

Each finished trajectory is cached as parquet under ``<home>/cache/failure-trajectories/`` keyed by
its spec, the champion and the failure definition, so re-runs only simulate what is new.

**Visible failures** are defined by the data, not by the family name (:func:`counterfactual_failures`):
for a trajectory whose family has a concept component, the same trajectory (same seed, onset, intensity,
days, customers) is simulated again without that component, and its failure days are computed with the
same rule. The decision is per trajectory and about its first failure, the one detection and lead are
timed on: it is *visible* when the counterfactual fails before that failure shows in the labels (first
failure day + ``label_delay_days``), else *concept-only* (the label-free signals cannot see it: only the
labels, ``label_delay_days`` late, show it; a counterfactual that fails weeks later fails on another
failure). For a family without a concept component, the counterfactual is the
trajectory itself, so its failure is visible by definition (nothing is simulated again). The counterfactual
needs no drift report (only the champion's scores and the labels), so it costs a small part of a
trajectory; it is cached next to the trajectories (``<home>/cache/failure-counterfactuals/``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from churnguard.config import DatasetConfig, DriftConfig
from churnguard.data import target_array
from churnguard.drift import ReferenceProfile, drift_reports
from churnguard.failure.config import FailureConfig
from churnguard.failure.labels import day_failure, failure_labels, label_day_metrics
from churnguard.failure.signals import day_signals, signal_report
from churnguard.settings import get_settings
from churnguard.simulate import BatchSimulator, Scenario

log = logging.getLogger(__name__)

CACHE_VERSION = 4  # bump when signals or labels change meaning
START = date(2026, 1, 1)
# Reported family -> simulator scenario. "covariate" = both covariate shifts of the simulator.
FAMILIES = {
    "none": "none",
    "gradual": "gradual",
    "sudden": "sudden",
    "covariate": "gradual+sudden",
    "concept": "concept",
    "covariate+concept": "gradual+sudden+concept",
    "seasonal": "seasonal",
    "new_category": "new_category",
    "class_balance": "class_balance",
}


CONCEPT = "concept"
# failure_kind of a trajectory: no failure at all, a visible failure, a failure only the labels can show
NO_FAILURE, VISIBLE, CONCEPT_ONLY = "none", "visible", "concept_only"


def counterfactual_scenario_name(family: str) -> str | None:
    """The simulator scenario of ``family`` without its concept component, or None when it has none."""
    parts = FAMILIES[family].split("+")
    if CONCEPT not in parts:
        return None
    return "+".join(p for p in parts if p != CONCEPT) or "none"


@dataclass(frozen=True)
class TrajectorySpec:
    trajectory: int
    family: str
    intensity: float
    onset_day: int
    seed: int
    days: int
    rows_per_day: int
    split: str  # "train" | "evaluation"

    @property
    def scenario(self) -> Scenario:
        return Scenario.parse(
            FAMILIES[self.family], onset=START + timedelta(days=self.onset_day), intensity=self.intensity
        )

    @property
    def counterfactual(self) -> Scenario | None:
        """The same scenario without its concept component (None: the family has none)."""
        name = counterfactual_scenario_name(self.family)
        if name is None:
            return None
        return Scenario.parse(name, onset=START + timedelta(days=self.onset_day), intensity=self.intensity)


def trajectory_specs(cfg: FailureConfig, count: int | None = None) -> list[TrajectorySpec]:
    """The documented mix: ``count`` trajectories (rounded up to a multiple of the nine families)."""
    tc = cfg.trajectories
    per_family = max(1, -(-(count or tc.count) // len(FAMILIES)))
    specs = []
    for f_index, family in enumerate(FAMILIES):
        for k in range(per_family):
            # one random stream per trajectory: a larger count keeps the smaller count's trajectories
            rng = np.random.default_rng([tc.seed, f_index, k])
            intensity = float(np.exp(rng.uniform(np.log(tc.intensity_min), np.log(tc.intensity_max))))
            onset = int(rng.integers(tc.onset_min, tc.onset_max + 1))
            # each block of `evaluation_every` trajectories of a family holds one out, at a random place
            start = k - k % tc.evaluation_every
            size = min(tc.evaluation_every, per_family - start)
            pick = start + int(np.random.default_rng([tc.seed, f_index, start]).integers(size))
            held_out = per_family > 1 and k == pick
            tid = f_index * 10_000 + k
            specs.append(
                TrajectorySpec(
                    tid,
                    family,
                    round(intensity, 4),
                    onset,
                    tc.seed * 1_000_003 + tid,
                    tc.days,
                    tc.rows_per_day,
                    "evaluation" if held_out else "train",
                )
            )
    return specs


def _cache_path(
    spec: TrajectorySpec,
    reference: dict,
    profile: ReferenceProfile,
    cfg: FailureConfig,
    dataset_cfg: DatasetConfig,
    kind: str = "trajectories",
) -> Path:
    champion = {**reference, "profile": profile.version}
    # the dataset config decides the customers (pool or synthetic) and what each scenario does to them
    payload = {
        "v": CACHE_VERSION,
        "spec": asdict(spec),
        "failure": cfg.failure.model_dump(),
        "features": cfg.features.model_dump(),
        "dataset": dataset_cfg.model_dump(mode="json"),
        "champion": hashlib.sha256(json.dumps(champion, sort_keys=True).encode()).hexdigest(),
    }
    if kind != "trajectories":
        payload["kind"] = kind
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]
    return get_settings().home / "cache" / f"failure-{kind}" / f"{key}.parquet"


def _write_cache(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.to_parquet(tmp, index=False)
    tmp.replace(path)


_SIMULATORS: dict[tuple[str, int], BatchSimulator] = {}


def _simulator(dataset_cfg: DatasetConfig, rows_per_day: int) -> BatchSimulator:
    """One simulator per dataset config and batch size in this process: it reads the pool once."""
    key = (dataset_cfg.model_dump_json(), rows_per_day)
    if key not in _SIMULATORS:
        _SIMULATORS[key] = BatchSimulator(dataset_cfg, rows_per_day=rows_per_day)
    return _SIMULATORS[key]


def simulate_trajectory(
    spec: TrajectorySpec,
    model,
    reference: dict,
    profile: ReferenceProfile,
    dataset_cfg: DatasetConfig,
    cfg: FailureConfig,
    drift_cfg: DriftConfig,
    use_cache: bool = True,
) -> pd.DataFrame:
    """One row per day from ``warmup_days`` on: the day's signals, its failure status and its label.

    ``reference``: :func:`~churnguard.failure.signals.champion_reference` of ``model``; ``profile``: the
    drift profile of its training data (with its scores and importance), as the daily DAG uses; ``drift_cfg``:
    the drift config each day's report is made with.
    """
    if use_cache and (cached := cached_trajectory(spec, reference, profile, cfg, dataset_cfg)) is not None:
        return cached
    frame = _simulate(spec, model, reference, profile, dataset_cfg, cfg, drift_cfg)
    _write_cache(frame, _cache_path(spec, reference, profile, cfg, dataset_cfg))
    return frame


def cached_trajectory(
    spec: TrajectorySpec, reference: dict, profile: ReferenceProfile, cfg: FailureConfig, dataset_cfg: DatasetConfig
) -> pd.DataFrame | None:
    """The cached table of ``spec`` (as :func:`simulate_trajectory` stores it), or None."""
    path = _cache_path(spec, reference, profile, cfg, dataset_cfg)
    return pd.read_parquet(path) if path.exists() else None


def window_failures(ys: list[np.ndarray], scores: list[np.ndarray], reference: dict, fd) -> list[bool | None]:
    """Per day, whether the champion failed on the labels of the ``window_days`` days ending that day."""
    failures = []
    for d in range(len(ys)):
        lo = max(0, d - fd.window_days + 1)
        pooled = label_day_metrics(
            np.concatenate(ys[lo : d + 1]), np.concatenate(scores[lo : d + 1]), reference["threshold"], fd.confidence
        )
        failures.append(day_failure(pooled, reference["reference_auc"], reference["reference_f1"], fd))
    return failures


def counterfactual_failures(
    spec: TrajectorySpec,
    model,
    reference: dict,
    profile: ReferenceProfile,
    dataset_cfg: DatasetConfig,
    cfg: FailureConfig,
    use_cache: bool = True,
) -> pd.DataFrame | None:
    """Per day, ``failed_today`` of the same trajectory without its concept component (same seed, onset,
    intensity, days and customers, the same failure rule), or None when the family has no concept
    component (the counterfactual is the trajectory itself). Columns: ``day``, ``failed_today``; the days of
    the trajectory's table (from ``warmup_days`` on)."""
    scenario = spec.counterfactual
    if scenario is None:
        return None
    path = _cache_path(spec, reference, profile, cfg, dataset_cfg, kind="counterfactuals")
    if use_cache and path.exists():
        return pd.read_parquet(path)
    sim = _simulator(dataset_cfg, spec.rows_per_day).with_seed(spec.seed)
    span = sim.days([START + timedelta(days=i) for i in range(spec.days)], scenario)
    bounds = span.offsets[1:-1]
    scores = np.split(model.predict_proba(span.landing), bounds)
    ys = np.split(target_array(span.labels, dataset_cfg), bounds)
    failures = window_failures(ys, scores, reference, cfg.failure)
    first = min(cfg.trajectories.warmup_days, spec.days)
    frame = pd.DataFrame(
        {"day": np.arange(first, spec.days), "failed_today": pd.array(failures[first:], dtype="boolean")}
    )
    _write_cache(frame, path)
    return frame


def cached_counterfactual(
    spec: TrajectorySpec, reference: dict, profile: ReferenceProfile, cfg: FailureConfig, dataset_cfg: DatasetConfig
) -> pd.DataFrame | None | bool:
    """The cached counterfactual of ``spec``; None when the family needs none; False when not cached."""
    if spec.counterfactual is None:
        return None
    path = _cache_path(spec, reference, profile, cfg, dataset_cfg, kind="counterfactuals")
    return pd.read_parquet(path) if path.exists() else False


def with_failure_kind(days: pd.DataFrame, counterfactual: pd.DataFrame | None, label_delay_days: int) -> pd.DataFrame:
    """``days`` (one trajectory) with its :func:`failure_kind` and ``visible_failure_day``: the first day the
    drift alone fails the champion (the counterfactual's first failure; the trajectory's own without a
    counterfactual; NaN when it never does)."""
    first = _first_failure(days if counterfactual is None else counterfactual)
    return days.assign(
        failure_kind=failure_kind(days, counterfactual, label_delay_days),
        visible_failure_day=float("nan") if first is None else float(first),
    )


def _first_failure(days: pd.DataFrame) -> int | None:
    failed = days.loc[days["failed_today"].fillna(False).astype(bool).to_numpy(), "day"]
    return int(failed.min()) if len(failed) else None


def failure_kind(days: pd.DataFrame, counterfactual: pd.DataFrame | None, label_delay_days: int) -> str:
    """:data:`NO_FAILURE`, :data:`VISIBLE` or :data:`CONCEPT_ONLY` for one trajectory (``days`` and
    ``counterfactual``: columns ``day``, ``failed_today``). No counterfactual: visible. Else the first failure
    is visible when the counterfactual fails before that failure shows in the labels (first failure day +
    ``label_delay_days``, the end of the window in which an alert counts as detecting it): the drift the
    label-free signals see would have failed the champion by then on its own. A counterfactual that fails
    only later fails on another failure than the one timed (the concept's, on days no drift statistic sees)."""
    first = _first_failure(days)
    if first is None:
        return NO_FAILURE
    if counterfactual is None:
        return VISIBLE
    first_visible = _first_failure(counterfactual)
    return VISIBLE if first_visible is not None and first_visible < first + label_delay_days else CONCEPT_ONLY


def _simulate(
    spec: TrajectorySpec,
    model,
    reference: dict,
    profile: ReferenceProfile,
    dataset_cfg: DatasetConfig,
    cfg: FailureConfig,
    drift_cfg: DriftConfig,
) -> pd.DataFrame:
    fd = cfg.failure
    sim = _simulator(dataset_cfg, spec.rows_per_day).with_seed(spec.seed)
    span = sim.days([START + timedelta(days=i) for i in range(spec.days)], spec.scenario)
    bounds = span.offsets[1:-1]
    all_scores = model.predict_proba(span.landing)
    scores = np.split(all_scores, bounds)
    ys = np.split(target_array(span.labels, dataset_cfg), bounds)
    threshold = reference["threshold"]
    metrics = [
        {"observed_ds": ds.isoformat(), **label_day_metrics(y, s, threshold, fd.confidence)}
        for ds, y, s in zip(span.dates, ys, scores, strict=True)
    ]
    failures = window_failures(ys, scores, reference, fd)
    labels = failure_labels(failures, fd.horizon_days)
    first = min(cfg.trajectories.warmup_days, spec.days)
    start = span.offsets[first]  # the featured days' drift reports, all in one call
    # day_signals reads no segment block, and segment drift changes the pooled blocks only when it raises
    # severity: without that, the segments are skipped (not counted, not tested), the signals unchanged
    reports = drift_reports(
        profile,
        span.landing.iloc[start:],
        span.offsets[first:] - start,
        drift_cfg,
        scores=all_scores[start:],
        segments=drift_cfg.segments.raise_severity,
    )
    rows = []
    window = cfg.features.matured_window
    for t in range(first, spec.days):
        last_matured = t - fd.label_delay_days
        matured = metrics[max(0, last_matured - window + 1) : last_matured + 1] if last_matured >= 0 else []
        signals = day_signals(
            signal_report(reports[t - first]),
            scores[t],
            matured,
            reference=reference,
            ds=span.dates[t].isoformat(),
            matured_window=window,
            min_labels=fd.min_labels,
        )
        seen = [f for f in failures[: last_matured + 1] if f is True] if last_matured >= 0 else []
        rows.append(
            {
                **signals,
                "trajectory": spec.trajectory,
                "family": spec.family,
                "scenario": FAMILIES[spec.family],
                "intensity": spec.intensity,
                "onset_day": spec.onset_day,
                "split": spec.split,
                "day": t,
                "failed_today": failures[t],
                "failure_seen": bool(seen),
                "roc_auc_today": metrics[t]["roc_auc"],
                "f1_today": metrics[t]["f1"],
                "label": labels[t],
            }
        )
    frame = pd.DataFrame(rows)
    frame["failed_today"] = frame["failed_today"].astype("boolean")
    frame["label"] = frame["label"].astype("Int64")
    return frame
