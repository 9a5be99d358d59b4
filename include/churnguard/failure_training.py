"""Training of the failure model as steps that hand each other storage keys and run ids (never frames), and
loading the registered one:

``simulate_trajectories`` -> ``build_dataset`` -> ``train_failure_model`` -> ``evaluate_failure_model``
-> ``register_failure_model``. The ``churn_failure_model_training`` DAG runs them task by task.

In the data root (:meth:`DataRoot.failure_key <churnguard.dataroot.DataRoot.failure_key>`): the trajectories
(per-day signals and failure status), the datasets (features + label, the training table) and the champion
reference that ``day_signals`` needs; versions are content hashes.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import tempfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from churnguard import registry
from churnguard.config import DatasetConfig, DriftConfig, ModelConfig
from churnguard.data import load_reference, split_reference, target_array
from churnguard.dataroot import DataRoot
from churnguard.drift import ReferenceProfile, fit_profile
from churnguard.failure.config import FailureConfig
from churnguard.failure.evaluation import BASELINES, alert_metrics, concept_only_rows, visible_rows
from churnguard.failure.features import feature_frame, feature_names
from churnguard.failure.model import FailureModel, fit_failure_model
from churnguard.failure.scoring import score_failure_risk, unavailable_risk
from churnguard.failure.signals import champion_reference
from churnguard.failure.trajectories import (
    TrajectorySpec,
    cached_counterfactual,
    cached_trajectory,
    counterfactual_failures,
    simulate_trajectory,
    trajectory_specs,
    with_failure_kind,
)
from churnguard.progress import progress
from churnguard.results import FailureRisk
from churnguard.storage import Storage, frame_to_parquet_bytes
from churnguard.store import MonitoringStore
from churnguard.training import load_alias_model

log = logging.getLogger(__name__)
META = [
    "trajectory",
    "family",
    "scenario",
    "intensity",
    "onset_day",
    "split",
    "day",
    "failed_today",
    "failure_seen",
    "label",
    "failure_kind",
    "visible_failure_day",
]


def _hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_parquet(storage: Storage, key: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(storage.read_bytes(key)))


def failure_overrides(horizon: int | None = None, tolerance: float | None = None) -> dict | None:
    """The overrides of ``failure.yaml`` for the DAG's Params (horizon, tolerance), those given (None for
    none), for :func:`~churnguard.failure.config.load_failure_config` at the caller."""
    over: dict[str, Any] = {}
    if horizon is not None:
        over["horizon_days"] = int(horizon)
    if tolerance is not None:
        over["tolerance"] = float(tolerance)
    return {"failure": over} if over else None


def failure_registry(cfg: FailureConfig) -> registry.ModelRegistry:
    """The failure model's registry: its own registered name, its tags typed as ``FailureVersionTags``."""
    return registry.ModelRegistry(cfg.registered_name, tag_type=registry.FailureVersionTags)


def champion_model(dataset_cfg: DatasetConfig, model_cfg: ModelConfig, model_name: str | None) -> tuple[Any, str]:
    """The churn champion registered as ``model_name``, or (none registered, or ``model_name`` None: the
    registry is not asked) one trained on the reference with seed 0, as ``churn_bootstrap`` would."""
    found = load_alias_model(registry.ModelRegistry(model_name), registry.CHAMPION) if model_name is not None else None
    if found is not None:
        model, version = found
        return model, f"{version.name}/{version.version}"
    from churnguard.models import train_model

    split = split_reference(load_reference(dataset_cfg), dataset_cfg)
    log.info("simulating against a reference churn model trained now (seed 0)")
    return train_model(split.train, split.validation, dataset_cfg, model_cfg, random_state=0), "unregistered-seed0"


def build_champion_reference(
    model, dataset_cfg: DatasetConfig, drift_cfg: DriftConfig
) -> tuple[dict, ReferenceProfile]:
    """:func:`champion_reference` of a churn model on the reference test split, and the drift profile
    of its training split (with the model's scores and importance) that the simulation reports against."""
    split = split_reference(load_reference(dataset_cfg), dataset_cfg)
    reference = champion_reference(
        model.predict_proba(split.test), target_array(split.test, dataset_cfg), model.threshold
    )
    profile = fit_profile(
        split.train,
        dataset_cfg,
        drift_cfg,
        scores=model.predict_proba(split.train),
        importance=model.feature_importance(),
    )
    return reference, profile


_SHARED: tuple = ()  # a worker's (model, reference, profile, dataset config, failure config, drift config)


def _share(*shared: Any) -> None:
    """Worker initializer: the champion and configs arrive once per process, not once per trajectory."""
    global _SHARED
    _SHARED = shared


