"""Retraining that recovers: where the change is, which labelled days validate a challenger after it, and
what the challenger may be trained on. Pure functions on numbers shaped like the demo's (daily AUCs of
500 customers, good to about ±0.03)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnguard.retrain import (
    REFERENCE_WEIGHT,
    best_candidate,
    change_point,
    post_change_split,
    refresh_due,
    training_candidates,
)

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


def test_a_champion_validated_after_a_change_is_due_a_refresh_each_time_its_post_change_labels_double():
    from datetime import date

    from churnguard.registry import TrainingWindow, VersionTags

    def learnt(change: date | None, holdout_to: date) -> VersionTags:
        """A champion's tags: validated on post-change days ``change``..``holdout_to`` (None: no change)."""
        window = TrainingWindow(date(2026, 8, 1), date(2026, 9, 20), date(2026, 9, 21), holdout_to, change)
        return VersionTags(window=window, post_change_from=change)

    learnt_three = learnt(date(2026, 9, 26), date(2026, 9, 28))  # 09-26..09-28 labelled
    days = pd.date_range("2026-10-01", "2026-12-31").date
    due = [d.isoformat() for d in days if refresh_due(learnt_three, d, 7, 28)]
    assert due == ["2026-10-08", "2026-10-14", "2026-10-26"]  # 6, 12 and 24 post-change days labelled; 48 > 28
    assert refresh_due(learnt_three, date(2026, 10, 8), 7, 28).endswith("from 3 labelled day(s); 6 are labelled now")
    learnt_window = learnt(date(2026, 9, 26), date(2026, 10, 9))  # 14 days: 28 is the window
    assert [d.isoformat() for d in days if refresh_due(learnt_window, d, 7, 28)] == ["2026-10-30"]
    assert not [d for d in days if refresh_due(learnt_window, d, 7, 27)]
    assert (
        refresh_due(learnt(None, date(2026, 9, 28)), date(2026, 10, 8), 7, 28) is None
    )  # not validated after a change


def _rows(days: list[str], n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": [f"{d}-{i}" for d in days for i in range(n)],
            "tenure": rng.integers(0, 70, n * len(days)),
            "observed_ds": np.repeat(days, n),
        }
    )


def test_training_candidates_weigh_the_days_before_the_change_down_or_leave_them_out():
    reference = _rows(["ref"], 10, 0).drop(columns="observed_ds")
    before = _rows(["2026-09-20", "2026-09-25"], 4, 1)
    after = _rows(["2026-09-26", "2026-09-27"], 3, 2)
    candidates = training_candidates(reference, before, after)
    assert list(candidates) == ["window", "post_change_weighted", "recency", "post_change_only"]

    rows, weights, _ = candidates["window"]
    assert len(rows) == 10 + 8 + 6 and set(weights) == {1.0} and "observed_ds" not in rows
    rows, weights, _ = candidates["post_change_weighted"]
    assert list(weights) == [REFERENCE_WEIGHT] * 18 + [1.0] * 6
    rows, weights, _ = candidates["recency"]  # a week back weighs half; the reference as much as the oldest day
    assert weights[-1] == 1.0 and weights[10] == 0.5 ** (7 / 7) and weights[0] == weights[10]
    rows, weights, init_model = candidates["post_change_only"]
    assert list(rows["customer_id"]) == list(after["customer_id"]) and len(weights) == 6 and init_model is None
    assert "champion_continued" not in candidates  # without a champion to continue


def test_the_candidate_chosen_is_the_best_one_the_overfit_gate_would_pass():
    aucs = {"window": 0.74, "post_change_weighted": 0.80, "recency": 0.78, "post_change_only": 0.79}
    gaps = {"window": 0.02, "post_change_weighted": 0.15, "recency": 0.04, "post_change_only": 0.11}
    assert best_candidate(aucs, gaps, max_overfit_gap=0.10) == "recency"  # the best, 0.80, overfits
    assert best_candidate(aucs, gaps, max_overfit_gap=0.20) == "post_change_weighted"
    assert best_candidate(aucs, gaps, max_overfit_gap=0.01) == "post_change_weighted"  # none passes: the gate says so


