"""
### churn_bootstrap

Train the first churn model on the reference dataset and make it the **champion**.

`load_reference` → `fit_model` → `evaluate_model` → `register_model` → `set_champion`

* Re-running with the same dataset and seed trains nothing new: the identical registered version is reused.
* A different seed registers a new version and, unless `replace_champion` is set, leaves the champion
  where it is and says so in the `set_champion` log.
* The logic lives in `churnguard.training`; this file is wiring only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from churnguard_airflow.connections import use_connections


@dag(
    doc_md=__doc__,
    default_args={"pre_execute": use_connections},  # credentials from Airflow connections first
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["churnguard", "model"],
    params={
        "dataset": Param(
            "telco",
            type="string",
            title="Dataset",
            description="Dataset config name (include/churnguard/configs/datasets/NAME.yaml).",
        ),
        "seed": Param(
            0,
            type="integer",
            minimum=0,
            title="Seed",
            description="Random seed of the model; the same seed and data reproduce the same model.",
        ),
        "replace_champion": Param(
            False,
            type="boolean",
            title="Replace champion",
            description="Move the champion alias to the new version if one exists.",
        ),
    },
)
def churn_bootstrap():
    @task
    def load_reference(params: dict | None = None) -> dict:
        """Write the stratified reference splits to the data root; return their URIs and data version."""
        from churnguard.context import open_bootstrap
        from churnguard.training import prepare_reference

        return prepare_reference(open_bootstrap(params["dataset"]))

    @task
    def fit_model(reference: dict, params: dict | None = None) -> dict:
        """Train the pipeline (early stopping, threshold on validation) and log it to MLflow."""
        from churnguard.context import open_bootstrap
        from churnguard.training import fit_reference_model

        return fit_reference_model(open_bootstrap(reference["dataset"]), reference, seed=params["seed"])

    @task
    def evaluate_model(fit: dict, reference: dict) -> dict:
        """Test-split metrics, logged to the run."""
        from churnguard.context import open_bootstrap
        from churnguard.training import evaluate_run

        return evaluate_run(open_bootstrap(reference["dataset"]), fit["run_id"], reference)

    @task
    def register_model(fit: dict, metrics: dict, params: dict | None = None) -> dict:
        """Quality gate, then register as a version of `churn-model` (or reuse the identical one)."""
        from churnguard.context import open_bootstrap
        from churnguard.training import register_model

        return register_model(open_bootstrap(params["dataset"]), fit["run_id"], fit, metrics)

    @task
    def set_champion(version: dict, params: dict | None = None) -> dict:
        """Point `champion` at the version when there is none (or when asked to replace it)."""
        from churnguard.bootstrap import assign_champion
        from churnguard.context import open_bootstrap

        return assign_champion(open_bootstrap(params["dataset"]), version, replace=params["replace_champion"])

    reference = load_reference()
    fit = fit_model(reference)
    set_champion(register_model(fit, evaluate_model(fit, reference)))


churn_bootstrap()
