"""``steadytune stop JOB_ID [--address …]``: stop a submitted sweep."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "stop",
        help="stop a submitted sweep job",
        description="Stop a sweep job submitted with `steadytune submit`: the job server "
        "ends its driver and trials. Its run directory stays; `steadytune resume` or a new "
        "submit of the same spec continues it.",
    )
    p.add_argument("job_id", metavar="JOB_ID", help="the job id `steadytune submit` printed")
    p.add_argument("--address", default=None, help="job server, e.g. http://HEAD:8265")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeps import jobs

    stopped = jobs.stop(args.job_id, args.address)
    print(f"job {args.job_id}: {'stop requested' if stopped else 'already finished'}")
    return 0
