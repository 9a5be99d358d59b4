"""The failure model's building blocks: failure labels, the trajectory split, features, the scorer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from churnguard.config import ConfigError, load_drift_config, load_model_config
from churnguard.failure import (
    day_failure,
    failure_features,
    failure_labels,
    feature_frame,
    label_day_metrics,
    load_failure_config,
    score_failure_risk,
)
from churnguard.failure.config import FailureDefinition
from churnguard.failure.evaluation import validation_metrics
from churnguard.failure.features import FREE, LABEL_FREE, MATURED, SIGNED, feature_names, monotone_directions
from churnguard.failure.labels import delong_auc, midranks
from churnguard.failure.model import (
    FailureModel,
    MonotoneLogistic,
    _estimator,
    calibrated_threshold,
    fit_failure_model,
)
from churnguard.failure.trajectories import FAMILIES, trajectory_specs

DRIFT = load_drift_config()
MODEL_CFG = load_model_config()
RULES = FailureDefinition(tolerance=0.05, f1_relative_drop=0.10, min_labels=200, min_class_count=20)


def _day(n: int, auc_signal: float, seed: int = 0, churn: float = 0.26) -> tuple[np.ndarray, np.ndarray]:
    """``n`` labelled customers whose scores separate the classes by ``auc_signal`` standard deviations."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < churn).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + auc_signal * y - 1)))
    return y, scores


# --- failure labels ------------------------------------------------------------------------------------
def test_a_day_fails_when_its_auc_is_confidently_below_reference_minus_tolerance():
    y, s = _day(1000, auc_signal=0.6)  # AUC about 0.66
    metrics = label_day_metrics(y, s, threshold=0.3)
    assert day_failure(metrics, reference_auc=0.85, reference_f1=metrics["f1"], cfg=RULES) is True


def test_a_healthy_day_does_not_fail():
    y, s = _day(1000, auc_signal=1.5)
    metrics = label_day_metrics(y, s, threshold=0.3)
    assert day_failure(metrics, metrics["roc_auc"], metrics["f1"], RULES) is False


def test_a_drop_within_sampling_noise_is_not_a_failure():
    y, s = _day(250, auc_signal=1.5)
    metrics = label_day_metrics(y, s, threshold=0.3)
    # point estimate 0.06 under the reference, but 250 labels cannot confirm a drop beyond 0.05
    assert day_failure(metrics, metrics["roc_auc"] + 0.06, metrics["f1"], RULES) is False


def test_a_day_with_too_few_labels_has_no_failure_status():
    y, s = _day(150, auc_signal=0.0)
    assert day_failure(label_day_metrics(y, s, 0.3), 0.85, 0.64, RULES) is None


def test_a_day_with_too_few_of_one_class_has_no_failure_status():
    y, s = _day(400, auc_signal=0.0, churn=0.03)
    assert day_failure(label_day_metrics(y, s, 0.3), 0.85, 0.64, RULES) is None


def test_a_day_with_one_class_has_no_auc_and_no_status():
    metrics = label_day_metrics(np.zeros(300, dtype=int), np.linspace(0, 1, 300), 0.3)
    assert metrics["roc_auc"] is None
    assert day_failure(metrics, 0.85, 0.64, RULES) is None


def test_delong_auc_equals_sklearn_and_its_error_shrinks_with_labels():
    y, s = _day(1000, auc_signal=1.0)
    auc, se = delong_auc(y, s)
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert 0.01 < se < 0.03
    assert delong_auc(*_day(200, auc_signal=1.0))[1] > se


def test_midranks_are_scipys_average_ranks_with_ties_and_nan():
    rng = np.random.default_rng(3)
    for x in (rng.random(300), np.round(rng.random(300), 2), np.zeros(5), np.array([]), np.array([1.0, np.nan])):
        ranks, expected = midranks(x), sps.rankdata(x)
        assert ranks.dtype == expected.dtype and np.array_equal(ranks, expected, equal_nan=True)


def test_failure_label_looks_ahead_over_the_horizon_only():
    days = [False, False, False, False, True, False, False, False]
    assert failure_labels(days, horizon=2) == [0, 0, 1, 1, 0, 0, None, None]


def test_failure_label_at_the_end_of_the_data_is_unknown_unless_a_failure_is_seen():
    assert failure_labels([False, False, True], horizon=3) == [1, 1, None]
    assert failure_labels([False, False, False], horizon=3) == [None, None, None]


def test_failure_label_over_days_without_status():
    # None = too few labels: a window of only unknown days is unknown; a known failure still counts
    days = [False, None, None, False, None, True]
    assert failure_labels(days, horizon=2) == [None, 0, 0, 1, 1, None]


