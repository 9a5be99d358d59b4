"""Every step of the daily run called directly on a :class:`DayContext` over real files, a real monitoring
store and a real MLflow registry: the batch is read once and staged, versions are pinned for the date and
replayed after the aliases move, side effects (retrain, promote) happen once per date, and re-running a date
after a promotion reproduces its summary and rows exactly.

The world (a champion v1, a challenger v2 registered on 09-20, 22 simulated days, 09-01..09-20 monitored) is
built once by the CLI and restored at the same path before each test."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from churnguard.results import Decision, PerformanceSummary, Scored
from churnguard.settings import get_settings
from churnguard.store import schema
from tests.conftest import SavedWorld, forget_open_stores
from tests.registry_helpers import churn_registry

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("daily_steps")]
DAY = "2026-09-21"  # labels of 09-14 arrive; v1 champion, v2 in shadow


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    saved = SavedWorld(
        tmp_path_factory.mktemp("steps-world"),
        ("bootstrap", "--seed", "0"),
        (
            "simulate",
            "--start",
            "2026-09-01",
            "--days",
            "22",
            "--scenario",
            "none",
            "--rows-per-day",
            "300",
            "--seed",
            "1",
        ),
        ("run-days", "--start", "2026-09-01", "--end", "2026-09-19"),
        ("run-days", "--start", "2026-09-20", "--force-retrain"),
    )
    saved.save()
    return saved


@pytest.fixture
def world(saved, monkeypatch):
    saved.restore()
    monkeypatch.setenv("CHURNGUARD_HOME", str(saved.home))
    get_settings.cache_clear()
    forget_open_stores()
    yield saved
    forget_open_stores()
    get_settings.cache_clear()


def context(ds: str = DAY, **options):
    from churnguard.context import DayContext, RunOptions

    return DayContext.build(ds, RunOptions(**options))


def promote_now(ds: str, reason: str) -> dict:
    """Promote the challenger on ``ds`` whatever the shadow days say (the daily step, told yes)."""
    from churnguard.promotion import promote_day

    return promote_day(context(ds), False, decide=lambda: (True, reason))


def tag_version(version: int, **tags) -> None:
    """Write ``tags`` (fields of ``VersionTags``) on ``version``, as a retrain would have registered them."""
    from churnguard.registry import VersionTags

    for key, value in VersionTags(**tags).to_mlflow().items():
        churn_registry().client.set_model_version_tag("churn-model", str(version), key, value)


def aliases() -> dict[str, int | None]:
    from churnguard import registry

    return {
        a: (v.version if (v := churn_registry().version_by_alias(a)) else None)
        for a in (registry.CHAMPION, registry.CHALLENGER, registry.PREVIOUS)
    }


def day_rows(ds: str) -> dict[str, list]:
    """Every store row a day's run wrote, without volatile columns."""
    from churnguard.store import open_store

    store = open_store()
    out = {}
    for table, column in (
        (schema.daily_runs, "ds"),
        (schema.feature_drift, "ds"),
        (schema.failure_risk, "ds"),
        (schema.alerts, "ds"),
        (schema.performance, "measured_ds"),
        (schema.day_steps, "ds"),
        (schema.day_models, "ds"),
    ):
        rows = store.rows(table, where={column: ds})
        out[table.name] = sorted(
            json.dumps(
                {k: v for k, v in r.items() if k not in ("created_at", "pinned_at")}, sort_keys=True, default=str
            )
            for r in rows
        )
    return out


def test_the_batch_is_read_once_and_the_later_steps_read_the_staged_copy(world):
    from churnguard import daily

    ctx = context()
    info = daily.ingest(ctx)
    assert info.rows == 300 and ctx.root.read_staged(DAY).equals(ctx.batch())
    # Later steps never touch the landing partition again: they work with it gone.
    ctx.root.storage.delete_folder(ctx.root.batch_key(DAY))
    fresh = context()  # a new task: reads the staged copy once
    assert daily.validate(fresh).status in ("pass", "warn")
    scored = daily.score(fresh)
    assert scored.rows == 300 and (scored.champion_version, scored.challenger_version) == (1, 2)
    assert daily.drift(fresh).severity in ("stable", "moderate", "critical")
    assert fresh.result(Scored) == scored  # each step's result is the day's record in the store


