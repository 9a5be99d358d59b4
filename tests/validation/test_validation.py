"""The validation gate: suite generated from config + profile, outcomes and messages for good and
hostile batches, reports written through the storage, speed."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from churnguard.batches import batch_chunks, read_batch
from churnguard.cli_validate import cli_main
from churnguard.config import ConfigError, load_dataset_config, load_drift_config
from churnguard.data import load_reference, split_reference
from churnguard.dataroot import DataRoot
from churnguard.drift import fit_profile
from churnguard.storage import open_storage
from churnguard.validation import (
    ValidationConfig,
    build_suite,
    load_validation_config,
    validate_batch,
)
from tests.conftest import BIN

VALIDATION = load_validation_config()


def drift_shaped_profile(train: pd.DataFrame, cfg) -> dict:
    """The keys of ``churnguard.drift`` profiles that validation reads, built here from the train split."""

    def key(value) -> str:
        return str(int(value)) if isinstance(value, int | np.integer | float) else str(value)

    numeric = {
        c: {"min": float(train[c].min()), "max": float(train[c].max()), "mean": float(train[c].mean())}
        for c in cfg.numeric
    }
    categorical = {
        c: {
            "kind": "binary" if c in cfg.binary else "categorical",
            "categories": {key(v): int(n) for v, n in train[c].value_counts().items()},
        }
        for c in [*cfg.binary, *cfg.categorical]
    }
    return {"schema_version": 1, "version": "test-profile", "numeric": numeric, "categorical": categorical}


@pytest.fixture(scope="module")
def telco():
    cfg = load_dataset_config("telco")
    return cfg, split_reference(load_reference(cfg), cfg)


@pytest.fixture(scope="module")
def profile(telco) -> dict:
    cfg, split = telco
    return drift_shaped_profile(split.train, cfg)


@pytest.fixture
def good(telco) -> pd.DataFrame:
    """1,000 real held-out Telco rows as the landing zone carries them (no target)."""
    cfg, split = telco
    return split.held_out.drop(columns=[cfg.target.column]).head(1000).reset_index(drop=True)


@pytest.fixture
def profile_file(tmp_path, profile):
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile))
    return path


def write(tmp_path, name: str, df: pd.DataFrame):
    path = tmp_path / name
    df.to_parquet(path, index=False)
    return path


def run_cli(capsys, path, profile_file, *extra: str) -> tuple[int, list[str]]:
    code = cli_main([str(path), "--profile", str(profile_file), "--dataset", "telco", *extra])
    out = capsys.readouterr()
    return code, out.out.splitlines() + out.err.splitlines()


# --- the suite ---------------------------------------------------------------------------------------------
def test_suite_marks_every_expectation_error_or_warn(telco, profile):
    cfg, _ = telco
    suite = build_suite(cfg, profile, VALIDATION)
    metas = [e.meta for e in suite.expectations]
    assert {m["severity"] for m in metas} == {"error", "warn"}
    assert {m["rule"] for m in metas} == {
        "row_count",
        "column_set",
        "type",
        "not_null",
        "unique",
        "finite",
        "domain",
        "range",
        "value_set",
    }
    assert {(m["rule"], m["severity"]) for m in metas if m["rule"] == "range"} == {("range", "warn")}
    strict = build_suite(cfg, profile, ValidationConfig(ranges={"error_share": 0.05}))
    assert {(e.meta["rule"], e.meta["severity"]) for e in strict.expectations if e.meta["rule"] == "range"} == {
        ("range", "error"),
        ("range", "warn"),
    }
    assert all(m["severity"] == "warn" for m in metas if m["rule"] == "value_set")


def test_suite_ranges_and_value_sets_come_from_the_profile(telco, profile):
    cfg, _ = telco
    suite = build_suite(cfg, profile, VALIDATION)
    tol = load_validation_config().ranges.tolerance
    lo, hi = profile["numeric"]["monthly_charges"]["min"], profile["numeric"]["monthly_charges"]["max"]
    ranges = [e for e in suite.expectations if e.meta["rule"] == "range" and e.column == "monthly_charges"]
    assert {(e.min_value, e.max_value) for e in ranges} == {(lo - tol * (hi - lo), hi + tol * (hi - lo))}
    value_sets = {e.column: set(e.value_set) for e in suite.expectations if e.meta["rule"] == "value_set"}
    assert value_sets["contract"] == set(profile["categorical"]["contract"]["categories"])
    assert value_sets["female"] == {0, 1}
    domain = [e for e in suite.expectations if e.meta["rule"] == "domain" and e.column == "tenure"]
    assert domain[0].min_value == 0 and domain[0].meta["severity"] == "error"


def test_suite_is_built_once_per_profile(telco, profile):
    cfg, _ = telco
    assert build_suite(cfg, profile, VALIDATION) is build_suite(cfg, json.loads(json.dumps(profile)), VALIDATION)
    other = json.loads(json.dumps(profile))
    other["numeric"]["tenure"]["max"] = 100.0
    assert build_suite(cfg, other, VALIDATION) is not build_suite(cfg, profile, VALIDATION)


def test_profile_lacking_a_column_is_a_value_error(telco, profile):
    cfg, _ = telco
    broken = json.loads(json.dumps(profile))
    del broken["categorical"]["contract"]
    with pytest.raises(ValueError, match="lacks column.*contract"):
        build_suite(cfg, broken, VALIDATION)


def test_the_drift_profile_has_the_shape_validation_reads(telco, profile):
    cfg, split = telco
    ours = fit_profile(split.train, cfg, load_drift_config()).to_dict()
    assert ours["numeric"]["tenure"]["min"] == profile["numeric"]["tenure"]["min"]
    assert ours["categorical"]["partner"]["categories"] == profile["categorical"]["partner"]["categories"]
    assert ours["categorical"]["contract"]["categories"] == profile["categorical"]["contract"]["categories"]


# --- the library call --------------------------------------------------------------------------------------
def test_good_held_out_batch_passes(telco, profile, good):
    cfg, _ = telco
    result = validate_batch(good, cfg, profile, VALIDATION)
    assert (result.status, result.exit_code) == ("pass", 0), result.lines()
    assert result.failures == [] and result.warnings == []
    assert result.evaluated > 60


def spread_errors(good: pd.DataFrame, missing_charges: list[int]) -> pd.DataFrame:
    """``good`` with errors and warnings in every 300-row chunk, a duplicate id split across chunks."""
    bad = good.copy()
    bad.loc[950, "customer_id"] = bad.loc[10, "customer_id"]  # chunks 0 and 3
    bad.loc[[400, 401], "customer_id"] = bad.loc[402, "customer_id"]  # within chunk 1
    bad.loc[5, "customer_id"] = None
    bad.loc[[20, 650], "tenure"] = -3.0
    bad.loc[320, "monthly_charges"] = np.inf
    bad.loc[missing_charges, "total_charges"] = np.nan
    bad.loc[[1, 2, 3, 4, 299, 300, 601], "contract"] = "Weekly"
    return bad


def comparable(result) -> dict:
    return {k: v for k, v in result.to_dict().items() if k not in ("validated_at", "elapsed_seconds")}


@pytest.mark.parametrize(
    "missing_charges",
    [[*range(24), *range(500, 510)], [*range(30), *range(600, 630)]],
    ids=["optional_missing_over_the_share_in_one_chunk_only", "over_the_share_in_all"],
)
def test_a_batch_validated_in_chunks_has_exactly_the_issues_of_the_whole(telco, profile, good, missing_charges):
    cfg, _ = telco
    bad = spread_errors(good, missing_charges)
    whole = validate_batch(bad, cfg, profile, VALIDATION, chunk_rows=len(bad))
    sliced = validate_batch(bad, cfg, profile, VALIDATION, chunk_rows=300)
    streamed = validate_batch(
        (bad.iloc[i : i + 300].reset_index(drop=True) for i in range(0, 1000, 300)),
        cfg,
        profile,
        VALIDATION,
        name="<DataFrame>",
    )
    assert comparable(sliced) == comparable(whole) == comparable(streamed)
    assert whole.evaluated == sliced.evaluated == len(sliced.expectations)  # every outcome, merged alike
    assert {o.status for o in sliced.expectations} >= {"fail", "warn", "pass"}
    lines = "\n".join(whole.failures)
    assert "column 'customer_id' unique: 5 of 1000 rows" in lines and bad.loc[10, "customer_id"] in lines
    assert ("column 'total_charges' not_null" in lines) == (len(missing_charges) > 50)
    assert "column 'contract' value_set: 7 of 1000 rows" in "\n".join(whole.warnings)


@pytest.mark.parametrize("dtype", ["object", "string"])
def test_offending_rows_without_an_id_show_as_missing_id_whatever_the_id_dtype(telco, profile, good, dtype):
    cfg, _ = telco
    bad = good.astype({"customer_id": dtype})
    bad.loc[[3, 7], "customer_id"] = None
    bad.loc[[3, 7, 9], "tenure"] = -5.0

    result = validate_batch(bad, cfg, profile, VALIDATION)

    lines = {line.split(":")[0]: line for line in result.failures}
    assert lines["column 'tenure' domain"].endswith(f"; rows (missing id), {good.customer_id[9]}")
    assert lines["column 'customer_id' not_null"].endswith("2 of 1000 rows (0.2%) null")  # no ids to show


def test_a_chunk_without_any_id_merges_like_the_whole(telco, profile, good):
    cfg, _ = telco
    bad = good.copy()
    bad["customer_id"] = bad["customer_id"].astype(object)
    bad.loc[300:599, "customer_id"] = None  # the second 300-row chunk has no id at all
    bad.loc[900, "customer_id"] = bad.loc[0, "customer_id"]
    whole = validate_batch(bad, cfg, profile, VALIDATION, chunk_rows=len(bad))
    sliced = validate_batch(bad, cfg, profile, VALIDATION, chunk_rows=300)
    assert comparable(sliced) == comparable(whole)
    assert any("unique: 2 of 1000 rows" in line for line in whole.failures)


def test_unseen_category_is_a_warning_and_warn_on_the_validation_page_not_failed(telco, profile, good):
    """GX calls any unmet expectation failed; churnguard's page says WARN where the batch goes on."""
    from churnguard.validation.html import render_page

    cfg, _ = telco
    good.loc[[3, 8], "payment_method"] = "Digital wallet"
    result = validate_batch(good, cfg, profile, VALIDATION)
    assert (result.status, result.exit_code) == ("warn", 1)
    assert result.failures == []
    [line] = result.warnings
    assert "column 'payment_method' value_set" in line and "'Digital wallet'" in line
    assert good.customer_id[3] in line and good.customer_id[8] in line

    report = json.loads(result.to_json())
    outcomes = report["expectations"]
    assert len(outcomes) == report["evaluated_expectations"] > 60
    (warned,) = [o for o in outcomes if o["status"] != "pass"]
    assert warned | {"observed": None, "sample_ids": None} == {
        "status": "warn",
        "severity": "warn",
        "rule": "value_set",
        "column": "payment_method",
        "observed": None,
        "expectation": "expect_column_values_to_be_in_set",
        "sample_ids": None,
    }
    assert sorted(warned["sample_ids"]) == sorted(good.customer_id[[3, 8]])
    page = render_page(report, "2026-09-01", {"validation.json (raw)": "validation.json"})
    assert "Validation of 2026-09-01: <span class='status warn'>WARN</span>" in page
    assert "<td>payment_method</td><td>value_set</td><td>warn</td><td>2 of 1000 rows (0.2%)" in page
    assert "Failed" not in page and "FAIL<" not in page
    assert f"{len(outcomes) - 1} passed" in page and '<a href="validation.json">' in page
    assert "<script" not in page and "http" not in page  # nothing fetched: the same page offline