def _with_kind(spec: TrajectorySpec, shared: tuple) -> pd.DataFrame:
    """The trajectory's table with its ``failure_kind`` and ``visible_failure_day`` (the counterfactual
    simulated when not cached)."""
    model, reference, profile, dataset_cfg, cfg, drift_cfg = shared
    frame = simulate_trajectory(spec, model, reference, profile, dataset_cfg, cfg, drift_cfg)
    counterfactual = counterfactual_failures(spec, model, reference, profile, dataset_cfg, cfg)
    return with_failure_kind(frame, counterfactual, cfg.failure.label_delay_days)


def _simulate_one(spec: TrajectorySpec) -> pd.DataFrame:
    return _with_kind(spec, _SHARED)


def simulate_trajectories(
    storage: Storage,
    cfg: FailureConfig,
    dataset_cfg: DatasetConfig,
    model_cfg: ModelConfig,
    drift_cfg: DriftConfig,
    model_name: str | None,
    count: int | None = None,
    workers: int = 1,
) -> dict:
    """Simulate the trajectory mix of ``cfg`` (cached per trajectory; ``workers`` processes simulate the ones
    not cached yet) and store its per-day table in ``storage``.

    ``dataset_cfg``: the dataset to draw customers from; ``model_name``: the registered churn model whose
    champion the trajectories run against (:func:`champion_model`). The registered champion is that of the
    configured dataset, so another dataset needs ``model_name=None``.
    """
    model, champion = champion_model(dataset_cfg, model_cfg, model_name)
    reference, profile = build_champion_reference(model, dataset_cfg, drift_cfg)
    specs = trajectory_specs(cfg, count)
    found = {s.trajectory: cached_trajectory(s, reference, profile, cfg, dataset_cfg) for s in specs}
    found = {
        s.trajectory: None
        if found[s.trajectory] is None
        or (counterfactual := cached_counterfactual(s, reference, profile, cfg, dataset_cfg)) is False
        else with_failure_kind(found[s.trajectory], counterfactual, cfg.failure.label_delay_days)
        for s in specs
    }
    todo = [s for s in specs if found[s.trajectory] is None]
    workers = max(1, min(workers, len(todo)))
    log.info(
        "%d trajectories: %d cached, %d to simulate in %d process(es)",
        len(specs),
        len(specs) - len(todo),
        len(todo),
        workers,
    )
    shared = (model, reference, profile, dataset_cfg, cfg, drift_cfg)
    if workers > 1:
        # spawn, not fork: a forked child inherits OpenMP state of xgboost and can hang
        with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_share, initargs=shared
        ) as pool:
            simulated = list(progress(pool.map(_simulate_one, todo), len(todo), "simulate trajectories"))
    else:
        simulated = [_with_kind(spec, shared) for spec in progress(todo, len(todo), "simulate trajectories")]
    found |= {spec.trajectory: frame for spec, frame in zip(todo, simulated, strict=True)}
    frames = [found[s.trajectory] for s in specs]
    table = pd.concat(frames, ignore_index=True)
    ref_key = DataRoot.failure_key("reference", _hash(reference), ".json")
    storage.write_bytes(ref_key, json.dumps(reference).encode())
    version = _hash(
        {
            "specs": [s.__dict__ for s in specs],
            "reference": ref_key,
            "cfg": cfg.model_dump(),
            "columns": list(table.columns),
        }
    )
    key = DataRoot.failure_key("trajectories", version, ".parquet")
    storage.write_bytes(key, frame_to_parquet_bytes(table))
    log.info("%d trajectories, %d days -> %s", len(specs), len(table), key)
    return {
        "trajectories_key": key,
        "reference_key": ref_key,
        "version": version,
        "champion": champion,
        "dataset": dataset_cfg.name,
        "trajectories": len(specs),
        "days": len(table),
        "config": cfg.model_dump(),
    }


def build_dataset(simulated: dict, storage: Storage) -> dict:
    """Features (from each trajectory's signal history) and failure labels: the versioned training table."""
    cfg = FailureConfig.model_validate(simulated["config"])
    table = _read_parquet(storage, simulated["trajectories_key"])
    parts = []
    groups = table.groupby("trajectory", sort=True)
    for _, days in progress(groups, groups.ngroups, "build features"):
        days = days.sort_values("day").reset_index(drop=True)
        features = feature_frame(days, cfg.features.trend_days)
        # the baselines' raw signals that are no model feature as such (signed ones enter as sizes)
        raw = [column for column, _ in BASELINES.values() if column not in features.columns]
        parts.append(pd.concat([days[META + raw], features], axis=1))
    dataset = pd.concat(parts, ignore_index=True)
    dataset = dataset[dataset["label"].notna()].reset_index(drop=True)
    version = _hash({"trajectories": simulated["version"], "features": feature_names(cfg.features.trend_days)})
    key = DataRoot.failure_key("datasets", version, ".parquet")
    uri = storage.write_bytes(key, frame_to_parquet_bytes(dataset))
    mix = (
        dataset.groupby("family")
        .agg(trajectories=("trajectory", "nunique"), days=("label", "size"), positive_rate=("label", "mean"))
        .round(4)
        .reset_index()
        .to_dict("records")
    )
    log.info("failure dataset %s: %d labelled days, positive rate %.3f", version, len(dataset), dataset["label"].mean())
    return {
        **simulated,
        "dataset_key": key,
        "dataset_uri": uri,
        "dataset_version": version,
        "rows": len(dataset),
        "positive_rate": float(dataset["label"].astype(float).mean()),
        "mix": mix,
    }


