"""churn_model_rollback driven by `airflow dags test`: `previous` swaps champion and previous and records
why; a version that does not exist fails the run and leaves champion where it was."""

from __future__ import annotations

import re

import pytest

from churnguard import registry
from churnguard.store import open_store, schema
from tests.conftest import dag_test, with_home
from tests.registry_helpers import bootstrap, churn_registry

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("daily_dag")]

MODEL = "churn-model"


@pytest.fixture
def two_versions(churnguard_home, airflow_env) -> dict:
    """v1 trained with seed 0, then v2 (seed 1) made champion: champion=v2, previous=v1."""
    bootstrap("telco", seed=0)
    bootstrap("telco", seed=1, replace_champion=True)
    return with_home(airflow_env, churnguard_home)


def run_rollback(env: dict, **conf) -> tuple[str, str]:
    """Trigger the DAG with ``conf``; return the run's final state and log."""
    return dag_test(env, "churn_model_rollback", conf=conf)


def aliases() -> tuple[int, int]:
    return (
        churn_registry().version_by_alias(registry.CHAMPION).version,
        churn_registry().version_by_alias(registry.PREVIOUS).version,
    )


def test_rollback_to_previous_swaps_champion_and_previous_and_records_the_reason(two_versions):
    assert aliases() == (2, 1)

    state, log = run_rollback(two_versions, version="previous", reason="v2 mis-scores new contracts")

    assert state == "success"
    assert aliases() == (1, 2)
    (event,) = open_store().rows(schema.model_events, where={"event": "rolled_back"})
    assert event["ds"] == re.search(r"DagRun Finished: .*?logical_date=(\d{4}-\d\d-\d\d)", log)[1]
    assert (event["model_name"], event["model_version"], event["from_version"]) == (MODEL, 1, 2)
    assert event["reason"] == "v2 mis-scores new contracts"


def test_rollback_to_a_missing_version_fails_the_run_and_leaves_champion_unchanged(two_versions):
    state, log = run_rollback(two_versions, version="99", reason="typo in the version")

    assert state == "failed"
    assert re.search(r"cannot roll back churn-model to '99': .*99", log), log[-4000:]
    assert aliases() == (2, 1)
    assert open_store().rows(schema.model_events, where={"event": "rolled_back"}) == []
