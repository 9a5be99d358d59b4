"""Drift of a batch against a :class:`ReferenceProfile`: per feature, prediction, label, correlation.

A batch is a DataFrame, an iterable of DataFrame chunks, or a parquet path (read by row groups). Each
chunk is binned once against the reference and only counts, sums and moments are kept, so memory does
not grow with the batch. Decisions:

* a feature **drifts** when its PSI reaches the sample-size aware moderate threshold (see
  :mod:`churnguard.drift.stats`), or its KS / chi-squared p-value, corrected for testing every feature
  (``tests.correction``: Holm by default), is below ``tests.alpha`` *and* its effect size (KS D,
  Cramér's V) reaches ``tests.effect_floor`` (large batches make negligible shifts significant), or its
  missing rate changed by ``missing.max_change``; it is **critical** when PSI reaches the critical
  threshold;
* the batch is **critical** when a feature or the prediction is critical or the share of drifted
  features reaches ``dataset.drift_share``; **moderate** when anything drifted; else **stable**.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import norm

from churnguard.config import DriftConfig, load_drift_config
from churnguard.drift import stats
from churnguard.drift.profile import (
    ReferenceProfile,
    category_counts,
    category_key,
    correlation_from_moments,
    correlation_moments,
    score_histogram,
)

SEVERITIES = ("stable", "moderate", "critical")
PARQUET_BATCH_ROWS = 1 << 18
WORKERS = min(4, os.cpu_count() or 1)
_SCORES = "\0scores"  # the model scores' key among the grids (no feature column can be named so)
THREADED_ROWS = 20_000  # below this, starting and waking threads costs more than the columns' work
Batch = pd.DataFrame | str | Path | Iterable[pd.DataFrame]


@dataclass
class DriftReport:
    """The outcome of :func:`drift_report`; ``to_dict()`` is JSON-able (no NaN: missing is ``None``)."""

    profile_version: str
    n_rows: int
    severity: str
    dataset_drift: bool
    n_features: int
    n_drifted: int
    drift_share: float
    weighted_psi: float
    features: dict[str, dict[str, Any]]
    prediction: dict[str, Any] | None
    label: dict[str, Any] | None
    correlation: dict[str, Any] | None
    config: dict[str, Any]
    chunked: bool
    schema_version: int = 1
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # _clean copies every container, so the deep copy of dataclasses.asdict would be done twice
        return _clean({f.name: getattr(self, f.name) for f in fields(self)})

    def drifted_features(self) -> list[str]:
        return [name for name, f in self.features.items() if f["drifted"]]


def drift_report(
    profile: ReferenceProfile | Mapping[str, Any],
    batch_df: Batch,
    drift_cfg: DriftConfig | None = None,
    scores: Any = None,
    labels: Any = None,
    history: list[Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Compare a batch with the reference profile.

    ``scores`` / ``labels``: arrays aligned with an in-memory batch, or the name of a column of the
    batch (works for chunked input too). ``history``: earlier ``DriftReport.to_dict()`` results or
    ``{feature: drifted}`` dicts, most recent last, for the consecutive-days count. ``overrides``: a
    nested dict merged over the drift config for this run only.

    Example::

        report = drift_report(profile, batch, scores="score", overrides={"psi": {"moderate": 0.2}})
        report.severity, report.drifted_features()
    """
    prof = profile.data if isinstance(profile, ReferenceProfile) else ReferenceProfile.from_dict(profile).data
    cfg = (drift_cfg or load_drift_config()).with_overrides(dict(overrides or {}))
    in_memory = isinstance(batch_df, pd.DataFrame)
    acc = _Accumulator(prof, keep_values=in_memory)
    chunks = _chunks(batch_df, acc.columns(scores, labels))
    # columns are independent and numpy/arrow release the GIL while binning, so threads overlap them
    threaded = not in_memory or len(batch_df) >= THREADED_ROWS
    with ThreadPoolExecutor(max_workers=WORKERS) if threaded else _InlineExecutor() as pool:
        for offset, chunk in _with_offsets(chunks):
            acc.update(
                chunk,
                _aligned(scores, chunk, offset, in_memory),
                _aligned(labels, chunk, offset, in_memory),
                pool,
            )
    if in_memory and scores is not None and not isinstance(scores, str) and len(scores) != acc.n_rows:
        raise ValueError(f"scores has {len(scores)} values for {acc.n_rows} batch rows")
    return _decide(prof, acc, cfg, history or [], chunked=not in_memory)