# --- one failure rule for the failure labels and the daily run's measured failure --------------------------
def test_the_daily_measured_failure_is_the_failure_label_rule():
    from churnguard import performance
    from churnguard.config import load_monitoring_config

    cfg, failure_cfg = load_monitoring_config(), load_failure_config()
    definition = performance.measured_failure_definition(cfg, failure_cfg)
    assert performance.delong_auc is delong_auc
    assert definition.tolerance == cfg.performance.auc_tolerance
    assert definition.window_days == failure_cfg.failure.window_days
    good, bad, noisy = _day(1000, auc_signal=1.5), _day(1000, auc_signal=0.4), _day(250, auc_signal=1.5)
    ref_auc = label_day_metrics(*good, threshold=0.3)["roc_auc"]
    ref_f1 = label_day_metrics(*good, threshold=0.3)["f1"]
    cases = [(good, ref_auc, False), (bad, ref_auc, True), (noisy, None, False), (_day(150, 0.0), ref_auc, None)]
    for (y, s), ref, expected in cases:
        metrics = performance.day_metrics(y, s, 0.3, failure_cfg.failure.confidence)
        # 250 labels, point estimate 0.06 under the reference: not confidently beyond the tolerance
        ref = metrics["roc_auc"] + 0.06 if ref is None else ref
        assert day_failure(metrics, ref, ref_f1, definition) is expected
        assert performance.is_measured_failure(metrics, ref, ref_f1, cfg, failure_cfg) is (expected is True)


@pytest.mark.parametrize("current_champion", [1, 2])
def test_measure_day_judges_a_day_on_the_pooled_window_of_arrived_labels(monkeypatch, current_champion):
    """Days of 90 labels (too few alone, and two of them too) pooled over the 3-day window: a measured
    failure of v1, which counts against the champion only while v1 is still the champion."""
    from datetime import date, timedelta
    from types import SimpleNamespace

    from churnguard import performance, registry, training
    from churnguard.storage import open_storage
    from tests.conftest import day_context

    storage, first = open_storage(), date(2026, 9, 1)
    monkeypatch.setattr(training, "load_version_model", lambda models, version: SimpleNamespace(threshold=0.3))
    monkeypatch.setattr(performance, "reference_metrics", lambda models, version: (0.85, 0.6))
    monkeypatch.setattr(
        registry.ModelRegistry, "version_by_alias", lambda self, alias: SimpleNamespace(version=current_champion)
    )
    for k in range(3):
        observed = first + timedelta(days=k)
        y, s = _day(90, auc_signal=0.0, seed=k)
        ids = [f"c{k}-{i}" for i in range(90)]
        storage.write_partition(
            "scores", observed, pd.DataFrame({"customer_id": ids, "champion_score": s, "champion_version": 1})
        )
        storage.write_partition(
            "labels",
            observed + timedelta(days=7),
            pd.DataFrame(
                {"customer_id": ids, "observed_ds": observed.isoformat(), "churn": np.where(y == 1, "Yes", "No")}
            ),
        )

    # the first run measures both deliveries that had arrived: windows of 1 and 2 days, too few labels
    early = performance.measure_day(day_context(first + timedelta(days=8), storage))
    result = performance.measure_day(day_context(first + timedelta(days=9), storage))

    assert [m["labelled_rows"] for m in early.measured] == [90, 90] and not early.measured_failure
    assert [m["labelled_rows"] for m in result.measured] == [90]
    failed, earlier = (["2026-09-03"], []) if current_champion == 1 else ([], ["2026-09-03"])
    assert result.measured_failure_days == failed and result.measured_failure is bool(failed)
    assert result.earlier_champion_failure_days == earlier


# --- config --------------------------------------------------------------------------------------------
def test_failure_config_rejects_unknown_keys():
    assert load_failure_config().failure.horizon_days == 7
    with pytest.raises(ConfigError, match="unknown key 'failure.horizon'"):
        load_failure_config({"failure": {"horizon": 3}})


# --- trajectory mix and split --------------------------------------------------------------------------
def test_every_family_is_in_the_mix_with_equal_weight_and_both_splits():
    specs = trajectory_specs(load_failure_config(), count=90)
    counts = pd.Series([s.family for s in specs]).value_counts()
    assert set(counts.index) == set(FAMILIES) and counts.nunique() == 1
    for family in FAMILIES:
        assert {s.split for s in specs if s.family == family} == {"train", "evaluation"}
    cfg = load_failure_config().trajectories
    assert all(cfg.intensity_min <= s.intensity <= cfg.intensity_max for s in specs)


def test_the_split_is_by_trajectory_so_no_trajectory_is_on_both_sides():
    specs = trajectory_specs(load_failure_config(), count=90)
    train = {s.trajectory for s in specs if s.split == "train"}
    held_out = {s.trajectory for s in specs if s.split == "evaluation"}
    assert train and held_out and not train & held_out
    assert len({s.seed for s in specs}) == len(specs)  # no two trajectories share customers' draws
    assert trajectory_specs(load_failure_config(), count=90) == specs  # reproducible