def test_the_change_point_sees_every_failure_measured_for_the_champion_not_only_todays(tmp_path):
    """Each day's performance step reports the failure days it measured; retraining must see them all (else the
    change point moves forward with each retrain), and only those measured while the champion was pinned."""
    from churnguard.config import load_monitoring_config
    from churnguard.performance import champion_failure_days
    from churnguard.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'monitoring.db'}")
    pinned = {"2026-10-01": 1, "2026-10-02": 1, "2026-10-03": 1, "2026-10-04": 2}
    measured = {
        "2026-10-01": ["2026-09-24"],
        "2026-10-02": ["2026-09-25"],
        "2026-10-03": [],
        "2026-10-04": ["2026-09-27"],
    }
    store.upsert(
        schema.day_models, [{"ds": d, "champion_version": v, "challenger_version": None} for d, v in pinned.items()]
    )
    store.upsert(
        schema.day_steps,
        [{"ds": d, "step": "performance", "result": {"measured_failure_days": f}} for d, f in measured.items()],
    )
    cfg = load_monitoring_config()

    assert champion_failure_days(store, "2026-10-03", 1, cfg) == ["2026-09-24", "2026-09-25"]
    assert champion_failure_days(store, "2026-10-04", 2, cfg) == ["2026-09-27"]
    assert champion_failure_days(store, "2026-10-01", 1, cfg) == ["2026-09-24"]  # nothing from later days
    assert change_point(DAYS[:12], BEFORE, champion_failure_days(store, "2026-10-03", 1, cfg), 0.05) == "2026-09-24"


# --- challengers judged on customers they were not trained on --------------------------------------------
from datetime import date, timedelta  # noqa: E402

import pytest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from churnguard.config import load_dataset_config, load_model_config  # noqa: E402
from churnguard.data import load_reference, split_reference, target_array  # noqa: E402
from churnguard.retrain import customer_hashes, train_on_window, trained_customers, unseen  # noqa: E402
from churnguard.store import schema  # noqa: E402

CFG = load_dataset_config("telco")


def test_unseen_leaves_out_exactly_the_rows_of_trained_customers():
    trained = trained_customers([pd.DataFrame({"customer_id": ["A", "B", "B"]})], CFG)
    assert trained.dtype == np.uint64 and len(trained) == 2 and list(trained) == sorted(trained)
    rows = pd.DataFrame({"customer_id": ["A", "C", "B", "D", "A"], "v": range(5)})
    assert list(unseen(rows, trained, CFG)["v"]) == [1, 3]
    assert unseen(rows, np.zeros(0, np.uint64), CFG) is rows
    assert np.isin(customer_hashes(pd.Series(["C"])), trained).sum() == 0


