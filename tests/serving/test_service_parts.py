"""The service's parts without a server: request models generated from the dataset config, sticky routing,
API keys, the mapping of encoded columns back to the dataset's, and the canary check of a new version."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from churnguard.config import load_dataset_config
from churnguard.registry import CHALLENGER, CHAMPION
from churnguard.serving.auth import ADMIN, CLIENT, KeyRing
from churnguard.serving.explain import Explanation, owner_matrix
from churnguard.serving.routing import Deployment, bucket
from churnguard.serving.schema import InputError, build_schema
from churnguard.serving.served import CanaryError, ServedModel, check_canary
from churnguard.settings import Settings

DOMAINS = {
    **dict.fromkeys(
        ["female", "senior_citizen", "partner", "dependents", "phone_service", "paperless_billing"], [0, 1]
    ),
    **dict.fromkeys(
        ["online_security", "online_backup", "device_protection", "tech_support", "streaming_tv", "streaming_movies"],
        ["No", "No internet service", "Yes"],
    ),
    "multiple_lines": ["No", "No phone service", "Yes"],
    "internet_service": ["DSL", "Fiber optic", "No"],
    "contract": ["Month-to-month", "One year", "Two year"],
    "payment_method": ["Bank transfer (automatic)", "Credit card (automatic)", "Electronic check", "Mailed check"],
}
ROW = {
    "customer_id": "TELCO-00001",
    "tenure": 1,
    "monthly_charges": 29.85,
    "total_charges": 29.85,
    **dict.fromkeys(["female", "senior_citizen", "partner", "dependents", "phone_service", "paperless_billing"], 0),
    "multiple_lines": "No phone service",
    "internet_service": "DSL",
    **dict.fromkeys(
        ["online_security", "online_backup", "device_protection", "tech_support", "streaming_tv", "streaming_movies"],
        "No",
    ),
    "contract": "Month-to-month",
    "payment_method": "Electronic check",
}


@pytest.fixture(scope="module")
def schema():
    return build_schema(load_dataset_config("telco"), ["total_charges"], DOMAINS, max_batch_rows=3)


def refusal(parse, body) -> InputError:
    with pytest.raises(InputError) as err:
        parse(json.dumps(body).encode() if not isinstance(body, bytes) else body)
    return err.value


def test_a_valid_row_becomes_the_frame_the_model_was_trained_on(schema):
    without_total = {k: v for k, v in ROW.items() if k != "total_charges"}  # optional: absent is null
    frame = schema.frame(
        [schema.parse_customer(json.dumps(ROW).encode()), schema.parse_customer(json.dumps(without_total).encode())]
    )
    assert list(frame.columns) == ["customer_id", *schema.dataset.features]
    assert frame["tenure"].dtype == "float64" and frame["female"].dtype == "int64"
    assert frame["total_charges"].isna().tolist() == [False, True]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"tenure": "1"}, "tenure", "Input should be a valid number"),
        ({"tenure": -1}, "tenure", "Input should be greater than or equal to 0"),
        ({"monthly_charges": None}, "monthly_charges", "Input should be a valid number"),
        ({"female": True}, "female", "Input should be a valid integer"),
        ({"female": 2}, "female", "Input should be less than or equal to 1"),
        ({"contract": "Three year"}, "contract", "Input should be 'Month-to-month', 'One year' or 'Two year'"),
        ({"churn": "Yes"}, "churn", "Extra inputs are not permitted"),
        ({"customer_id": ""}, "customer_id", "String should have at least 1 character"),
    ],
)
def test_a_bad_field_is_refused_by_name(schema, change, field, message):
    err = refusal(schema.parse_customer, {**ROW, **change})
    assert err.status == 422 and err.line == f"{field}: {message}"


def test_a_missing_required_field_malformed_json_and_a_non_object_are_refused(schema):
    assert refusal(schema.parse_customer, {k: v for k, v in ROW.items() if k != "contract"}).line == (
        "contract: Field required"
    )
    assert refusal(schema.parse_customer, b'{"tenure": ').line == "body: malformed JSON at line 1 column 12"
    nan = json.dumps({**ROW, "tenure": float("nan")}).encode()  # json writes NaN, and Python reads it
    assert refusal(schema.parse_customer, nan).line == "tenure: Input should be a finite number"
    assert refusal(schema.parse_customer, [ROW]).line == "body: expected a JSON object, got list"


def test_an_oversize_batch_is_413_before_its_rows_are_read_and_a_bad_row_is_named_by_index(schema):
    err = refusal(schema.parse_batch, {"customers": [{"not": "a row"}] * 4})
    assert (err.status, err.line) == (413, "customers: 4 rows, more than serving.max_batch_rows (3)")
    err = refusal(schema.parse_batch, {"customers": [ROW, {**ROW, "contract": "x"}]})
    assert err.status == 422 and err.line.startswith("customers.1.contract: Input should be")
    assert refusal(schema.parse_batch, {"customers": []}).line.startswith("customers: List should have at least 1")
    assert len(schema.parse_batch(json.dumps({"customers": [ROW] * 3}).encode())) == 3


class _Model:
    name, version = "churn-model", 7


def test_split_routing_is_sticky_per_customer_and_close_to_the_share():
    dep = Deployment("split", 0.10, champion=object(), challenger=_Model())
    ids = [f"C-{i}" for i in range(20_000)]
    answered = [dep.answering(i) for i in ids]
    assert abs(Counter(answered)[CHALLENGER] / len(ids) - 0.10) < 0.01
    assert [dep.answering(i) for i in ids] == answered
    assert bucket("C-1", "churn-model:v7") == bucket("C-1", "churn-model:v7") != bucket("C-1", "churn-model:v8")
    assert Deployment("shadow", 0.10, champion=object(), challenger=_Model()).answering("C-1") == CHAMPION
    assert Deployment("split", 0.10, champion=object()).shares() == {CHAMPION: 1.0}


def test_keys_from_the_settings_and_a_file_admin_keys_included(tmp_path):
    secret = tmp_path / "keys"
    secret.write_text("# rotated 2026-12\nfile-key\n\n")
    ring = KeyRing.from_settings(Settings(api_keys="a, b", api_keys_file=secret, admin_api_keys="root"))
    assert [ring.role(k) for k in ("a", "b", "file-key", "root", "c", "")] == [
        CLIENT,
        CLIENT,
        CLIENT,
        ADMIN,
        None,
        None,
    ]
    with pytest.raises(ValueError, match="no API keys"):
        KeyRing.from_settings(Settings())
    with pytest.raises(ValueError, match=f"{tmp_path / 'absent'}: API key file unreadable"):
        KeyRing.from_settings(Settings(api_keys="a", api_keys_file=tmp_path / "absent"))


def test_encoded_columns_are_summed_back_into_their_dataset_column():
    encoded = ["numeric__tenure", "categorical__streaming_tv_No", "categorical__streaming_tv_extra_Yes"]
    owners = owner_matrix(encoded, ["tenure", "streaming_tv", "streaming_tv_extra"])
    assert owners.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


class _Scores:
    """A stand-in model that scores every row with ``value`` (what a version with a broken artifact might)."""

    def __init__(self, value: float, threshold: float = 0.3) -> None:
        self.value, self.threshold = value, threshold

    def predict_proba(self, frame):
        return np.full(len(frame), self.value)


class _Explains:
    def __init__(self, base: float, margin: float) -> None:
        self.base, self.margin = base, margin

    def explain(self, frame):
        return [Explanation(self.base, self.margin, [("tenure", 0.0)]) for _ in range(len(frame))]


def served(model, explainer) -> ServedModel:
    return ServedModel("churn-model", 9, "run", model, explainer, datetime.now(UTC))


def test_the_canary_refuses_a_version_that_scores_or_explains_wrongly():
    canary = pd.DataFrame({"tenure": [1.0, 2.0]})
    logit = float(np.log(0.25 / 0.75))
    check_canary(served(_Scores(0.25), _Explains(logit, logit)), canary)  # coherent: passes
    with pytest.raises(CanaryError, match=r"churn-model v9: canary scores outside \[0, 1\]: nan"):
        check_canary(served(_Scores(float("nan")), _Explains(logit, logit)), canary)
    with pytest.raises(CanaryError, match="threshold 1.0 outside"):
        check_canary(served(_Scores(0.25, threshold=1.0), _Explains(logit, logit)), canary)
    with pytest.raises(CanaryError, match="explanation sums to 0.50000, the score's margin is -1.09861"):
        check_canary(served(_Scores(0.25), _Explains(0.5, logit)), canary)
