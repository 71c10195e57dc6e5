"""Expand a sweep spec into trial configs: datasets × strategies × seeds × the knobs
that matter for each strategy (``trainer.strategies.knob_matters``), and nothing else.

Every knob is a dotted key of the trial config, the papers' K and λs like ``optim.lr``:
the grid sets it for the strategies that read it, and a trial records its configuration's
knobs in ``settings`` (``trainer.strategies.identity``: the headline knobs its strategy
reads, at their resolved values, and every setting the sweep varies for it). A knob a
strategy does not read is left at its trainer default and shows as null in
``results.parquet``; so ``vanilla`` runs once per (dataset, seed) whatever the λ and K
grids hold, and two grid points that resolve to the same trainer config are one trial.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sweeps.spec import SweepSpec, values_for
from trainer.errors import ConfigError
from trainer.knobs import ordered_keys
from trainer.loading import config_to_dict, load_config, merge, set_dotted
from trainer.recorded import upgrade_trial
from trainer.strategies import (
    HEADLINE,
    identity,
    knob,
    knob_matters,
    plain_strategy,
    student_is_plain,
)


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its identity and the full, validated trainer config."""

    key: str  # stable, path-safe, unique within the sweep (also the trial's folder name)
    dataset: str
    strategy: str
    seed: int
    primary_metric: str
    config: dict[str, Any]  # trainer config (JSON-able, aliases) for trainer.load_config
    group: str = "grid"  # "grid", or the Optuna cell key for search candidates
    optuna_trial: int | None = None
    # the configuration's knobs, dotted key -> value (trainer.strategies.identity)
    settings: dict[str, Any] = field(default_factory=dict)
    # the key of the plain run this trial is an evaluation of (SE's), or None: it trains
    derived_from: str | None = None
    # the learning curve its dataset is a size of (``sweeps.spec.DatasetSpec``), or None
    curve: str | None = None
    # "confirm": a fresh seed of a chosen configuration or of its vanilla, trained after
    # the selection (``sweeps.confirm``) and kept out of it; None: a selection trial
    role: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        """Read back a recorded trial spec, one of 0.1.0 included (``upgrade_trial``)."""
        return cls(**upgrade_trial(data))

    @property
    def k(self) -> int | str | None:
        """Its K (teacher size / SE window), or None where the strategy has none."""
        return self.settings.get("distill.k")


def _path_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in text)


