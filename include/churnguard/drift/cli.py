"""``churnguard drift REF CUR [--json] [--html OUT]``: drift of a parquet batch against a reference.

REF is a profile JSON file (from ``ReferenceProfile.to_json``) or a reference parquet, profiled on the
fly with the configured dataset schema. CUR is read by row groups, never whole. Exit code 0 when the
report was produced (its severity is in the output), 2 for input the user can fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from churnguard.config import ConfigError, load_dataset_config, load_drift_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnguard drift", description=__doc__.splitlines()[0])
    parser.add_argument("ref", type=Path, help="reference profile (.json) or reference data (.parquet)")
    parser.add_argument("cur", type=Path, help="current batch (.parquet)")
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
        help="override a drift.yaml value for this run, e.g. psi.moderate=0.2",
    )
    return parser


def cli_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    from churnguard.drift import ReferenceProfile, drift_report, fit_profile, render_html

    try:
        cfg = load_drift_config(_overrides(args.set))
        if args.ref.suffix == ".json":
            profile = ReferenceProfile.from_json(args.ref.read_text())
        else:
            import pandas as pd

            profile = fit_profile(pd.read_parquet(args.ref), load_dataset_config(), cfg)
        report = drift_report(profile, args.cur, cfg, scores=args.scores, labels=args.labels)
    except FileNotFoundError as exc:
        print(f"churnguard drift: {exc.filename or exc}: no such file", file=sys.stderr)
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
    return 0


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
        lines.append(
            f"  {'(prediction)':<22} {rep['prediction']['severity']:<9} psi {rep['prediction']['psi']}"
        )
    return "\n".join(lines)
