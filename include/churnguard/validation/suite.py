"""The expectation suite of a landing batch, generated from the dataset config and a reference profile.

Every expectation carries ``meta = {"severity": "error" | "warn", "rule": ..., "column": ...}``:

============  ========  ==============================================================================
rule          severity  expectation
============  ========  ==============================================================================
row_count     error     at least one row
column_set    error     exactly the id column plus the configured features (no missing, no extra)
type          error     numeric features numeric, binary features numeric or bool, categorical text
not_null      error     id and required features never null; optional ones up to ``missing.max_share``
unique        error     ``customer_id`` unique
finite        error     no ±inf in numeric features (counted with the missing share, like NaN)
domain        error     the dataset config's business rules (e.g. ``tenure >= 0``)
range         error     more than ``ranges.error_share`` of rows outside reference min/max ± tolerance
                        (only when ``error_share`` is set; by default a moved population is drift)
range         warn      any row outside reference min/max ± tolerance
value_set     warn      a category (or binary value) the reference never had: drift reports it
============  ========  ==============================================================================

``profile`` is the drift reference profile's dict (``profile["numeric"][col]["min"|"max"]``,
``profile["categorical"][col]["categories"]``): the caller fits it (:func:`churnguard.drift.fit_profile`) or
reads it; validation never fits one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from churnguard.config import DatasetConfig
from churnguard.settings import get_settings
from churnguard.validation.config import ValidationConfig

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite

ERROR, WARN = "error", "warn"
NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "int",
    "float",
]
BINARY_TYPES = [*NUMERIC_TYPES, "bool"]
TEXT_TYPES = ["str", "StringDtype"]  # object columns value by value; the runner hands text over as StringDtype
FLOAT_MAX = sys.float_info.max

_SUITES: OrderedDict[str, ExpectationSuite] = OrderedDict()
_SUITE_CACHE_SIZE = 16


def build_suite(
    dataset_cfg: DatasetConfig, profile: Mapping[str, Any], validation_cfg: ValidationConfig
) -> ExpectationSuite:
    """The GX suite for batches of ``dataset_cfg`` judged against ``profile`` (cached per input).

    Example::

        suite = build_suite(dataset_cfg, profile.to_dict(), validation_cfg)
        {e.meta["rule"] for e in suite.expectations} >= {"column_set", "range", "value_set"}
    """
    vcfg = validation_cfg
    profile = _as_dict(profile)
    _check_profile(profile, dataset_cfg)
    key = _suite_key(dataset_cfg, profile, vcfg)
    if key in _SUITES:
        _SUITES.move_to_end(key)
        return _SUITES[key]
    suite = _build(dataset_cfg, profile, vcfg, name=f"{dataset_cfg.name}-{key[:12]}")
    _SUITES[key] = suite
    while len(_SUITES) > _SUITE_CACHE_SIZE:
        _SUITES.popitem(last=False)
    return suite


@lru_cache(maxsize=1)
def gx_context():
    """The process-wide ephemeral GX context (in memory: nothing is written, nothing is reported)."""
    get_settings()  # sets GX_ANALYTICS_ENABLED=false before GX starts
    # GX logs its plugin registry and datasource loading at INFO: noise under the CLI's INFO logging
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)  # pinned INFO
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _build(cfg: DatasetConfig, profile: dict[str, Any], vcfg: ValidationConfig, name: str) -> ExpectationSuite:
    gx_context()  # GX 1.x suites need an active context even when never saved
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=name, meta={"dataset": cfg.name, "profile_version": profile.get("version")})

    def add(expectation_cls, severity: str, rule: str, column: str | None = None, **kwargs) -> None:
        if column is not None:
            kwargs["column"] = column
        suite.add_expectation(expectation_cls(meta={"severity": severity, "rule": rule, "column": column}, **kwargs))

    id_col = cfg.id.column
    optional = set(vcfg.optional_features(cfg))
    allowed_missing = 1.0 - vcfg.missing.max_share

    add(gxe.ExpectTableRowCountToBeBetween, ERROR, "row_count", min_value=1)
    add(gxe.ExpectTableColumnsToMatchSet, ERROR, "column_set", column_set=[id_col, *cfg.features], exact_match=True)
    add(gxe.ExpectColumnValuesToNotBeNull, ERROR, "not_null", id_col)
    add(gxe.ExpectColumnValuesToBeUnique, ERROR, "unique", id_col)
    for col in cfg.features:
        mostly = allowed_missing if col in optional else 1.0
        types = NUMERIC_TYPES if col in cfg.numeric else BINARY_TYPES if col in cfg.binary else TEXT_TYPES
        add(gxe.ExpectColumnValuesToBeInTypeList, ERROR, "type", col, type_list=types)
        add(gxe.ExpectColumnValuesToNotBeNull, ERROR, "not_null", col, mostly=mostly)
        if col in cfg.numeric:
            _add_numeric(add, gxe, cfg, vcfg, col, profile["numeric"][col], mostly)
        else:
            categories = list(profile["categorical"][col]["categories"])
            value_set = _binary_values(categories) if col in cfg.binary else categories
            add(gxe.ExpectColumnValuesToBeInSet, WARN, "value_set", col, value_set=value_set)
    return suite


def _add_numeric(
    add, gxe, cfg: DatasetConfig, vcfg: ValidationConfig, col: str, summary: Mapping[str, Any], mostly: float
) -> None:
    add(
        gxe.ExpectColumnValuesToBeBetween,
        ERROR,
        "finite",
        col,
        min_value=-FLOAT_MAX,
        max_value=FLOAT_MAX,
        mostly=mostly,
    )
    rule = cfg.domain.get(col)
    if rule is not None and (rule.min is not None or rule.max is not None):
        add(gxe.ExpectColumnValuesToBeBetween, ERROR, "domain", col, min_value=rule.min, max_value=rule.max)
    lo, hi = summary.get("min"), summary.get("max")
    if lo is None or hi is None:  # the reference never saw a value: nothing to compare with
        return
    span = hi - lo if hi > lo else max(abs(lo), 1.0)
    pad = vcfg.ranges.tolerance * span
    bounds = {"min_value": float(lo - pad), "max_value": float(hi + pad)}
    if vcfg.ranges.error_share is not None:
        add(gxe.ExpectColumnValuesToBeBetween, ERROR, "range", col, mostly=1.0 - vcfg.ranges.error_share, **bounds)
    add(gxe.ExpectColumnValuesToBeBetween, WARN, "range", col, **bounds)


def _binary_values(categories: list[str]) -> list[int | str]:
    """Profile keys of a binary column ("0", "1") as the numbers a batch carries."""
    out: list[int | str] = []
    for key in categories:
        try:
            out.append(int(float(key)))
        except ValueError:
            out.append(key)
    return out


def _as_dict(profile: Any) -> dict[str, Any]:
    if hasattr(profile, "to_dict"):
        profile = profile.to_dict()
    if not isinstance(profile, Mapping):
        raise ValueError(f"reference profile must be a dict, got {type(profile).__name__}")
    return dict(profile)


def _check_profile(profile: Mapping[str, Any], cfg: DatasetConfig) -> None:
    numeric, categorical = profile.get("numeric") or {}, profile.get("categorical") or {}
    lacking = [c for c in cfg.numeric if c not in numeric]
    lacking += [c for c in [*cfg.binary, *cfg.categorical] if "categories" not in categorical.get(c, {})]
    if lacking:
        raise ValueError(f"reference profile lacks column(s) {', '.join(lacking)} of dataset '{cfg.name}'")


def _suite_key(cfg: DatasetConfig, profile: Mapping[str, Any], vcfg: ValidationConfig) -> str:
    used = {
        "numeric": {c: [profile["numeric"][c].get("min"), profile["numeric"][c].get("max")] for c in cfg.numeric},
        "categorical": {c: sorted(profile["categorical"][c]["categories"]) for c in [*cfg.binary, *cfg.categorical]},
    }
    blob = json.dumps([cfg.model_dump(mode="json"), used, vcfg.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
