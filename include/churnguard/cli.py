"""The ``churnguard`` command: simulate, bootstrap, run-days, status, timeline, serve, drift, validate.

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
DELEGATED = {"drift": "churnguard.cli_drift", "validate": "churnguard.cli_validate"}

# Written for the terminal: a docstring's reST markup would show up verbatim in --help.
DESCRIPTION = """Keep a customer-churn model healthy: simulate batches, train the first champion,
run the daily monitoring steps without Airflow, and report what happened."""
EXIT_CODES = """exit codes:
  0  done
  1  run-days: some day's batch was missing or quarantined (the other days ran);
     status --require-champion: no champion is registered
  2  a bad argument, config or input (one line on stderr)
  3  the MLflow server did not answer (one line naming it and the call)

'churnguard COMMAND --help' lists the options of a command."""


class _CommandListFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the exit-code table as written and the command list in one column: argparse (3.11) sizes that
    column without the command names' extra indent, so the longest name would push its help to a new line."""

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            self._action_max_length += 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnguard", description=DESCRIPTION, epilog=EXIT_CODES, formatter_class=_CommandListFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=description)

    sim = command(
        "simulate",
        "write daily landing batches (and their delayed labels)",
        "Write one landing batch per day (and each day's labels, --label-delay days later) drawn from "
        "held-out reference customers, optionally with a drift scenario. Prints a JSON summary.",
    )
    sim.add_argument("--start", type=date.fromisoformat, required=True, help="first day to write, YYYY-MM-DD")
    sim.add_argument("--days", type=int, required=True, help="number of consecutive days to write")
    sim.add_argument(
        "--scenario",
        default="none",
        help="drift scenario: none, gradual, sudden, concept, seasonal, new_category or "
        "class_balance; combine with '+', e.g. sudden+concept (default: none)",
    )
    sim.add_argument(
        "--onset",
        type=date.fromisoformat,
        default=None,
        help="first day of the drift, YYYY-MM-DD (default: drift from the first day)",
    )
    sim.add_argument(
        "--intensity",
        type=float,
        default=1.0,
        help="scale of the scenario's effect; 0 is none, 1 the dataset's configured size (default: 1.0)",
    )
    sim.add_argument("--rows-per-day", type=int, default=500, help="customers in each day's batch (default: 500)")
    sim.add_argument(
        "--label-delay", type=int, default=7, help="days after its batch that a day's labels land (default: 7)"
    )
    sim.add_argument(
        "--seed", type=int, default=0, help="random seed; the same seed writes the same batches (default: 0)"
    )
    sim.add_argument("--dataset", default=None, help="dataset config name (default: CHURNGUARD_DATASET)")
    sim.add_argument(
        "--data-url", default=None, help="data root, a path, file:// or s3:// URL (default: CHURNGUARD_DATA_URL)"
    )

    boot = command(
        "bootstrap",
        "train, register and make champion the first model",
        "Train a model on the reference data, register it in MLflow and make it the champion if "
        "there is none yet. Prints a JSON summary.",
    )
    boot.add_argument("--dataset", default=None, help="dataset config name (default: CHURNGUARD_DATASET)")
    boot.add_argument("--seed", type=int, default=0, help="random seed of the training run (default: 0)")
    boot.add_argument(
        "--replace-champion",
        action="store_true",
        help="make the new version champion even when there is one (it becomes 'previous')",
    )

    days = command(
        "run-days",
        "the daily monitoring steps for a range of days, without Airflow",
        "Run the daily DAG's steps (ingest, validate, score, drift, performance, failure risk, "
        "decision, retrain, promotion, publish) for each day in turn, in this process. A day whose "
        "batch is missing or quarantined is reported and the next day goes on.",
    )
    days.add_argument("--start", type=date.fromisoformat, required=True, help="first day, YYYY-MM-DD")
    days.add_argument(
        "--end", type=date.fromisoformat, default=None, help="last day, YYYY-MM-DD, not after today (default: --start)"
    )
    days.add_argument(
        "--force-retrain", action="store_true", help="train a challenger on every day, whatever the day's decision"
    )
    days.add_argument("--dry-run", action="store_true", help="train challengers but register and promote nothing")

    stat = command(
        "status",
        "the deployed models, the last decision and the landed partitions",
        "Show the churn model's champion, challenger and previous versions with their test metrics, "
        "the failure-risk model, the last day's decision and the landed partitions.",
    )
    stat.add_argument("--json", action="store_true", help="print the status as JSON")
    stat.add_argument(
        "--require-champion",
        action="store_true",
        help="exit 1 when no champion is registered (for scripts that need one)",
    )

    tl = command(
        "timeline",
        "the monitored days and the milestones (drift, risk, retrain, promotion)",
        "One line per monitored day (validation, drift, failure risk, measured AUC, decision), then "
        "the milestones: first drift, first risk alert, the early warning (the risk alert's lead over "
        "the labels' confirmation of a failure), the change points retraining used, challengers "
        "registered, promotions.",
    )
    tl.add_argument("--json", action="store_true", help="print the days and milestones as JSON")

    srv = command(
        "serve",
        "the prediction service (FastAPI under uvicorn)",
        "Answer churn predictions and explanations over HTTP from the registry's champion (and challenger, "
        "as serving.yaml says), following the aliases without downtime. Needs CHURNGUARD_API_KEYS (or "
        "CHURNGUARD_API_KEYS_FILE). Routes and settings: docs/serving.md.",
    )
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    srv.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    srv.add_argument("--workers", type=int, default=1, help="worker processes, each with its own models (default: 1)")

    for name, helptext in (
        ("drift", "drift of a batch against a reference profile or data"),
        ("validate", "validate a batch against the champion's reference profile"),
    ):
        sub.add_parser(name, help=helptext, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # "Found credentials in environment variables."
    if argv and argv[0] in DELEGATED:
        return importlib.import_module(DELEGATED[argv[0]]).cli_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "simulate":
            from churnguard.config import load_dataset_config
            from churnguard.dataroot import DataRoot
            from churnguard.landing import simulate
            from churnguard.simulate import Scenario

            summary = simulate(
                args.start,
                args.days,
                Scenario.parse(args.scenario, args.onset, args.intensity),
                rows_per_day=args.rows_per_day,
                label_delay=args.label_delay,
                seed=args.seed,
                root=DataRoot.open(args.data_url),
                cfg=load_dataset_config(args.dataset),
            )
            print(json.dumps(summary.to_dict(), indent=2))
        elif args.command == "bootstrap":
            from churnguard.bootstrap import bootstrap, summary_json
            from churnguard.context import open_bootstrap

            print(summary_json(bootstrap(open_bootstrap(args.dataset), args.seed, args.replace_champion)))
        elif args.command == "run-days":
            from churnguard.context import RunOptions
            from churnguard.steps import run_days

            end = args.end or args.start
            options = RunOptions(force_retrain=args.force_retrain, dry_run=args.dry_run)
            results, failed = run_days(args.start, end, options)
            for day, reason in failed.items():
                print(f"churnguard run-days: {day}: {reason}", file=sys.stderr)
            if failed:
                total = len(results) + len(failed)
                print(
                    f"churnguard run-days: {len(failed)} of {total} days failed: {', '.join(failed)}", file=sys.stderr
                )
                return 1
        elif args.command == "timeline":
            from churnguard.status import format_timeline, timeline

            result = timeline()
            print(json.dumps(result, indent=1, default=str) if args.json else format_timeline(result))
        elif args.command == "serve":
            from churnguard.serving.app import serve

            if args.workers < 1:
                raise ValueError(f"--workers: {args.workers}; at least 1")
            serve(args.host, args.port, args.workers)
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
