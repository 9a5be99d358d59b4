"""The MLflow model registry: log, register, alias (``champion``, ``challenger``, ``previous``), load.

Stages are deprecated in MLflow 3; aliases are the only pointers used. An alias is set only on a version
whose registration finished (status READY), so ``champion`` never points at nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from churnguard.models import TrainedModel
from churnguard.settings import get_settings

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
FINGERPRINT_TAG = "churnguard.fingerprint"
# Types inside the churn pipeline that the skops loader must be told to trust.
TRUSTED_TYPES = [
    "churnguard.models.NumericCleaner",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.core.Booster",
    "builtins.bytearray",
]


def configure_mlflow() -> str:
    """Point MLflow at the configured tracking/registry store and experiment; returns the experiment id."""
    import mlflow

    settings = get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_registry_uri(settings.mlflow_tracking_uri)
    experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    if experiment is None:
        try:
            mlflow.create_experiment(settings.mlflow_experiment, artifact_location=settings.mlflow_artifact_uri)
        except mlflow.exceptions.MlflowException:  # created concurrently by another task
            pass
        experiment = mlflow.get_experiment_by_name(settings.mlflow_experiment)
    # Always activate it: a run started on the Default experiment would put artifacts under ./mlruns.
    mlflow.set_experiment(experiment_id=experiment.experiment_id)
    return experiment.experiment_id


def client():
    from mlflow import MlflowClient

    configure_mlflow()
    return MlflowClient()


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    run_id: str
    tags: dict

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "tags": self.tags}


def _info(mv) -> VersionInfo:
    return VersionInfo(mv.name, int(mv.version), mv.run_id, dict(mv.tags or {}))


def version_by_alias(name: str, alias: str) -> VersionInfo | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return _info(client().get_model_version_by_alias(name, alias))
    except MlflowException:
        return None


def find_version(name: str, fingerprint: str) -> VersionInfo | None:
    """An existing version trained from exactly the same inputs (same fingerprint tag), if any."""
    from mlflow.exceptions import MlflowException

    try:
        found = client().search_model_versions(f"name = '{name}' and tag.`{FINGERPRINT_TAG}` = '{fingerprint}'")
    except MlflowException:
        return None
    return _info(min(found, key=lambda mv: int(mv.version))) if found else None


def register_run_model(run_id: str, name: str, tags: dict[str, str]) -> VersionInfo:
    """Register the model logged in ``run_id`` as a new version of ``name`` and wait until it is READY."""
    import mlflow

    configure_mlflow()
    model_uri = _run_model_uri(run_id)
    mv = mlflow.register_model(model_uri, name, await_registration_for=300,
                               tags={k: str(v) for k, v in tags.items()})
    if mv.status != "READY":
        raise RuntimeError(f"model {name} version {mv.version} registration ended as {mv.status}")
    return _info(mv)


def _run_model_uri(run_id: str) -> str:
    import mlflow

    models = mlflow.search_logged_models(filter_string=f"source_run_id = '{run_id}'", output_format="list")
    if not models:
        raise LookupError(f"run {run_id} has no logged model")
    return models[0].model_uri


def set_alias(name: str, alias: str, version: int) -> None:
    c = client()
    mv = c.get_model_version(name, str(version))
    if mv.status != "READY":
        raise RuntimeError(f"refusing to point '{alias}' at {name} v{version}: status {mv.status}")
    c.set_registered_model_alias(name, alias, str(version))
    log.info("alias %s -> %s v%s", alias, name, version)


def log_model(pipeline, input_example) -> str:
    """Log a fitted sklearn pipeline (skops format, with signature) in the active run; returns its URI."""
    import mlflow
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, pipeline.predict_proba(input_example)[:, 1])
    info = mlflow.sklearn.log_model(pipeline, name="model", signature=signature,
                                    input_example=input_example, serialization_format="skops",
                                    skops_trusted_types=TRUSTED_TYPES)
    return info.model_uri


def load_run_model(run_id: str) -> TrainedModel:
    """The trained model logged in ``run_id``: pipeline, threshold and features, all from the run."""
    import mlflow

    configure_mlflow()
    run = mlflow.get_run(run_id)
    features = mlflow.artifacts.load_dict(f"{run.info.artifact_uri}/features.json")["features"]
    pipeline = mlflow.sklearn.load_model(_run_model_uri(run_id))
    return TrainedModel(pipeline, float(run.data.params["threshold"]), features,
                        int(run.data.params["best_iteration"]))


def load_version_model(name: str, version: int) -> TrainedModel:
    return load_run_model(client().get_model_version(name, str(version)).run_id)


def load_alias_model(name: str, alias: str) -> tuple[TrainedModel, VersionInfo] | None:
    """The model an alias points at, with its version, or None when the alias is not set."""
    version = version_by_alias(name, alias)
    if version is None:
        return None
    return load_run_model(version.run_id), version


def json_tag(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
