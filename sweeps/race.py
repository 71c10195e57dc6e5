"""Seed racing: give seeds to the configurations that can still win, stop when decided.

``race: {start: 3, step: 2, max: 15}`` replaces a sweep's fixed seed count. Per dataset,
every configuration the grid expands (a configuration is its trainer config without the
seed, whatever knobs made it) runs the first ``start`` seeds; after each round the
decision rule of ``analysis._decide`` runs on the finished seeds, at the round's
group-sequential level (``analysis._sequential``), and

* a configuration significantly worse than the current leader (paired on their common
  seeds, Holm over the comparisons with the leader, each step at the round's boundary
  of an elimination α spent linearly over the looks, ``ELIMINATION_RHO``: testing at α
  every round would spend it once per look) stops; vanilla, the reference, never does;
* the survivors get the next ``step`` seeds;
* the dataset's race ends when its verdict is resolved (``better`` with a single
  surviving configuration, or ``equivalent``), at ``max`` seeds, or when the next round
  would pass ``budget_trials``. The round a race ends at — by ``max`` or by the budget —
  is its last look and spends all the α the earlier looks left.

Everything here is Ray-free and a pure function of the outcomes: :meth:`SeedRace.plan`
replays the rounds from the finished trials, so a driver killed mid-race and started
again takes exactly the same decisions and never runs a trial twice.
``sweeps._ray.RaceSearcher`` adapts it to Ray Tune.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from analysis._decide import (
    Candidate,
    Decision,
    DecisionSettings,
    _holm,
    decide,
    p_against,
    step_down,
)
from analysis._sequential import ELIMINATION_RHO, Boundary

ELIMINATED = "eliminated"


def config_of(candidate_id: str) -> str:
    """The configuration of a candidate id ``<config>:<model>``."""
    return candidate_id.rsplit(":", 1)[0]


@dataclass
class Look:
    """One round's decision: the seeds it saw and what it did."""

    n: int
    level: float
    decision: Decision
    eliminated: dict[str, str]  # candidate id -> why


@dataclass
class DatasetRace:
    """The race of one dataset, as replayed so far (see :func:`race_dataset`)."""

    configs: list[str]
    seeds: list[int]
    looks: list[Look] = field(default_factory=list)
    stopped: dict[str, tuple[int, str]] = field(default_factory=dict)  # config -> (n, why)
    wanted: dict[str, list[int]] = field(default_factory=dict)  # config -> seeds to run now
    done: bool = False
    ended: str = ""  # why the race ended

    @property
    def decision(self) -> Decision | None:
        return self.looks[-1].decision if self.looks else None

    @property
    def trials(self) -> int:
        """Trials the race gave so far (rounds decided)."""
        return sum(self.seeds_of(c) for c in self.configs)

    def seeds_of(self, config: str) -> int:
        """How many seeds a configuration got in the rounds decided so far."""
        if config in self.stopped:
            return self.stopped[config][0]
        return self.looks[-1].n if self.looks else 0


def planned_keys(race: DatasetRace) -> list[str]:
    """The trial keys a race gave (or is giving) its configurations: the seeds each
    got, plus the round it waits for (a trial key is its configuration's key and
    ``_s<seed>``, ``sweeps.grid.trial_key``)."""
    keys = []
    for config in race.configs:
        n = race.seeds_of(config) + (0 if race.done else len(race.wanted.get(config, [])))
        keys.extend(f"{config}_s{seed}" for seed in race.seeds[:n])
    return keys


def schedule(start: int, step: int, maximum: int) -> tuple[int, ...]:
    """The seed counts at which a race looks: start, start+step, …, max."""
    looks = [*range(start, maximum, step), maximum]
    return tuple(sorted(set(looks)))


