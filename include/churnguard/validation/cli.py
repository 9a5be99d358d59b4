"""``churnguard validate BATCH [--profile PROFILE.json] [--dataset NAME] [--json]``.

Prints one line per failed or warned expectation, then a summary line, and exits with the batch's code:
0 pass, 1 warnings only, 2 an error-level expectation failed, 3 the batch is unreadable. Usage and config
errors (bad arguments, unknown dataset, unreadable profile) are one line on stderr, exit 2, like every
other churnguard command.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from churnguard.config import ConfigError, load_dataset_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnguard validate",
                                     description="Validate a landing batch against the reference profile.")
    parser.add_argument("batch", help="parquet file or partition folder: path, file:// or s3:// URI")
    parser.add_argument("--profile", default=None,
                        help="reference profile JSON (default: built from the reference train split)")
    parser.add_argument("--dataset", default=None, help="dataset config name (default: CHURNGUARD_DATASET)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of lines")
    return parser


def cli_main(argv: list[str]) -> int:
    """Run ``churnguard validate`` with ``argv`` (the arguments after ``validate``); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage (or --help); hand its code back, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    from churnguard.validation import reference_profile, validate_batch

    try:
        cfg = load_dataset_config(args.dataset)
        profile = load_profile(args.profile) if args.profile else reference_profile(cfg)
        result = validate_batch(args.batch, cfg, profile)
    except (ConfigError, ValueError) as exc:
        print(f"churnguard validate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(result.to_json())
    else:
        for line in result.lines():
            print(line)
        print(result.summary())
    return result.exit_code


def load_profile(location: str) -> dict[str, Any]:
    """A reference profile JSON from a path, ``file://`` or ``s3://`` URI (``ValueError`` if unusable)."""
    parsed = urlparse(location)
    try:
        if parsed.scheme == "s3":
            from churnguard.storage import open_storage

            raw = open_storage(f"s3://{parsed.netloc}").read_bytes(parsed.path.strip("/"))
        else:
            raw = Path(unquote(parsed.path) if parsed.scheme == "file" else location).read_bytes()
        data = json.loads(raw)
    except FileNotFoundError:
        raise ValueError(f"profile {location}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"profile {location}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"profile {location}: expected a JSON object, got {type(data).__name__}")
    return data
