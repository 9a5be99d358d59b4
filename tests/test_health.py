"""churnguard.health on a real monitoring store (SQLite, and PostgreSQL once) filled through the store's own
upserts, and on drift reports written to a real data root: the numbers each health chart gets."""

from __future__ import annotations

import json
import math

import pytest

from churnguard import health
from churnguard.dataroot import DataRoot
from churnguard.store import open_store, schema

DAYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]


def fill(store) -> None:
    """Four monitored days: drift rising on tenure, performance measured for the first two days only (labels
    of the last two have not arrived), a challenger registered on day 2 and promoted on day 3, two alerts."""
    store.upsert(
        schema.daily_runs,
        [
            {
                "ds": d,
                "dataset": "telco",
                "rows": 100 + i,
                "validation_status": "passed",
                "drift_severity": ["stable", "stable", "moderate", "critical"][i],
                "drift_share": 0.1 * i,
                "weighted_drift": 0.05 * i,
                "prediction_psi": [0.01, 0.02, 0.12, 0.3][i],
                "champion_version": 1 if i < 2 else 2,
                "challenger_version": 2 if i == 1 else None,
                "failure_risk": 0.2 * i,
                "decision": ["healthy", "retrain", "promoted", "healthy"][i],
                "reasons": [f"reason {i}"],
                "promoted": i == 2,
            }
            for i, d in enumerate(DAYS)
        ],
    )
    store.upsert(
        schema.feature_drift,
        [
            {"ds": d, "feature": f, "kind": "numeric", "psi": psi, "psi_threshold": 0.1, "drifted": psi >= 0.1}
            for d, (tenure, charges) in zip(DAYS, [(0.01, 0.02), (0.05, 0.01), (0.2, 0.03), (0.4, 0.02)], strict=True)
            for f, psi in (("tenure", tenure), ("monthly_charges", charges))
        ],
    )
    store.upsert(
        schema.performance,
        [
            {
                "observed_ds": DAYS[0],
                "role": "champion",
                "model_version": 1,
                "measured_ds": "2026-03-08",
                "labelled_rows": 400,
                "roc_auc": 0.84,
                "roc_auc_lower": 0.80,
                "f1": 0.6,
                "precision": 0.5,
                "recall": 0.75,
                "churn_rate": 0.25,
            },
            {
                "observed_ds": DAYS[1],
                "role": "champion",
                "model_version": 1,
                "measured_ds": "2026-03-09",
                "labelled_rows": 400,
                "roc_auc": 0.78,
                "roc_auc_lower": 0.74,
                "f1": 0.55,
                "precision": 0.5,
                "recall": 0.6,
                "churn_rate": 0.25,
            },
            {
                "observed_ds": DAYS[1],
                "role": "challenger",
                "model_version": 2,
                "measured_ds": "2026-03-09",
                "labelled_rows": 400,
                "roc_auc": 0.83,
                "roc_auc_lower": 0.79,
                "f1": 0.58,
                "precision": 0.52,
                "recall": 0.65,
                "churn_rate": 0.25,
            },
        ],
    )
    store.upsert(
        schema.failure_risk,
        [
            {
                "ds": DAYS[3],
                "available": True,
                "risk": 0.6,
                "model_version": 3,
                "reason": "risk 0.60 vs 0.50",
                "drivers": [{"feature": "auc_trend", "contribution": 0.4, "value": -0.02}],
            }
        ],
    )
    store.record_event(DAYS[1], "registered", "churn-model", 2, reason="drift: critical")
    store.record_event(DAYS[2], "promoted", "churn-model", 2, from_version=1, reason="challenger better")
    store.upsert(
        schema.alerts,
        [
            {"ds": DAYS[2], "kind": "drift", "severity": "warn", "message": "moderate drift"},
            {"ds": DAYS[3], "kind": "drift", "severity": "critical", "message": "critical drift"},
            {"ds": "2026-02-01", "kind": "validation", "severity": "critical", "message": "old"},
        ],
    )


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'monitoring.db'}")
    fill(s)
    return s


