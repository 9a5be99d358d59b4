"""How fast do the Model Health pages get their data with a year of history? A fresh churnguard home (SQLite
monitoring store, file data root) filled with 365 monitored days through the store's own upserts:
daily_runs, feature_drift for 20 features, performance for champion and challenger (a challenger shadows
the champion 20 days of every 60; the last 7 days still wait for labels), failure_risk, model_events (a
retrain and a promotion every 60 days) and alerts, plus a drift.json per day the size of a real one
(~100 KB: 20 features with bins, 108 segment blocks, the prediction histogram).

Each JSON endpoint's function of :mod:`churnguard.health` is timed as the app calls it (median of
``--repeat`` calls after one warm-up); the score histograms are read cold every call (their 60 s cache
cleared), and ``models`` is timed without the MLflow registry (that lookup is bounded by
``health.REGISTRY_TIMEOUT_S`` and reused for ``health.REGISTRY_TTL_S``). Not a test: numbers to read. Target:
every endpoint under 300 ms. The home is removed afterwards unless ``--keep``. The last line:
``health-bench max_ms=… slowest=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta

DAYS = 365
FEATURES = [f"feature_{i:02d}" for i in range(20)]
FIRST = date(2025, 9, 1)
LABEL_DELAY = 7


def days() -> list[str]:
    return [(FIRST + timedelta(days=i)).isoformat() for i in range(DAYS)]


def fill_store(store, rng: random.Random) -> None:
    from churnguard.store import schema

    all_days = days()
    champion, challenger = 1, None
    runs, drift, perf, risk, alerts = [], [], [], [], []
    for i, ds in enumerate(all_days):
        if i and i % 60 == 0:
            challenger = champion + 1
            store.record_event(ds, "registered", "churn-model", challenger, reason="drift: critical")
        promoted = challenger is not None and i % 60 == 20
        if promoted:
            store.record_event(
                ds,
                "promoted",
                "churn-model",
                challenger,
                from_version=champion,
                reason="challenger better on 13 labelled days",
            )
            champion, challenger = challenger, None
        psis = [abs(rng.gauss(0.02 + 0.002 * (i % 60), 0.02)) for _ in FEATURES]
        drifted = [p >= 0.1 for p in psis]
        severity = "critical" if sum(drifted) >= 5 else "moderate" if any(drifted) else "stable"
        runs.append(
            {
                "ds": ds,
                "dataset": "telco",
                "rows": 5000,
                "data_version": f"v{i}",
                "validation_status": "passed",
                "drift_severity": severity,
                "drift_share": sum(drifted) / len(FEATURES),
                "weighted_drift": sum(psis) / len(psis),
                "prediction_psi": abs(rng.gauss(0.03, 0.02)),
                "champion_version": champion,
                "challenger_version": challenger,
                "failure_risk": rng.random(),
                "decision": "promoted" if promoted else "healthy",
                "reasons": ["drift moderate", "risk 0.3"],
                "promoted": promoted,
                "summary_uri": f"file:///data/reports/ds={ds}/summary.json",
            }
        )
        drift += [
            {
                "ds": ds,
                "feature": f,
                "kind": "numeric",
                "psi": p,
                "psi_threshold": 0.1,
                "statistic": 0.05,
                "p_value": 0.2,
                "js_distance": 0.05,
                "wasserstein": 0.1,
                "missing_delta": 0.0,
                "drifted": d,
                "consecutive_days": int(d),
            }
            for f, p, d in zip(FEATURES, psis, drifted, strict=True)
        ]
        if i < DAYS - LABEL_DELAY:
            measured = (FIRST + timedelta(days=i + LABEL_DELAY)).isoformat()
            for role, version in (("champion", champion), ("challenger", challenger)):
                if version is None:
                    continue
                auc = 0.8 + rng.gauss(0, 0.02)
                perf.append(
                    {
                        "observed_ds": ds,
                        "role": role,
                        "model_version": version,
                        "measured_ds": measured,
                        "labelled_rows": 500,
                        "roc_auc": auc,
                        "roc_auc_lower": auc - 0.04,
                        "f1": 0.6,
                        "precision": 0.55,
                        "recall": 0.65,
                        "brier": 0.14,
                        "churn_rate": 0.26,
                    }
                )
        risk.append(
            {
                "ds": ds,
                "available": True,
                "risk": rng.random(),
                "model_version": 1,
                "reason": "risk",
                "drivers": [{"feature": f"signal_{k}", "contribution": 0.1 * k, "value": 0.5} for k in range(3)],
                "signals": {"auc_trend": -0.01, "drift_share": 0.1},
            }
        )
        if severity != "stable":
            alerts.append(
                {
                    "ds": ds,
                    "kind": "drift",
                    "severity": "critical" if severity == "critical" else "warn",
                    "message": f"{severity} drift on {sum(drifted)} features",
                }
            )
    for table, rows in (
        (schema.daily_runs, runs),
        (schema.feature_drift, drift),
        (schema.performance, perf),
        (schema.failure_risk, risk),
        (schema.alerts, alerts),
    ):
        for k in range(0, len(rows), 500):
            store.upsert(table, rows[k : k + 500])


def drift_doc(rng: random.Random) -> dict:
    """A drift.json shaped and sized like a real day's (schema 2 with segments)."""

    def block(psi: float, full: bool) -> dict:
        b = {
            "kind": "numeric",
            "psi": psi,
            "psi_threshold": {"moderate": 0.1, "critical": 0.25, "chance": 0.01},
            "js_distance": 0.05,
            "missing_rate": {"reference": 0.0, "current": 0.0, "change": 0.0},
            "test": {
                "name": "ks",
                "statistic": 0.04,
                "p_value": 0.3,
                "p_adjusted": 0.9,
                "effect": 0.04,
                "bound": 0.001,
            },
            "notes": [],
            "severity": "stable",
            "drifted": psi >= 0.1,
        }
        if full:
            b.update(
                importance=0.05,
                weighted_psi=psi * 0.05,
                segment_drift=[],
                drift_days=0,
                wasserstein={"distance": 1.0, "normalised": 0.1, "bound": 0.01, "normalised_bound": 0.001},
                current={"n": 5000, "min": 0.0, "max": 100.0, "mean": 40.0, "std": 20.0},
                bins={
                    "edges": [round(10.0 * k + rng.random(), 6) for k in range(1, 10)],
                    "reference": [rng.randint(300, 700) for _ in range(10)],
                    "current": [rng.randint(300, 700) for _ in range(10)],
                },
            )
        return b

    features = {f: block(abs(rng.gauss(0.03, 0.03)), True) for f in FEATURES}
    segments = {
        "family": "segments",
        "correction": "holm",
        "n_tests": 108,
        "min_rows": 50,
        "severity": "stable",
        "n_drifted": 0,
        "drifted": [],
        "columns": {
            col: {
                "unseen": {},
                "missing": 0,
                "values": {
                    v: {
                        "n_reference": 1000,
                        "n_current": 800,
                        "status": "tested",
                        "reason": None,
                        "severity": "stable",
                        "n_drifted": 0,
                        "features": {f: block(0.02, False) for f in FEATURES[:18]},
                    }
                    for v in values
                },
            }
            for col, values in (
                ("contract", ["Month-to-month", "One year", "Two year"]),
                ("internet_service", ["DSL", "Fiber optic", "No"]),
            )
        },
    }
    edges = [k / 20 for k in range(21)]
    return {
        "schema_version": 2,
        "profile_version": "abc123",
        "n_rows": 5000,
        "chunked": False,
        "severity": "stable",
        "dataset_drift": False,
        "n_features": len(FEATURES),
        "n_drifted": 0,
        "drift_share": 0.0,
        "weighted_psi": 0.02,
        "features": features,
        "segments": segments,
        "config": {},
        "notes": [],
        "prediction": {
            **block(0.03, False),
            "histogram": {
                "edges": edges,
                "reference": [250] * 20,
                "current": [rng.randint(150, 350) for _ in range(20)],
            },
        },
        "label": None,
        "correlation": None,
    }


