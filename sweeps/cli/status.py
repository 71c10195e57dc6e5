"""``steadytune status JOB_ID [--address …]``: a submitted sweep's job status."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="status of a submitted sweep job")
    p.add_argument("job_id")
    p.add_argument("--address", default=None, help="job server, e.g. http://HEAD:8265")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeps import jobs

    info = jobs.status(args.job_id, args.address)
    for key, value in info.items():
        print(f"{key}: {value}")
    return 0
