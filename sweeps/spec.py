"""The sweep spec: one YAML file, validated before Ray (or anything heavy) starts.

Constraints are declared once, on the pydantic models below; every problem is reported
as one line naming the key as written (``datasets[0].max_length``), what is allowed and the
value given, in the same shape as the trainer's config errors
(``trainer.messages.format_validation_error``): "sweep.yaml: The 'seeds' parameter must ...
Got 0 instead.".

A spec looks like this (see ``examples/quickstart.yaml``)::

    name: quickstart
    model: minilm-l6
    datasets:
      - {name: synthetic-sentiment, train_size: 512, metric: accuracy, k: [1, 2]}
    strategies: [vanilla, sda, noisytune, noisytune+sda]
    seeds: 3                       # or an explicit list: [0, 1, 2]
    grid: {distill.lambda: [1.0], distill.k: [1, all], noise.lambda: [0.15]}
    # K may also be given per strategy (here or in a dataset's `k`):
    #   distill.k: {se: [all], sda: [1, 2, 5, all], sdv: [1, 3], noisytune+sda: [1]}
    defaults: {optim: {epochs: 1, batch_size: 32}}
    resources: {cpu: 1, gpu: 0}    # gpu: a fraction (0.25), a count, or auto
    max_concurrent: 2
    storage: ./runs                # or s3://bucket/prefix, or an NFS path
    max_failures: 1
    decision: {alpha: 0.05, margin: 0.01}  # optional: the verdict's level and equivalence margin
    race: {start: 3, step: 2, max: 15}     # optional: seeds raced to a decision (no `seeds:`)
    confirm: {seeds: 10}           # optional: the choice retrained on 10 fresh seeds, with vanilla
    data_dir: ../data              # optional: relative data files are read from here
                                   # (relative to this file; --data-dir overrides it)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from trainer.catalog import TeacherSize
from trainer.config import METRICS, StrategyName, setting_adapter, setting_kind
from trainer.data_config import DataConfig
from trainer.errors import ConfigError
from trainer.fields import Seed, Strict
from trainer.loading import merge, parse_overrides, read_yaml_mapping
from trainer.messages import (
    NO_VALUE,
    UNION_TAG_PREFIX,
    ParameterError,
    format_validation_error,
    requirement_of,
)
from trainer.metrics import METRICS as TASK_METRICS
from trainer.strategies import STRATEGIES, knob, knob_matters

# Upper bounds on what a spec may ask for, checked before anything is expanded: a count
# beyond them is a typo (`seeds: 100000000000` would build the list before failing), and
# a sweep that really needs more is several sweeps.
MAX_SEEDS = 1000  # seeds per configuration (a list, a count, or a race's max)
MAX_TRIALS = 10_000  # Optuna candidates per study, retries per trial

# A dataset id names the trial directories (``sweeps.grid.trial_key``): two ids that a
# file name would write alike ("a b", "a/b") must not become one.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=@-]*")
# A sweep's name names its run directory.
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

# Keys of `defaults` that the spec sets per trial, so they cannot be defaults.
_PER_TRIAL_KEYS = ("model", "data", "strategy", "seed")


class _Strict(Strict):
    """A spec section: unknown keys and booleans where numbers go are errors."""


# A K grid: one list for every strategy that uses K, or a list per strategy. A tagged
# union, so an error names one shape's problem (the tags are dropped from error keys).
KGrid = Annotated[
    Annotated[list[TeacherSize], Tag(UNION_TAG_PREFIX + "list")]
    | Annotated[
        dict[Literal[STRATEGIES], list[TeacherSize]],  # type: ignore[valid-type]
        Tag(UNION_TAG_PREFIX + "per_strategy"),
    ],
    Discriminator(lambda v: UNION_TAG_PREFIX + ("per_strategy" if isinstance(v, dict) else "list")),
]


def _k_grid(value: Any) -> Any:
    """Scalars become one-element lists, at the top level and per strategy."""
    if isinstance(value, dict):
        return {strategy: _as_list(ks) for strategy, ks in value.items()}
    return _as_list(value)


def values_for(ks: list[Any] | dict[str, list[Any]] | None, strategy: str) -> list[Any] | None:
    """The list a grid gives ``strategy``, one list for all or a list per strategy
    (``None``: not swept for it; the setting at the trainer's default)."""
    if isinstance(ks, dict):
        return ks.get(strategy)
    return ks


# A training-set size of a learning curve
Size = Annotated[int, Field(ge=2)]


class DatasetSpec(_Strict):
    """One dataset: a trainer data spec plus the sweep's per-dataset settings.

    The entry is written flat (``{name: synthetic-sentiment, metric: mcc, k: [1, 2]}``);
    keys other than ``id``, ``metric``, ``k``, ``epochs`` and ``curve`` are the trainer's
    ``data`` section and are validated by ``trainer.data_config.DataConfig``.

    A list of training-set sizes (``train_size: [250, 500, 1000]``) asks for a learning
    curve: the spec becomes one dataset per size (``SweepSpec._learning_curves``), each
    decided on its own, whose ids are ``<id>@<size>`` and whose ``curve`` is ``<id>``.
    """

    id: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None,
        description="Short name in results (it names the trials' directories: letters, "
        "digits and . _ - = @); default: the source.",
    )
    metric: Literal[METRICS] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="The primary dev metric; default: the task's first (accuracy, "
        "pearson_spearman, entity_f1).",
    )
    k: KGrid | None = Field(
        default=None, description="K grid for this dataset (a list, or a list per strategy)."
    )
    epochs: Annotated[float, Field(gt=0)] | None = None
    sizes: Annotated[list[Size], Field(min_length=1)] | None = Field(
        default=None,
        alias="train_size",
        description="A learning curve's training-set sizes (a list under `train_size`).",
    )
    curve: str | None = Field(
        default=None, description="The learning curve a size of it belongs to (set by the spec)."
    )
    data: DataConfig

    @field_validator("id")
    @classmethod
    def _id_names_files(cls, value: str | None) -> str | None:
        if value is not None and not _ID_PATTERN.fullmatch(value):
            raise ParameterError(
                "must be letters, digits and . _ - = @, starting with a letter or digit: "
                "it names the trials' directories"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _split_flat(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if "data" not in value:
            own = {"id", "metric", "k", "epochs", "curve"}
            value = {
                **{k: v for k, v in value.items() if k in own},
                "data": {k: v for k, v in value.items() if k not in own},
            }
        data = value["data"]
        if isinstance(data, dict) and isinstance(data.get("train_size"), list):
            # a curve: its sizes are the entry's; the data is checked at the largest
            sizes = data["train_size"]
            numbers = [s for s in sizes if isinstance(s, int) and not isinstance(s, bool)]
            largest = max(numbers, default=None)
            data = {k: v for k, v in data.items() if k != "train_size"}
            value = {**value, "train_size": sizes, "data": {**data, "train_size": largest}}
        return value

    @model_validator(mode="after")
    def _curve_is_set_by_the_spec(self) -> DatasetSpec:
        """``curve`` marks a size the spec expanded (and a recorded spec keeps); set by
        hand on one dataset it would name a curve with no sizes."""
        size = self.data.train_size
        if self.curve is not None and (size is None or self.id != f"{self.curve}@{size}"):
            raise ParameterError(
                "is set by the spec for each size of a learning curve: give 'train_size' a "
                "list of sizes instead",
                key=("curve",),
                value=self.curve,
            )
        return self

    @field_validator("k", mode="before")
    @classmethod
    def _k_list(cls, value: Any) -> Any:
        return _k_grid(value)

    @model_validator(mode="after")
    def _metric_of_the_task(self) -> DatasetSpec:
        task = self.data.resolved_task
        if self.metric is not None and self.metric not in TASK_METRICS[task]:
            raise ParameterError(
                f"must be a metric of the dataset's task {task!r}: {list(TASK_METRICS[task])}",
                key=("metric",),
                value=self.metric,
            )
        return self

    @property
    def primary_metric(self) -> str:
        """The metric its decisions compare: as given, else its task's first."""
        return self.metric or TASK_METRICS[self.data.resolved_task][0]

    @field_validator("sizes")
    @classmethod
    def _each_size_once(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            twice = next(v for v in value if value.count(v) > 1)
            raise ParameterError(f"must list each size once; {twice} is there twice")
        return value

    def sizes_of_curve(self) -> list[DatasetSpec]:
        """The datasets of a learning curve, smallest first, each with its size (the same
        ``subset_seed``, so each subset lies inside the larger ones) and the held-out
        rows of the largest (``test_from_train_after``), so every size is scored on the
        same rows; ``[self]`` for a dataset of one size."""
        if not self.sizes:
            return [self]
        held_out = max(self.sizes) if self.data.test_from_train is not None else None
        return [
            self.model_copy(
                update={
                    "id": f"{self.label}@{size}",
                    "curve": self.label,
                    "sizes": None,
                    "data": self.data.model_copy(
                        update={"train_size": size, "test_from_train_after": held_out}
                    ),
                }
            )
            for size in sorted(self.sizes)
        ]

    @property
    def label(self) -> str:
        return self.id or self.data.source_label


def _as_list(value: Any) -> Any:
    if value is None or isinstance(value, list):
        return value
    return [value]


# Settings a grid or a search cannot sweep: the spec sets them per trial or per dataset.
_NOT_SWEPT = ("model", "strategy", "seed", "data", "eval.primary_metric", "cache_dir")


def check_setting(key: str, where: str) -> TypeAdapter:
    """The validator of a setting a sweep may vary (``optim.lr``), or a ParameterError
    saying why ``key`` is not one."""
    if any(key == n or key.startswith(f"{n}.") for n in _NOT_SWEPT):
        raise ParameterError(
            f"must not be swept: the spec sets {key!r} per trial or per dataset "
            "(from 'model', 'datasets', 'strategies' and 'seeds')",
            key=(key,),
            value=NO_VALUE,
        )
    try:
        adapter = setting_adapter(key)
    except KeyError as exc:
        raise ParameterError(
            f"is not a trainer setting {where} can sweep: {exc.args[0]}",
            key=(key,),
            value=NO_VALUE,
        ) from None
    return adapter


def _setting_values(adapter: Any, key: tuple[str, ...], values: Any) -> list[Any]:
    """One grid list of a trainer setting, each value validated by the setting itself."""
    listed = _as_list(values)
    if not listed:
        raise ParameterError("must list at least one value", key=key, value=values)
    checked = []
    for i, v in enumerate(listed):
        if isinstance(v, (dict, list)):
            raise ParameterError(
                "must be a list of single values (numbers, strings or booleans)",
                key=(*key, i),
                value=v,
            )
        if isinstance(v, bool) and setting_kind(adapter) is not None:
            raise ParameterError("must be a number, not a boolean", key=(*key, i), value=v)
        try:
            checked.append(adapter.validate_python(v))
        except ValidationError as err:
            raise ParameterError(requirement_of(err), key=(*key, i), value=v) from None
        if isinstance(checked[-1], (list, tuple)):
            raise ParameterError(
                "must be a setting with single values; a list-valued setting cannot be swept",
                key=key,
                value=values,
            )
    if len(set(map(repr, checked))) != len(checked):
        raise ParameterError("must list each value once", key=key, value=values)
    return checked


class GridSpec(_Strict):
    """Values to sweep, by dotted trainer key: the papers' knobs (``distill.k``,
    ``distill.lambda``, ``noise.lambda``) like any other scalar setting (``optim.lr``,
    ``reinit.layers``, ``recadam.gamma``). A key takes one list, for every strategy that
    reads it (``trainer.strategies.knob_matters``), or a list per strategy; each value is
    validated by the setting itself."""

    model_config = ConfigDict(extra="allow", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _settings(cls, value: Any) -> Any:
        """Each key: a setting the trainer has, with a list of valid scalar values."""
        if not isinstance(value, dict):
            return value
        out = {}
        for key, values in value.items():
            adapter = check_setting(key, "a grid")
            if isinstance(values, dict):  # a list per strategy
                out[key] = {
                    strategy: _setting_values(adapter, (key, strategy), per_strategy)
                    for strategy, per_strategy in values.items()
                }
            else:
                out[key] = _setting_values(adapter, (key,), values)
        return out

    @property
    def settings(self) -> dict[str, list[Any] | dict[str, list[Any]]]:
        """The swept settings as written: one list, or a list per strategy (the
        strategies it names; the others keep their defaults)."""
        return dict(self.model_extra or {})

    def values_of(self, key: str) -> list[Any] | dict[str, list[Any]] | None:
        """The grid's values of a dotted key (None: not swept)."""
        return self.settings.get(key)


class ResourcesSpec(_Strict):
    """Per-trial resources. ``gpu`` is a fraction (several trials share a GPU), a whole
    count, or ``auto`` (a fraction from the model's size and the GPU's memory)."""

    cpu: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    gpu: Annotated[float, Field(ge=0, allow_inf_nan=False)] | Literal["auto"] = 0.0

    @field_validator("gpu")
    @classmethod
    def _whole_above_one(cls, value: Any) -> Any:
        if isinstance(value, float) and value > 1 and not value.is_integer():
            raise ParameterError("must be at most 1 (a share of one GPU) or a whole number of GPUs")
        return value


class SearchSpec(_Strict):
    """Optuna search of one numeric setting (a λ, ``optim.lr``, ...) for each (dataset,
    strategy, other knobs) cell where it matters."""

    method: Literal["optuna"] = "optuna"
    param: str = Field(description="A float or int trainer setting, by dotted key.")
    low: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    high: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    log: bool = False
    n_trials: Annotated[int, Field(ge=1, le=MAX_TRIALS)] = 10
    seeds_per_candidate: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Seeds per λ candidate (the first ones of `seeds`); default all."
    )
    sampler: Literal["tpe", "random"] = "tpe"
    sampler_seed: int = 0
    storage: str | None = Field(
        default=None, description="Optuna storage URL; default sqlite:///<run dir>/optuna.db."
    )

    @field_validator("param")
    @classmethod
    def _numeric_setting(cls, value: str) -> str:
        if value == "distill.k":
            raise ParameterError("must not be distill.k: give K values in the grid instead")
        try:
            adapter = check_setting(value, "a search")
        except ParameterError as err:
            raise ParameterError(err.requirement) from None
        if setting_kind(adapter) is None:
            raise ParameterError("must be a trainer setting that takes numbers")
        return value

    @property
    def is_int(self) -> bool:
        """Whether the searched setting takes integers (Optuna's suggest_int)."""
        return setting_kind(setting_adapter(self.param)) == "int"

    @model_validator(mode="after")
    def _range(self) -> SearchSpec:
        adapter = setting_adapter(self.param)
        for key in ("low", "high"):
            value = getattr(self, key)
            if self.is_int and not float(value).is_integer():
                raise ParameterError(
                    f"must be a whole number: {self.param} takes integers", key=(key,),
                    value=value,
                )  # fmt: skip
            try:
                adapter.validate_python(int(value) if self.is_int else value)
            except ValidationError as err:
                raise ParameterError(
                    f"{requirement_of(err)} (a value of {self.param})", key=(key,), value=value
                ) from None
        if self.high <= self.low:
            raise ParameterError(
                f"must be greater than 'low' ({self.low})", key=("high",), value=self.high
            )
        if self.log and self.low <= 0:
            raise ParameterError(
                "must be greater than 0 when 'log' is true", key=("low",), value=self.low
            )
        return self


class DecisionSpec(_Strict):
    """How a dataset's verdict is decided (``analysis._decide``; docs/analysis.md)."""

    alpha: Annotated[float, Field(gt=0, lt=0.5, allow_inf_nan=False)] = 0.05
    margin: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = Field(
        default=None,
        description="Equivalence margin in units of the primary metric; default per metric "
        "(accuracy and macro_f1 0.01, mcc 0.02).",
    )

    split: str = Field(
        default="dev",
        description="The split verdicts are decided on: dev, test, or an extra evaluation "
        "split every dataset has (a cross-lingual test set: 'de').",
    )

    min_gain: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        default=0.0,
        description="'better' means better than vanilla by more than this, in units of the "
        "primary metric (tested: Δ = min_gain rejected with Δ above it). Default 0.",
    )

    max_failure_rate: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] | None = Field(
        default=None,
        description="'better' only for a configuration whose rate of failed seeds (collapsed "
        "or diverged) is shown below this (one-sided 1 - alpha bound): 0.1 needs 29 seeds "
        "without a failure. Default: only not shown above vanilla's (docs/analysis.md).",
    )

    def settings(self):
        from analysis._decide import DecisionSettings

        return DecisionSettings(alpha=self.alpha, margin=self.margin, split=self.split,
                                min_gain=self.min_gain,
                                max_failure_rate=self.max_failure_rate)  # fmt: skip


class RaceSpec(_Strict):
    """Seeds raced to a decision instead of a fixed count (``sweeps/race.py``)."""

    start: Annotated[int, Field(ge=2)] = 3
    step: Annotated[int, Field(ge=1)] = 2
    max: Annotated[int, Field(ge=2, le=MAX_SEEDS)] = 15
    budget_trials: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="At most this many trials per dataset's race."
    )

    @model_validator(mode="after")
    def _order(self) -> RaceSpec:
        if self.max < self.start:
            raise ParameterError(
                f"must be at least 'start' ({self.start})", key=("max",), value=self.max
            )
        return self


