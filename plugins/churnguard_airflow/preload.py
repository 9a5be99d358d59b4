"""Import Airflow's task runner, churnguard and their heavy dependencies once, for processes that fork tasks.

Airflow's scheduler can start its LocalExecutor workers from a forkserver that imports a module list up
front (``[scheduler] mp_start_method = forkserver``,
``mp_forkserver_preload = churnguard_airflow.preload``): every task process forked from those workers
then starts with Airflow's task runner and DAG parser, pandas, scikit-learn, XGBoost, MLflow (with its
SQL stores), skops, Plotly, Great Expectations, churnguard and these operators imported, instead of
spending seconds on imports in every task. Only imports and in-memory set-up happen here: no
connection, file or thread.
"""

# ruff: noqa: I001  (churnguard is imported first on purpose)
from __future__ import annotations

import churnguard  # noqa: F401  first: its warning filters cover the imports below
import airflow.dag_processing.dagbag  # noqa: F401
import airflow.sdk.execution_time.task_runner  # noqa: F401
import alembic.runtime.migration  # noqa: F401
import great_expectations  # noqa: F401
import mlflow  # noqa: F401
import mlflow.sklearn  # noqa: F401
import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import mlflow.store.tracking.sqlalchemy_workspace_store  # noqa: F401
import plotly.graph_objects  # noqa: F401
import skops.io  # noqa: F401
import sqlalchemy.orm
import xgboost  # noqa: F401

from churnguard import daily, failure, retrain, validation  # noqa: F401
from churnguard.drift import drift_report  # noqa: F401
from churnguard_airflow import links, operators  # noqa: F401

sqlalchemy.orm.configure_mappers()  # MLflow's ORM mappers, configured once instead of in every task
