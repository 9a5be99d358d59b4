"""The churn pipeline: cleaning learned on train, quality on the real Telco test split, a second dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnguard.config import load_dataset_config, load_model_config
from churnguard.data import data_version, load_reference, split_reference, target_array
from churnguard.models import NumericCleaner, best_f1_threshold, dedupe_customers, evaluate, train_model

CFG = load_dataset_config("telco")
MODEL_CFG = load_model_config()


@pytest.fixture(scope="module")
def split():
    return split_reference(load_reference(CFG), CFG)


@pytest.fixture(scope="module")
def trained(split):
    return train_model(split.train, split.validation, CFG, MODEL_CFG)


def test_reference_has_7043_rows_stable_ids_and_stratified_splits(split):
    ref = load_reference(CFG)
    assert len(ref) == 7043 and ref["customer_id"].is_unique
    assert ref["customer_id"].iloc[0] == "TELCO-00001"
    rates = [target_array(part, CFG).mean() for part in (split.train, split.validation, split.test)]
    assert max(rates) - min(rates) < 0.01
    assert len(split.train) + len(split.held_out) == 7043


def test_model_reaches_the_auc_floor_on_the_telco_test_split(trained, split):
    metrics = evaluate(trained, split.test, CFG)
    assert metrics["roc_auc"] >= 0.82
    assert 0 < metrics["precision"] <= 1 and 0 < metrics["recall"] <= 1
    cm = metrics["confusion_matrix"]
    assert sum(cm.values()) == len(split.test)
    assert metrics["brier"] < 0.2


def test_threshold_maximises_f1_on_validation(trained, split):
    y = target_array(split.validation, CFG)
    scores = trained.predict_proba(split.validation)
    from sklearn.metrics import f1_score

    best = f1_score(y, scores >= trained.threshold)
    for other in (0.2, 0.3, 0.5, 0.6):
        assert best >= f1_score(y, scores >= other) - 1e-12
    assert trained.threshold == best_f1_threshold(y, scores)


def test_feature_importance_covers_every_input_column_and_sums_to_one(trained):
    importance = trained.feature_importance()
    assert set(importance) == set(CFG.features)
    assert sum(importance.values()) == pytest.approx(1.0)
    assert max(importance, key=importance.get) == "contract"


def test_cleaner_imputes_medians_and_clips_learned_iqr_range():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, np.nan], "c": list("abcde")})
    cleaner = NumericCleaner(["x"], iqr_factor=1.5).fit(train)
    out = cleaner.transform(pd.DataFrame({"x": [np.nan, 100.0, -100.0, np.inf], "c": list("wxyz")}))
    q1, q3 = 1.75, 3.25
    assert out["x"].tolist() == [2.5, q3 + 1.5 * (q3 - q1), q1 - 1.5 * (q3 - q1), 2.5]
    assert out["c"].tolist() == list("wxyz")


def test_dedupe_keeps_the_last_row_per_customer():
    df = pd.DataFrame({"customer_id": ["a", "b", "a"], "tenure": [1, 2, 3]})
    assert dedupe_customers(df, CFG).to_dict("list") == {"customer_id": ["b", "a"], "tenure": [2, 3]}


def test_single_class_training_data_is_rejected(split):
    only_no = split.train[split.train["churn"] == "No"]
    with pytest.raises(ValueError, match="train data has a single class"):
        train_model(only_no, split.validation, CFG, MODEL_CFG)


def test_data_version_changes_with_content(split):
    assert data_version(split.train) == data_version(split.train.copy())
    changed = split.train.copy()
    changed.loc[0, "tenure"] += 1
    assert data_version(changed) != data_version(split.train)


@pytest.mark.slow
def test_a_second_dataset_plugs_in_with_its_yaml_only():
    cfg = load_dataset_config("mlc_churn")
    split = split_reference(load_reference(cfg), cfg)
    model = train_model(split.train, split.validation, cfg, MODEL_CFG)
    assert evaluate(model, split.test, cfg)["roc_auc"] > 0.85


@pytest.mark.slow
def test_a_continued_model_keeps_its_base_and_learns_a_segment_whose_labels_flipped(trained, split):
    """Continuing the boosting (``init_model``) keeps the base's encoding and its trees up to its best
    iteration, and the new trees fitted to a few hundred rows whose ``Two year`` contracts churn the other way
    recover most of what the change cost the base."""
    from sklearn.metrics import roc_auc_score

    def flipped(rows: pd.DataFrame) -> pd.DataFrame:
        two_year = rows["contract"] == "Two year"
        churned = rows[CFG.target.column].astype(str) == CFG.target.positive
        other = next(v for v in rows[CFG.target.column].astype(str).unique() if v != CFG.target.positive)
        out = rows.copy()
        out.loc[two_year, CFG.target.column] = np.where(churned[two_year], other, CFG.target.positive)
        return out

    fit, val = flipped(split.validation.iloc[:300]), flipped(split.test.iloc[: len(split.test) // 2])
    test = flipped(split.test.iloc[len(split.test) // 2 :])
    continued = train_model(fit, val, CFG, MODEL_CFG, init_model=trained)

    base, more = (m.pipeline.named_steps["model"].get_booster() for m in (trained, continued))
    encoded = trained.pipeline[:-1].transform(test[CFG.features])
    import xgboost as xgb

    first = more[: trained.best_iteration + 1].predict(xgb.DMatrix(encoded), output_margin=True)
    assert np.allclose(first, base[: trained.best_iteration + 1].predict(xgb.DMatrix(encoded), output_margin=True))
    assert continued.best_iteration > trained.best_iteration  # trees were added, on top of the base's best
    y = target_array(test, CFG)
    before, after = (roc_auc_score(y, m.predict_proba(test)) for m in (trained, continued))
    from_scratch = roc_auc_score(y, train_model(fit, val, CFG, MODEL_CFG).predict_proba(test))
    assert after > before + 0.05 and after > from_scratch, (before, after, from_scratch)