# --- features ------------------------------------------------------------------------------------------
def _signals(days: int, drop_from: int | None = None, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    history = []
    for t in range(days):
        bad = drop_from is not None and t >= drop_from
        row = {name: float(rng.normal(0.05, 0.01)) for name in LABEL_FREE}
        row.update({name: float(rng.normal(0.0, 0.01)) for name in MATURED})
        row["drift_share"] = 0.0
        row["matured_days"] = 14.0
        if bad:
            row["matured_auc_drop"] = row["matured_auc_drop_mean3"] = 0.2
            row["drift_weighted"] = 1.0
        history.append({"ds": f"2026-01-{t + 1:02d}", **row})
    return history


def test_features_of_a_day_use_only_that_day_and_earlier_ones():
    history = _signals(20, drop_from=15)
    full = feature_frame(history)
    for t in (3, 10, 16):
        prefix = pd.Series(failure_features(history[: t + 1]))
        pd.testing.assert_series_equal(prefix, full.iloc[t], check_names=False)
    assert list(full.columns) == feature_names()


def test_a_score_shift_counts_by_its_size_whichever_way_the_scores_moved():
    history = _signals(12, drop_from=6)
    mirrored = [{**row, **{name: -row[name] for name in SIGNED}} for row in history]
    pd.testing.assert_frame_equal(feature_frame(mirrored), feature_frame(history))
    assert "cbpe_auc_drop_abs" in feature_names() and "cbpe_auc_drop" not in feature_names()


def test_missing_matured_performance_becomes_zero_not_nan():
    history = _signals(3)
    for row in history:
        row.update(dict.fromkeys(MATURED, None))
    assert not np.isnan(list(failure_features(history).values())).any()


# --- the scorer ----------------------------------------------------------------------------------------
def _dataset(trajectories: int, evaluation_every: int | None = None) -> pd.DataFrame:
    """Feature rows of 30-day trajectories as ``build_dataset`` makes them: every other one fails from day
    20 (labelled from day 13); with ``evaluation_every``, the last of every such block is held out."""
    rows = []
    for tid in range(trajectories):
        failing = tid % 2 == 1
        frame = feature_frame(_signals(30, drop_from=20 if failing else None, seed=tid))
        held_out = evaluation_every is not None and tid % evaluation_every == evaluation_every - 1
        frame = frame.assign(
            trajectory=tid,
            family="gradual" if failing else "none",
            split="evaluation" if held_out else "train",
            day=range(30),
            failed_today=[failing and t >= 20 for t in range(30)],
            label=[int(failing and t >= 13) for t in range(30)],
        )
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def small_model() -> FailureModel:
    model, report = fit_failure_model(_dataset(12), feature_names(), load_failure_config())
    assert set(report["cv_auroc"]) == {"logistic", "xgboost"}
    return model


@pytest.mark.slow
def test_held_out_trajectories_cannot_move_the_model_or_its_threshold():
    table, cfg = _dataset(18, evaluation_every=3), load_failure_config()
    model, report = fit_failure_model(table, feature_names(), cfg)

    held_out = table["split"] == "evaluation"
    scrambled = table.copy()
    scrambled.loc[held_out, feature_names()] = np.random.default_rng(1).normal(
        size=(int(held_out.sum()), len(feature_names()))
    )
    scrambled.loc[held_out, "label"] = 1 - scrambled.loc[held_out, "label"]
    again, report_again = fit_failure_model(scrambled, feature_names(), cfg)
    leaky, _ = fit_failure_model(scrambled.assign(split="train"), feature_names(), cfg)

    assert report_again == report
    assert (again.kind, again.platt, again.threshold) == (model.kind, model.platt, model.threshold)
    np.testing.assert_array_equal(again.predict_risk(table), model.predict_risk(table))
    assert report["train_trajectories"] == 12
    assert leaky.platt != model.platt  # the scrambled rows do matter once they are training rows
    validation = report["validation"]
    assert validation["threshold"] == model.threshold
    assert validation["false_alarms_per_90d"] <= cfg.training.max_false_alarms_per_90d
    assert validation["failing_trajectories"] == 6


def test_the_threshold_is_reported_with_its_out_of_fold_numbers_averaged_over_repeats():
    # one failing trajectory (first failure day 6, shown on day 8 with a 2-day label delay) and a healthy one
    table = pd.DataFrame(
        {
            "trajectory": [1] * 7 + [2] * 9,
            "family": ["gradual"] * 7 + ["none"] * 9,
            "day": list(range(7)) + list(range(9)),
            "failed_today": [False] * 6 + [True] + [False] * 9,
            "label": [0, 0, 0, 1, 1, 1, 1] + [0] * 9,
        }
    )
    first = np.array([0.1, 0.1, 0.1, 0.2, 0.6, 0.7, 0.8] + [0.1] * 5 + [0.7] + [0.1] * 3)
    second = np.array([0.1, 0.1, 0.1, 0.2, 0.3, 0.4, 0.9] + [0.1] * 9)
    # first repeat: alerts on days 4-6 and one false alarm (12 negative days): precision 3/4, recall 3/4,
    # 7.5 false alarms / 90 days, lead 8 - 4 = 4; second: day 6 only: precision 1, recall 1/4, lead 2
    validation = validation_metrics(table, [first, second], threshold=0.5, delay=2, horizon=3)
    assert validation == {
        "auroc": pytest.approx((45.5 / 48 + 1.0) / 2),
        "threshold": 0.5,
        "precision": pytest.approx(0.875),
        "recall": pytest.approx(0.5),
        "false_alarms_per_90d": pytest.approx(3.75),
        "failing_trajectories": 1,
        "detected": 1.0,
        "median_lead_days": 3.0,
    }


def test_fitting_names_the_columns_a_failure_dataset_lacks():
    with pytest.raises(ValueError, match="lacks column.s. split"):
        fit_failure_model(_dataset(4).drop(columns="split"), feature_names(), load_failure_config())


def test_the_monotone_logistic_keeps_constrained_weights_non_negative_and_leaves_free_ones_alone():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] - X[:, 1] - X[:, 2] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    coef = MonotoneLogistic(C=1.0, monotone=(1, 1, 0)).fit(X, y).coef_[0]
    assert coef[0] > 1.0 and coef[1] == 0.0 and coef[2] < -1.0
    unconstrained = LogisticRegression(C=1.0).fit(X[:, [0, 2]], y)  # the same objective, nothing bound
    np.testing.assert_allclose(
        MonotoneLogistic(C=1.0, monotone=(0, 0)).fit(X[:, [0, 2]], y).coef_, unconstrained.coef_, rtol=1e-3
    )


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_more_of_a_feature_that_grows_with_trouble_never_lowers_the_risk(kind):
    table = _dataset(12)
    estimator = _estimator(kind, monotone_directions(feature_names()))
    model = FailureModel(
        kind, estimator.fit(table[feature_names()].to_numpy(), table["label"]), feature_names(), (1.0, 0.0), 0.5
    )
    rows = table[feature_names()].iloc[::37].reset_index(drop=True)
    for name in feature_names():
        if name in FREE:
            continue
        worse = rows.assign(**{name: rows[name] + rows[name].abs().max() + 1.0})
        assert (model.predict_risk(worse) >= model.predict_risk(rows) - 1e-12).all(), name