def train_failure_model(dataset: dict, storage: Storage, seed: int = 0) -> dict:
    """Fit on the training trajectories; log model, dataset and champion reference to an MLflow run."""
    import mlflow

    cfg = FailureConfig.model_validate(dataset["config"])
    table = _read_parquet(storage, dataset["dataset_key"])
    features = feature_names(cfg.features.trend_days)
    model, report = fit_failure_model(table, features, cfg, seed)
    failure_registry(cfg).configure()
    with mlflow.start_run(run_name=f"failure-model-{dataset['dataset_version']}") as run:
        mlflow.set_tags(
            {
                registry.KIND_TAG: registry.FAILURE_RUN,
                registry.DATASET_VERSION_TAG: dataset["dataset_version"],
                registry.SCORED_WITH_TAG: dataset["champion"],
            }
        )
        mlflow.log_params(
            {
                "kind": model.kind,
                "threshold": model.threshold,
                "horizon_days": cfg.failure.horizon_days,
                "tolerance": cfg.failure.tolerance,
                "trajectories": dataset["trajectories"],
                "dataset_version": dataset["dataset_version"],
                "train_rows": report["train_rows"],
                "seed": seed,
            }
        )
        mlflow.log_metrics({f"cv_auroc_{k}": v for k, v in report["cv_auroc"].items()})
        # the threshold's numbers on the training trajectories' out-of-fold scores (what it was chosen on)
        mlflow.log_metrics(
            {f"validation_{k}": v for k, v in report["validation"].items() if v is not None and k != "threshold"}
        )
        mlflow.log_metrics(
            {
                f"validation_visible_{k}": v
                for k, v in report["validation_visible"].items()
                if v is not None and k != "threshold"
            }
        )
        mlflow.log_dict(
            {
                "kind": model.kind,
                "features": model.features,
                "platt": list(model.platt),
                "threshold": model.threshold,
                "validation": report["validation"],
                "validation_visible": report["validation_visible"],
                "trend_days": cfg.features.trend_days,
                "config": cfg.model_dump(),
                "mix": dataset["mix"],
            },
            "failure_model.json",
        )
        mlflow.log_dict(json.loads(storage.read_bytes(dataset["reference_key"])), "champion_reference.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{dataset['dataset_version']}.parquet"
            path.write_bytes(storage.read_bytes(dataset["dataset_key"]))
            mlflow.log_artifact(str(path), "dataset")
        example = table[features].head(5).astype(float).fillna(0.0).to_numpy()
        registry.log_model(model.estimator, example)
    return {"run_id": run.info.run_id, **report}


def load_run_failure_model(models: registry.ModelRegistry, run_id: str) -> tuple[FailureModel, dict]:
    """The failure model logged in ``run_id`` (of ``models``, the failure model's registry) and the champion
    reference it was trained against."""
    import mlflow

    models.configure()
    root = mlflow.get_run(run_id).info.artifact_uri
    meta = mlflow.artifacts.load_dict(f"{root}/failure_model.json")
    reference = mlflow.artifacts.load_dict(f"{root}/champion_reference.json")
    estimator = mlflow.sklearn.load_model(models.run_model_uri(run_id))
    model = FailureModel(
        meta["kind"],
        estimator,
        meta["features"],
        tuple(meta["platt"]),
        meta["threshold"],
        meta={"trend_days": meta["trend_days"], "config": meta["config"]},
    )
    return model, reference


def load_failure_champion(cfg: FailureConfig) -> tuple[FailureModel, Any] | None:
    """``(FailureModel, VersionInfo)`` of the failure model's ``champion`` (``cfg.registered_name``), or None
    when none is registered."""
    models = failure_registry(cfg)
    version = models.version_by_alias(registry.CHAMPION)
    if version is None:
        return None
    return load_run_failure_model(models, version.run_id)[0], version


def failure_risk_today(
    signal_history: list[dict], load_champion: Callable[[], tuple[FailureModel, Any] | None]
) -> FailureRisk:
    """:func:`~churnguard.failure.score_failure_risk` with ``failure-model@champion``, which ``load_champion``
    returns (as :func:`load_failure_champion`; the day's :attr:`DayContext.failure_champion
    <churnguard.context.DayContext.failure_champion>`, loaded once). Never raises: without a registered model,
    or with a registry that cannot load it (``load_champion`` is called here), the risk is unavailable with
    the reason."""
    try:
        found = load_champion()
    except Exception as exc:  # a broken registry must not break the daily run
        log.warning("failure model could not be loaded: %s", exc)
        return unavailable_risk(f"failure model could not be loaded: {exc}")
    if found is None:
        return unavailable_risk("no failure-model@champion registered: run the churn_failure_model_training DAG")
    return score_failure_risk(signal_history, found)


def score_table(model: FailureModel, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a ``risk`` column."""
    return table.assign(risk=model.predict_risk(table))


def evaluate_failure_model(run_id: str, dataset: dict, storage: Storage) -> dict:
    """Held-out trajectories: the model next to the baselines, overall, on visible failures and on
    concept-only ones (every family equally weighted)."""
    import mlflow

    cfg = FailureConfig.model_validate(dataset["config"])
    model, _ = load_run_failure_model(failure_registry(FailureConfig.model_validate(dataset["config"])), run_id)
    table = score_table(model, _read_parquet(storage, dataset["dataset_key"]))
    held_out = table[table["split"] == "evaluation"]
    delay, horizon = cfg.failure.label_delay_days, cfg.failure.horizon_days
    scores = {"failure model": ("risk", model.threshold), **BASELINES}
    result = {"overall": {}, "visible": {}, "concept_only": {}}
    visible, concept_only = visible_rows(held_out), concept_only_rows(held_out)
    for name, (column, threshold) in scores.items():
        result["overall"][name] = alert_metrics(held_out, column, threshold, delay, horizon, weighted=True)
        result["visible"][name] = alert_metrics(visible, column, threshold, delay, horizon, weighted=True)
        result["concept_only"][name] = (
            alert_metrics(concept_only, column, threshold, delay, horizon, weighted=True) if len(concept_only) else {}
        )
    metrics = {
        "eval_auroc": result["overall"]["failure model"]["auroc"],
        "eval_visible_auroc": result["visible"]["failure model"]["auroc"],
        "eval_false_alarms_per_90d": result["overall"]["failure model"]["false_alarms_per_90d"],
    }
    with mlflow.start_run(run_id=run_id):
        mlflow.log_metrics({k: v for k, v in metrics.items() if v is not None})
        mlflow.log_dict(result, "evaluation.json")
    log.info("evaluation: %s", ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if v is not None))
    return {**metrics, "threshold": model.threshold, "kind": model.kind}


def register_failure_model(run_id: str, evaluation: dict, dataset: dict, store: MonitoringStore) -> dict:
    """Register the run's model as a new ``failure-model`` version and point ``champion`` at it, the way every
    alias moves (:func:`churnguard.promotion.assign_champion`: under the lock, recorded in ``store``)."""
    from churnguard.promotion import assign_champion

    cfg = FailureConfig.model_validate(dataset["config"])
    tags = registry.FailureVersionTags(
        kind=evaluation["kind"],
        threshold=evaluation["threshold"],
        eval_auroc=evaluation["eval_auroc"],
        dataset_version=dataset["dataset_version"],
        horizon_days=cfg.failure.horizon_days,
        tolerance=cfg.failure.tolerance,
    )
    models = failure_registry(cfg)
    version = models.register_run_model(run_id, tags)
    assign_champion(store, models, datetime.now(UTC).date().isoformat(), version.version, replace=True)
    return version.to_dict()


def train_all(
    storage: Storage,
    store: MonitoringStore,
    cfg: FailureConfig,
    dataset_cfg: DatasetConfig,
    model_cfg: ModelConfig,
    drift_cfg: DriftConfig,
    model_name: str | None,
    count: int | None = None,
    workers: int = 1,
) -> dict:
    """Every step in one call (what the DAG runs task by task); the arguments are
    :func:`simulate_trajectories`' and :func:`register_failure_model`'s ``store``."""
    dataset = build_dataset(
        simulate_trajectories(storage, cfg, dataset_cfg, model_cfg, drift_cfg, model_name, count, workers), storage
    )
    fit = train_failure_model(dataset, storage)
    evaluation = evaluate_failure_model(fit["run_id"], dataset, storage)
    return {
        "dataset": dataset,
        "fit": fit,
        "evaluation": evaluation,
        "version": register_failure_model(fit["run_id"], evaluation, dataset, store),
    }
