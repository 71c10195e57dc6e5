"""``steadytune logs JOB_ID [--address …] [--follow]``: a submitted sweep's output."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "logs",
        help="logs of a submitted sweep job",
        description="Print the output of a sweep job submitted with `steadytune submit` "
        "(the driver's: the trial table, progress, failures), as the job server keeps it; "
        "with --follow, stream it until the job ends.",
    )
    p.add_argument("job_id", metavar="JOB_ID", help="the job id `steadytune submit` printed")
    p.add_argument("--address", default=None, help="job server, e.g. http://HEAD:8265")
    p.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeps import jobs

    if args.follow:
        jobs.follow_logs(args.job_id, args.address)
    else:
        print(jobs.logs(args.job_id, args.address), end="")
    return 0