def timed(call, repeat: int, before=None) -> float:
    """Median milliseconds of ``call()`` over ``repeat`` calls after one warm-up (``before()`` ahead of each)."""
    if before:
        before()
    call()
    samples = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        json.dumps(call(), allow_nan=False)  # as the app answers: serialised
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the generated home")
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="health-bench-")
    os.environ["CHURNGUARD_HOME"] = home
    from churnguard import health
    from churnguard.dataroot import DataRoot
    from churnguard.settings import get_settings
    from churnguard.store import open_store

    get_settings.cache_clear()
    rng = random.Random(7)
    started = time.perf_counter()
    store, root = open_store(), DataRoot.open()
    fill_store(store, rng)
    sizes = []
    for ds in days():
        body = json.dumps(drift_doc(rng), indent=1).encode()
        root.write_report(ds, "drift.json", body)
        sizes.append(len(body))
    root.write_report(days()[-1], "validation.json", json.dumps({"status": "passed", "summary": "ok"}).encode())
    print(
        f"store: {store.count('daily_runs')} days, {store.count('feature_drift')} feature_drift rows, "
        f"{store.count('performance')} performance rows, {store.count('alerts')} alerts, "
        f"{store.count('model_events')} model events; drift.json {statistics.median(sizes) / 1000:.0f} KB a day; "
        f"built in {time.perf_counter() - started:.1f} s at {home}"
    )
    last = days()[-1]
    cold = health._histograms.clear
    endpoints = {
        "overview": lambda: health.overview(store),
        "story": lambda: health.story(store),
        "drift/heatmap": lambda: health.drift_heatmap(store),
        "drift/scores (60 days of histograms, cold)": lambda: health.score_distribution(store, root),
        "drift/feature": lambda: health.feature_distribution(last, "feature_03", root),
        "performance": lambda: health.performance(store, delay_days=LABEL_DELAY),
        "models (no registry)": lambda: health.models(store, lookup=False, model_name="churn-model"),
        "alerts": lambda: health.alerts(store),
        "run": lambda: health.run_day(last, store, root),
    }
    results = {}
    for name, call in endpoints.items():
        results[name] = timed(call, args.repeat, cold if "cold" in name else None)
        print(f"{name:45s} {results[name]:8.1f} ms")
    full_scores = timed(lambda: health.score_distribution(store, root, max_days=366), 3, cold)
    print(f"{'(drift/scores with all 365 histograms, cold)':45s} {full_scores:8.1f} ms  (max_days=366, not a default)")
    slowest = max(results, key=results.get)
    if not args.keep:
        import shutil

        store.engine.dispose()
        shutil.rmtree(home)
    print(f"health-bench max_ms={results[slowest]:.1f} slowest={slowest.split(' ')[0]}")
    return 0 if results[slowest] < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
