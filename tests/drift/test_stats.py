"""Drift statistics agree with scipy on the same arrays: exactly, or within the documented bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from churnguard.config import load_dataset_config, load_drift_config
from churnguard.data import load_reference, split_reference
from churnguard.drift import drift_report, fit_profile
from churnguard.drift.stats import adjust_p_values, chance_psi, chi2_test, js_distance, psi
from tests.conftest import hidden_in_two_year

DRIFT = load_drift_config()


@pytest.fixture(scope="module")
def telco():
    cfg = load_dataset_config("telco")
    split = split_reference(load_reference(cfg), cfg)
    return cfg, split.train, split.held_out


def _present(values) -> np.ndarray:
    x = pd.to_numeric(pd.Series(values)).to_numpy(dtype=float)
    return x[~np.isnan(x)]


@pytest.mark.parametrize("shift", [0.0, 7.5])
def test_numeric_statistics_equal_scipy_when_profile_holds_the_full_sample(telco, shift):
    cfg, train, held_out = telco
    batch = held_out.assign(
        monthly_charges=held_out["monthly_charges"] + shift,
        total_charges=held_out["total_charges"] * (1 + shift / 100),
    )
    profile = fit_profile(train, cfg, DRIFT)
    report = drift_report(profile, batch, DRIFT).to_dict()
    for col in cfg.numeric:
        assert profile.data["numeric"][col]["summary"]["kind"] == "exact"
        ref, cur = _present(train[col]), _present(batch[col])
        feature = report["features"][col]
        ks = sps.ks_2samp(ref, cur, method="asymp")
        assert feature["test"]["statistic"] == pytest.approx(ks.statistic, abs=1e-9)
        assert feature["test"]["p_value"] == pytest.approx(ks.pvalue, abs=1e-9)
        assert feature["wasserstein"]["distance"] == pytest.approx(sps.wasserstein_distance(ref, cur), rel=1e-9)
        assert feature["wasserstein"]["normalised"] == pytest.approx(
            sps.wasserstein_distance(ref, cur) / ref.std(), rel=1e-9
        )


def test_quantile_summary_stays_within_its_documented_bound(telco):
    cfg, train, held_out = telco
    drift_cfg = load_drift_config({"summary": {"exact_max": 50, "quantiles": 200}})
    batch = held_out.assign(monthly_charges=held_out["monthly_charges"] + 4.0)
    profile = fit_profile(train, cfg, drift_cfg)
    report = drift_report(profile, batch, drift_cfg).to_dict()
    for col in ("monthly_charges", "total_charges"):
        summary = profile.data["numeric"][col]["summary"]
        assert summary["kind"] == "quantiles" and summary["ks_bound"] == 1 / 400
        ref, cur = _present(train[col]), _present(batch[col])
        feature = report["features"][col]
        assert abs(feature["test"]["statistic"] - sps.ks_2samp(ref, cur).statistic) <= summary["ks_bound"] + 1e-12
        assert abs(feature["wasserstein"]["distance"] - sps.wasserstein_distance(ref, cur)) <= (
            feature["wasserstein"]["bound"] + 1e-9
        )


def test_chunked_batch_gives_the_same_counts_and_a_bounded_wasserstein(telco):
    cfg, train, held_out = telco
    batch = held_out.assign(monthly_charges=held_out["monthly_charges"] + 3.3)
    profile = fit_profile(train, cfg, DRIFT)
    whole = drift_report(profile, batch, DRIFT).to_dict()
    chunks = (batch.iloc[i : i + 500] for i in range(0, len(batch), 500))
    chunked = drift_report(profile, chunks, DRIFT).to_dict()
    assert chunked["chunked"] and not whole["chunked"]
    for col, feature in whole["features"].items():
        other = chunked["features"][col]
        assert other["psi"] == pytest.approx(feature["psi"], abs=1e-12)
        assert other["test"]["statistic"] == pytest.approx(feature["test"]["statistic"], abs=1e-12)
        if feature["kind"] == "numeric":
            w, bound = feature["wasserstein"]["distance"], other["wasserstein"]["bound"]
            assert abs(other["wasserstein"]["distance"] - w) <= bound + 1e-9
            assert bound <= 0.01 * profile.data["numeric"][col]["std"]


def test_categorical_statistics_equal_scipy_on_the_counts(telco):
    cfg, train, held_out = telco
    batch = held_out.copy()
    batch.loc[batch.index[:300], "payment_method"] = "Digital wallet"
    report = drift_report(fit_profile(train, cfg, DRIFT), batch, DRIFT).to_dict()
    feature = report["features"]["payment_method"]
    cats = list(train["payment_method"].value_counts().index)
    ref = np.array([(train["payment_method"] == c).sum() for c in cats] + [0])
    cur = np.array([(batch["payment_method"] == c).sum() for c in cats] + [300])
    chi2, p_value, _, _ = sps.chi2_contingency(np.vstack([ref, cur]), correction=False)
    assert feature["test"]["statistic"] == pytest.approx(chi2, abs=1e-9)
    assert feature["test"]["p_value"] == pytest.approx(p_value, abs=1e-9)
    assert feature["js_distance"] == pytest.approx(jensenshannon(ref, cur, base=2), abs=1e-9)
    assert feature["unseen"] == {"Digital wallet": 300}


def test_binary_chi2_has_no_yates_correction():
    result = chi2_test(np.array([30, 70]), np.array([45, 55]))
    chi2, p_value, _, _ = sps.chi2_contingency([[30, 70], [45, 55]], correction=False)
    assert result.statistic == pytest.approx(chi2, abs=1e-12) and result.p_value == pytest.approx(p_value, abs=1e-12)


def test_js_distance_is_base_2_and_zero_for_identical_shares():
    rng = np.random.default_rng(3)
    p, q = rng.integers(0, 50, 12), rng.integers(1, 50, 12)
    assert js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), abs=1e-12)
    assert js_distance(p, p * 3) == 0.0
    assert js_distance(np.array([1, 0]), np.array([0, 1])) == pytest.approx(1.0)


def test_psi_floors_empty_bins_at_epsilon():
    value = psi(np.array([50.0, 50.0, 0.0]), np.array([50.0, 40.0, 10.0]), epsilon=1e-4)
    expected = (0.4 - 0.5) * np.log(0.4 / 0.5) + (0.1 - 1e-4) * np.log(0.1 / 1e-4)
    assert value == pytest.approx(expected, rel=1e-12)


def test_chance_psi_is_the_chi2_quantile_over_the_effective_sample_size():
    assert chance_psi(10, 4000, 100, 0.99) == pytest.approx(sps.chi2.ppf(0.99, 9) / (4000 * 100 / 4100))
    assert chance_psi(10, 10**9, 10**9, 0.99) < 1e-7
    assert chance_psi(1, 100, 100, 0.99) == 0.0


def test_holm_and_benjamini_hochberg_adjusted_p_values():
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1, running max
    assert adjust_p_values(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: sorted times 4/1, 4/2, 4/3, 4/4, running min from the top
    assert adjust_p_values(p, "bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adjust_p_values([0.9, 0.8], "holm") == [1.0, 1.0]
    with pytest.raises(ValueError, match="holm"):
        adjust_p_values(p, "bonferroni")


def test_drift_hidden_in_one_segment_is_missed_pooled_and_found_within_it_as_scipy_computes(telco):
    cfg, train, held_out = telco
    batch = hidden_in_two_year(held_out)
    report = drift_report(fit_profile(train, cfg, DRIFT), batch, DRIFT).to_dict()
    pooled = report["features"]["tenure"]
    assert pooled["test"]["p_value"] == pytest.approx(
        sps.ks_2samp(_present(train["tenure"]), _present(batch["tenure"]), method="asymp").pvalue, abs=1e-9
    )
    assert pooled["test"]["p_value"] > 0.4 and pooled["severity"] == "stable"  # 0.498: the pooled test misses it
    assert report["severity"] == "stable"  # segment drift alone leaves the day's severity as it was

    contract = report["segments"]["columns"]["contract"]["values"]
    two_year = contract["Two year"]["features"]["tenure"]
    ref = train["tenure"][train["contract"] == "Two year"]
    cur = batch["tenure"][batch["contract"] == "Two year"]
    ks = sps.ks_2samp(ref, cur, method="asymp")
    assert two_year["test"]["statistic"] == pytest.approx(ks.statistic, abs=1e-12)  # 0.1448
    assert two_year["test"]["p_value"] == pytest.approx(ks.pvalue, rel=1e-9)  # 8.7e-9
    assert two_year["test"]["p_adjusted"] < 1e-5 and two_year["severity"] == "moderate"
    assert contract["Two year"]["n_current"] == (batch["contract"] == "Two year").sum()
    assert not contract["Month-to-month"]["features"]["tenure"]["drifted"]
    assert not contract["One year"]["features"]["tenure"]["drifted"]
    assert {(d["segment"], d["value"]) for d in report["segments"]["drifted"]} == {("contract", "Two year")}
    assert report["features"]["tenure"]["segment_drift"] == ["contract=Two year"]

    method = train["payment_method"][train["contract"] == "Two year"].value_counts()
    now = batch["payment_method"][batch["contract"] == "Two year"].value_counts()
    table = np.vstack([method.to_numpy(), now.reindex(method.index).to_numpy()])
    chi2, p_value, _, _ = sps.chi2_contingency(table, correction=False)
    payment = contract["Two year"]["features"]["payment_method"]["test"]
    assert payment["statistic"] == pytest.approx(chi2, rel=1e-9) and payment["p_value"] == pytest.approx(
        p_value, rel=1e-9
    )


def test_segment_tests_are_corrected_as_one_family_of_their_own(telco):
    cfg, train, held_out = telco
    profile = fit_profile(train, cfg, DRIFT)
    report = drift_report(profile, hidden_in_two_year(held_out), DRIFT).to_dict()
    segments = report["segments"]
    tests = [
        f["test"]
        for column in segments["columns"].values()
        for block in column["values"].values()
        for f in block["features"].values()
        if f["test"] is not None
    ]
    # 3 contract values x 18 features + 3 internet values x 18 features
    assert segments["n_tests"] == len(tests) == 108 and segments["correction"] == "holm"
    assert [t["p_adjusted"] for t in tests] == pytest.approx(adjust_p_values([t["p_value"] for t in tests], "holm"))
    pooled = [f["test"] for f in report["features"].values()]
    assert [t["p_adjusted"] for t in pooled] == pytest.approx(adjust_p_values([t["p_value"] for t in pooled], "holm"))


def test_chunked_batch_gives_the_same_segment_statistics(telco):
    cfg, train, held_out = telco
    profile = fit_profile(train, cfg, load_drift_config({"summary": {"exact_max": 50, "quantiles": 200}}))
    batch = hidden_in_two_year(held_out).assign(monthly_charges=held_out["monthly_charges"] + 3.3)
    whole = drift_report(profile, batch, DRIFT).to_dict()["segments"]["columns"]
    chunked = drift_report(profile, (batch.iloc[i : i + 400] for i in range(0, len(batch), 400)), DRIFT)
    other = chunked.to_dict()["segments"]["columns"]
    for col, column in whole.items():
        assert other[col]["values"].keys() == column["values"].keys()
        for value, block in column["values"].items():
            for name, feature in block["features"].items():
                again = other[col]["values"][value]["features"][name]
                assert again["psi"] == pytest.approx(feature["psi"], abs=1e-12)
                assert again["test"]["statistic"] == pytest.approx(feature["test"]["statistic"], abs=1e-12)
                assert again["test"]["p_adjusted"] == pytest.approx(feature["test"]["p_adjusted"], rel=1e-9)


def test_segments_packed_into_several_bincounts_match_scipy_on_every_segment(telco):
    from churnguard.drift.report import _packings

    cfg, train, held_out = telco
    segments = ["contract", "internet_service", "payment_method"]
    assert len(_packings({"contract": 3, "internet_service": 3, "payment_method": 4})) == 2  # 16 x 5 cells > 64
    batch = hidden_in_two_year(held_out)
    report = drift_report(
        fit_profile(train, cfg.model_copy(update={"segments": segments}), DRIFT), batch, DRIFT
    ).to_dict()
    for col in segments:
        for value, block in report["segments"]["columns"][col]["values"].items():
            ref, cur = train[train[col] == value], batch[batch[col] == value]
            assert block["n_current"] == len(cur)
            ks = sps.ks_2samp(_present(ref["tenure"]), _present(cur["tenure"]), method="asymp")
            assert block["features"]["tenure"]["test"]["statistic"] == pytest.approx(ks.statistic, abs=1e-12)
            other = next(c for c in segments if c != col)
            table = pd.crosstab(pd.concat([ref, cur])[other], np.repeat([0, 1], [len(ref), len(cur)]))
            chi2 = sps.chi2_contingency(table.T.to_numpy(), correction=False)[0]
            assert block["features"][other]["test"]["statistic"] == pytest.approx(chi2, rel=1e-9)


def test_chi2_p_value_is_scipys_chi2_sf_to_the_bit():
    rng = np.random.default_rng(11)
    for k in (2, 3, 4, 10):
        for scale in (1, 20, 500):
            ref, cur = rng.integers(1, 50, k) * scale, rng.integers(1, 50, k)
            result = chi2_test(ref, cur)
            assert result.p_value == float(sps.chi2.sf(result.statistic, k - 1))
    assert chi2_test(np.array([10, 20]), np.array([1, 2])).p_value == float(sps.chi2.sf(0.0, 1)) == 1.0