def drift_reports(
    profile: ReferenceProfile | Mapping[str, Any],
    batches: pd.DataFrame,
    offsets: Sequence[int],
    drift_cfg: DriftConfig | None = None,
    scores: Any = None,
) -> list[DriftReport]:
    """:func:`drift_report` of each of several batches stacked in one frame (batch ``i`` is rows
    ``offsets[i]:offsets[i + 1]``, ``scores`` aligned with the frame), the same as one call per batch.

    For many small batches (a simulated trajectory's days): columns are converted, categories counted
    and the reference grids built once for all batches instead of once per batch.
    """
    prof = profile.data if isinstance(profile, ReferenceProfile) else ReferenceProfile.from_dict(profile).data
    cfg = drift_cfg or load_drift_config()
    missing = [c for c in [*prof["numeric"], *prof["categorical"]] if c not in batches.columns]
    if missing:
        raise ValueError(f"batch lacks feature column(s) {', '.join(missing)}")
    if scores is not None and len(scores) != len(batches):
        raise ValueError(f"scores has {len(scores)} values for {len(batches)} batch rows")
    grids = {col: _Grid.of(ref) for col, ref in prof["numeric"].items() if ref["summary"] is not None}
    pred = prof.get("prediction")
    if pred and pred["summary"] is not None:
        grids[_SCORES] = _Grid.of(pred)
    numeric = {col: _as_float(batches[col]) for col in prof["numeric"]}
    counted = {col: _category_counts_by_batch(batches[col], offsets) for col in prof["categorical"]}
    all_scores = None if scores is None else _as_float(np.asarray(scores))
    pool = _InlineExecutor()
    reports = []
    for i, (lo, hi) in enumerate(itertools.pairwise(offsets)):
        acc = _Accumulator(prof, keep_values=True, grids=grids)
        rows = slice(int(lo), int(hi))
        acc.add(hi - lo, {col: x[rows] for col, x in numeric.items()},
                None if all_scores is None else all_scores[rows], None, pool)
        for col, per_batch in counted.items():
            acc.add_counts(col, *per_batch[i])
        reports.append(_decide(prof, acc, cfg, [], chunked=False))
    return reports


def _category_counts_by_batch(values: pd.Series, offsets: Sequence[int]) -> list[tuple[dict[str, int], int]]:
    """:func:`category_counts` of each batch's rows, keys in the order of first appearance in the batch
    (as ``value_counts(sort=False)`` lists them), from one factorisation of the whole column."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    keys = [category_key(u) for u in uniques]
    n_batches, width = len(offsets) - 1, len(uniques) + 1  # slot 0: missing
    batch_of_row = np.repeat(np.arange(n_batches), np.diff(offsets))
    cell = batch_of_row * width + codes + 1
    counts = np.bincount(cell, minlength=n_batches * width).reshape(n_batches, width)
    first = np.full(n_batches * width, len(values))
    np.minimum.at(first, cell, np.arange(len(values)))
    first = first.reshape(n_batches, width)
    out = []
    for i in range(n_batches):
        found: dict[str, int] = {}
        for j in np.argsort(first[i, 1:], kind="stable"):
            if counts[i, j + 1]:
                found[keys[j]] = found.get(keys[j], 0) + int(counts[i, j + 1])
        out.append((found, int(counts[i, 0])))
    return out


class _InlineExecutor(Executor):
    """Runs each submitted call at once, in the caller's thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # raised by result(), as a pool would
            future.set_exception(exc)
        return future


