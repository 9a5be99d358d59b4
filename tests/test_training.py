"""Bootstrap against a real MLflow SQLite store: registration, aliases, idempotency, quality gate."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from churnguard import registry, training
from churnguard.bootstrap import assign_champion
from churnguard.context import open_bootstrap
from churnguard.registry import VersionTags
from churnguard.storage import open_storage
from churnguard.store import schema
from churnguard.training import (
    QualityGate,
    evaluate_run,
    fit_reference_model,
    load_run_profile,
    prepare_reference,
    register_model,
)
from tests.registry_helpers import bootstrap, churn_registry

pytestmark = pytest.mark.integration


def test_bootstrap_registers_a_champion_with_signature_metrics_and_data_version(churnguard_home):
    result = bootstrap("telco", seed=0)
    assert result["version"]["version"] == 1 and result["champion_version"] == 1
    champion = churn_registry().version_by_alias("champion")
    assert champion.version == 1
    run = churn_registry().client.get_run(champion.run_id)
    assert run.data.metrics["test_roc_auc"] >= 0.82
    assert run.data.params["data_version"] == result["reference"]["data_version"]
    model_info = mlflow.models.get_model_info("models:/churn-model@champion")
    assert model_info.signature is not None and "tenure" in model_info.signature.inputs.input_names()
    requirements = mlflow.pyfunc.get_model_dependencies("models:/churn-model@champion")
    pinned = {line.split("==")[0] for line in Path(requirements).read_text().split()}
    assert pinned == {"mlflow", *registry.MODEL_PACKAGES}  # named, not inferred (which also caught pytest)
    model, version = training.load_alias_model(churn_registry(), "champion")
    assert model.threshold == pytest.approx(result["fit"]["threshold"], abs=1e-6)
    assert version.tags.threshold == pytest.approx(model.threshold, abs=1e-6)
    assert version.tags.trigger == "bootstrap" and version.tags.reference_auc == pytest.approx(
        result["metrics"]["roc_auc"]
    )
    assert training.load_alias_model(churn_registry(), "challenger") is None
    assert str(churnguard_home) in run.info.artifact_uri
    profile = load_run_profile(churn_registry(), champion.run_id)
    stored = json.loads(open_storage().read_bytes(f"reference/telco/profiles/{profile['version']}.json"))
    assert stored == profile and set(profile["numeric"]) == {"tenure", "monthly_charges", "total_charges"}


def test_rerun_reuses_the_identical_version_and_another_seed_does_not_steal_champion():
    bootstrap("telco", seed=0)
    again = bootstrap("telco", seed=0)
    assert again["version"]["created"] is False and again["version"]["version"] == 1
    assert len(churn_registry().client.search_model_versions("name = 'churn-model'")) == 1
    other = bootstrap("telco", seed=1)
    assert other["version"]["version"] == 2 and other["champion_version"] == 1
    assert "already has champion v1; registered v2 without moving it" in other["message"]
    replaced = assign_champion(open_bootstrap("telco"), other["version"], replace=True)
    assert replaced["champion_version"] == 2
    assert churn_registry().version_by_alias("previous").version == 1
    # moved like a promotion (recorded, done) but no model event: a bootstrap's champion is "registered"
    moves = open_bootstrap().store.rows(schema.alias_moves, order_by="id")
    assert [(m["event"], m["to_version"], m["from_version"], m["state"]) for m in moves] == [
        ("assigned", 1, None, "done"),
        ("assigned", 2, 1, "done"),
    ]
    assert open_bootstrap().store.rows(schema.model_events) == []


def test_a_model_failing_the_quality_gate_is_not_registered():
    boot = open_bootstrap("telco")
    info = prepare_reference(boot)
    fit = fit_reference_model(boot, info, seed=0)
    metrics = evaluate_run(boot, fit["run_id"], info)
    with pytest.raises(ValueError, match="failed its quality gate"):
        register_model(boot, fit["run_id"], fit, metrics, QualityGate(min_roc_auc=0.99))
    assert churn_registry().client.search_model_versions("name = 'churn-model'") == []
    assert churn_registry().version_by_alias("champion") is None


def test_alias_is_refused_for_a_missing_version():
    bootstrap("telco", seed=0)
    with pytest.raises(Exception, match="7"):
        churn_registry().set_alias("champion", 7)
    assert churn_registry().version_by_alias("champion").version == 1


def test_a_missing_alias_model_or_version_is_absent_on_the_sqlite_store():
    assert churn_registry().version_by_alias("champion") is None  # no such model
    churn_registry().client.create_registered_model("churn-model")
    assert churn_registry().version_by_alias("champion") is None  # no such alias
    assert churn_registry().find_version("0123456789abcdef") is None
    with pytest.raises(LookupError, match="churn-model has no version 7"):
        churn_registry().set_alias("champion", 7)  # a definite "no such version": not retried


def test_a_failing_registry_read_raises_instead_of_moving_the_champion_or_training(monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    first = bootstrap("telco", seed=0)
    second = churn_registry().register_run_model(first["fit"]["run_id"], VersionTags())
    boot = open_bootstrap("telco")

    def broken(*args, **kwargs):
        raise MlflowException("(sqlite3.OperationalError) database is locked")  # INTERNAL_ERROR: transient

    with monkeypatch.context() as patch:
        patch.setattr(registry, "RETRY_BACKOFF_S", 0.0)
        patch.setattr(MlflowClient, "get_model_version_by_alias", broken)
        patch.setattr(MlflowClient, "search_model_versions", broken)
        with pytest.raises(registry.RegistryError, match="get_model_version_by_alias.*after 4 attempts: .*locked"):
            assign_champion(boot, second.to_dict())
        with pytest.raises(registry.RegistryError, match="search_model_versions"):
            fit_reference_model(boot, first["reference"], seed=1)

    assert churn_registry().version_by_alias("champion").version == 1
    assert len(churn_registry().client.search_model_versions("name = 'churn-model'")) == 2


def test_a_refused_registry_call_is_an_error_at_once_not_retried(monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    def denied(*args, **kwargs):
        raise MlflowException("user may not read churn-model", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(MlflowClient, "get_model_version_by_alias", denied)
    with pytest.raises(
        registry.RegistryError,
        match=r"failed get_model_version_by_alias\(churn-model, champion\) "
        r"after 1 attempt: user may not read churn-model$",
    ):
        churn_registry().version_by_alias("champion")