# The most fresh seeds a confirmation may ask for: 2 × 100 trials per dataset is already
# more than any grid here; a larger number is a typo, not a plan.
MAX_CONFIRM_SEEDS = 100


class ConfirmSpec(_Strict):
    """The choice confirmed on fresh seeds (``sweeps/confirm.py``): once a dataset's
    selection has ended with a configuration other than vanilla, ``seeds`` new seeds of
    it and of vanilla are trained and the report tests it on those alone."""

    seeds: Annotated[int, Field(ge=2, le=MAX_CONFIRM_SEEDS)] = Field(
        default=10,
        description="Fresh seeds of the chosen configuration and of vanilla each; 10 confirm "
        "a gain of one std of the seeds' paired differences with 80 % power (5: 1.7 "
        "stds; 20: 0.66).",
    )


class MLflowSpec(_Strict):
    """``callbacks.mlflow``: Ray Tune's MLflowLoggerCallback, a run per trial."""

    tracking_uri: str | None = Field(
        default=None, description="MLflow tracking URI; default: sqlite:///<run dir>/mlflow.db."
    )
    experiment: str | None = Field(default=None, description="Default: the sweep's name.")


class WandbSpec(_Strict):
    """``callbacks.wandb``: Ray Tune's WandbLoggerCallback, a run per trial."""

    project: str | None = Field(default=None, description="Default: the sweep's name.")
    mode: Literal["online", "offline", "disabled"] | None = Field(
        default=None, description="wandb's mode; offline needs no network. Default: wandb's."
    )