def _recurring_customers() -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Labelled days 09-01..09-10 whose customers (held-out Telco rows, under their own ids) each come back
    on a later day: the first 300 customers on 09-01..09-05 and again on 09-06..09-10, 300 others on the
    holdout days only. The reference: 1,500 training rows."""
    split = split_reference(load_reference(CFG), CFG)
    pool = split.held_out.sample(600, random_state=0).reset_index(drop=True)
    again, fresh = pool.iloc[:300], pool.iloc[300:]
    days = [f"2026-09-{d:02d}" for d in range(1, 11)]
    parts = [again.iloc[i::5].assign(observed_ds=day) for i, day in enumerate(days[:5])]
    parts += [pd.concat([again.iloc[i::5], fresh.iloc[i::5]]).assign(observed_ds=day) for i, day in enumerate(days[5:])]
    return pd.concat(parts, ignore_index=True), split.train.iloc[:1500], list(again["customer_id"])


def test_a_challenger_trained_on_days_with_customer_x_is_not_held_out_on_x():
    labelled, reference, again = _recurring_customers()
    trained = train_on_window(labelled, reference, date(2026, 9, 6), {}, CFG, load_model_config(), seed=0)
    holdout_ids = set(trained.holdout["customer_id"])
    assert holdout_ids and not holdout_ids & set(again)  # X trained on 09-01..09-05, not judged on 09-06..
    assert trained.holdout_seen_rows == 300 and len(trained.holdout) == 300
    assert np.isin(customer_hashes(pd.Series(again)), trained.trained_customers).all()
    # held out on everyone, as before, the challenger would be judged on customers whose labels it learnt
    everyone = labelled[labelled["observed_ds"] >= "2026-09-06"]
    y_all, y_new = target_array(everyone, CFG), target_array(trained.holdout, CFG)
    flattered = roc_auc_score(y_all, trained.model.predict_proba(everyone))
    assert flattered > roc_auc_score(y_new, trained.model.predict_proba(trained.holdout))


def test_a_holdout_of_customers_it_was_trained_on_only_is_no_holdout():
    labelled, reference, _ = _recurring_customers()
    only_again = labelled[
        labelled["customer_id"].isin(labelled.loc[labelled["observed_ds"] < "2026-09-06", "customer_id"])
    ]
    result = train_on_window(only_again, reference, date(2026, 9, 6), {}, CFG, load_model_config(), seed=0)
    assert result == (
        "not enough labelled data: 300 recent rows, 0 holdout rows of customers it was not trained on (300 left out)"
    )


def test_the_shadow_margin_leaves_out_the_challengers_training_customers(tmp_path):
    from churnguard.dataroot import DataRoot
    from churnguard.landing import simulate
    from churnguard.promotion import unseen_margin
    from churnguard.storage import open_storage

    root, ds = DataRoot(open_storage(tmp_path.as_uri())), date(2026, 9, 1)
    simulate(ds, 1, "none", rows_per_day=400, label_delay=2, seed=1, root=root, cfg=CFG)
    batch = root.read_batch(ds)
    labels = root.storage.read_partition("labels", ds + timedelta(days=2))
    y = target_array(labels, CFG)
    rng = np.random.default_rng(0)
    trained_ids = batch["customer_id"].iloc[::2]  # customer X: every other row of the day
    seen = batch["customer_id"].isin(trained_ids).to_numpy()
    # the challenger knows the labels of the customers it was trained on and guesses on the others
    challenger = np.where(seen, y + rng.normal(0, 0.1, len(y)), rng.random(len(y)))
    champion = rng.random(len(y)) * 0.5 + y * 0.1  # AUC about 0.68 on anyone
    root.write_scores(
        ds,
        pd.DataFrame(
            {
                "customer_id": batch["customer_id"],
                "champion_score": champion,
                "champion_version": 1,
                "challenger_score": challenger,
                "challenger_version": 2,
            }
        ),
    )
    stored = roc_auc_score(y, challenger) - roc_auc_score(y, champion)
    day = {"observed_ds": ds.isoformat(), "margin": stored, "measured_ds": (ds + timedelta(days=2)).isoformat()}
    kept = unseen_margin(root, CFG, day, trained_customers([batch[seen]], CFG), min_labels=50)
    expected = roc_auc_score(y[~seen], challenger[~seen]) - roc_auc_score(y[~seen], champion[~seen])
    assert kept["left_out"] == 200 and kept["margin"] == pytest.approx(expected)
    assert stored > 0.1 and kept["margin"] < 0  # what it learnt about X no longer wins it the day
    nobody = unseen_margin(root, CFG, day, customer_hashes(pd.Series(["someone else"])), min_labels=50)
    assert nobody == {"observed_ds": ds.isoformat(), "margin": stored}
    assert unseen_margin(root, CFG, day, trained_customers([batch], CFG), min_labels=50) is None


def test_shadow_wins_count_only_days_measured_on_customers_the_challenger_was_not_trained_on(tmp_path):
    from churnguard.config import load_monitoring_config
    from churnguard.dataroot import DataRoot
    from churnguard.landing import simulate
    from churnguard.promotion import shadow_wins
    from churnguard.storage import open_storage

    cfg = load_monitoring_config()  # shadow_days 3, min_labels 200
    root, first = DataRoot(open_storage(tmp_path.as_uri())), date(2026, 9, 1)
    days = [first + timedelta(days=i) for i in range(4)]
    simulate(first, 4, "none", rows_per_day=600, label_delay=1, seed=2, root=root, cfg=CFG)
    rng, performance, known = np.random.default_rng(1), [], []
    for i, ds in enumerate(days):
        batch = root.read_batch(ds)
        y = target_array(root.storage.read_partition("labels", ds + timedelta(days=1)), CFG)
        # on the last day the challenger meets 500 customers it was trained on and knows their labels
        seen = np.arange(len(y)) < (500 if i == 3 else 0)
        known += list(batch["customer_id"][seen])
        challenger = np.where(seen, y, 0.5 * rng.random(len(y)) + 0.15 * y)
        champion = 0.5 * rng.random(len(y)) + 0.1 * y
        root.write_scores(
            ds,
            pd.DataFrame(
                {
                    "customer_id": batch["customer_id"],
                    "champion_score": champion,
                    "champion_version": 1,
                    "challenger_score": challenger,
                    "challenger_version": 2,
                }
            ),
        )
        for role, scores, version in (("champion", champion, 1), ("challenger", challenger, 2)):
            performance.append(
                {
                    "observed_ds": ds.isoformat(),
                    "role": role,
                    "model_version": version,
                    "roc_auc": roc_auc_score(y, scores),
                    "labelled_rows": len(y),
                    "measured_ds": (ds + timedelta(days=1)).isoformat(),
                }
            )

    class Store:
        def rows(self, table, **_):
            return performance

    plain = shadow_wins(Store(), 2, cfg)
    assert [w["observed_ds"] for w in plain] == [d.isoformat() for d in days[1:]] and plain[-1]["margin"] > 0.2
    judged = shadow_wins(Store(), 2, cfg, trained_customers([pd.DataFrame({"customer_id": known})], CFG), root, CFG)
    # the last day keeps 100 unseen labels (< min_labels): it does not count, an earlier day does
    assert [w["observed_ds"] for w in judged] == [d.isoformat() for d in days[:3]]
    auc = {(r["observed_ds"], r["role"]): r["roc_auc"] for r in performance}
    assert judged == [
        {"observed_ds": d.isoformat(), "margin": auc[d.isoformat(), "challenger"] - auc[d.isoformat(), "champion"]}
        for d in days[:3]
    ]  # days without X: margins as stored
