"""Does the loop heal? Per drift family and seed: a fresh churnguard home (bootstrap v1, simulate the days,
run them with :func:`churnguard.steps.run_days`, no Airflow), then the champion of each day held against an
oracle on that day's customers.

- oracle: the same model class (:func:`churnguard.models.train_model`) trained on the post-change
  distribution with all its labels: the scenario's days from onset to onset + 29 drawn with another seed.
  ``--customers pool`` (the simulator draws held-out rows again and again): drawn from the reference's train
  split (the customers v1 was trained on) instead of the held-out pool the days are drawn from; drawn from the
  pool, the oracle would have seen the evaluated customers themselves (it beat v1 by 0.04 AUC on the gradual
  family's first day, before anything had moved). ``--customers synthetic`` (every customer new, the label
  drawn from a model of the pool): new customers of the same world as the days, so no champion can beat it
  by having seen the evaluated customers.
- ``days_to_heal``: days from onset until the first day from which the champion's AUC stays within
  ``HEAL_GAP`` of the oracle's (the mean gap of that day and the next two: one day of 500 customers is good to
  about ±0.03 only); not within the horizon: ``>29`` in the table, ``HORIZON`` (30) in the median.
- ``auc_gap_30d``: oracle AUC − champion AUC averaged over the ``HORIZON`` days from onset.
- ``new champ`` / ``new gap``: the AUC of the champions promoted after v1 over their days, and the oracle's
  AUC minus theirs on those days (negative: above the oracle). ``promotions``: each promotion's retrain
  holdout AUC (``ref``, the AUC it was registered with) against its AUC on its first week as champion.
- ``promotions_that_failed``: promotions whose champion, on the labels of its first week as champion (up to
  7 days it scored), measurably fails under the daily run's own rule (:func:`~churnguard.performance.
  is_measured_failure` against the version's reference AUC and F1).

``--flattery``: no worlds; how much a model trained on 20 days of the simulator's customers is flattered on
20 later days of the same simulator (another seed), against the same model class trained on 20 days of
customers drawn from the reference's train split: pool and synthetic customers, no drift.

Each world runs in its own process (``--world FAMILY SEED``): churnguard's settings and stores are per
process; ``--jobs N`` runs N of them at once (each with its own home), the table still in order.
``--quick``: one seed, 7 days before onset; the full run: seeds 0, 1, 2 and 14 days before onset.
Not a test: numbers to read. The last line: ``heal-bench days_to_heal=… auc_gap_30d=… promotions_that_failed=…``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

from churnguard.store import schema

FAMILIES = ("concept", "sudden+concept", "gradual")  # concept, covariate+concept, gradual
ONSET = date(2026, 9, 26)
HORIZON = 30  # days from onset that are scored against the oracle
HEAL_GAP = 0.03
LABEL_DELAY = 7
ROWS_PER_DAY = 500


def dataset_config(customers: str | None):
    """The dataset config, its simulator drawing ``customers`` (None: as configured)."""
    from churnguard.config import load_dataset_config

    cfg = load_dataset_config()
    if customers is None:
        return cfg
    return cfg.model_copy(update={"simulation": cfg.simulation.model_copy(update={"customers": customers})})


def run_world(family: str, seed: int, before_days: int, customers: str | None = None) -> dict:
    """Build one world in this process's ``CHURNGUARD_HOME`` and measure it (see the module docstring)."""
    from churnguard.bootstrap import bootstrap
    from churnguard.context import open_bootstrap
    from churnguard.dataroot import DataRoot
    from churnguard.landing import simulate
    from churnguard.simulate import Scenario
    from churnguard.steps import run_days

    start, end = ONSET - timedelta(days=before_days), ONSET + timedelta(days=HORIZON - 1)
    scenario = Scenario.parse(family, onset=ONSET)
    t0 = time.perf_counter()
    bootstrap(open_bootstrap(), seed=0)
    # labels of the last run day are written too (they land after it): the evaluation reads them
    cfg = dataset_config(customers)
    simulate(
        start,
        (end - start).days + 1 + LABEL_DELAY,
        scenario,
        rows_per_day=ROWS_PER_DAY,
        label_delay=LABEL_DELAY,
        seed=seed,
        root=DataRoot.open(),
        cfg=cfg,
    )
    run_days(start, end)
    return {
        "family": family,
        "seed": seed,
        "customers": cfg.simulation.customers,
        **measure_world(scenario, seed, end, cfg),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def measure_world(scenario, seed: int, end: date, cfg) -> dict:
    import numpy as np
    import pandas as pd
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from churnguard import training
    from churnguard.config import load_model_config, load_monitoring_config
    from churnguard.data import load_reference, split_reference, target_array
    from churnguard.dataroot import DataRoot
    from churnguard.failure.config import load_failure_config
    from churnguard.models import train_model
    from churnguard.performance import day_metrics, is_measured_failure, reference_metrics
    from churnguard.registry import ModelRegistry
    from churnguard.simulate import BatchSimulator
    from churnguard.store import open_store

    name, monitoring, failure_cfg = load_model_config().registered_name, load_monitoring_config(), load_failure_config()
    root, store, registry = DataRoot.open(), open_store(), ModelRegistry(name)
    days = [ONSET + timedelta(days=i) for i in range(HORIZON)]

    sim = BatchSimulator(cfg, rows_per_day=ROWS_PER_DAY, seed=10_000 + seed)
    if sim.customers == "pool":
        sim.use_pool(split_reference(load_reference(cfg), cfg).train)  # v1's customers, not the evaluated ones
    span = sim.days(days, scenario)
    post = span.landing.merge(span.labels.drop(columns="observed_ds"), on=cfg.id.column)
    fit, val = train_test_split(post, test_size=0.2, stratify=target_array(post, cfg), random_state=seed)
    oracle = train_model(fit, val, cfg, load_model_config(), random_state=0)

    runs = {r["ds"]: r for r in store.rows(schema.daily_runs)}
    models: dict[int, object] = {}

    def model(version: int):
        if version not in models:
            models[version] = training.load_version_model(registry, version)
        return models[version]

    def labelled(ds: date) -> pd.DataFrame:
        labels = root.storage.read_partition("labels", (ds + timedelta(days=LABEL_DELAY)).isoformat())
        return root.read_batch(ds.isoformat()).merge(labels[labels["observed_ds"] == ds.isoformat()], on=cfg.id.column)

    per_day = []
    for ds in days:
        run = runs.get(ds.isoformat())
        if run is None or run["champion_version"] is None:  # quarantined day: no champion scored it
            continue
        day = labelled(ds)
        y = target_array(day, cfg)
        champion = float(roc_auc_score(y, model(run["champion_version"]).predict_proba(day)))
        per_day.append(
            {
                "ds": ds.isoformat(),
                "champion": run["champion_version"],
                "auc": champion,
                "oracle_auc": float(roc_auc_score(y, oracle.predict_proba(day))),
            }
        )
    gaps = [d["oracle_auc"] - d["auc"] for d in per_day]
    first = per_day[0]["champion"] if per_day else None
    new = [d for d in per_day if d["champion"] != first]  # days of champions promoted after the first
    healed = next((i for i in range(len(gaps) - 2) if np.mean(gaps[i : i + 3]) <= HEAL_GAP), None)
    days_to_heal = (date.fromisoformat(per_day[healed]["ds"]) - ONSET).days if healed is not None else None

    promotions = []
    for event in store.rows(schema.model_events, where={"event": "promoted"}, order_by="id"):
        version, first = event["model_version"], date.fromisoformat(event["ds"]) + timedelta(days=1)
        week = [
            first + timedelta(days=i)
            for i in range(7)
            if first + timedelta(days=i) <= end
            and (runs.get((first + timedelta(days=i)).isoformat()) or {}).get("champion_version") == version
        ]
        entry = {
            "ds": event["ds"],
            "version": version,
            "from": event["from_version"],
            "days": len(week),
            "reason": event["reason"],
        }
        if len(week) >= 3:  # fewer labelled days than the failure window: no verdict
            rows = pd.concat([labelled(d) for d in week], ignore_index=True)
            metrics = day_metrics(
                target_array(rows, cfg),
                model(version).predict_proba(rows),
                model(version).threshold,
                failure_cfg.failure.confidence,
            )
            ref_auc, ref_f1 = reference_metrics(registry, version)
            entry.update(
                auc=metrics["roc_auc"],
                reference_auc=ref_auc,
                failed=is_measured_failure(metrics, ref_auc, ref_f1, monitoring, failure_cfg),
            )
        promotions.append(entry)
    registered = [
        {"ds": e["ds"], "version": e["model_version"]}
        for e in store.rows(schema.model_events, where={"event": "registered"}, order_by="id")
    ]
    return {
        "days_to_heal": days_to_heal,
        "auc_gap_30d": float(np.mean(gaps)) if gaps else None,
        "promotions_that_failed": sum(bool(p.get("failed")) for p in promotions),
        "champion_auc_30d": float(np.mean([d["auc"] for d in per_day])),
        "oracle_auc_30d": float(np.mean([d["oracle_auc"] for d in per_day])),
        "new_champion_auc": float(np.mean([d["auc"] for d in new])) if new else None,
        "new_champion_gap": float(np.mean([d["oracle_auc"] - d["auc"] for d in new])) if new else None,
        "new_champion_days": len(new),
        "promotions": promotions,
        "registered": registered,
        "per_day": per_day,
    }


def world_in_subprocess(family: str, seed: int, before_days: int, base: Path, customers: str | None = None) -> dict:
    home = base / f"{family.replace('+', '_')}-{seed}"
    env = {
        **os.environ,
        "CHURNGUARD_HOME": str(home),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "GX_ANALYTICS_ENABLED": "false",
    }
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--world",
            family,
            str(seed),
            "--before-days",
            str(before_days),
            *(["--customers", customers] if customers else []),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"world {family} seed {seed} failed:\n{proc.stderr[-4000:]}")
    (base / f"{home.name}.log").write_text(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def flattery(days: int = 20) -> None:
    """Print, per kind of customers, the AUC on later simulated days of a model trained on the simulator's days
    and of one trained on days of the train split's customers (see the module docstring)."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    from churnguard.config import load_model_config
    from churnguard.data import load_reference, split_reference, target_array
    from churnguard.models import train_model
    from churnguard.simulate import BatchSimulator, Scenario

    first, later = ONSET - timedelta(days=days), ONSET + timedelta(days=60)
    for customers in ("pool", "synthetic"):
        cfg = dataset_config(customers)
        train_split = split_reference(load_reference(cfg), cfg).train

        def rows(sim, start: date, cfg=cfg) -> object:
            span = sim.days([start + timedelta(days=i) for i in range(days)], Scenario())
            return span.landing.merge(span.labels.drop(columns="observed_ds"), on=cfg.id.column)

        def fit(frame, cfg=cfg):
            a, b = train_test_split(frame, test_size=0.2, stratify=target_array(frame, cfg), random_state=0)
            return train_model(a, b, cfg, load_model_config(), random_state=0)

        test = rows(BatchSimulator(cfg, rows_per_day=ROWS_PER_DAY, seed=2), later)
        y = target_array(test, cfg)
        seen = fit(rows(BatchSimulator(cfg, rows_per_day=ROWS_PER_DAY, seed=1), first))
        other = fit(rows(BatchSimulator(cfg, rows_per_day=ROWS_PER_DAY, seed=1).use_pool(train_split), first))
        a_seen, a_other = (float(roc_auc_score(y, m.predict_proba(test))) for m in (seen, other))
        print(
            f"flattery customers={customers} trained_on_simulator={a_seen:.4f} trained_on_other_customers="
            f"{a_other:.4f} flattery={a_seen - a_other:+.4f}",
            flush=True,
        )


def summary(results: list[dict]) -> dict:
    heal = [r["days_to_heal"] if r["days_to_heal"] is not None else HORIZON for r in results]
    return {
        "days_to_heal": statistics.median(heal),
        "auc_gap_30d": statistics.fmean(r["auc_gap_30d"] for r in results),
        "promotions_that_failed": sum(r["promotions_that_failed"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 7 days before onset")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (default: 0 quick, 0,1,2 full)")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--before-days", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="folder for the worlds (default: a temp dir)")
    parser.add_argument(
        "--customers",
        choices=("pool", "synthetic"),
        default=None,
        help="the simulator's customers (default: the dataset config's simulation.customers)",
    )
    parser.add_argument("--flattery", action="store_true", help="no worlds: the flattery of each kind of customers")
    parser.add_argument("--jobs", type=int, default=1, help="worlds run at once, each in its own process")
    parser.add_argument("--world", nargs=2, metavar=("FAMILY", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    before = args.before_days if args.before_days is not None else (7 if args.quick else 14)
    if args.flattery:
        flattery()
        return
    if args.world:
        print(json.dumps(run_world(args.world[0], int(args.world[1]), before, args.customers)))
        return
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",")]
    base = args.out or Path(tempfile.mkdtemp(prefix="heal-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    results = []
    print(
        f"{'family':<16}{'seed':>5}{'heal d':>8}{'gap 30d':>9}{'champ':>7}{'oracle':>8}{'new champ':>10}"
        f"{'new gap':>8}{'promos':>7}{'failed':>7}{'s':>7}  promotions (day vA->vB holdout AUC -> first-week AUC)"
    )
    worlds = [(family, seed) for family in args.families.split(",") for seed in seeds]
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        running = [
            pool.submit(world_in_subprocess, family, seed, before, base, args.customers) for family, seed in worlds
        ]
        for (family, seed), future in zip(worlds, running, strict=True):  # in order, each row once it is done
            r = future.result()
            results.append(r)
            heal = str(r["days_to_heal"]) if r["days_to_heal"] is not None else f">{HORIZON - 1}"
            promos = ", ".join(
                f"{p['ds'][5:]} v{p['from']}->v{p['version']}"
                + (f" {p['reference_auc']:.3f}->{p['auc']:.3f}{'!' if p['failed'] else ''}" if "auc" in p else "")
                for p in r["promotions"]
            )
            new = (
                f"{r['new_champion_auc']:>10.3f}{r['new_champion_gap']:>8.3f}"
                if r["new_champion_days"]
                else f"{'-':>10}{'-':>8}"
            )
            print(
                f"{family:<16}{seed:>5}{heal:>8}{r['auc_gap_30d']:>9.3f}{r['champion_auc_30d']:>7.3f}"
                f"{r['oracle_auc_30d']:>8.3f}{new}{len(r['promotions']):>7}{r['promotions_that_failed']:>7}"
                f"{r['seconds']:>7.0f}  {promos}",
                flush=True,
            )
    finally:
        pool.shutdown(cancel_futures=True)  # stopped or failed: no further world starts
    (base / "results.json").write_text(json.dumps(results, indent=1))
    s = summary(results)
    print(f"worlds and per-day numbers: {base}")
    print(
        f"heal-bench days_to_heal={s['days_to_heal']:g} auc_gap_30d={s['auc_gap_30d']:.3f} "
        f"promotions_that_failed={s['promotions_that_failed']}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import clean_stop

    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the worlds' processes end
        main()
