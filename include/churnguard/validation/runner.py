"""Validate one landing batch against the generated suite: :func:`validate_batch`.

Exit codes (also ``ValidationResult.exit_code``): 0 pass, 1 warnings only, 2 an error-level expectation
failed, 3 the input could not be read as a table at all.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from churnguard.arrow import UnreadableBatch, one_line, release_arrow_memory
from churnguard.config import DatasetConfig
from churnguard.validation.config import ValidationConfig
from churnguard.validation.suite import ERROR, WARN, build_suite, gx_context

log = logging.getLogger(__name__)

EXIT_CODES = {"pass": 0, "warn": 1, "fail": 2, "unreadable": 3}
_RULE_ORDER = [
    "readable",
    "row_count",
    "column_set",
    "type",
    "not_null",
    "unique",
    "finite",
    "domain",
    "range",
    "value_set",
    "evaluation",
]
_EXPECTED_TYPE = {"numeric": "numeric", "binary": "numeric 0/1", "categorical": "text"}
# Rows of a frame GX validates at a time: GX's fixed cost per expectation and chunk (its metric graph) is
# about a third of the work at 100k rows; text stays in Arrow, so a larger chunk costs little memory.
GX_CHUNK_ROWS = 250_000
MISSING_ID = "(missing id)"  # an offending row's place in the sample ids when its id is null


@dataclass(frozen=True)
class Issue:
    """One failed expectation, as one line: column, rule, what was observed, sample offending ids."""

    severity: str  # "error" or "warn"
    rule: str
    column: str | None  # None: the whole table (or file)
    observed: str
    sample_ids: tuple[str, ...] = ()

    def line(self) -> str:
        where = (
            f"column '{self.column}'" if self.column is not None else ("file" if self.rule == "readable" else "table")
        )
        ids = f"; rows {', '.join(self.sample_ids)}" if self.sample_ids else ""
        return f"{where} {self.rule}: {self.observed}{ids}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "rule": self.rule,
            "column": self.column,
            "observed": self.observed,
            "sample_ids": list(self.sample_ids),
            "line": self.line(),
        }


@dataclass(frozen=True)
class Outcome:
    """One expectation of the suite with churnguard's verdict on it.

    ``status``: ``pass``; ``warn`` (failed at warn level: reported, the batch goes on); ``fail`` (failed at
    error level: the batch is rejected); ``skip`` (failed, but not counted: ``observed`` says which issue
    covers it, e.g. a range check on a column of the wrong type).
    """

    status: str
    severity: str  # the level it was configured at: "error" or "warn"
    rule: str
    column: str | None
    observed: str
    expectation: str  # GX's expectation type, e.g. expect_column_values_to_be_between
    sample_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "severity": self.severity,
            "rule": self.rule,
            "column": self.column,
            "observed": self.observed,
            "expectation": self.expectation,
            "sample_ids": list(self.sample_ids),
        }


class IssueReport:
    """What a batch's and a label delivery's checks share: their issues as one line each."""

    source: str
    status: str
    issues: list[Issue]

    @property
    def failures(self) -> list[str]:
        return [i.line() for i in self.issues if i.severity == ERROR]

    @property
    def warnings(self) -> list[str]:
        return [i.line() for i in self.issues if i.severity == WARN]

    def lines(self) -> list[str]:
        """One line per failed or warned check, naming the source."""
        label = {ERROR: "UNREADABLE" if self.status == "unreadable" else "FAIL", WARN: "WARN"}
        return [f"{self.source}: {label[i.severity]} {i.line()}" for i in self.issues]


@dataclass
class ValidationResult(IssueReport):
    """Outcome of validating one batch. ``failures`` / ``warnings`` are one line each."""

    source: str
    dataset: str
    status: str  # pass | warn | fail | unreadable
    issues: list[Issue]
    n_rows: int | None = None
    n_columns: int | None = None
    profile_version: str | None = None
    suite_name: str | None = None
    evaluated: int = 0
    elapsed_seconds: float = 0.0
    validated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    expectations: list[Outcome] = field(default_factory=list)  # empty when GX never ran (unreadable, ...)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def summary(self) -> str:
        head = f"{self.source}: {self.status.upper()} (exit {self.exit_code})"
        if self.status == "unreadable":
            return f"{head}: not validated [dataset {self.dataset}]"
        return (
            f"{head}: {self.n_rows} rows, {self.evaluated} expectations, {len(self.failures)} failed, "
            f"{_plural(len(self.warnings), 'warning')} "
            f"[dataset {self.dataset}, profile {self.profile_version or '-'}]"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dataset": self.dataset,
            "status": self.status,
            "exit_code": self.exit_code,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "profile_version": self.profile_version,
            "suite": self.suite_name,
            "evaluated_expectations": self.evaluated,
            "failures": self.failures,
            "warnings": self.warnings,
            "issues": [i.to_dict() for i in self.issues],
            "summary": self.summary(),
            "expectations": [e.to_dict() for e in self.expectations],
            "validated_at": self.validated_at,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)


def validate_batch(
    source: pd.DataFrame | Iterable[pd.DataFrame],
    dataset_cfg: DatasetConfig,
    profile: Mapping[str, Any],
    validation_cfg: ValidationConfig,
    name: str | None = None,
    chunk_rows: int = GX_CHUNK_ROWS,
) -> ValidationResult:
    """Validate a batch (a frame, or an iterable of frames: the batch's row chunks, in order, for a batch too
    large to hold; :mod:`churnguard.batches` reads one).

    ``name`` names the batch's source in the report. Never raises for bad *input*: chunks that turn out
    unreadable as they are read (:class:`~churnguard.arrow.UnreadableBatch`) give status ``unreadable``. A
    profile or config that does not fit the dataset raises ``ValueError`` / ``ConfigError``.

    GX validates ``chunk_rows`` rows at a time (a frame is sliced); the chunks' results are merged into one
    result for the whole batch (:class:`_MergedResult`), with exactly the issues of validating it whole.

    Example::

        result = validate_batch(batch_chunks("batch.parquet"), cfg, profile, validation_cfg, name="batch.parquet")
        result.exit_code, result.failures
    """
    started = time.perf_counter()
    vcfg = validation_cfg
    suite = build_suite(dataset_cfg, profile, vcfg)
    name = name or _source_name(source)
    common = {
        "source": name,
        "dataset": dataset_cfg.name,
        "suite_name": suite.name,
        "profile_version": (suite.meta or {}).get("profile_version"),
    }
    try:
        chunks = _slices(source, chunk_rows) if isinstance(source, pd.DataFrame) else iter(source)
        text = frozenset([*dataset_cfg.categorical, dataset_cfg.id.column])
        first = _for_gx(next(chunks), text)
    except UnreadableBatch as exc:
        issue = Issue(ERROR, "readable", None, str(exc))
        return ValidationResult(
            status="unreadable", issues=[issue], elapsed_seconds=time.perf_counter() - started, **common
        )
    common["n_columns"] = len(first.columns)
    duplicated = sorted({str(c) for c in first.columns[first.columns.duplicated()]})
    if duplicated:
        issue = Issue(ERROR, "column_set", None, f"duplicate column name(s) {', '.join(duplicated)}")
        return ValidationResult(
            status="fail",
            issues=[issue],
            elapsed_seconds=time.perf_counter() - started,
            n_rows=len(source) if isinstance(source, pd.DataFrame) else None,
            **common,
        )
    id_col = dataset_cfg.id.column
    result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": vcfg.sample_size}
    if id_col in first.columns:
        result_format["unexpected_index_column_names"] = [id_col]
    merged = _MergedResult(id_col if id_col in first.columns else None, vcfg.sample_size)
    frame: pd.DataFrame | None = first
    seen = 0
    try:
        while frame is not None:
            seen += len(frame)
            batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
            merged.add(batch.validate(suite, result_format=result_format), frame)
            batch = frame = None
            _release_gx_batches()  # before the next chunk is converted: one chunk's copy at a time
            release_arrow_memory()
            frame = _for_gx(chunk, text) if (chunk := next(chunks, None)) is not None else None
        gx_result = merged.result()
    except Exception as exc:  # GX itself broke on this input: report it as a failed batch, not a crash
        log.exception("GX could not validate %s", name)
        issue = Issue(ERROR, "evaluation", None, f"validation could not run: {one_line(exc)}")
        return ValidationResult(
            status="fail",
            issues=[issue],
            elapsed_seconds=time.perf_counter() - started,
            n_rows=len(source) if isinstance(source, pd.DataFrame) else seen,
            **common,
        )
    issues = _issues(gx_result, first.columns, dataset_cfg, vcfg)
    status = "fail" if any(i.severity == ERROR for i in issues) else "warn" if issues else "pass"
    return ValidationResult(
        status=status,
        issues=issues,
        evaluated=len(gx_result.results),
        n_rows=merged.rows,
        elapsed_seconds=time.perf_counter() - started,
        expectations=_outcomes(gx_result, issues, first.columns, dataset_cfg, vcfg),
        **common,
    )


def _slices(frame: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, max(len(frame), 1), rows):
        yield frame.iloc[start : start + rows]


class _MergedResult:
    """GX's results of a batch's chunks, merged into the result of the whole batch.

    Per expectation: counts (rows, unexpected, missing) are summed, the partial lists of unexpected values
    and ids concatenated in row order up to the sample size, and success recomputed over the whole batch as
    GX decides it (``mostly`` over the non-missing rows). What no chunk can see alone is checked across
    them: the row count, and the id's uniqueness, from a 64-bit hash of every id (duplicates found by
    sorting, then confirmed on the ids themselves).
    """

    def __init__(self, id_col: str | None, sample_size: int) -> None:
        self.id_col, self.sample_size = id_col, sample_size
        self.rows = 0
        self.first: Any = None
        self._ids: list[Any] = []  # Arrow arrays: compact, where GX's object copy holds Python strings
        self._present: list[np.ndarray] = []
        self._hashes: list[np.ndarray] = []

    def add(self, gx_result: Any, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        if self.id_col is not None:
            import pyarrow as pa

            ids = frame[self.id_col]
            self._ids.append(pa.array(ids, from_pandas=True))
            self._present.append(ids.notna().to_numpy())
            self._hashes.append(pd.util.hash_pandas_object(ids, index=False).to_numpy())
        if self.first is None:
            self.first = gx_result
            return
        for res, new in zip(self.first.results, gx_result.results, strict=True):
            self._merge(res, new)

    def _merge(self, res: Any, new: Any) -> None:
        if _exception_message(res.exception_info):
            return  # the first chunk GX could not evaluate this on says why
        if _exception_message(new.exception_info):
            res.exception_info, res.result, res.success = new.exception_info, new.result, False
            return
        acc, more = res.result, new.result or {}
        if res.expectation_config.meta.get("rule") == "row_count":
            acc["observed_value"] += more["observed_value"]
        elif "element_count" in acc:
            for key in ("element_count", "unexpected_count", "missing_count"):
                if key in acc:
                    acc[key] += more.get(key) or 0
            for key in ("partial_unexpected_list", "partial_unexpected_index_list"):
                if key in acc:
                    acc[key] = (acc[key] + (more.get(key) or []))[: self.sample_size]

    def result(self) -> Any:
        """The whole batch's result (the first chunk's GX result object, updated)."""
        merged = self.first
        for res in merged.results:
            if _exception_message(res.exception_info):
                continue
            rule, kwargs, result = (res.expectation_config.meta.get("rule"), res.expectation_config.kwargs, res.result)
            if rule == "row_count":
                res.success = result["observed_value"] >= kwargs.get("min_value", 0)
            elif rule == "unique" and self.id_col is not None and "element_count" in result:
                self._unique(result)
                res.success = result["unexpected_count"] == 0
            elif "element_count" in result:
                res.success = _mostly_success(result, kwargs.get("mostly"))
            if "element_count" in result:
                _percentages(result)
        successful = sum(bool(r.success) for r in merged.results)
        merged.success = successful == len(merged.results)
        merged.statistics.update(
            successful_expectations=successful,
            unsuccessful_expectations=len(merged.results) - successful,
            success_percent=100 * successful / len(merged.results) if merged.results else None,
        )
        return merged

    def _unique(self, result: dict) -> None:
        """Rows whose (non-null) id occurs more than once in the whole batch, all occurrences, in row order."""
        import pyarrow as pa

        hashes, present = np.concatenate(self._hashes), np.concatenate(self._present)
        ordered = np.sort(hashes[present])
        twice = ordered[1:][ordered[1:] == ordered[:-1]]
        candidates = np.flatnonzero(present & np.isin(hashes, twice))
        kind = next((a.type for a in self._ids if a.type != pa.null()), pa.null())  # an all-null chunk: null type
        arrays = [a.cast(kind) if a.type == pa.null() else a for a in self._ids]
        ids = pd.Series(pa.chunked_array(arrays, type=kind).take(pa.array(candidates)).to_pylist(), dtype=object)
        duplicated = ids[ids.duplicated(keep=False)]  # hashes collide rarely; the ids say which repeat
        values = duplicated.head(self.sample_size).tolist()
        result.update(
            unexpected_count=len(duplicated),
            partial_unexpected_list=values,
            partial_unexpected_index_list=[{self.id_col: v} for v in values],
        )


def _mostly_success(result: Mapping[str, Any], mostly: float | None) -> bool:
    """GX's verdict of a column map expectation: vacuously true without rows to consider."""
    considered = result["element_count"] - (result.get("missing_count") or 0)
    if not result["element_count"] or considered <= 0:
        return True
    return (considered - result["unexpected_count"]) / considered >= (1.0 if mostly is None else mostly)