class CallbacksSpec(_Strict):
    """Trackers fed by Ray Tune's own logger callbacks (``sweeps/_trackers.py``). They
    record what ran; they never change a trial, so they are no part of a run dir's
    identity: adding one to a finished sweep's spec is allowed."""

    mlflow: MLflowSpec | None = None
    wandb: WandbSpec | None = None
    tensorboard: bool = Field(
        default=False,
        description="TensorBoard events per trial in <run dir>/trials/<key>/tensorboard.",
    )


class SweepSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=_NAME_PATTERN)]
    model: str = "minilm-l6"
    datasets: Annotated[list[DatasetSpec], Field(min_length=1)]
    strategies: Annotated[list[StrategyName], Field(min_length=1)]
    seeds: (
        Annotated[int, Field(ge=1, le=MAX_SEEDS)]
        | Annotated[list[Seed], Field(min_length=1, max_length=MAX_SEEDS)]
    ) = 3
    grid: GridSpec = GridSpec()
    defaults: dict[str, Any] = Field(
        default_factory=dict, description="Trainer config shared by every trial."
    )
    resources: ResourcesSpec = ResourcesSpec()
    max_concurrent: Annotated[int, Field(ge=1)] | None = None
    storage: str = "./runs"
    max_failures: Annotated[int, Field(ge=0, le=MAX_TRIALS)] = 1
    search: SearchSpec | None = None
    decision: DecisionSpec = DecisionSpec()
    race: RaceSpec | None = None
    confirm: ConfirmSpec | None = None
    callbacks: CallbacksSpec = CallbacksSpec()

    @field_validator("strategies", mode="before")
    @classmethod
    def _strategies_list(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds_shape(cls, value: Any) -> Any:
        """A count or a list, said once: the union's two branches would each report a
        failure ("must be >= 1", "must be a valid list") for one mistake."""
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, list))
            or (isinstance(value, int) and not 1 <= value <= MAX_SEEDS)
        ):
            raise ParameterError(
                f"must be a number of seeds from 1 to {MAX_SEEDS} (seeds 0, 1, ...) or a "
                "list of seeds"
            )
        return value

    @field_validator("defaults")
    @classmethod
    def _no_per_trial_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in _PER_TRIAL_KEYS if k in value]
        if bad:
            raise ParameterError(
                f"must be left out: {bad[0]!r} cannot be a default, the spec sets it per trial "
                "(from its 'model', 'datasets', 'strategies' and 'seeds' keys)",
                key=(bad[0],),
                value=value[bad[0]],
            )
        return value

    @model_validator(mode="after")
    def _learning_curves(self) -> SweepSpec:
        """Each dataset with a list of training-set sizes becomes one dataset per size
        (:meth:`DatasetSpec.sizes_of_curve`), in place, before any other check."""
        if not any(d.sizes for d in self.datasets):
            return self
        expanded = [size for d in self.datasets for size in d.sizes_of_curve()]
        return self.model_copy(update={"datasets": expanded})

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        for key, values in (("strategies", self.strategies), ("seeds", self.seeds)):
            if isinstance(values, list) and len(set(values)) != len(values):
                twice = next(v for v in values if values.count(v) > 1)
                raise ParameterError(
                    f"must list each value once; {twice!r} is there twice",
                    key=(key,),
                    value=values,
                )
        self._check_grids()
        self._check_race()
        self._check_decision_split()
        labels = [d.label for d in self.datasets]
        for i, label in enumerate(labels):
            if label in labels[:i]:
                raise ParameterError(
                    f"must differ from the id of datasets[{labels.index(label)}]: results are "
                    "keyed by dataset; give each dataset its own 'id'",
                    key=("datasets", i, "id"),
                    value=label,
                )
        if self.search is not None:
            param = self.search.param
            if self.grid.values_of(param) is not None:
                raise ParameterError(
                    f"must not be a knob the grid also sweeps: 'grid.{param}' and "
                    f"'search.param: {param}' both set it; remove one of them",
                    key=("search", "param"),
                    value=param,
                )
            if not any(knob_matters(param, s) for s in self.strategies):
                allowed = [s for s in STRATEGIES if knob_matters(param, s)]
                raise ParameterError(
                    f"must be a knob one of the spec's strategies uses: it matters for none "
                    f"of {self.strategies}, only for {allowed}",
                    key=("search", "param"),
                    value=param,
                )
            if self.race is not None:
                raise ParameterError(
                    "must be left out when 'race' is set: a race gives seeds to the grid's "
                    "configurations; search one λ without a race, or race a λ grid",
                    key=("search",),
                    value=self.search.param,
                )
            if self.confirm is not None:
                raise ParameterError(
                    "must be left out when 'confirm' is set: the confirmation retrains the "
                    "configuration a grid or a race chose; confirm a searched λ by giving it "
                    "to a grid",
                    key=("search",),
                    value=self.search.param,
                )
            n = self.search.seeds_per_candidate
            if n is not None and n > len(self.seed_list):
                raise ParameterError(
                    f"must be at most the number of seeds in 'seeds' ({len(self.seed_list)})",
                    key=("search", "seeds_per_candidate"),
                    value=n,
                )
        return self

    def _check_decision_split(self) -> None:
        """Every dataset scores the split verdicts are decided on."""
        split = self.decision.split
        for i, d in enumerate(self.datasets):
            data = d.data
            has_test = (
                data.name is not None
                or data.test_from_train is not None
                or (data.files is not None and data.files.test is not None)
                or (data.hub is not None and "test" in data.hub.splits)
            )
            has = {"dev", *(["test"] if has_test else []), *data.extra_splits}
            if split not in has:
                raise ParameterError(
                    f"must name a split every dataset scores; datasets[{i}] ({d.label!r}) "
                    f"has {sorted(has)}",
                    key=("decision", "split"),
                    value=split,
                )

    def _check_grids(self) -> None:
        """Each swept key is read by one of the spec's strategies; a per-strategy list
        names strategies of this spec that read it (every one of them, for a knob whose
        default differs by strategy: K); no strategy is left only values it refuses."""
        grids: list[tuple[tuple[str | int, ...], str, Any]] = [
            (("grid", key), key, values) for key, values in self.grid.settings.items()
        ] + [(("datasets", i, "k"), "distill.k", d.k) for i, d in enumerate(self.datasets)
             if d.k is not None]  # fmt: skip
        for where, key, values in grids:
            readers = [s for s in self.strategies if knob_matters(key, s)]
            if not readers:
                everyone = [s for s in STRATEGIES if knob_matters(key, s)]
                raise ParameterError(
                    f"must be a setting one of the spec's strategies reads: it matters for "
                    f"none of {self.strategies}, only for {everyone[:4]}",
                    key=where,
                    value=NO_VALUE,
                )
            if isinstance(values, dict):
                self._check_per_strategy(where, key, values, readers)
            self._check_refused(where, key, values, readers)

    def _check_per_strategy(
        self, where: tuple[str | int, ...], key: str, values: dict[str, Any], readers: list[str]
    ) -> None:
        """A per-strategy list names strategies of this spec that read the setting."""
        for strategy in values:
            if strategy not in self.strategies:
                raise ParameterError(
                    f"must name strategies of this spec {list(self.strategies)}; "
                    f"{strategy!r} is not one",
                    key=(*where, strategy),
                    value=values[strategy],
                )
            if strategy not in readers:
                raise ParameterError(
                    f"must name strategies that read {key!r}; {strategy!r} does not",
                    key=(*where, strategy),
                    value=values[strategy],
                )
        missing = [s for s in readers if s not in values]
        if missing and knob(key).every_reader:
            raise ParameterError(
                f"must give a list for every strategy of this spec that reads {key!r} (its "
                f"default differs by strategy); it gives none for {missing}",
                key=where,
                value=values,
            )

    def _check_refused(
        self, where: tuple[str | int, ...], key: str, values: Any, readers: list[str]
    ) -> None:
        """No strategy gets a value it refuses (SDV's K = 'all') from its own list, nor
        only such values from a list shared by all (which drops them for it)."""
        refuses = knob(key).refuses
        if refuses is None:
            return
        per_strategy = isinstance(values, dict)
        for strategy in readers:
            given = values_for(values, strategy)
            reasons = [refuses(strategy, v) for v in given or ()]
            if not reasons or not (any(reasons) if per_strategy else all(reasons)):
                continue
            shared = "" if per_strategy else (
                "; this list, shared by every strategy, leaves it none of them (give a list "
                "per strategy)"
            )  # fmt: skip
            raise ParameterError(
                f"must give {strategy!r} {next(r for r in reasons if r)}{shared}",
                key=(*where, strategy) if per_strategy else where,
                value=given,
            )

    def _check_race(self) -> None:
        """A race needs vanilla (its reference) and a seed pool of ``max`` seeds: the
        seeds are 0 … max−1, or the first ``max`` of an explicit list. It races one
        vanilla per dataset, so it cannot sweep a setting vanilla reads too."""
        if self.race is None:
            return
        shared = [
            k
            for k, v in self.grid.settings.items()
            if ("vanilla" in v if isinstance(v, dict) else knob_matters(k, "vanilla"))
        ]
        if shared:
            raise ParameterError(
                f"must not sweep {shared[0]!r} when 'race' is set: every strategy reads it, so "
                "each value needs a vanilla of its own and a race of its own; race one "
                "value per sweep (set it in 'defaults')",
                key=("grid", shared[0]),
                value=self.grid.settings[shared[0]],
            )
        if "vanilla" not in self.strategies:
            raise ParameterError(
                "must include 'vanilla' when 'race' is set: every configuration is raced "
                "against vanilla, paired by seed",
                key=("strategies",),
                value=self.strategies,
            )
        if "seeds" in self.model_fields_set:
            if isinstance(self.seeds, int):
                raise ParameterError(
                    f"must be left out (or be a list of at least race.max = {self.race.max} "
                    "seeds) when 'race' is set: the race decides how many seeds each "
                    "configuration gets",
                    key=("seeds",),
                    value=self.seeds,
                )
            if len(self.seeds) < self.race.max:
                raise ParameterError(
                    f"must list at least race.max = {self.race.max} seeds when 'race' is set",
                    key=("seeds",),
                    value=self.seeds,
                )

    # -- derived ------------------------------------------------------------------
    @property
    def seed_list(self) -> list[int]:
        """The seeds of every configuration; with ``race``, the pool a race draws from."""
        if self.race is not None:
            if isinstance(self.seeds, list) and "seeds" in self.model_fields_set:
                return list(self.seeds)[: self.race.max]
            return list(range(self.race.max))
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    @property
    def confirm_seeds(self) -> list[int]:
        """The fresh seeds of a confirmation: after every seed the selection may use."""
        if self.confirm is None:
            return []
        first = max(self.seed_list) + 1
        return list(range(first, first + self.confirm.seeds))

    @property
    def candidate_seeds(self) -> list[int]:
        """Seeds each Optuna candidate is trained with."""
        assert self.search is not None
        n = self.search.seeds_per_candidate or len(self.seed_list)
        return self.seed_list[:n]

    def is_remote_storage(self) -> bool:
        return "://" in self.storage and not self.storage.startswith("file://")

    def run_dir(self, base: Path | None = None) -> str:
        """``<storage>/<name>``: a local absolute path, or a URI for remote storage."""
        if self.is_remote_storage():
            return f"{self.storage.rstrip('/')}/{self.name}"
        storage = self.storage.removeprefix("file://")
        root = Path(storage) if Path(storage).is_absolute() else (base or Path.cwd()) / storage
        return str((root / self.name).resolve())