@pytest.fixture
def root():
    return DataRoot.open()


def drift_doc(shift: int) -> dict:
    """A drift.json (schema 2) with a numeric and a categorical feature and the prediction's histogram."""
    return {
        "schema_version": 2,
        "severity": "moderate",
        "n_rows": 100,
        "n_features": 2,
        "n_drifted": 1,
        "drift_share": 0.5,
        "weighted_psi": 0.1,
        "profile_version": "p1",
        "notes": [],
        "features": {
            "tenure": {
                "kind": "numeric",
                "psi": 0.25,
                "severity": "critical",
                "drifted": True,
                "bins": {"edges": [10.0, 30.0], "reference": [30, 40, 30], "current": [60 - shift, 20, 20 + shift]},
            },
            "contract": {
                "kind": "categorical",
                "psi": 0.02,
                "severity": "stable",
                "drifted": False,
                "categories": {"reference": {"Month": 50, "Year": 50}, "current": {"Month": 40, "Two": 60}},
            },
        },
        "prediction": {
            "kind": "numeric",
            "psi": 0.12,
            "histogram": {"edges": [0.0, 0.5, 1.0], "reference": [75, 25], "current": [50 + shift, 50 - shift]},
        },
    }


def test_overview_of_the_last_day_has_versions_decision_risk_drivers_and_open_alerts(store):
    o = health.overview(store)
    assert o["ds"] == DAYS[3]
    assert o["run"]["champion_version"] == 2 and o["run"]["challenger_version"] is None
    assert o["run"]["decision"] == "healthy" and o["run"]["reasons"] == ["reason 3"]
    assert o["failure_risk"]["risk"] == 0.6 and o["failure_risk"]["drivers"][0]["feature"] == "auc_trend"
    # alerts of the last 7 days, newest and most severe first; the February one is not open any more
    assert [(a["ds"], a["severity"]) for a in o["open_alerts"]] == [(DAYS[3], "critical"), (DAYS[2], "warn")]
    assert o["last_promotion"] == {
        "ds": DAYS[2],
        "event": "promoted",
        "version": 2,
        "from_version": 1,
        "reason": "challenger better",
    }
    assert health.overview(store, DAYS[1])["run"]["challenger_version"] == 2
    assert health.overview(store, "2027-01-01")["note"] == "2027-01-01 has no daily run recorded"
    assert json.dumps(o)


def test_the_story_has_each_days_risk_and_auc_and_the_days_that_matter(store):
    s = health.story(store)
    assert s["days"] == DAYS and s["risk"] == [0.0, 0.2, 0.4, 0.6]
    assert s["auc"] == [0.84, 0.78, None, None] and s["auc_version"] == [1, 1, None, None]  # labels of 2 days only
    assert (s["risk_warn"], s["alarm"]) == (0.5, DAYS[3])  # the first day at or above the threshold
    assert s["first_drift"] is None  # two drifted days in a row; the timeline wants 3
    assert (s["confirmed"], s["failed"], s["lead_days"]) == (None, None, None)  # no measured failure
    assert s["moves"] == [{"ds": DAYS[2], "event": "promoted", "version": 2, "from_version": 1}]
    store.record_event(DAYS[3], "rolled_back", "churn-model", 1, from_version=2, reason="v2 misses the new mix")
    assert health.story(store)["moves"][-1] == {"ds": DAYS[3], "event": "rolled_back", "version": 1, "from_version": 2}


def test_overview_of_an_empty_store(tmp_path):
    assert health.overview(open_store(f"sqlite:///{tmp_path / 'empty.db'}"))["note"] == "no day monitored yet"


def test_drift_heatmap_is_features_by_days_most_drifted_first(store):
    h = health.drift_heatmap(store)
    assert h["days"] == DAYS and h["features"] == ["tenure", "monthly_charges"]
    assert h["psi"] == [[0.01, 0.05, 0.2, 0.4], [0.02, 0.01, 0.03, 0.02]]
    assert h["drifted"][0] == [False, False, True, True] and h["drifted_per_day"] == [0, 0, 1, 1]
    window = health.drift_heatmap(store, start=DAYS[1], end=DAYS[2])
    assert window["days"] == DAYS[1:3] and window["psi"][0] == [0.05, 0.2]