def test_the_alarm_threshold_keeps_the_false_alarm_rate_averaged_over_cv_repeats_within_budget():
    y = np.array([0] * 90 + [1] * 10)
    first, second = np.full(100, 0.1), np.full(100, 0.1)
    first[0], second[1] = 0.7, 0.5  # one false alarm per 90 negative days, at a different risk in each repeat
    first[90:] = second[90:] = 0.9
    assert calibrated_threshold(y, [first], max_fa_per_90=0.5) == 0.71
    assert calibrated_threshold(y, [first, second], max_fa_per_90=0.5) == 0.51
    assert calibrated_threshold(y, [first, second], max_fa_per_90=1.0) == 0.11


def test_scorer_gives_a_probability_and_the_three_features_that_pushed_it_most(small_model):
    calm = score_failure_risk(_signals(10), model=(small_model, 3))
    failing = score_failure_risk(_signals(10, drop_from=5), model=(small_model, 3))
    for result in (calm, failing):
        assert result.available is True and result.model_version == 3
        assert 0.0 <= result.risk <= 1.0
        assert len(result.top_drivers) == 3
        assert {d["feature"] for d in result.top_drivers} <= set(small_model.features)
    assert failing.risk > calm.risk
    contributions = [d["contribution"] for d in failing.top_drivers]
    assert contributions == sorted(contributions, reverse=True)


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_both_model_kinds_explain_a_risk_by_their_top_three_pushes(small_model, kind):
    table = pd.concat(
        [feature_frame(_signals(30, drop_from=15 if tid % 2 else None, seed=tid)) for tid in range(6)],
        ignore_index=True,
    )
    y = ([0] * 30 + [0] * 13 + [1] * 17) * 3
    estimator = _estimator(kind, monotone_directions(feature_names()))
    model = FailureModel(kind, estimator.fit(table[feature_names()].to_numpy(), y), feature_names(), (1.0, 0.0), 0.5)
    result = score_failure_risk(_signals(10, drop_from=5), model=(model, 2))
    assert result.available and 0.0 <= result.risk <= 1.0
    assert len(result.top_drivers) == 3
    assert result.top_drivers[0]["contribution"] >= result.top_drivers[-1]["contribution"]


def test_scorer_without_a_registered_model_is_unavailable_and_says_why():
    from churnguard.failure_training import failure_risk_today, load_failure_champion

    result = failure_risk_today(_signals(5), lambda: load_failure_champion(load_failure_config()))
    assert result.available is False and result.risk is None
    assert "failure-model@champion" in result.reason


