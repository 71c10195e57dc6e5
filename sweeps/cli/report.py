"""``steadytune report RUN_DIR [RUN_DIR ...] [--out DIR]``: tables, selection and figures
of a sweep (or of several, e.g. a study's grid and its λ search, as one report)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from analysis import DecisionSettings
    from sweeps.race import DatasetRace


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write report.md/.html, summary.csv and selection.yaml for a run",
        description="Analyse a sweep's run directory (also a partial one, or one copied off "
        "a cluster): seed statistics per configuration, paired comparison with vanilla, the "
        "K/λ selection, seed ensembles and figures. Prints the headline table.",
    )
    p.add_argument(
        "run_dir",
        nargs="+",
        help="the sweep's run directory (<storage>/<name>); several are reported as one",
    )
    p.add_argument(
        "--out", default=None, help="output directory (default: the first RUN_DIR/report)"
    )
    p.add_argument("--title", default=None, help="the report's title")
    p.add_argument(
        "--intro",
        default=None,
        help="a Markdown file (e.g. a study's written findings) placed after the summary line",
    )
    p.add_argument(
        "--markdown",
        default=None,
        help="also write the Markdown report to this path, figures in <stem>-figures/ beside "
        "it (e.g. docs/results.md)",
    )
    p.add_argument(
        "--bootstrap",
        action="store_true",
        help="bootstrap confidence intervals of the seed means (default: Student-t)",
    )
    p.add_argument("--no-plots", action="store_true", help="tables only, no figures")
    p.set_defaults(run=run)


def print_headline(report, stream=None) -> None:
    """The headline table (and the selection rule) in the terminal, with rich."""
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout)
    console.width = max(console.width, 150)  # the table is wide; wrapping it is worse
    split = (report.selection_yaml or {}).get("split", "dev")
    table = Table(title=f"steadytune: verdict and selected configuration vs vanilla ({split})")
    for col in report.headline.columns:
        table.add_column(str(col), overflow="fold")
    from rich.markup import escape

    for row in report.headline.itertuples(index=False):
        table.add_row(*(escape(str(v)) for v in row))  # labels hold "[averaged]"
    console.print(table)
    from analysis._sections import verdict_line

    for dd in report.decisions.values():
        console.print(f"verdict {verdict_line(dd)}", soft_wrap=True, highlight=False, markup=False)
    for warning in report.warnings:  # Markdown in the report; as plain text here
        console.print(f"warning: {warning.replace('**', '')}", soft_wrap=True,
                      highlight=False, markup=False, style="yellow")  # fmt: skip
    if len(report.missing):
        console.print(f"[yellow]partial sweep: {len(report.missing)} trial(s) not finished[/]")


class Decided(TypedDict):
    """The keyword arguments of ``analysis.write_report`` that only a sweep knows."""

    settings: DecisionSettings | None
    races: dict[str, DatasetRace]
    race_keys: list[str]


def decided_by_spec(run_dirs: Sequence[str | Path]) -> Decided:
    """``analysis.write_report``'s ``settings``, ``races`` and ``race_keys`` for some run
    directories: how their sweeps decided, which only the recorded specs say (analysis
    reads results, never a spec). Each dataset is decided by the ``decision:`` of the run
    that ran it (the first run's also for results no spec names); the runs must decide
    on one split, which the report's tables read. Each raced dataset's race is replayed
    from its trials, with the trial keys it gave."""
    from dataclasses import replace

    from sweeps.race import planned_keys, run_decisions
    from trainer.errors import ConfigError

    settings: DecisionSettings | None = None
    own: dict[str, DecisionSettings] = {}
    races: dict[str, DatasetRace] = {}
    for run_dir in run_dirs:
        found, datasets, raced = run_decisions(run_dir)
        if found is not None and settings is not None and found.split != settings.split:
            raise ConfigError(
                f"{run_dir}: decides on the '{found.split}' split (decision.split), the "
                f"runs before it on '{settings.split}'; report them separately"
            )
        settings = settings or found
        # a dataset in two runs is the first run's: its settings and its race alike
        if found is not None:
            own.update((d, own.get(d, found)) for d in datasets)
        races.update((d, races.get(d, race)) for d, race in raced.items())
    race_keys = [k for r in races.values() for k in planned_keys(r)]
    if settings is not None:
        settings = replace(settings, by_dataset=tuple(sorted(own.items())))
    return Decided(settings=settings, races=races, race_keys=race_keys)


def report_after_sweep(summary: dict) -> None:
    """Write and print the report of the run a sweep just finished (local run dirs only)."""
    import sys

    from analysis import AnalysisError, write_report

    run_dir = str(summary["run_dir"])
    if summary.get("dry_run") or "://" in run_dir:
        return
    try:
        report = write_report(run_dir, **decided_by_spec([run_dir]))
    except AnalysisError as err:  # e.g. no trial finished
        print(f"steadytune: no report: {err}", file=sys.stderr)
        return
    print_headline(report)
    print(f"report: {report.out_dir / 'report.html'}")


def run(args: argparse.Namespace) -> int:
    from analysis import write_report
    from sweeps.results import ensure_results, warn_damaged
    from sweeps.rundir import check_owned, check_writable
    from sweeps.rundir import claim as claim_dir
    from trainer.errors import ConfigError
    from trainer.layout import REPORT_DIR, REPORT_MARKER, RUN_MARKER, SWEEP_FILE

    intro = None
    if args.intro is not None:
        if not Path(args.intro).is_file():
            raise ConfigError(f"--intro: no such file {args.intro}")
        try:
            intro = Path(args.intro).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"--intro: {args.intro} is not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start})") from None  # fmt: skip
    for run_dir in args.run_dir:
        path = Path(run_dir)
        if not path.exists():
            raise ConfigError(f"{run_dir}: no such run directory")
        if path.is_dir() and ((path / RUN_MARKER).is_file() or (path / SWEEP_FILE).is_file()):
            check_owned(path, RUN_MARKER, "the run directory")
            warn_damaged(path)
            ensure_results(path)  # derived data: rebuilt if missing, corrupt or behind
    out = Path(args.out) if args.out else Path(args.run_dir[0]) / REPORT_DIR
    # the default report dir of a run dir steadytune made is its own; anywhere else, a
    # directory is written only if it is new, empty or a steadytune report
    own = not args.out and (Path(args.run_dir[0]) / RUN_MARKER).is_file()
    created = not out.exists()
    if not own:
        check_writable(out, "--out")
        check_owned(out, REPORT_MARKER, "--out" if args.out else "the report directory")
        claim_dir(out, REPORT_MARKER, "--out")
    try:
        report = write_report(
            args.run_dir,
            args.out,
            ci="bootstrap" if args.bootstrap else "t",
            plots=not args.no_plots,
            title=args.title,
            intro=intro,
            markdown=args.markdown,
            **decided_by_spec(args.run_dir),
        )
    except Exception:
        if created and out.is_dir() and [p.name for p in out.iterdir()] == [REPORT_MARKER]:
            import shutil

            shutil.rmtree(out)  # refused: leave nothing behind
        raise
    print_headline(report)
    print(f"report: {report.out_dir / 'report.html'} (and report.md, summary.csv, selection.yaml)")
    return 0
