"""``steadytune status RUN_DIR|JOB_ID [--address …]``: how far a sweep has got.

A run directory is read from its files (``sweeps.progress``), without Ray; anything else
is taken for the id of a submitted job and asked of the job server.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeps.progress import Progress


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "status",
        help="progress of a run directory, or status of a submitted sweep job",
        description="TARGET is a run directory (a local or shared <storage>/<name> holding "
        "sweep.json): print its trials planned, finished, failed and unfinished per dataset "
        "and strategy, and the primary dev metric so far per configuration (mean ± std, n), "
        "read from its files without starting Ray. Any other TARGET is the id of a job "
        "`steadytune submit` printed: print the job's status from the job server.",
    )
    p.add_argument("target", metavar="TARGET", help="run directory, or submitted job id")
    p.add_argument("--address", default=None, help="job server of a job id, e.g. http://HEAD:8265")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from trainer.layout import SWEEP_FILE

    if (Path(args.target) / SWEEP_FILE).is_file():
        from sweeps.progress import read_progress
        from sweeps.results import warn_damaged

        warn_damaged(args.target)
        print_progress(read_progress(args.target))
    else:
        _print_job(args.target, args.address)
    return 0


def _looks_like_path(target: str) -> bool:
    """A target that names a place on disk, or remote storage, cannot be a job id."""
    return Path(target).exists() or "/" in target or os.sep in target


def _print_job(target: str, address: str | None) -> None:
    """The job's status; one line naming ``target`` when it is no run dir and no job."""
    from sweeps import jobs
    from trainer.errors import ConfigError
    from trainer.layout import SWEEP_FILE

    if _looks_like_path(target):
        raise ConfigError(
            f"{target} is not a run directory: it holds no {SWEEP_FILE} (status reads a local "
            "or shared run directory, or asks the job server about a submitted job id)"
        )
    try:
        info = jobs.status(target, address)
    except jobs.JobError as err:
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{target!r} is neither a run directory nor a job: {reason}") from None
    for key, value in info.items():
        print(f"{key}: {value}")


def print_progress(progress: Progress) -> None:
    """A summary line, the trials per (dataset, strategy), then the scores per
    configuration. Long names fold rather than end in "…" (a pipe gets 80 columns)."""
    from rich.console import Console

    console = Console()
    console.print(
        f"sweep {progress.name!r} in {progress.run_dir}: {progress.finished} of "
        f"{progress.planned} trials finished, {progress.failed} failed, "
        f"{progress.unfinished} unfinished",
        soft_wrap=True,
    )
    console.print(_counts_table(progress))
    if progress.scores:
        console.print(_scores_table(progress))
    else:
        console.print("no finished trial yet")


def _table(columns: tuple[str, ...], numeric: tuple[str, ...], **kwargs: Any):
    """A table without vertical rules (narrow enough for 80 columns)."""
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, **kwargs)
    for col in columns:
        if col in numeric:
            table.add_column(col, justify="right", no_wrap=True)
        else:
            table.add_column(col, overflow="fold")
    return table


def _counts_table(progress: Progress):
    counts = ("planned", "finished", "failed", "unfinished")
    table = _table(("dataset", "strategy", "kind", *counts), counts, title="trials")
    for c in progress.cells:
        table.add_row(c.dataset, c.strategy, c.kind,
                      *map(str, (c.planned, c.finished, c.failed, c.unfinished)))  # fmt: skip
    table.add_section()
    totals = (progress.planned, progress.finished, progress.failed, progress.unfinished)
    table.add_row("total", "", "", *map(str, totals))
    if any(c.kind == "race" for c in progress.cells):
        table.caption = "race: planned is the most a seed race may run"
    return table


def _scores_table(progress: Progress):
    columns = ("dataset", "configuration", "metric", "mean ± std", "n")
    table = _table(columns, ("mean ± std", "n"), title="primary dev metric, finished trials")
    for s in progress.scores:
        spread = "-" if math.isnan(s.std) else f"{s.std:.4f}"
        table.add_row(s.dataset, s.config, s.metric, f"{s.mean:.4f} ± {spread}", str(s.n))
    return table
