"""Label deliveries: the label suite, quarantine of rejected deliveries, and measuring every valid delivery
of an observed day (a second delivery adds to the first, unknown customers are counted, a day no run
measured is caught up by the next run)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from churnguard import performance, registry, training
from churnguard.config import TargetConfig, load_dataset_config
from churnguard.dataroot import DataRoot
from churnguard.labels import row_hashes, validate_labels
from churnguard.performance import quarantine_labels, read_labels
from churnguard.storage import frame_to_parquet_bytes, open_storage
from churnguard.store import open_store, schema
from tests.conftest import day_context

CFG = load_dataset_config("telco")
OBSERVED = date(2026, 9, 1)
ARRIVED = OBSERVED + timedelta(days=7)


def delivery(churn, observed: str = "2026-09-01", ids: list[str] | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": ids or [f"c{i}" for i in range(len(churn))], "observed_ds": observed, "churn": churn}
    )


def check(frame: pd.DataFrame, scored: set[str] = frozenset({"2026-09-01"}), ds: str = "2026-09-08"):
    return validate_labels(frame, CFG, set(scored), ds=ds, source=DataRoot.labels_key(ds))


# --- the suite ------------------------------------------------------------------------------------------
def test_a_delivery_of_the_configured_values_passes_as_it_is():
    result = check(delivery(["Yes", "No", "No"]))
    assert result.status == "pass" and result.ok and result.issues == []
    assert result.labels["churn"].tolist() == ["Yes", "No", "No"] and result.rows == 3


@pytest.mark.parametrize("values", [["1", "0"], ["yes", "no"], ["Maybe", "No"]])
def test_a_target_value_outside_the_two_classes_is_an_error_naming_the_column_and_the_rule(values):
    result = check(delivery(values * 3))
    assert result.status == "fail" and result.labels is None
    (line,) = result.failures
    assert line.startswith("column 'churn' value_set: ") and "not 'Yes' or 'No'" in line
    assert f"{values[0]!r} (3)" in line
    assert result.lines()[0].startswith("labels/ds=2026-09-08: FAIL column 'churn' value_set")


def test_a_numeric_or_boolean_target_is_a_type_error():
    assert check(delivery([1, 0])).failures == ["column 'churn' type: expected text, got int64, e.g. 1, 0"]
    assert check(delivery([True, False])).failures == ["column 'churn' type: expected text, got bool, e.g. True, False"]


def test_the_columns_must_be_exactly_id_observed_day_and_target():
    extra = check(delivery(["Yes"]).assign(score=0.3))
    missing = check(delivery(["Yes"]).drop(columns="observed_ds"))
    assert extra.failures == ["table column_set: expected exactly customer_id, observed_ds, churn: unexpected score"]
    assert missing.failures == [
        "table column_set: expected exactly customer_id, observed_ds, churn: missing observed_ds"
    ]


def test_missing_values_are_errors_with_the_ids_of_their_rows():
    result = check(delivery(["Yes", None, "No"]))
    assert result.failures == ["column 'churn' not_null: 1 of 3 rows missing; rows c1"]


def test_observed_day_must_be_an_iso_date_not_after_the_delivery():
    assert check(delivery(["Yes"], observed="2026/09/01")).failures == [
        "column 'observed_ds' date: 1 of 1 rows not an ISO date (YYYY-MM-DD): '2026/09/01' (1); rows c0"
    ]
    assert check(delivery(["Yes"], observed="2026-09-09")).failures == [
        "column 'observed_ds' arrival: 1 of 1 rows observed after the delivery's date 2026-09-08: "
        "'2026-09-09' (1); rows c0"
    ]
    assert check(delivery(["Yes"], observed="2026-09-08"), scored={"2026-09-08"}).status == "pass"  # no delay


def test_labels_of_a_day_never_scored_are_kept_with_a_warning_that_counts_them():
    result = check(delivery(["Yes", "No"], observed="2026-08-30"))
    assert result.status == "warn" and len(result.labels) == 2
    assert result.warnings == [
        "column 'observed_ds' scored: 2 of 2 rows for days never scored (quarantined or "
        "never landed), kept and counted: '2026-08-30' (2)"
    ]


def test_a_customer_repeated_within_a_delivery_is_a_warning_and_the_last_label_is_kept():
    result = check(delivery(["Yes", "No", "No"], ids=["a", "b", "a"]))
    assert result.status == "warn" and result.warnings[0].startswith("column 'customer_id' unique: 1 of 3 rows")
    assert result.labels.set_index("customer_id")["churn"].to_dict() == {"b": "No", "a": "No"}


def test_without_a_negative_value_other_values_count_as_no_churn_but_never_silently():
    cfg = CFG.model_copy(update={"target": TargetConfig(column="churn", positive="Yes")})
    result = validate_labels(
        delivery(["Yes", "nope"]), cfg, {"2026-09-01"}, ds="2026-09-08", source=DataRoot.labels_key("2026-09-08")
    )
    assert result.status == "warn" and "no target.negative" in result.warnings[0] and "'nope' (1)" in result.warnings[0]


def test_the_configured_classes_are_the_values_of_the_reference_tables():
    from churnguard.data import load_reference

    for name in ("telco", "mlc_churn"):
        cfg = load_dataset_config(name)
        assert set(load_reference(cfg)[cfg.target.column]) == {cfg.target.positive, cfg.target.negative}
    with pytest.raises(ValueError, match="must differ"):
        TargetConfig(column="churn", positive="Yes", negative="Yes")


# --- reading and quarantine -----------------------------------------------------------------------------
@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.integration)])  # a moto server
def storage(request):
    if request.param == "s3":
        request.getfixturevalue("s3_data_url")
    return open_storage()


GOOD = frame_to_parquet_bytes(delivery(["Yes", "No"]))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (
            b"customer_id,observed_ds,churn\nc1,2026-09-01,Yes\n",
            "not a parquet file (no PAR1 magic bytes; it looks like CSV text starting 'customer_id,observed_ds",
        ),
        (GOOD[: len(GOOD) // 2], "truncated parquet file"),
        (b"PAR1\x00junk\x07PAR1", "corrupt parquet file"),
        (b"", "empty file (0 bytes)"),
    ],
)
def test_an_unreadable_delivery_is_rejected_and_quarantined_beside_the_batches(storage, content, says):
    storage.write_partition("landing", ARRIVED, pd.DataFrame({"customer_id": ["x"]}))
    storage.move_partition("landing", ARRIVED, "quarantine")  # a quarantined batch of the same date
    storage.write_files(f"labels/ds={ARRIVED}", {"part-00000.parquet": content})

    result = read_labels(DataRoot(storage), ARRIVED, CFG, {"2026-09-01"})
    assert result.status == "unreadable" and not result.ok
    (line,) = result.lines()
    assert line.startswith(f"labels/ds={ARRIVED}: UNREADABLE file readable: part-00000.parquet: {says}")

    where = quarantine_labels(DataRoot(storage), result)
    assert where == storage.uri(f"quarantine/labels/ds={ARRIVED}")
    assert storage.list_partitions("labels") == []
    assert storage.list_partitions("quarantine/labels") == [ARRIVED]
    assert storage.list_partitions("quarantine") == [ARRIVED]  # the batch only: the nested folder is not a day
    report = json.loads(storage.read_bytes(f"reports/ds={ARRIVED}/labels_validation.json"))
    assert report["status"] == "unreadable" and report["quarantined_to"] == where


def test_retraining_reads_only_valid_deliveries():
    from churnguard.retrain import labelled_days

    storage = open_storage()
    ids = [f"c{i}" for i in range(6)]
    storage.write_partition("landing", OBSERVED, pd.DataFrame({"customer_id": ids, "tenure": 1.0}))
    storage.write_partition("labels", ARRIVED, delivery(["Yes", "No", "No"], ids=ids[:3]))
    storage.write_partition("labels", ARRIVED + timedelta(days=1), delivery(["1", "0", "0"], ids=ids[3:]))

    rows = labelled_days(DataRoot(storage), ARRIVED + timedelta(days=1), OBSERVED, OBSERVED, CFG)
    assert sorted(rows["customer_id"]) == ids[:3]


# --- measuring ------------------------------------------------------------------------------------------
@pytest.fixture
def one_champion(monkeypatch):
    """Version 1 is the champion, with threshold 0.3 and reference AUC 0.85 / F1 0.6, without a registry."""
    monkeypatch.setattr(training, "load_version_model", lambda models, version: SimpleNamespace(threshold=0.3))
    monkeypatch.setattr(registry.ModelRegistry, "version_by_alias", lambda self, alias: SimpleNamespace(version=1))
    monkeypatch.setattr(performance, "reference_metrics", lambda models, version: (0.85, 0.6))


def scored_day(storage, observed: date, n: int) -> pd.DataFrame:
    """Scores of ``n`` customers of ``observed`` written by champion v1; returns their true labels."""
    rng = np.random.default_rng(observed.toordinal())
    y = rng.random(n) < 0.3
    ids = [f"{observed:%m%d}-{i}" for i in range(n)]
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.5 * y - 1)))
    storage.write_partition(
        "scores", observed, pd.DataFrame({"customer_id": ids, "champion_score": scores, "champion_version": 1})
    )
    return delivery(np.where(y, "Yes", "No").tolist(), observed=observed.isoformat(), ids=ids)


@pytest.mark.parametrize("values", [["1", "0"], ["yes", "no"], ["Maybe", "No"]])
def test_labels_with_other_values_are_quarantined_with_the_reason_and_never_measured(one_champion, values):
    storage, store = open_storage(), open_store()
    labels = scored_day(storage, OBSERVED, 200)
    storage.write_partition("labels", ARRIVED, labels.assign(churn=np.resize(values, len(labels))))

    result = performance.measure_day(day_context(ARRIVED, storage, store))

    (entry,) = result.deliveries
    assert entry["status"] == "fail" and entry["rows"] == 200
    (line,) = entry["issues"]
    assert line.startswith(f"labels/ds={ARRIVED}: FAIL column 'churn' value_set: ")
    assert entry["quarantined_to"] == storage.uri(f"quarantine/labels/ds={ARRIVED}")
    assert result.measured == [] and store.rows(schema.performance) == [] and not result.measured_failure
    assert storage.list_partitions("labels") == [] and storage.list_partitions("quarantine/labels") == [ARRIVED]
    (alert,) = store.rows(schema.alerts)
    assert alert["ds"] == ARRIVED.isoformat() and alert["kind"] == "label_delivery" and "value_set" in alert["message"]
    report = json.loads(storage.read_bytes(f"reports/ds={ARRIVED}/labels_validation.json"))
    assert report["status"] == "fail" and report["failures"] == [line.split(": FAIL ", 1)[1]]


def test_a_second_delivery_for_an_observed_day_adds_to_the_first(one_champion):
    storage, store = open_storage(), open_store()
    labels = scored_day(storage, OBSERVED, 300)
    storage.write_partition("labels", ARRIVED, labels[:150])
    first = performance.measure_day(day_context(ARRIVED, storage, store))
    # two days later: the other 150, and corrections of 10 customers of the first delivery
    corrected = labels[:10].assign(churn=np.where(labels["churn"][:10] == "Yes", "No", "Yes"))
    storage.write_partition("labels", ARRIVED + timedelta(days=2), pd.concat([labels[150:], corrected]))
    quiet = performance.measure_day(day_context(ARRIVED + timedelta(days=1), storage, store))
    second = performance.measure_day(day_context(ARRIVED + timedelta(days=2), storage, store))

    assert [m["labelled_rows"] for m in first.measured] == [150]
    assert quiet.measured == [] and quiet.deliveries == []
    assert [m["labelled_rows"] for m in second.measured] == [300]
    (row,) = store.rows(schema.performance)
    final = pd.concat([corrected, labels[10:]])
    assert row["labelled_rows"] == 300 and row["measured_ds"] == (ARRIVED + timedelta(days=2)).isoformat()
    assert row["churn_rate"] == pytest.approx((final["churn"] == "Yes").mean())


def test_labels_of_customers_the_day_never_scored_are_counted_not_measured(one_champion):
    storage, store = open_storage(), open_store()
    labels = scored_day(storage, OBSERVED, 200)
    strangers = delivery(["No"] * 7, ids=[f"ghost-{i}" for i in range(7)])
    storage.write_partition("labels", ARRIVED, pd.concat([labels, strangers]))

    result = performance.measure_day(day_context(ARRIVED, storage, store))

    assert result.unknown_ids == 7
    assert [(m["labelled_rows"], m["unknown_ids"]) for m in result.measured] == [(200, 7)]
    assert result.deliveries == [{"ds": ARRIVED.isoformat(), "status": "pass", "rows": 207, "issues": []}]


def test_labels_that_arrived_on_a_day_no_run_measured_are_measured_by_the_next_run(one_champion):
    storage, store = open_storage(), open_store()
    for k in range(3):
        labels = scored_day(storage, OBSERVED + timedelta(days=k), 200)
        storage.write_partition("labels", ARRIVED + timedelta(days=k), labels)

    performance.measure_day(day_context(ARRIVED, storage, store))
    # the run of ARRIVED + 1 failed before measuring (its batch was quarantined)
    result = performance.measure_day(day_context(ARRIVED + timedelta(days=2), storage, store))

    assert [e["ds"] for e in result.deliveries] == ["2026-09-09", "2026-09-10"]
    assert [m["observed_ds"] for m in result.measured] == ["2026-09-02", "2026-09-03"]
    assert {r["observed_ds"]: r["measured_ds"] for r in store.rows(schema.performance)} == {
        "2026-09-01": "2026-09-08",
        "2026-09-02": "2026-09-10",
        "2026-09-03": "2026-09-10",
    }


@pytest.mark.integration
def test_the_daily_run_after_a_quarantined_batch_measures_the_labels_that_arrived_that_day():
    """Labels 2 days late; the batch of 09-05 is quarantined, so no run measures the labels that arrived on
    09-05 (for 09-03) that day: the run of 09-06 does. The labels for 09-05 itself are kept and counted."""
    from churnguard.landing import simulate
    from churnguard.steps import run_days
    from tests.registry_helpers import bootstrap

    bootstrap("telco", seed=0)
    simulate(
        date(2026, 9, 1),
        7,
        "none",
        rows_per_day=300,
        label_delay=2,
        seed=1,
        root=DataRoot.open(),
        cfg=load_dataset_config(),
    )
    storage, store = open_storage(), open_store()
    batch = storage.read_partition("landing", "2026-09-05")
    storage.write_partition("landing", "2026-09-05", batch.assign(tenure=-5.0))

    run_days(date(2026, 9, 1), date(2026, 9, 7))

    assert storage.partition_exists("quarantine", "2026-09-05")
    measured = {r["observed_ds"]: r["measured_ds"] for r in store.rows(schema.performance, where={"role": "champion"})}
    assert measured == {
        "2026-09-01": "2026-09-03",
        "2026-09-02": "2026-09-04",
        "2026-09-03": "2026-09-06",
        "2026-09-04": "2026-09-06",
    }
    catch_up = json.loads(storage.read_bytes("reports/ds=2026-09-06/summary.json"))["performance"]
    assert [(e["ds"], e["status"]) for e in catch_up["deliveries"]] == [("2026-09-05", "pass"), ("2026-09-06", "pass")]
    unscored = json.loads(storage.read_bytes("reports/ds=2026-09-07/summary.json"))["performance"]
    (entry,) = unscored["deliveries"]
    assert entry["status"] == "warn" and entry["rows"] == 300 and "scored: 300 of 300 rows" in entry["issues"][0]
    assert unscored["measured"] == []


@pytest.mark.parametrize("rows", [7, 1_000_000])
def test_repeats_found_by_hashing_equal_pandas_duplicated(rows):
    import numpy as np

    from churnguard.labels import _repeated

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in rng.integers(0, 50, 500)],
            "observed_ds": [f"2026-09-0{i}" for i in rng.integers(1, 4, 500)],
        }
    )
    frame.loc[5, "customer_id"] = None
    keys = ["customer_id", "observed_ds"]
    assert _repeated(frame, keys, rows).equals(frame.duplicated(keys, keep="last"))


@pytest.mark.parametrize(
    "hash_ids", [row_hashes, lambda ids: np.zeros(len(ids), dtype=np.uint64)], ids=["hashed", "every-hash-shared"]
)
def test_labelled_customers_are_found_among_chunks_of_scores_by_their_ids(hash_ids):
    import pyarrow as pa

    rng = np.random.default_rng(3)
    labelled = [f"C{i}" for i in rng.permutation(60)[:40]]
    scored = [f"C{i}" for i in rng.permutation(80)]  # 20 labelled ones are missing, 40 never labelled
    matcher = performance._IdMatcher(pa.array(labelled, type=pa.large_string()), hash_ids)
    pairs = []
    for start in range(0, len(scored), 25):  # chunks of the day's scores
        at, rows = matcher.match(pa.array(scored[start : start + 25], type=pa.large_string()))
        pairs += [(labelled[a], scored[start + r]) for a, r in zip(at, rows, strict=True)]
    assert all(a == b for a, b in pairs)
    assert sorted(a for a, _ in pairs) == sorted(set(labelled) & set(scored))
    assert [labelled[i] for i in np.flatnonzero(matcher.found)] == [c for c in labelled if c in set(scored)]


def test_auc_is_measured_per_segment_from_the_values_scored_with_the_customers(one_champion):
    from sklearn.metrics import roc_auc_score

    storage, store = open_storage(), open_store()
    labels = scored_day(storage, OBSERVED, 400)
    # 300 month-to-month, 70 two-year (all churned), 30 one-year: too few; internet service left empty
    contract = np.repeat(["Month-to-month", "Two year", "One year"], [300, 70, 30])
    labels.loc[300:369, "churn"] = "Yes"
    scored = storage.read_partition("scores", OBSERVED).assign(contract=contract, internet_service=None)
    storage.write_partition("scores", OBSERVED, scored[::-1].reset_index(drop=True))  # matched by id, not row
    storage.write_partition("labels", ARRIVED, labels)

    (entry,) = performance.measure_day(day_context(ARRIVED, storage, store)).measured

    scores = scored["champion_score"].to_numpy()
    y = (labels["churn"] == "Yes").to_numpy()
    values = entry["segments"]["contract"]["values"]
    assert values["Month-to-month"]["roc_auc"] == pytest.approx(roc_auc_score(y[:300], scores[:300]), abs=1e-12)
    assert values["Two year"] == {
        "labelled_rows": 70,
        "positives": 70,
        "roc_auc": None,
        "reason": "one class only: all of 70 churned",
    }
    assert values["One year"]["roc_auc"] is None
    assert values["One year"]["reason"] == "30 labels < performance.segment_min_labels 50"
    assert entry["segments"]["internet_service"] == {"values": {}, "without_value": 400}


def test_a_day_scored_before_segments_were_configured_counts_its_customers_without_a_segment(one_champion):
    storage, store = open_storage(), open_store()
    storage.write_partition("labels", ARRIVED, scored_day(storage, OBSERVED, 200))

    (entry,) = performance.measure_day(day_context(ARRIVED, storage, store)).measured

    assert entry["roc_auc"] is not None
    assert entry["segments"]["contract"] == {"values": {}, "without_value": 200}
