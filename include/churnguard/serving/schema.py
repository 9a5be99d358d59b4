"""What a caller may send: one customer's row, generated from the dataset config, as strict pydantic models.

The same rules the validation gate holds a landing batch to, but per request and refusing instead of counting:

=============  ==========================================================================================
column kind    field
=============  ==========================================================================================
id             ``customer_id``: a non-empty string (it routes the customer: see :mod:`.routing`)
numeric        a JSON number, finite; within the dataset config's ``domain`` rule (e.g. ``tenure >= 0``);
               required unless ``validation.yaml`` lists it under ``missing.optional`` (then null or absent
               is allowed, and imputed by the model as in training)
binary         the integers the reference data holds (0 or 1); ``true`` or ``1.0`` is refused
categorical    one of the values the reference data holds (the dataset's domain); any other text is refused
=============  ==========================================================================================

Unknown fields are refused too (a typo would otherwise be a silently imputed feature). The reference ranges
the gate warns about are not enforced: a moved population is drift for the daily run to see, not bad input.
A refusal is an :class:`InputError`: the status (422, or 413 for an oversize batch) and one line naming the
field, e.g. ``customers.3.contract: Input should be 'Month-to-month', 'One year' or 'Two year'``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, create_model

from churnguard.config import DatasetConfig

# Bytes a row may take on the wire (a telco row is ~500): a larger body is refused (413) before it is parsed.
ROW_BYTES = 16_384
ID_MAX_LENGTH = 128


class InputError(ValueError):
    """A request the service refuses before scoring: ``status`` (422 or 413) and one line per problem, each
    naming the field (``errors``: ``(field, message)``)."""

    def __init__(self, status: int, errors: Sequence[tuple[str, str]]) -> None:
        self.status, self.errors = status, list(errors)
        super().__init__(self.line)

    @property
    def line(self) -> str:
        field, message = self.errors[0]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{field}: {message}{more}"

    def to_dict(self) -> dict:
        return {"error": self.line, "errors": [{"field": f, "message": m} for f, m in self.errors]}


@dataclass(frozen=True)
class RequestSchema:
    """The request models of one dataset and the frame the model scores, built by :func:`build_schema`."""

    dataset: DatasetConfig
    customer: type[BaseModel]  # one customer: the body of /v1/predict and /v1/explain
    batch: type[BaseModel]  # {"customers": [customer, ...]}: the body of /v1/predict/batch
    max_batch_rows: int

    @property
    def id_column(self) -> str:
        return self.dataset.id.column

    def parse_customer(self, body: bytes) -> BaseModel:
        """One customer from a request body, or :class:`InputError` (422) naming the field."""
        return _validated(self.customer, _json_object(body))

    def body_bytes(self, batch: bool) -> int:
        """The largest body a request may send (one row, or ``max_batch_rows``): the reader's 413 limit."""
        return ROW_BYTES * (self.max_batch_rows if batch else 1)

    def parse_batch(self, body: bytes) -> list[BaseModel]:
        """The customers of a batch body; more than ``max_batch_rows`` is an :class:`InputError` 413 before any
        row is validated."""
        limit = self.max_batch_rows
        data = _json_object(body)
        rows = data.get("customers")
        if isinstance(rows, list) and len(rows) > limit:
            raise InputError(413, [("customers", f"{len(rows)} rows, more than serving.max_batch_rows ({limit})")])
        return list(_validated(self.batch, data).customers)

    def frame(self, customers: Iterable[BaseModel]) -> pd.DataFrame:
        """The rows as the model was trained on them: numeric float64 (null: NaN, imputed by the pipeline),
        binary int64, categorical text, plus the id column."""
        rows = [c.__dict__ for c in customers]  # the validated fields, without model_dump's copies
        cfg = self.dataset
        columns: dict[str, Any] = {self.id_column: [r[self.id_column] for r in rows]}
        for col in cfg.numeric:
            columns[col] = np.array([r[col] for r in rows], dtype="float64")  # None -> NaN
        for col in cfg.binary:
            columns[col] = np.array([r[col] for r in rows], dtype="int64")
        for col in cfg.categorical:
            columns[col] = np.array([r[col] for r in rows], dtype=object)
        return pd.DataFrame(columns)

    def rows_of(self, frame: pd.DataFrame) -> list[BaseModel]:
        """Rows of a reference-like frame checked as requests are (NaN as null): the canary rows."""
        records = frame[[self.id_column, *self.dataset.features]].to_dict("records")
        clean = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in records]
        return [_validated(self.customer, r) for r in clean]


def build_schema(
    dataset: DatasetConfig, optional: Iterable[str], domains: Mapping[str, Sequence[Any]], max_batch_rows: int
) -> RequestSchema:
    """The request models of ``dataset``: ``optional`` features may be null or absent; ``domains`` holds the
    values each binary and categorical column may take (the reference data's)."""
    optional = set(optional)
    lacking = [c for c in [*dataset.binary, *dataset.categorical] if not domains.get(c)]
    if lacking:
        raise ValueError(f"dataset '{dataset.name}': no known values for column(s) {', '.join(lacking)}")
    fields: dict[str, Any] = {
        dataset.id.column: (Annotated[str, Strict(), Field(min_length=1, max_length=ID_MAX_LENGTH)], ...)
    }
    for col in dataset.features:
        kind = _field_type(dataset, col, domains)
        fields[col] = (kind | None, None) if col in optional else (kind, ...)
    config = ConfigDict(extra="forbid", frozen=True)
    customer = create_model(f"{dataset.name.title()}Customer", __config__=config, **fields)
    batch = create_model(
        f"{dataset.name.title()}Batch",
        __config__=config,
        customers=(list[customer], Field(min_length=1)),  # the 413 above is checked before this model
    )
    return RequestSchema(dataset, customer, batch, max_batch_rows)


def _field_type(dataset: DatasetConfig, col: str, domains: Mapping[str, Sequence[Any]]) -> Any:
    if col in dataset.numeric:
        rule = dataset.domain.get(col)
        bounds = {"ge": rule.min, "le": rule.max} if rule is not None else {}
        return Annotated[float, Strict(), Field(allow_inf_nan=False, **bounds)]
    values = sorted(domains[col])
    if col in dataset.binary:  # Literal[0, 1] would let true and 1.0 through
        return Annotated[int, Strict(), Field(ge=int(values[0]), le=int(values[-1]))]
    return Literal[tuple(str(v) for v in values)]


def reference_domains(reference: pd.DataFrame, dataset: DatasetConfig) -> dict[str, list]:
    """The values each binary and categorical column holds in the reference table."""
    return {col: sorted(reference[col].dropna().unique().tolist()) for col in [*dataset.binary, *dataset.categorical]}


def _json_object(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(422, [("body", f"malformed JSON{where}")]) from None
    if not isinstance(data, dict):
        raise InputError(422, [("body", f"expected a JSON object, got {type(data).__name__}")])
    return data


def _validated(model: type[BaseModel], data: dict) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(422, [(_field(e["loc"]), e["msg"]) for e in exc.errors()]) from None


def _field(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "body"