def _leader_eliminations(
    candidates: Sequence[Candidate],
    decision: Decision,
    gone: Collection[str],
    alpha: float,
    boundary: Boundary,
) -> dict[str, str]:
    """Alive non-vanilla candidates significantly worse than the leader (Holm's
    step-down at the look's boundary)."""
    by_id = {a.id: a for a in decision.assessments}
    alive = [c for c in candidates if c.is_vanilla or c.id not in gone]

    def delta(c: Candidate) -> float:
        d = 0.0 if c.is_vanilla else by_id[c.id].delta
        return d if d == d else -float("inf")

    leader = max(alive, key=lambda c: (delta(c), c.id))
    rivals = [c for c in alive if c.id != leader.id and not c.is_vanilla]
    if not rivals:
        return {}
    tests = p_against(leader, rivals)
    p = [1.0 if p != p or diff >= 0 else p for diff, p in tests]
    out = {}
    for c, (diff, _), ph, hit in zip(rivals, tests, _holm(p), step_down(p, alpha, boundary),
                                     strict=True):  # fmt: skip
        if hit:
            out[c.id] = f"behind {leader.label} by {diff:+.4f} (Holm p={ph:.2g})"
    return out


def race_dataset(
    configs: Sequence[str],
    vanilla: str,
    seeds: Sequence[int],
    candidates_at: Callable[[dict[str, list[int]]], list[Candidate] | None],
    *,
    start: int,
    step: int,
    maximum: int,
    metric: str,
    settings: DecisionSettings,
    budget_trials: int | None = None,
    with_power: bool = True,
) -> DatasetRace:
    """Replay one dataset's race as far as the outcomes go.

    ``candidates_at(seeds_by_config)`` returns the candidates (values on those seeds) once
    every trial of those (configuration, seeds) has ended — finished or failed for good —
    and ``None`` while some have not: the race then waits there, wanting them.
    ``with_power``: give the last look's decision its power numbers (the report shows
    them; a simulation of many races does not need them).
    """
    looks = schedule(start, step, min(maximum, len(seeds)))
    race = DatasetRace(configs=list(configs), seeds=list(seeds))
    alive = list(configs)
    gone: dict[str, str] = {}  # stopped candidate id -> its status at the look it stopped
    family: int | None = None
    used = 0
    for k, n in enumerate(looks):
        # stopped configurations stay in the decision with the seeds they got
        want = {c: list(seeds[: race.stopped[c][0] if c in race.stopped else n]) for c in configs}
        new = sum(n - (looks[k - 1] if k else 0) for _ in alive)
        candidates = candidates_at(want)
        if candidates is None:
            race.wanted = {c: want[c][looks[k - 1] if k else 0 :] for c in alive}
            break
        used += new
        if not any(c.is_vanilla for c in candidates):
            race.done, race.ended = True, f"no finished vanilla seed among the first {n}"
            break
        # a stopped configuration keeps the values of its own seeds (paired on those)
        if family is None:
            family = sum(1 for c in candidates if not c.is_vanilla)
        boundary = Boundary(looks, k, final=k == len(looks) - 1)
        decision = decide(candidates, metric=metric, settings=settings, boundary=boundary,
                          family_size=family, eliminated=gone, power=False)  # fmt: skip
        # eliminations save the rounds after this one: the last look makes none
        newly = {} if boundary.final else _leader_eliminations(
            candidates, decision, gone, settings.alpha, replace(boundary, rho=ELIMINATION_RHO)
        )  # fmt: skip
        left = len(alive) - len(_stopped(candidates, alive, vanilla, {*gone, *newly}))
        if not boundary.final and _over_budget(budget_trials, used, looks, k, left):
            # the next round would pass the budget: this look is the race's last, and
            # spends all the α left (decided again at that level)
            boundary, newly = Boundary(looks, k, final=True), {}
            decision = decide(candidates, metric=metric, settings=settings,
                              boundary=boundary, family_size=family, eliminated=gone,
                              power=False)  # fmt: skip
            race.ended = f"budget of {budget_trials} trials reached"
        gone.update((cid, decision.assessment(cid).status) for cid in newly)
        level = boundary.now(settings.alpha)
        race.looks.append(Look(n=n, level=level, decision=decision, eliminated=newly))
        last = (candidates, boundary, {c: s for c, s in gone.items() if c not in newly})
        for config, mine in _stopped(candidates, alive, vanilla, gone).items():
            alive.remove(config)
            why = "; ".join(newly[c.id] for c in mine if c.id in newly)
            race.stopped[config] = (n, f"{ELIMINATED} after {n} seeds: {why}")
        survivors = [c for c in alive if c != vanilla]
        verdict = decision.verdict
        if verdict == "better" and survivors == [config_of(decision.chosen)]:
            race.done, race.ended = True, f"better, with {decision.chosen_label} the one left"
        elif verdict == "equivalent":
            race.done, race.ended = True, "equivalent"
        elif n == looks[-1]:
            race.done, race.ended = True, f"{verdict} at the maximum of {n} seeds"
        elif boundary.final:
            race.done = True  # by the budget (race.ended says so)
        if race.done:
            break
    if race.done:
        for config in alive:
            race.stopped.setdefault(config, (race.looks[-1].n if race.looks else 0, race.ended))
    if with_power and race.looks:  # the last look with its power numbers (for the report)
        candidates, boundary, before = last
        race.looks[-1].decision = decide(
            candidates, metric=metric, settings=settings, boundary=boundary,
            family_size=family, eliminated=before,
        )  # fmt: skip
    return race


