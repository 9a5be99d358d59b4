"""Third-party warnings that tell a churnguard user nothing, filtered where they are raised.

A task log of ``churn_bootstrap`` was 1,165 of 1,268 lines of other libraries' warnings about their own code
(skops brushing against Airflow's deprecated modules while loading a model: ~1,160 lines per load), burying
the lines that say what happened to the model. Each filter names one warning: its category, the third-party
module it is attributed to and the start of its message, so a new warning, the same warning from another
module and every warning raised by churnguard itself still show. Add an entry only for a warning seen on our
code paths (``PYTHONWARNINGS=default churnguard run-days …``), with the reason it is safe to ignore.

``import churnguard`` installs the filters. Airflow imports DAG files, and pytest collects tests, inside
``warnings.catch_warnings()``, which drops filters installed meanwhile: where churnguard is first imported
there, call :func:`silence_third_party_warnings` again when the task (or the test session) starts.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple


class Ignored(NamedTuple):
    category: type[Warning]  # subclasses match too: SQLAlchemy's, pandas' and Airflow's warning classes
    module: str  # regex matched from the start of the module the warning is attributed to
    message: str  # regex matched from the start of the message (case-insensitive)


IGNORED = (
    # skops, loading a model, looks a function's name up in every loaded module; in an Airflow task those
    # include Airflow's deprecated alias modules, each warning about an attribute nobody asked for.
    Ignored(FutureWarning, r"^skops\.io\._utils$", r"The `airflow\.[\w.]+` (attribute )?is deprecated"),
    # MLflow's SQL store maps its tables with a loader strategy SQLAlchemy 2 deprecates: MLflow's code, not
    # our queries, and MLflow pins the SQLAlchemy it supports.
    Ignored(DeprecationWarning, r"^mlflow\.store\.", r"The ``noload`` loader strategy is deprecated"),
    # MLflow compares an input example's columns with a range, which pandas 3 deprecates; the example and the
    # signature it infers are right today.
    Ignored(DeprecationWarning, r"^mlflow\.models\.utils$", r"Operation with range is deprecated"),
    # A hint about pyfunc schema enforcement of integer columns: we load models with mlflow.sklearn, which
    # does not enforce the signature, and the pipeline's NumericCleaner handles missing values.
    Ignored(UserWarning, r"^mlflow\.types\.utils$", r"Hint: Inferred schema contains integer column"),
    # Great Expectations imports Python's internal regex modules, deprecated since 3.11 and still working.
    Ignored(DeprecationWarning, r"^great_expectations\.", r"module 'sre_(constants|parse)' is deprecated"),
)


def silence_third_party_warnings() -> None:
    """Put the :data:`IGNORED` filters in front of the others, ``PYTHONWARNINGS`` and ``-W`` included.

    Calling it again changes nothing: :func:`warnings.filterwarnings` replaces an identical filter.
    """
    for ignored in IGNORED:
        warnings.filterwarnings("ignore", message=ignored.message, category=ignored.category, module=ignored.module)