def test_out_of_range_rows_warn_by_default_even_many(telco, profile, good):
    cfg, _ = telco
    good.loc[: len(good) // 10, "monthly_charges"] = 500.0
    moved = validate_batch(good, cfg, profile, VALIDATION)
    assert (moved.exit_code, moved.failures) == (1, [])
    assert "column 'monthly_charges' range: 101 of 1000 rows" in moved.warnings[0]


def test_with_an_error_share_a_small_share_warns_and_a_large_share_fails(telco, profile, good, config_dir):
    cfg, _ = telco
    path = config_dir / "validation.yaml"
    path.write_text(path.read_text().replace("error_share: null", "error_share: 0.05"))
    few, many = good.copy(), good.copy()
    few.loc[[0, 1], "monthly_charges"] = 500.0
    many.loc[: len(many) // 10, "monthly_charges"] = 500.0
    strict = load_validation_config()
    warned = validate_batch(few, cfg, profile, strict)
    failed = validate_batch(many, cfg, profile, strict)
    assert warned.exit_code == 1 and "column 'monthly_charges' range: 2 of 1000 rows" in warned.warnings[0]
    assert failed.exit_code == 2 and "allowed 5.0%" in failed.failures[0]
    assert failed.warnings == []  # the warn-level twin of a failed range check is not repeated
    twins = {o.severity: o.status for o in failed.expectations if (o.column, o.rule) == ("monthly_charges", "range")}
    assert twins == {"error": "fail", "warn": "skip"}  # on the page too: one FAIL, its twin SKIP


def test_optional_feature_may_be_missing_up_to_the_allowed_share(telco, profile, good):
    cfg, _ = telco
    good.loc[:9, "total_charges"] = np.nan
    assert validate_batch(good, cfg, profile, VALIDATION).exit_code == 0
    good.loc[:199, "total_charges"] = np.nan
    result = validate_batch(good, cfg, profile, VALIDATION)
    n = int(good["total_charges"].isna().sum())  # the 200 blanked plus the real data's own
    assert result.exit_code == 2
    assert result.failures == [
        f"column 'total_charges' not_null: {n} of 1000 rows ({n / 10:.1f}%) null, "
        f"allowed 5.0%; rows " + ", ".join(good.customer_id[:5])
    ]


def test_mixed_text_in_numeric_frame_column_fails_type(telco, profile, good):
    cfg, _ = telco
    good["tenure"] = good["tenure"].astype(object)
    good.loc[4, "tenure"] = "twelve"
    result = validate_batch(good, cfg, profile, VALIDATION)
    assert result.exit_code == 2
    assert result.failures == [
        f"column 'tenure' type: 1 of 1000 rows (0.1%) not numeric, e.g. 'twelve'; rows {good.customer_id[4]}"
    ]
    tenure = {o.rule: o.status for o in result.expectations if o.column == "tenure"}
    assert tenure == {"type": "fail", "not_null": "pass", "finite": "skip", "domain": "skip", "range": "skip"}


def test_binary_value_outside_zero_one_warns(telco, profile, good):
    cfg, _ = telco
    good.loc[0, "partner"] = 2
    result = validate_batch(good, cfg, profile, VALIDATION)
    assert result.exit_code == 1 and "column 'partner' value_set" in result.warnings[0]


def test_result_is_json_and_saved_with_every_expectations_outcome(telco, profile, good):
    cfg, _ = telco
    good.loc[0, "tenure"] = -1
    result = validate_batch(good, cfg, profile, VALIDATION)
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["status"] == "fail" and data["exit_code"] == 2
    assert data["issues"][0] | {"line": None} == {
        "severity": "error",
        "rule": "domain",
        "column": "tenure",
        "line": None,
        "observed": "1 of 1000 rows (0.1%) outside the domain rule [0, inf], e.g. -1",
        "sample_ids": [good.customer_id[0]],
    }
    storage = open_storage()
    uri = DataRoot(storage).write_report("2026-09-01", "validation.json", result.to_json().encode())
    assert uri.endswith("reports/ds=2026-09-01/validation.json")
    saved = json.loads(storage.read_bytes("reports/ds=2026-09-01/validation.json"))
    assert saved["failures"] == result.failures
    (failed,) = [o for o in saved["expectations"] if o["status"] == "fail"]
    assert (failed["column"], failed["rule"], failed["observed"]) == ("tenure", "domain", data["issues"][0]["observed"])
    assert storage.list_keys("reports/ds=2026-09-01") == ["reports/ds=2026-09-01/validation.json"]  # no GX docs


def test_an_unreadable_result_is_a_fail_page_naming_the_file(tmp_path, telco, profile):
    from churnguard.validation.html import render_page

    cfg, _ = telco
    missing = tmp_path / "nothing.parquet"
    result = validate_batch(batch_chunks(missing), cfg, profile, VALIDATION, name=str(missing))
    page = render_page(result.to_dict(), "2026-09-02")
    assert "<span class='status fail'>FAIL</span>" in page and "could not be read as a table" in page
    assert "<td>(file)</td><td>readable</td><td>error</td><td>no such file</td>" in page
    assert "nothing.parquet" in page and "no expectation was evaluated" in page


def test_partition_folder_reads_every_part(tmp_path, telco, profile, good):
    cfg, _ = telco
    folder = tmp_path / "landing" / "ds=2026-09-01"
    folder.mkdir(parents=True)
    good.iloc[:500].to_parquet(folder / "part-00000.parquet", index=False)
    good.iloc[500:].to_parquet(folder / "part-00001.parquet", index=False)
    result = validate_batch(batch_chunks(folder.as_uri()), cfg, profile, VALIDATION)
    assert (result.exit_code, result.n_rows) == (0, 1000)


@pytest.mark.integration
def test_batch_on_s3_is_validated_and_reported_there(s3_data_url, telco, profile, good):
    cfg, _ = telco
    storage = open_storage()
    uri = storage.write_partition("landing", "2026-09-03", good)
    result = validate_batch(read_batch(uri), cfg, profile, VALIDATION, name=uri)
    assert result.exit_code == 0
    DataRoot(storage).write_report("2026-09-03", "validation.json", result.to_json().encode())
    assert storage.exists("reports/ds=2026-09-03/validation.json")


# --- config ------------------------------------------------------------------------------------------------
def test_unknown_validation_key_names_file_and_key(config_dir):
    (config_dir / "validation.yaml").write_text("ranges:\n  tolerence: 0.2\n")
    with pytest.raises(ConfigError, match=r"validation.yaml: unknown key 'ranges.tolerence'"):
        load_validation_config()


def test_optional_feature_must_exist_in_the_dataset(config_dir, telco, profile):
    cfg, _ = telco
    (config_dir / "validation.yaml").write_text("missing:\n  optional:\n    telco: [total_charge]\n")
    refused = r"validation\.yaml: missing\.optional\.telco: unknown feature 'total_charge' \(features: tenure, "
    with pytest.raises(ConfigError, match=refused):
        build_suite(cfg, profile, load_validation_config())


# --- hostile batches through the CLI: exit code and one clear line naming file, column and rule ------------
def _iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    return load_iris(as_frame=True).frame


def _text_in_numeric(df: pd.DataFrame) -> pd.DataFrame:
    df["tenure"] = df["tenure"].astype(str)
    df.loc[0, "tenure"] = "twelve"
    return df


def _with(df: pd.DataFrame, **changes) -> pd.DataFrame:
    for column, (rows, value) in changes.items():
        df.loc[rows, column] = value
    return df


def _random_columns(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(np.random.default_rng(0).normal(size=(50, 3)), columns=["a", "b", "c"])


def _plus_minus_inf(df: pd.DataFrame) -> pd.DataFrame:
    return _with(_with(df, monthly_charges=([5], np.inf)), monthly_charges=([6], -np.inf))


HOSTILE = {
    # name: (frame -> batch written as parquet, exit code, fragments the issue lines must contain)
    "zero_rows": (lambda df: df.iloc[:0], 2, ["FAIL table row_count: 0 rows, expected at least 1"]),
    "missing_column": (lambda df: df.drop(columns=["tenure"]), 2, ["FAIL table column_set: missing column(s) tenure"]),
    "extra_column": (
        lambda df: df.assign(coupon_code="X1"),
        2,
        ["FAIL table column_set: unexpected column(s) coupon_code"],
    ),
    "text_in_numeric": (_text_in_numeric, 2, ["FAIL column 'tenure' type: 1000 of 1000 rows", "not numeric"]),
    "all_null_numeric": (
        lambda df: df.assign(monthly_charges=np.nan),
        2,
        ["FAIL column 'monthly_charges' not_null: 1000 of 1000 rows (100.0%) null"],
    ),
    "all_null_categorical": (
        lambda df: df.assign(contract=pd.Series([None] * len(df), dtype=object)),
        2,
        ["FAIL column 'contract' not_null: 1000 of 1000 rows (100.0%) null"],
    ),
    "nan_in_required": (
        lambda df: _with(df, tenure=([1, 2], np.nan)),
        2,
        ["FAIL column 'tenure' not_null: 2 of 1000 rows (0.2%) null"],
    ),
    "plus_minus_inf": (_plus_minus_inf, 2, ["FAIL column 'monthly_charges' finite: 2 of 1000 rows (0.2%) +-inf"]),
    "negative_tenure": (
        lambda df: _with(df, tenure=([7], -3.0)),
        2,
        ["FAIL column 'tenure' domain: 1 of 1000 rows (0.1%) outside the domain rule", "[0, inf], e.g. -3"],
    ),
    "duplicate_ids": (
        lambda df: _with(df, customer_id=([1], df.customer_id[0])),
        2,
        ["FAIL column 'customer_id' unique: 2 of 1000 rows (0.2%) with a duplicated id"],
    ),
    "iris": (
        lambda df: _iris(),
        2,
        [
            "FAIL table column_set: missing column(s) customer_id, tenure, monthly",
            "unexpected column(s) petal length (cm), petal width (cm)",
        ],
    ),
    "random_columns": (
        _random_columns,
        2,
        ["FAIL table column_set: missing column(s)", "unexpected column(s) a, b, c"],
    ),
    "unseen_category": (
        lambda df: _with(df, payment_method=([0], "Digital wallet")),
        1,
        ["WARN column 'payment_method' value_set: 1 of 1000 rows", "'Digital wallet'"],
    ),
    "good": (lambda df: df, 0, []),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_batch_gets_its_exit_code_and_one_line(case, tmp_path, capsys, good, profile_file):
    make, expected_code, fragments = HOSTILE[case]
    path = write(tmp_path, f"{case}.parquet", make(good.copy()))
    code, lines = run_cli(capsys, path, profile_file)
    assert code == expected_code, lines
    *issues, summary = lines
    assert summary.startswith(f"{path}: ") and f"(exit {expected_code})" in summary
    assert all(line.startswith(f"{path}: ") for line in issues)
    assert not any("Traceback" in line for line in lines)
    for fragment in fragments:
        assert any(fragment in line for line in issues), (fragment, issues)
    if expected_code == 0:
        assert issues == []


BAD_BYTES = {
    "empty_file": (lambda good: b"", "UNREADABLE file readable: empty file (0 bytes)"),
    "truncated": (lambda good: good[: len(good) // 2], "UNREADABLE file readable: truncated parquet file"),
    "corrupt": (
        lambda good: good[:8] + b"\x00garbage\x00" * 50 + good[-8:],
        "UNREADABLE file readable: corrupt parquet file (",
    ),
    "csv": (
        None,
        "UNREADABLE file readable: not a parquet file (no PAR1 magic bytes; it looks like CSV text "
        "starting 'customer_id,tenure,",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_BYTES))
def test_unreadable_file_exits_3_with_one_line(case, tmp_path, capsys, good, profile_file):
    make, fragment = BAD_BYTES[case]
    good_bytes = write(tmp_path, "good.parquet", good).read_bytes()
    path = tmp_path / "batch.parquet"
    if make is None:
        good.to_csv(path, index=False)
    else:
        path.write_bytes(make(good_bytes))
    code, lines = run_cli(capsys, path, profile_file)
    assert code == 3
    assert (
        lines[0] == f"{path}: {fragment}"
        if fragment.endswith("(0 bytes)")
        else lines[0].startswith(f"{path}: {fragment}")
    ), lines
    assert len(lines) == 2 and "UNREADABLE (exit 3)" in lines[1]


def test_missing_file_and_empty_folder_are_unreadable(tmp_path, capsys, profile_file):
    code, lines = run_cli(capsys, tmp_path / "absent.parquet", profile_file)
    assert code == 3 and lines[0] == f"{tmp_path / 'absent.parquet'}: UNREADABLE file readable: no such file"
    (tmp_path / "ds=2026-09-01").mkdir()
    code, lines = run_cli(capsys, tmp_path / "ds=2026-09-01", profile_file)
    assert code == 3 and "no parquet files in this folder" in lines[0]


# --- the CLI itself ----------------------------------------------------------------------------------------
def test_cli_json_output_is_the_result(tmp_path, capsys, good, profile_file):
    path = write(tmp_path, "batch.parquet", _with(good, tenure=([0], -1.0)))
    code, lines = run_cli(capsys, path, profile_file, "--json")
    data = json.loads("\n".join(lines))
    assert code == data["exit_code"] == 2
    assert data["source"] == str(path) and data["failures"][0].startswith("column 'tenure' domain")


def test_cli_without_profile_uses_the_reference_train_split(tmp_path, capsys, good):
    path = write(tmp_path, "batch.parquet", good)
    assert cli_main([str(path)]) == 0
    assert "PASS (exit 0)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--profile", "/nonexistent/profile.json"], "profile /nonexistent/profile.json: no such file"),
        (["--dataset", "nosuch"], "no dataset config named 'nosuch'"),
    ],
)
def test_cli_config_errors_are_one_line_exit_2(tmp_path, capsys, good, argv, fragment):
    path = write(tmp_path, "batch.parquet", good)
    assert cli_main([str(path), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("churnguard validate: ") and fragment in err and "\n" not in err


def test_cli_usage_error_returns_2_without_exiting(capsys):
    assert cli_main(["--bogus"]) == 2
    assert "usage: churnguard validate" in capsys.readouterr().err


@pytest.mark.integration
def test_console_script_prints_only_the_result(tmp_path, good, profile_file):
    path = write(tmp_path, "batch.parquet", good)
    proc = subprocess.run(
        [str(BIN / "churnguard"), "validate", str(path), "--profile", str(profile_file)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        f"{path}: PASS (exit 0): 1000 rows, 67 expectations, 0 failed, 0 warnings [dataset telco, profile test-profile]"
    ]
    assert proc.stderr == ""  # GX's INFO chatter is silenced under the CLI's INFO logging
