"""Failure model vs single-signal baselines on held-out simulated trajectories.

Simulates the trajectory mix of ``configs/failure.yaml`` (cached under ``<home>/cache/``, so re-runs are
fast), trains the failure model on the training trajectories and scores the held-out ones next to:
max PSI > 0.25; half of the features drifted; the CBPE estimated AUC drop; the ATC estimate; the latest
measured AUC drop on labels that have arrived. Reports every number overall, on the visible failures and
on the concept-only ones (decided per trajectory by its counterfactual without the concept component, see
``churnguard.failure.trajectories``) and per family, with trajectory-bootstrap 95 % intervals, a threshold
sensitivity table, and a Plotly HTML plot next to the JSON output. Not a test: numbers to read.

Every family weighs the same in the headline numbers (``alert_metrics(..., weighted=True)``): AUROC with
sample weights 1 / (days of the family), detection as the mean of the per-family shares, the median lead
weighted 1 / (failing trajectories of the family); false alarms per 90 days are a plain rate over days.

The alarm threshold is chosen on the training trajectories' out-of-fold scores; its numbers there
("validation") are printed next to the held-out ones, which are computed once, at the end. Transfer: the
same model, unchanged (threshold included), scores every trajectory of a second dataset
(``--transfer-dataset``, default mlc_churn; its own churn champion, its own simulated mix of the same size).

    python benchmarks/failure_eval.py            # full: 864 trajectories per dataset
    python benchmarks/failure_eval.py --quick    # 72 trajectories per dataset
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from churnguard.config import load_dataset_config, load_drift_config, load_model_config
from churnguard.failure.config import load_failure_config
from churnguard.failure.evaluation import (
    BASELINES,
    alert_metrics,
    auroc,
    auroc_by_sight,
    concept_only_rows,
    family_weights,
    lead_times,
    threshold_sensitivity,
    trajectory_bootstrap,
    visible_rows,
)
from churnguard.failure.features import feature_names
from churnguard.failure.model import fit_failure_model
from churnguard.failure_training import _read_parquet, build_dataset, simulate_trajectories
from churnguard.settings import get_settings
from churnguard.storage import open_storage

MODEL = "failure model"


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _table(rows: dict[str, dict], keys: list[str], label: str = "score") -> str:
    width = max(34, *(len(name) for name in rows))
    lines = [f"{label:{width}s} " + " ".join(f"{k:>12s}" for k in keys)]
    for name, metrics in rows.items():
        lines.append(f"{name:{width}s} " + " ".join(f"{_fmt(metrics.get(k)):>12s}" for k in keys))
    return "\n".join(lines)


def family_failures(days: pd.DataFrame) -> pd.DataFrame:
    """Per family, all trajectories: how often the champion failed at all, and how badly at worst."""
    per = days.groupby("trajectory").agg(
        family=("family", "first"),
        intensity=("intensity", "first"),
        failed=("failed_today", lambda s: bool(s.fillna(False).any())),
        min_auc=("roc_auc_today", "min"),
        min_f1=("f1_today", "min"),
    )
    out = per.groupby("family").agg(
        trajectories=("failed", "size"),
        failing=("failed", "sum"),
        max_intensity=("intensity", "max"),
        min_day_auc=("min_auc", "min"),
        min_day_f1=("min_f1", "min"),
    )
    if "failure_kind" in days.columns:
        kinds = days.groupby("trajectory")["failure_kind"].first()
        per = per.join(kinds)
        out = out.join(
            per.groupby("family")["failure_kind"].agg(
                visible=lambda k: int((k == "visible").sum()), concept_only=lambda k: int((k == "concept_only").sum())
            )
        )
    lowest = per[per["failed"]].groupby("family")["intensity"].min().rename("lowest_failing_intensity")
    return out.join(lowest).round(3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="72 trajectories instead of the full mix")
    parser.add_argument("--trajectories", type=int, default=None, help="override the trajectory count")
    parser.add_argument("--workers", type=int, default=2, help="simulation processes")
    parser.add_argument("--bootstrap", type=int, default=500, help="trajectory-bootstrap resamples")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default <home>/benchmarks)")
    parser.add_argument(
        "--transfer-dataset",
        default="mlc_churn",
        help="dataset config whose trajectories the unchanged model is also scored on",
    )
    parser.add_argument(
        "--transfer-trajectories",
        type=int,
        default=None,
        help="trajectories of the transfer dataset (default: as many as in-domain)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("churnguard.failure.model", "churnguard.failure_training"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = time.monotonic()
    cfg = load_failure_config()
    count = args.trajectories or (72 if args.quick else cfg.trajectories.count)
    delay, horizon = cfg.failure.label_delay_days, cfg.failure.horizon_days

    storage = open_storage()
    model_cfg, drift_cfg = load_model_config(), load_drift_config()
    simulated = simulate_trajectories(
        storage, cfg, load_dataset_config(), model_cfg, drift_cfg, None, count, workers=args.workers
    )
    dataset = build_dataset(simulated, storage)
    days = _read_parquet(storage, simulated["trajectories_key"])
    table = _read_parquet(storage, dataset["dataset_key"])
    train, held_out = table[table["split"] == "train"], table[table["split"] == "evaluation"].copy()
    model, fit = fit_failure_model(table, feature_names(cfg.features.trend_days), cfg)
    held_out["risk"] = model.predict_risk(held_out)
    visible, concept_only = visible_rows(held_out), concept_only_rows(held_out)
    # the rule before 2 December 2026: visible when the counterfactual fails on any day, however late
    visible_any_day = held_out[(held_out["failure_kind"] != "concept_only") | held_out["visible_failure_day"].notna()]
    scores = {MODEL: ("risk", model.threshold), **BASELINES}

    def metrics_of(frame: pd.DataFrame, weighted: bool = True) -> dict[str, dict]:
        return {name: alert_metrics(frame, col, thr, delay, horizon, weighted) for name, (col, thr) in scores.items()}

    overall, on_visible, on_concept = metrics_of(held_out), metrics_of(visible), metrics_of(concept_only)
    unweighted = {
        "all families": alert_metrics(held_out, "risk", model.threshold, delay, horizon),
        "visible failures": alert_metrics(visible, "risk", model.threshold, delay, horizon),
        "concept-only failures": alert_metrics(concept_only, "risk", model.threshold, delay, horizon),
    }
    on_visible_any_day = alert_metrics(visible_any_day, "risk", model.threshold, delay, horizon, weighted=True)
    by_sight = {name: auroc_by_sight(held_out, col, delay) for name, (col, _) in scores.items()}
    best = max(BASELINES, key=lambda name: overall[name]["auroc"] or 0.0)
    best_visible = max(BASELINES, key=lambda name: on_visible[name]["auroc"] or 0.0)

    def column_auroc(col: str):
        def stat(t: pd.DataFrame) -> float | None:
            return auroc(
                t["label"].astype(int).to_numpy(),
                t[col].astype(float).fillna(-1e9).to_numpy(),
                family_weights(t["family"]),
            )

        return stat

    def margin(col: str):
        return lambda t: (column_auroc("risk")(t) or 0.0) - (column_auroc(col)(t) or 0.0)

    n = args.bootstrap
    intervals = {
        "auroc": trajectory_bootstrap(held_out, column_auroc("risk"), n),
        "best_baseline_auroc": trajectory_bootstrap(held_out, column_auroc(BASELINES[best][0]), n),
        "margin_over_best": trajectory_bootstrap(held_out, margin(BASELINES[best][0]), n),
        "visible_auroc": trajectory_bootstrap(visible, column_auroc("risk"), n),
        "visible_margin_over_best": trajectory_bootstrap(visible, margin(BASELINES[best_visible][0]), n),
    }
    # transfer: every trajectory of the second dataset, none of which the model (or its threshold) has seen
    transfer_sim = simulate_trajectories(
        storage,
        cfg,
        load_dataset_config(args.transfer_dataset),
        model_cfg,
        drift_cfg,
        None,
        args.transfer_trajectories or count,
        workers=args.workers,
    )
    transfer_set = build_dataset(transfer_sim, storage)
    transfer = _read_parquet(storage, transfer_set["dataset_key"])
    transfer["risk"] = model.predict_risk(transfer)
    transfer_visible = visible_rows(transfer)
    on_transfer, on_transfer_visible = metrics_of(transfer), metrics_of(transfer_visible)
    intervals["transfer_auroc"] = trajectory_bootstrap(transfer, column_auroc("risk"), n)
    intervals["transfer_visible_auroc"] = trajectory_bootstrap(transfer_visible, column_auroc("risk"), n)
    transfer_family = {
        f: {"auroc": column_auroc("risk")(g), "days": len(g), "pos": float(g["label"].mean())}
        for f, g in transfer.groupby("family")
    }
    transfer_failures = family_failures(_read_parquet(storage, transfer_sim["trajectories_key"]))

    per_family = {}
    for family, group in held_out.groupby("family"):
        per_family[family] = metrics_of(group)
        per_family[family]["_days"] = {"days": len(group), "positive_rate": float(group["label"].mean())}
    sensitivity = threshold_sensitivity(visible, "risk", delay, horizon)
    sensitivity_all = threshold_sensitivity(held_out, "risk", delay, horizon)
    leads = lead_times(held_out, "risk", model.threshold, delay, horizon).merge(
        held_out.groupby("trajectory")["failure_kind"].first().reset_index(), on="trajectory"
    )
    failures = family_failures(days)

    out = args.out or get_settings().home / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "trajectories": simulated["trajectories"],
        "dataset_version": dataset["dataset_version"],
        "mix": dataset["mix"],
        "fit": fit,
        "overall": overall,
        "visible": on_visible,
        "concept_only": on_concept,
        "visible_any_day_rule": on_visible_any_day,
        "unweighted": unweighted,
        "by_sight": by_sight,
        "best_baseline": best,
        "best_visible_baseline": best_visible,
        "intervals": intervals,
        "per_family": per_family,
        "family_failures": failures.reset_index().to_dict("records"),
        "sensitivity_visible": sensitivity.to_dict("records"),
        "leads": leads.to_dict("records"),
        "transfer": {
            "dataset": transfer_sim["dataset"],
            "champion": transfer_sim["champion"],
            "trajectories": transfer_sim["trajectories"],
            "dataset_version": transfer_set["dataset_version"],
            "mix": transfer_set["mix"],
            "overall": on_transfer,
            "visible": on_transfer_visible,
            "per_family": transfer_family,
            "family_failures": transfer_failures.reset_index().to_dict("records"),
        },
    }
    (out / "failure_eval.json").write_text(json.dumps(result, indent=2, default=str))
    _plot(sensitivity, model.threshold, out / "failure_eval.html")

    print(
        f"\ntrajectories: {simulated['trajectories']} ({len(train['trajectory'].unique())} train, "
        f"{len(held_out['trajectory'].unique())} held out); labelled days: {len(train)} train, "
        f"{len(held_out)} held out; dataset {dataset['dataset_version']}"
    )
    print(
        f"model: {fit['chosen']} (grouped-CV AUROC on train: "
        + ", ".join(f"{k} {v:.4f}" for k, v in fit["cv_auroc"].items())
        + f"), alarm threshold {model.threshold:.2f} (training out-of-fold scores, {fit['cv_repeats']} x "
        f"{fit['cv_folds']}-fold grouped CV: at most {cfg.training.max_false_alarms_per_90d:g} false "
        "alarms / 90 days)"
    )
    print("\nmix (labelled days, all trajectories):")
    print(pd.DataFrame(dataset["mix"]).to_string(index=False))
    print("\ndid the champion fail? (all trajectories; day AUC/F1 on that day's 500 labels)")
    print(failures.to_string())
    keys = ["auroc", "precision", "recall", "false_alarms_per_90d", "detected", "median_lead_days"]
    m, v = overall[MODEL], on_visible[MODEL]
    print(f"\nheld-out, all families ({len(held_out)} days):")
    print(_table(overall, keys))
    print(f"\nheld-out, visible failures (every trajectory but the concept-only ones; {len(visible)} days):")
    print(_table(on_visible, keys))
    print(
        f"\nfailure model on the visible failures of the rule before 2 December 2026 (the counterfactual fails "
        f"on any day, however long after the first failure; {len(visible_any_day)} days), family-weighted:"
    )
    print(_table({MODEL: on_visible_any_day}, keys))
    print(
        f"\nheld-out, concept-only failures (the counterfactual without concept does not fail; "
        f"{len(concept_only)} days):"
    )
    print(_table(on_concept, keys))
    sight = by_sight[MODEL]
    print(
        f"\nheld-out AUROC on blind days (failure-coming days of concept-only trajectories before their labels "
        f"show the first failure: {sight['blind_share']:.1%} of the positives' weight) and on every other "
        "positive day, each against all negative days:"
    )
    print(_table(by_sight, ["seen", "blind"]))
    print(
        f"AUROC {m['auroc']:.4f} = {1 - sight['blind_share']:.3f} x seen {sight['seen']:.4f} + "
        f"{sight['blind_share']:.3f} x blind {sight['blind']:.4f}; at this 'seen', 0.93 needs blind >= "
        f"{(0.93 - (1 - sight['blind_share']) * sight['seen']) / sight['blind_share']:.4f}"
    )
    print(
        f"unseen days (blind days of a world nothing observable tells from one without drift yet: before the "
        f"onset, or a concept change alone before its onset day's labels arrive): {sight['unseen_share']:.1%} "
        f"of the positives' weight. The failure model ranks them above {sight['unseen']:.3f} of the negative "
        f"days ({sight['unseen_vs_unchanged']:.3f} of those of an unchanged world). Ranking every other "
        f"positive day first, it would reach AUROC {sight['ceiling']:.4f}; at chance on the unseen days, "
        f"{sight['chance_ceiling']:.4f}"
    )
    print("\nfailure model, every day and failing trajectory weighing the same (not family-weighted):")
    print(_table(unweighted, keys, label="failure model, unweighted"))
    print("\nfailure model alarm per family and kind of failure (held out, failing trajectories):")
    lead_rows = leads.groupby(["family", "failure_kind"]).agg(
        failing=("detected", "size"), detected=("detected", "mean"), median_lead_days=("lead_days", "median")
    )
    print(lead_rows.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"\nalarm at threshold {model.threshold:.2f}, chosen on the validation numbers; held out computed once:")
    print(
        _table(
            {
                "validation (out-of-fold, training trajectories)": fit["validation"],
                "held out (evaluation trajectories)": unweighted["all families"],
            },
            keys,
            label="failure model, all families, unweighted",
        )
    )
    print(
        _table(
            {
                "validation (out-of-fold, training trajectories)": fit["validation_visible"],
                "held out (evaluation trajectories)": v,
            },
            keys,
            label="failure model, visible failures, family-weighted",
        )
    )
    print(
        f"training: early-warning weight {cfg.training.early_warning_weight:g} on the days from "
        f"{horizon} days before a first failure to the day before its labels show it"
    )
    print("\nAUROC per family (held out; '-' = no failure-coming day in that family's held-out days):")
    fam_rows = {
        f: {
            **{n: per_family[f][n]["auroc"] for n in scores},
            "days": per_family[f]["_days"]["days"],
            "pos": per_family[f]["_days"]["positive_rate"],
        }
        for f in per_family
    }
    print(pd.DataFrame(fam_rows).T.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nfailure model alarm per family (held out):")
    print(_table({f: per_family[f][MODEL] for f in per_family}, keys))
    print("\nthreshold sensitivity, visible families:")
    print(sensitivity.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nthreshold sensitivity, all families:")
    print(sensitivity_all.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"\ntransfer: the model above, unchanged (threshold {model.threshold:.2f}), on all "
        f"{transfer_sim['trajectories']} {transfer_sim['dataset']} trajectories ({len(transfer)} labelled days; "
        f"their churn champion: {transfer_sim['champion']}; dataset {transfer_set['dataset_version']})"
    )
    print(transfer_failures.to_string())
    print(f"\ntransfer, all families ({len(transfer)} days):")
    print(_table(on_transfer, keys))
    print(f"\ntransfer, visible failures ({len(transfer_visible)} days):")
    print(_table(on_transfer_visible, keys))
    print("\ntransfer AUROC per family (failure model):")
    print(pd.DataFrame(transfer_family).T.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\n95 % trajectory-bootstrap intervals (" + str(n) + " resamples):")
    for key, (lo, hi) in intervals.items():
        print(f"  {key:26s} [{lo:.4f}, {hi:.4f}]")
    print(f"best baseline overall: {best}; on visible families: {best_visible}")
    print(f"outputs: {out / 'failure_eval.json'}, {out / 'failure_eval.html'}; {time.monotonic() - started:.0f}s")
    print(
        f"failure-eval auroc={m['auroc']:.4f} best_baseline_auroc={overall[best]['auroc']:.4f} "
        f"visible_auroc={v['auroc']:.4f} lead_days={_fmt(v['median_lead_days'], 1)} "
        f"detected={_fmt(v['detected'], 3)} false_alarms_per_90d={m['false_alarms_per_90d']:.3f} "
        f"transfer_auroc={_fmt(on_transfer[MODEL]['auroc'], 4)}"
    )


def _plot(sensitivity: pd.DataFrame, chosen: float, path: Path) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for col in ("precision", "recall", "detected"):
        fig.add_trace(go.Scatter(x=sensitivity["threshold"], y=sensitivity[col], name=col, mode="lines+markers"))
    fig.add_trace(
        go.Scatter(
            x=sensitivity["threshold"],
            y=sensitivity["median_lead_days"],
            name="median lead (days)",
            mode="lines+markers",
            line={"dash": "dot"},
        ),
        secondary_y=True,
    )
    fig.add_vline(x=chosen, line_dash="dash", annotation_text=f"chosen {chosen:.2f}")
    fig.update_layout(
        title="Failure-risk alarm threshold vs precision, recall and lead time (held-out visible families)",
        xaxis_title="risk threshold",
    )
    fig.update_yaxes(title_text="share", range=[0, 1.05], secondary_y=False)
    fig.update_yaxes(title_text="days", secondary_y=True)
    fig.write_html(path, include_plotlyjs="cdn")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import clean_stop

    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the simulation processes end
        main()
