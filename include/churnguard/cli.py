"""The ``churnguard`` command: simulate, bootstrap, run-days, status, timeline, drift, validate.

Errors a user can fix (bad config, bad arguments, bad input) end as one line on stderr, exit code 2; an MLflow
server that does not answer is one line naming it and the call, exit code 3. ``run-days`` exits 1 when some day's
batch was missing or quarantined (one line each), after running every other day.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from datetime import date

from churnguard.config import ConfigError

# Subcommands implemented in their own packages, which parse their own arguments.
DELEGATED = {"drift": "churnguard.drift.cli", "validate": "churnguard.validation.cli"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churnguard", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write daily landing batches (and delayed labels)")
    sim.add_argument("--start", type=date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    sim.add_argument("--days", type=int, required=True)
    sim.add_argument("--scenario", default="none", help="none, gradual, sudden, concept, seasonal, "
                     "new_category, class_balance; combine with '+'")
    sim.add_argument("--onset", type=date.fromisoformat, default=None, help="first day of the drift")
    sim.add_argument("--intensity", type=float, default=1.0)
    sim.add_argument("--rows-per-day", type=int, default=500)
    sim.add_argument("--label-delay", type=int, default=7)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--dataset", default=None)
    sim.add_argument("--data-url", default=None, help="data root (default: CHURNGUARD_DATA_URL)")

    boot = sub.add_parser("bootstrap", help="train, register and make champion the first model")
    boot.add_argument("--dataset", default=None)
    boot.add_argument("--seed", type=int, default=0)
    boot.add_argument("--replace-champion", action="store_true")

    days = sub.add_parser("run-days", help="the daily monitoring steps for a range of days, without Airflow")
    days.add_argument("--start", type=date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    days.add_argument("--end", type=date.fromisoformat, default=None, help="last day (default: --start)")
    days.add_argument("--force-retrain", action="store_true")
    days.add_argument("--dry-run", action="store_true")

    stat = sub.add_parser("status", help="champion/challenger versions, metrics and landed partitions")
    stat.add_argument("--json", action="store_true")
    stat.add_argument("--require-champion", action="store_true", help="exit 1 when there is no champion")

    tl = sub.add_parser("timeline", help="the monitored days and the milestones (drift, risk, retrain, promotion)")
    tl.add_argument("--json", action="store_true")

    for name, helptext in (("drift", "drift of a batch against a reference"),
                           ("validate", "validate a batch (exit 0 pass, 1 warn, 2 fail, 3 unreadable)")):
        sub.add_parser(name, help=helptext, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if argv and argv[0] in DELEGATED:
        return importlib.import_module(DELEGATED[argv[0]]).cli_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "simulate":
            from churnguard.config import load_dataset_config
            from churnguard.simulate import Scenario, simulate
            from churnguard.storage import open_storage

            summary = simulate(args.start, args.days, Scenario.parse(args.scenario, args.onset, args.intensity),
                               rows_per_day=args.rows_per_day, label_delay=args.label_delay, seed=args.seed,
                               storage=open_storage(args.data_url), cfg=load_dataset_config(args.dataset))
            print(json.dumps(summary.to_dict(), indent=2))
        elif args.command == "bootstrap":
            from churnguard.training import bootstrap, summary_json

            print(summary_json(bootstrap(args.dataset, args.seed, args.replace_champion)))
        elif args.command == "run-days":
            from churnguard.daily import run_days

            end = args.end or args.start
            results, failed = run_days(args.start, end, force_retrain=args.force_retrain, dry_run=args.dry_run)
            for day, reason in failed.items():
                print(f"churnguard run-days: {day}: {reason}", file=sys.stderr)
            if failed:
                total = len(results) + len(failed)
                print(f"churnguard run-days: {len(failed)} of {total} days failed: {', '.join(failed)}",
                      file=sys.stderr)
                return 1
        elif args.command == "timeline":
            from churnguard.status import format_timeline, timeline

            result = timeline()
            print(json.dumps(result, indent=1, default=str) if args.json else format_timeline(result))
        elif args.command == "status":
            from churnguard.status import format_status, project_status

            status = project_status()
            print(json.dumps(status, indent=2) if args.json else format_status(status))
            if args.require_champion and "champion" not in status["models"]:
                print("churnguard status: no champion registered", file=sys.stderr)
                return 1
    except (ConfigError, ValueError) as exc:
        print(f"churnguard {args.command}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # a RegistryError (MLflow could not answer) is one line, exit 3; else a bug
        from churnguard.registry import RegistryError

        if not isinstance(exc, RegistryError):
            raise
        print(f"churnguard {args.command}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