# --- reading ---------------------------------------------------------------------------------------------
def _chunks(batch: Batch, columns: list[str]) -> Iterator[pd.DataFrame]:
    if isinstance(batch, pd.DataFrame):
        yield batch
    elif isinstance(batch, str | Path):
        import pyarrow.parquet as pq

        source = pq.ParquetFile(batch)
        present = [c for c in columns if c in source.schema_arrow.names]
        for record_batch in source.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=present):
            yield record_batch.to_pandas()
    else:
        yield from batch


def _with_offsets(chunks: Iterator[pd.DataFrame]) -> Iterator[tuple[int, pd.DataFrame]]:
    offset = 0
    for chunk in chunks:
        yield offset, chunk
        offset += len(chunk)


def _aligned(values: Any, chunk: pd.DataFrame, offset: int, in_memory: bool) -> np.ndarray | None:
    if values is None:
        return None
    if isinstance(values, str):
        if values not in chunk.columns:
            raise ValueError(f"batch has no column '{values}'")
        return _as_float(chunk[values])
    if not in_memory:
        raise ValueError("with a chunked batch, scores and labels must name a column of the batch")
    return _as_float(np.asarray(values)[offset : offset + len(chunk)])


def _as_float(values: Any) -> np.ndarray:
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


# --- accumulation ----------------------------------------------------------------------------------------
class _Grid(NamedTuple):
    """The reference value grid of a numeric column, its ECDF, and the PSI bin of each grid slot."""

    grid: np.ndarray
    cdf: np.ndarray
    slot_bins: np.ndarray

    @classmethod
    def of(cls, ref: Mapping[str, Any]) -> _Grid:
        summary = ref["summary"]
        support = np.asarray(summary["values"], dtype=float)
        edges = np.asarray(ref["edges"], dtype=float)
        grid = np.union1d(support, edges)
        at = np.searchsorted(support, grid, side="right") - 1
        cdf = np.where(at >= 0, np.asarray(summary["cdf"])[np.maximum(at, 0)], 0.0)
        # PSI bin of each grid slot: edges are grid points, so a slot never straddles an edge
        return cls(grid, cdf, np.concatenate([[0], np.searchsorted(edges, grid, side="right")]))


class _NumericAcc:
    """Grid counts, PSI-bin mapping and moments of one numeric column, chunk by chunk."""

    def __init__(self, ref: Mapping[str, Any], keep_values: bool, grid: _Grid | None = None) -> None:
        self.ref = ref
        self.n_missing = 0
        self.n_total = 0
        self.moments = np.zeros(3)  # count, sum, sum of squares
        self.lo, self.hi = math.inf, -math.inf
        self.keep_values = keep_values
        self.values: np.ndarray | None = None
        self.slots: np.ndarray | None = None
        self.grid: np.ndarray | None = None
        if ref["summary"] is not None:
            self.grid, self.cdf, self.slot_bins = grid or _Grid.of(ref)
            size = len(self.grid) + 1
            self.counts = stats.GridCounts(
                np.zeros(size, dtype=np.int64), np.zeros(size), np.zeros(size, np.int64)
            )

    def update(self, x: np.ndarray) -> None:
        self.n_total += len(x)
        nan = np.isnan(x)
        present = x[~nan] if nan.any() else x
        self.n_missing += len(x) - len(present)
        if not len(present):
            return
        self.moments += (len(present), present.sum(), present @ present)
        self.lo, self.hi = min(self.lo, float(present.min())), max(self.hi, float(present.max()))
        if self.grid is None:
            return
        slots = stats.grid_slots(self.grid, present)
        part = stats.grid_counts(self.grid, present, slots)
        self.counts = stats.GridCounts(
            self.counts.counts + part.counts, self.counts.sums + part.sums, self.counts.ties + part.ties
        )
        if self.keep_values:  # one in-memory chunk: keep it to make Wasserstein exact
            self.values, self.slots = present, slots

    def current(self) -> dict[str, Any]:
        n, total, squares = self.moments
        if not n:
            return {"n": 0, "min": None, "max": None, "mean": None, "std": None}
        mean = total / n
        return {
            "n": int(n),
            "min": self.lo,
            "max": self.hi,
            "mean": mean,
            "std": math.sqrt(max(squares / n - mean**2, 0.0)),
        }

    def bin_counts(self) -> np.ndarray:
        return np.bincount(self.slot_bins, weights=self.counts.counts, minlength=len(self.ref["edges"]) + 1)


