"""``churnguard validate BATCH [--profile PROFILE.json] [--dataset NAME] [--json]``.

Prints one line per failed or warned expectation, then a summary line, and exits with the batch's code:
0 pass, 1 warnings only, 2 an error-level expectation failed, 3 the batch is unreadable. Usage and config
errors (bad arguments, unknown dataset, unreadable profile) are one line on stderr, exit 2, and an MLflow
server that does not answer is one line, exit 3, like every other churnguard command.

Without ``--profile`` the batch is checked against the champion's reference profile, as the daily DAG
checks it, so the CLI and the DAG give the same verdict on the same batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from churnguard.config import ConfigError, DatasetConfig, load_dataset_config
from churnguard.registry import RegistryError

DESCRIPTION = """Validate a landing batch against a reference profile: one line per failed or
warned expectation, then a summary line."""
EXIT_CODES = """exit codes:
  0  the batch passed
  1  warnings only
  2  an error-level expectation failed, or a bad argument, config or profile
  3  the batch is unreadable, or the MLflow server did not answer"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnguard validate",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("batch", help="parquet file or partition folder: path, file:// or s3:// URI")
    parser.add_argument(
        "--profile",
        default=None,
        help="reference profile JSON: path, file:// or s3:// URI (default: the champion's, as "
        "the daily DAG uses; the reference train split's when there is no champion)",
    )
    parser.add_argument("--dataset", default=None, help="dataset config name (default: CHURNGUARD_DATASET)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of lines")
    return parser


def cli_main(argv: list[str]) -> int:
    """Run ``churnguard validate`` with ``argv`` (the arguments after ``validate``); returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage (or --help); hand its code back, don't exit
        return exc.code if isinstance(exc.code, int) else 2
    from churnguard.batches import batch_chunks
    from churnguard.validation import load_validation_config, validate_batch

    try:
        cfg = load_dataset_config(args.dataset)
        profile = load_profile(args.profile) if args.profile else champion_profile(cfg)
        validation_cfg = load_validation_config()
        result = validate_batch(batch_chunks(args.batch), cfg, profile, validation_cfg, name=args.batch)
    except (ConfigError, ValueError) as exc:
        print(f"churnguard validate: {exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(f"churnguard validate: {exc}", file=sys.stderr)
        return 3
    if args.json:
        print(result.to_json())
    else:
        for line in result.lines():
            print(line)
        print(result.summary())
    return result.exit_code


def champion_profile(cfg: DatasetConfig) -> dict[str, Any]:
    """The champion's reference profile, the one the daily DAG validates against. Before any champion is
    registered, the reference train split's: the data the first champion is trained on, so a batch checked
    before ``churnguard bootstrap`` gets the verdict that champion would give (said on stderr)."""
    from churnguard import registry
    from churnguard.config import load_model_config
    from churnguard.training import load_run_profile

    name = load_model_config().registered_name
    models = registry.ModelRegistry(name)
    champion = models.version_by_alias(registry.CHAMPION)
    if champion is None:
        print(
            f"churnguard validate: no {name}@{registry.CHAMPION} registered: checking against the reference "
            "train split",
            file=sys.stderr,
        )
        return train_split_profile(cfg)
    return load_run_profile(models, champion.run_id)


def train_split_profile(cfg: DatasetConfig) -> dict[str, Any]:
    """The drift reference profile of the dataset's reference train split, as a dict."""
    from churnguard.config import load_drift_config
    from churnguard.data import load_reference, split_reference
    from churnguard.drift import fit_profile

    train = split_reference(load_reference(cfg), cfg).train
    return fit_profile(train, cfg, load_drift_config()).to_dict()


def load_profile(location: str) -> dict[str, Any]:
    """A reference profile JSON from a path, ``file://`` or ``s3://`` URI (``ValueError`` if unusable)."""
    parsed = urlparse(location)
    try:
        if parsed.scheme == "s3":
            from churnguard.storage import open_s3_url

            storage, key = open_s3_url(location)
            raw = storage.read_bytes(key)
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
