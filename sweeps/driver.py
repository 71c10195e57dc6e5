"""The sweep driver: plan (dry run), start or resume the Tune experiments, clean up.

A run directory ``<storage>/<name>/`` holds ``sweep.json`` (the validated spec and the
trial keys), the Tune experiments ``grid/`` and ``optuna/``, ``trials/<key>/`` (the
trainer's ``result.json``, logits, checkpoints), ``results.parquet``, ``optuna.db`` and,
for a local Ray instance, Ray's temp dir ``ray/``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from sweeps.grid import TrialSpec, expand_grid, search_cells
from sweeps.spec import SweepSpec, load_spec, spec_to_dict
from trainer.errors import ConfigError

SWEEP_FILE = "sweep.json"


# -- planning ---------------------------------------------------------------------
def _steps(trial: TrialSpec) -> int | None:
    optim = trial.config["optim"]
    if optim.get("max_steps"):
        return int(optim["max_steps"])
    size = trial.config["data"].get("train_size")
    if size:
        return math.ceil(size / optim["batch_size"]) * math.ceil(optim["epochs"])
    return None


def plan_rows(spec: SweepSpec) -> list[dict[str, Any]]:
    """Trial counts per (dataset, strategy), with the knob values each one sweeps."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for t in expand_grid(spec):
        row = rows.setdefault(
            (t.dataset, t.strategy),
            {"dataset": t.dataset, "strategy": t.strategy, "kind": "grid", "trials": 0,
             "k": set(), "distill_lambda": set(), "noise_lambda": set(), "steps": 0},
        )  # fmt: skip
        row["trials"] += 1
        for name in ("k", "distill_lambda", "noise_lambda"):
            value = t.teacher_k if name == "k" else getattr(t, name)
            if value is not None:
                row[name].add(value)
        steps = _steps(t)
        row["steps"] = None if steps is None or row["steps"] is None else row["steps"] + steps
    if spec.search:
        s = spec.search
        n_seeds = len(spec.candidate_seeds)
        for cell in search_cells(spec):
            ds = spec.datasets[cell["dataset_index"]].label
            row = rows.setdefault(
                (ds, cell["strategy"]),
                {"dataset": ds, "strategy": cell["strategy"], "kind": "optuna", "trials": 0,
                 "k": set(), "distill_lambda": set(), "noise_lambda": set(), "steps": None},
            )  # fmt: skip
            row["trials"] += s.n_trials * n_seeds
            if cell["k"] is not None:
                row["k"].add(cell["k"])
            name = s.param.replace(".", "_")
            row[name].add(f"optuna[{s.low:g}..{s.high:g}{' log' if s.log else ''}]")
    return list(rows.values())


