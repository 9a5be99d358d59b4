"""The batch simulator: deterministic per (scenario, seed, date), and every scenario does what it says."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnguard.config import load_dataset_config
from churnguard.data import load_reference, split_reference, target_array
from churnguard.dataroot import DataRoot
from churnguard.models import train_model
from churnguard.simulate import BatchSimulator, Scenario, simulate
from churnguard.storage import open_storage

START = date(2026, 5, 1)
ONSET = date(2026, 5, 4)
CFG = load_dataset_config("telco")


@pytest.fixture(scope="module")
def sim() -> BatchSimulator:
    return BatchSimulator(CFG, rows_per_day=800, seed=3)


@pytest.fixture(scope="module")
def fixed_model():
    split = split_reference(load_reference(CFG), CFG)
    return train_model(split.train, split.validation, CFG)


def days(n: int, first: date = START) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def test_same_inputs_give_byte_identical_partitions_and_subranges_reproduce(tmp_path):
    full, part = open_storage((tmp_path / "a").as_uri()), open_storage((tmp_path / "b").as_uri())
    scenario = Scenario.parse("sudden+concept", onset=ONSET)
    simulate(START, 8, scenario, rows_per_day=100, seed=7, root=DataRoot(full))
    simulate(START + timedelta(days=4), 2, scenario, rows_per_day=100, seed=7, root=DataRoot(part))
    for ds in days(2, START + timedelta(days=4)):
        for area, when in (("landing", ds), ("labels", ds + timedelta(days=7))):
            key = f"{area}/ds={when.isoformat()}/part-00000.parquet"
            assert full.read_bytes(key) == part.read_bytes(key)
    other_seed = open_storage((tmp_path / "c").as_uri())
    simulate(START + timedelta(days=4), 1, scenario, rows_per_day=100, seed=8, root=DataRoot(other_seed))
    key = f"landing/ds={(START + timedelta(days=4)).isoformat()}/part-00000.parquet"
    assert other_seed.read_bytes(key) != full.read_bytes(key)


def test_labels_land_after_the_delay_and_match_the_landing_ids(tmp_path):
    storage = open_storage(tmp_path.as_uri())
    simulate(START, 3, "none", rows_per_day=50, label_delay=5, root=DataRoot(storage))
    assert storage.list_partitions("labels") == days(3, START + timedelta(days=5))
    landing = storage.read_partition("landing", START)
    labels = storage.read_partition("labels", START + timedelta(days=5))
    assert landing["customer_id"].is_unique and len(landing) == 50
    assert labels["customer_id"].tolist() == landing["customer_id"].tolist()
    assert set(labels["observed_ds"]) == {START.isoformat()}
    assert set(labels["churn"]) <= {"Yes", "No"}
    assert list(landing.columns) == ["customer_id", *CFG.features]


def test_batches_never_contain_training_rows(sim):
    train_ids = set(split_reference(load_reference(CFG), CFG).train["customer_id"])
    batch = sim.day(START, Scenario.parse("none")).landing
    source_ids = {cid.rsplit("-", 2)[0] for cid in batch["customer_id"]}
    assert source_ids and not source_ids & train_ids


@pytest.mark.parametrize("name", ["gradual+sudden+seasonal+new_category+concept", "class_balance"])
def test_days_simulated_at_once_are_row_for_row_the_days_one_at_a_time(sim, name):
    scenario = Scenario.parse(name, onset=ONSET, intensity=2.5)
    span = sim.days(days(8), scenario)
    assert list(span.offsets) == [800 * i for i in range(9)]
    for i, ds in enumerate(days(8)):
        one = sim.day(ds, scenario)
        pd.testing.assert_frame_equal(span.batch(i).landing, one.landing, check_exact=True)
        pd.testing.assert_frame_equal(span.batch(i).labels, one.labels, check_exact=True)
    shifted = span.batch(7).landing["monthly_charges"] != sim.day(days(8)[7], Scenario()).landing["monthly_charges"]
    assert shifted.any() or name == "class_balance"  # the effects did apply after the onset


def test_none_stays_within_noise_of_the_pool(sim):
    pool_mean = sim.pool["monthly_charges"].mean()
    pool_sd = sim.pool["monthly_charges"].std()
    for ds in days(5):
        batch = sim.day(ds, Scenario.parse("none")).landing
        z = (batch["monthly_charges"].mean() - pool_mean) / (pool_sd / np.sqrt(len(batch)))
        assert abs(z) < 4


def test_sudden_moves_monthly_charges_by_the_configured_amount_from_onset(sim):
    sudden = Scenario.parse("sudden", onset=ONSET)
    base = Scenario.parse("none")
    amount = CFG.scenarios.sudden.amount
    before = sim.day(ONSET - timedelta(days=1), sudden).landing
    assert before.equals(sim.day(ONSET - timedelta(days=1), base).landing)
    for ds in (ONSET, ONSET + timedelta(days=5)):
        shifted, plain = sim.day(ds, sudden).landing, sim.day(ds, base).landing
        assert np.allclose(shifted["monthly_charges"] - plain["monthly_charges"], amount)
    half = sim.day(ONSET, Scenario.parse("sudden", onset=ONSET, intensity=0.5)).landing
    assert np.allclose(half["monthly_charges"] - sim.day(ONSET, base).landing["monthly_charges"], amount / 2)


def test_gradual_shift_grows_over_the_ramp(sim):
    gradual = Scenario.parse("gradual", onset=ONSET)
    ramp = CFG.scenarios.gradual.ramp_days
    std = sim.train_stats.at["std", "monthly_charges"]
    shifts = []
    for offset in (0, ramp // 2, ramp + 3):
        ds = ONSET + timedelta(days=offset)
        delta = sim.day(ds, gradual).landing["monthly_charges"] - sim.day(ds, Scenario()).landing["monthly_charges"]
        shifts.append(float(delta.mean()))
    assert shifts[0] < shifts[1] < shifts[2]
    assert shifts[2] == pytest.approx(CFG.scenarios.gradual.shift_std * std, rel=1e-9)


def test_concept_lowers_a_fixed_models_auc_without_moving_features(sim, fixed_model):
    concept = Scenario.parse("concept", onset=ONSET)
    aucs = {}
    for name, scenario in (("none", Scenario()), ("concept", concept)):
        ys, ss = [], []
        for ds in days(4, ONSET):
            batch = sim.day(ds, scenario)
            ys.append(target_array(batch.labels, CFG))
            ss.append(fixed_model.predict_proba(batch.landing))
        aucs[name] = roc_auc_score(np.concatenate(ys), np.concatenate(ss))
    assert aucs["concept"] < aucs["none"] - 0.05
    assert sim.day(ONSET, concept).landing.equals(sim.day(ONSET, Scenario()).landing)


def test_seasonal_oscillates_with_the_configured_period(sim):
    seasonal = Scenario.parse("seasonal", onset=ONSET)
    period = CFG.scenarios.seasonal.period_days

    def shift(offset: int) -> float:
        ds = ONSET + timedelta(days=offset)
        return float((sim.day(ds, seasonal).landing["monthly_charges"]
                      - sim.day(ds, Scenario()).landing["monthly_charges"]).mean())

    assert shift(0) == pytest.approx(0.0, abs=1e-9)
    assert shift(period // 4) > 0 > shift(3 * period // 4)
    assert shift(period // 4) == pytest.approx(shift(period + period // 4), rel=1e-6)


def test_new_category_appears_only_after_onset_at_the_configured_rate(sim):
    spec = CFG.scenarios.new_category
    scenario = Scenario.parse("new_category", onset=ONSET)
    before = sim.day(ONSET - timedelta(days=1), scenario).landing
    after = sim.day(ONSET + timedelta(days=1), scenario).landing
    assert (before[spec.column] == spec.value).sum() == 0
    assert (after[spec.column] == spec.value).mean() == pytest.approx(spec.rate, abs=0.05)


def test_class_balance_moves_the_churn_rate_to_target(sim):
    scenario = Scenario.parse("class_balance", onset=ONSET)
    before = target_array(sim.day(ONSET - timedelta(days=1), scenario).labels, CFG).mean()
    after = target_array(sim.day(ONSET, scenario).labels, CFG).mean()
    assert before == pytest.approx(0.265, abs=0.05)
    assert after == pytest.approx(CFG.scenarios.class_balance.target_rate, abs=0.002)


def test_combination_applies_both_effects(sim):
    both = sim.day(ONSET, Scenario.parse("sudden+new_category", onset=ONSET)).landing
    plain = sim.day(ONSET, Scenario()).landing
    assert np.allclose(both["monthly_charges"] - plain["monthly_charges"], CFG.scenarios.sudden.amount)
    assert (both["payment_method"] == CFG.scenarios.new_category.value).any()


@pytest.mark.parametrize("name, message", [("foo", "unknown family"), ("", "unknown family"),
                                           ("sudden+bar", "unknown family")])
def test_bad_scenario_names_are_rejected(name, message):
    with pytest.raises(ValueError, match=message):
        Scenario.parse(name)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="days must be >= 1"):
        simulate(START, 0, root=DataRoot(open_storage(tmp_path.as_uri())))
    with pytest.raises(ValueError, match="intensity must be >= 0"):
        Scenario.parse("sudden", intensity=-1)
    with pytest.raises(ValueError, match="rows_per_day must be >= 1"):
        BatchSimulator(CFG, rows_per_day=0)