def test_versions_are_pinned_for_the_date_and_replayed_after_the_aliases_moved(world):
    from churnguard import daily

    ctx = context()
    daily.ingest(ctx)
    assert (ctx.versions.champion, ctx.versions.challenger) == (1, 2)
    promote_now("2026-09-22", "a later day promoted v2")
    assert aliases()["champion"] == 2

    again = context()
    assert (again.versions.champion, again.versions.challenger) == (1, 2)
    scored = daily.score(again)
    scores = again.root.read_scores(DAY)
    assert scored.champion_version == 1 and set(scores["champion_version"]) == {1}
    assert daily.drift(again).champion_version == 1
    assert context("2026-09-22").versions.champion == 2  # a date first processed now pins what is current


def test_the_failure_reference_of_a_champion_is_computed_once_per_version(world):
    from sqlalchemy import delete, update

    from churnguard import daily
    from churnguard.store import open_store

    store = open_store()
    table = schema.model_summaries
    with store.engine.begin() as conn:
        conn.execute(delete(table))
    first = daily.champion_reference(context())
    (row,) = store.rows(schema.model_summaries)
    assert (row["model_version"], row["kind"]) == (1, "failure_reference") and row["value"] == first
    assert {"reference_auc", "calibration", "score_edges"} <= set(first)
    with store.engine.begin() as conn:  # what is stored is what the next day gets: nothing is refitted
        conn.execute(update(table).values(value={**first, "reference_auc": 0.5}))
    assert daily.champion_reference(context())["reference_auc"] == 0.5


def test_a_retrain_whose_challenger_does_not_clear_a_gate_registers_nothing_and_runs_once_per_date(world):
    from churnguard import daily

    ctx = context(force_retrain=True, overrides={"retrain": {"margin_over_champion": 0.5}})
    for step in (
        daily.ingest,
        daily.validate,
        daily.score,
        daily.drift,
        daily.performance,
        daily.failure_risk,
        daily.decide_day,
    ):
        step(ctx)
    assert ctx.result(Decision).decision == "retrain"
    result = daily.retrain(ctx)
    assert not result.registered and result.gates["beats_champion"] is False
    assert "beats_champion" in result.rejected
    assert len(churn_registry().client.search_model_versions("name = 'churn-model'")) == 2
    assert daily.retrain(context(force_retrain=True)) == result  # the date's retrain happened: reported again


def validated_after_change(version: int, change_day: str = "2026-09-07") -> None:
    """Mark ``version`` as a challenger validated on post-change days (what a retrain after a change tags)."""
    from datetime import date

    tag_version(version, post_change_from=date.fromisoformat(change_day))


def test_promotion_happens_once_per_date(world):
    from churnguard import daily

    validated_after_change(2)
    ctx = context()
    ctx.record(PerformanceSummary(DAY, measured_failure=True))  # the champion measurably failed today
    promoted = daily.promote(ctx)
    assert promoted.promoted and promoted.version == 2
    assert aliases() == {"champion": 2, "challenger": None, "previous": 1}
    assert daily.promote(context()) == promoted  # a re-run of the date reports it, moves nothing
    assert aliases() == {"champion": 2, "challenger": None, "previous": 1}


def test_a_failing_champion_is_replaced_at_once_only_by_a_challenger_validated_after_the_change(world):
    from churnguard import daily
    from churnguard.promotion import should_promote

    ctx = context()
    ctx.record(PerformanceSummary(DAY, measured_failure=True))
    held = daily.promote(ctx)  # v2 was validated on days before any change: it stays in shadow
    assert not held.promoted and "challenger v2 in shadow" in held.reason
    assert aliases() == {"champion": 1, "challenger": 2, "previous": None}
    validated_after_change(2)
    ok, reason = should_promote(ctx, True)
    assert ok and "passed validation on labelled days from the change on 2026-09-07" in reason