def test_scorer_without_signals_is_unavailable(small_model):
    result = score_failure_risk([], model=(small_model, 1))
    assert result.available is False and "no day signals" in result.reason


def test_a_model_trained_on_features_no_longer_built_is_unavailable_not_fed_zeros(small_model):
    renamed = [name.removesuffix("_abs") for name in small_model.features]  # the names before the sizes
    old = FailureModel(small_model.kind, small_model.estimator, renamed, small_model.platt, small_model.threshold)
    result = score_failure_risk(_signals(10), model=(old, 1))
    assert result.available is False
    assert "score_mean_change" in result.reason and "retrain" in result.reason


def test_scorer_never_raises_on_malformed_signals(small_model):
    result = score_failure_risk([{"ds": "2026-01-01"}], model=(small_model, 1))
    assert result.available is False and "could not be computed" in result.reason


# --- one simulated trajectory, end to end (drift engine, champion scores, labels) ------------------------
@pytest.fixture(scope="module")
def champion():
    """A churn champion trained on the reference, its reference metrics and drift profile."""
    from churnguard.config import load_dataset_config
    from churnguard.data import load_reference, split_reference
    from churnguard.failure_training import build_champion_reference
    from churnguard.models import train_model

    data_cfg = load_dataset_config()
    split = split_reference(load_reference(data_cfg), data_cfg)
    model = train_model(split.train, split.validation, data_cfg, MODEL_CFG)
    return (model, *build_champion_reference(model, data_cfg, DRIFT), data_cfg)


@pytest.mark.slow
def test_a_simulated_concept_drift_trajectory_fails_and_is_labelled_ahead(champion):
    from churnguard.failure.trajectories import TrajectorySpec, simulate_trajectory

    cfg = load_failure_config()
    spec = TrajectorySpec(1, "concept", intensity=2.0, onset_day=20, seed=5, days=30, rows_per_day=300, split="train")

    days = simulate_trajectory(spec, *champion, cfg, DRIFT).set_index("day")

    assert list(days.index) == list(range(cfg.trajectories.warmup_days, 30))
    assert not days.loc[:19, "failed_today"].any() and days.loc[22:, "failed_today"].all()
    assert days.loc[14:19, "label"].tolist() == [1] * 6  # a failure within 7 days of each
    assert days["label"].iloc[-1] is pd.NA  # the horizon runs past the data
    # pure concept drift: the features do not move, the matured labels show it 7 days later
    assert days["drift_share"].max() <= 0.2
    assert not days.loc[:26, "failure_seen"].any() and days.loc[29, "failure_seen"]
    assert days.loc[29, "matured_auc_drop"] > 0.1


def _trajectory_day_by_day(spec, model, reference, profile, data_cfg, cfg) -> pd.DataFrame:
    """The trajectory table computed the plain way: each day simulated, scored and drift-reported alone."""
    from datetime import timedelta

    from churnguard.data import target_array
    from churnguard.drift import drift_report
    from churnguard.failure.signals import day_signals
    from churnguard.failure.trajectories import START, window_failures
    from churnguard.simulate import BatchSimulator

    fd, sim = cfg.failure, BatchSimulator(data_cfg, rows_per_day=spec.rows_per_day, seed=spec.seed)
    batches = [sim.day(START + timedelta(days=i), spec.scenario) for i in range(spec.days)]
    scores = [model.predict_proba(b.landing) for b in batches]
    ys = [target_array(b.labels, data_cfg) for b in batches]
    metrics = [
        {"observed_ds": b.ds.isoformat(), **label_day_metrics(y, s, reference["threshold"], fd.confidence)}
        for b, y, s in zip(batches, ys, scores, strict=True)
    ]
    failures = window_failures(ys, scores, reference, fd)
    labels, window, rows = failure_labels(failures, fd.horizon_days), cfg.features.matured_window, []
    for t in range(cfg.trajectories.warmup_days, spec.days):
        matured_to = t - fd.label_delay_days
        report = drift_report(profile, batches[t].landing, DRIFT, scores=scores[t]).to_dict()
        signals = day_signals(
            report,
            scores[t],
            metrics[max(0, matured_to - window + 1) : matured_to + 1],
            reference=reference,
            ds=batches[t].ds.isoformat(),
            matured_window=window,
            min_labels=fd.min_labels,
        )
        rows.append(
            {
                **signals,
                "trajectory": spec.trajectory,
                "family": spec.family,
                "scenario": FAMILIES[spec.family],
                "intensity": spec.intensity,
                "onset_day": spec.onset_day,
                "split": spec.split,
                "day": t,
                "failed_today": failures[t],
                "failure_seen": any(f is True for f in failures[: matured_to + 1]),
                "roc_auc_today": metrics[t]["roc_auc"],
                "f1_today": metrics[t]["f1"],
                "label": labels[t],
            }
        )
    return pd.DataFrame(rows).astype({"failed_today": "boolean", "label": "Int64"})


