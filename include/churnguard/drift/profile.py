"""The reference profile: everything drift detection needs to know about the training data.

Fitted once (:func:`fit_profile`), stored as a versioned JSON artifact, and compared with every batch.
Keys other modules read: ``profile["numeric"][col]["min"|"max"]`` and
``profile["categorical"][col]["categories"]`` (category as text -> count; binary columns included).

Numeric summary and its error bound
-----------------------------------
A numeric column keeps its distinct values with their ECDF when it has at most
``summary.exact_max`` of them: KS and Wasserstein are then exact. Otherwise it keeps ``Q =
summary.quantiles`` sample quantiles ``q_j`` at probabilities ``(j + ½)/Q`` (``inverted_cdf``, so each
is a sample value) with ECDF ``(j + 1)/Q``. Between ``q_j`` and ``q_{j+1}`` the true ECDF lies in
``[(j + ½)/Q, (j + 1½)/Q)``, so the summary's ECDF is within ``1/(2Q)`` of the sample's everywhere:
the KS statistic is off by at most ``1/(2Q)``, and Wasserstein by at most ``(max - min)/(2Q)``
(``ks_bound`` and ``wasserstein_bound`` in the summary).

Segments
--------
When the dataset config names ``segments`` (binary/categorical columns), ``profile["segments"][col][value]``
holds ``{"n", "numeric", "categorical"}``: the same summaries, fitted on the reference rows with that value
(every feature but ``col``), so the daily report compares each segment without reading the training data
again. Profiles fitted without segments have no ``segments`` key (and keep the version they had).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnguard.config import DatasetConfig, DriftConfig

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ReferenceProfile:
    """A fitted reference profile; ``data`` is the JSON-able dict described in the module docstring.

    Example::

        profile = fit_profile(train_df, dataset_cfg, drift_cfg, scores=model_scores, labels=y)
        ReferenceProfile.from_json(profile.to_json()).version == profile.version
    """

    data: dict[str, Any]

    @property
    def version(self) -> str:
        """Content hash of the profile (16 hex characters)."""
        return self.data["version"]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.data))

    def columns(self, *extra: str | None) -> list[str]:
        """The batch columns a drift report reads: the profiled features, then each of ``extra`` that is given
        (the names of the scores' and labels' columns)."""
        return [*self.data["numeric"], *self.data["categorical"], *(c for c in extra if c)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(
                f"reference profile schema_version {data.get('schema_version')!r}, expected {SCHEMA_VERSION}"
            )
        for key in ("numeric", "categorical", "version"):
            if key not in data:
                raise ValueError(f"reference profile lacks '{key}'")
        return cls(dict(data))

    def to_json(self) -> str:
        return json.dumps(self.data, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        return cls.from_dict(json.loads(text))


def fit_profile(
    df: pd.DataFrame,
    dataset_cfg: DatasetConfig,
    drift_cfg: DriftConfig,
    scores: Any = None,
    labels: Any = None,
    importance: Mapping[str, float] | None = None,
) -> ReferenceProfile:
    """Profile the training data ``df`` (columns named by ``dataset_cfg``).

    ``scores``: the model's scores on ``df`` (for prediction drift); ``labels``: 0/1 targets (for label
    drift); ``importance``: feature -> importance (for importance-weighted drift), normalised here.
    """
    cfg = drift_cfg
    missing = [c for c in dataset_cfg.features if c not in df.columns]
    if missing:
        raise ValueError(f"reference frame lacks feature column(s) {', '.join(missing)}")
    numeric = {col: numeric_summary(_as_float(df[col]), cfg) for col in dataset_cfg.numeric}
    categorical = {
        col: _category_summary(df[col], "binary" if col in dataset_cfg.binary else "categorical")
        for col in [*dataset_cfg.binary, *dataset_cfg.categorical]
    }
    data: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset_cfg.name,
        "n_rows": len(df),
        "settings": {
            "bins": cfg.psi.bins,
            "exact_max": cfg.summary.exact_max,
            "quantiles": cfg.summary.quantiles,
        },
        "numeric": numeric,
        "categorical": categorical,
        "correlation": _correlation(df, dataset_cfg.numeric),
        "prediction": _prediction(scores, len(df), cfg),
        "label": _label(labels, len(df)),
        "importance": _importance(importance, dataset_cfg.features),
    }
    if dataset_cfg.segments:  # only then: a profile without segments keeps the content hash it always had
        data["segments"] = {col: _segment_summaries(df, col, dataset_cfg, cfg) for col in dataset_cfg.segments}
    data["version"] = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return ReferenceProfile(data)


def _segment_summaries(
    df: pd.DataFrame, col: str, dataset_cfg: DatasetConfig, cfg: DriftConfig
) -> dict[str, dict[str, Any]]:
    """Per value of ``col`` (as text, most frequent first): row count and every other feature's summary."""
    codes, uniques = pd.factorize(df[col])
    keys = np.array([category_key(u) for u in uniques] + [None], dtype=object)[codes]  # code -1: missing
    out = {}
    for key in _category_summary(df[col], "categorical")["categories"]:
        rows = df[keys == key]
        out[key] = {
            "n": len(rows),
            "numeric": {c: numeric_summary(_as_float(rows[c]), cfg) for c in dataset_cfg.numeric},
            "categorical": {
                c: _category_summary(rows[c], "binary" if c in dataset_cfg.binary else "categorical")
                for c in [*dataset_cfg.binary, *dataset_cfg.categorical]
                if c != col
            },
        }
    return out


