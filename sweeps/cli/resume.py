"""``steadytune resume RUN_DIR``: continue a sweep whose driver died."""

from __future__ import annotations

import argparse

from sweeps.cli.sweep import add_cluster_arguments, run_and_report


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resume",
        help="continue a sweep whose driver stopped",
        description="Continue the sweep in RUN_DIR: finished trials are not run again, "
        "unfinished ones resume from their last checkpoint, the Optuna study continues.",
    )
    p.add_argument("run_dir", help="the sweep's run directory (<storage>/<name>)")
    add_cluster_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sweeps.driver import load_run_spec
    from sweeps.rundir import is_remote
    from trainer.errors import ConfigError

    if is_remote(args.run_dir):
        return run_and_report(args, load_run_spec(args.run_dir), args.run_dir, dry_run=False)
    if not Path(args.run_dir).is_dir():
        raise ConfigError(f"{args.run_dir} is not a directory (give a sweep's run directory)")
    run_dir = str(Path(args.run_dir).resolve())
    return run_and_report(args, load_run_spec(run_dir), run_dir, dry_run=False)