def _percentages(result: dict) -> None:
    """GX's percentages of a merged column map result, and its counts of the partial unexpected values."""
    total, unexpected = result["element_count"], result["unexpected_count"]
    if not total:
        return
    if "missing_count" in result:
        considered = total - result["missing_count"]
        nonmissing = unexpected / considered * 100 if considered > 0 else None
        result.update(
            missing_percent=result["missing_count"] / total * 100,
            unexpected_percent_total=unexpected / total * 100,
            unexpected_percent_nonmissing=nonmissing,
            unexpected_percent=nonmissing,
        )
    else:
        result["unexpected_percent"] = unexpected / total * 100
    if "partial_unexpected_counts" in result:
        try:
            counted = Counter(result.get("partial_unexpected_list") or []).most_common()
        except TypeError:  # unhashable values: GX's own counts of the first chunk stay
            return
        result["partial_unexpected_counts"] = [{"value": v, "count": n} for v, n in counted]


def _source_name(source: Any) -> str:
    return "<DataFrame>" if isinstance(source, pd.DataFrame) else "<DataFrame chunks>"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- GX ----------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _batch_definition():
    """A whole-DataFrame batch definition on the process-wide ephemeral context."""
    asset = gx_context().data_sources.add_pandas("churnguard").add_dataframe_asset("batch")
    return asset.add_batch_definition_whole_dataframe("whole")


