"""Label deliveries: the suite every delivery (a day's labels partition) passes before anything measures it.

A delivery holds the labels that became known on one date: the id column, ``observed_ds`` (the landing day
the customer was scored on) and the dataset's target column. :func:`validate_labels` checks a delivery's
frame; the daily run reads each partition (``churnguard.performance.read_labels``), and quarantines a rejected
one with its report, :data:`REPORT`, among the day's reports.

==========  ========  ==========================================================================================
rule        severity  check
==========  ========  ==========================================================================================
readable    error     every file of the partition is a readable parquet table
column_set  error     exactly the id column, ``observed_ds`` and the target column
type        error     all three are text
not_null    error     no missing value in any of them
value_set   error     the target is the config's ``positive`` or ``negative`` value: ``1``/``0``, ``yes``/``no``
                      or ``Maybe`` are rejected, never counted as "no churn"
date        error     ``observed_ds`` is an ISO date (YYYY-MM-DD)
arrival     error     ``observed_ds`` is not after the delivery's own date
row_count   warn      the delivery has no rows
scored      warn      ``observed_ds`` was never scored (its batch was quarantined or never landed): the rows are
                      kept and counted, but have no scores to be measured against
unique      warn      (id, ``observed_ds``) repeats within the delivery: the last of each is kept
value_set   warn      the config sets no ``negative``: every non-positive value counts as no churn
==========  ========  ==========================================================================================

Example::

    check = validate_labels(frame, dataset_cfg, {"2026-09-01"}, ds="2026-09-08",
                            source=DataRoot.labels_key("2026-09-08"))
    check.status, check.failures, check.labels
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from churnguard.config import DatasetConfig
from churnguard.validation.runner import Issue, IssueReport
from churnguard.validation.suite import ERROR, WARN

__all__ = ["OBSERVED", "REPORT", "LabelCheck", "validate_labels"]
log = logging.getLogger(__name__)

OBSERVED = "observed_ds"
REPORT = "labels_validation.json"
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SAMPLE = 5


@dataclass
class LabelCheck(IssueReport):
    """Outcome of checking one delivery. ``labels``: the rows that may be measured (the three columns,
    duplicates dropped), None when the delivery is rejected."""

    ds: str  # the delivery's own date: when the labels became known
    source: str  # the delivery's partition key
    status: str  # pass | warn | fail | unreadable
    issues: list[Issue]
    rows: int | None = None  # None: unreadable
    labels: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    quarantined_to: str | None = None

    @property
    def ok(self) -> bool:
        """The delivery may be measured (it passed, perhaps with warnings)."""
        return self.status in ("pass", "warn")

    def hand_over_labels(self) -> pd.DataFrame | None:
        """The checked labels, which the check no longer holds: a day's 10M labels as text are about 1 GB, so
        a caller that keeps a compact copy lets this one go."""
        labels, self.labels = self.labels, None
        return labels

    def reason(self) -> str:
        """Why the delivery was rejected, in one line."""
        return f"labels {self.ds} rejected: " + "; ".join(self.failures[:3])

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "source": self.source,
            "status": self.status,
            "rows": self.rows,
            "failures": self.failures,
            "warnings": self.warnings,
            "issues": [i.to_dict() for i in self.issues],
            "quarantined_to": self.quarantined_to,
        }


def validate_labels(
    frame: pd.DataFrame, dataset_cfg: DatasetConfig, scored_days: set[str], *, ds: date | str, source: str
) -> LabelCheck:
    """Check the delivery of date ``ds`` against the label suite (see the module docstring).

    ``scored_days``: the ISO dates that have scores. Never raises for bad input: every problem is an
    :class:`~churnguard.validation.Issue` of the result, one line each.
    """
    ds = _iso(ds)
    id_col, target = dataset_cfg.id.column, dataset_cfg.target.column
    expected = [id_col, OBSERVED, target]

    def result(issues: list[Issue], labels: pd.DataFrame | None = None) -> LabelCheck:
        status = "fail" if any(i.severity == ERROR for i in issues) else "warn" if issues else "pass"
        return LabelCheck(ds, source, status, issues, len(frame), None if status == "fail" else labels)

    names = [str(c) for c in frame.columns]
    wrong = [
        *(f"duplicate {n}" for n in sorted({n for n in names if names.count(n) > 1})),
        *(f"missing {c}" for c in expected if c not in names),
        *(f"unexpected {n}" for n in names if n not in expected),
    ]
    if wrong:
        return result([Issue(ERROR, "column_set", None, f"expected exactly {', '.join(expected)}: {', '.join(wrong)}")])
    frame = frame.set_axis(names, axis=1)[expected]
    if frame.empty:
        return result([Issue(WARN, "row_count", None, "no rows")], frame)

    ids, issues, checkable = frame[id_col], [], {}
    for col in expected:
        values = frame[col]
        if not _is_text(values):
            issues.append(Issue(ERROR, "type", col, f"expected text, got {values.dtype}{_examples(values)}"))
            continue
        missing = values.isna()
        if missing.any():
            issues.append(
                Issue(ERROR, "not_null", col, f"{_share(missing)} missing", () if col == id_col else _ids(ids, missing))
            )
        checkable[col] = values.notna()

    if target in checkable:
        issues.extend(_target_issues(frame[target], checkable[target], ids, dataset_cfg))
    if OBSERVED in checkable:
        issues.extend(_observed_issues(frame[OBSERVED], checkable[OBSERVED], ids, ds, scored_days))

    repeated = _repeated(frame, [id_col, OBSERVED])
    if repeated.any():
        issues.append(
            Issue(
                WARN,
                "unique",
                id_col,
                f"{_share(repeated)} repeat ({id_col}, {OBSERVED}) within the delivery: the last of each kept",
                _ids(ids, repeated),
            )
        )
    return result(issues, (frame[~repeated] if repeated.any() else frame).reset_index(drop=True))


# --- rules -----------------------------------------------------------------------------------------------
def _target_issues(values: pd.Series, present: pd.Series, ids: pd.Series, cfg: DatasetConfig) -> list[Issue]:
    positive, negative = cfg.target.positive, cfg.target.negative
    if negative is None:
        others = present & (values != positive)
        return (
            [
                Issue(
                    WARN,
                    "value_set",
                    cfg.target.column,
                    f"{_share(others)} counted as no churn: the dataset config sets no target.negative "
                    f"({_counts(values[others])})",
                )
            ]
            if others.any()
            else []
        )
    outside = present & ~values.isin([positive, negative])
    if not outside.any():
        return []
    return [
        Issue(
            ERROR,
            "value_set",
            cfg.target.column,
            f"{_share(outside)} not {positive!r} or {negative!r}: {_counts(values[outside])}",
            _ids(ids, outside),
        )
    ]


def _observed_issues(
    values: pd.Series, present: pd.Series, ids: pd.Series, ds: str, scored_days: set[str]
) -> list[Issue]:
    days = {v: _day(v) for v in values[present].unique()}
    arrived = date.fromisoformat(ds)
    malformed = present & values.isin([v for v, d in days.items() if d is None])
    future = values.isin([v for v, d in days.items() if d is not None and d > arrived])
    unscored = values.isin([v for v, d in days.items() if d is not None and d <= arrived and v not in scored_days])
    issues = []
    if malformed.any():
        issues.append(
            Issue(
                ERROR,
                "date",
                OBSERVED,
                f"{_share(malformed)} not an ISO date (YYYY-MM-DD): {_counts(values[malformed])}",
                _ids(ids, malformed),
            )
        )
    if future.any():
        issues.append(
            Issue(
                ERROR,
                "arrival",
                OBSERVED,
                f"{_share(future)} observed after the delivery's date {ds}: {_counts(values[future])}",
                _ids(ids, future),
            )
        )
    if unscored.any():
        issues.append(
            Issue(
                WARN,
                "scored",
                OBSERVED,
                f"{_share(unscored)} for days never scored (quarantined or "
                f"never landed), kept and counted: {_counts(values[unscored])}",
            )
        )
    return issues


# --- helpers ---------------------------------------------------------------------------------------------
def _iso(ds: date | str) -> str:
    return ds.isoformat() if isinstance(ds, date) else date.fromisoformat(str(ds)).isoformat()


def _day(value: str) -> date | None:
    if not _ISO_DATE.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:  # 2026-02-30
        return None


def _is_text(values: pd.Series) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype):
        return True
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return False
    return bool(values.dropna().map(lambda v: isinstance(v, str)).all())


def row_hashes(data: pd.DataFrame | pa.Array | pa.ChunkedArray, rows: int = 1_000_000) -> np.ndarray:
    """64-bit hashes of a frame's rows or an Arrow array's values (pandas' hash), a million at a time: no
    factorising of every key at once, and an Arrow array is never turned into Python strings."""

    def part(i: int):
        if isinstance(data, pa.Array | pa.ChunkedArray):
            return pd.Series(data.slice(i, rows).to_pandas(types_mapper=pd.ArrowDtype))
        return data.iloc[i : i + rows]

    return np.concatenate(
        [
            np.zeros(0, dtype=np.uint64),
            *(pd.util.hash_pandas_object(part(i), index=False).to_numpy() for i in range(0, len(data), rows)),
        ]
    )


def _repeated(frame: pd.DataFrame, keys: list[str], rows: int = 1_000_000) -> pd.Series:
    """``frame.duplicated(keys, keep="last")`` without factorising every key at once (1.5 GB for 10M labels):
    only the rows whose hash repeats are compared on the keys."""
    hashes = row_hashes(frame[keys], rows)
    ordered = np.sort(hashes)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    repeated = np.zeros(len(frame), dtype=bool)
    if len(twice):
        candidates = np.flatnonzero(np.isin(hashes, twice))
        repeated[candidates] = frame[keys].iloc[candidates].duplicated(keep="last").to_numpy()
    return pd.Series(repeated, index=frame.index)


def _share(mask: pd.Series) -> str:
    return f"{int(mask.sum())} of {len(mask)} rows"


def _counts(values: pd.Series, limit: int = 4) -> str:
    counts = values.astype(str).value_counts()
    shown = ", ".join(f"{v!r} ({n})" for v, n in counts.head(limit).items())
    return shown + (f" (+{len(counts) - limit} more)" if len(counts) > limit else "")


def _examples(values: pd.Series) -> str:
    seen = list(dict.fromkeys(repr(v) if isinstance(v, str) else str(v) for v in values.dropna().head(50)))[:3]
    return f", e.g. {', '.join(seen)}" if seen else ""


def _ids(ids: pd.Series, mask: pd.Series) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in ids[mask].dropna().head(_SAMPLE * 4)))[:_SAMPLE]