class _Accumulator:
    def __init__(
        self, prof: Mapping[str, Any], keep_values: bool, grids: Mapping[str, _Grid | None] | None = None
    ) -> None:
        self.prof = prof
        self.n_rows = 0
        grids = grids or {}
        self.numeric = {
            col: _NumericAcc(ref, keep_values, grids.get(col)) for col, ref in prof["numeric"].items()
        }
        self.categorical = {col: [{}, 0] for col in prof["categorical"]}  # counts, missing
        pred = prof.get("prediction")
        self.scores = _NumericAcc(pred, keep_values, grids.get(_SCORES)) if pred else None
        self.score_hist = (
            np.zeros(len(pred["histogram"]["edges"]) - 1) if pred and "histogram" in pred else None
        )
        self.labels = np.zeros(2)  # count, positives
        corr_cols = prof["correlation"]["columns"]
        self.corr = (0, np.zeros(len(corr_cols)), np.zeros((len(corr_cols), len(corr_cols))))
        self.seen_scores = False
        self.seen_labels = False

    def columns(self, scores: Any, labels: Any) -> list[str]:
        extra = [c for c in (scores, labels) if isinstance(c, str)]
        return [*self.prof["numeric"], *self.prof["categorical"], *extra]

    def update(
        self,
        chunk: pd.DataFrame,
        scores: np.ndarray | None,
        labels: np.ndarray | None,
        pool: Executor,
    ) -> None:
        missing = [c for c in [*self.numeric, *self.categorical] if c not in chunk.columns]
        if missing:
            raise ValueError(f"batch lacks feature column(s) {', '.join(missing)}")
        numeric = {col: _as_float(chunk[col]) for col in self.numeric}
        jobs = [pool.submit(self._count, col, chunk[col]) for col in self.categorical]
        self.add(len(chunk), numeric, scores, labels, pool, jobs)

    def add(
        self,
        n_rows: int,
        numeric: Mapping[str, np.ndarray],
        scores: np.ndarray | None,
        labels: np.ndarray | None,
        pool: Executor,
        jobs: list[Future] | None = None,
    ) -> None:
        """Everything but the categories (counted by the caller) of ``n_rows`` rows; waits for ``jobs``."""
        self.n_rows += n_rows
        jobs = [*(jobs or []), *(pool.submit(acc.update, numeric[col]) for col, acc in self.numeric.items())]
        if scores is not None and self.scores is not None:
            self.seen_scores = True
            jobs.append(pool.submit(self.scores.update, scores))
            if self.score_hist is not None:
                self.score_hist += score_histogram(
                    scores, np.asarray(self.prof["prediction"]["histogram"]["edges"])
                )
        if labels is not None:
            self.seen_labels = True
            present = labels[~np.isnan(labels)]
            self.labels += (len(present), present.sum())
        if len(numeric) > 1:
            n, sums, cross = correlation_moments(np.column_stack(list(numeric.values())))
            self.corr = (self.corr[0] + n, self.corr[1] + sums, self.corr[2] + cross)
        for job in jobs:
            job.result()

    def _count(self, col: str, values: pd.Series) -> None:
        self.add_counts(col, *category_counts(values))

    def add_counts(self, col: str, counts: Mapping[str, int], n_missing: int) -> None:
        state = self.categorical[col]
        for key, count in counts.items():
            state[0][key] = state[0].get(key, 0) + count
        state[1] += n_missing