def _stopped(
    candidates: Sequence[Candidate], alive: Sequence[str], vanilla: str, gone: Collection[str]
) -> dict[str, list[Candidate]]:
    """The alive configurations (not vanilla) all of whose models are in ``gone``, with
    their models."""
    out = {}
    for config in alive:
        mine = [c for c in candidates if config_of(c.id) == config]
        if config != vanilla and mine and all(c.id in gone for c in mine):
            out[config] = mine
    return out


def _over_budget(budget: int | None, used: int, looks: Sequence[int], k: int, alive: int) -> bool:
    """Whether the round after look ``k``, for ``alive`` configurations, passes the budget."""
    if budget is None or k + 1 >= len(looks):
        return False
    return used + alive * (looks[k + 1] - looks[k]) > budget


@dataclass
class RaceSpecView:
    """What the race needs of a spec's ``race:`` and ``decision:`` sections."""

    start: int
    step: int
    max: int
    budget_trials: int | None
    settings: DecisionSettings


class SeedRace:
    """The race of a sweep: per dataset a :func:`race_dataset`, over the grid's trials.

    ``trials`` are the grid's trials at ``max`` seeds (``sweeps.grid.expand_grid``);
    ``candidates_of(keys, dataset)`` turns the outcomes of those trial keys into the
    decision's candidates (``analysis._select.race_candidates`` reads them the way the
    report does), or returns ``None`` while one of them has not ended.
    """

    def __init__(
        self,
        trials: Sequence[Any],
        race: RaceSpecView,
        candidates_of: Callable[[list[str], str], list[Candidate] | None],
    ) -> None:
        from sweeps.grid import config_key

        self.race = race
        self.candidates_of = candidates_of
        self.by_dataset: dict[str, dict[str, dict[int, Any]]] = {}
        self.metric: dict[str, str] = {}
        self.vanilla: dict[str, str] = {}
        for t in trials:
            cfg = config_key(t)
            self.by_dataset.setdefault(t.dataset, {}).setdefault(cfg, {})[t.seed] = t
            self.metric[t.dataset] = t.primary_metric
            if t.strategy == "vanilla":
                self.vanilla[t.dataset] = cfg

    def all_trials(self) -> list[Any]:
        """Every trial a race could run: the grid at ``max`` seeds."""
        return [t for configs in self.by_dataset.values() for by_seed in configs.values()
                for t in by_seed.values()]  # fmt: skip

    def seeds(self, dataset: str) -> list[int]:
        return sorted({s for by_seed in self.by_dataset[dataset].values() for s in by_seed})

    def plan(self) -> dict[str, DatasetRace]:
        """Each dataset's race, replayed from the outcomes known now."""
        out = {}
        for dataset, configs in self.by_dataset.items():

            def at(want: Mapping[str, list[int]], configs=configs, dataset=dataset):
                keys = [configs[c][s].key for c, seeds in want.items() for s in seeds]
                return self.candidates_of(keys, dataset)

            out[dataset] = race_dataset(
                list(configs), self.vanilla[dataset], self.seeds(dataset), at,
                start=self.race.start, step=self.race.step, maximum=self.race.max,
                metric=self.metric[dataset], settings=self.race.settings,
                budget_trials=self.race.budget_trials,
            )  # fmt: skip
        return out

    def wanted_trials(self, plan: Mapping[str, DatasetRace] | None = None) -> list[Any]:
        """The trials the races wait for now (in a stable order)."""
        plan = self.plan() if plan is None else plan
        out = []
        for dataset, race in plan.items():
            for config, seeds in race.wanted.items():
                out.extend(self.by_dataset[dataset][config][s] for s in seeds)
        return out

    def finished(self, plan: Mapping[str, DatasetRace] | None = None) -> bool:
        plan = self.plan() if plan is None else plan
        return all(r.done for r in plan.values())


