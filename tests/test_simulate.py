"""The batch simulator: deterministic per (scenario, seed, date), and every scenario does what it says."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnguard.config import load_dataset_config, load_model_config
from churnguard.data import load_reference, split_reference, target_array
from churnguard.dataroot import DataRoot
from churnguard.landing import simulate
from churnguard.models import train_model
from churnguard.simulate import BatchSimulator, Scenario
from churnguard.storage import open_storage

START = date(2026, 5, 1)
ONSET = date(2026, 5, 4)
CFG = load_dataset_config("telco")
MODEL_CFG = load_model_config()


@pytest.fixture(scope="module")
def sim() -> BatchSimulator:
    # the pool's rows: the exact counts below (a stratified churn rate, donor ids) are the pool's
    return BatchSimulator(CFG, rows_per_day=800, seed=3, customers="pool")


@pytest.fixture(scope="module")
def fixed_model():
    split = split_reference(load_reference(CFG), CFG)
    return train_model(split.train, split.validation, CFG, MODEL_CFG)


def days(n: int, first: date = START) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def test_same_inputs_give_byte_identical_partitions_and_subranges_reproduce(tmp_path):
    full, part = open_storage((tmp_path / "a").as_uri()), open_storage((tmp_path / "b").as_uri())
    scenario = Scenario.parse("sudden+concept", onset=ONSET)
    simulate(START, 8, scenario, rows_per_day=100, seed=7, root=DataRoot(full), cfg=CFG)
    simulate(START + timedelta(days=4), 2, scenario, rows_per_day=100, seed=7, root=DataRoot(part), cfg=CFG)
    for ds in days(2, START + timedelta(days=4)):
        for area, when in (("landing", ds), ("labels", ds + timedelta(days=7))):
            key = f"{area}/ds={when.isoformat()}/part-00000.parquet"
            assert full.read_bytes(key) == part.read_bytes(key)
    other_seed = open_storage((tmp_path / "c").as_uri())
    simulate(START + timedelta(days=4), 1, scenario, rows_per_day=100, seed=8, root=DataRoot(other_seed), cfg=CFG)
    key = f"landing/ds={(START + timedelta(days=4)).isoformat()}/part-00000.parquet"
    assert other_seed.read_bytes(key) != full.read_bytes(key)


def test_labels_land_after_the_delay_and_match_the_landing_ids(tmp_path):
    storage = open_storage(tmp_path.as_uri())
    simulate(START, 3, "none", rows_per_day=50, label_delay=5, root=DataRoot(storage), cfg=CFG)
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
        return float(
            (
                sim.day(ds, seasonal).landing["monthly_charges"] - sim.day(ds, Scenario()).landing["monthly_charges"]
            ).mean()
        )

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


@pytest.mark.parametrize(
    "name, message", [("foo", "unknown family"), ("", "unknown family"), ("sudden+bar", "unknown family")]
)
def test_bad_scenario_names_are_rejected(name, message):
    with pytest.raises(ValueError, match=message):
        Scenario.parse(name)


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="days must be >= 1"):
        simulate(START, 0, root=DataRoot(open_storage(tmp_path.as_uri())), cfg=CFG)
    with pytest.raises(ValueError, match="intensity must be >= 0"):
        Scenario.parse("sudden", intensity=-1)
    with pytest.raises(ValueError, match="rows_per_day must be >= 1"):
        BatchSimulator(CFG, rows_per_day=0)
    with pytest.raises(ValueError, match="customers must be 'pool' or 'synthetic'"):
        BatchSimulator(CFG, customers="resampled")
    with pytest.raises(ValueError, match="customers"):
        CFG.simulation.model_validate({"customers": "resampled"})


# --- new customers (simulation.customers: synthetic) ----------------------------------------------------
SYNTHETIC = CFG.model_copy(update={"simulation": CFG.simulation.model_copy(update={"customers": "synthetic"})})
# The stated tolerance of the synthetic customers against the held-out pool they are fitted to, on 40,000
# drawn rows (measured at bandwidth 0.3, resample_rate 0.05: KS 0.008, frequencies 0.004, correlations 0.047).
KS_MAX, FREQUENCY_MAX, CORRELATION_MAX = 0.02, 0.01, 0.06


@pytest.fixture(scope="module")
def synth() -> BatchSimulator:
    return BatchSimulator(SYNTHETIC, rows_per_day=800, seed=3)


def _with_labels(span) -> pd.DataFrame:
    return span.landing.assign(churn=span.labels["churn"].to_numpy())


def _encoded(df: pd.DataFrame) -> pd.DataFrame:
    """Numeric and binary columns, categorical levels one-hot, and the label: what the correlations cover."""
    onehot = pd.get_dummies(df[CFG.categorical].astype(object), dtype=float)
    return pd.concat(
        [
            df[[*CFG.numeric, *CFG.binary]].astype(float),
            onehot,
            pd.Series(target_array(df, CFG), index=df.index, name="churn", dtype=float),
        ],
        axis=1,
    )


def test_synthetic_customers_keep_the_pools_marginals_and_correlations_within_tolerance():
    from scipy.stats import ks_2samp

    sim = BatchSimulator(SYNTHETIC, rows_per_day=1000, seed=5)
    drawn, pool = _with_labels(sim.days(days(40), Scenario())), sim.pool
    for col in CFG.numeric:
        assert ks_2samp(drawn[col].dropna(), pool[col].dropna()).statistic <= KS_MAX, col
        assert drawn[col].isna().mean() == pytest.approx(pool[col].isna().mean(), abs=0.002), col
    for col in [*CFG.binary, *CFG.categorical, "churn"]:
        gap = drawn[col].value_counts(normalize=True).sub(pool[col].value_counts(normalize=True), fill_value=0)
        assert gap.abs().max() <= FREQUENCY_MAX, col
    a, b = _encoded(drawn), _encoded(pool)
    assert list(a.columns) == list(b.columns)  # no level appears that the pool lacks, none is lost
    assert np.nanmax(np.abs(a.corr().to_numpy() - b.corr().to_numpy())) <= CORRELATION_MAX
    # the strongest relations are there: tenure with total charges, fiber with the monthly charges
    assert a["tenure"].corr(a["total_charges"]) == pytest.approx(b["tenure"].corr(b["total_charges"]), abs=0.03)


def test_synthetic_customers_are_new_with_ids_of_their_own(synth):
    pool_ids = set(synth.pool["customer_id"])
    span = synth.days(days(5), Scenario())
    ids = span.landing["customer_id"]
    assert ids.is_unique and ids.str.startswith("TELCO-N3-").all() and not set(ids) & pool_ids
    assert list(ids[:2]) == ["TELCO-N3-20260501-00000", "TELCO-N3-20260501-00001"]
    key = lambda df: pd.util.hash_pandas_object(df[CFG.features], index=False)  # noqa: E731
    assert key(span.landing).isin(set(key(synth.pool))).mean() < 0.01  # hardly any row is a pool row again
    # "No internet service" stays consistent across the add-on columns (redraws are given the parent's value)
    addons = ["online_security", "online_backup", "device_protection", "tech_support", "streaming_tv"]
    none = span.landing[addons].eq("No internet service")
    assert (none.all(axis=1) | ~none.any(axis=1)).mean() > 0.99
    assert (none.all(axis=1) == span.landing["internet_service"].eq("No")).mean() > 0.99


@pytest.mark.parametrize("name", ["gradual+sudden+seasonal+new_category+concept", "class_balance"])
def test_synthetic_days_at_once_are_row_for_row_the_days_one_at_a_time(synth, name):
    scenario = Scenario.parse(name, onset=ONSET, intensity=2.5)
    span = synth.days(days(6), scenario)
    for i, ds in enumerate(days(6)):
        one = synth.day(ds, scenario)
        pd.testing.assert_frame_equal(span.batch(i).landing, one.landing, check_exact=True)
        pd.testing.assert_frame_equal(span.batch(i).labels, one.labels, check_exact=True)


def test_synthetic_subranges_reproduce_byte_identically(tmp_path):
    full, part = open_storage((tmp_path / "a").as_uri()), open_storage((tmp_path / "b").as_uri())
    scenario = Scenario.parse("sudden+concept", onset=ONSET)
    assert (
        simulate(START, 6, scenario, rows_per_day=100, seed=7, root=DataRoot(full), cfg=SYNTHETIC).customers
        == "synthetic"
    )
    simulate(START + timedelta(days=4), 2, scenario, rows_per_day=100, seed=7, root=DataRoot(part), cfg=SYNTHETIC)
    for ds in days(2, START + timedelta(days=4)):
        for area, when in (("landing", ds), ("labels", ds + timedelta(days=7))):
            key = f"{area}/ds={when.isoformat()}/part-00000.parquet"
            assert full.read_bytes(key) == part.read_bytes(key)


@pytest.mark.slow
def test_boosted_labels_keep_a_churn_rule_a_logistic_regression_loses():
    cfg = load_dataset_config("mlc_churn")
    assert cfg.simulation.label_model == "boosting"
    split = split_reference(load_reference(cfg), cfg)
    model = train_model(split.train, split.validation, cfg, MODEL_CFG)

    def drawn(**update) -> tuple[float, float]:
        sim = BatchSimulator(
            cfg.model_copy(update={"simulation": cfg.simulation.model_copy(update=update)}), rows_per_day=1000, seed=3
        )
        span = sim.days(days(8), Scenario())
        y = target_array(span.labels, cfg)
        return float(y.mean()), float(roc_auc_score(y, model.predict_proba(span.landing)))

    (pool_rate, pool_auc), (rate, auc) = drawn(customers="pool"), drawn(customers="synthetic")
    # measured: pool 0.911, boosted labels 0.885, logistic labels 0.723 (the rule lost: every day "fails")
    assert auc > pool_auc - 0.04 and rate == pytest.approx(pool_rate, abs=0.015)
    assert drawn(customers="synthetic", label_model="logistic")[1] < pool_auc - 0.1
    with pytest.raises(ValueError, match="label_model"):
        cfg.simulation.model_validate({"label_model": "forest"})


def test_synthetic_labels_follow_the_features_and_the_scenarios(synth, fixed_model):
    base = Scenario()
    ys, ss = [], []
    for ds in days(4):
        batch = synth.day(ds, base)
        ys.append(target_array(batch.labels, CFG))
        ss.append(fixed_model.predict_proba(batch.landing))
    y = np.concatenate(ys)
    assert y.mean() == pytest.approx(synth._y.mean(), abs=0.03)
    assert 0.78 < roc_auc_score(y, np.concatenate(ss)) < 0.92  # a model of the real customers ranks the new ones
    balance = Scenario.parse("class_balance", onset=ONSET)
    after = np.concatenate([target_array(synth.day(ds, balance).labels, CFG) for ds in days(4, ONSET)])
    assert after.mean() == pytest.approx(CFG.scenarios.class_balance.target_rate, abs=0.03)
    sudden = Scenario.parse("sudden", onset=ONSET)
    shifted, plain = synth.day(ONSET, sudden), synth.day(ONSET, base)
    assert np.allclose(
        shifted.landing["monthly_charges"] - plain.landing["monthly_charges"], CFG.scenarios.sudden.amount
    )
    assert shifted.labels.equals(plain.labels)  # a covariate shift: the labels stay