# --- decisions -------------------------------------------------------------------------------------------
def _decide(
    prof: Mapping[str, Any],
    acc: _Accumulator,
    cfg: DriftConfig,
    history: list[Mapping[str, Any]],
    chunked: bool,
) -> DriftReport:
    importance = prof.get("importance")
    names = [*prof["numeric"], *prof["categorical"]]
    weights = importance or {name: 1 / len(names) for name in names}
    features = {col: _numeric_feature(a, cfg) for col, a in acc.numeric.items()}
    features |= {
        col: _categorical_feature(prof["categorical"][col], *acc.categorical[col], acc.n_rows, cfg)
        for col in prof["categorical"]
    }
    tested = [name for name in names if features[name]["test"] is not None]
    adjusted = stats.adjust_p_values([features[n]["test"]["p_value"] for n in tested], cfg.tests.correction)
    for name, p_adj in zip(tested, adjusted, strict=True):
        features[name]["test"]["p_adjusted"] = p_adj
    for name in names:
        feature = features[name]
        feature["importance"] = weights.get(name, 0.0)
        feature["weighted_psi"] = None if feature["psi"] is None else weights.get(name, 0.0) * feature["psi"]
        feature["severity"] = _feature_severity(feature, cfg)
        feature["drifted"] = feature["severity"] != "stable"
        feature["drift_days"] = _drift_days(name, feature["drifted"], history)
    prediction = _prediction(prof, acc, cfg)
    label = _label(prof, acc, cfg)
    correlation = _correlation_change(prof, acc, cfg)
    n_drifted = sum(f["drifted"] for f in features.values())
    share = n_drifted / len(names) if names else 0.0
    levels = [f["severity"] for f in features.values()] + ([prediction["severity"]] if prediction else [])
    if share >= cfg.dataset.drift_share and n_drifted:
        levels.append("critical")
    levels += ["moderate" for part in (label, correlation) if part and part["drifted"]]
    severity = max(levels, key=SEVERITIES.index, default="stable")
    notes = []
    if acc.n_rows == 0:
        notes.append("empty batch: no statistic could be computed")
    return DriftReport(
        profile_version=prof["version"],
        n_rows=acc.n_rows,
        severity=severity,
        dataset_drift=severity == "critical",
        n_features=len(names),
        n_drifted=n_drifted,
        drift_share=share,
        weighted_psi=float(sum(f["weighted_psi"] or 0.0 for f in features.values())),
        features=features,
        prediction=prediction,
        label=label,
        correlation=correlation,
        config=cfg.model_dump(),
        chunked=chunked,
        notes=notes,
    )


def _missing(ref_rate: float, n_missing: int, n_total: int) -> dict[str, Any]:
    current = n_missing / n_total if n_total else None
    return {
        "reference": ref_rate,
        "current": current,
        "change": None if current is None else current - ref_rate,
    }


def _psi_block(ref_counts: np.ndarray, cur_counts: np.ndarray, cfg: DriftConfig) -> dict[str, Any]:
    n_ref, n_cur = int(ref_counts.sum()), int(cur_counts.sum())
    chance = stats.chance_psi(int((ref_counts > 0).sum()), n_ref, n_cur, cfg.psi.chance_quantile)
    return {
        "psi": stats.psi(ref_counts, cur_counts, cfg.psi.epsilon),
        "psi_threshold": {
            "moderate": cfg.psi.moderate + chance,
            "critical": cfg.psi.critical + chance,
            "chance": chance,
        },
        "js_distance": stats.js_distance(ref_counts, cur_counts),
    }


