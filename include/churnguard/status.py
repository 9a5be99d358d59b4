"""What is deployed and what has landed: champion/challenger versions with their test metrics, and the
partitions in the data root. Backs ``churnguard status`` and the end of ``make demo``."""

from __future__ import annotations

from churnguard import registry
from churnguard.config import load_model_config
from churnguard.settings import get_settings
from churnguard.simulate import LABELS, LANDING
from churnguard.storage import open_storage


def project_status() -> dict:
    settings = get_settings()
    name = load_model_config().registered_name
    models = {}
    for alias in (registry.CHAMPION, registry.CHALLENGER, registry.PREVIOUS):
        version = registry.version_by_alias(name, alias)
        if version is not None:
            metrics = registry.client().get_run(version.run_id).data.metrics
            models[alias] = {"version": version.version, "run_id": version.run_id,
                             **{k.removeprefix("test_"): round(v, 4) for k, v in sorted(metrics.items())}}
    storage = open_storage()
    areas = {}
    for area in (LANDING, LABELS):
        days = storage.list_partitions(area)
        areas[area] = {"partitions": len(days), "first": days[0].isoformat() if days else None,
                       "last": days[-1].isoformat() if days else None, "uri": storage.uri(area)}
    return {"model": name, "models": models, "data": areas, "mlflow_tracking_uri": settings.mlflow_tracking_uri}


def format_status(status: dict) -> str:
    lines = [f"MLflow store: {status['mlflow_tracking_uri']}"]
    if not status["models"]:
        lines.append(f"{status['model']}: no champion registered yet (run churn_bootstrap)")
    for alias, info in status["models"].items():
        metrics = ", ".join(f"{k}={v}" for k, v in info.items() if k not in ("version", "run_id"))
        lines.append(f"{status['model']} @{alias}: v{info['version']} (run {info['run_id']}) {metrics}")
    for area, info in status["data"].items():
        span = f"{info['first']} .. {info['last']}" if info["partitions"] else "empty"
        lines.append(f"{area}: {info['partitions']} daily partitions, {span} at {info['uri']}")
    return "\n".join(lines)
