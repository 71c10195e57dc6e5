"""``steadytune submit SPEC --address http://HEAD:8265``: run a sweep as a Ray Job."""

from __future__ import annotations

import argparse

from sweeps.cli.sweep import add_data_dir_argument, add_set_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "submit",
        help="submit a sweep to a Ray cluster as a job",
        description="Submit the sweep through Ray's Jobs SDK. The spec and small local data "
        "files travel with the job; RAY_API_SERVER_ADDRESS / RAY_ADDRESS override --address "
        "as in Ray; token auth (RAY_AUTH_MODE=token) is used when the cluster has it.",
    )
    p.add_argument("spec", help="sweep spec (YAML)")
    p.add_argument("--address", default=None, help="job server, e.g. http://HEAD:8265")
    p.add_argument(
        "--shared-data",
        action="store_true",
        help="do not upload local data files: their paths are valid on every node",
    )
    add_data_dir_argument(p)
    p.add_argument("--storage", default=None, help="override the spec's storage (shared path/URI)")
    add_set_argument(p)
    p.add_argument("--submission-id", default=None, help="job id to use")
    p.add_argument("--wait", action="store_true", help="wait for the job and print its logs")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sweeps import jobs

    job_id = jobs.submit(
        args.spec,
        args.address,
        shared_data=args.shared_data,
        storage=args.storage,
        data_dir=args.data_dir,
        overrides=args.overrides,
        submission_id=args.submission_id,
    )
    print(job_id)
    if args.wait:
        final = jobs.wait(job_id, args.address, timeout_s=24 * 3600)
        print(jobs.logs(job_id, args.address))
        print(f"job {job_id}: {final}")
        return 0 if final == "SUCCEEDED" else 1
    return 0