def _release_gx_batches() -> None:
    """Drop the frames GX's execution engine keeps of the batches it validated (it caches the last one's
    converted copy, which would stay resident for the rest of the process)."""
    try:
        manager = _batch_definition().data_asset.datasource.get_execution_engine().batch_manager
        manager.reset_batch_cache()
        manager.batch_data_cache.clear()
    except AttributeError:  # a GX without these internals: its cache stays, nothing else changes
        log.debug("GX batch cache not released", exc_info=True)


def _for_gx(frame: pd.DataFrame, text: frozenset[str]) -> pd.DataFrame:
    """A copy GX 1.x can type-check: the ``text`` columns (categorical features, the id) as
    ``pd.StringDtype()``, the one string dtype GX's ``type_list`` matches by dtype (no check of each value, no
    walk over Python strings for nulls); other text as object, which GX checks value by value, so text in a
    numeric column is reported with its rows and examples; nullable numbers as float64; names as text."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for i, name in enumerate(out.columns):
        col = out.iloc[:, i]
        dtype = col.dtype
        if name in text and (
            isinstance(dtype, pd.StringDtype)
            or (isinstance(dtype, pd.CategoricalDtype) and pd.api.types.is_string_dtype(dtype.categories))
        ):
            out.isetitem(i, col.astype(pd.StringDtype()))
        elif isinstance(dtype, pd.StringDtype) or isinstance(dtype, pd.CategoricalDtype):
            out.isetitem(i, col.astype(object).where(col.notna(), None))
        elif (
            pd.api.types.is_extension_array_dtype(dtype)
            and pd.api.types.is_numeric_dtype(dtype)
            and not pd.api.types.is_bool_dtype(dtype)
        ):
            out.isetitem(i, col.to_numpy(dtype="float64", na_value=float("nan")))
        elif pd.api.types.is_extension_array_dtype(dtype):
            out.isetitem(i, col.astype(object).where(col.notna(), None))
    return out


# --- results -> issues -------------------------------------------------------------------------------------
def _issues(gx_result: Any, columns: pd.Index, cfg: DatasetConfig, vcfg: ValidationConfig) -> list[Issue]:
    present = set(columns)
    found: list[Issue] = []
    for res in gx_result.results:
        if res.success:
            continue
        config = res.expectation_config
        meta = config.meta or {}
        column = meta.get("column")
        if column is not None and column not in present:
            continue  # the column_set failure already names the missing column
        found.append(_describe(res, meta, cfg, vcfg))
    bad_type = {i.column for i in found if i.rule == "type"}
    errors = {(i.column, i.rule) for i in found if i.severity == ERROR}
    kept = [
        i
        for i in found
        if not (i.column in bad_type and i.rule not in ("type", "not_null"))  # noise from a wrong type
        and not (i.severity == WARN and (i.column, i.rule) in errors)
    ]
    return sorted(kept, key=_report_order(cfg))


def _report_order(cfg: DatasetConfig):
    """Sort key of issues and outcomes: table checks, the id, then the features in config order; by rule;
    error before warn."""
    order = {c: n for n, c in enumerate([None, cfg.id.column, *cfg.features])}
    return lambda i: (
        order.get(i.column, len(order)),
        _RULE_ORDER.index(i.rule) if i.rule in _RULE_ORDER else len(_RULE_ORDER),
        i.severity != ERROR,
    )


def _outcomes(
    gx_result: Any, issues: list[Issue], columns: pd.Index, cfg: DatasetConfig, vcfg: ValidationConfig
) -> list[Outcome]:
    """Every expectation with churnguard's verdict (:class:`Outcome`), consistent with ``issues``: a failure
    that is no issue (see :func:`_issues`) is a ``skip`` naming what covers it."""
    present, counted = set(columns), set(issues)
    bad_type = {i.column for i in issues if i.rule == "type"}
    out = []
    for res in gx_result.results:
        meta = res.expectation_config.meta or {}
        severity, rule, column = meta.get("severity", ERROR), meta.get("rule", "?"), meta.get("column")
        found = _describe(res, meta, cfg, vcfg)
        status, observed, ids = ("fail" if severity == ERROR else "warn"), found.observed, found.sample_ids
        if res.success:
            status, ids = "pass", ()
            if rule == "column_set":
                observed = f"the {len(present)} columns of the dataset config"
        elif found not in counted:
            status, ids = "skip", ()
            observed = (
                "column missing (see column_set)"
                if column is not None and column not in present
                else "not judged: the column has the wrong type (see type)"
                if column in bad_type
                else "reported by the error-level check of the same rule"
            )
        out.append(Outcome(status, severity, rule, column, observed, res.expectation_config.type, ids))
    return sorted(out, key=_report_order(cfg))


def _describe(res: Any, meta: Mapping[str, Any], cfg: DatasetConfig, vcfg: ValidationConfig) -> Issue:
    severity, rule, column = meta.get("severity", ERROR), meta.get("rule", "?"), meta.get("column")
    kwargs = res.expectation_config.kwargs
    result = res.result or {}
    error = _exception_message(res.exception_info)
    if error:
        return Issue(severity, rule, column, f"could not be evaluated: {error}")
    if rule == "row_count":
        return Issue(severity, rule, column, f"{result.get('observed_value')} rows, expected at least 1")
    if rule == "column_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        parts = []
        if mismatched.get("missing"):
            expected = [cfg.id.column, *cfg.features]  # name them in config order, not GX's sorted order
            missing = sorted(mismatched["missing"], key=lambda c: expected.index(c) if c in expected else 0)
            parts.append(f"missing column(s) {_names(missing)}")
        if mismatched.get("unexpected"):
            parts.append(f"unexpected column(s) {_names(mismatched['unexpected'])}")
        return Issue(severity, rule, column, "; ".join(parts) or "columns differ from the dataset config")
    if rule == "type" and "observed_value" in result:
        return Issue(
            severity, rule, column, f"dtype {result['observed_value']}, expected {_expected_type(column, cfg)}"
        )
    what = {
        "type": f"not {_expected_type(column, cfg)}",
        "not_null": "null",
        "unique": "with a duplicated id",
        "finite": "+-inf",
        "domain": f"outside the domain rule {_interval(kwargs)}",
        "range": f"outside the reference range {_interval(kwargs)}",
        "value_set": "with a category not seen in the reference",
    }.get(rule, "unexpected")
    count, total = result.get("unexpected_count") or 0, result.get("element_count") or 0
    share = f" ({100 * count / total:.1f}%)" if total else ""
    allowed = kwargs.get("mostly")
    limit = f", allowed {100 * (1 - allowed):.1f}%" if allowed is not None and allowed < 1 else ""
    examples = _examples(result) if rule != "not_null" else ""
    observed = f"{count} of {total} rows{share} {what}{limit}{examples}"
    if rule == "not_null" and column == cfg.id.column:  # rows without an id: there is none to show
        return Issue(severity, rule, column, observed)
    return Issue(severity, rule, column, observed, _sample_ids(result, rule, cfg.id.column, vcfg.sample_size))


def _exception_message(info: Any) -> str | None:
    if not info:
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("raised_exception"):
            return one_line(Exception(entry.get("exception_message") or "error"))
    return None


def _expected_type(column: str | None, cfg: DatasetConfig) -> str:
    kind = "numeric" if column in cfg.numeric else "binary" if column in cfg.binary else "categorical"
    return _EXPECTED_TYPE[kind]


def _interval(kwargs: Mapping[str, Any]) -> str:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    return f"[{'-inf' if lo is None else _fmt(lo)}, {'inf' if hi is None else _fmt(hi)}]"


def _names(names: list[Any], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _examples(result: Mapping[str, Any]) -> str:
    # distinct values of GX's partial list only: its counts cover that sample, not the whole batch
    values = list(dict.fromkeys(_fmt(v) for v in result.get("partial_unexpected_list") or []))[:3]
    return f", e.g. {', '.join(values)}" if values else ""


def _sample_ids(result: Mapping[str, Any], rule: str, id_col: str, size: int) -> tuple[str, ...]:
    if rule == "unique":
        raw = result.get("partial_unexpected_list") or []
    else:
        raw = [row.get(id_col) for row in result.get("partial_unexpected_index_list") or [] if isinstance(row, Mapping)]
    ids: list[str] = []
    for value in raw:
        text = MISSING_ID if _is_null(value) else _fmt(value, quote=False)
        if text not in ids:
            ids.append(text)
    return tuple(ids[:size])


def _is_null(value: Any) -> bool:
    """None, NaN or ``pd.NA``: what a null id is, depending on the column's dtype."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _fmt(value: Any, quote: bool = True) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text) if quote else text
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