class RunDirOutcomes:
    """The outcomes of a local run directory's trials, for :class:`SeedRace`.

    A trial has ended when its directory holds a result of its own config or a final
    failure (``error.json``); a trial failed for good stays failed (it is not run again
    by a resumed race, so the decisions replay identically). Rows of ended trials are
    read once and kept: a finished result never changes.
    """

    def __init__(self, run_dir: str, trials: Sequence[Any], split: str = "dev") -> None:
        self.run_dir = run_dir
        self.trials = {t.key: t for t in trials}
        self.split = split  # the split the race decides on (the spec's decision.split)
        self._rows: dict[str, dict[str, Any] | None] = {}  # key -> row (None: failed)
        self._failed_now: set[str] = set()

    def mark_failed(self, key: str) -> None:
        """A trial this driver saw fail for good (before its ``error.json`` is read)."""
        self._failed_now.add(key)

    def row(self, key: str) -> tuple[bool, dict[str, Any] | None]:
        """(ended, its row if it finished)."""
        from pathlib import Path

        from analysis._load import predicts_one_class, resolve_path
        from sweeps.results import FAILED, trial_row
        from trainer.layout import trial_dir

        if key in self._rows:
            return True, self._rows[key]
        row = trial_row(trial_dir(self.run_dir, key))
        if row is None and key not in self._failed_now:
            return False, None
        finished = row is not None and row["status"] != FAILED
        if finished:
            # a collapsed seed is an outcome the race counts, as the report does: read
            # from its logits once, like the rest of a finished row
            logits = resolve_path(row.get("logits_path"), Path(self.run_dir))
            row = {**row, "one_class_on_dev": predicts_one_class(logits)}
        self._rows[key] = row if finished else None
        return True, self._rows[key]

    def ended(self, key: str) -> bool:
        return self.row(key)[0]

    def candidates_of(self, keys: list[str], dataset: str) -> list[Candidate] | None:
        import pandas as pd

        from analysis._load import long_metrics, tidy
        from analysis._select import dataset_candidates, seed_flags

        rows = []
        for key in keys:
            ended, row = self.row(key)
            if not ended:
                return None
            if row is not None:
                rows.append(row)
        metric = self.trials[keys[0]].primary_metric
        if not rows:
            return []
        df = tidy(pd.DataFrame(rows), self.run_dir)
        cands, _ = dataset_candidates(
            long_metrics(df), dataset, metric, split=self.split, flags=seed_flags(df)
        )
        return cands


def run_decisions(
    run_dir: str | Any,
) -> tuple[DecisionSettings | None, list[str], dict[str, DatasetRace]]:
    """A run directory's decision settings (its spec's ``decision:``; None without a
    recorded spec), the datasets they decide, and, for a raced run, each dataset's race
    replayed from its trials."""
    from sweeps.grid import expand_grid
    from sweeps.ledger import read_record
    from sweeps.spec import load_spec
    from trainer.errors import ConfigError

    try:
        record = read_record(str(run_dir))
        spec = load_spec(record["spec"]) if record is not None else None
    except ConfigError:
        return None, [], {}
    if spec is None:
        return None, [], {}
    trials = expand_grid(spec)
    datasets = sorted({t.dataset for t in trials})
    if spec.race is None:
        return spec.decision.settings(), datasets, {}
    race, _ = seed_race(spec, str(run_dir), trials)
    return race.race.settings, datasets, race.plan()


def seed_race(spec: Any, run_dir: str, trials: Sequence[Any]) -> tuple[SeedRace, RunDirOutcomes]:
    """The spec's seed race over the grid's trials (``spec.race`` set), replayed from the
    run directory, and the outcomes it reads."""
    r = spec.race
    view = RaceSpecView(start=r.start, step=r.step, max=r.max, budget_trials=r.budget_trials,
                        settings=spec.decision.settings())  # fmt: skip
    outcomes = RunDirOutcomes(run_dir, trials, view.settings.split)
    return SeedRace(trials, view, outcomes.candidates_of), outcomes
