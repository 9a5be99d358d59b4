"""The data-validation gate: a GX 1.x suite generated from the dataset config and reference profile.

Entry point: :func:`validate_batch` -> :class:`ValidationResult` (``status``, ``exit_code``,
``failures``, ``warnings``, ``expectations``: every expectation's :class:`Outcome`, ``to_json()``); the
day's page is rendered from the saved JSON by :func:`churnguard.validation.html.render_page`. Great
Expectations is imported only when used.
"""

from churnguard.validation.config import ValidationConfig, load_validation_config
from churnguard.validation.runner import (
    Issue,
    Outcome,
    UnreadableBatch,
    ValidationResult,
    validate_batch,
)
from churnguard.validation.suite import build_suite

__all__ = [
    "Issue",
    "Outcome",
    "UnreadableBatch",
    "ValidationConfig",
    "ValidationResult",
    "build_suite",
    "load_validation_config",
    "validate_batch",
]
