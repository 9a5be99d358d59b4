"""The churn model's bootstrap, whole: the steps of :mod:`churnguard.training`, then the champion's move.

The move is a promotion's (:func:`churnguard.promotion.assign_champion`: under the alias lock, recorded
first), so this module sits above both and neither imports the other.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from churnguard import promotion
from churnguard.training import Bootstrap, evaluate_run, fit_reference_model, prepare_reference, register_model


def assign_champion(boot: Bootstrap, version: dict, replace: bool = False) -> dict:
    """Make ``version`` the champion if there is none (or ``replace``); otherwise say what happened.

    "None" means MLflow answered that the alias does not exist; a failed read raises
    ``registry.RegistryError`` before any alias moves.
    """
    if version["name"] != boot.registry.name:
        raise ValueError(f"{version['name']} v{version['version']} handed to the registry of {boot.registry.name}")
    today = datetime.now(UTC).date().isoformat()
    champion, message = promotion.assign_champion(boot.store, boot.registry, today, version["version"], replace)
    return {"champion_version": champion.version if champion else None, "message": message}


def bootstrap(boot: Bootstrap, seed: int = 0, replace_champion: bool = False) -> dict:
    """All bootstrap steps in one call (what the ``churn_bootstrap`` DAG runs task by task)."""
    info = prepare_reference(boot)
    fit = fit_reference_model(boot, info, seed)
    metrics = evaluate_run(boot, fit["run_id"], info)
    version = register_model(boot, fit["run_id"], fit, metrics)
    champion = assign_champion(boot, version, replace_champion)
    return {"reference": info, "fit": fit, "metrics": metrics, "version": version, **champion}


def summary_json(result: dict) -> str:
    return json.dumps(result, indent=2, default=str)
