"""Confirmation on fresh seeds: ``confirm: {seeds: N}``.

A configuration chosen on dev for its lucky seeds stays lucky when the same seeds' models
are scored on test (a good head initialisation or data order helps on both splits;
``bench/confirm.py`` measures how often that "confirms" a configuration that is no
better). Fresh seeds share no luck with the selection. So once a dataset's selection has
ended — every grid trial of it ended, or its race done — and its decision chose a
configuration other than vanilla, N new seeds of that configuration and of vanilla are
trained, after every seed the selection could use (``SweepSpec.confirm_seeds``), and the
report tests the choice against vanilla on those seeds alone
(``analysis._select.fresh_confirmation``).

The trials are the chosen configuration's and vanilla's own trials with another seed
(and, for a chosen SE model, the plain run it is an evaluation of), keyed
``<configuration>_confirm_s<seed>`` and marked ``role: confirm`` so that no table, test
or race ever selects on them. Which trials these are is a pure function of the run
directory (the decision replays from the selection's results), so a driver killed while
confirming runs the same ones when resumed, and a finished one is never run again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from analysis import CONFIRM_ROLE as ROLE
from sweeps.grid import TrialSpec, config_key, trial_key
from sweeps.spec import SweepSpec


def _with_seed(trial: TrialSpec, seed: int, carrier: TrialSpec | None = None) -> TrialSpec:
    """``trial`` at a fresh seed, as a confirmation trial (an SE evaluation derived from
    ``carrier``'s confirmation trial at that seed)."""
    key = trial_key(trial.dataset, trial.strategy, seed, trial.settings, extra=ROLE)
    return replace(
        trial,
        key=key,
        seed=seed,
        config={**trial.config, "seed": seed},
        role=ROLE,
        derived_from=None if carrier is None else _with_seed(carrier, seed).key,
    )


def _trials_of(spec: SweepSpec, trials: list[TrialSpec], config: str) -> list[TrialSpec]:
    """The confirmation trials of one configuration: its first trial at every fresh
    seed, and the plain run an SE trial of it is an evaluation of."""
    first = next(t for t in trials if config_key(t) == config)
    by_key = {t.key: t for t in trials}
    carrier = by_key.get(first.derived_from) if first.derived_from else None
    out = [_with_seed(first, s, carrier) for s in spec.confirm_seeds]
    if carrier is not None:
        out += [_with_seed(carrier, s) for s in spec.confirm_seeds]
    return out


def chosen_configs(
    spec: SweepSpec, run_dir: str, trials: list[TrialSpec]
) -> dict[str, tuple[str, str]]:
    """Per decided unit (a dataset, or a dataset at one shared setting) whose selection
    has ended and chose something other than vanilla: (chosen configuration, vanilla's).

    The decision is the report's (``analysis.decisions`` on the run's results table,
    which the caller brings up to date; a raced dataset's from its race), so the
    configuration confirmed is the one the report names.
    """
    from analysis import AnalysisError, decisions, load
    from sweeps.race import config_of, seed_race

    try:
        df = load(run_dir)
    except AnalysisError:
        return {}  # no results table yet: nothing decided
    races: dict[str, Any] = {}
    if spec.race is not None:
        race, _ = seed_race(spec, run_dir, trials)
        races = {d: r for d, r in race.plan().items() if r.done}
        ended = set(races)
    else:  # a grid's dataset has ended when every trial of it has a row
        have = set(df["key"])
        by_dataset: dict[str, list[TrialSpec]] = {}
        for t in trials:
            by_dataset.setdefault(t.dataset, []).append(t)
        ended = {d for d, ts in by_dataset.items() if all(t.key in have for t in ts)}
    if not ended:
        return {}
    dataset_of = {config_key(t): t.dataset for t in trials}
    out = {}
    for unit, dd in decisions(df, settings=spec.decision.settings(), races=races).items():
        chosen = config_of(dd.decision.chosen)
        reference = next(
            (config_of(cid) for cid, info in dd.info.items() if info["strategy"] == "vanilla"),
            chosen,
        )
        if chosen == reference:
            continue  # vanilla chosen: nothing to confirm
        if dataset_of.get(chosen) in ended:
            out[unit] = (chosen, reference)
    return out


def confirmation_trials(spec: SweepSpec, run_dir: str, trials: list[TrialSpec]) -> list[TrialSpec]:
    """Every confirmation trial the run directory's decisions ask for now (none without
    ``confirm:``), in a stable order; vanilla's are shared by the units that need them."""
    if spec.confirm is None:
        return []
    out: dict[str, TrialSpec] = {}
    for chosen, vanilla in chosen_configs(spec, run_dir, trials).values():
        for t in [*_trials_of(spec, trials, chosen), *_trials_of(spec, trials, vanilla)]:
            out.setdefault(t.key, t)
    return list(out.values())
