"""churnguard: keep a customer-churn model healthy in production.

The library is usable without Airflow: data and batch simulation (``churnguard.data``,
``churnguard.simulate``), storage (``churnguard.storage``), models (``churnguard.models``) and the MLflow
registry (``churnguard.registry``). The DAGs in ``dags/`` only wire these together.

Importing the package filters the third-party warnings listed in ``churnguard.quiet``, so every task, CLI
command and test logs our lines rather than other libraries' deprecations.
"""

from __future__ import annotations

from churnguard.quiet import silence_third_party_warnings

__version__ = "0.1.0"

silence_third_party_warnings()