def test_after_a_change_a_retrain_waits_for_post_change_labels_then_validates_on_them_only(world):
    from churnguard import daily
    from churnguard.retrain import retrain_challenger

    ctx = context(dry_run=True)
    daily.ingest(ctx)  # pins v1 / v2; labels of observed days up to 09-14 have arrived by 09-21
    waiting = retrain_challenger(ctx, "measured failure on 2026-09-14", change_day="2026-09-14")
    assert not waiting["registered"] and waiting["rejected"] == (
        "waiting for post-change labels: 1 labelled day(s) since the change on 2026-09-14, "
        "retrain.min_post_change_days is 2"
    )

    result = retrain_challenger(ctx, "measured failure on 2026-09-14", change_day="2026-09-07")
    # 8 post-change days: the last third (2 days) is the holdout, the rest trains and chooses the candidate
    assert result["window"] == {
        "train_from": "2026-08-13",
        "train_to": "2026-09-12",
        "change_day": "2026-09-07",
        "holdout_from": "2026-09-13",
        "holdout_to": "2026-09-14",
    }
    assert result["metrics"]["holdout_rows"] == 600  # 300 customers a day, both days, nothing older
    chosen = result["candidate_validation_auc"]
    assert set(chosen) == {"window", "post_change_weighted", "recency", "post_change_only", "champion_continued"}
    assert chosen[result["candidate"]] == max(chosen.values())
    assert 0.5 < result["metrics"]["champion_holdout_auc"] < 1  # the champion, on the same post-change holdout
    assert not result["registered"] and result["rejected"] == "dry run: nothing registered"


def test_rerunning_a_date_after_a_promotion_reproduces_its_summary_and_rows_exactly(world):
    from churnguard import steps

    first = steps.run_day(DAY)
    root = context().root
    summary, rows = root.read_report(DAY, "summary.json"), day_rows(DAY)
    scores, drift = root.read_scores(DAY), root.read_report(DAY, "drift.json")
    promote_now("2026-09-22", "a later day promoted v2")
    assert aliases()["champion"] == 2

    again = steps.run_day(DAY)

    assert again.mlflow_run_id == first.mlflow_run_id  # the date's MLflow run, reused
    assert root.read_report(DAY, "summary.json") == summary
    assert json.loads(summary)["scored_with"] == {"champion": 1, "challenger": 2}
    assert json.loads(drift)["profile_version"] == json.loads(root.read_report(DAY, "drift.json"))["profile_version"]
    assert root.read_report(DAY, "drift.json") == drift
    pd.testing.assert_frame_equal(root.read_scores(DAY), scores)
    assert day_rows(DAY) == rows


def test_scoring_in_chunks_equals_scoring_whole(world):
    from churnguard import daily, training
    from churnguard.scoring import ROLES, score_chunk

    ctx = context()
    daily.ingest(ctx)
    daily.score(ctx)
    models = {
        role: (v, training.load_version_model(ctx.registry, v))
        for role in ROLES
        if (v := ctx.versions.role(role)) is not None
    }
    segments = ctx.dataset.segments
    whole = score_chunk(ctx.batch(), "customer_id", models, segments)
    pieces = pd.concat(
        [score_chunk(c, "customer_id", models, segments) for c in ctx.batch_chunks(rows=70)], ignore_index=True
    )
    pd.testing.assert_frame_equal(pieces, whole)
    pd.testing.assert_frame_equal(ctx.root.read_scores(DAY), whole)
    assert list(whole.columns[:3]) == ["customer_id", "contract", "internet_service"]  # read back by performance


