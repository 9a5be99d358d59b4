"""Retraining: a challenger trained on recent labelled days plus the reference, validated on the most
recent matured days, registered as ``challenger`` with its data window, trigger and metrics.

After a measured failure or a detected change in the champion's daily AUC (:func:`change_point`), a
challenger is validated on post-change labelled days only, never on older ones, and waits for them
(``retrain.min_post_change_days``); its training set is chosen among :func:`training_candidates` by its AUC
on post-change days disjoint from the holdout (:func:`train_after_change`). A challenger that learnt the old
concept well would otherwise pass on pre-change days and fail as champion.

The holdout never holds a customer the challenger was trained on: rows whose id is among the reference's or
the labelled days' before the holdout are left out (:func:`unseen`), and the champion is held on the same
rows; the ids it was trained on are kept next to the model (``TRAINED_CUSTOMERS``, sorted 64-bit hashes) so
the shadow comparison can leave them out too (:func:`churnguard.promotion.shadow_wins`).

Gates, in order (all from ``monitoring.yaml``): holdout AUC ≥ ``min_roc_auc``; train AUC − validation AUC ≤
``max_overfit_gap`` (the validation split is drawn from the same pool as the training rows, so the gap is
overfitting, not the drift the holdout may carry); holdout AUC > champion's holdout AUC +
``margin_over_champion``. A challenger that
fails a gate is logged (with the reason) but never registered; neither is one from a dry run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from churnguard import registry
from churnguard.config import DatasetConfig, ModelConfig, RetrainConfig
from churnguard.data import data_version, target_array
from churnguard.dataroot import DataRoot
from churnguard.models import TrainedModel, train_model
from churnguard.registry import ModelRegistry, TrainingWindow, VersionTags
from churnguard.storage import PartitionNotFound
from churnguard.training import load_run_model, log_reference_profile, model_fingerprint

if TYPE_CHECKING:
    from churnguard.context import DayContext

log = logging.getLogger(__name__)


CHANGE_SCORE = 3.0  # a drop this many standard errors of the mean difference is a change, not noise


def change_point(days: list[str], aucs: list[float], failure_days: list[str], min_drop: float) -> str | None:
    """The first observed day after a change in the champion's quality, or None when there is no sign of one.

    The change is the split of the champion's daily AUCs (``days`` in order) into before and after that
    maximises the drop of the mean, in standard errors; it counts when the mean falls by at least ``min_drop``
    and by ``CHANGE_SCORE`` standard errors. A measured failure (``failure_days``) without such a split
    (too few days after it to tell) puts the change on its first failure day: a day whose own labels fail is
    after the change, and a later first post-change day only costs a day of labels, while an earlier one
    would hold pre-change days out as if they were the new concept. A split after the first failure day is
    not believed for the same reason.

    >>> change_point(["09-01", "09-02", "09-03", "09-04", "09-05"], [.85, .86, .84, .61, .60], [], .05)
    '09-04'
    """
    first_failure = min(failure_days, default=None)
    best, best_score = None, CHANGE_SCORE
    values = np.asarray(aucs, dtype=float)
    for k in range(2, len(values)):  # at least two days before the change, one after
        before, after = values[:k], values[k:]
        drop = before.mean() - after.mean()
        residuals = np.concatenate([before - before.mean(), after - after.mean()])
        sd = max(float(residuals.std(ddof=min(2, len(values) - 1))), 0.01)  # 0.01: an AUC is never exact
        score = drop / (sd * np.sqrt(1 / len(before) + 1 / len(after)))
        if drop >= min_drop and score > best_score:
            best, best_score = days[k], score
    if best is not None and (first_failure is None or best <= first_failure):
        return best
    return first_failure


def labelled_days(root: DataRoot, ds: date, first: date, last: date, cfg: DatasetConfig) -> pd.DataFrame:
    """Landed rows of observed days ``first``..``last`` joined with the valid labels that landed by ``ds``,
    reading only the deliveries that arrived in ``first``..``ds`` (a delivery never holds days observed after
    it arrived): a delivery the label suite rejects (:func:`churnguard.performance.read_labels`) is skipped, as
    measuring skips it; a later label of a customer replaces an earlier one."""
    from churnguard.performance import read_labels

    scored = root.scored_days()
    frames = []
    for labels_ds in root.label_days(since=first, until=ds):
        check = read_labels(root, labels_ds, cfg, scored)
        if not check.ok:
            log.warning("retraining skips %s", check.reason())
            continue
        labels = check.labels
        labels = labels[(labels["observed_ds"] >= first.isoformat()) & (labels["observed_ds"] <= last.isoformat())]
        for observed, part in labels.groupby("observed_ds"):
            try:  # as landed: days before monitoring started count too
                batch = root.read_batch(observed)
            except PartitionNotFound:  # quarantined or never landed
                continue
            frames.append(batch.merge(part, on=cfg.id.column, how="inner"))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).drop_duplicates(cfg.id.column, keep="last")


TRAINED_CUSTOMERS = "trained_customers.npy"  # artifact of a challenger's run: whom it was trained on


def customer_hashes(ids: pd.Series | np.ndarray) -> np.ndarray:
    """64-bit hashes of customer ids (pandas' hash of the id text), in the given order."""
    return pd.util.hash_array(np.asarray(ids, dtype=object).astype(str).astype(object))


def trained_customers(frames: list[pd.DataFrame], cfg: DatasetConfig) -> np.ndarray:
    """The distinct customers of ``frames`` as sorted 64-bit hashes of their ids: 8 bytes a customer."""
    ids = [f[cfg.id.column].to_numpy() for f in frames if cfg.id.column in f and len(f)]
    return np.unique(customer_hashes(np.concatenate(ids))) if ids else np.zeros(0, dtype=np.uint64)


def unseen(rows: pd.DataFrame, trained: np.ndarray, cfg: DatasetConfig) -> pd.DataFrame:
    """``rows`` without those of customers in ``trained`` (:func:`trained_customers`)."""
    if rows.empty or not len(trained) or cfg.id.column not in rows:
        return rows
    seen = np.isin(customer_hashes(rows[cfg.id.column].to_numpy()), trained)
    return rows[~seen] if seen.any() else rows


def _auc(model: TrainedModel, df: pd.DataFrame, data_cfg: DatasetConfig) -> float:
    y = target_array(df, data_cfg)
    return float(roc_auc_score(y, model.predict_proba(df))) if len(np.unique(y)) == 2 else float("nan")


def shap_importance(model: TrainedModel, df: pd.DataFrame) -> dict[str, float]:
    """Mean |SHAP| per input column (xgboost's TreeSHAP, one-hot children summed), normalised to 1."""
    import xgboost as xgb

    prep = model.pipeline[:-1]
    booster = model.pipeline.named_steps["model"].get_booster()
    contribs = booster.predict(xgb.DMatrix(prep.transform(df[model.features])), pred_contribs=True)[:, :-1]
    return model.per_input_column(np.abs(contribs).mean(axis=0))


def post_change_split(days: list[str], holdout_days: int, min_days: int) -> tuple[list[str], list[str]] | None:
    """The post-change labelled ``days`` (in order) as (training days, holdout days): the last third, at most
    ``holdout_days``, is held out; None while fewer than ``min_days`` are labelled (nothing to validate on yet).

    >>> post_change_split(["d1", "d2", "d3", "d4"], holdout_days=5, min_days=3)
    (['d1', 'd2', 'd3'], ['d4'])
    """
    if len(days) < min_days:
        return None
    held = max(1, min(holdout_days, len(days) // 3))
    return days[:-held], days[-held:]


def refresh_due(champion_tags: VersionTags, ds: date, delay_days: int, window_days: int) -> str | None:
    """Why a champion validated after a change should be refreshed today, or None.

    Such a champion learnt the change from the few post-change days labelled when it was trained (its
    ``post_change_from`` day to its ``holdout_to``). On the day the labelled post-change days have doubled
    since, and again each time they double, a challenger trained on all of them may rank the new concept
    better; up to ``window_days`` of them.

    >>> learnt = VersionTags(window=TrainingWindow(holdout_to=date(2026, 9, 28)), post_change_from=date(2026, 9, 26))
    >>> refresh_due(learnt, date(2026, 10, 8), 7, 28)
    'champion learnt the change of 2026-09-26 from 3 labelled day(s); 6 are labelled now'
    """
    change, window = champion_tags.post_change_from, champion_tags.window
    if change is None or window is None or window.holdout_to is None:
        return None
    learnt = (window.holdout_to - change).days + 1
    labelled = (ds - timedelta(days=delay_days) - change).days + 1
    ratio = labelled // learnt
    if labelled > window_days or labelled % learnt or ratio < 2 or ratio & (ratio - 1):
        return None
    return f"champion learnt the change of {change} from {learnt} labelled day(s); {labelled} are labelled now"


REFERENCE_WEIGHT = 0.1  # rows from before the change, down-weighted: the old concept, still the same customers
RECENCY_HALF_LIFE_DAYS = 7.0


CHAMPION_CONTINUED = "champion_continued"


class Candidate(NamedTuple):
    """A training set a post-change challenger may be trained on: rows, a weight per row, and the model whose
    boosting it continues (None: trained from scratch)."""

    rows: pd.DataFrame
    weights: np.ndarray
    init_model: TrainedModel | None = None


def training_candidates(
    reference: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame, champion: TrainedModel | None = None
) -> dict[str, Candidate]:
    """The training sets a post-change challenger chooses from: ``window`` (the reference and every labelled day
    alike, as without a change), ``post_change_weighted`` (rows from before the change down-weighted to
    ``REFERENCE_WEIGHT``), ``recency`` (weights halving every ``RECENCY_HALF_LIFE_DAYS`` back from the latest
    post-change day, the reference as old as the oldest day), ``post_change_only``, and, given the
    ``champion``, ``champion_continued`` (the champion's boosting continued on the post-change rows: what it
    learnt of the customers kept, what changed corrected). ``before``/``after``: labelled rows of days
    before/after the change."""
    landed = pd.concat([before, after], ignore_index=True)[reference.columns.union(["observed_ds"], sort=False)]
    rows = pd.concat([reference, landed.drop(columns="observed_ds")], ignore_index=True)
    post = np.r_[np.zeros(len(reference) + len(before)), np.ones(len(after))].astype(bool)
    age = (pd.Timestamp(after["observed_ds"].max()) - pd.to_datetime(landed["observed_ds"])).dt.days.to_numpy()
    age = np.r_[np.full(len(reference), age.max(initial=0)), age]
    post_rows = rows[post].reset_index(drop=True)
    candidates = {
        "window": Candidate(rows, np.ones(len(rows))),
        "post_change_weighted": Candidate(rows, np.where(post, 1.0, REFERENCE_WEIGHT)),
        "recency": Candidate(rows, 0.5 ** (age / RECENCY_HALF_LIFE_DAYS)),
        "post_change_only": Candidate(post_rows, np.ones(len(post_rows))),
    }
    if champion is not None:
        candidates[CHAMPION_CONTINUED] = Candidate(post_rows, np.ones(len(post_rows)), champion)
    return candidates


@dataclass
class Trained:
    """A challenger and the rows it was trained, validated and held out on."""

    model: TrainedModel
    train: pd.DataFrame  # what it was trained on (its data version)
    fit_rows: pd.DataFrame  # the rows of the overfit gate's train AUC, from the same pool as ``val``
    val: pd.DataFrame
    holdout: pd.DataFrame
    profile_rows: pd.DataFrame  # what its drift reference describes
    window: TrainingWindow
    candidate: str | None = None
    candidate_validation_auc: dict[str, float] | None = None
    trained_customers: np.ndarray | None = None  # whom it was trained on (:func:`trained_customers`)
    holdout_seen_rows: int = 0  # holdout rows left out: customers it was trained on


def train_on_window(
    labelled: pd.DataFrame,
    reference: pd.DataFrame,
    holdout_first: date,
    window: TrainingWindow,
    data_cfg: DatasetConfig,
    model_cfg: ModelConfig,
    seed: int,
) -> Trained | str:
    """No change in sight: trained on the reference plus the labelled days before ``holdout_first``,
    held out on the days from it; or why not (a line)."""
    recent = labelled[labelled["observed_ds"] < holdout_first.isoformat()]
    held = labelled[labelled["observed_ds"] >= holdout_first.isoformat()]
    pool = pd.concat([reference, recent[reference.columns]], ignore_index=True) if len(recent) else reference
    seen = trained_customers([pool], data_cfg)
    holdout = unseen(held, seen, data_cfg)
    if len(recent) < 50 or len(holdout) < 50 or len(np.unique(target_array(holdout, data_cfg))) < 2:
        return f"not enough labelled data: {len(recent)} recent rows, {len(holdout)} holdout rows" + (
            f" of customers it was not trained on ({len(held) - len(holdout)} left out)"
            if len(held) > len(holdout)
            else ""
        )
    train, val = train_test_split(pool, test_size=0.2, stratify=target_array(pool, data_cfg), random_state=seed)
    return Trained(
        train_model(train, val, data_cfg, model_cfg, random_state=seed),
        train,
        train,
        val,
        holdout,
        train,
        window,
        trained_customers=seen,
        holdout_seen_rows=len(held) - len(holdout),
    )


def train_after_change(
    labelled: pd.DataFrame,
    reference: pd.DataFrame,
    change_day: str,
    train_from: date,
    cfg: RetrainConfig,
    data_cfg: DatasetConfig,
    model_cfg: ModelConfig,
    seed: int,
    champion: TrainedModel | None = None,
    champion_customers: np.ndarray | None = None,
) -> Trained | str:
    """After a change on ``change_day``: held out on the last post-change labelled days, trained on the
    :func:`training_candidates` candidate with the best AUC on a validation split of the earlier ones that
    the overfit gate would pass (:func:`choose_candidate`); or why not yet (a line). ``champion``: the model
    the ``champion_continued`` candidate continues; ``champion_customers``: whom it was trained on (left out
    of the holdout too, as a continued champion has learnt them)."""
    observed = labelled["observed_ds"]
    post_days = sorted(observed[observed >= change_day].unique())
    split = post_change_split(post_days, cfg.holdout_days, cfg.min_post_change_days)
    if split is None:
        return (
            f"waiting for post-change labels: {len(post_days)} labelled day(s) since the change on "
            f"{change_day}, retrain.min_post_change_days is {cfg.min_post_change_days}"
        )
    train_days, holdout_days = split
    held, after = labelled[observed.isin(holdout_days)], labelled[observed.isin(train_days)]
    # whom any candidate may be trained or validated on: the reference and every labelled day before the holdout
    seen = trained_customers([reference, labelled[observed < holdout_days[0]]], data_cfg)
    if champion_customers is not None and len(champion_customers):
        seen = np.union1d(seen, champion_customers)
    holdout = unseen(held, seen, data_cfg)
    if min(len(np.unique(target_array(rows, data_cfg))) for rows in (holdout, after)) < 2:
        return "waiting for post-change labels: one class only in the post-change days" + (
            f" (holdout without the {len(held) - len(holdout)} rows of customers trained on)"
            if len(held) > len(holdout)
            else ""
        )
    after_fit, val = train_test_split(after, test_size=0.3, stratify=target_array(after, data_cfg), random_state=seed)
    candidates = training_candidates(reference, labelled[observed < change_day], after_fit, champion)
    candidate, model, aucs = choose_candidate(
        candidates, after_fit, val, cfg.max_overfit_gap, data_cfg, model_cfg, seed
    )
    window = TrainingWindow(
        train_from,
        date.fromisoformat(train_days[-1]),
        date.fromisoformat(holdout_days[0]),
        date.fromisoformat(holdout_days[-1]),
        date.fromisoformat(change_day),
    )
    # the overfit gate compares like with like: post-change rows trained on against post-change rows held out
    return Trained(
        model,
        candidates[candidate].rows,
        after_fit,
        val,
        holdout,
        after,
        window,
        candidate,
        aucs,
        trained_customers=seen,
        holdout_seen_rows=len(held) - len(holdout),
    )


def retrain_challenger(
    ctx: DayContext, reason: str, change_day: str | None = None, seed: int = 0, refresh: bool = False
) -> dict:
    """Train, validate and (unless the run is a dry run or a gate fails) register a challenger for the day,
    held against the champion pinned for the day (``churnguard.daily.retrain`` makes it ``challenger``).

    ``change_day``: the first observed day after a measured failure or a detected change
    (:func:`change_point`). Then the holdout is post-change labelled days only (no challenger until there are
    ``retrain.min_post_change_days``), the training set is chosen by validation (:func:`train_after_change`),
    and the version is tagged ``post_change_from``: only such a challenger is promoted at once when the
    champion fails. ``refresh``: the day's decision refreshes the champion (:func:`refresh_due`); the change is
    then the champion's own (a later ``change_day`` wins), and the version is tagged ``refresh_of``
    with that champion: having beaten it on the post-change holdout (the ``beats_champion`` gate), it is
    promoted at once while that champion still is one."""
    ds, root, cfg, dry_run = ctx.day, ctx.root, ctx.monitoring, ctx.options.dry_run
    data_cfg, models = ctx.dataset, ctx.registry
    champion_version = models.require_ready(ctx.versions.champion)
    refresh_of = champion_version.version if refresh else None
    if refresh:
        learnt = champion_version.tags.post_change_from.isoformat()
        change_day = max(change_day or learnt, learnt)
    last_matured = ds - timedelta(days=cfg.labels.delay_days)
    holdout_first = last_matured - timedelta(days=cfg.retrain.holdout_days - 1)
    window_first = holdout_first - timedelta(days=cfg.retrain.window_days)
    if change_day is not None:
        window_first = min(window_first, date.fromisoformat(change_day))
    labelled = labelled_days(root, ds, window_first, last_matured, data_cfg)
    if labelled.empty:
        labelled = pd.DataFrame({"observed_ds": pd.Series(dtype=str)})
    result = {
        "ds": ds.isoformat(),
        "reason": reason,
        "dry_run": dry_run,
        "change_day": change_day,
        "refresh_of": refresh_of,
        "registered": False,
        "version": None,
        "passed": False,
        "gates": {},
    }
    reference = root.read_reference(data_cfg.name, "train")
    champion = load_run_model(models, champion_version.run_id)
    if change_day is None:
        window = TrainingWindow(window_first, holdout_first - timedelta(days=1), holdout_first, last_matured)
        result["window"] = window.to_dict()
        trained = train_on_window(labelled, reference, holdout_first, window, data_cfg, ctx.model, seed)
    else:
        trained = train_after_change(
            labelled,
            reference,
            change_day,
            window_first,
            cfg.retrain,
            data_cfg,
            ctx.model,
            seed,
            champion,
            load_trained_customers(models, champion_version.run_id),
        )
    if isinstance(trained, str):
        result["rejected"] = trained
        log.warning("retrain %s: %s", ds, trained)
        return result
    result.update(window=trained.window.to_dict(), candidate=trained.candidate)
    if trained.candidate_validation_auc is not None:
        result["candidate_validation_auc"] = trained.candidate_validation_auc
    challenger, holdout, val = trained.model, trained.holdout, trained.val
    metrics = {
        "train_auc": _auc(challenger, trained.fit_rows, data_cfg),
        "validation_auc": _auc(challenger, val, data_cfg),
        "holdout_auc": _auc(challenger, holdout, data_cfg),
        "champion_holdout_auc": _auc(champion, holdout, data_cfg),
        "holdout_rows": len(holdout),
        "holdout_seen_rows": trained.holdout_seen_rows,  # left out: customers the challenger saw
        "recent_rows": len(labelled) - len(holdout) - trained.holdout_seen_rows,
    }
    from churnguard.models import evaluate

    holdout_eval = evaluate(challenger, holdout, data_cfg)
    gates = {
        "min_roc_auc": metrics["holdout_auc"] >= cfg.retrain.min_roc_auc,
        "overfit": metrics["train_auc"] - metrics["validation_auc"] <= cfg.retrain.max_overfit_gap,
        "beats_champion": metrics["holdout_auc"] > metrics["champion_holdout_auc"] + cfg.retrain.margin_over_champion,
    }
    passed = all(gates.values())
    result.update(metrics=metrics, gates=gates, passed=passed)
    log.info(
        "retrain %s (%s): holdout AUC %.4f vs champion %.4f, train %.4f, validation %.4f; candidate %s; gates %s",
        ds,
        reason,
        metrics["holdout_auc"],
        metrics["champion_holdout_auc"],
        metrics["train_auc"],
        metrics["validation_auc"],
        trained.candidate,
        gates,
    )
    if dry_run or not passed:
        result["rejected"] = (
            "dry run: nothing registered"
            if dry_run
            else "failed gate(s): " + ", ".join(g for g, ok in gates.items() if not ok)
        )
        return result
    return _register(ctx, reason, seed, result, trained, holdout_eval)


def choose_candidate(
    candidates: dict[str, Candidate],
    fit_rows: pd.DataFrame,
    val: pd.DataFrame,
    max_overfit_gap: float,
    data_cfg: DatasetConfig,
    model_cfg: ModelConfig,
    seed: int,
) -> tuple[str, TrainedModel, dict[str, float]]:
    """Train each candidate (early-stopped on ``val``) and keep the one with the best AUC on ``val`` among
    those the overfit gate would pass (AUC on the post-change rows ``fit_rows`` it was trained on minus AUC on
    ``val`` at most ``max_overfit_gap``): the best of all only when none would, so the gate rejects it.
    Returns its name, its model and every candidate's validation AUC."""
    models, aucs, gaps = {}, {}, {}
    for label, (rows, weights, init_model) in candidates.items():
        models[label] = train_model(
            rows, val, data_cfg, model_cfg, random_state=seed, sample_weight=weights, init_model=init_model
        )
        aucs[label] = _auc(models[label], val, data_cfg)
        gaps[label] = _auc(models[label], fit_rows, data_cfg) - aucs[label]
    best = best_candidate(aucs, gaps, max_overfit_gap)
    log.info(
        "training candidates (validation AUC on post-change days, overfit gap): %s; chosen %s",
        ", ".join(f"{k} {aucs[k]:.4f} ({gaps[k]:+.4f})" for k in aucs),
        best,
    )
    return best, models[best], aucs


def best_candidate(aucs: dict[str, float], gaps: dict[str, float], max_overfit_gap: float) -> str:
    """The candidate with the best validation AUC among those whose overfit gap is at most ``max_overfit_gap``;
    the best of all when none is."""
    eligible = [k for k in aucs if gaps[k] <= max_overfit_gap] or list(aucs)
    return max(eligible, key=lambda k: aucs[k])


def _register(ctx: DayContext, reason: str, seed: int, result: dict, trained: Trained, holdout_eval: dict) -> dict:
    """Log the challenger's run and register it (or find the version of the same data, candidate and seed); the
    daily step then points ``challenger`` at it (``promotion.set_challenger``). Its drift reference describes
    ``trained.profile_rows``: after a change, the post-change rows it is meant for, not the down-weighted
    reference."""
    import mlflow

    ds, root, data_cfg, models = ctx.day, ctx.root, ctx.dataset, ctx.registry
    metrics, candidate = result["metrics"], trained.candidate
    challenger, train, val = trained.model, trained.train, trained.val
    version_of_data = data_version(train, val)
    # what the run and the version are tagged with beside their metrics: window, candidate, what it refreshes
    chosen = VersionTags(
        window=trained.window,
        post_change_from=None if candidate is None else date.fromisoformat(result["change_day"]),
        candidate=candidate,
        candidate_validation_auc=None if candidate is None else trained.candidate_validation_auc,
        # its trees start as the champion's: which champion is part of it too
        continued_from=ctx.versions.champion if candidate == CHAMPION_CONTINUED else None,
        refresh_of=result.get("refresh_of"),
    )
    # candidates share rows and differ in weights (and a continued one in its first trees): part of what was trained
    continued = None if chosen.continued_from is None else str(chosen.continued_from)
    parts = [version_of_data, *filter(None, [candidate, continued])]
    fingerprint = model_fingerprint(":".join(parts), seed, ctx.model)
    existing = models.find_version(fingerprint)
    logged = None
    if existing is None:
        models.configure()
        with mlflow.start_run(run_name=f"retrain-{ds.isoformat()}") as run:
            mlflow.set_tags(
                {
                    **replace(chosen, fingerprint=fingerprint, trigger=reason).to_mlflow(),
                    registry.KIND_TAG: registry.RETRAIN_RUN,
                    registry.DATA_VERSION_TAG: version_of_data,
                }
            )
            mlflow.log_params(
                {
                    "threshold": round(challenger.threshold, 6),
                    "best_iteration": challenger.best_iteration,
                    "seed": seed,
                    "data_version": version_of_data,
                    **chosen.to_mlflow(),
                    "trigger": reason[:250],
                }
            )
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.log_dict({"features": challenger.features}, "features.json")
            mlflow.log_dict(challenger.feature_importance(), "feature_importance.json")
            mlflow.log_dict(shap_importance(challenger, trained.holdout), "shap_importance.json")
            if trained.trained_customers is not None:
                _log_trained_customers(trained.trained_customers)
            registry.log_model(challenger.pipeline, train[challenger.features].head(5))
            log_reference_profile(challenger, trained.profile_rows, data_cfg, ctx.drift_config, root)
        logged = run.info.run_id
        existing = models.register_run_model(
            logged,
            replace(
                chosen,
                fingerprint=fingerprint,
                trigger=reason[:250],
                threshold=challenger.threshold,
                reference_auc=metrics["holdout_auc"],
                reference_f1=holdout_eval["f1"],
                champion_holdout_auc=metrics["champion_holdout_auc"],
            ),
        )
    if logged is not None:
        _mark_unregistered_twins(models, fingerprint, existing)
    result.update(registered=True, version=existing.version, run_id=existing.run_id)
    return result


def _mark_unregistered_twins(models: ModelRegistry, fingerprint: str, registered: registry.VersionInfo) -> None:
    """Tag every other retrain run of ``fingerprint`` (a run of the same date at once, or one a crash stopped
    before its registration) with why its model is not a version: the version registered instead."""
    import mlflow

    runs = mlflow.search_runs(
        filter_string=(
            f"tags.`{registry.FINGERPRINT_TAG}` = '{fingerprint}' and tags.`{registry.KIND_TAG}` = "
            f"'{registry.RETRAIN_RUN}'"
        ),
        output_format="list",
    )
    for run in runs:
        if run.info.run_id != registered.run_id and registry.UNREGISTERED_TAG not in run.data.tags:
            models.client.set_tag(
                run.info.run_id,
                registry.UNREGISTERED_TAG,
                f"v{registered.version} (run {registered.run_id}) was registered from the same data, candidate "
                f"and seed",
            )


def _log_trained_customers(hashes: np.ndarray) -> None:
    """Log whom the challenger was trained on as the run's ``TRAINED_CUSTOMERS`` artifact (sorted uint64)."""
    import tempfile
    from pathlib import Path

    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / TRAINED_CUSTOMERS
        np.save(path, np.asarray(hashes, dtype=np.uint64))
        mlflow.log_artifact(str(path))


def load_trained_customers(models: ModelRegistry, run_id: str) -> np.ndarray | None:
    """The ``TRAINED_CUSTOMERS`` of a run, or None when it logged none (a bootstrap model, an older version);
    a failing server raises ``registry.RegistryError``."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = models.download_run_artifact(run_id, TRAINED_CUSTOMERS, folder)
        return None if path is None else np.load(path)