def segment_profiles(prof: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``prof["segments"]``, or no segments for a profile fitted before segments existed."""
    return prof.get("segments") or {}


def _as_float(values: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def numeric_summary(x: np.ndarray, cfg: DriftConfig) -> dict[str, Any]:
    """Moments, PSI bins and the KS/Wasserstein summary of one numeric column (NaN = missing)."""
    present = x[~np.isnan(x)]
    n = len(present)
    out: dict[str, Any] = {"n": n, "missing_rate": float(1 - n / len(x)) if len(x) else 0.0}
    if n == 0:
        return {
            **out,
            "min": None,
            "max": None,
            "mean": None,
            "std": None,
            "edges": [],
            "bin_counts": [],
            "summary": None,
        }
    lo, hi = float(present.min()), float(present.max())
    inner = np.quantile(present, np.arange(1, cfg.psi.bins) / cfg.psi.bins, method="inverted_cdf")
    edges = np.unique(inner[inner > lo])  # an edge at the minimum would only open an empty bin
    bin_counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    values, counts = np.unique(present, return_counts=True)
    if len(values) <= cfg.summary.exact_max:
        summary = {
            "kind": "exact",
            "values": values.tolist(),
            "cdf": (np.cumsum(counts) / n).tolist(),
            "ks_bound": 0.0,
            "wasserstein_bound": 0.0,
        }
    else:
        q = cfg.summary.quantiles
        points = np.quantile(present, (np.arange(q) + 0.5) / q, method="inverted_cdf")
        values = np.unique(points)
        summary = {
            "kind": "quantiles",
            "values": values.tolist(),
            "cdf": (np.searchsorted(points, values, side="right") / q).tolist(),
            "ks_bound": 0.5 / q,
            "wasserstein_bound": (hi - lo) / (2 * q),
        }
    return {
        **out,
        "min": lo,
        "max": hi,
        "mean": float(present.mean()),
        "std": float(present.std()),
        "edges": edges.tolist(),
        "bin_counts": bin_counts.tolist(),
        "summary": summary,
    }


def category_key(value: Any) -> str:
    """A category as text, the same for ``1``, ``1.0`` and ``True`` (binary columns read as floats)."""
    if isinstance(value, bool | np.bool_):
        return str(int(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def category_counts(values: pd.Series) -> tuple[dict[str, int], int]:
    """Counts per category (as text) and the number of missing values."""
    counts: dict[str, int] = {}
    n_missing = 0
    vc = values.value_counts(dropna=False, sort=False)
    for value, count in zip(vc.index, vc.to_numpy(), strict=True):
        if pd.isna(value):
            n_missing += int(count)
        else:
            key = category_key(value)
            counts[key] = counts.get(key, 0) + int(count)
    return counts, n_missing


def _category_summary(values: pd.Series, kind: str) -> dict[str, Any]:
    counts, n_missing = category_counts(values)
    n = len(values) - n_missing
    return {
        "kind": kind,
        "n": n,
        "missing_rate": float(n_missing / len(values)) if len(values) else 0.0,
        "categories": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def correlation_moments(frame: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Row count, column sums and cross-products of the rows complete in every column (mergeable)."""
    incomplete = np.isnan(frame).any(axis=1)
    complete = frame[~incomplete] if incomplete.any() else frame
    return len(complete), complete.sum(axis=0), complete.T @ complete


def correlation_from_moments(n: int, sums: np.ndarray, cross: np.ndarray) -> list[list[float | None]]:
    """Pearson correlations; ``None`` where a column is constant or too few rows are complete."""
    size = len(sums)
    if n < 2:
        return [[None] * size for _ in range(size)]
    cov = cross / n - np.outer(sums, sums) / n**2
    std = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.clip(cov / np.outer(std, std), -1, 1)
    # a relative floor: a constant column's variance is rounding noise, not zero, in these sums
    flat = std <= 1e-12 * np.maximum(np.abs(sums / n), 1.0)
    return [[None if flat[i] or flat[j] else float(corr[i, j]) for j in range(size)] for i in range(size)]


def _correlation(df: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    frame = np.column_stack([_as_float(df[c]) for c in columns]) if columns else np.empty((len(df), 0))
    return {"columns": list(columns), "matrix": correlation_from_moments(*correlation_moments(frame))}


def _prediction(scores: Any, n_rows: int, cfg: DriftConfig) -> dict[str, Any] | None:
    if scores is None:
        return None
    x = _as_float(scores)
    if len(x) != n_rows:
        raise ValueError(f"scores has {len(x)} values for {n_rows} reference rows")
    out = numeric_summary(x, cfg)
    if out["n"]:
        edges = np.linspace(min(out["min"], 0.0), max(out["max"], 1.0), cfg.summary.score_bins + 1)
        out["histogram"] = {"edges": edges.tolist(), "counts": score_histogram(x, edges).tolist()}
    return out


def score_histogram(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts on evenly spaced ``edges``; values outside fall into the end bins, NaN is dropped."""
    present = x[~np.isnan(x)]
    width = (edges[-1] - edges[0]) / (len(edges) - 1)
    # arithmetic binning: the edges are evenly spaced, a search would be slower for the same bins
    bins = np.clip(np.floor((present - edges[0]) / width), 0, len(edges) - 2).astype(np.intp)
    return np.bincount(bins, minlength=len(edges) - 1)


def _label(labels: Any, n_rows: int) -> dict[str, Any] | None:
    if labels is None:
        return None
    y = _as_float(labels)
    if len(y) != n_rows:
        raise ValueError(f"labels has {len(y)} values for {n_rows} reference rows")
    y = y[~np.isnan(y)]
    return {"n": len(y), "rate": float(y.mean()) if len(y) else None}


def _importance(importance: Mapping[str, float] | None, features: list[str]) -> dict[str, float] | None:
    if importance is None:
        return None
    unknown = sorted(set(importance) - set(features))
    if unknown:
        raise ValueError(f"importance given for unknown feature(s) {', '.join(unknown)}")
    raw = {f: abs(float(importance.get(f, 0.0))) for f in features}
    total = sum(raw.values())
    if total <= 0:
        raise ValueError("importance must have at least one non-zero value")
    return {f: v / total for f, v in raw.items()}
