"""``steadytune resume RUN_DIR``: continue a sweep whose driver died."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "resume",
        help="continue a sweep whose driver stopped",
        description="Continue the sweep in RUN_DIR: finished trials are not run again, "
        "unfinished ones resume from their last checkpoint, the Optuna study continues.",
    )
    p.add_argument("run_dir", help="the sweep's run directory (<storage>/<name>)")
    p.add_argument("--address", default=None, help="an existing Ray cluster (default: local)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local instance")
    p.add_argument(
        "--no-dashboard", action="store_true", help="local instance without the dashboard"
    )
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sweeps.driver import load_run_spec, run_sweep

    run_dir = str(Path(args.run_dir).resolve())
    summary = run_sweep(
        load_run_spec(run_dir),
        address=args.address,
        run_dir=run_dir,
        num_cpus=args.num_cpus,
        dashboard=not args.no_dashboard,
    )
    if not args.no_report:
        from sweeps.cli.report import report_after_sweep

        report_after_sweep(summary)
    failed = sum(summary.get(k, {}).get("errors", 0) for k in ("grid", "optuna"))
    return 1 if failed else 0
