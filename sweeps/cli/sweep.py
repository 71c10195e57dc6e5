"""``steadytune sweep SPEC [--set KEY=VALUE] [--address ADDR] [--dry-run]``: run a sweep on
Ray Tune."""

from __future__ import annotations

import argparse


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Where the sweep runs and what it does at the end (shared with ``resume``)."""
    p.add_argument(
        "--address",
        default=None,
        help="an existing Ray cluster: auto, host:port or ray://host:10001 "
        "(default: start a local instance)",
    )
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local instance")
    p.add_argument(
        "--no-dashboard", action="store_true", help="local instance without the dashboard"
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also show the trials' own output and Tune's banner (always kept in Ray's "
        "session logs under the run dir)",
    )


def add_data_dir_argument(p: argparse.ArgumentParser) -> None:
    """``--data-dir``: where the spec's relative data files are (shared with ``submit``)."""
    p.add_argument(
        "--data-dir",
        default=None,
        help="read the spec's relative data file paths from this directory "
        "(default: the spec's data_dir key, else the spec file's folder)",
    )


def add_set_argument(p: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable): spec overrides (shared with ``submit``)."""
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY.SUB=VALUE",
        help="override a spec value before it is validated (repeatable), e.g. --set seeds=5 "
        "--set defaults.optim.lr=1e-4 --set max_concurrent=1",
    )


def run_and_report(
    args: argparse.Namespace, spec, run_dir: str | None, dry_run: bool, restart: bool = False
) -> int:
    """Run (or continue) the sweep, write its report, and exit 1 if any trial failed."""
    from sweeps.driver import run_sweep

    try:
        summary = run_sweep(
            spec,
            address=args.address,
            run_dir=run_dir,
            dry_run=dry_run,
            restart=restart,
            num_cpus=args.num_cpus,
            dashboard=not args.no_dashboard,
            verbose=args.verbose,
        )
    except KeyboardInterrupt:  # no report of a sweep cut short: resume it
        where = run_dir or spec.run_dir()
        raise KeyboardInterrupt(f"{_unfinished(where)} — steadytune resume {where}") from None
    if not args.no_report:
        from sweeps.cli.report import report_after_sweep

        report_after_sweep(summary)
    failed = sum(summary.get(k, {}).get("errors", 0) for k in ("grid", "optuna", "race", "confirm"))
    return 1 if failed else 0


def _unfinished(run_dir: str) -> str:
    """How many of a run dir's planned trials have not ended, in words."""
    from sweeps.progress import read_progress
    from trainer.errors import UserInputError

    try:
        return f"{read_progress(run_dir).unfinished} trial(s) unfinished"
    except (UserInputError, OSError):  # interrupted before its sweep.json was written
        return "nothing finished yet"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a sweep (grid and/or Optuna λ search) on Ray Tune",
        description="Run the sweep a spec describes. Without --address, a local Ray "
        "instance on this machine (on 127.0.0.1, temp dir under the run dir). On an existing "
        "run directory the sweep continues where it stopped and runs only new or unfinished "
        "trials; a run directory recorded with a different spec is refused (see --restart).",
    )
    p.add_argument("spec", help="sweep spec (YAML)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything a run would (data, model, run dir), print the trial table "
        "with what is done and new; start nothing",
    )
    add_set_argument(p)
    p.add_argument("--run-dir", default=None, help="override <storage>/<name>")
    p.add_argument(
        "--restart",
        action="store_true",
        help="move an existing run directory aside (to <run dir>.old-<time>, never deleted) "
        "and start the sweep anew",
    )
    add_data_dir_argument(p)
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sweeps.spec import load_spec

    spec = load_spec(args.spec, data_dir=args.data_dir, overrides=args.overrides)
    run_dir = str(Path(args.run_dir).absolute()) if args.run_dir else None
    return run_and_report(args, spec, run_dir, args.dry_run, restart=args.restart)
