"""churnguard: keep a customer-churn model healthy in production.

The library is usable without Airflow: data and batch simulation (``churnguard.data``,
``churnguard.simulate``), storage (``churnguard.storage``), models (``churnguard.models``) and the MLflow
registry (``churnguard.registry``). The DAGs in ``dags/`` only wire these together.
"""

__version__ = "0.1.0"