def test_score_distribution_has_psi_every_day_and_histograms_from_drift_reports(store, root):
    root.write_report(DAYS[2], "drift.json", json.dumps(drift_doc(0)).encode())
    root.write_report(DAYS[3], "drift.json", json.dumps(drift_doc(20)).encode())
    s = health.score_distribution(store, root)
    assert s["days"] == DAYS and s["prediction_psi"] == [0.01, 0.02, 0.12, 0.3]
    hist = s["histogram"]
    assert hist["edges"] == [0.0, 0.5, 1.0] and hist["reference"] == [0.75, 0.25]
    assert hist["days"] == DAYS[2:] and hist["current"] == [[0.5, 0.5], [0.7, 0.3]]
    assert [m["ds"] for m in s["missing"]] == DAYS[:2]
    assert s["missing"][0]["why"] == f"drift.json of {DAYS[0]} does not exist"
    assert health.score_distribution(store, root, max_days=1)["histogram"]["days"] == [DAYS[3]]


def test_feature_distribution_reference_vs_current_of_a_numeric_and_a_categorical_feature(root):
    root.write_report(DAYS[3], "drift.json", json.dumps(drift_doc(20)).encode())
    numeric = health.feature_distribution(DAYS[3], root=root)  # default: the most drifted feature
    assert numeric["feature"] == "tenure" and numeric["features"] == ["tenure", "contract"]
    assert numeric["labels"] == ["< 10", "[10, 30)", "≥ 30"]
    assert numeric["reference"] == [0.3, 0.4, 0.3] and numeric["current"] == [0.4, 0.2, 0.4]
    cat = health.feature_distribution(DAYS[3], "contract", root=root)
    assert cat["labels"] == ["Month", "Two", "Year"] and cat["reference_counts"] == [50, 0, 50]
    assert cat["current"] == [0.4, 0.6, 0.0]
    unknown = health.feature_distribution(DAYS[3], "nope", root=root)
    assert unknown["why"] == f"'nope' is not in the drift report of {DAYS[3]}"
    assert health.feature_distribution(DAYS[0], root=root)["available"] is False


def test_performance_series_per_role_with_bands_and_the_label_delay(store):
    p = health.performance(store, delay_days=7)
    champion, challenger = p["series"]["champion"], p["series"]["challenger"]
    assert p["roles"] == ["champion", "challenger"]
    assert champion["observed_ds"] == DAYS[:2] and champion["roc_auc"] == [0.84, 0.78]
    assert champion["roc_auc_lower"] == [0.8, 0.74] and champion["model_version"] == [1, 1]
    assert challenger["observed_ds"] == [DAYS[1]] and challenger["roc_auc"] == [0.83]
    # recall 0.75 of 100 churners (400 × 0.25): Wilson 95 % = 0.6569 .. 0.8245
    assert champion["recall_lower"][0] == pytest.approx(0.6569, abs=1e-4)
    assert champion["recall_upper"][0] == pytest.approx(0.8245, abs=1e-4)
    # precision 0.5 over 150 predicted churners (75 true positives / 0.5)
    assert champion["precision_lower"][0] == pytest.approx(0.4210, abs=1e-4)
    assert p["last_measured"] == DAYS[1]
    assert p["label_delay"] == {"delay_days": 7, "pending_days": DAYS[2:], "from": DAYS[2], "to": DAYS[3]}