def test_a_batch_over_the_in_memory_limit_is_streamed_to_the_same_staged_copy_version_and_scores(world, monkeypatch):
    from churnguard import context as context_module
    from churnguard import daily

    held = context()
    whole = daily.ingest(held)
    daily.score(held)
    staged, scores = held.root.read_staged(DAY), held.root.read_scores(DAY)
    monkeypatch.setattr(context_module, "IN_MEMORY_ROWS", 100)
    monkeypatch.setattr(daily, "IN_MEMORY_ROWS", 100)

    streamed = context()
    info = daily.ingest(streamed)
    assert streamed._batch is None and not streamed.batch_in_memory  # nothing held: later steps stream
    assert (info.rows, info.data_version) == (whole.rows, whole.data_version)
    pd.testing.assert_frame_equal(streamed.root.read_staged(DAY), staged)
    with pytest.raises(MemoryError, match="batch_chunks"):
        streamed.batch()
    daily.score(streamed)
    pd.testing.assert_frame_equal(streamed.root.read_scores(DAY), scores)
    assert daily.drift(streamed).severity in ("stable", "moderate", "critical")


def test_a_champion_validated_after_a_change_is_refreshed_when_its_post_change_labels_doubled(world):
    """The two-year contracts' labels flip from 09-11, and v1 stands for a champion validated on the post-change
    days 09-11..09-12: on 09-21 the labels of 09-14 arrive, four post-change days, twice what it learnt from.
    The day retrains on all of them, tags the challenger as v1's refresh, and promotes it at once: it beat v1 on
    post-change customers neither saw. (No measured failure: that would promote it by its own rule.)"""
    from datetime import date

    from churnguard import daily, registry
    from churnguard.config import load_dataset_config
    from churnguard.dataroot import DataRoot
    from churnguard.landing import simulate
    from churnguard.registry import TrainingWindow
    from churnguard.simulate import Scenario

    simulate(
        date(2026, 9, 1),
        22,
        Scenario.parse("concept", onset="2026-09-11"),
        rows_per_day=300,
        seed=1,
        root=DataRoot.open(),
        cfg=load_dataset_config(),
    )
    churn_registry().client.delete_registered_model_alias("churn-model", registry.CHALLENGER)  # nothing in shadow
    tag_version(1, post_change_from=date(2026, 9, 11), window=TrainingWindow(holdout_to=date(2026, 9, 12)))
    ctx = context(overrides={"performance": {"auc_tolerance": 0.99, "f1_relative_drop": 0.99}})
    for step in (
        daily.ingest,
        daily.validate,
        daily.score,
        daily.drift,
        daily.performance,
        daily.failure_risk,
        daily.decide_day,
    ):
        step(ctx)
    assert ctx.result(Decision).to_json() == {
        "decision": "retrain",
        "reasons": ["refresh: champion learnt the change of 2026-09-11 from 2 labelled day(s); 4 are labelled now"],
    }
    result = daily.retrain(ctx)
    assert result.registered and result.change_day == "2026-09-11" and result.refresh_of == 1
    assert result.window["holdout_from"] == result.window["holdout_to"] == "2026-09-14"
    margin = result.metrics["holdout_auc"] - result.metrics["champion_holdout_auc"]
    assert churn_registry().version_by_alias(registry.CHALLENGER).tags.refresh_of == 1
    promoted = daily.promote(ctx)
    assert promoted.promoted and promoted.version == result.version, promoted
    assert (
        f"refreshes champion v1 on more labelled days since the change on 2026-09-11: +{margin:.3f} AUC"
        in promoted.reason
    )
    assert aliases() == {"champion": result.version, "challenger": None, "previous": 1}
    assert context("2026-09-22").versions.champion == result.version


def test_a_refresh_challenger_waits_in_shadow_once_the_champion_it_beat_is_no_longer_champion(world):
    from datetime import date

    from churnguard.promotion import should_promote

    tag_version(2, post_change_from=date(2026, 9, 11), refresh_of=1, champion_holdout_auc=0.7, reference_auc=0.75)
    ctx = context()
    ok, reason = should_promote(ctx, False)
    assert ok and "challenger v2 refreshes champion v1" in reason and "+0.050 AUC" in reason
    tag_version(2, refresh_of=7)  # trained against another champion
    ok, reason = should_promote(ctx, False)
    assert not ok and "challenger v2 in shadow" in reason
