"""Why the failure model stays monotone: the same model with its constraints dropped, judged on grouped
(by trajectory) out-of-fold scores of the training trajectories only (the evaluation trajectories are not
read), with the AUROC split by what could be seen (``auroc_by_sight``), and what the free model learns.

Every trajectory of the simulation holds one drift, from one onset on. A model free to lower the risk as a
drift signal grows learns that: a day whose drift has run for a while without a failure gets less risk than
a quiet day, which could still see a concept change start. That lifts the unseen days (quiet days before a
concept failure) over the drifted harmless ones, and so the AUROC, on these simulated worlds, while in
production it would read "drift present" as "safer". Numbers to read, not a test.

    python benchmarks/failure_constraints.py        # the full mix of configs/failure.yaml (cached trajectories)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from churnguard.config import load_dataset_config, load_drift_config, load_model_config
from churnguard.failure.config import load_failure_config
from churnguard.failure.evaluation import (
    auroc,
    auroc_by_sight,
    family_weights,
    unchanged_world_days,
    unseen_days,
)
from churnguard.failure.features import FREE, MATURED, feature_names, monotone_directions
from churnguard.failure.model import _out_of_fold
from churnguard.failure_training import _read_parquet, build_dataset, simulate_trajectories
from churnguard.storage import open_storage

TRENDS = ("_delta", "_slope", "_slope_long", "_delta_long")


def variants(features: list[str]) -> dict[str, list[int]]:
    """Monotone directions (1 = the risk may only rise with the feature) per variant."""
    label_based = {*MATURED, "matured_auc_drop_delta"} - set(FREE)
    return {
        "monotone (the model)": monotone_directions(features),
        "levels monotone, trends free": [
            0 if f in FREE or f.endswith(TRENDS) or f == "drifted_days" else 1 for f in features
        ],
        "labels monotone, drift free": [1 if f in label_based else 0 for f in features],
        "free": [0] * len(features),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="simulation processes (cache misses only)")
    parser.add_argument("--repeats", type=int, default=1, help="grouped 4-fold splits per variant")
    args = parser.parse_args()
    cfg = load_failure_config()
    delay = cfg.failure.label_delay_days
    storage = open_storage()
    simulated = simulate_trajectories(
        storage,
        cfg,
        load_dataset_config(),
        load_model_config(),
        load_drift_config(),
        None,
        cfg.trajectories.count,
        workers=args.workers,
    )
    table = _read_parquet(storage, build_dataset(simulated, storage)["dataset_key"])
    train = table[table["split"] == "train"].copy()
    features = feature_names(cfg.features.trend_days)
    X, y = train[features].astype(float).fillna(0.0).to_numpy(), train["label"].astype(int).to_numpy()
    weights = family_weights(train["family"])
    unchanged = unchanged_world_days(train, delay).to_numpy()
    harmless_drift, quiet = (y == 0) & ~unchanged, (y == 0) & unchanged
    unseen = unseen_days(train, delay).to_numpy()
    splits = [
        list(
            StratifiedGroupKFold(n_splits=cfg.training.cv_folds, shuffle=True, random_state=r).split(
                X, y, train["trajectory"].to_numpy()
            )
        )
        for r in range(args.repeats)
    ]
    print(
        f"training trajectories: {train['trajectory'].nunique()}, days: {len(train)}; "
        f"{args.repeats} x {cfg.training.cv_folds}-fold grouped CV, xgboost, family-weighted AUROC"
    )
    rows = {}
    for name, directions in variants(features).items():
        started, found = time.monotonic(), []
        for folds in splits:
            train["oof"] = _out_of_fold(X, y, "xgboost", directions, folds, seed=0)
            sight = auroc_by_sight(train, "oof", delay)
            p = train["oof"].to_numpy()
            versus_drift = unseen | harmless_drift
            found.append(
                [
                    auroc(y, p, weights),
                    sight["seen"],
                    sight["blind"],
                    sight["unseen"],
                    sight["unseen_vs_unchanged"],
                    auroc(y[versus_drift], p[versus_drift], weights[versus_drift]),
                    sight["ceiling"],
                    np.average(p[harmless_drift] < np.median(p[quiet]), weights=weights[harmless_drift]),
                ]
            )
        rows[name] = dict(
            zip(
                [
                    "auroc",
                    "seen",
                    "blind",
                    "unseen",
                    "unseen_vs_quiet",
                    "unseen_vs_drift",
                    "ceiling",
                    "drift_under_quiet",
                ],
                np.mean(found, axis=0),
                strict=True,
            )
        )
        rows[name]["free features"] = len(features) - sum(directions)
        print(f"  {name}: {time.monotonic() - started:.0f}s", flush=True)
    print(
        f"unseen days: {sight['unseen_share']:.1%} of the positives' weight; chance there caps the AUROC at "
        f"{sight['chance_ceiling']:.4f}"
    )
    print(
        "unseen_vs_quiet / unseen_vs_drift: the unseen days against the negative days of an unchanged world / "
        "of a drift running; drift_under_quiet: the share of the latter scored under the median quiet negative "
        "day (a drift read as safer than none)"
    )
    print(pd.DataFrame(rows).T.to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import clean_stop

    with clean_stop.on_signals():  # SIGTERM (timeout) or Ctrl-C: the simulation processes end
        main()