def test_wilson_interval():
    low, high = health.wilson(0.5, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert health.wilson(0.5, 0) == (None, None) and health.wilson(None, 10) == (None, None)
    assert health.wilson(1.0, 10)[1] == 1.0


def test_models_from_events_runs_and_the_registry(store):
    calls = []

    def lookup(name):
        calls.append(name)
        return {
            1: {"trigger": "bootstrap", "shap_importance": None},
            2: {
                "trigger": "drift: critical",
                "training_window": {"train_from": "2026-01-01"},
                "shap_importance": {"tenure": 0.7, "contract": 0.3},
            },
        }

    m = health.models(store, lookup=lookup, model_name="churn-model")
    assert calls == ["churn-model"]
    v2, v1 = m["versions"]
    assert (v2["version"], v2["role_now"], v2["champion_days"], v2["challenger_days"]) == (2, "champion", 2, 1)
    assert [e["event"] for e in v2["events"]] == ["registered", "promoted"]
    assert v2["shap_importance"] == {"tenure": 0.7, "contract": 0.3} and v2["shap_note"] is None
    assert v1["champion_days"] == 2 and v1["last_champion"] == DAYS[1]
    assert v1["shap_note"].startswith("not recorded")
    assert m["history"] == [
        {"ds": DAYS[2], "event": "promoted", "version": 2, "from_version": 1, "reason": "challenger better"}
    ]


def test_models_say_why_when_the_registry_fails_or_hangs(store, monkeypatch):
    def broken(name):
        raise ConnectionError("refused")

    m = health.models(store, lookup=broken, model_name="churn-model")
    assert m["registry_note"] == "the MLflow registry failed: ConnectionError: refused"
    assert m["versions"][0]["shap_note"] == m["registry_note"]
    import threading

    release, calls = threading.Event(), []

    def hanging(name):
        calls.append(name)
        release.wait(5)
        return {2: {"trigger": "late"}}

    monkeypatch.setattr(health, "REGISTRY_TIMEOUT_S", 0.2)
    slow = health.models(store, lookup=hanging, model_name="churn-model")
    assert slow["registry_note"] == "the MLflow registry did not answer within 0.2 s"
    again = health.models(store, lookup=hanging, model_name="churn-model")  # waits on the same lookup
    release.set()
    assert again["registry_note"] == slow["registry_note"] and calls == ["churn-model"]
    late = health.models(store, lookup=hanging, model_name="churn-model")  # its answer, once it came
    assert late["registry_note"] is None and late["versions"][0]["registry"] == {"trigger": "late"}
    assert calls == ["churn-model"]
    assert [v["version"] for v in health.models(store, lookup=False, model_name="churn-model")["versions"]] == [2, 1]


def test_alerts_history_newest_and_most_severe_first(store):
    a = health.alerts(store)
    assert [(x["ds"], x["severity"]) for x in a["alerts"]] == [
        (DAYS[3], "critical"),
        (DAYS[2], "warn"),
        ("2026-02-01", "critical"),
    ]
    assert a["by_severity"] == {"critical": 2, "warn": 1} and a["by_kind"] == {"drift": 2, "validation": 1}
    assert health.alerts(store, start=DAYS[0])["total"] == 2
    assert health.alerts(store, severity="warn")["total"] == 1


def episodes_of_alerts(store) -> int:
    """Alerts observed the way the daily run records them: a decision episode open since DAYS[2] and acknowledged
    by ana, a validation episode of DAYS[1] cleared on DAYS[2]; returns the decision episode's id."""
    from churnguard import alerts
    from churnguard.alerts import Alert

    opened = alerts.observe(store, DAYS[2], "decision", Alert(DAYS[2], "decision", "warning", "decision=alert"))
    alerts.observe(store, DAYS[3], "decision", Alert(DAYS[3], "decision", "critical", "decision=retrain"))
    alerts.observe(store, DAYS[1], "validation", Alert(DAYS[1], "validation", "critical", "3 expectations failed"))
    alerts.observe(store, DAYS[2], "validation", None)
    alerts.acknowledge(store, opened.episode_id, "ana")
    return opened.episode_id


def test_alerts_carry_their_episode_with_its_acknowledgement_and_the_open_episodes(store):
    decision = episodes_of_alerts(store)
    a = health.alerts(store)
    by_day = {(x["ds"], x["kind"]): x["episode"] for x in a["alerts"]}
    assert by_day[(DAYS[3], "decision")] == by_day[(DAYS[2], "decision")]
    acked = by_day[(DAYS[3], "decision")]
    assert (acked["id"], acked["state"], acked["first_ds"], acked["last_ds"], acked["severity"]) == (
        decision,
        "open",
        DAYS[2],
        DAYS[3],
        "critical",
    )
    assert acked["acknowledged_by"] == "ana" and acked["acknowledged_at"].endswith("+00:00")
    cleared = by_day[(DAYS[1], "validation")]
    assert (cleared["state"], cleared["cleared_ds"], cleared["acknowledged_by"]) == ("cleared", DAYS[2], None)
    assert by_day[(DAYS[3], "drift")] is None  # a row outside any episode
    assert [e["id"] for e in a["open_episodes"]] == [decision]
    assert json.dumps(a)


def test_run_day_has_the_row_reports_and_drift_headline(store, root):
    root.write_report(DAYS[3], "drift.json", json.dumps(drift_doc(0)).encode())
    root.write_report(
        DAYS[3],
        "validation.json",
        json.dumps({"status": "passed", "summary": "ok", "failures": [], "warnings": ["w"]}).encode(),
    )
    day = health.run_day(DAYS[3], store, root)
    assert day["run"]["decision"] == "healthy" and day["run"]["rows"] == 103
    assert day["validation"]["status"] == "passed" and day["validation"]["warnings"] == ["w"]
    assert day["drift"]["severity"] == "moderate" and day["drift"]["prediction_psi"] == 0.12
    assert [f["feature"] for f in day["drift"]["top_features"]] == ["tenure", "contract"]
    assert day["report_exists"] == {
        "summary.json": False,
        "validation.json": True,
        "validation.html": True,
        "drift.json": True,
        "drift.html": False,
    }
    assert day["why_missing"] == {"summary.json": f"summary.json of {DAYS[3]} does not exist"}
    assert day["failure_risk"]["risk"] == 0.6 and [a["kind"] for a in day["alerts"]] == ["drift"]
    json.dumps(day)
    promoted = health.run_day(DAYS[2], store, root)
    assert promoted["model_events"] == [
        {"event": "promoted", "version": 2, "from_version": 1, "reason": "challenger better"}
    ]
    with pytest.raises(ValueError):
        health.run_day("not-a-day", store, root)


def test_no_nan_reaches_the_json(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'nan.db'}")
    s.upsert(schema.daily_runs, [{"ds": DAYS[0], "dataset": "telco", "prediction_psi": math.nan}])
    s.upsert(
        schema.performance,
        [
            {
                "observed_ds": DAYS[0],
                "role": "champion",
                "model_version": 1,
                "measured_ds": DAYS[0],
                "labelled_rows": 10,
                "roc_auc": math.nan,
            }
        ],
    )
    text = json.dumps([health.score_distribution(s, max_days=0), health.performance(s, delay_days=7)], allow_nan=False)
    assert "NaN" not in text


@pytest.mark.integration
def test_the_same_answers_on_postgresql(postgres_url, tmp_path):
    pg = open_store(postgres_url)
    fill(pg)
    sqlite = open_store(f"sqlite:///{tmp_path / 'same.db'}")
    fill(sqlite)
    for call in (
        health.overview,
        health.drift_heatmap,
        lambda s: health.performance(s, delay_days=7),
        lambda s: health.models(s, lookup=False, model_name="churn-model"),
    ):
        assert _without_times(call(pg)) == _without_times(call(sqlite))
    assert len(health.alerts(pg)["alerts"]) == 3


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if k != "created_at"}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


