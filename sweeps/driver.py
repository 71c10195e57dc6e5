"""The sweep driver: check, plan (dry run), run what is left on Ray Tune, clean up.

A run directory ``<storage>/<name>/`` holds the marker ``.steadytune-run``, ``sweep.json``
(the validated spec and every trial's resolved config, ``sweeps.ledger``), ``trials/<key>/``
(``trial.json``, the trainer's ``result.json``, logits, checkpoint), ``results.parquet``
(derived from the trial directories), ``optuna.db``, the Tune experiments of each driver
run under ``tune/`` and, for a local Ray instance, Ray's temp dir ``ray/``.

A local or shared run dir is resumed from those files alone: the trials left to run are
those without a result of their own config, each resumes from the trainer's checkpoint,
and the Optuna search is rebuilt from its study and the trial directories. Nothing is
unpickled (Tune's ``Tuner.restore`` would load ``tuner.pkl`` from the run dir, so
resuming a run dir someone handed you would run their code). Remote run dirs
(``s3://``) still resume through ``Tuner.restore``; docs/sweeps.md states that boundary.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sweeps.grid import SweepPlan, TrialSpec, config_key, plan_sweep
from sweeps.ledger import build_record, read_record, refuse_if_changed, write_record
from sweeps.preflight import preflight
from sweeps.results import collect_rows, ensure_results, finished_result, warn_damaged
from sweeps.rundir import DriverLock, claim, is_remote, move_aside
from sweeps.spec import SweepSpec, load_spec
from trainer.errors import ConfigError
from trainer.knobs import format_value, ordered_keys, sort_value
from trainer.layout import (
    CONFIRM_EXPERIMENT,
    GRID_EXPERIMENT,
    OPTUNA_EXPERIMENT,
    RACE_EXPERIMENT,
    RUN_MARKER,
    SWEEP_FILE,
    TRIAL_FILE,
    trial_dir,
)
from trainer.strategies import HEADLINE, cost_rank, knob


@dataclass(frozen=True)
class RayStart:
    """How the driver reaches Ray: an address (None: a local instance), a local
    instance's CPUs and dashboard, and whether the trials' own output is shown."""

    address: str | None
    num_cpus: int | None
    dashboard: bool
    verbose: bool


# -- planning ---------------------------------------------------------------------
def _steps(trial: TrialSpec) -> int | None:
    optim = trial.config["optim"]
    if optim.get("max_steps"):
        return int(optim["max_steps"])
    size = trial.config["data"].get("train_size")
    if size:
        return math.ceil(size / optim["batch_size"]) * math.ceil(optim["epochs"])
    return None


def longest_first(trials: list[TrialSpec]) -> list[TrialSpec]:
    """The trials in the order Tune should start them: most optimizer steps first, then
    the costlier strategy (a teacher's forward passes) or the more models evaluated (a
    plain run scoring its SE trials' averages), otherwise in grid order. Tune starts a
    grid in list order, and with a few slots the sweep ends when its last trial does:
    starting the longest ones first keeps the slots busy to the end instead of leaving
    one slot to finish an SDA run alone."""

    def work(trial: TrialSpec) -> tuple:
        rank = cost_rank(trial.strategy, trial.settings)
        windows = len(trial.config.get("eval", {}).get("self_ensembles") or [])
        return (_steps(trial) or 0, rank[0] + windows, rank)

    return sorted(trials, key=work, reverse=True)


def plan_rows(plan: SweepPlan, state: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Trial counts per (dataset, strategy), with the knob values each one sweeps.

    ``state`` maps a trial key to ``done`` (finished in the run dir), ``new`` (not in the
    recorded sweep) or ``todo``; Optuna trials finished in the run dir count as ``done``.
    """
    spec = plan.spec
    state = state or {}
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    # each dataset's task and primary metric, as the trials will be scored
    tasks = {d.label: f"{d.data.resolved_task} ({d.primary_metric})" for d in spec.datasets}

    def row_for(dataset: str, strategy: str, kind: str) -> dict[str, Any]:
        return rows.setdefault(
            (dataset, strategy),
            {"dataset": dataset, "task": tasks[dataset], "strategy": strategy, "kind": kind,
             "trials": 0, "done": 0, "new": 0, "settings": {}, "steps": 0},
        )  # fmt: skip

    for t in plan.grid:
        row = row_for(t.dataset, t.strategy, "race" if spec.race else "grid")
        row["trials"] += 1
        row["done"] += state.get(t.key) == "done"
        row["new"] += state.get(t.key) == "new"
        for key, value in t.settings.items():
            row["settings"].setdefault(key, set()).add(value)
        steps = 0 if t.derived_from else _steps(t)
        row["steps"] = None if steps is None or row["steps"] is None else row["steps"] + steps
    if spec.search:
        s = spec.search
        n_seeds = len(spec.candidate_seeds)
        for cell in plan.cells:
            ds = spec.datasets[cell["dataset_index"]].label
            row = row_for(ds, cell["strategy"], "optuna")
            row["steps"] = None
            row["trials"] += s.n_trials * n_seeds
            row["done"] += sum(1 for key, v in state.items() if v == f"done:{cell['key']}")
            for key, value in cell["probe"].settings.items():
                if key != s.param:
                    row["settings"].setdefault(key, set()).add(value)
            searched = f"optuna[{s.low:g}..{s.high:g}{' log' if s.log else ''}]"
            row["settings"].setdefault(s.param, set()).add(searched)
    return list(rows.values())


def print_plan(
    plan: SweepPlan, run_dir: str, stream: TextIO | None = None, state: dict[str, str] | None = None
) -> int:
    """The dry-run table; returns the number of trials."""
    spec = plan.spec
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stdout, width=120)
    rows = plan_rows(plan, state)
    table = Table(title=f"sweep {spec.name!r} ({spec.model})")
    columns = ("dataset", "task (metric)", "strategy", "kind", "trials", "done", "new", "knobs")
    for col in columns:
        table.add_column(col, justify="right" if col in ("trials", "done", "new") else "left")

    def fmt(values: set) -> str:
        return ", ".join(map(format_value, sorted(values, key=sort_value))) or "-"

    def knobs(settings: dict[str, set]) -> str:
        ordered = ordered_keys(settings, HEADLINE)
        return "; ".join(f"{knob(k).name}: {fmt(settings[k])}" for k in ordered) or "-"

    total = done = new = 0
    for r in rows:
        total, done, new = total + r["trials"], done + r["done"], new + r["new"]
        table.add_row(
            r["dataset"], r["task"], r["strategy"], r["kind"], str(r["trials"]), str(r["done"]),
            str(r["new"]) if r["kind"] != "optuna" else "-",
            knobs(r["settings"]),
        )  # fmt: skip
    table.add_section()
    table.add_row("total", "", "", "", str(total), str(done), str(new), "")
    console.print(table)
    res = spec.resources
    cpus = os.cpu_count() or 1
    concurrency = max(1, int(cpus // res.cpu))
    if spec.max_concurrent:
        concurrency = min(concurrency, spec.max_concurrent)
    steps = [r["steps"] for r in rows if r["kind"] in ("grid", "race")]
    known = all(s is not None for s in steps)
    console.print(
        f"resources per trial: cpu={res.cpu:g}, gpu={res.gpu}; max_concurrent="
        f"{spec.max_concurrent or 'unlimited'}; max_failures={spec.max_failures}"
    )
    shared = [t for t in plan.grid if t.derived_from and (state or {}).get(t.key) != "done"]
    left = total - done - len(shared)
    if shared:
        console.print(
            f"{len(shared)} SE trial(s) are evaluations of their plain runs (the same "
            "training, the SE average evaluated beside the student): no training of their own",
            soft_wrap=True,
        )
    if spec.race is not None:
        r = spec.race
        configs = sum(1 for t in plan.grid if t.seed == spec.seed_list[0])
        console.print(
            f"seed race: every configuration starts with {r.start} seeds and gets {r.step} "
            f"more per round while it can still win, up to {r.max}: between "
            f"{configs * r.start} and {total} trials"
            + (f", at most {r.budget_trials} per dataset" if r.budget_trials else "")
            + f" (decision: alpha {spec.decision.alpha:g})",
            soft_wrap=True,
        )
    if spec.confirm is not None:
        console.print(
            f"confirmation: once a dataset's {'race' if spec.race else 'grid'} has chosen a "
            f"configuration other than vanilla, it and vanilla are trained on "
            f"{spec.confirm.seeds} fresh seeds ({_seed_span(spec.confirm_seeds)}): "
            f"{2 * spec.confirm.seeds} more trials per dataset"
            + (
                ""
                if spec.race
                else " (one more per seed where the choice is the SE average of a NoisyTune run)"
            )
            + ", not counted below",
            soft_wrap=True,
        )
    console.print(
        f"rough cost: {left} trials to run; on this machine ({cpus} CPUs) about "
        f"{concurrency} at a time -> {math.ceil(left / concurrency)} waves"
        + (f"; {sum(steps)} optimizer steps in grid trials" if known and steps and not done else "")
    )
    # an Optuna cell's trials are not known in advance, so they are never counted as new
    planned = sum(r["trials"] for r in rows if r["kind"] != "optuna")
    if state and (done or new < planned):
        console.print(
            f"run directory: {run_dir} holds {done} finished trial(s) of these; {left} to run, "
            f"{new} of them new (not in its recorded sweep)",
            soft_wrap=True,
        )
    else:
        console.print(f"run directory: {run_dir} (new)", soft_wrap=True)
    return total


def trial_states(
    run_dir: str, grid_trials: list[TrialSpec], old: dict[str, Any] | None
) -> dict[str, str]:
    """What the run dir holds of each trial: ``done``, ``new`` or ``todo`` (grid keys);
    ``done:<cell>`` for each finished Optuna trial. Empty for a remote run dir."""
    if is_remote(run_dir):
        return {}
    if old is None:
        return {t.key: "new" for t in grid_trials}
    recorded = set(old.get("grid_keys") or [])
    state = {
        t.key: "done" if is_finished(run_dir, t) else ("todo" if t.key in recorded else "new")
        for t in grid_trials
    }
    for row in collect_rows(run_dir):
        if row.get("optuna_cell") and row["status"] != "ERROR":
            state[row["key"]] = f"done:{row['optuna_cell']}"
    return state


def is_finished(run_dir: str, trial: TrialSpec) -> bool:
    """Whether the trial's directory holds a result of exactly this trial's config."""
    return finished_result(trial_dir(run_dir, trial.key), trial.config) is not None


# -- running ----------------------------------------------------------------------
def _confirmations_left(plan: SweepPlan, run_dir: str) -> list[TrialSpec]:
    """The confirmation trials the run dir's decisions ask for and that have not
    finished (``sweeps.confirm``); SE evaluations come with their plain runs."""
    if plan.spec.confirm is None:
        return []
    from sweeps.confirm import confirmation_trials

    ensure_results(run_dir)  # the decisions read the results table
    wanted = confirmation_trials(plan.spec, run_dir, plan.grid)
    return [t for t in wanted if not is_finished(run_dir, t)]


def _seed_span(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])


def _configs_of(trials: list[TrialSpec]) -> str:
    """The configurations of some trials, named by their keys without the seed."""
    return ", ".join(dict.fromkeys(config_key(t) for t in trials))


def _sized_trials(grid_trials: list[TrialSpec], race, search) -> list[TrialSpec]:
    """Every kind of trial this driver may run, for ``gpu: auto``: the grid's, the
    race's, and one seed of each Optuna cell (the searched λ does not change memory)."""
    trials = list(grid_trials) + (race.all_trials() if race is not None else [])
    if search is not None:
        assert search.spec.search is not None
        for cell in search.cells:
            cand = {"cell": cell["key"], "number": 0, "value": search.spec.search.high}
            trials.append(search.candidate_trial(cand, search.seeds[0]))
    return trials


def load_run_spec(run_dir: str | Path) -> SweepSpec:
    """The spec recorded in a run directory (``steadytune resume``)."""
    record = read_record(str(run_dir))
    if record is None:
        raise ConfigError(f"{run_dir} is not a sweep run directory (no {SWEEP_FILE})")
    try:
        return load_spec(record["spec"])
    except ConfigError as err:
        raise ConfigError(f"{Path(run_dir, SWEEP_FILE)} holds an invalid spec: {err}") from None


def _adopt_trials(run_dir: str, trials: list[TrialSpec]) -> None:
    """Write ``trial.json`` for every trial given (a grid's, a confirmation's), so its
    directory describes itself and ``results.parquet`` can be rebuilt from the trial
    directories alone (and an SE trial's result written when its plain run ends)."""
    for t in trials:
        path = trial_dir(run_dir, t.key) / TRIAL_FILE
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"trial": t.to_dict(), "trial_id": None}, indent=1))