def load_spec(
    source: dict[str, Any] | str | Path,
    data_dir: str | Path | None = None,
    overrides: list[str] | None = None,
) -> SweepSpec:
    """Validate a sweep spec given as a dict or a YAML path; raise ``ConfigError``.

    ``overrides`` are the CLI's ``--set key.sub=value`` pairs (``seeds=5``,
    ``defaults.optim.lr=1e-4``), merged into the spec before validation so that they are
    checked exactly like the file (see :func:`parse_spec_overrides`).

    Relative data ``files`` paths are resolved here, once, so trials on any worker read
    the same absolute paths: against ``data_dir`` (the CLI's ``--data-dir``, relative to
    the current directory), else the spec's own ``data_dir:`` key (relative to the spec
    file), else the spec file's folder.
    """
    where = "sweep spec"
    if isinstance(source, (str, Path)):
        where = str(source)
        raw = read_yaml_mapping(source, "sweep spec")
        spec_folder = Path(source).parent
    else:
        raw = dict(source)
        spec_folder = Path.cwd()
    if overrides:
        _refuse_list_paths(raw, overrides)
        raw = merge(raw, parse_spec_overrides(overrides))
    spec_data_dir = raw.pop("data_dir", None)
    if data_dir is not None:
        base = Path(data_dir)
    elif spec_data_dir is not None:
        if not isinstance(spec_data_dir, str):
            raise ConfigError(f"{where}: 'data_dir' must be a path, got {spec_data_dir!r}")
        base = spec_folder / Path(spec_data_dir).expanduser()
    else:
        base = spec_folder
    if (data_dir is not None or spec_data_dir is not None) and not base.is_dir():
        origin = "--data-dir" if data_dir is not None else "'data_dir'"
        raise ConfigError(f"{where}: {origin} {str(base)!r} is not a directory")
    raw = _absolute_data_files(raw, base)
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where, raw, SweepSpec)) from None


