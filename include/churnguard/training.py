"""Bootstrap of the churn model, as steps that hand each other URIs and run ids (never frames):

``prepare_reference`` -> ``fit_reference_model`` -> ``evaluate_run`` -> ``register_model`` ->
``churnguard.bootstrap.assign_champion`` (all of them in one call: ``churnguard.bootstrap.bootstrap``). Each
step is idempotent: the same dataset, seed and model config give the same fingerprint, and a fingerprint that
is already registered is reused instead of registered again. The steps are handed what they use
(:class:`Bootstrap`, built by the edge that runs them: the CLI, a DAG task, a test).

A registry that cannot answer raises ``registry.RegistryError`` at the step that asked: it is never read
as "no such version" (which would register a duplicate) or "no champion" (which would move it).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import pandas as pd

from churnguard import registry
from churnguard.config import DatasetConfig, DriftConfig, ModelConfig
from churnguard.data import data_version, load_reference, split_reference, target_array
from churnguard.dataroot import DataRoot
from churnguard.models import TrainedModel, evaluate, train_model
from churnguard.registry import ModelRegistry, VersionTags
from churnguard.store import MonitoringStore

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
PROFILE_ARTIFACT = "reference_profile.json"


@dataclass(frozen=True)
class Bootstrap:
    """What the bootstrap steps work with, opened by their edge (``churnguard.context.open_bootstrap``): the
    dataset's and the model's configs, the data root, the churn model's registry and the monitoring store
    (the champion moves under its alias lock, as a promotion does)."""

    dataset: DatasetConfig
    model: ModelConfig
    drift: DriftConfig
    root: DataRoot
    registry: ModelRegistry
    store: MonitoringStore

    def dataset_of(self, info: dict) -> DatasetConfig:
        """The dataset config of a reference ``info`` (a step result), which must be this bootstrap's."""
        if info["dataset"] != self.dataset.name:
            raise ValueError(
                f"reference of dataset {info['dataset']!r} handed to the bootstrap of {self.dataset.name!r}"
            )
        return self.dataset


def prepare_reference(boot: Bootstrap) -> dict:
    """Write the stratified reference splits of the dataset to the data root; returns their URIs + version."""
    cfg, root = boot.dataset, boot.root
    split = split_reference(load_reference(cfg), cfg)
    uris = {name: root.write_reference(cfg.name, name, getattr(split, name)) for name in SPLITS}
    info = {
        "dataset": cfg.name,
        "uris": uris,
        "data_version": data_version(split.train, split.validation),
        "rows": {name: len(getattr(split, name)) for name in SPLITS},
    }
    log.info("reference %s: %s rows, data version %s", cfg.name, info["rows"], info["data_version"])
    return info


def read_reference(info: dict, split: str, root: DataRoot) -> pd.DataFrame:
    return root.read_reference(info["dataset"], split)


def model_fingerprint(data_version: str, seed: int, model_cfg: ModelConfig) -> str:
    """Identity of a training run: same data, seed and model config give the same fingerprint."""
    payload = {"data": data_version, "seed": seed, "model": model_cfg.model_dump()}
    return hashlib.sha256(registry.json_tag(payload).encode()).hexdigest()[:16]


def fit_reference_model(boot: Bootstrap, info: dict, seed: int = 0) -> dict:
    """Train on the reference splits and log the run; reuses the run of an identical registered model.

    Raises ``registry.RegistryError`` when the fingerprint cannot be looked up (rather than train again).
    """
    import mlflow

    cfg, model_cfg = boot.dataset_of(info), boot.model
    fp = model_fingerprint(info["data_version"], seed, model_cfg)
    existing = boot.registry.find_version(fp)
    if existing is not None:
        log.info(
            "identical model already registered as %s v%d: reusing run %s",
            existing.name,
            existing.version,
            existing.run_id,
        )
        return {"run_id": existing.run_id, "fingerprint": fp, "reused_version": existing.version}
    train, val = read_reference(info, "train", boot.root), read_reference(info, "validation", boot.root)
    trained = train_model(train, val, cfg, model_cfg, random_state=seed)
    boot.registry.configure()
    with mlflow.start_run(run_name=f"bootstrap-{cfg.name}-seed{seed}") as run:
        mlflow.set_tags(
            {
                registry.FINGERPRINT_TAG: fp,
                registry.KIND_TAG: registry.BOOTSTRAP_RUN,
                registry.DATASET_TAG: cfg.name,
                registry.DATA_VERSION_TAG: info["data_version"],
            }
        )
        mlflow.log_params(
            {
                **{f"xgb_{k}": v for k, v in trained.params.items()},
                "dataset": cfg.name,
                "seed": seed,
                "data_version": info["data_version"],
                "threshold": round(trained.threshold, 6),
                "best_iteration": trained.best_iteration,
                "train_rows": len(train),
                "validation_rows": len(val),
            }
        )
        mlflow.log_dict(
            {
                "features": trained.features,
                "numeric": cfg.numeric,
                "binary": cfg.binary,
                "categorical": cfg.categorical,
            },
            "features.json",
        )
        mlflow.log_dict(trained.feature_importance(), "feature_importance.json")
        registry.log_model(trained.pipeline, train[trained.features].head(5))
        profile = log_reference_profile(trained, train, cfg, boot.drift, boot.root)
    return {
        "run_id": run.info.run_id,
        "fingerprint": fp,
        "reused_version": None,
        "threshold": trained.threshold,
        "profile_version": profile.version,
    }


