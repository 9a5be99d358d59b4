"""churn_failure_model_training run end to end by `airflow dags test` on a small configuration."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from churnguard.settings import PACKAGE_DIR
from tests.conftest import airflow_json, run_airflow, with_home

pytestmark = pytest.mark.integration

SMALL = {
    "days": 30,
    "rows_per_day": 300,
    "onset_min": 15,
    "onset_max": 17,
    "intensity_min": 1.0,
    "intensity_max": 3.0,
    "warmup_days": 14,
}


@pytest.fixture
def small_config_dir(tmp_path):
    """The packaged configs, with short trajectories (intensities high enough that some fail)."""
    folder = tmp_path / "configs"
    shutil.copytree(PACKAGE_DIR / "configs", folder)
    path = folder / "failure.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["trajectories"].update(SMALL)
    path.write_text(yaml.safe_dump(cfg))
    return folder


def test_failure_model_training_dag_registers_a_champion(airflow_env, churnguard_home, small_config_dir, monkeypatch):
    env = with_home(airflow_env, churnguard_home, CHURNGUARD_CONFIG_DIR=str(small_config_dir))
    conf = {"n_trajectories": 18, "horizon": 5, "tolerance": 0.05}
    result = run_airflow(env, "dags", "test", "churn_failure_model_training", "-c", json.dumps(conf))
    assert result.returncode == 0, result.stderr[-3000:]
    runs = airflow_json(env, "dags", "list-runs", "churn_failure_model_training")
    assert runs and runs[0]["state"] == "success", runs

    monkeypatch.setenv("CHURNGUARD_CONFIG_DIR", str(small_config_dir))
    from churnguard.settings import get_settings
    from tests.registry_helpers import failure_registry

    get_settings.cache_clear()
    champion = failure_registry().version_by_alias("champion")
    assert champion is not None and champion.version == 1
    assert champion.tags.horizon_days == 5
    run = failure_registry().client.get_run(champion.run_id)
    assert 0.0 <= run.data.metrics["eval_auroc"] <= 1.0
    # the threshold's numbers on the training trajectories' out-of-fold scores sit next to the held-out ones
    assert run.data.metrics["validation_false_alarms_per_90d"] >= 0.0
    assert 0.0 <= run.data.metrics["validation_auroc"] <= 1.0
    assert any(key.startswith("failure/datasets/") for key in _data_keys(churnguard_home))

    # the daily path: the stored signal history of one simulated trajectory, scored by the champion
    from churnguard.failure.config import load_failure_config
    from churnguard.failure_training import failure_risk_today, load_failure_champion

    days = pd.read_parquet(next((churnguard_home / "data" / "failure" / "trajectories").rglob("*.parquet")))
    history = days[days["trajectory"] == days["trajectory"].iloc[0]].sort_values("day").to_dict("records")
    result = failure_risk_today(history, lambda: load_failure_champion(load_failure_config()))
    assert result.available is True and result.model_version == 1, result
    assert 0.0 <= result.risk <= 1.0 and len(result.top_drivers) == 3


def _data_keys(home) -> list[str]:
    root = home / "data"
    return [str(p.relative_to(root)) for p in root.rglob("*.parquet")]