def print_plan(spec: SweepSpec, run_dir: str, stream: TextIO | None = None) -> int:
    """The dry-run table; returns the number of trials."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout, width=120)
    rows = plan_rows(spec)
    table = Table(title=f"sweep {spec.name!r} ({spec.model})")
    for col in ("dataset", "strategy", "kind", "trials", "K", "distill λ", "noise λ"):
        table.add_column(col, justify="right" if col == "trials" else "left")

    def fmt(values: set) -> str:
        return ", ".join(sorted(map(str, values))) or "-"

    total = 0
    for r in rows:
        total += r["trials"]
        table.add_row(
            r["dataset"], r["strategy"], r["kind"], str(r["trials"]),
            fmt(r["k"]), fmt(r["distill_lambda"]), fmt(r["noise_lambda"]),
        )  # fmt: skip
    table.add_section()
    table.add_row("total", "", "", str(total), "", "", "")
    console.print(table)
    res = spec.resources
    cpus = os.cpu_count() or 1
    concurrency = max(1, int(cpus // res.cpu))
    if spec.max_concurrent:
        concurrency = min(concurrency, spec.max_concurrent)
    steps = [r["steps"] for r in rows if r["kind"] == "grid"]
    known = all(s is not None for s in steps)
    console.print(
        f"resources per trial: cpu={res.cpu:g}, gpu={res.gpu}; max_concurrent="
        f"{spec.max_concurrent or 'unlimited'}; max_failures={spec.max_failures}"
    )
    console.print(
        f"rough cost: {total} trials; on this machine ({cpus} CPUs) about "
        f"{concurrency} at a time -> {math.ceil(total / concurrency)} waves"
        + (f"; {sum(steps)} optimizer steps in grid trials" if known and steps else "")
    )
    console.print(f"run directory: {run_dir}")
    return total


# -- running ----------------------------------------------------------------------
def _write_sweep_file(run_dir: str, spec: SweepSpec, trials: list[TrialSpec]) -> None:
    """Record the spec; refuse a run dir that holds a different sweep."""
    record = {"spec": spec_to_dict(spec), "grid_keys": [t.key for t in trials]}
    if "://" in run_dir:
        import pyarrow.fs as pafs

        fs, inner = pafs.FileSystem.from_uri(f"{run_dir}/{SWEEP_FILE}")
        with fs.open_output_stream(inner) as f:
            f.write(json.dumps(record, indent=2).encode())
        return
    path = Path(run_dir, SWEEP_FILE)
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get("grid_keys") != record["grid_keys"] or old["spec"].get("search") != record[
            "spec"
        ].get("search"):
            raise ConfigError(
                f"{run_dir} already holds a different sweep (its trials differ from this "
                "spec's); give the spec another 'name' or 'storage', or resume it as it was "
                f"with `steadytune resume {run_dir}`"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))


def load_run_spec(run_dir: str | Path) -> SweepSpec:
    path = Path(run_dir, SWEEP_FILE)
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a sweep run directory (no {SWEEP_FILE})")
    return load_spec(json.loads(path.read_text())["spec"])


def run_sweep(
    spec: SweepSpec | str | Path,
    *,
    address: str | None = None,
    run_dir: str | None = None,
    dry_run: bool = False,
    num_cpus: int | None = None,
    dashboard: bool = True,
    train_fn=None,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Run (or continue) a sweep. Returns a summary: run_dir, counts, wall time.

    An existing run directory with a restorable Tune experiment is continued
    (``Tuner.restore``): finished trials are not run again, unfinished and errored ones
    resume from their checkpoints, the Optuna studies continue from their storage.
    """
    import time

    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    run_dir = run_dir or spec.run_dir()
    grid_trials = expand_grid(spec)
    if dry_run:
        return {"run_dir": run_dir, "trials": print_plan(spec, run_dir, stream), "dry_run": True}
    out = stream or sys.stdout
    _write_sweep_file(run_dir, spec, grid_trials)

    from sweeps import _ray
    from sweeps.optuna_search import SeedGroupSearch, default_storage_url
    from sweeps.resources import check_feasible, resolve_gpu

    started = time.monotonic()
    info = _ray.init_ray(run_dir, address, num_cpus=num_cpus, dashboard=dashboard)
    print(f"steadytune: Ray {info}", file=out, flush=True)
    try:
        first = grid_trials[0] if grid_trials else None
        teacher_k = first.teacher_k if first else None
        batch = spec.defaults.get("optim", {}).get("batch_size", 32)
        gpu = resolve_gpu(spec.resources.gpu, spec.model, teacher_k, batch, _ray.cluster_gpus())
        check_feasible(spec.resources.cpu, gpu, _ray.cluster_nodes())
        common = dict(cpu=spec.resources.cpu, gpu=gpu, train_fn=train_fn)
        summary: dict[str, Any] = {"run_dir": run_dir, "gpu_per_trial": gpu}
        if grid_trials:
            if _ray.can_restore(run_dir, "grid"):
                print(f"steadytune: resuming grid experiment in {run_dir}/grid", file=out)
                tuner = _ray.restore_tuner(run_dir, "grid", **common)
            else:
                tuner = _ray.build_tuner(
                    "grid", run_dir, trials=[t.to_dict() for t in grid_trials],
                    max_concurrent=spec.max_concurrent, max_failures=spec.max_failures,
                    **common,
                )  # fmt: skip
            summary["grid"] = _ray.fit(tuner)
        if spec.search:
            storage = spec.search.storage or default_storage_url(run_dir)
            summary["optuna_storage"] = storage
            if _ray.can_restore(run_dir, "optuna"):
                print(f"steadytune: resuming Optuna search in {run_dir}/optuna", file=out)
                tuner = _ray.restore_tuner(run_dir, "optuna", **common)
            else:
                tuner = _ray.build_tuner(
                    "optuna", run_dir, search=SeedGroupSearch(spec, storage),
                    max_concurrent=spec.max_concurrent, max_failures=spec.max_failures,
                    **common,
                )  # fmt: skip
            summary["optuna"] = _ray.fit(tuner)
        summary["wall_s"] = round(time.monotonic() - started, 1)
        print(f"steadytune: done {summary}", file=out, flush=True)
        return summary
    finally:
        _ray.shutdown()
        _ray.remove_local_temp(info.get("temp_dir"))
