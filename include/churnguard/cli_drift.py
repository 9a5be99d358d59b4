"""``churnguard drift REF CUR [--json] [--html OUT] [--fail-on LEVEL]``: drift of a batch against a reference.

REF is a profile JSON file (from ``ReferenceProfile.to_json``) or a reference parquet, profiled on the
fly with the configured dataset schema. CUR is a parquet file, read by row groups, never whole, or a
partition folder (or ``file://`` / ``s3://`` URI), read as ``churnguard validate`` reads it. Exit code 0
when the report was produced (its severity is in the output), 1 when that severity reaches ``--fail-on``,
2 for input the user can fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from churnguard.config import ConfigError, load_dataset_config, load_drift_config
from churnguard.drift.report import SEVERITIES

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd


# Written for the terminal: the module docstring's reST markup would show up verbatim in --help.
DESCRIPTION = """Drift of a batch against a reference: per feature (PSI, KS or chi-squared), of
the prediction and of the labels, with the batch's severity: stable, moderate
or critical."""
EXIT_CODES = """exit codes:
  0  the report was produced (its severity is in the output), below --fail-on
  1  the report's severity is at or above --fail-on
  2  a bad argument, config or input (one line on stderr)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnguard drift",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("ref", type=Path, help="reference profile (.json) or reference data (.parquet)")
    parser.add_argument(
        "cur", help="current batch: a parquet file, or a partition folder of parquet files (path, file:// or s3:// URI)"
    )
    parser.add_argument("--json", action="store_true", help="print the full report as JSON")
    parser.add_argument(
        "--html",
        type=Path,
        default=None,
        metavar="OUT",
        help="write a self-contained HTML report here (plotly.js embedded: opens offline)",
    )
    parser.add_argument("--scores", default=None, metavar="COLUMN", help="batch column with model scores")
    parser.add_argument("--labels", default=None, metavar="COLUMN", help="batch column with 0/1 labels")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a drift.yaml value for this run, e.g. psi.moderate=0.2 (repeatable)",
    )
    parser.add_argument(
        "--fail-on",
        choices=SEVERITIES[1:],
        default=None,
        metavar="{moderate,critical}",
        help="exit 1 when the batch's severity is this level or above (default: never)",
    )
    return parser


def cli_main(argv: list[str]) -> int:
    """Run ``churnguard drift`` with ``argv`` (the arguments after ``drift``); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage (or --help); hand its code back, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    from churnguard.batches import UnreadableBatch
    from churnguard.drift import ReferenceProfile, drift_report, fit_profile, render_html

    try:
        cfg = load_drift_config(_overrides(args.set))
        if args.ref.suffix == ".json":
            profile = ReferenceProfile.from_json(args.ref.read_text())
        else:
            import pandas as pd

            profile = fit_profile(pd.read_parquet(args.ref), load_dataset_config(), cfg)
        batch = _batch(args.cur, profile.columns(args.scores, args.labels))
        report = drift_report(profile, batch, cfg, scores=args.scores, labels=args.labels)
    except FileNotFoundError as exc:
        print(f"churnguard drift: {exc.filename or exc}: no such file", file=sys.stderr)
        return 2
    except UnreadableBatch as exc:
        print(f"churnguard drift: {args.cur}: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, ValueError, OSError) as exc:
        print(f"churnguard drift: {exc}", file=sys.stderr)
        return 2
    if args.html:
        render_html(report, profile, args.html, plotlyjs="inline")  # a file handed around must open offline
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        print(_summary(report.to_dict()))
    if args.fail_on and SEVERITIES.index(report.severity) >= SEVERITIES.index(args.fail_on):
        return 1
    return 0


def _batch(location: str, columns: list[str]) -> Iterator[pd.DataFrame] | pd.DataFrame:
    """A local parquet file streamed by row groups (only ``columns``); anything else (a partition folder, a
    ``file://`` or ``s3://`` URI) read whole by the reader ``churnguard validate`` uses."""
    from churnguard.batches import file_chunks, read_batch

    if Path(location).is_file():
        return file_chunks(location, columns)
    return read_batch(location)


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got '{pair}'")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)  # numbers and booleans keep their type
    return out


def _summary(rep: dict[str, Any]) -> str:
    lines = [
        f"severity {rep['severity']}: {rep['n_drifted']}/{rep['n_features']} features drifted, "
        f"weighted PSI {rep['weighted_psi']:.4f}, {rep['n_rows']} rows"
    ]
    for name, f in rep["features"].items():
        psi = "–" if f["psi"] is None else f"{f['psi']:.4f}"
        lines.append(f"  {name:<22} {f['severity']:<9} psi {psi:<8} {' '.join(f['notes'])}")
    if rep["prediction"]:
        lines.append(f"  {'(prediction)':<22} {rep['prediction']['severity']:<9} psi {rep['prediction']['psi']}")
    return "\n".join(lines)
