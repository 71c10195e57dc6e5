"""Expand a sweep spec into trial configs: datasets × strategies × seeds × the knobs
that matter for each strategy (``trainer.strategies.knob_matters``), and nothing else.

The papers' three knobs (K, the distillation λ, the noise λ) are identity columns of their
own; any other swept setting (``optim.lr``) is one entry of a trial's ``settings``. A knob a
strategy does not use is left at its trainer default and shows as null in
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

from sweeps.spec import SweepSpec, k_values_for
from trainer.errors import ConfigError
from trainer.loading import config_to_dict, load_config, merge, set_dotted
from trainer.strategies import allows_k_all, knob_matters, plain_strategy, student_is_plain


@dataclass(frozen=True)
class TrialSpec:
    """One trial: its identity columns and the full, validated trainer config."""

    key: str  # stable, path-safe, unique within the sweep (also the trial's folder name)
    dataset: str
    strategy: str
    seed: int
    noise_lambda: float | None
    distill_lambda: float | None
    teacher_k: int | str | None
    primary_metric: str
    config: dict[str, Any]  # trainer config (JSON-able, aliases) for trainer.load_config
    group: str = "grid"  # "grid", or the Optuna cell key for search candidates
    optuna_trial: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # other swept keys -> values
    # the key of the plain run this trial is an evaluation of (SE's), or None: it trains
    derived_from: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


def _fmt(value: float | int | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _path_safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "-" for c in text)


def trial_key(
    dataset: str,
    strategy: str,
    seed: int | None,
    noise_lambda: float | None,
    distill_lambda: float | None,
    teacher_k: int | str | None,
    extra: str = "",
    settings: dict[str, Any] | None = None,
) -> str:
    """The trial's folder name: its identity columns, each swept setting as
    ``key=value`` (sorted), the Optuna trial and the seed."""
    parts = [_path_safe(dataset), strategy.replace("+", "-")]
    if teacher_k is not None:
        parts.append(f"k{teacher_k}")
    if distill_lambda is not None:
        parts.append(f"dl{_fmt(distill_lambda)}")
    if noise_lambda is not None:
        parts.append(f"nl{_fmt(noise_lambda)}")
    parts += [_path_safe(f"{k}={_fmt(v)}") for k, v in sorted((settings or {}).items())]
    if extra:
        parts.append(extra)
    if seed is not None:
        parts.append(f"s{seed}")
    return "_".join(parts)


def config_key(trial: TrialSpec) -> str:
    """The configuration a trial is one seed of: its key without the seed (what a seed
    race stops or continues, and what the decision compares across seeds)."""
    return trial_key(trial.dataset, trial.strategy, None, trial.noise_lambda,
                     trial.distill_lambda, trial.teacher_k, settings=trial.settings)  # fmt: skip


def build_trial(
    spec: SweepSpec,
    dataset_index: int,
    strategy: str,
    seed: int,
    *,
    k: int | str | None = None,
    distill_lambda: float | None = None,
    noise_lambda: float | None = None,
    settings: dict[str, Any] | None = None,
    group: str = "grid",
    optuna_trial: int | None = None,
) -> TrialSpec:
    """One validated trial. ``None`` knobs stay at the trainer's defaults; ``settings``
    (dotted key -> value) are the other swept settings, each one the strategy reads."""
    ds = spec.datasets[dataset_index]
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
        "eval": {"primary_metric": ds.metric},
    }
    if ds.epochs is not None:
        per_dataset["optim"] = {"epochs": ds.epochs}
    knobs: dict[str, Any] = {}
    if k is not None:
        knobs.setdefault("distill", {})["k"] = k
    if distill_lambda is not None:
        knobs.setdefault("distill", {})["lambda"] = distill_lambda
    if noise_lambda is not None:
        knobs.setdefault("noise", {})["lambda"] = noise_lambda
    for key, value in (settings or {}).items():
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
    resolved_k = config.teacher_k
    used_dl = config.distill.lam if knob_matters("distill.lambda", strategy) else None
    used_nl = config.noise.lam if knob_matters("noise.lambda", strategy) else None
    key = trial_key(ds.label, strategy, seed, used_nl, used_dl, resolved_k, extra, settings)
    return TrialSpec(
        key=key,
        dataset=ds.label,
        strategy=strategy,
        seed=seed,
        noise_lambda=used_nl,
        distill_lambda=used_dl,
        teacher_k=resolved_k,
        primary_metric=ds.metric,
        config=config_to_dict(config),
        group=group,
        optuna_trial=optuna_trial,
        settings=dict(settings or {}),
    )


def _setting_points(spec: SweepSpec, strategy: str, leave_out: str | None = None) -> list[dict]:
    """The product of the grid's other settings that ``strategy`` reads (one empty point
    when there are none), without ``leave_out`` (a searched setting)."""
    swept = {k: k_values_for(v, strategy) for k, v in spec.grid.settings.items()
             if k != leave_out and knob_matters(k, strategy)}  # fmt: skip
    swept = {k: v for k, v in swept.items() if v}  # a per-strategy list may leave it out
    return [dict(zip(swept, values, strict=True)) for values in itertools.product(*swept.values())]


def _window_k(k: Any, settings: dict[str, Any]) -> Any:
    """The K of a grid point: none for SDA's EMA teacher, which has no window, so a K
    list does not multiply it (one EMA configuration, not one per K)."""
    return None if settings.get("distill.average") == "ema" else k


def _values(grid_values: list[Any] | None, matters: bool) -> list[Any]:
    return list(grid_values) if (matters and grid_values) else [None]


def _k_values(spec: SweepSpec, dataset_index: int, strategy: str) -> list[Any]:
    """The K grid for ``strategy`` on a dataset (the dataset's ``k``, else ``grid.distill.k``;
    either may be per strategy). 'all' is skipped for SDV (the trainer runs one forward
    pass per teacher snapshot, so SDV needs a finite K)."""
    ks = spec.datasets[dataset_index].k or spec.grid.distill_k
    values = _values(k_values_for(ks, strategy), knob_matters("distill.k", strategy))
    if not allows_k_all(strategy):
        values = [k for k in values if k != "all"] or [None]
    return values


def expand_grid(spec: SweepSpec, share: bool | None = None) -> list[TrialSpec]:
    """Every grid trial of the spec, deduplicated, in a stable order; with ``share`` (by
    default: unless the seeds are raced or the storage is remote), SE's are evaluations of
    the plain runs (:func:`share_plain_runs`).

    When the spec has a ``search``, strategies for which the searched λ matters are left
    out here (``sweeps.optuna_search`` runs them); the others still run as a grid.
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
        plain = build_trial(spec, index, plain_strategy(t.strategy), t.seed,
                            noise_lambda=t.noise_lambda, settings={
                                k: v for k, v in t.settings.items()
                                if knob_matters(k, plain_strategy(t.strategy))})  # fmt: skip
        if plain.key not in by_key:
            by_key[plain.key] = plain
            order.insert(order.index(t.key), plain.key)
        windows.setdefault(plain.key, []).append(t.teacher_k)
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
    searched = spec.search.param if spec.search else None
    for i in range(len(spec.datasets)):
        for strategy in spec.strategies:
            if searched and knob_matters(searched, strategy):
                continue
            ks = _k_values(spec, i, strategy)
            dls = _values(spec.grid.distill_lambda, knob_matters("distill.lambda", strategy))
            nls = _values(spec.grid.noise_lambda, knob_matters("noise.lambda", strategy))
            points = itertools.product(ks, dls, nls, _setting_points(spec, strategy))
            for k, dl, nl, settings in points:
                k = _window_k(k, settings)
                for seed in spec.seed_list:
                    t = build_trial(spec, i, strategy, seed, k=k, distill_lambda=dl,
                                    noise_lambda=nl, settings=settings)  # fmt: skip
                    fingerprint = config_fingerprint(t.config)
                    if fingerprint in seen:
                        continue  # another grid point that resolves to the same config
                    if t.key in seen.values():
                        raise ConfigError(
                            f"two different trial configs would share the key {t.key!r}: "
                            "grid values that differ only beyond 6 significant digits; "
                            "make them differ sooner"
                        )
                    seen[fingerprint] = t.key
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

    Each cell is ``{"key", "dataset_index", "strategy", "k", "distill_lambda",
    "noise_lambda", "settings", "probe"}`` with the searched knob left out (``None``);
    ``probe`` is the cell's trial at the first seed and the searched knob's default (what
    the preflight checks and the record stores).
    """
    if spec.search is None:
        return []
    param = spec.search.param
    cells = []
    for i in range(len(spec.datasets)):
        for strategy in spec.strategies:
            if not knob_matters(param, strategy):
                continue
            ks = _k_values(spec, i, strategy)
            dls = _values(
                None if param == "distill.lambda" else spec.grid.distill_lambda,
                knob_matters("distill.lambda", strategy),
            )
            nls = _values(
                None if param == "noise.lambda" else spec.grid.noise_lambda,
                knob_matters("noise.lambda", strategy),
            )
            points = itertools.product(ks, dls, nls, _setting_points(spec, strategy, param))
            for k, dl, nl, settings in points:
                k = _window_k(k, settings)
                probe = build_trial(spec, i, strategy, spec.seed_list[0], k=k,
                                    distill_lambda=dl, noise_lambda=nl,
                                    settings=settings)  # fmt: skip
                # the searched knob is not part of the cell's identity
                key = trial_key(
                    probe.dataset,
                    strategy,
                    None,
                    None if param == "noise.lambda" else probe.noise_lambda,
                    None if param == "distill.lambda" else probe.distill_lambda,
                    probe.teacher_k,
                    settings=settings,
                )
                cells.append({"key": key, "dataset_index": i, "strategy": strategy, "k": k,
                              "distill_lambda": dl, "noise_lambda": nl,
                              "settings": settings, "probe": probe})  # fmt: skip
    return cells


def config_fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
