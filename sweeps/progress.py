"""How far a sweep has got, read from its run directory alone: ``steadytune status RUN_DIR``.

What was planned comes from ``sweep.json``: the recorded spec, planned again exactly as the
driver plans it (``sweeps.grid.plan_sweep``, counted per (dataset, strategy) by
``sweeps.driver.plan_rows``). What has ended comes from the trial directories, through the
same ``sweeps.results.trial_row`` that ``results.parquet`` is derived with (a trial counts
as finished only with a result of its own config, as in ``sweeps.driver.is_finished``), and
from ``results.parquet`` for rows whose directory does not describe itself (a run of
steadytune 0.1). A trial that has not ended — only ``trial.json``, or a checkpoint — is
unfinished.

Nothing here starts Ray or writes a file (``collect_rows`` would write the results of SE
trials whose plain run finished): status may be asked by anyone who can read a shared run
directory, while its driver is writing it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis import CONFIRM_ROLE
from sweeps.driver import load_run_spec, plan_rows
from sweeps.grid import SweepPlan, plan_sweep
from sweeps.results import (
    DIVERGED,
    FAILED,
    FINISHED,
    described_keys,
    read_results,
    trial_row,
)
from trainer.layout import RESULTS_FILE, trials_dir
from trainer.strategies import student_is_plain

__all__ = ["CellProgress", "ConfigScore", "Progress", "ended_rows", "read_progress"]

# A diverged trial finished (with a non-finite loss); its metrics are part of the variance.
_ENDED = (FINISHED, DIVERGED)


@dataclass(frozen=True)
class CellProgress:
    """The trials of one (dataset, strategy). ``kind`` is ``grid``, ``optuna`` or
    ``race``; a race's ``planned`` is the most it may run (it stops configurations early)."""

    dataset: str
    strategy: str
    kind: str
    planned: int
    finished: int
    failed: int

    @property
    def unfinished(self) -> int:
        """Planned trials that have not ended: not started, running, or interrupted."""
        return max(self.planned - self.finished - self.failed, 0)


@dataclass(frozen=True)
class ConfigScore:
    """The primary dev metric of one configuration over its finished seeds so far
    (``std`` is NaN with one seed)."""

    dataset: str
    strategy: str
    config: str
    metric: str
    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Progress:
    """A run directory's progress: counts per (dataset, strategy), scores per configuration."""

    name: str
    run_dir: str
    cells: list[CellProgress]
    scores: list[ConfigScore]

    @property
    def planned(self) -> int:
        return sum(c.planned for c in self.cells)

    @property
    def finished(self) -> int:
        return sum(c.finished for c in self.cells)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.cells)

    @property
    def unfinished(self) -> int:
        return sum(c.unfinished for c in self.cells)


def ended_rows(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Key -> results row of every ended trial (finished, diverged or failed), read-only:
    the trial directories, and ``results.parquet`` for keys they do not describe."""
    described = described_keys(run_dir)  # their directories say; a stale row does not
    rows = {k: r for k, r in _table_rows(Path(run_dir)).items() if k not in described}
    trials = trials_dir(run_dir)
    for directory in sorted(trials.iterdir()) if trials.is_dir() else []:
        row = trial_row(directory) if directory.is_dir() else None
        if row is not None:
            rows[row["key"]] = row
    return rows


def _table_rows(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The rows of ``results.parquet``; none when it is missing or damaged (it is derived
    data: the trial directories are the truth)."""
    try:
        table = read_results(str(run_dir / RESULTS_FILE))
    except Exception:  # pyarrow raises several types for a truncated or foreign file
        return {}
    return {} if table is None else {r["key"]: r for r in table.to_dict("records")}


def read_progress(run_dir: str | Path) -> Progress:
    """The progress of a local or shared run directory; ``ConfigError`` when it holds no
    (valid) ``sweep.json``."""
    spec = load_run_spec(run_dir)
    plan = plan_sweep(spec, share=spec.race is None)  # as the driver plans a local run dir
    rows = ended_rows(run_dir)
    return Progress(
        name=spec.name,
        run_dir=str(run_dir),
        cells=_cells(plan, rows) + _confirm_cells(spec, rows),
        scores=_scores(r for r in rows.values() if r.get("role") != CONFIRM_ROLE),
    )


def _confirm_cells(spec: Any, rows: dict[str, dict[str, Any]]) -> list[CellProgress]:
    """The fresh-seed confirmation trials (``sweeps.confirm``) per (dataset, strategy) that
    has any: each of the spec's ``confirm.seeds`` seeds is planned once a choice asks."""
    counts: dict[tuple[str, str], list[int]] = {}
    for r in rows.values():
        if r.get("role") == CONFIRM_ROLE:
            c = counts.setdefault((r["dataset"], r["strategy"]), [0, 0])
            c[0 if r["status"] in _ENDED else 1] += 1
    planned = len(spec.confirm_seeds)
    return [CellProgress(dataset=d, strategy=s, kind="confirm", planned=planned,
                         finished=done, failed=failed)
            for (d, s), (done, failed) in sorted(counts.items())]  # fmt: skip


def _of_plan(plan: SweepPlan, rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The ended rows of this plan's trials: its grid trials and its Optuna candidates."""
    grid = {t.key for t in plan.grid}
    cells = {c["key"] for c in plan.cells}
    return [r for key, r in rows.items() if key in grid or r.get("optuna_cell") in cells]


def _cells(plan: SweepPlan, rows: dict[str, dict[str, Any]]) -> list[CellProgress]:
    """Planned, finished and failed trials per (dataset, strategy), in the plan's order."""
    ours = _of_plan(plan, rows)
    state = {
        r["key"]: f"done:{r['optuna_cell']}" if r.get("optuna_cell") else "done"
        for r in ours
        if r["status"] in _ENDED
    }
    failed: dict[tuple[str, str], int] = {}
    for r in ours:
        if r["status"] == FAILED:
            failed[(r["dataset"], r["strategy"])] = failed.get((r["dataset"], r["strategy"]), 0) + 1
    return [
        CellProgress(
            dataset=p["dataset"],
            strategy=p["strategy"],
            kind=p["kind"],
            planned=p["trials"],
            finished=p["done"],
            failed=failed.get((p["dataset"], p["strategy"]), 0),
        )
        for p in plan_rows(plan, state)
    ]


def _score(row: dict[str, Any]) -> Any:
    """The dev score that stands for a trial's strategy: its student's, but an SE trial's
    averaged model (its student is the plain run's, scored by that run's own row)."""
    if student_is_plain(str(row["strategy"])):
        return row.get(f"averaged_dev_{row['primary_metric']}")
    return row.get("primary_dev_score")


def _scores(rows: Any) -> list[ConfigScore]:
    """Mean ± std of the primary dev metric per configuration (its trial key without the
    seed), over the finished trials that have one; SE's is its averaged model's."""
    from analysis import config_label

    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] in _ENDED and _is_number(_score(r)):
            groups.setdefault((r["dataset"], r["strategy"], r["config_key"]), []).append(r)
    scores = []
    for (dataset, strategy, _), members in sorted(groups.items()):
        values = [float(_score(r)) for r in members]
        scores.append(
            ConfigScore(
                dataset=dataset,
                strategy=strategy,
                config=config_label(members[0]),
                metric=str(members[0]["primary_metric"]),
                mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else math.nan,
                n=len(values),
            )
        )
    return scores


def _is_number(value: Any) -> bool:
    """A finite metric value (a diverged trial's may be NaN; a failed one's None)."""
    return isinstance(value, (int, float)) and math.isfinite(value)