# -- the pages' script, run by node against the JSON of this store ------------------------------------------
PAGES_HARNESS = r"""
const fs = require("fs");
const [script, fixtures, page, init] = process.argv.slice(2);
const api = JSON.parse(fs.readFileSync(fixtures, "utf8"));
const els = {}, charts = [], fetched = [];
const el = (id) => els[id] || (els[id] = {id, innerHTML: "", style: {}, value: "", on(ev, f) { this[ev] = f; }});
global.document = {getElementById: el, querySelectorAll: () => [], body: {getAttribute: (k) => (
  {"data-page": page, "data-base": "../", "data-init": init})[k]}};
global.window = global;
global.Plotly = {react: (node, traces, layout) => charts.push(
  {id: node.id, traces: traces.length, title: layout.title.text, shapes: (layout.shapes || []).length})};
global.fetch = (url) => {
  const path = decodeURIComponent(url.replace("../health/api/", ""));
  fetched.push(path);
  const body = api[path];
  return Promise.resolve(body === undefined ? {ok: false, status: 404, text: async () => path}
                                            : {ok: true, json: async () => body});
};
eval(fs.readFileSync(script, "utf8") + "; global.ChurnHealth = ChurnHealth;");
ChurnHealth.start();
setTimeout(() => {
  if (page === "drift") { els.day.value = "2026-03-04"; els.feature.value = "contract"; els.feature.onchange(); }
  setTimeout(() => console.log(JSON.stringify({html: els.main.innerHTML, charts, fetched})), 50);
}, 50);
"""