def run_sweep(
    spec: SweepSpec | str | Path,
    *,
    address: str | None = None,
    run_dir: str | None = None,
    dry_run: bool = False,
    restart: bool = False,
    num_cpus: int | None = None,
    dashboard: bool = True,
    verbose: bool = False,
    train_fn=None,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Run (or continue) a sweep. Returns a summary: run_dir, counts, wall time.

    Before anything starts: the preflight (data, models, storage, resources), then the
    run dir's record is compared with this spec — a pure growth runs only the new and
    unfinished trials, any other change is refused (``restart=True`` moves the old run
    dir aside first). ``dry_run`` stops after the same checks and prints the plan.
    ``verbose`` shows the trials' own output and Tune's banner (docs: ``init_ray``).
    """
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    run_dir = run_dir or spec.run_dir()
    out = stream or sys.stdout
    ray_start = RayStart(address, num_cpus, dashboard, verbose)
    remote = is_remote(run_dir)
    if restart and remote:
        raise ConfigError("--restart moves a local run directory aside; remove a remote "
                          f"one ({run_dir}) with your storage's own tools")  # fmt: skip
    for section, what in (("race", "a seed race"), ("confirm", "a confirmation")):
        if getattr(spec, section) is not None and remote:
            raise ConfigError(
                f"{section}: {what} needs a local or shared run directory (its decisions "
                f"replay from the trial directories), not {run_dir}"
            )
    plan = plan_sweep(spec, share=spec.race is None and not remote)
    grid_trials = plan.grid
    preflight(plan, run_dir, address=address, num_cpus=num_cpus)
    record = build_record(plan)
    if dry_run:
        old = None if restart else read_record(run_dir)
        refuse_if_changed(run_dir, old, record)
        if restart and old is not None:
            print(f"--restart would move {run_dir} aside first", file=out)
        if not remote:
            warn_damaged(run_dir, stream)
        state = trial_states(run_dir, grid_trials, old)
        return {"run_dir": run_dir, "trials": print_plan(plan, run_dir, stream, state),
                "dry_run": True}  # fmt: skip
    if remote:
        refuse_if_changed(run_dir, read_record(run_dir), record)
        write_record(run_dir, record)
        return _run_on_ray(plan, run_dir, grid_trials, ray_start, train_fn, out)
    if restart:
        moved = move_aside(run_dir)
        if moved is not None:
            print(f"steadytune: moved the old run directory aside to {moved}", file=out)
    else:  # read-only first: a refused run changes nothing on disk, not even the lock file
        refuse_if_changed(run_dir, read_record(run_dir), record)
    claim(run_dir, RUN_MARKER, "the run directory")
    with DriverLock(run_dir):
        from sweeps.local_ray import reap_stale_instance

        reap_stale_instance(run_dir)  # a killed driver's Ray processes must not write on
        refuse_if_changed(run_dir, read_record(run_dir), record)
        write_record(run_dir, record)
        warn_damaged(run_dir, out)
        if spec.race is None:  # a race runs only some of them: each describes itself at start
            _adopt_trials(run_dir, grid_trials)
        ensure_results(run_dir)
        if spec.race is not None:  # the race picks its trials from the whole grid
            try:
                return _run_on_ray(plan, run_dir, grid_trials, ray_start, train_fn, out)
            finally:
                ensure_results(run_dir)
        # SE trials are evaluations of their plain runs: never trained, written with them
        trainings = [t for t in grid_trials if not t.derived_from]
        pending = longest_first([t for t in trainings if not is_finished(run_dir, t)])
        derived = len(grid_trials) - len(trainings)
        if len(pending) < len(grid_trials):
            done = len(trainings) - len(pending)
            print(f"steadytune: training {len(pending)} of the {len(grid_trials)} grid trials "
                  f"({done} already finished in {run_dir}; {derived} SE trial(s) evaluated "
                  "from their plain runs)", file=out)  # fmt: skip
        try:
            return _run_on_ray(plan, run_dir, pending, ray_start, train_fn, out)
        finally:
            ensure_results(run_dir)


def _run_on_ray(
    plan: SweepPlan,
    run_dir: str,
    grid_trials: list[TrialSpec],
    ray_start: RayStart,
    train_fn,
    out: TextIO,
) -> dict[str, Any]:
    """Start (or join) Ray and run the grid trials given, then the Optuna search."""
    import time

    from sweeps import _ray
    from sweeps.optuna_search import SeedGroupSearch, default_storage_url
    from sweeps.resources import check_feasible, resolve_gpu

    spec = plan.spec
    remote = is_remote(run_dir)
    started = time.monotonic()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    search = None
    if spec.search:
        search = SeedGroupSearch(plan, spec.search.storage or default_storage_url(run_dir))
        if not remote:
            search.resume_from(run_dir)  # before Ray: what is left is known from disk
    summary: dict[str, Any] = {"run_dir": run_dir}
    race = outcomes = None
    if spec.race is not None:
        from sweeps.race import seed_race

        race, outcomes = seed_race(spec, run_dir, grid_trials)
        if race.finished():
            print(f"steadytune: every dataset's race in {run_dir} has ended", file=out)
            race = None
        grid_trials = []  # the race runs them
    confirming = [] if remote else _confirmations_left(plan, run_dir)
    if (not remote and not grid_trials and not race and not confirming
            and not (search and search.remaining_trials)):  # fmt: skip
        print(f"steadytune: every trial of {run_dir} has finished; nothing to run", file=out)
        return summary
    info = _ray.init_ray(run_dir, ray_start.address, num_cpus=ray_start.num_cpus,
                         dashboard=ray_start.dashboard, verbose=ray_start.verbose)  # fmt: skip
    print(f"steadytune: Ray {info}", file=out, flush=True)
    try:
        sized = _sized_trials([*grid_trials, *confirming], race, search)
        gpu = resolve_gpu(spec.resources.gpu, sized, _ray.cluster_gpus())
        check_feasible(spec.resources.cpu, gpu, _ray.cluster_nodes())
        common = dict(cpu=spec.resources.cpu, gpu=gpu, train_fn=train_fn)
        tuning = dict(max_concurrent=spec.max_concurrent, max_failures=spec.max_failures,
                      trackers=spec.callbacks, sweep=spec.name)  # fmt: skip
        summary["gpu_per_trial"] = gpu
        if race is not None:
            searcher = _ray.RaceSearcher(race, outcomes)
            tuner = _ray.build_tuner(
                f"{RACE_EXPERIMENT}-{stamp}", run_dir, race=searcher, **tuning, **common
            )
            summary["race"] = _ray.fit(tuner)
            for dataset, r in race.plan().items():
                state = f"ended {r.ended}" if r.done else "not finished"
                print(f"steadytune: race {dataset}: {r.trials} trials, {state}", file=out)
        if grid_trials:
            if remote and _ray.can_restore(run_dir, GRID_EXPERIMENT):
                print(f"steadytune: resuming grid experiment in {run_dir}/{GRID_EXPERIMENT}",
                      file=out)  # fmt: skip
                tuner = _ray.restore_tuner(run_dir, GRID_EXPERIMENT, **common)
            else:
                tuner = _ray.build_tuner(
                    GRID_EXPERIMENT if remote else f"{GRID_EXPERIMENT}-{stamp}", run_dir,
                    trials=[t.to_dict() for t in grid_trials], **tuning, **common,
                )  # fmt: skip
            summary["grid"] = _ray.fit(tuner)
        if grid_trials or race is not None:  # the selection may have ended just now
            confirming = [] if remote else _confirmations_left(plan, run_dir)
        _adopt_trials(run_dir, confirming)
        pending = [t for t in confirming if not t.derived_from]
        if pending:
            print(f"steadytune: confirming the choice on fresh seeds "
                  f"{_seed_span(plan.spec.confirm_seeds)}: {len(pending)} trial(s) of "
                  f"{_configs_of(pending)}", file=out, flush=True)  # fmt: skip
            tuner = _ray.build_tuner(
                f"{CONFIRM_EXPERIMENT}-{stamp}", run_dir,
                trials=[t.to_dict() for t in longest_first(pending)], **tuning, **common,
            )  # fmt: skip
            summary["confirm"] = _ray.fit(tuner)
        if search is not None:
            summary["optuna_storage"] = search.storage_url
            if remote and _ray.can_restore(run_dir, OPTUNA_EXPERIMENT):
                print(f"steadytune: resuming Optuna search in {run_dir}/{OPTUNA_EXPERIMENT}",
                      file=out)  # fmt: skip
                tuner = _ray.restore_tuner(run_dir, OPTUNA_EXPERIMENT, **common)
                summary["optuna"] = _ray.fit(tuner)
            elif search.remaining_trials:
                tuner = _ray.build_tuner(
                    OPTUNA_EXPERIMENT if remote else f"{OPTUNA_EXPERIMENT}-{stamp}", run_dir,
                    search=search, **tuning, **common,
                )  # fmt: skip
                summary["optuna"] = _ray.fit(tuner)
        summary["wall_s"] = round(time.monotonic() - started, 1)
        print(f"steadytune: done {summary}", file=out, flush=True)
        return summary
    finally:
        _ray.shutdown()
        _ray.remove_local_temp(info.get("temp_dir"))