def trial_key(
    dataset: str,
    strategy: str,
    seed: int | None,
    settings: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    """The trial's folder name: the dataset, the strategy, each knob of ``settings`` in
    label order (a headline knob by its tag, ``k5``; any other as ``key=value``), the
    Optuna trial and the seed."""
    settings = settings or {}
    parts = [_path_safe(dataset), strategy.replace("+", "-")]
    parts += [_path_safe(knob(k).in_key(settings[k])) for k in ordered_keys(settings, HEADLINE)]
    if extra:
        parts.append(extra)
    if seed is not None:
        parts.append(f"s{seed}")
    return "_".join(parts)


def config_key(trial: TrialSpec) -> str:
    """The configuration a trial is one seed of: its key without the seed (what a seed
    race stops or continues, and what the decision compares across seeds)."""
    return trial_key(trial.dataset, trial.strategy, None, trial.settings)


def build_trial(
    spec: SweepSpec,
    dataset_index: int,
    strategy: str,
    seed: int,
    *,
    settings: dict[str, Any] | None = None,
    group: str = "grid",
    optuna_trial: int | None = None,
) -> TrialSpec:
    """One validated trial. ``settings`` (dotted key -> value) are the knobs the sweep
    varies, each one the strategy reads; the others stay at the trainer's defaults."""
    ds = spec.datasets[dataset_index]
    settings = dict(settings or {})
    # torch's thread count changes the numbers: a trial runs as many threads as CPUs it
    # is given (what Ray grants it), recorded in its config so `steadytune train` of that
    # config reproduces it; `defaults.threads` may say otherwise
    threads = {"threads": max(1, math.floor(spec.resources.cpu))}
    raw: dict[str, Any] = merge(threads, spec.defaults)
    per_dataset: dict[str, Any] = {
        "model": spec.model,
        "data": ds.data.model_dump(mode="json", by_alias=True, exclude_none=True),
        "strategy": strategy,
        "seed": seed,
        "eval": {"primary_metric": ds.primary_metric},
    }
    if ds.epochs is not None:
        per_dataset["optim"] = {"epochs": ds.epochs}
    knobs: dict[str, Any] = {}
    for key, value in settings.items():
        set_dotted(knobs, key, value)
    raw = merge(merge(raw, per_dataset), knobs)
    where = f"trial (dataset {ds.label!r}, strategy {strategy!r}, seed {seed})"
    try:
        config = load_config(raw)
    except ConfigError as err:
        raise ConfigError(
            str(err).replace("config: The '", f"{where} from spec 'defaults': The '")
        ) from None
    extra = f"o{optuna_trial}" if optuna_trial is not None else ""
    own = identity(config, settings)
    return TrialSpec(
        key=trial_key(ds.label, strategy, seed, own, extra),
        dataset=ds.label,
        strategy=strategy,
        seed=seed,
        primary_metric=ds.primary_metric,
        config=config_to_dict(config),
        group=group,
        optuna_trial=optuna_trial,
        settings=own,
        curve=ds.curve,
    )


def _grid_values(spec: SweepSpec, dataset_index: int, key: str) -> Any:
    """A key's grid on a dataset: the dataset's own ``k`` for K, else the spec's grid."""
    if key == "distill.k" and spec.datasets[dataset_index].k is not None:
        return spec.datasets[dataset_index].k
    return spec.grid.values_of(key)


def grid_points(
    spec: SweepSpec, dataset_index: int, strategy: str, leave_out: str | None = None
) -> list[dict[str, Any]]:
    """The settings of each grid point of ``strategy`` on a dataset: the product of the
    values of every key it reads (one empty point when there are none), without
    ``leave_out`` (a searched key). A value the strategy refuses in a list shared by all
    (SDV's K = 'all') is dropped for it; a knob that does not apply at a point (K under
    an EMA teacher) is left out of it, so it does not multiply the point."""
    given = [*spec.grid.settings]
    if spec.datasets[dataset_index].k is not None:
        given.append("distill.k")
    # the papers' knobs outermost, as tables list them; the others as the spec lists them
    keys = [k for k in HEADLINE if k in given] + [k for k in given if k not in HEADLINE]
    swept: dict[str, list[Any]] = {}
    for key in keys:
        if key == leave_out or not knob_matters(key, strategy):
            continue
        values = values_for(_grid_values(spec, dataset_index, key), strategy)
        refuses = knob(key).refuses
        if values and refuses is not None:
            values = [v for v in values if refuses(strategy, v) is None]
        if values:
            swept[key] = values
    points = []
    for values in itertools.product(*swept.values()):
        point = dict(zip(swept, values, strict=True))
        point = {k: v for k, v in point.items() if knob_matters(k, strategy, point)}
        if point not in points:
            points.append(point)
    return points


def expand_grid(spec: SweepSpec, share: bool | None = None) -> list[TrialSpec]:
    """Every grid trial of the spec, deduplicated, in a stable order; with ``share`` (by
    default: unless the seeds are raced or the storage is remote), SE's are evaluations of
    the plain runs (:func:`share_plain_runs`).

    When the spec has a ``search``, strategies for which the searched knob matters are
    left out here (``sweeps.optuna_search`` runs them); the others still run as a grid.
    """
    trials = _grid_trials(spec)
    if share is None:
        share = spec.race is None and not spec.is_remote_storage()
    return share_plain_runs(spec, trials) if share else trials


def share_plain_runs(spec: SweepSpec, trials: list[TrialSpec]) -> list[TrialSpec]:
    """No trial spent twice: SE never changes training (its student is the plain run bit
    for bit), so each SE trial becomes an evaluation of the plain run of the same
    dataset, seed and settings (``vanilla`` for ``se``, ``noisytune`` for
    ``noisytune+se``), which evaluates every SE window asked of it in the same run
    (``eval.self_ensembles``). The plain run is added where the spec does not have it.

    A race keeps SE trained on its own: the race may stop the plain configuration before
    the SE one, and would then have to run it anyway. So does a remote run dir, whose
    rows come from Tune's results rather than from the trial directories.
    """
    by_key = {t.key: t for t in trials}
    order = [t.key for t in trials]
    windows: dict[str, list[Any]] = {}
    derived: dict[str, TrialSpec] = {}
    for t in trials:
        if not student_is_plain(t.strategy) or t.group != "grid":
            continue
        index = next(i for i, d in enumerate(spec.datasets) if d.label == t.dataset)
        plain_name = plain_strategy(t.strategy)
        plain_settings = {k: v for k, v in t.settings.items() if knob_matters(k, plain_name)}
        plain = build_trial(spec, index, plain_name, t.seed, settings=plain_settings)
        if plain.key not in by_key:
            by_key[plain.key] = plain
            order.insert(order.index(t.key), plain.key)
        windows.setdefault(plain.key, []).append(t.k)
        derived[t.key] = replace(t, derived_from=plain.key)
    for key, ks in windows.items():
        carrier = by_key[key]
        config = json.loads(json.dumps(carrier.config))
        config["eval"]["self_ensembles"] = sorted(set(ks), key=str)
        by_key[key] = replace(carrier, config=config_to_dict(load_config(config)))
    return [derived.get(key) or by_key[key] for key in order]


def _grid_trials(spec: SweepSpec) -> list[TrialSpec]:
    """Every grid trial of the spec, deduplicated, in a stable order."""
    trials: list[TrialSpec] = []
    seen: dict[str, str] = {}
    owner: dict[str, int] = {}  # config fingerprint -> the index of its dataset
    searched = spec.search.param if spec.search else None
    for i in range(len(spec.datasets)):
        for strategy in spec.strategies:
            if searched and knob_matters(searched, strategy):
                continue
            for point in grid_points(spec, i, strategy):
                for seed in spec.seed_list:
                    t = build_trial(spec, i, strategy, seed, settings=point)
                    fingerprint = config_fingerprint(t.config)
                    if fingerprint in seen and owner[fingerprint] != i:
                        first = owner[fingerprint]
                        raise ConfigError(
                            f"datasets[{first}] and datasets[{i}] "
                            f"({spec.datasets[first].label!r} and {t.dataset!r}) are the same "
                            "data with the same settings: their trials would be the same runs "
                            "under two ids; remove one, or make them differ"
                        )
                    if fingerprint in seen:
                        continue  # another grid point that resolves to the same config
                    if t.key in seen.values():
                        raise ConfigError(
                            f"two different trial configs would share the key {t.key!r}: "
                            "grid values that differ only beyond 6 significant digits; "
                            "make them differ sooner"
                        )
                    seen[fingerprint] = t.key
                    owner[fingerprint] = i
                    trials.append(t)
    return trials


@dataclass(frozen=True)
class SweepPlan:
    """A spec expanded once, on its way to the trials: the preflight, the dry-run table,
    the record in ``sweep.json``, the grid Tuner and the Optuna search all read this."""

    spec: SweepSpec
    grid: list[TrialSpec]  # every grid trial (a race runs some of them)
    cells: list[dict[str, Any]]  # the Optuna cells (see search_cells)


def plan_sweep(spec: SweepSpec, share: bool | None = None) -> SweepPlan:
    return SweepPlan(spec, expand_grid(spec, share), search_cells(spec))


def search_cells(spec: SweepSpec) -> list[dict[str, Any]]:
    """The (dataset, strategy, other knobs) cells an Optuna search runs one study for.

    Each cell is ``{"key", "dataset_index", "strategy", "settings", "probe"}``:
    ``settings`` is its grid point, without the searched knob; ``probe`` is the cell's
    trial at the first seed and the searched knob's default (what the preflight checks
    and the record stores).
    """
    if spec.search is None:
        return []
    param = spec.search.param
    cells = []
    for i in range(len(spec.datasets)):
        for strategy in spec.strategies:
            if not knob_matters(param, strategy):
                continue
            for point in grid_points(spec, i, strategy, leave_out=param):
                probe = build_trial(spec, i, strategy, spec.seed_list[0], settings=point)
                # the searched knob is not part of the cell's identity
                own = {k: v for k, v in probe.settings.items() if k != param}
                key = trial_key(probe.dataset, strategy, None, own)
                cells.append({"key": key, "dataset_index": i, "strategy": strategy,
                              "settings": point, "probe": probe})  # fmt: skip
    return cells


def config_fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