@pytest.mark.slow
@pytest.mark.parametrize("family", ["covariate+concept", "new_category"])
def test_a_trajectory_simulated_at_once_equals_its_days_computed_one_by_one(champion, family):
    from churnguard.failure.trajectories import TrajectorySpec, simulate_trajectory

    cfg = load_failure_config()
    spec = TrajectorySpec(2, family, intensity=2.5, onset_day=18, seed=11, days=30, rows_per_day=300, split="train")

    table = simulate_trajectory(spec, *champion, cfg, DRIFT, use_cache=False)

    pd.testing.assert_frame_equal(table, _trajectory_day_by_day(spec, *champion, cfg), check_exact=True)
    assert table["drift_share"].iloc[-1] > table["drift_share"].iloc[0]  # the drift is in the compared days


# --- visible failures: decided by the counterfactual without the concept component ---------------------
def _spec(family: str, intensity: float):
    from churnguard.failure.trajectories import TrajectorySpec

    return TrajectorySpec(
        3, family, intensity=intensity, onset_day=18, seed=5, days=30, rows_per_day=300, split="train"
    )


@pytest.mark.slow
def test_a_failure_whose_counterfactual_without_concept_does_not_fail_is_concept_only(champion):
    from churnguard.failure.trajectories import (
        CONCEPT_ONLY,
        counterfactual_failures,
        failure_kind,
        simulate_trajectory,
    )

    cfg = load_failure_config()
    for family in ("concept", "covariate+concept"):
        spec = _spec(family, 1.0)
        days = simulate_trajectory(spec, *champion, cfg, DRIFT, use_cache=False)
        counterfactual = counterfactual_failures(spec, *champion, cfg, use_cache=False)

        assert days["failed_today"].fillna(False).any()  # the labels show a failure ...
        assert list(counterfactual["day"]) == list(days["day"])
        assert not counterfactual["failed_today"].fillna(False).any()  # ... which the drift alone never causes
        assert failure_kind(days, counterfactual, cfg.failure.label_delay_days) == CONCEPT_ONLY


@pytest.mark.slow
def test_a_concept_failure_is_visible_only_when_its_covariate_part_alone_fails_before_the_labels_show_it(champion):
    from churnguard.failure.trajectories import (
        CONCEPT_ONLY,
        VISIBLE,
        counterfactual_failures,
        failure_kind,
        simulate_trajectory,
    )

    cfg = load_failure_config()
    spec = _spec("covariate+concept", 5.0)
    days = simulate_trajectory(spec, *champion, cfg, DRIFT, use_cache=False)
    counterfactual = counterfactual_failures(spec, *champion, cfg, use_cache=False)
    # the counterfactual is the covariate trajectory of the same seed: the same customers, the same failures
    covariate = simulate_trajectory(_spec("covariate", 5.0), *champion, cfg, DRIFT, use_cache=False)
    first = days.loc[days["failed_today"].fillna(False).astype(bool), "day"].min()
    first_visible = counterfactual.loc[counterfactual["failed_today"].fillna(False).astype(bool), "day"].min()

    assert counterfactual["failed_today"].tolist() == covariate["failed_today"].tolist()
    # the concept fails the champion on the onset day; the covariate part alone 8 days later
    assert (first, first_visible) == (18, 26)
    assert failure_kind(days, counterfactual, label_delay_days=7) == CONCEPT_ONLY  # labels show it on day 25
    assert failure_kind(days, counterfactual, label_delay_days=12) == VISIBLE  # ... on day 30


@pytest.mark.slow
def test_a_family_without_concept_is_its_own_counterfactual_and_is_not_simulated_again(champion, monkeypatch):
    from churnguard.failure import trajectories
    from churnguard.failure.trajectories import NO_FAILURE, VISIBLE, counterfactual_failures, failure_kind

    cfg = load_failure_config()
    days = trajectories.simulate_trajectory(_spec("covariate", 5.0), *champion, cfg, DRIFT, use_cache=False)
    monkeypatch.setattr(trajectories, "_simulator", lambda *a: pytest.fail("simulated a counterfactual"))

    assert counterfactual_failures(_spec("covariate", 5.0), *champion, cfg, use_cache=False) is None
    assert failure_kind(days, None, 7) == VISIBLE
    assert (
        failure_kind(days.assign(failed_today=days["failed_today"].where(days["day"] < 20, False)), None, 7)
        == NO_FAILURE
    )
    assert trajectories.counterfactual_scenario_name("covariate+concept") == "gradual+sudden"
    assert trajectories.counterfactual_scenario_name("concept") == "none"


def _failing_from(first: int | None, days: int = 40) -> pd.DataFrame:
    day = np.arange(14, days)
    return pd.DataFrame({"day": day, "failed_today": pd.array(day >= (first or days), dtype="boolean")})


