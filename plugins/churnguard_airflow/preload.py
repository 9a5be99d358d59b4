"""Import Airflow's task runner, churnguard and their heavy dependencies once, for processes that fork tasks.

Airflow's scheduler can start its LocalExecutor workers from a forkserver that imports a module list up
front (``[scheduler] mp_start_method = forkserver``,
``mp_forkserver_preload = churnguard_airflow.preload``), and Celery workers import it too: every task
process forked from those workers then starts with Airflow's task runner and DAG parser, churnguard's
preload (:mod:`churnguard.preload`: pandas, scikit-learn, XGBoost, MLflow, skops, Plotly, Great
Expectations, churnguard) and these operators imported, instead of spending seconds on imports in every
task. Only imports and in-memory set-up happen here: no connection, file or thread.
"""

# ruff: noqa: I001  (churnguard's preload is imported first on purpose)
from __future__ import annotations

import churnguard.preload  # noqa: F401  first: its warning filters cover the imports below
import airflow.dag_processing.dagbag  # noqa: F401
import airflow.sdk.execution_time.task_runner  # noqa: F401
import sqlalchemy.orm

from churnguard_airflow import links, operators  # noqa: F401

sqlalchemy.orm.configure_mappers()  # Airflow's ORM mappers too, configured once instead of in every task
