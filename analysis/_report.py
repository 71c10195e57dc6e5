"""The report of a run: its statistics and figures as a list of blocks, rendered to
Markdown (figures as PNG files beside it) and to one self-contained HTML file, plus
``summary.csv`` and ``selection.yaml``.

``build_report`` is pure (DataFrames in, a :class:`Report` out): it computes the tables and
strings together the sections of ``analysis._sections``. ``write_report`` is the one
function that reads run directories and writes the files (``analysis._render`` renders).

How a run was decided is the sweep's knowledge, not the results': its spec's
``decision:`` settings and, for a raced run, each dataset's seed race replayed from its
trials (``sweeps.race``). The caller passes them in (``settings``, ``races``,
``race_keys``), so analysis reads result files only and never imports the sweeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from analysis._compare import compare_to_vanilla
from analysis._curves import size_curves
from analysis._decide import Decision, DecisionSettings
from analysis._load import dataset_names
from analysis._render import Block, render_body, render_html, render_markdown
from analysis._report_tables import decision_view, headline_table
from analysis._sections import (
    cost_section,
    curves_section,
    dataset_section,
    decision_section,
    ensembles_section,
    header_section,
    headline_section,
    missing_section,
    statistics_section,
    trust_warnings,
)
from analysis._select import candidate_id, decisions, select, selection_dict
from analysis._tables import missing_trials, primary_metrics, seed_stats
from trainer.layout import REPORT_DIR


class Race(Protocol):
    """What the report reads of one dataset's seed race (``sweeps.race.DatasetRace`` is
    one). Its decision replaces a fresh test at α, which would inflate the error after the
    race chose when to stop; its seeds per configuration say why some have fewer.
    ``stopped`` maps a configuration key to (the seeds it got, why it stopped)."""

    @property
    def configs(self) -> Sequence[str]: ...
    @property
    def seeds(self) -> Sequence[int]: ...
    @property
    def stopped(self) -> Mapping[str, tuple[int, str]]: ...
    @property
    def done(self) -> bool: ...
    @property
    def ended(self) -> str: ...
    @property
    def decision(self) -> Decision | None: ...
    @property
    def trials(self) -> int: ...
    def seeds_of(self, config: str) -> int: ...


@dataclass
class Report:
    """The blocks to render and the tables behind them, for a caller to use as data."""

    blocks: list[Block] = field(default_factory=list)
    headline: pd.DataFrame = field(default_factory=pd.DataFrame)
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)  # by training-set size
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)
    selection_yaml: dict = field(default_factory=dict)
    decisions: dict = field(default_factory=dict)  # dataset -> analysis.DatasetDecision
    decision_table: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)  # when not to trust the verdicts
    out_dir: Path | None = None  # set by write_report

    def add(self, kind: str, content: Any, name: str = "") -> None:
        """Append a block (a caller's own note or figure) before rendering."""
        self.blocks.append(Block(kind, content, name))

    def _repr_html_(self) -> str:
        """The body of ``report.html``, so a report shows itself in a notebook: its figures
        are drawn to PNG here, from the figures it holds, and nothing is written."""
        from analysis._plots import figure_png

        pngs = {b.name: figure_png(b.content) for b in self.blocks if b.kind == "figure"}
        return render_body(self, pngs)


def build_report(
    df: pd.DataFrame,
    *,
    histories: pd.DataFrame | None = None,
    ensembles: pd.DataFrame | None = None,
    expected_keys: list[str] | None = None,
    title: str = "steadytune report",
    intro: str | None = None,
    ci: str = "t",
    plots: bool = True,
    settings: DecisionSettings | None = None,
    races: Mapping[str, Race] | None = None,
) -> Report:
    """Every table and figure of the report, from the results (and optional histories,
    ensembles and the planned trial keys). Pure: nothing is read or written.

    ``settings`` are the spec's ``decision:`` (default α 0.05 and the metric's margin);
    ``races`` the replayed races of a raced run by dataset (``sweeps.race.run_decisions``),
    whose decisions are taken as the races took them.

    ``intro`` is Markdown written by a person (a study's findings), placed after the
    generated summary line: blank-line-separated paragraphs, ``#``-headings, lists
    and pipe tables (rendered as tables in HTML too)."""
    rep = Report()
    metric_of = primary_metrics(df)
    stats = seed_stats(df, ci=ci)
    rep.comparison = compare_to_vanilla(df)
    settings = settings or DecisionSettings()
    rep.decisions = decisions(df, settings=settings, races=races)
    rep.selection = select(df, settings=settings, decided=rep.decisions)
    rep.selection_yaml = selection_dict(rep.selection, rep.decisions, settings)
    rep.headline = headline_table(rep.selection, stats, rep.decisions, settings.split)
    rep.decision_table = decision_view(rep.decisions)
    status_of = {
        (ds, a.id): a.status for ds, dd in rep.decisions.items() for a in dd.decision.assessments
    }
    stats = stats.assign(
        status=[
            "reference"
            if r["strategy"] == "vanilla"
            else status_of.get((r["dataset"], candidate_id(r)), "—")
            for r in stats.to_dict("records")
        ]
    )
    rep.summary = stats
    rep.missing = missing_trials(df, expected_keys)
    rep.warnings = trust_warnings(df)

    rep.blocks += header_section(df, title, intro, expected_keys, rep.missing, bool(races))
    rep.blocks += headline_section(df, rep.headline, rep.decisions, settings.split)
    rep.blocks += decision_section(
        rep.selection, rep.decision_table, rep.decisions, settings,
        set(metric_of.values()), raced=bool(races),
    )  # fmt: skip
    for dataset in dataset_names(df):
        rep.blocks += dataset_section(
            df, dataset, metric_of.get(dataset, "accuracy"), stats, rep.comparison,
            rep.selection, histories, plots,
        )  # fmt: skip
    on_split = rep.comparison if settings.split == "dev" else None  # the verdicts' split
    rep.curves = size_curves(df, on_split, split=settings.split)
    rep.blocks += curves_section(df, rep.curves, plots)
    rep.blocks += ensembles_section(ensembles, df, metric_of)
    rep.blocks += missing_section(stats, rep.missing, set(races or {}), histories)
    rep.blocks += cost_section(df)
    rep.blocks += statistics_section()
    return rep


def _load_runs(
    run_dirs: list[Path],
) -> tuple[pd.DataFrame, list[str] | None, pd.DataFrame | None]:
    """The results, planned keys and ensembles of one run, or of several side by side
    (e.g. a study's grid sweep and its λ search). A trial key in two runs is refused:
    its seed would count twice."""
    from analysis._load import AnalysisError, expected_trials, load, load_ensembles

    frames, expected, ensembles, owner = [], [], [], {}
    for run_dir in run_dirs:
        df = load(run_dir)
        key_col = "key" if df["key"].notna().any() else "trial_id"
        for key in df[key_col].dropna().astype(str):
            if key in owner:
                raise AnalysisError(
                    f"trial {key!r} is in both {owner[key]} and {run_dir}: "
                    "report runs that share no trial"
                )
            owner[key] = run_dir
        frames.append(df)
        planned = expected_trials(run_dir)
        expected = None if planned is None or expected is None else expected + planned
        found = load_ensembles(run_dir)
        if found is not None:
            ensembles.append(found)
    if len(frames) == 1:
        df = frames[0]
    else:
        df = pd.concat(frames, ignore_index=True)
        df.attrs["run_dir"] = str(run_dirs[0])
    return df, expected, (pd.concat(ensembles, ignore_index=True) if ensembles else None)


def _planned_with_races(
    expected: list[str] | None, races: Mapping[str, Race], race_keys: Iterable[str]
) -> list[str] | None:
    """The planned trial keys with every seed of a raced configuration replaced by the
    trials its race gave: a race plans only those, so a seed it never gave is not missing.
    """
    if not races or expected is None:
        return expected
    every_seed = {f"{c}_s{s}" for r in races.values() for c in r.configs for s in r.seeds}
    return [k for k in expected if k not in every_seed] + sorted(set(race_keys))


def write_report(
    run_dir: str | Path | list[str | Path],
    out_dir: str | Path | None = None,
    *,
    ci: str = "t",
    plots: bool = True,
    title: str | None = None,
    intro: str | None = None,
    markdown: str | Path | None = None,
    settings: DecisionSettings | None = None,
    races: Mapping[str, Race] | None = None,
    race_keys: Iterable[str] = (),
) -> Report:
    """Analyse a run directory (or several) and write ``report.md`` (with
    ``figures/*.png``), ``report.html`` (self-contained), ``summary.csv`` and
    ``selection.yaml``.

    Parameters
    ----------
    run_dir : str or Path, or a list of them
        The sweep's run directory (``results.parquet``, ``trials/``, optional
        ``sweep.json`` and ``ensembles.parquet``); several are reported as one (they
        must share no trial).
    out_dir : str or Path, optional
        Where to write; default ``<first run_dir>/report``.
    ci : {"t", "bootstrap"}
        The confidence interval of the seed means.
    plots : bool
        Draw the figures.
    title, intro : str, optional
        The report's title (default: from the run directory) and Markdown placed after
        the generated summary (a study's written findings).
    markdown : str or Path, optional
        Also write the Markdown report here, its figures in ``<stem>-figures/`` beside
        it (how ``docs/results.md`` is published).
    settings : DecisionSettings, optional
        The spec's ``decision:`` (default α 0.05 and the metrics' margins).
    races : mapping of dataset to its seed race, optional
        For a raced run (``sweeps.race.run_decisions``): each dataset's decision is its
        race's.
    race_keys : iterable of str
        The trial keys the races gave (``sweeps.race.planned_keys``): the planned trials
        of a raced configuration, instead of every seed of the grid.

    ``steadytune report`` passes ``settings``, ``races`` and ``race_keys`` from the
    runs' recorded specs.

    Returns
    -------
    Report
        With ``headline``, ``summary``, ``comparison``, ``selection``, ``missing``.
    """
    import yaml

    from analysis._load import load_histories
    from analysis._plots import figure_png

    run_dirs = [Path(d) for d in (run_dir if isinstance(run_dir, list) else [run_dir])]
    df, expected, ensembles = _load_runs(run_dirs)
    histories = load_histories(df) if plots else None
    report = build_report(
        df,
        histories=histories,
        ensembles=ensembles,
        expected_keys=_planned_with_races(expected, races or {}, race_keys),
        title=title or f"steadytune report: {', '.join(d.resolve().name for d in run_dirs)}",
        intro=intro,
        ci=ci,
        plots=plots,
        settings=settings,
        races=races or None,
    )
    out = Path(out_dir) if out_dir is not None else run_dirs[0] / REPORT_DIR
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    pngs = {}
    for b in report.blocks:
        if b.kind == "figure":
            pngs[b.name] = figure_png(b.content)
            (figures / f"{b.name}.png").write_bytes(pngs[b.name])
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    (out / "report.html").write_text(render_html(report, pngs), encoding="utf-8")
    if markdown is not None:
        _write_markdown_copy(report, pngs, Path(markdown))
    summary = report.summary.copy()
    for col in ("seeds", "missing_seeds"):
        summary[col] = summary[col].map(lambda s: " ".join(map(str, s)))
    summary.to_csv(out / "summary.csv", index=False)
    (out / "selection.yaml").write_text(
        yaml.safe_dump(report.selection_yaml, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    report.out_dir = out
    return report


def _write_markdown_copy(report: Report, pngs: dict[str, bytes], path: Path) -> None:
    """``path`` and ``<stem>-figures/*.png`` beside it (stale figures removed)."""
    figure_dir = path.parent / f"{path.stem}-figures"
    figure_dir.mkdir(parents=True, exist_ok=True)
    for old in figure_dir.glob("*.png"):
        if old.stem not in pngs:
            old.unlink()
    for name, png in pngs.items():
        (figure_dir / f"{name}.png").write_bytes(png)
    path.write_text(render_markdown(report, figure_dir=figure_dir.name), encoding="utf-8")