def test_a_failure_is_concept_only_when_the_drift_alone_fails_only_after_the_labels_show_it():
    from churnguard.failure.trajectories import CONCEPT_ONLY, VISIBLE, failure_kind, with_failure_kind

    real = _failing_from(20)  # the labels show the first failure on day 20 + 7
    assert failure_kind(real, _failing_from(26), label_delay_days=7) == VISIBLE
    assert failure_kind(real, _failing_from(27), label_delay_days=7) == CONCEPT_ONLY  # another, later failure
    assert failure_kind(real, _failing_from(None), label_delay_days=7) == CONCEPT_ONLY
    assert with_failure_kind(real, _failing_from(33), 7)["visible_failure_day"].eq(33).all()
    assert with_failure_kind(real, None, 7)["visible_failure_day"].eq(20).all()
    assert with_failure_kind(real, _failing_from(None), 7)["visible_failure_day"].isna().all()


def _leads_table(detected_per_family: dict[str, list[bool]]) -> pd.DataFrame:
    """One failing trajectory per entry: failure on day 20, labels show it on day 27, an alert on day 18
    (lead 9) when detected; negative days 0-12 without alerts."""
    rows, tid = [], 0
    for family, detected in detected_per_family.items():
        for hit in detected:
            tid += 1
            for day in range(0, 28):
                rows.append(
                    {
                        "trajectory": tid,
                        "family": family,
                        "day": day,
                        "failed_today": day >= 20,
                        "label": int(day >= 13),
                        "risk": 0.9 if hit and day >= 18 else 0.1,
                    }
                )
    return pd.DataFrame(rows)


def test_headline_detection_and_lead_weigh_every_family_the_same():
    from churnguard.failure.evaluation import alert_metrics, weighted_median

    table = _leads_table({"gradual": [True, True, True], "covariate": [False]})

    weighted = alert_metrics(table, "risk", 0.5, delay=7, horizon=7, weighted=True)
    plain = alert_metrics(table, "risk", 0.5, delay=7, horizon=7)

    assert plain["detected"] == 0.75 and weighted["detected"] == 0.5
    assert plain["median_lead_days"] == 9.0  # leads 9, 9, 9, 0
    assert weighted["median_lead_days"] == 4.5  # half the weight at 0, half at 9
    assert weighted_median(np.array([3.0, 1.0, 2.0]), np.ones(3)) == 2.0
    assert weighted_median(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)) == 2.5
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 5.0])) == 3.0


def test_early_warning_weights_cover_the_days_an_alert_counts_as_detection_only():
    from churnguard.failure.model import early_warning_weights

    days = pd.DataFrame(
        {
            "trajectory": [1] * 30 + [2] * 30,
            "day": list(range(30)) * 2,
            "failed_today": [d >= 20 for d in range(30)] + [False] * 30,
        }
    )

    weights = early_warning_weights(days, 5.0, delay=7, horizon=7)

    run_up = (days["trajectory"] == 1) & days["day"].between(13, 26)  # first failure 20, labels show it on 27
    assert (weights[run_up.to_numpy()] == 5.0).all() and (weights[~run_up.to_numpy()] == 1.0).all()
    assert early_warning_weights(days, 1.0, delay=7, horizon=7) is None


def test_a_sample_weight_of_two_is_a_row_counted_twice_in_the_monotone_logistic():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + rng.normal(size=200) > 0).astype(int)
    w = np.where(np.arange(200) < 50, 2.0, 1.0)

    weighted = MonotoneLogistic(C=0.5, monotone=(1, 1, 0)).fit(X, y, sample_weight=w)
    doubled = MonotoneLogistic(C=0.5, monotone=(1, 1, 0)).fit(np.vstack([X, X[:50]]), np.append(y, y[:50]))

    np.testing.assert_allclose(weighted.coef_, doubled.coef_, atol=1e-4)
    np.testing.assert_allclose(weighted.intercept_, doubled.intercept_, atol=1e-4)


@pytest.mark.slow
def test_a_cached_trajectory_is_not_served_to_a_world_of_other_customers(champion, churnguard_home):
    from churnguard.failure.trajectories import cached_trajectory, simulate_trajectory

    cfg = load_failure_config()
    model, reference, profile, data_cfg = champion
    pool = data_cfg.model_copy(update={"simulation": data_cfg.simulation.model_copy(update={"customers": "pool"})})
    spec = _spec("covariate", 5.0)

    synthetic_days = simulate_trajectory(spec, model, reference, profile, data_cfg, cfg, DRIFT)

    assert data_cfg.simulation.customers == "synthetic"  # the default: every simulated customer is new
    assert cached_trajectory(spec, reference, profile, cfg, data_cfg) is not None
    assert cached_trajectory(spec, reference, profile, cfg, pool) is None
    pool_days = simulate_trajectory(spec, model, reference, profile, pool, cfg, DRIFT)
    assert not pool_days["score_mean_change"].equals(synthetic_days["score_mean_change"])


