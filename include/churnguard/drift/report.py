"""Drift of a batch against a :class:`ReferenceProfile`: per feature, prediction, label, correlation.

A batch is a DataFrame or an iterable of DataFrame chunks (a parquet file streamed by row groups:
:func:`churnguard.batches.file_chunks`); drift reads no file. Each chunk is binned once against the
reference and only counts, sums and moments are kept, so memory does not grow with the batch. Decisions:

* a feature **drifts** when its PSI reaches the sample-size aware moderate threshold (see
  :mod:`churnguard.drift.stats`), or its KS / chi-squared p-value, corrected for testing every feature
  (``tests.correction``: Holm by default), is below ``tests.alpha`` *and* its effect size (KS D,
  Cramér's V) reaches ``tests.effect_floor`` (large batches make negligible shifts significant), or its
  missing rate changed by ``missing.max_change``; it is **critical** when PSI reaches the critical
  threshold;
* the batch is **critical** when a feature or the prediction is critical or the share of drifted
  features reaches ``dataset.drift_share``; **moderate** when anything drifted; else **stable**;
* with segments in the profile, every feature is also judged within each segment value by the same
  rules, its tests corrected as a family of their own (``segments`` in SCHEMA.md); segment drift is
  reported and raises no severity unless ``segments.raise_severity``. ``segments=False`` skips them
  (the report's ``segments`` is then null, with a note), for callers that read only the pooled blocks.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from churnguard.config import DriftConfig
from churnguard.drift import stats
from churnguard.drift.profile import (
    ReferenceProfile,
    category_key,
    correlation_from_moments,
    correlation_moments,
    score_histogram,
    segment_profiles,
)

SEVERITIES = ("stable", "moderate", "critical")
WORKERS = min(4, os.cpu_count() or 1)
_SCORES = "\0scores"  # the model scores' key among the grids (no feature column can be named so)
THREADED_ROWS = 20_000  # below this, starting and waking threads costs more than the columns' work
Batch = pd.DataFrame | Iterable[pd.DataFrame]


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
    segments: dict[str, Any] | None = None
    schema_version: int = 2
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        # _clean copies every container, so the deep copy of dataclasses.asdict would be done twice
        return _clean({f.name: getattr(self, f.name) for f in fields(self)})

    def drifted_features(self) -> list[str]:
        return [name for name, f in self.features.items() if f["drifted"]]


def drift_report(
    profile: ReferenceProfile | Mapping[str, Any],
    batch_df: Batch,
    drift_cfg: DriftConfig,
    scores: Any = None,
    labels: Any = None,
    history: list[Mapping[str, Any]] | None = None,
    overrides: Mapping[str, Any] | None = None,
    segments: bool = True,
) -> DriftReport:
    """Compare a batch with the reference profile.

    ``scores`` / ``labels``: arrays aligned with an in-memory batch, or the name of a column of the
    batch (works for chunked input too). ``history``: earlier ``DriftReport.to_dict()`` results or
    ``{feature: drifted}`` dicts, most recent last, for the consecutive-days count. ``overrides``: a
    nested dict merged over the drift config for this run only. ``segments=False``: no segment-level
    drift (not counted, not tested; ``segments`` is null), the pooled blocks unchanged.

    Example::

        report = drift_report(profile, batch, drift_cfg, scores="score", overrides={"psi": {"moderate": 0.2}})
        report.severity, report.drifted_features()
    """
    prof = profile.data if isinstance(profile, ReferenceProfile) else ReferenceProfile.from_dict(profile).data
    cfg = drift_cfg.with_overrides(dict(overrides or {}), "drift overrides")
    in_memory = isinstance(batch_df, pd.DataFrame)
    acc = _Accumulator(prof, keep_values=in_memory, segments=segments)
    chunks = _chunks(batch_df)
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
    drift_cfg: DriftConfig,
    scores: Any = None,
    segments: bool = True,
) -> list[DriftReport]:
    """:func:`drift_report` of each of several batches stacked in one frame (batch ``i`` is rows
    ``offsets[i]:offsets[i + 1]``, ``scores`` aligned with the frame), the same as one call per batch
    (``segments`` as there).

    For many small batches (a simulated trajectory's days): columns are converted, categories
    factorised, segment codes packed and the reference grids built once for all batches instead of
    once per batch.
    """
    prof = profile.data if isinstance(profile, ReferenceProfile) else ReferenceProfile.from_dict(profile).data
    cfg = drift_cfg
    missing = [c for c in [*prof["numeric"], *prof["categorical"]] if c not in batches.columns]
    if missing:
        raise ValueError(f"batch lacks feature column(s) {', '.join(missing)}")
    if scores is not None and len(scores) != len(batches):
        raise ValueError(f"scores has {len(scores)} values for {len(batches)} batch rows")
    template = _Accumulator(prof, keep_values=True, segments=segments)
    grids = template.grids()
    numeric = {col: _as_float(batches[col]) for col in prof["numeric"]}
    factorized = {col: _factorize(batches[col]) for col in prof["categorical"]}
    packed = template.pack(factorized)
    all_scores = None if scores is None else _as_float(np.asarray(scores))
    pool = _InlineExecutor()
    reports = []
    for lo, hi in itertools.pairwise(offsets):
        acc = _Accumulator(prof, keep_values=True, segments=segments, grids=grids)
        rows = slice(int(lo), int(hi))
        acc.add(
            hi - lo,
            {col: x[rows] for col, x in numeric.items()},
            {col: _refactorize(codes[rows], keys) for col, (codes, keys) in factorized.items()},
            [codes[rows] for codes in packed],
            None if all_scores is None else all_scores[rows],
            None,
            pool,
        )
        reports.append(_decide(prof, acc, cfg, [], chunked=False))
    return reports


class _InlineExecutor(Executor):
    """Runs each submitted call at once, in the caller's thread."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # raised by result(), as a pool would
            future.set_exception(exc)
        return future


# --- chunks ----------------------------------------------------------------------------------------------
def _chunks(batch: Batch) -> Iterator[pd.DataFrame]:
    if isinstance(batch, pd.DataFrame):
        yield batch
    elif isinstance(batch, str | bytes | os.PathLike):
        raise TypeError(
            f"drift_report is handed frames, not a file ({batch!r}): stream it with churnguard.batches.file_chunks"
        )
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
def _reference_grid(ref: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A numeric summary's grid (support ∪ PSI edges), its ECDF there, and each slot's PSI bin."""
    summary = ref["summary"]
    if summary is None:
        return None
    support = np.asarray(summary["values"], dtype=float)
    edges = np.asarray(ref["edges"], dtype=float)
    grid = np.union1d(support, edges)
    at = np.searchsorted(support, grid, side="right") - 1
    cdf = np.where(at >= 0, np.asarray(summary["cdf"])[np.maximum(at, 0)], 0.0)
    # PSI bin of each grid slot: edges are grid points, so a slot never straddles an edge
    slot_bins = np.concatenate([[0], np.searchsorted(edges, grid, side="right")])
    return grid, cdf, slot_bins


@dataclass
class _NumericView:
    """One numeric reference and the batch counted on its grid: what a feature block is computed from."""

    ref: Mapping[str, Any]
    reference: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # grid, cdf, slot_bins
    counts: stats.GridCounts | None
    n_missing: int
    n_total: int
    current: dict[str, Any] | None = None  # batch moments (the pooled column only)
    values: np.ndarray | None = None  # the in-memory batch, to make Wasserstein exact
    slots: np.ndarray | None = None

    def bin_counts(self) -> np.ndarray:
        return np.bincount(self.reference[2], weights=self.counts.counts, minlength=len(self.ref["edges"]) + 1)


def _zero_counts(size: int) -> stats.GridCounts:
    return stats.GridCounts(np.zeros(size, dtype=np.int64), np.zeros(size), np.zeros(size, np.int64))


MAX_PACKED_CELLS = 64  # segment value combinations one bincount counts; more would make numeric tables large


@dataclass(frozen=True)
class _Packing:
    """Segment columns packed into one code per row, ``Σ stride · (value + 1)`` (0: no value), so that one
    ``bincount`` counts a chunk by every one of them; a column's counts are a marginal of that table."""

    columns: tuple[str, ...]
    sizes: tuple[int, ...]  # each column's values + 1, the "no value" slot

    @property
    def cells(self) -> int:
        return math.prod(self.sizes)

    def pack(self, groups: Mapping[str, np.ndarray]) -> np.ndarray:
        """The code of each row from its value index per column (-1: none)."""
        code = groups[self.columns[0]] + 1
        for col, size in zip(self.columns[1:], self.sizes[1:], strict=True):
            code = code * size + (groups[col] + 1)
        return code

    def marginal(self, table: np.ndarray, col: str) -> np.ndarray:
        """``table`` (a row per code) summed over the other columns: a row per value of ``col``."""
        axis = self.columns.index(col)
        shaped = table.reshape(*self.sizes, *table.shape[1:])
        return shaped.sum(axis=tuple(i for i in range(len(self.sizes)) if i != axis))[1:]


def _packings(sizes: Mapping[str, int]) -> list[_Packing]:
    """Segment columns (-> number of values) packed in order while their combinations fit MAX_PACKED_CELLS."""
    packs: list[list[str]] = []
    cells = MAX_PACKED_CELLS + 1
    for col, k in sizes.items():
        if cells * (k + 1) <= MAX_PACKED_CELLS:
            packs[-1].append(col)
            cells *= k + 1
        else:
            packs.append([col])
            cells = k + 1
    return [_Packing(tuple(p), tuple(sizes[c] + 1 for c in p)) for p in packs]


class _NumericAcc:
    """Grid counts and moments of one numeric column, chunk by chunk, overall and per segment value.

    Values are binned once, on the union of the column's reference grid and its segment references'
    grids (``segment_refs``: segment column -> one summary per segment value), then counted by packed
    segment code (:class:`_Packing`) with one ``bincount``; each reference's counts are coarsened from
    the union grid at the end. With an exact reference summary every segment grid is a subset of the
    pooled one: the union adds no point.
    """

    def __init__(
        self,
        ref: Mapping[str, Any],
        keep_values: bool,
        segment_refs: Mapping[str, list[Mapping[str, Any]]],
        packings: list[_Packing],
        grids: tuple[Any, Any, np.ndarray | None] | None = None,
    ) -> None:
        """``grids``: another accumulator's :meth:`grids` for the same references, not built again."""
        self.ref = ref
        self.n_missing = 0
        self.n_total = 0
        self.moments = np.zeros(3)  # count, sum, sum of squares
        self.lo, self.hi = math.inf, -math.inf
        self.keep_values = keep_values
        self.values: np.ndarray | None = None
        self.slots: np.ndarray | None = None
        self.segment_refs = segment_refs
        if grids is None:
            reference = _reference_grid(ref)
            segment_grids = {s: [_reference_grid(r) for r in refs] for s, refs in segment_refs.items()}
            points = [g[0] for g in [reference, *sum(segment_grids.values(), [])] if g is not None]
            grids = reference, segment_grids, functools.reduce(np.union1d, points) if points else None
        self.reference, self.segment_grids, self.grid = grids
        self.packings = packings
        if self.grid is not None:
            size = len(self.grid) + 1
            self.counts = _zero_counts(size)
            # per packing: counts, sums and ties, one row per packed code
            self.packed_counts = [
                [np.zeros((p.cells, size), np.int64), np.zeros((p.cells, size)), np.zeros((p.cells, size), np.int64)]
                for p in packings
            ]
        self.packed_missing = [np.zeros(p.cells, np.int64) for p in packings]

    def update(self, x: np.ndarray, packed: list[np.ndarray]) -> None:
        """Add a chunk; ``packed``: each row's code in each of the packings."""
        self.n_total += len(x)
        nan = np.isnan(x)
        has_nan = nan.any()
        present = x[~nan] if has_nan else x
        self.n_missing += len(x) - len(present)
        if has_nan:
            for missing, codes, packing in zip(self.packed_missing, packed, self.packings, strict=True):
                missing += np.bincount(codes[nan], minlength=packing.cells)
        if not len(present):
            return
        self.moments += (len(present), present.sum(), present @ present)
        self.lo, self.hi = min(self.lo, float(present.min())), max(self.hi, float(present.max()))
        if self.grid is None:
            return
        slots = stats.grid_slots(self.grid, present)
        tied = stats.grid_ties(self.grid, present, slots)
        part = stats.grid_counts(self.grid, present, slots, tied)
        self.counts = stats.GridCounts(
            self.counts.counts + part.counts, self.counts.sums + part.sums, self.counts.ties + part.ties
        )
        for totals, codes, packing in zip(self.packed_counts, packed, self.packings, strict=True):
            groups = codes[~nan] if has_nan else codes
            parts = stats.grouped_grid_counts(len(self.grid) + 1, present, slots, tied, groups, packing.cells)
            for total, add in zip(totals, parts, strict=True):
                total += add
        if self.keep_values:  # one in-memory chunk: keep it to make Wasserstein exact
            self.values, self.slots = present, slots

    def grids(self) -> tuple[Any, Any, np.ndarray | None]:
        """The reference grids (read only), to give another accumulator of the same references."""
        return self.reference, self.segment_grids, self.grid

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

    def view(self) -> _NumericView:
        """The pooled column against its reference."""
        view = _NumericView(self.ref, self.reference, None, self.n_missing, self.n_total, self.current())
        if self.reference is None or self.grid is None:
            return view
        grid = self.reference[0]
        if len(grid) == len(self.grid):  # the union added no point: counts and slots are already on it
            view.counts, view.slots = self.counts, self.slots
        else:
            view.counts = stats.coarsen(self.counts, self.grid, grid)
            if self.slots is not None:
                view.slots = np.concatenate([[0], np.searchsorted(grid, self.grid, side="right")])[self.slots]
        view.values = self.values
        return view

    def segment_view(self, col: str, index: int, n_total: int) -> _NumericView:
        """The rows of segment value ``index`` of ``col`` against that segment's reference."""
        reference = self.segment_grids[col][index]
        at, packing = next((i, p) for i, p in enumerate(self.packings) if col in p.columns)
        n_missing = int(packing.marginal(self.packed_missing[at], col)[index])
        view = _NumericView(self.segment_refs[col][index], reference, None, n_missing, n_total)
        if reference is not None and self.grid is not None:
            counts, sums, ties = (packing.marginal(part, col)[index] for part in self.packed_counts[at])
            view.counts = stats.coarsen(stats.GridCounts(counts, sums, ties), self.grid, reference[0])
        return view


def _factorize(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's category code (-1: missing) and the categories as text (:func:`category_key`)."""
    codes, uniques = pd.factorize(values)
    return codes, [category_key(u) for u in uniques]


def _refactorize(codes: np.ndarray, keys: list[str]) -> tuple[np.ndarray, list[str]]:
    """:func:`_factorize` of some rows of a column from the whole column's: categories renumbered in the
    order they first appear in these rows, as ``pd.factorize`` of the rows numbers them (so counts keep
    the key order of a report of these rows alone)."""
    local, uniques = pd.factorize(codes)
    present = uniques >= 0
    renumber = np.where(present, np.cumsum(present) - 1, -1)
    return renumber[local], [keys[u] for u in uniques[present]]


def _add_counts(into: dict[str, int], keys: list[str], counts: np.ndarray) -> None:
    for key, count in zip(keys, counts.tolist(), strict=True):
        if count:  # two raw values may share a key (1 and 1.0): add, never overwrite
            into[key] = into.get(key, 0) + count


class _CategoricalAcc:
    """Category counts and missing count of ``column``, chunk by chunk, overall and per segment value of
    every segment column but itself (within its own segments a column is constant)."""

    def __init__(self, column: str, packings: list[_Packing]) -> None:
        self.counts: dict[str, int] = {}
        self.n_missing = 0
        self.column = column
        self.packings = packings
        segments = [(c, size - 1) for p in packings for c, size in zip(p.columns, p.sizes, strict=True) if c != column]
        self.segment_counts = {c: [{} for _ in range(k)] for c, k in segments}
        self.segment_missing = {c: np.zeros(k, np.int64) for c, k in segments}

    def update(self, factorized: tuple[np.ndarray, list[str]], packed: list[np.ndarray]) -> None:
        codes, keys = factorized
        width = len(keys) + 1  # slot 0: missing
        cells = codes + 1
        per_key = np.bincount(cells, minlength=width)
        self.n_missing += int(per_key[0])
        _add_counts(self.counts, keys, per_key[1:])
        for packing, segment_codes in zip(self.packings, packed, strict=True):
            joint = segment_codes * width
            joint += cells  # in place: one temporary the size of the chunk per job, not two
            table = np.bincount(joint, minlength=packing.cells * width).reshape(packing.cells, width)
            del joint
            for col in packing.columns:
                if col == self.column:
                    continue
                marginal = packing.marginal(table, col)
                self.segment_missing[col] += marginal[:, 0]
                for counts, row in zip(self.segment_counts[col], marginal, strict=True):
                    _add_counts(counts, keys, row[1:])


class _Accumulator:
    def __init__(
        self,
        prof: Mapping[str, Any],
        keep_values: bool,
        segments: bool = True,
        grids: Mapping[str, tuple[Any, Any, np.ndarray | None]] | None = None,
    ) -> None:
        """``segments=False``: the pooled columns only; ``grids``: another accumulator's :meth:`grids`."""
        self.prof = prof
        self.n_rows = 0
        self.with_segments = segments
        grids = grids or {}
        segments = segment_profiles(prof) if segments else {}
        self.segment_values = {col: list(values) for col, values in segments.items()}
        self.packings = _packings({col: len(values) for col, values in segments.items()})
        self.numeric = {
            col: _NumericAcc(
                ref,
                keep_values,
                {s: [v["numeric"][col] for v in values.values()] for s, values in segments.items()},
                self.packings,
                grids.get(col),
            )
            for col, ref in prof["numeric"].items()
        }
        self.categorical = {col: _CategoricalAcc(col, self.packings) for col in prof["categorical"]}
        pred = prof.get("prediction")
        self.scores = _NumericAcc(pred, keep_values, {}, [], grids.get(_SCORES)) if pred else None
        self.score_hist = np.zeros(len(pred["histogram"]["edges"]) - 1) if pred and "histogram" in pred else None
        self.labels = np.zeros(2)  # count, positives
        corr_cols = prof["correlation"]["columns"]
        self.corr = (0, np.zeros(len(corr_cols)), np.zeros((len(corr_cols), len(corr_cols))))
        self.seen_scores = False
        self.seen_labels = False

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
        # segment columns are factorized first (once: their own counts reuse it), then every job groups by them
        segment_columns = list(self.segment_values)
        factorized = dict(zip(segment_columns, pool.map(_factorize, [chunk[c] for c in segment_columns]), strict=True))
        packed = self.pack(factorized)
        numeric = {col: _as_float(chunk[col]) for col in self.numeric}
        self.add(len(chunk), numeric, factorized, packed, scores, labels, pool, chunk)

    def grids(self) -> dict[str, tuple[Any, Any, np.ndarray | None]]:
        """Every numeric column's (and the scores') reference grids, for another accumulator."""
        out = {col: acc.grids() for col, acc in self.numeric.items()}
        if self.scores is not None:
            out[_SCORES] = self.scores.grids()
        return out

    def pack(self, factorized: Mapping[str, tuple[np.ndarray, list[str]]]) -> list[np.ndarray]:
        """Each row's code in each packing, from the segment columns' :func:`_factorize`."""
        groups = {col: _segment_groups(factorized[col], values) for col, values in self.segment_values.items()}
        return [packing.pack(groups) for packing in self.packings]

    def add(
        self,
        n_rows: int,
        numeric: Mapping[str, np.ndarray],
        factorized: Mapping[str, tuple[np.ndarray, list[str]]],
        packed: list[np.ndarray],
        scores: np.ndarray | None,
        labels: np.ndarray | None,
        pool: Executor,
        chunk: pd.DataFrame | None = None,
    ) -> None:
        """``n_rows`` rows: the numeric columns as floats, categorical columns factorized (those missing from
        ``factorized`` are factorized from ``chunk`` in the jobs), and the rows' :meth:`pack` codes."""
        self.n_rows += n_rows
        jobs = [pool.submit(acc.update, numeric[col], packed) for col, acc in self.numeric.items()]
        jobs += [pool.submit(self._count, col, chunk, factorized.get(col), packed) for col in self.categorical]
        if scores is not None and self.scores is not None:
            self.seen_scores = True
            jobs.append(pool.submit(self.scores.update, scores, []))
            if self.score_hist is not None:
                self.score_hist += score_histogram(scores, np.asarray(self.prof["prediction"]["histogram"]["edges"]))
        if labels is not None:
            self.seen_labels = True
            present = labels[~np.isnan(labels)]
            self.labels += (len(present), present.sum())
        if len(numeric) > 1:
            n, sums, cross = correlation_moments(np.column_stack(list(numeric.values())))
            self.corr = (self.corr[0] + n, self.corr[1] + sums, self.corr[2] + cross)
        for job in jobs:
            job.result()

    def _count(self, col: str, chunk: pd.DataFrame | None, factorized, packed: list[np.ndarray]) -> None:
        self.categorical[col].update(factorized or _factorize(chunk[col]), packed)


def _segment_groups(factorized: tuple[np.ndarray, list[str]], values: list[str]) -> np.ndarray:
    """Each row's segment value index, -1 for a missing or unseen segment value (counted, not tested)."""
    codes, keys = factorized
    index = {key: i for i, key in enumerate(values)}
    return np.array([index.get(key, -1) for key in keys] + [-1], dtype=np.intp)[codes]


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
    features = {col: _numeric_feature(a.view(), cfg) for col, a in acc.numeric.items()}
    features |= {
        col: _categorical_feature(prof["categorical"][col], a.counts, a.n_missing, acc.n_rows, cfg)
        for col, a in acc.categorical.items()
    }
    tested = [name for name in names if features[name]["test"] is not None]
    adjusted = stats.adjust_p_values([features[n]["test"]["p_value"] for n in tested], cfg.tests.correction)
    for name, p_adj in zip(tested, adjusted, strict=True):
        features[name]["test"]["p_adjusted"] = p_adj
    segments = _segments(prof, acc, cfg) if acc.with_segments else None
    for name in names:
        feature = features[name]
        feature["importance"] = weights.get(name, 0.0)
        feature["weighted_psi"] = None if feature["psi"] is None else weights.get(name, 0.0) * feature["psi"]
        feature["segment_drift"] = [
            f"{d['segment']}={d['value']}" for d in (segments or {}).get("drifted", []) if d["feature"] == name
        ]
        feature["severity"] = _feature_severity(feature, cfg)
        if feature["segment_drift"] and cfg.segments.raise_severity and feature["severity"] == "stable":
            feature["severity"] = "moderate"  # drift within a segment warns; only the pooled PSI is critical
            feature["notes"].append("segment_drift")
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
    if not acc.with_segments and segment_profiles(prof):
        notes.append("segments skipped (segments=False): no segment-level drift computed")
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
        segments=segments,
        notes=notes,
    )


# A segment's feature block: the pooled block without the plots' detail (bins, category counts, moments).
SEGMENT_FEATURE_KEYS = ("kind", "psi", "psi_threshold", "js_distance", "test", "missing_rate", "unseen", "notes")


def _segments(prof: Mapping[str, Any], acc: _Accumulator, cfg: DriftConfig) -> dict[str, Any] | None:
    """Every feature within every segment value big enough on both sides, corrected as one family.

    The family is the segment tests alone (not pooled with the per-feature tests), so adding segments
    never makes the pooled tests less sensitive; see SCHEMA.md.
    """
    profiles = segment_profiles(prof)
    if not profiles:
        return None
    min_rows = cfg.segments.min_rows
    columns: dict[str, Any] = {}
    for col, values in profiles.items():
        seen = acc.categorical[col]
        blocks = {}
        for index, (value, ref) in enumerate(values.items()):
            n_cur = seen.counts.get(value, 0)
            block: dict[str, Any] = {"n_reference": ref["n"], "n_current": n_cur}
            if min(ref["n"], n_cur) < min_rows:
                side = "reference" if ref["n"] < min_rows else "batch"
                blocks[value] = {
                    **block,
                    "status": "too_small",
                    "reason": f"{min(ref['n'], n_cur)} rows in the {side} < segments.min_rows {min_rows}: not tested",
                    "severity": None,
                    "n_drifted": 0,
                    "features": {},
                }
                continue
            features = {c: _numeric_feature(a.segment_view(col, index, n_cur), cfg) for c, a in acc.numeric.items()}
            features |= {
                c: _categorical_feature(
                    ref["categorical"][c], a.segment_counts[col][index], int(a.segment_missing[col][index]), n_cur, cfg
                )
                for c, a in acc.categorical.items()
                if c != col
            }
            compact = {c: {k: f[k] for k in SEGMENT_FEATURE_KEYS if k in f} for c, f in features.items()}
            blocks[value] = {**block, "status": "tested", "reason": None, "features": compact}
        unseen = {k: v for k, v in seen.counts.items() if k not in values}
        columns[col] = {"values": blocks, "unseen": unseen, "missing": seen.n_missing}
    tested = [
        (f, c, v)
        for c, col in columns.items()
        for v, b in col["values"].items()
        for f in b["features"].values()
        if f["test"] is not None
    ]
    adjusted = stats.adjust_p_values([f["test"]["p_value"] for f, _, _ in tested], cfg.tests.correction)
    for (feature, _, _), p_adj in zip(tested, adjusted, strict=True):
        feature["test"]["p_adjusted"] = p_adj
    drifted = []
    for col, column in columns.items():
        for value, block in column["values"].items():
            for name, feature in block["features"].items():
                feature["severity"] = _feature_severity(feature, cfg)
                feature["drifted"] = feature["severity"] != "stable"
                if feature["drifted"]:
                    drifted.append(
                        {
                            "segment": col,
                            "value": value,
                            "feature": name,
                            "severity": feature["severity"],
                            "psi": feature["psi"],
                            "p_adjusted": (feature["test"] or {}).get("p_adjusted"),
                        }
                    )
            if block["status"] == "tested":
                levels = [f["severity"] for f in block["features"].values()]
                block["severity"] = max(levels, key=SEVERITIES.index, default="stable")
                block["n_drifted"] = sum(f["drifted"] for f in block["features"].values())
    levels = [d["severity"] for d in drifted]
    return {
        "family": "segments",
        "correction": cfg.tests.correction,
        "n_tests": len(tested),
        "min_rows": min_rows,
        "severity": max(levels, key=SEVERITIES.index, default="stable"),
        "n_drifted": len(drifted),
        "drifted": drifted,
        "columns": columns,
    }


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


def _numeric_feature(view: _NumericView, cfg: DriftConfig) -> dict[str, Any]:
    ref = view.ref
    missing = _missing(ref["missing_rate"], view.n_missing, view.n_total)
    notes = []
    if view.reference is None:
        notes.append("all_missing_reference")
    if view.n_total == view.n_missing:
        notes.append("all_missing_current" if view.n_total else "empty_batch")
    if notes:
        return {**_empty_feature("numeric", missing, notes), "current": view.current, "wasserstein": None}
    if ref["min"] == ref["max"]:
        notes.append("constant_reference")
    grid, cdf, _ = view.reference
    ref_bins = np.asarray(ref["bin_counts"], dtype=float)
    cur_bins = view.bin_counts()
    ks = stats.ks_test(grid, cdf, ref["n"], view.counts)
    distance, batch_bound = stats.wasserstein(grid, cdf, view.counts, view.values, view.slots)
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
        "current": view.current,
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
    feature = _numeric_feature(acc.scores.view(), cfg)
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


def _correlation_change(prof: Mapping[str, Any], acc: _Accumulator, cfg: DriftConfig) -> dict[str, Any] | None:
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