def log_reference_profile(
    trained: TrainedModel, train: pd.DataFrame, cfg: DatasetConfig, drift_cfg: DriftConfig, root: DataRoot
):
    """Fit the drift reference profile of a model's training data; log it to the active MLflow run and
    write it to the data root's profiles (the same artifact in both places)."""
    import mlflow

    from churnguard.drift import fit_profile

    profile = fit_profile(
        train,
        cfg,
        drift_cfg,
        scores=trained.predict_proba(train),
        labels=target_array(train, cfg),
        importance=trained.feature_importance(),
    )
    payload = profile.to_dict()
    mlflow.log_dict(payload, PROFILE_ARTIFACT)
    root.write_profile(cfg.name, profile.version, json.dumps(payload).encode())
    return profile


def load_run_model(models: ModelRegistry, run_id: str) -> TrainedModel:
    """The churn model logged in ``run_id`` as a :class:`~churnguard.models.TrainedModel`."""
    logged = models.load_logged_model(run_id)
    return TrainedModel(logged.pipeline, logged.threshold, logged.features, logged.best_iteration)


def load_version_model(models: ModelRegistry, version: int) -> TrainedModel:
    return load_run_model(models, models.version_run_id(version))


def load_alias_model(models: ModelRegistry, alias: str) -> tuple[TrainedModel, registry.VersionInfo] | None:
    """The model an alias points at, with its version, or None when the alias is not set."""
    version = models.version_by_alias(alias)
    if version is None:
        return None
    return load_run_model(models, version.run_id), version


def load_run_profile(models: ModelRegistry, run_id: str) -> dict:
    """The reference profile logged with a model's run."""
    import mlflow

    models.configure()
    return mlflow.artifacts.load_dict(f"{mlflow.get_run(run_id).info.artifact_uri}/{PROFILE_ARTIFACT}")


def evaluate_run(boot: Bootstrap, run_id: str, info: dict) -> dict:
    """Test-split metrics of the run's model, logged to the run once (re-runs do not duplicate them)."""
    import mlflow

    cfg = boot.dataset_of(info)
    model = load_run_model(boot.registry, run_id)
    metrics = evaluate(model, read_reference(info, "test", boot.root), cfg)
    scalar = {f"test_{k}": v for k, v in metrics.items() if isinstance(v, float)}
    if "test_roc_auc" not in mlflow.get_run(run_id).data.metrics:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics(scalar)
            mlflow.log_dict(metrics, "test_metrics.json")
    log.info("test metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in scalar.items()))
    return metrics


@dataclass(frozen=True)
class QualityGate:
    min_roc_auc: float = 0.80

    def check(self, metrics: dict) -> None:
        auc = metrics.get("roc_auc")
        if auc is None or auc < self.min_roc_auc:
            raise ValueError(f"model failed its quality gate: test ROC AUC {auc} < {self.min_roc_auc}")


def register_model(boot: Bootstrap, run_id: str, fit: dict, metrics: dict, gate: QualityGate = QualityGate()) -> dict:
    """Register the run's model (after the quality gate), or return the identical version already there.

    The fingerprint is looked up again here, right before registering (training took a while), and
    ``ModelRegistry.register_run_model`` looks it up once more before each attempt, so a registration whose
    answer was lost and is retried does not leave a second version.
    """
    models = boot.registry
    name = models.name
    gate.check(metrics)
    existing = models.find_version(fit["fingerprint"])
    if existing is not None:
        log.info("%s v%d was trained from identical inputs: not registering a duplicate", name, existing.version)
        return {**existing.to_dict(), "created": False}
    tags = VersionTags(
        fingerprint=fit["fingerprint"],
        threshold=fit["threshold"],
        reference_auc=metrics["roc_auc"],
        reference_f1=metrics["f1"],
        trigger=registry.BOOTSTRAP_RUN,
    )
    version = models.register_run_model(run_id, tags)
    log.info("registered %s v%d from run %s", name, version.version, run_id)
    return {**version.to_dict(), "created": True}