def test_a_bootstrap_interval_over_days_that_all_fail_is_undefined_not_a_crash():
    from churnguard.failure.evaluation import auroc, trajectory_bootstrap

    rng = np.random.default_rng(0)
    days = pd.DataFrame({"trajectory": np.repeat(np.arange(6), 10), "risk": rng.uniform(size=60)})

    def stat(t: pd.DataFrame) -> float | None:
        return auroc(t["label"].to_numpy(), t["risk"].to_numpy())

    assert np.isnan(trajectory_bootstrap(days.assign(label=1), stat, 50)).all()  # one class: no AUROC at all
    mixed = days.assign(label=(days["trajectory"] % 2).astype(int))
    low, high = trajectory_bootstrap(mixed, stat, 50)
    assert 0.0 <= low <= high <= 1.0


def _sight_table(rng: np.random.Generator, trajectories: list[tuple[str, str]]) -> pd.DataFrame:
    """40 days per (family, failure kind): onset on day 20, a failing trajectory fails from it on, so its
    days from 13 (a week ahead) are failure-coming; risk is noise plus 0.5 on those days."""
    from churnguard.failure.trajectories import FAMILIES

    rows = []
    for tid, (family, kind) in enumerate(trajectories):
        for day in range(40):
            label = int(kind != "none" and day >= 13)
            rows.append(
                {
                    "trajectory": tid,
                    "family": family,
                    "scenario": FAMILIES[family],
                    "onset_day": 20,
                    "failure_kind": kind,
                    "day": day,
                    "failed_today": kind != "none" and day >= 20,
                    "label": label,
                    "risk": rng.random() + 0.5 * label,
                }
            )
    return pd.DataFrame(rows)


def test_the_auroc_is_the_weighted_mean_of_its_blind_and_seen_days():
    from churnguard.failure.evaluation import auroc, auroc_by_sight, blind_days, family_weights

    rng = np.random.default_rng(0)
    table = _sight_table(
        rng,
        [
            ("concept", "concept_only"),
            ("concept", "concept_only"),
            ("gradual", "visible"),
            ("none", "none"),
            ("none", "none"),
        ],
    )

    blind = blind_days(table, delay=7)
    split = auroc_by_sight(table, "risk", delay=7)

    # concept-only failures first fail on day 20, their labels show it on 27: days 13..26 are blind
    assert set(table.loc[blind, "trajectory"]) == {0, 1}
    assert table.loc[blind, "day"].between(13, 26).all() and blind.sum() == 2 * 14
    overall = auroc(table["label"].to_numpy(), table["risk"].to_numpy(), family_weights(table["family"]))
    mixed = (1 - split["blind_share"]) * split["seen"] + split["blind_share"] * split["blind"]
    assert mixed == pytest.approx(overall, abs=1e-12)
    assert 0 < split["blind_share"] < 1 and split["blind"] != pytest.approx(split["seen"])


def test_unseen_days_are_the_blind_days_of_a_world_that_has_not_visibly_changed():
    from churnguard.failure.evaluation import auroc, auroc_by_sight, family_weights, unchanged_world_days

    rng = np.random.default_rng(1)
    table = _sight_table(
        rng,
        [
            ("concept", "concept_only"),
            ("covariate+concept", "concept_only"),
            ("covariate", "visible"),
            ("seasonal", "none"),
            ("none", "none"),
        ],
    )
    unchanged = unchanged_world_days(table, delay=7)
    by = table.assign(unchanged=unchanged).groupby("family")["unchanged"]

    # a concept change alone shows first in the onset day's labels (day 27); a covariate shift on day 20
    assert table.loc[unchanged & (table["family"] == "concept"), "day"].max() == 26
    assert table.loc[unchanged & (table["family"] == "covariate+concept"), "day"].max() == 19
    assert by.sum()["covariate"] == by.sum()["seasonal"] == 20 and by.all()["none"]

    # ranked first everywhere but on the unseen days, the AUROC is exactly the ceiling
    split = auroc_by_sight(table, "risk", delay=7)
    seen = (table["label"] == 1) & ~(unchanged & (table["day"] < 27) & (table["failure_kind"] == "concept_only"))
    perfect = table["risk"].where(~seen, 10.0)
    overall = auroc(table["label"].to_numpy(), perfect.to_numpy(), family_weights(table["family"]))
    assert auroc_by_sight(table.assign(risk=perfect), "risk", delay=7)["ceiling"] == pytest.approx(overall, abs=1e-12)
    # unseen: concept days 13..26 (14) and covariate+concept days 13..19 (7) of 21 + 21 + 27 positive days
    weights = family_weights(table["family"])
    positive = table["label"].to_numpy() == 1
    unseen_weight = weights[positive & ~seen.to_numpy()].sum() / weights[positive].sum()
    assert split["unseen_share"] == pytest.approx(unseen_weight) and 0 < unseen_weight < split["blind_share"]
    assert split["chance_ceiling"] == pytest.approx(1 - unseen_weight / 2)
    assert 0.5 < split["unseen"] < 1 and split["unseen_vs_unchanged"] is not None
