"""Import churnguard and its heavy dependencies once, for processes that fork many short ones.

Pandas, scikit-learn, XGBoost, MLflow (with its SQL stores), skops, Plotly, Great Expectations and the
churnguard modules the daily run, the CLI and retraining use: seconds of imports that every forked child
then starts with. Only imports and in-memory set-up happen here: no connection, file or thread, so a fork
after it is safe. Imported by Airflow's task workers (``churnguard_airflow.preload``, which adds Airflow's
task runner) and by the test suite's warm interpreter (``tests/warm_python.py``).
"""

# ruff: noqa: I001  (churnguard is imported first on purpose)
from __future__ import annotations

import churnguard  # noqa: F401  first: its warning filters cover the imports below
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

from churnguard import (  # noqa: F401
    batches,
    cli,
    daily,
    failure,
    failure_training,
    promotion,
    registry,
    retrain,
    training,
    validation,
)
from churnguard.drift import drift_report  # noqa: F401
from churnguard.store import open_store  # noqa: F401

sqlalchemy.orm.configure_mappers()  # MLflow's ORM mappers, configured once instead of in every child
