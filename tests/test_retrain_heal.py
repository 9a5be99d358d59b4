"""Retraining that recovers: where the change is, which labelled days validate a challenger after it, and
what the challenger may be trained on. Pure functions on numbers shaped like the demo's (daily AUCs of
500 customers, good to about ±0.03)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnguard.retrain import REFERENCE_WEIGHT, change_point, post_change_split, training_candidates

DAYS = [f"2026-09-{d:02d}" for d in range(14, 30)]  # observed days 09-14 .. 09-29
BEFORE = [0.85, 0.83, 0.87, 0.84, 0.86, 0.82, 0.85, 0.86, 0.84, 0.85, 0.87, 0.83]  # 09-14 .. 09-25
AFTER = [0.60, 0.62, 0.58, 0.61]  # 09-26 .. 09-29: the concept changed on 09-26


def test_a_drop_in_the_daily_auc_puts_the_change_on_its_first_day():
    assert change_point(DAYS, BEFORE + AFTER, [], min_drop=0.05) == "2026-09-26"


def test_one_failing_day_is_enough_to_place_the_change():
    # the labels of the onset day just arrived: one day after the change, and it failed
    assert change_point(DAYS[:13], BEFORE + AFTER[:1], ["2026-09-26"], min_drop=0.05) == "2026-09-26"


def test_noise_around_a_stable_auc_is_no_change():
    rng = np.random.default_rng(3)
    assert change_point(DAYS, list(0.85 + rng.normal(0, 0.03, len(DAYS))), [], min_drop=0.05) is None


def test_a_measured_failure_without_a_visible_drop_starts_the_post_change_days_on_its_first_day():
    assert change_point(DAYS[:12], BEFORE, ["2026-09-24", "2026-09-25"], min_drop=0.05) == "2026-09-24"


def test_a_drop_found_after_the_first_failure_is_not_believed_over_the_failure():
    # the failure on 09-25 says the change came by then; a split on 09-26 would leave a failing day out
    assert change_point(DAYS, BEFORE + AFTER, ["2026-09-25"], min_drop=0.05) == "2026-09-25"


def test_the_recovery_of_a_new_champion_does_not_move_the_change():
    recovered = BEFORE + AFTER + [0.80, 0.81, 0.79]
    days = [*DAYS, "2026-09-30", "2026-10-01", "2026-10-02"]
    assert change_point(days, recovered, [], min_drop=0.05) == "2026-09-26"


def test_post_change_days_are_held_out_last_and_only_once_there_are_enough():
    post = ["2026-09-26", "2026-09-27"]
    assert post_change_split(post, holdout_days=5, min_days=3) is None
    assert post_change_split([*post, "2026-09-28"], 5, 3) == (post, ["2026-09-28"])
    twenty = [f"2026-10-{d:02d}" for d in range(1, 21)]
    train, holdout = post_change_split(twenty, 5, 3)
    assert holdout == twenty[-5:] and train == twenty[:-5]  # never more than holdout_days


def _rows(days: list[str], n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"customer_id": [f"{d}-{i}" for d in days for i in range(n)],
                         "tenure": rng.integers(0, 70, n * len(days)),
                         "observed_ds": np.repeat(days, n)})


def test_training_candidates_weigh_the_days_before_the_change_down_or_leave_them_out():
    reference = _rows(["ref"], 10, 0).drop(columns="observed_ds")
    before = _rows(["2026-09-20", "2026-09-25"], 4, 1)
    after = _rows(["2026-09-26", "2026-09-27"], 3, 2)
    candidates = training_candidates(reference, before, after)
    assert list(candidates) == ["window", "post_change_weighted", "recency", "post_change_only"]

    rows, weights = candidates["window"]
    assert len(rows) == 10 + 8 + 6 and set(weights) == {1.0} and "observed_ds" not in rows
    rows, weights = candidates["post_change_weighted"]
    assert list(weights) == [REFERENCE_WEIGHT] * 18 + [1.0] * 6
    rows, weights = candidates["recency"]  # a week back weighs half; the reference as much as the oldest day
    assert weights[-1] == 1.0 and weights[10] == 0.5 ** (7 / 7) and weights[0] == weights[10]
    rows, weights = candidates["post_change_only"]
    assert list(rows["customer_id"]) == list(after["customer_id"]) and len(weights) == 6


def test_the_change_point_sees_every_failure_measured_for_the_champion_not_only_todays(tmp_path):
    """Each day's performance step reports the failure days it measured; retraining must see them all (else the
    change point moves forward with each retrain), and only those measured while the champion was pinned."""
    from churnguard.config import load_monitoring_config
    from churnguard.performance import champion_failure_days
    from churnguard.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'monitoring.db'}")
    pinned = {"2026-10-01": 1, "2026-10-02": 1, "2026-10-03": 1, "2026-10-04": 2}
    measured = {"2026-10-01": ["2026-09-24"], "2026-10-02": ["2026-09-25"], "2026-10-03": [],
                "2026-10-04": ["2026-09-27"]}
    store.upsert("day_models", [{"ds": d, "champion_version": v, "challenger_version": None}
                                for d, v in pinned.items()])
    store.upsert("day_steps", [{"ds": d, "step": "performance", "result": {"measured_failure_days": f}}
                               for d, f in measured.items()])
    cfg = load_monitoring_config()

    assert champion_failure_days(store, "2026-10-03", 1, cfg) == ["2026-09-24", "2026-09-25"]
    assert champion_failure_days(store, "2026-10-04", 2, cfg) == ["2026-09-27"]
    assert champion_failure_days(store, "2026-10-01", 1, cfg) == ["2026-09-24"]  # nothing from later days
    assert change_point(DAYS[:12], BEFORE, champion_failure_days(store, "2026-10-03", 1, cfg), 0.05) == "2026-09-24"