@pytest.fixture
def page_fixtures(store, root, tmp_path):
    """The JSON each page fetches, as the app answers it for the rows of ``fill``."""
    root.write_report(DAYS[3], "drift.json", json.dumps(drift_doc(20)).encode())
    root.write_report(DAYS[3], "drift.html", b"<html></html>")
    models = health.models(
        store,
        lookup=lambda name: {
            2: {
                "trigger": "drift: critical",
                "training_window": {},
                "shap_importance": {"tenure": 0.7, "contract": 0.3},
            }
        },
        model_name="churn-model",
    )
    api = {
        "overview": health.overview(store),
        "story": health.story(store),
        "drift/heatmap": health.drift_heatmap(store),
        "drift/scores": health.score_distribution(store, root),
        "performance": health.performance(store),
        "models": models,
        "alerts": health.alerts(store),
        f"run/{DAYS[3]}": health.run_day(DAYS[3], store, root),
        f"drift/feature?ds={DAYS[3]}&feature=contract": health.feature_distribution(DAYS[3], "contract", root),
    }
    path = tmp_path / "api.json"
    path.write_text(json.dumps(api))
    (tmp_path / "harness.js").write_text(PAGES_HARNESS)
    return tmp_path


def draw(page_fixtures, page: str, init: dict | None = None) -> dict:
    import shutil
    import subprocess
    from pathlib import Path

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = Path(__file__).resolve().parents[1] / "plugins/churnguard_airflow/health/health.js"
    out = subprocess.run(
        [
            node,
            str(page_fixtures / "harness.js"),
            str(script),
            str(page_fixtures / "api.json"),
            page,
            json.dumps(init or {}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert 'class="error"' not in result["html"], result["html"][:500]
    return result


@pytest.mark.integration
def test_every_page_draws_its_charts_from_its_json(page_fixtures):
    overview = draw(page_fixtures, "overview")
    assert "v2 / none" in overview["html"] and "critical drift" in overview["html"]
    # the story: the alarm threshold, the risk alarm and the promotion marked; then the drivers
    assert [(c["id"], c["traces"], c["shapes"]) for c in overview["charts"]] == [("story", 2, 3), ("drivers", 1, 0)]
    drift = draw(page_fixtures, "drift")
    assert [c["id"] for c in drift["charts"]] == ["heatmap", "psi", "scores", "feature-chart"]
    assert drift["charts"][-1]["title"] == "contract: PSI 0.020 (stable)"
    perf = draw(page_fixtures, "performance")
    # AUC: band (2 traces) + line per role; the label-delay band shaded on each of the four charts
    assert [(c["id"], c["traces"], c["shapes"]) for c in perf["charts"]] == [
        ("perf-roc_auc", 6, 1),
        ("perf-f1", 2, 1),
        ("perf-precision", 6, 1),
        ("perf-recall", 6, 1),
    ]
    models = draw(page_fixtures, "models")
    assert "drift: critical" in models["html"] and models["charts"][0]["title"].startswith("SHAP importance of v2")
    alerts = draw(page_fixtures, "alerts")
    assert alerts["html"].count("no episode") == 3 and "Open episodes (0)" in alerts["html"]
    run = draw(page_fixtures, "run", {"ds": DAYS[3], "run_id": "scheduled__x"})
    assert run["fetched"] == [f"run/{DAYS[3]}"] and f'src="../reports/{DAYS[3]}/drift.html"' in run["html"]
    other = draw(page_fixtures, "run", {"ds": None, "note": "another DAG"})
    assert other["html"] == '<p class="muted">another DAG</p>' and other["fetched"] == []


@pytest.mark.integration
def test_the_alerts_page_offers_acknowledge_until_an_episode_is_acknowledged(page_fixtures, store):
    decision = episodes_of_alerts(store)
    api = json.loads((page_fixtures / "api.json").read_text())
    api["alerts"] = health.alerts(store)
    (page_fixtures / "api.json").write_text(json.dumps(api))
    page = draw(page_fixtures, "alerts")["html"]
    assert "Open episodes (1)" in page
    # the open decision episode: acknowledged by ana (its row in the open episodes and its two days' rows); the
    # cleared validation episode: its one day's row still offers the button
    assert page.count(f'data-acked="{decision}">acknowledged by ana') == 3
    assert page.count("data-ack=") == 1 and page.count("no episode") == 3


@pytest.mark.integration
def test_the_overview_shows_each_open_alerts_episode_and_who_acknowledged_it(page_fixtures, store):
    decision = episodes_of_alerts(store)
    o = health.overview(store)
    by_day = {(a["ds"], a["kind"]): a["episode"] for a in o["open_alerts"]}
    assert by_day[(DAYS[3], "decision")]["id"] == decision
    assert by_day[(DAYS[3], "decision")]["acknowledged_by"] == "ana"
    assert by_day[(DAYS[1], "validation")]["state"] == "cleared"
    assert by_day[(DAYS[3], "drift")] is None
    api = json.loads((page_fixtures / "api.json").read_text())
    api["overview"] = o
    (page_fixtures / "api.json").write_text(json.dumps(api))

    page = draw(page_fixtures, "overview")["html"]

    assert page.count("acknowledged by ana") == 2  # the decision episode's two days
    assert page.count(f"cleared {DAYS[2]}") == 1 and "no episode" in page
    assert "data-ack=" not in page  # acknowledging is the Alerts page's


def test_registry_versions_from_a_real_mlflow_registry():
    """Tags, run metrics and the SHAP importance retraining logs, read from MLflow (a SQLite store)."""
    from mlflow import MlflowClient

    from churnguard.settings import get_settings

    settings = get_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    experiment = client.create_experiment("health-test", artifact_location=settings.mlflow_artifact_uri)
    client.create_registered_model("churn-model")
    for version, shap in ((1, None), (2, {"contract": 0.25, "tenure": 0.75})):
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, "holdout_auc", 0.8 + version / 100)
        if shap:
            client.log_dict(run, shap, "shap_importance.json")
        client.set_terminated(run)
        client.create_model_version(
            "churn-model",
            f"runs:/{run}/model",
            run_id=run,
            tags={
                "trigger": "bootstrap" if version == 1 else "drift: critical",
                "reference_auc": "0.810000",
                **({"train_from": "2026-01-01", "train_to": "2026-02-01"} if version == 2 else {}),
            },
        )
    client.set_registered_model_alias("churn-model", "champion", "2")
    found = health.registry_versions("churn-model")
    assert sorted(found) == [1, 2]
    assert found[2]["trigger"] == "drift: critical" and found[2]["aliases"] == ["champion"]
    assert found[2]["training_window"] == {"train_from": "2026-01-01", "train_to": "2026-02-01"}
    assert found[2]["metrics"] == {"holdout_auc": 0.82} and found[2]["reference_auc"] == 0.81
    assert list(found[2]["shap_importance"].items()) == [("tenure", 0.75), ("contract", 0.25)]
    assert found[1]["shap_importance"] is None and found[1]["training_window"] == {}
    assert health.registry_versions("never-registered") == {}
