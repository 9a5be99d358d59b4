"""DAG integrity (every DAG imports fast, no import errors) and churn_bootstrap run by `airflow dags test`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, airflow_json, run_airflow, with_home

pytestmark = pytest.mark.integration


def test_every_dag_imports_without_errors_and_quickly(airflow_env, monkeypatch):
    assert airflow_json(airflow_env, "dags", "list-import-errors") == []
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.syspath_prepend(str(ROOT / "plugins"))  # as Airflow does for its plugins folder

    start = time.monotonic()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    elapsed = time.monotonic() - start
    assert bag.import_errors == {}
    assert "churn_bootstrap" in bag.dag_ids
    undocumented = [f"{dag.dag_id}.{t.task_id}" for dag in bag.dags.values() for t in dag.tasks if not t.doc_md]
    assert undocumented == [], "every task shows its documentation in the UI"
    assert all(dag.doc_md for dag in bag.dags.values())
    from churnguard_airflow.connections import use_connections

    without = [
        f"{dag.dag_id}.{t.task_id}"
        for dag in bag.dags.values()
        for t in dag.tasks
        if t._pre_execute_hook is not use_connections
    ]
    assert without == [], "every task takes its credentials from the Airflow connections first"
    assert elapsed < 10, f"parsing dags/ took {elapsed:.1f}s: heavy work at import"


def test_the_daily_graph_is_the_flow_of_the_day_and_days_overlap_only_until_ingest(monkeypatch):
    """Edges are the flow of the day (no date fan-out from run_settings), the branch edges are labelled, and a
    run validates (pinning the champion) only after the run of the day before has finished, so overlapping
    days keep their order."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.syspath_prepend(str(ROOT / "plugins"))
    dag = DagBag(dag_folder=str(ROOT / "dags" / "churn_daily_monitoring.py")).dags["churn_daily_monitoring"]
    edges = sum(len(t.upstream_task_ids) for t in dag.tasks)
    assert len(dag.tasks) == 16 and edges <= 20, (len(dag.tasks), edges)
    assert dag.max_active_runs >= 2
    upstream = {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}
    assert upstream["wait_for_previous_day"] == ["ingest"] and upstream["validate"] == ["wait_for_previous_day"]
    assert upstream["run_settings"] == [] and upstream["publish"] == ["promote"]
    labels = {dag.get_edge_info("route", t).get("label") for t in ("healthy", "alert", "retrain")}
    assert None not in labels and len(labels) == 3


def test_the_daily_dag_runs_the_step_registry_in_its_order_and_branches_on_the_verdicts(monkeypatch):
    """The DAG's day-step tasks are the registry's steps (same ids, an order the graph allows), each operator
    carries its step, every step's function returns its result type, and the branch tasks are the verdicts."""
    import typing

    from airflow.dag_processing.dagbag import DagBag

    from churnguard import daily
    from churnguard.results import Verdict
    from churnguard.steps import STEPS

    monkeypatch.syspath_prepend(str(ROOT / "plugins"))
    dag = DagBag(dag_folder=str(ROOT / "dags" / "churn_daily_monitoring.py")).dags["churn_daily_monitoring"]
    carried = {t.task_id: t.step for t in dag.tasks if getattr(t, "step", None) is not None}
    assert set(carried) == {s.name for s in STEPS} and all(carried[s.name] == s for s in STEPS)
    ordered = [s.name for s in STEPS]
    for step in STEPS:  # the registry's order is one the DAG may run them in: a step's upstream steps come earlier
        upstream = dag.get_task(step.name).get_flat_relative_ids(upstream=True) & set(ordered)
        assert upstream <= set(ordered[: ordered.index(step.name)]), step.name
        hints = typing.get_type_hints(step.function, vars(daily))
        assert step.function.__module__ == "churnguard.daily" and hints["return"] is step.result, step.name
    assert set(dag.get_task("route").downstream_task_ids) == {v.value for v in Verdict}


def test_dag_files_do_not_import_heavy_libraries_at_top_level():
    heavy = ("xgboost", "mlflow", "great_expectations", "sklearn", "pandas", "numpy", "scipy")
    for path in Path(ROOT / "dags").glob("*.py"):
        top_level = [line for line in path.read_text().splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in top_level if line.split()[1].split(".")[0] in heavy], path.name


def test_the_forkserver_preload_imports_the_task_stack_and_opens_nothing(airflow_env):
    """What every task process inherits from the forkserver: the heavy imports done, and no thread (a
    thread does not survive the fork)."""
    code = (
        "import sys, threading; import churnguard_airflow.preload; print(threading.active_count(), "
        "all(m in sys.modules for m in ('xgboost', 'mlflow', 'great_expectations', 'churnguard.daily')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**airflow_env, "PYTHONPATH": str(ROOT / "plugins")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-2:]
    assert out == ["1", "True"]


def test_churn_bootstrap_runs_in_airflow_and_sets_a_champion(airflow_env, churnguard_home):
    env = with_home(airflow_env, churnguard_home)
    result = run_airflow(env, "dags", "test", "churn_bootstrap", "-c", json.dumps({"seed": 0}))
    assert result.returncode == 0, result.stderr[-3000:]
    runs = airflow_json(env, "dags", "list-runs", "churn_bootstrap")
    assert runs and runs[0]["state"] == "success", runs
    from tests.registry_helpers import churn_registry

    champion = churn_registry().version_by_alias("champion")
    assert champion is not None and champion.version == 1
    assert churn_registry().client.get_run(champion.run_id).data.metrics["test_roc_auc"] >= 0.82