def parse_spec_overrides(pairs: list[str]) -> dict[str, Any]:
    """``--set`` pairs as a nested dict, parsed like ``steadytune train --set``
    (``trainer.loading.parse_overrides``), except below ``grid``: a grid's keys are dotted
    trainer keys themselves, so ``grid.optim.lr=[1e-4, 2e-4]`` sets the grid key
    ``optim.lr`` rather than a section ``optim`` of the grid."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        parsed = parse_overrides([pair])
        key = pair.partition("=")[0].strip()
        section, _, grid_key = key.partition(".")
        if section == "grid" and grid_key:
            value: Any = parsed
            for part in key.split("."):
                value = value[part]
            parsed = {"grid": {grid_key: value}}
        tree = merge(tree, parsed)
    return tree


def _refuse_list_paths(raw: dict[str, Any], pairs: list[str]) -> None:
    """``--set`` reaches keys of mappings only: through a list (``datasets.0.k``) it would
    replace the whole list by a mapping, and the error would be about the list."""
    for pair in pairs:
        parts = pair.partition("=")[0].strip().split(".")
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, list):
                raise ConfigError(
                    f"--set {'.'.join(parts)}: {'.'.join(parts[: i + 1])!r} is a list, and "
                    "--set only sets keys of mappings; change the list in the spec file"
                )


def _absolute_data_files(raw: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative ``files`` paths become absolute (against ``base``), not a worker's cwd."""
    datasets = raw.get("datasets")
    if not isinstance(datasets, list):
        return raw
    fixed = []
    for entry in datasets:
        files = entry.get("files") if isinstance(entry, dict) else None
        if isinstance(files, dict):
            files = {
                k: str((base / Path(v).expanduser()).resolve())
                if k in ("train", "dev", "test") and isinstance(v, str) and "://" not in v
                else v
                for k, v in files.items()
            }
            entry = {**entry, "files": files}
        fixed.append(entry)
    return {**raw, "datasets": fixed}


def spec_to_dict(spec: SweepSpec) -> dict[str, Any]:
    """The spec as plain data that loads back (aliases, no defaults dropped)."""
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    if spec.race is not None and "seeds" not in spec.model_fields_set:
        del data["seeds"]  # the race's pool, not a count the spec gave
    data["datasets"] = [
        {**{k: v for k, v in d.items() if k != "data"}, **d["data"]} for d in data["datasets"]
    ]
    return data
