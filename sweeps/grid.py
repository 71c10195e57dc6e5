"""Expand a sweep spec into trial configs: datasets × strategies × seeds × the knobs
that matter for each strategy (``trainer.strategies.knob_matters``), and nothing else.

A knob a strategy does not use is left at its trainer default and shows as null in
``results.parquet``; so ``vanilla`` runs once per (dataset, seed) whatever the λ and K
grids hold, and two grid points that resolve to the same trainer config are one trial.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from sweeps.spec import SweepSpec, k_values_for
from trainer.config import config_to_dict, load_config, merge
from trainer.errors import ConfigError
from trainer.strategies import allows_k_all, knob_matters


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        return cls(**data)


def _fmt(value: float | int | str) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def trial_key(
    dataset: str,
    strategy: str,
    seed: int | None,
    noise_lambda: float | None,
    distill_lambda: float | None,
    teacher_k: int | str | None,
    extra: str = "",
) -> str:
    safe_ds = "".join(c if c.isalnum() or c in "-_." else "-" for c in dataset)
    parts = [safe_ds, strategy.replace("+", "-")]
    if teacher_k is not None:
        parts.append(f"k{teacher_k}")
    if distill_lambda is not None:
        parts.append(f"dl{_fmt(distill_lambda)}")
    if noise_lambda is not None:
        parts.append(f"nl{_fmt(noise_lambda)}")
    if extra:
        parts.append(extra)
    if seed is not None:
        parts.append(f"s{seed}")
    return "_".join(parts)


def config_key(trial: TrialSpec) -> str:
    """The configuration a trial is one seed of: its key without the seed (what a seed
    race stops or continues, and what the decision compares across seeds)."""
    return trial_key(trial.dataset, trial.strategy, None, trial.noise_lambda,
                     trial.distill_lambda, trial.teacher_k)  # fmt: skip


def build_trial(
    spec: SweepSpec,
    dataset_index: int,
    strategy: str,
    seed: int,
    *,
    k: int | str | None = None,
    distill_lambda: float | None = None,
    noise_lambda: float | None = None,
    group: str = "grid",
    optuna_trial: int | None = None,
) -> TrialSpec:
    """One validated trial. ``None`` knobs stay at the trainer's defaults."""
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
    key = trial_key(ds.label, strategy, seed, used_nl, used_dl, resolved_k, extra)
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
    )


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


def expand_grid(spec: SweepSpec) -> list[TrialSpec]:
    """Every grid trial of the spec, deduplicated, in a stable order.

    When the spec has a ``search``, strategies for which the searched λ matters are left
    out here (``sweeps.optuna_search`` runs them); the others still run as a grid.
    """
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
            for k in ks:
                for dl in dls:
                    for nl in nls:
                        for seed in spec.seed_list:
                            t = build_trial(
                                spec, i, strategy, seed, k=k, distill_lambda=dl, noise_lambda=nl
                            )
                            fingerprint = config_fingerprint(t.config)
                            if fingerprint in seen or t.key in seen.values():
                                continue
                            seen[fingerprint] = t.key
                            trials.append(t)
    return trials


def search_cells(spec: SweepSpec) -> list[dict[str, Any]]:
    """The (dataset, strategy, K, other-λ) cells an Optuna search runs one study for.

    Each cell is ``{"key", "dataset_index", "strategy", "k", "distill_lambda",
    "noise_lambda"}`` with the searched knob left ``None``.
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
            for k in ks:
                for dl in dls:
                    for nl in nls:
                        probe = build_trial(
                            spec, i, strategy, 0, k=k, distill_lambda=dl, noise_lambda=nl
                        )
                        # the searched λ is not part of the cell's identity
                        key = trial_key(
                            probe.dataset,
                            strategy,
                            None,
                            None if param == "noise.lambda" else probe.noise_lambda,
                            None if param == "distill.lambda" else probe.distill_lambda,
                            probe.teacher_k,
                        )
                        cells.append(
                            {
                                "key": key,
                                "dataset_index": i,
                                "strategy": strategy,
                                "k": k,
                                "distill_lambda": dl,
                                "noise_lambda": nl,
                            }
                        )
    return cells


def config_fingerprint(config: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