def _empty_feature(kind: str, missing: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    return {
        "kind": kind,
        "psi": None,
        "psi_threshold": None,
        "js_distance": None,
        "test": None,
        "missing_rate": missing,
        "notes": notes,
    }


def _numeric_feature(acc: _NumericAcc, cfg: DriftConfig) -> dict[str, Any]:
    ref = acc.ref
    missing = _missing(ref["missing_rate"], acc.n_missing, acc.n_total)
    current = acc.current()
    notes = []
    if acc.grid is None:
        notes.append("all_missing_reference")
    if current["n"] == 0:
        notes.append("all_missing_current" if acc.n_total else "empty_batch")
    if notes:
        return {**_empty_feature("numeric", missing, notes), "current": current, "wasserstein": None}
    if ref["min"] == ref["max"]:
        notes.append("constant_reference")
    ref_bins = np.asarray(ref["bin_counts"], dtype=float)
    cur_bins = acc.bin_counts()
    ks = stats.ks_test(acc.grid, acc.cdf, ref["n"], acc.counts)
    distance, batch_bound = stats.wasserstein(acc.grid, acc.cdf, acc.counts, acc.values, acc.slots)
    bound = ref["summary"]["wasserstein_bound"] + batch_bound
    scale = ref["std"] if ref["std"] > 0 else None
    return {
        "kind": "numeric",
        **_psi_block(ref_bins, cur_bins, cfg),
        "test": {
            "name": "ks",
            "statistic": ks.statistic,
            "p_value": ks.p_value,
            "effect": ks.effect,
            "bound": ref["summary"]["ks_bound"],
        },
        "wasserstein": {
            "distance": distance,
            "normalised": None if scale is None else distance / scale,
            "bound": bound,
            "normalised_bound": None if scale is None else bound / scale,
        },
        "missing_rate": missing,
        "current": current,
        "notes": notes,
        "bins": {"edges": ref["edges"], "reference": ref_bins.tolist(), "current": cur_bins.tolist()},
    }


def _categorical_feature(
    ref: Mapping[str, Any], counts: dict[str, int], n_missing: int, n_total: int, cfg: DriftConfig
) -> dict[str, Any]:
    missing = _missing(ref["missing_rate"], n_missing, n_total)
    known = list(ref["categories"])
    unseen = {k: v for k, v in sorted(counts.items(), key=lambda kv: -kv[1]) if k not in ref["categories"]}
    notes = []
    if not known:
        notes.append("all_missing_reference")
    if not counts:
        notes.append("all_missing_current" if n_total else "empty_batch")
    block = {
        "kind": ref.get("kind", "categorical"),
        "unseen": unseen,
        "categories": {
            "reference": dict(ref["categories"]),
            "current": {k: counts.get(k, 0) for k in known} | unseen,
        },
    }
    if notes:
        return {**_empty_feature(block["kind"], missing, notes), **block}
    ref_counts = np.array([ref["categories"][k] for k in known] + [0], dtype=float)
    cur_counts = np.array([counts.get(k, 0) for k in known] + [sum(unseen.values())], dtype=float)
    if unseen:
        notes.append("unseen_categories")
    else:  # no pooled bucket: it would only add an empty bin to both sides
        ref_counts, cur_counts = ref_counts[:-1], cur_counts[:-1]
    if len(known) == 1:
        notes.append("constant_reference")
    test = stats.chi2_test(ref_counts, cur_counts)
    return {
        **block,
        **_psi_block(ref_counts, cur_counts, cfg),
        "test": {
            "name": "chi2",
            "statistic": test.statistic,
            "p_value": test.p_value,
            "effect": test.effect,
            "bound": 0.0,
        },
        "missing_rate": missing,
        "notes": notes,
    }


def _feature_severity(feature: Mapping[str, Any], cfg: DriftConfig) -> str:
    change = feature["missing_rate"]["change"]
    missing_drift = change is not None and abs(change) >= cfg.missing.max_change
    if feature["psi"] is None:
        return "moderate" if missing_drift else "stable"
    threshold = feature["psi_threshold"]
    if feature["psi"] >= threshold["critical"]:
        return "critical"
    test = feature["test"]
    significant = test["p_adjusted"] < cfg.tests.alpha and test["effect"] >= cfg.tests.effect_floor
    return "moderate" if feature["psi"] >= threshold["moderate"] or significant or missing_drift else "stable"


def _drift_days(name: str, drifted: bool, history: list[Mapping[str, Any]]) -> int:
    """Consecutive days, today included, on which ``name`` drifted (0 when it does not drift today)."""
    if not drifted:
        return 0
    days = 1
    for entry in reversed(history):
        flags = entry.get("features", entry)
        flag = flags.get(name)
        if isinstance(flag, Mapping):
            flag = flag.get("drifted")
        if not flag:
            break
        days += 1
    return days


def _prediction(prof: Mapping[str, Any], acc: _Accumulator, cfg: DriftConfig) -> dict[str, Any] | None:
    if acc.scores is None or not acc.seen_scores:
        return None
    feature = _numeric_feature(acc.scores, cfg)
    if feature["test"] is not None:
        feature["test"]["p_adjusted"] = feature["test"]["p_value"]  # a single test: nothing to correct
    feature["severity"] = _feature_severity(feature, cfg)
    feature["drifted"] = feature["severity"] != "stable"
    if acc.score_hist is not None:
        hist = prof["prediction"]["histogram"]
        feature["histogram"] = {
            "edges": hist["edges"],
            "reference": hist["counts"],
            "current": acc.score_hist.tolist(),
        }
    return feature


def _label(prof: Mapping[str, Any], acc: _Accumulator, cfg: DriftConfig) -> dict[str, Any] | None:
    ref = prof.get("label")
    if not acc.seen_labels or not ref or ref["rate"] is None:
        return None
    n, positives = acc.labels
    if n == 0:
        return {
            "reference_rate": ref["rate"],
            "current_rate": None,
            "change": None,
            "p_value": None,
            "drifted": False,
        }
    rate = positives / n
    pooled = (ref["rate"] * ref["n"] + positives) / (ref["n"] + n)
    se = math.sqrt(pooled * (1 - pooled) * (1 / ref["n"] + 1 / n))
    # two-proportion z-test; with no variance at all the rates are equal (both 0 or both 1)
    p_value = float(2 * norm.sf(abs(rate - ref["rate"]) / se)) if se > 0 else 1.0
    drifted = p_value < cfg.tests.alpha and abs(rate - ref["rate"]) >= cfg.label.max_change
    return {
        "reference_rate": ref["rate"],
        "current_rate": rate,
        "change": rate - ref["rate"],
        "n": int(n),
        "p_value": p_value,
        "drifted": drifted,
    }


def _correlation_change(
    prof: Mapping[str, Any], acc: _Accumulator, cfg: DriftConfig
) -> dict[str, Any] | None:
    columns = prof["correlation"]["columns"]
    if len(columns) < 2:
        return None
    ref = prof["correlation"]["matrix"]
    cur = correlation_from_moments(*acc.corr)
    best: tuple[float, list[str]] | None = None
    for i in range(len(columns)):
        for j in range(i + 1, len(columns)):
            if ref[i][j] is not None and cur[i][j] is not None:
                change = abs(cur[i][j] - ref[i][j])
                if best is None or change > best[0]:
                    best = (change, [columns[i], columns[j]])
    if best is None:
        return {"max_change": None, "pair": None, "current": cur, "drifted": False}
    return {
        "max_change": best[0],
        "pair": best[1],
        "current": cur,
        "drifted": best[0] >= cfg.correlation.max_change,
    }


def _clean(value: Any) -> Any:
    """JSON-able copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
