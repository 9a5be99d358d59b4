"""
### churn_failure_model_training

Train the **failure model** — P(the churn champion fails within the next `horizon` days) — on simulated
trajectories, and make it `failure-model@champion`.

`simulate_trajectories` → `build_dataset` → `train_model` → `evaluate_model` → `register_model`

* Every scenario family gets the same number of trajectories, with random intensities and onsets;
  simulated trajectories are cached under the churnguard home, so a re-run only simulates what is new,
  in `workers` processes, logging its progress (`make demo` shows those lines).
* The training table is stored as `failure/datasets/<version>.parquet` and logged to the MLflow run.
* The logic lives in `churnguard.failure_training`; this file is wiring only.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task

from churnguard_airflow.connections import use_connections


@dag(
    doc_md=__doc__,
    default_args={"pre_execute": use_connections},  # credentials from Airflow connections first
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["churnguard", "failure-model"],
    params={
        "n_trajectories": Param(
            864,
            type="integer",
            minimum=9,
            title="Number of trajectories",
            description="Simulated trajectories, split evenly over the nine scenario "
            "families (rounded up to a multiple of nine).",
        ),
        "horizon": Param(
            7,
            type="integer",
            minimum=1,
            maximum=30,
            title="Horizon (days)",
            description="Day t is labelled 'failure coming' when the champion fails on one of days t+1 … t+horizon.",
        ),
        "tolerance": Param(
            0.05,
            type="number",
            minimum=0,
            maximum=0.5,
            title="AUC tolerance",
            description="A day fails when the champion's AUC is confidently more than this "
            "below its reference AUC (or its F1 drops 10 % relative).",
        ),
        "workers": Param(
            2,
            type="integer",
            minimum=1,
            maximum=16,
            title="Simulation processes",
            description="Trajectories simulated in parallel (spawned processes; cached "
            "trajectories are read, not simulated).",
        ),
    },
)
def churn_failure_model_training():
    @task
    def simulate_trajectories(params: dict | None = None) -> dict:
        """Simulate the trajectory mix against the churn champion; store the per-day signals."""
        from churnguard.config import load_dataset_config, load_drift_config, load_model_config
        from churnguard.failure.config import load_failure_config
        from churnguard.failure_training import failure_overrides, simulate_trajectories
        from churnguard.storage import open_storage

        model_cfg = load_model_config()
        return simulate_trajectories(
            open_storage(),
            load_failure_config(failure_overrides(params["horizon"], params["tolerance"])),
            load_dataset_config(),
            model_cfg,
            load_drift_config(),
            model_cfg.registered_name,
            params["n_trajectories"],
            params["workers"],
        )

    @task
    def build_dataset(simulated: dict) -> dict:
        """Features from each day's signal history plus its failure label: the versioned training table."""
        from churnguard.failure_training import build_dataset
        from churnguard.storage import open_storage

        return build_dataset(simulated, open_storage())

    @task
    def train_model(dataset: dict) -> dict:
        """Logistic regression vs gradient boosting (grouped CV), calibrated; logged to MLflow."""
        from churnguard.failure_training import train_failure_model
        from churnguard.storage import open_storage

        return train_failure_model(dataset, open_storage())

    @task
    def evaluate_model(fit: dict, dataset: dict) -> dict:
        """Held-out trajectories: the model next to the single-signal baselines."""
        from churnguard.failure_training import evaluate_failure_model
        from churnguard.storage import open_storage

        return evaluate_failure_model(fit["run_id"], dataset, open_storage())

    @task
    def register_model(fit: dict, evaluation: dict, dataset: dict) -> dict:
        """Register as a version of `failure-model` and point `champion` at it."""
        from churnguard.failure_training import register_failure_model
        from churnguard.store import open_store

        return register_failure_model(fit["run_id"], evaluation, dataset, open_store())

    dataset = build_dataset(simulate_trajectories())
    fit = train_model(dataset)
    register_model(fit, evaluate_model(fit, dataset), dataset)


churn_failure_model_training()
