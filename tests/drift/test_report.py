"""drift_report: severity rules, small-batch thresholds, history, awkward columns, JSON, CLI and HTML."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnguard.batches import file_chunks
from churnguard.cli_drift import cli_main
from churnguard.config import ConfigError, load_dataset_config, load_drift_config
from churnguard.data import load_reference, split_reference, target_array
from churnguard.dataroot import DataRoot
from churnguard.drift import ReferenceProfile, drift_report, drift_reports, fit_profile, render_html
from tests.conftest import hidden_in_two_year

DRIFT = load_drift_config()


@pytest.fixture(scope="module")
def telco():
    cfg = load_dataset_config("telco")
    split = split_reference(load_reference(cfg), cfg)
    return cfg, split.train, split.held_out


@pytest.fixture(scope="module")
def profile(telco):
    cfg, train, _ = telco
    return fit_profile(train, cfg, DRIFT)


def _json_roundtrip(report) -> dict:
    return json.loads(json.dumps(report.to_dict(), allow_nan=False))


def test_profile_round_trips_through_json_with_a_content_version(telco, profile):
    cfg, train, _ = telco
    again = ReferenceProfile.from_json(profile.to_json())
    assert again.to_dict() == profile.to_dict() and again.version == profile.version
    assert fit_profile(train, cfg, DRIFT).version == profile.version
    assert fit_profile(train.iloc[:-1], cfg, DRIFT).version != profile.version
    data = profile.to_dict()
    assert data["numeric"]["tenure"]["min"] == train["tenure"].min()
    assert data["numeric"]["total_charges"]["missing_rate"] == pytest.approx(train["total_charges"].isna().mean())
    assert sum(data["categorical"]["contract"]["categories"].values()) == len(train)
    assert set(data["categorical"]["female"]["categories"]) == {"0", "1"}
    assert len(data["numeric"]["monthly_charges"]["bin_counts"]) == 10


def test_profile_keeps_scores_labels_and_normalised_importance(telco):
    cfg, train, _ = telco
    scores = np.linspace(0, 1, len(train))
    data = fit_profile(
        train,
        cfg,
        DRIFT,
        scores=scores,
        labels=target_array(train, cfg),
        importance={"tenure": 3.0, "contract": 1.0},
    ).to_dict()
    assert sum(data["prediction"]["histogram"]["counts"]) == len(train)
    assert data["label"]["rate"] == pytest.approx(target_array(train, cfg).mean())
    assert data["importance"]["tenure"] == 0.75 and data["importance"]["female"] == 0.0
    with pytest.raises(ValueError, match="unknown feature"):
        fit_profile(train, cfg, DRIFT, importance={"nope": 1.0})


def test_same_distribution_batch_is_stable(profile, telco):
    report = drift_report(profile, telco[2], DRIFT)
    assert report.severity == "stable" and report.n_drifted == 0 and not report.dataset_drift


def test_sudden_shift_is_critical_and_weighted_by_importance(telco):
    cfg, train, held_out = telco
    prof = fit_profile(train, cfg, DRIFT, importance={"monthly_charges": 1.0, "tenure": 1.0})
    batch = held_out.assign(monthly_charges=held_out["monthly_charges"] + 25)
    report = drift_report(prof, batch, DRIFT)
    feature = report.features["monthly_charges"]
    assert report.severity == "critical" and report.drifted_features() == ["monthly_charges"]
    assert feature["severity"] == "critical" and feature["psi"] > feature["psi_threshold"]["critical"]
    assert report.weighted_psi == pytest.approx(0.5 * feature["psi"] + 0.5 * report.features["tenure"]["psi"])


def test_moderate_band_and_per_run_overrides(profile, telco):
    batch = telco[2].assign(monthly_charges=telco[2]["monthly_charges"] + 3)
    psi_value = drift_report(profile, batch, DRIFT).features["monthly_charges"]["psi"]
    assert 0 < psi_value < 1
    overrides = {"psi": {"moderate": psi_value * 0.5, "critical": psi_value * 2}, "tests": {"alpha": 1e-300}}
    report = drift_report(profile, batch, DRIFT, overrides=overrides)
    assert report.features["monthly_charges"]["severity"] == "moderate" and report.severity == "moderate"
    assert report.config["psi"]["moderate"] == psi_value * 0.5
    overrides["psi"]["critical"] = psi_value * 0.6
    assert drift_report(profile, batch, DRIFT, overrides=overrides).severity == "critical"
    with pytest.raises(ConfigError, match="psi.bins"):
        drift_report(profile, batch, DRIFT, overrides={"psi": {"bins": 1}})


def test_significant_but_negligible_shift_is_not_drift(profile, telco):
    """A large batch makes a tiny shift significant; the effect-size floor keeps it stable."""
    held_out = telco[2]
    batch = held_out.sample(200_000, replace=True, random_state=0)
    batch = batch.assign(tenure=batch["tenure"] + 0.5)
    feature = drift_report(profile, batch, DRIFT).features["tenure"]
    assert feature["test"]["p_adjusted"] < 0.05 and feature["test"]["effect"] < 0.1
    assert feature["severity"] == "stable"
    strict = drift_report(profile, batch, DRIFT, overrides={"tests": {"effect_floor": 0.0}}).features["tenure"]
    assert strict["severity"] == "moderate"


@pytest.mark.slow
def test_small_no_drift_batches_rarely_alarm_with_the_size_aware_threshold(telco, profile):
    """Batches of 100 rows drawn from held-out Telco rows: on the 10-bin numeric features the raw 0.1
    threshold fires on about a third of them (expected PSI ≈ 9 / 98), the size-aware one almost never."""
    held_out = telco[2]
    rng = np.random.default_rng(7)
    raw, adjusted, batches_alarmed, n_batches = [], [], 0, 200
    for _ in range(n_batches):
        report = drift_report(profile, held_out.iloc[rng.choice(len(held_out), 100, replace=False)], DRIFT)
        batches_alarmed += report.severity != "stable"
        for feature in report.features.values():
            adjusted.append(feature["psi"] >= feature["psi_threshold"]["moderate"])
            if feature["kind"] == "numeric":
                raw.append(feature["psi"] >= 0.1)
    assert np.mean(raw) > 0.2
    assert np.mean(adjusted) < 0.01
    assert batches_alarmed / n_batches < 0.10


def test_multiple_testing_correction_is_applied_across_features(profile, telco):
    batch = telco[2].iloc[:400]
    holm = drift_report(profile, batch, DRIFT, overrides={"tests": {"correction": "holm"}})
    bh = drift_report(profile, batch, DRIFT, overrides={"tests": {"correction": "bh"}})
    raw = [f["test"]["p_value"] for f in holm.features.values()]
    assert all(f["test"]["p_adjusted"] >= f["test"]["p_value"] for f in holm.features.values())
    smallest = min(holm.features.values(), key=lambda f: f["test"]["p_value"])
    assert smallest["test"]["p_adjusted"] == pytest.approx(min(1.0, len(raw) * min(raw)))
    assert all(
        bh.features[n]["test"]["p_adjusted"] <= holm.features[n]["test"]["p_adjusted"] + 1e-15 for n in holm.features
    )


def test_consecutive_drift_days_count_back_through_history(profile, telco):
    batch = telco[2].assign(monthly_charges=telco[2]["monthly_charges"] + 25)
    yesterday = drift_report(profile, batch, DRIFT).to_dict()
    history = [{"monthly_charges": True}, {"monthly_charges": False}, {"monthly_charges": True}, yesterday]
    report = drift_report(profile, batch, DRIFT, history=history)
    assert report.features["monthly_charges"]["drift_days"] == 3
    assert report.features["tenure"]["drift_days"] == 0
    assert drift_report(profile, batch, DRIFT).features["monthly_charges"]["drift_days"] == 1


def test_constant_all_missing_and_unseen_columns_are_reported_without_nan(telco):
    cfg, train, held_out = telco
    ref = train.assign(tenure=5.0, total_charges=np.nan)
    prof = fit_profile(ref, cfg, DRIFT)
    assert prof.to_dict()["numeric"]["total_charges"]["summary"] is None
    batch = held_out.assign(tenure=5.0, monthly_charges=np.nan)
    batch.loc[batch.index[:50], "contract"] = "Ten year"
    report = _json_roundtrip(drift_report(prof, batch, DRIFT))
    tenure, total, monthly = (report["features"][c] for c in ("tenure", "total_charges", "monthly_charges"))
    assert "constant_reference" in tenure["notes"] and tenure["psi"] == 0
    assert tenure["wasserstein"]["normalised"] is None and tenure["severity"] == "stable"
    assert "all_missing_reference" in total["notes"] and total["psi"] is None
    assert total["missing_rate"]["change"] < -0.99 and total["severity"] == "moderate"  # it started to arrive
    assert "all_missing_current" in monthly["notes"] and monthly["missing_rate"]["change"] == pytest.approx(
        1 - train["monthly_charges"].isna().mean()
    )
    assert monthly["severity"] == "moderate"
    contract = report["features"]["contract"]
    assert contract["unseen"] == {"Ten year": 50} and "unseen_categories" in contract["notes"]
    assert report["correlation"]["max_change"] is None


def test_reports_of_stacked_batches_equal_one_report_per_batch(telco):
    cfg, train, held_out = telco
    rng = np.random.default_rng(1)
    prof = fit_profile(train, cfg, DRIFT, scores=rng.beta(2, 5, len(train)))
    batches = [
        held_out.sample(n, random_state=i, replace=True).reset_index(drop=True)
        for i, n in enumerate([300, 1, 250, 400])
    ]
    batches[2].loc[:40, "contract"] = "Ten year"  # unseen categories, counted in their own batch only
    batches[2].loc[41:60, "payment_method"] = "Cheque by post"
    batches[3].loc[:30, ["monthly_charges", "contract"]] = np.nan  # missing values
    batches[3]["tenure"] += 30.0
    stacked = pd.concat(batches, ignore_index=True)
    offsets = np.cumsum([0, *map(len, batches)])
    scores = rng.beta(2, 5, len(stacked))

    reports = drift_reports(prof, stacked, offsets, DRIFT, scores=scores)

    assert len(reports) == len(batches)
    for i, batch in enumerate(batches):
        one = drift_report(prof, batch, DRIFT, scores=scores[offsets[i] : offsets[i + 1]])
        assert json.dumps(reports[i].to_dict()) == json.dumps(one.to_dict())  # every value and key order
    assert reports[2].features["contract"]["unseen"] == {"Ten year": 41}
    assert reports[3].features["contract"]["missing_rate"]["current"] == pytest.approx(31 / 400)
    assert reports[2].segments["columns"]["contract"]["unseen"] == {"Ten year": 41}
    assert any(b["status"] == "tested" for b in reports[3].segments["columns"]["contract"]["values"].values())

    pooled = drift_reports(prof, stacked, offsets, DRIFT, scores=scores, segments=False)
    for i, batch in enumerate(batches):
        one = drift_report(prof, batch, DRIFT, scores=scores[offsets[i] : offsets[i + 1]], segments=False).to_dict()
        assert json.dumps(pooled[i].to_dict()) == json.dumps(one)
        assert one["segments"] is None and any("segments=False" in note for note in one["notes"])
        full = reports[i].to_dict()
        for report in (one, full):  # which segments drifted: the only trace of them in a feature block
            report["features"] = {
                n: {k: v for k, v in f.items() if k != "segment_drift"} for n, f in report["features"].items()
            }
        assert {k: v for k, v in one.items() if k not in ("segments", "notes")} == {
            k: v for k, v in full.items() if k not in ("segments", "notes")
        }  # skipping the segments changes none of the pooled blocks (segments.raise_severity is off)


def test_binary_column_read_as_float_matches_its_integer_categories(profile, telco):
    batch = telco[2].assign(female=telco[2]["female"].astype(float))
    batch.loc[batch.index[:10], "female"] = np.nan
    feature = drift_report(profile, batch, DRIFT).features["female"]
    assert feature["unseen"] == {} and feature["missing_rate"]["current"] == pytest.approx(10 / len(batch))


def test_prediction_label_and_correlation_drift(telco):
    cfg, train, held_out = telco
    rng = np.random.default_rng(0)
    prof = fit_profile(train, cfg, DRIFT, scores=rng.beta(2, 5, len(train)), labels=target_array(train, cfg))
    batch = held_out.assign(total_charges=held_out["tenure"] * 5.0)
    labels = np.ones(len(batch))
    report = _json_roundtrip(drift_report(prof, batch, DRIFT, scores=rng.beta(5, 2, len(batch)), labels=labels))
    assert report["prediction"]["severity"] == "critical" and report["prediction"]["test"]["statistic"] > 0.5
    assert sum(report["prediction"]["histogram"]["current"]) == len(batch)
    assert report["label"]["current_rate"] == 1.0 and report["label"]["drifted"]
    assert report["correlation"]["pair"] in (
        ["tenure", "total_charges"],
        ["monthly_charges", "total_charges"],
    )
    assert report["correlation"]["drifted"]
    with pytest.raises(ValueError, match="name a column"):
        drift_report(prof, iter([batch]), DRIFT, scores=np.zeros(len(batch)))


def test_a_parquet_file_is_streamed_in_row_groups(tmp_path, profile, telco):
    batch = telco[2].assign(monthly_charges=telco[2]["monthly_charges"] + 25)
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path, row_group_size=500)
    chunks = list(file_chunks(path, profile.columns(), rows=500))
    assert len(chunks) > 1 and list(chunks[0].columns) == profile.columns()
    report = drift_report(profile, file_chunks(path, profile.columns()), DRIFT)
    assert report.chunked and report.n_rows == len(batch) and report.drifted_features() == ["monthly_charges"]
    with pytest.raises(TypeError, match="handed frames"):
        drift_report(profile, path, DRIFT)


def test_html_report_is_self_contained(tmp_path, telco):
    cfg, train, held_out = telco
    prof = fit_profile(train, cfg, DRIFT, scores=np.linspace(0, 1, len(train)))
    report = drift_report(prof, held_out, DRIFT, scores=np.linspace(0, 1, len(held_out)) ** 2)
    page = render_html(report, prof, tmp_path / "drift.html")
    assert (tmp_path / "drift.html").read_text(encoding="utf-8") == page
    assert page.count("Plotly.newPlot") == 2 + len(report.features)
    assert page.count("plotly.js v") == 1 and "<script src=" not in page  # embedded once, nothing fetched
    assert "sorted by importance-weighted drift" in page and "Model scores" in page


def test_cli_reports_json_html_and_fits_a_parquet_reference(tmp_path, capsys, profile, telco):
    cfg, train, held_out = telco
    (tmp_path / "ref.json").write_text(profile.to_json())
    train.to_parquet(tmp_path / "ref.parquet")
    held_out.assign(monthly_charges=held_out["monthly_charges"] + 25).to_parquet(tmp_path / "cur.parquet")
    assert (
        cli_main(
            [
                str(tmp_path / "ref.json"),
                str(tmp_path / "cur.parquet"),
                "--json",
                "--html",
                str(tmp_path / "out.html"),
                "--set",
                "psi.critical=50",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["severity"] == "moderate" and (tmp_path / "out.html").exists()
    assert cli_main([str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")]) == 0
    assert capsys.readouterr().out.startswith("severity critical")
    assert cli_main([str(tmp_path / "ref.json"), str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet" in capsys.readouterr().err


def test_drift_config_rejects_unknown_keys_and_inverted_thresholds():
    with pytest.raises(ConfigError, match="unknown key 'psi.bogus'"):
        load_drift_config({"psi": {"bogus": 1}})
    with pytest.raises(ConfigError, match="critical"):
        load_drift_config({"psi": {"moderate": 0.3, "critical": 0.2}})
    assert load_drift_config().tests.correction == "holm"


def test_empty_batch_reports_nothing_drifted(profile, telco):
    report = _json_roundtrip(drift_report(profile, telco[2].iloc[:0], DRIFT))
    assert report["severity"] == "stable" and report["n_rows"] == 0
    assert all(f["psi"] is None for f in report["features"].values())


def test_batch_missing_a_feature_column_is_an_error(profile, telco):
    with pytest.raises(ValueError, match="lacks feature column"):
        drift_report(profile, telco[2].drop(columns=["contract"]), DRIFT)
    assert isinstance(pd.DataFrame(), pd.DataFrame)


@pytest.fixture(scope="module")
def scored_report(telco):
    cfg, train, held_out = telco
    prof = fit_profile(train, cfg, DRIFT, scores=np.linspace(0, 1, len(train)))
    return drift_report(prof, held_out, DRIFT, scores=np.linspace(0, 1, len(held_out)) ** 2), prof


def test_daily_page_references_the_shared_plotly_instead_of_embedding_it(tmp_path, scored_report):
    from churnguard.drift.html import PLOTLY_FILE

    src = DataRoot.asset_src(PLOTLY_FILE)
    report, prof = scored_report
    inline = render_html(report, prof)
    linked = render_html(report, prof, tmp_path / "drift.html", plotlyjs=src)
    assert (tmp_path / "drift.html").read_text(encoding="utf-8") == linked
    assert len(linked.encode()) < 500_000 < 4_000_000 < len(inline.encode())  # measured: 165 kB vs 4.98 MB
    assert f'<script charset="utf-8" src="{src}"></script>' in linked and "plotly.js v" not in linked
    assert inline.count("plotly.js v") == 1 and '<script charset="utf-8" src=' not in inline
    assert linked.count("Plotly.newPlot") == inline.count("Plotly.newPlot") == 2 + len(report.features)


def test_plotly_asset_sits_where_a_days_page_looks_for_it():
    import posixpath
    from importlib.metadata import version

    from churnguard.drift.html import PLOTLY_FILE

    asset = DataRoot.asset_key(PLOTLY_FILE)
    assert asset == f"reports/_assets/plotly-{version('plotly')}.min.js"
    assert posixpath.normpath(posixpath.join("reports/ds=2026-09-01", DataRoot.asset_src(PLOTLY_FILE))) == asset


def test_plotly_asset_is_written_to_the_data_root_only_when_missing(churnguard_home):
    from churnguard.drift.html import PLOTLY_FILE, plotly_asset_bytes
    from churnguard.storage import open_storage

    storage = open_storage()
    uri = DataRoot(storage).ensure_asset(PLOTLY_FILE, plotly_asset_bytes)
    path = churnguard_home / "data" / DataRoot.asset_key(PLOTLY_FILE)
    assert uri == f"file://{path}" and path.read_bytes() == plotly_asset_bytes()
    assert plotly_asset_bytes().startswith(b"/**") and b"plotly.js v" in plotly_asset_bytes()[:200]
    storage.write_bytes(DataRoot.asset_key(PLOTLY_FILE), b"kept")
    assert DataRoot(storage).ensure_asset(PLOTLY_FILE, plotly_asset_bytes) == uri and path.read_bytes() == b"kept"


def test_plotlyjs_must_be_inline_or_a_script_path(scored_report):
    with pytest.raises(ValueError, match="'inline' or the src of a .js file, got 'cdn'"):
        render_html(*scored_report, plotlyjs="cdn")


def test_cli_html_report_opens_offline(tmp_path, capsys, profile, telco):
    (tmp_path / "ref.json").write_text(profile.to_json())
    telco[2].iloc[:500].to_parquet(tmp_path / "cur.parquet")
    argv = [str(tmp_path / "ref.json"), str(tmp_path / "cur.parquet"), "--html", str(tmp_path / "out.html")]
    assert cli_main(argv) == 0
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1 and '<script charset="utf-8" src=' not in page


def test_segment_too_small_for_the_test_is_reported_as_such_and_not_tested(profile, telco):
    batch = telco[2].iloc[:150]  # 79 month-to-month, 39 two-year, 32 one-year customers
    report = drift_report(profile, batch, DRIFT).to_dict()
    contract = report["segments"]["columns"]["contract"]["values"]
    sizes = batch["contract"].value_counts()
    small = {v for v, n in sizes.items() if n < 50}
    assert small == {"Two year", "One year"}
    assert {v for v, b in contract.items() if b["status"] == "too_small"} == small
    for value in small:
        block = contract[value]
        assert block["n_current"] == sizes[value] and block["features"] == {} and block["severity"] is None
        assert block["reason"] == f"{sizes[value]} rows in the batch < segments.min_rows 50: not tested"
    tested = sum(len(b["features"]) for c in report["segments"]["columns"].values() for b in c["values"].values())
    assert report["segments"]["n_tests"] == tested < 108
    relaxed = drift_report(profile, batch, DRIFT, overrides={"segments": {"min_rows": 10}}).to_dict()
    assert all(b["status"] == "tested" for b in relaxed["segments"]["columns"]["contract"]["values"].values())


def test_rows_outside_every_segment_are_counted_not_tested(profile, telco):
    batch = telco[2].copy()
    batch.loc[batch.index[:30], "contract"] = "Ten year"
    batch.loc[batch.index[30:40], "contract"] = None
    column = drift_report(profile, batch, DRIFT).to_dict()["segments"]["columns"]["contract"]
    assert column["unseen"] == {"Ten year": 30} and column["missing"] == 10
    assert sum(b["n_current"] for b in column["values"].values()) == len(batch) - 40


def test_segments_leave_the_pooled_report_unchanged(telco):
    cfg, train, held_out = telco
    plain = cfg.model_copy(update={"segments": []})
    batch = held_out.assign(monthly_charges=held_out["monthly_charges"] + 4.0)
    with_segments = drift_report(fit_profile(train, cfg, DRIFT), batch, DRIFT).to_dict()
    without = drift_report(fit_profile(train, plain, DRIFT), batch, DRIFT).to_dict()
    assert without["segments"] is None and with_segments["segments"]["n_tests"] == 108
    for name, feature in without["features"].items():
        other = with_segments["features"][name]
        # exact reference summaries: segment grids add no point, so not one bit of the pooled block moves
        assert {k: v for k, v in other.items() if k != "segment_drift"} == {
            k: v for k, v in feature.items() if k != "segment_drift"
        }
    assert with_segments["severity"] == without["severity"] and with_segments["n_drifted"] == without["n_drifted"]


def test_profile_stored_before_segments_loads_keeps_its_version_and_reports_no_segments(telco):
    cfg, train, held_out = telco
    old = fit_profile(train, cfg.model_copy(update={"segments": []}), DRIFT).to_dict()
    assert "segments" not in old  # a profile without segments hashes exactly the fields it always had
    again = ReferenceProfile.from_json(json.dumps(old))
    assert again.version == old["version"] != fit_profile(train, cfg, DRIFT).version
    report = drift_report(again, held_out, DRIFT).to_dict()
    assert report["segments"] is None and report["schema_version"] == 2
    assert all(f["segment_drift"] == [] for f in report["features"].values())


def test_raise_severity_makes_a_feature_drifting_within_a_segment_moderate(profile, telco):
    batch = hidden_in_two_year(telco[2])
    default = drift_report(profile, batch, DRIFT)
    assert default.features["tenure"]["severity"] == "stable"  # pooled: the same values as without drift
    assert default.features["tenure"]["segment_drift"] == ["contract=Two year"]
    raised = drift_report(profile, batch, DRIFT, overrides={"segments": {"raise_severity": True}})
    assert raised.features["tenure"]["severity"] == "moderate" and "segment_drift" in raised.features["tenure"]["notes"]
    assert raised.severity == "moderate" and default.severity == "stable"


def test_html_report_lists_segments_and_what_drifted_within_them(tmp_path, profile, telco):
    page = render_html(drift_report(profile, hidden_in_two_year(telco[2]), DRIFT), profile, plotlyjs="plotly.js")
    assert "<h2>Segments</h2>" in page
    assert page.count("<td>contract</td>") == 1 + 3  # its feature row, then its three values
    assert "<td>Two year</td>" in page and "tenure (" in page
