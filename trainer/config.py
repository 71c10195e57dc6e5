"""The trial configuration: one validated object that travels with the run.

Every knob a trial has lives here, with its constraint declared once, so that a bad
value is refused at the edge ("The 'distill.k' parameter must be ...") before a model
is loaded or a GPU is touched. The resolved config is written into every checkpoint
and into ``result.json``: a trial is a pure function of it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    TypeAdapter,
    create_model,
    field_validator,
    model_validator,
)

from trainer import strategies
from trainer.catalog import TeacherSize
from trainer.data_config import DataConfig
from trainer.fields import Beta, Finite, Seed, Strict
from trainer.messages import ParameterError, model_in
from trainer.metrics import METRICS as TASK_METRICS
from trainer.strategies import STRATEGIES

# Every metric name a config may make primary (each task's: trainer/metrics.py)
METRICS = tuple(name for names in TASK_METRICS.values() for name in names)


def _strategy_name(value: Any) -> Any:
    """One line for a wrong name, not the list of every combination the registry allows."""
    if value in STRATEGIES or not isinstance(value, str):
        return value
    parts = value.split("+")
    ordered = [m for m in strategies.MODIFIERS if m in parts] + [
        p for p in parts if p in strategies.BASES and p != "vanilla"
    ]
    if sorted(ordered) == sorted(p for p in parts if p != "vanilla") and "+".join(ordered):
        close = ["+".join(ordered)]  # the right parts in the wrong order
    else:
        close = difflib.get_close_matches(value, STRATEGIES, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close and close[0] in STRATEGIES else ""
    raise ParameterError(
        f"must be a base strategy ({', '.join(map(repr, strategies.BASES))}), after any "
        f"modifiers in this order: {' + '.join(strategies.MODIFIERS)}, joined by '+' "
        f"(e.g. 'noisytune+sda', 'reinit+sdv'){hint}"
    )


StrategyName = Annotated[
    Literal[STRATEGIES],  # type: ignore[valid-type]
    BeforeValidator(_strategy_name),
]


class OptimConfig(Strict):
    group_by_length: bool = Field(
        default=True,
        description="Batch examples of similar length (random mega-batches sorted by length, "
        "batches shuffled): far less padding on short-sentence data.",
    )
    epochs: Annotated[Finite, Field(gt=0)] = 3
    max_steps: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] = 32
    lr: Annotated[Finite, Field(gt=0)] = 2e-5
    head_lr: Annotated[Finite, Field(gt=0)] = 1e-3
    layer_decay: Annotated[Finite, Field(gt=0, le=1)] = Field(
        default=1.0,
        description="Layer-wise lr decay: encoder layer l of L trains at lr·decay^(L−l), the "
        "embeddings at lr·decay^L, the head at head_lr; 1.0 = off.",
    )
    weight_decay: Annotated[Finite, Field(ge=0)] = 0.01
    warmup_ratio: Annotated[Finite, Field(ge=0, le=1)] = 0.1
    max_grad_norm: Annotated[Finite, Field(gt=0)] | None = Field(
        default=1.0, description="Clip the gradient norm to this; null = no clipping."
    )
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: Annotated[Finite, Field(gt=0)] = 1e-8


class EvalConfig(Strict):
    every_steps: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Evaluate every N optimizer steps; None = every epoch."
    )
    batch_size: Annotated[int, Field(ge=1)] = 128
    primary_metric: Literal[METRICS] = Field(  # type: ignore[valid-type]
        default="accuracy",
        description="The dev metric decisions, races and searches compare; default: the "
        "task's first (accuracy, pearson_spearman, entity_f1).",
    )
    self_ensembles: list[TeacherSize] = Field(
        default_factory=list,
        description="SE windows (K) evaluated beside this run's student, as 'se_k<K>': SE "
        "never changes training, so a sweep evaluates its SE trials from the plain run.",
    )

    @field_validator("self_ensembles")
    @classmethod
    def _each_window_once(cls, value: list) -> list:
        if len(set(map(str, value))) != len(value):
            raise ParameterError("must list each K once")
        return value


class CheckpointConfig(Strict):
    every_steps: Annotated[int, Field(ge=1)] | None = Field(
        default=200, description="Checkpoint every N optimizer steps (and at every evaluation)."
    )
    keep_final: bool = Field(
        default=False,
        description="Keep the last checkpoint (model, optimizer, teacher ring) once the run has "
        "finished. It only serves to resume an unfinished run and weighs 0.25-0.8 GB for "
        "MiniLM, so by default it is deleted after result.json is written.",
    )


def _settle(model: BaseModel, name: str, value: object) -> None:
    """Set a field of a frozen model while it is validated (an after-validator filling in
    a default that depends on other fields). Returning a copy instead is honoured by
    ``model_validate`` but silently dropped by ``TrainConfig(...)``."""
    object.__setattr__(model, name, value)


class _Settings(Strict):
    """Everything one trial needs but the strategies' sections (see :data:`TrainConfig`)."""

    model: str = Field(
        default="minilm-l6",
        description="An alias ('minilm-l6', 'tiny-bert'), a local directory or a hub id.",
    )
    data: DataConfig
    strategy: StrategyName = "vanilla"
    seed: Seed = 0
    optim: OptimConfig = OptimConfig()
    eval: EvalConfig = EvalConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Annotated[int, Field(ge=1)] = Field(
        default=1,
        description="Intra-op CPU threads torch uses for this trial. A CPU run is bit-exact "
        "only for a given thread count (reductions split their sums by thread), so the "
        "sweep sets it from `resources.cpu` and a trial's config rerun with `steadytune "
        "train` reproduces the sweep's result. The default 1 matches the sweep's default "
        "`resources.cpu: 1`.",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto = bf16 autocast on CUDA, fp32 on CPU."
    )
    save_model: bool = False
    cache_dir: Path | None = Field(
        default=None,
        description="Tokenised data and generated models; default $STEADYTUNE_CACHE or "
        "~/.cache/steadytune.",
    )

    @model_validator(mode="after")
    def _sections_follow_the_strategy(self) -> _Settings:
        """A section added since 0.1.0 is its part's: None (off) where the strategy lacks
        the part, its defaults where the strategy has it and leaves it out. A value given
        for a part the strategy lacks is validated, then dropped, like ``noise.lambda``
        on vanilla: it changes nothing that trains."""
        update = {}
        for name, (model, optional) in strategies.sections().items():
            if not optional:
                continue
            used = any(p in strategies.section_owners(name) for p in self.strategy.split("+"))
            if used and getattr(self, name) is None:
                update[name] = model()
            elif not used and getattr(self, name) is not None:
                update[name] = None
        for name, value in update.items():
            _settle(self, name, value)
        return self

    @model_validator(mode="after")
    def _metric_of_the_task(self) -> _Settings:
        """The primary metric is one the task has: its first unless one is named."""
        task = self.data.resolved_task
        metric = self.eval.primary_metric
        if "primary_metric" not in self.eval.model_fields_set:
            default = TASK_METRICS[task][0]
            if metric != default:
                _settle(self, "eval", self.eval.model_copy(update={"primary_metric": default}))
        elif metric not in TASK_METRICS[task]:
            raise ParameterError(
                f"must be a metric of the task {task!r}: {list(TASK_METRICS[task])}",
                key=("eval", "primary_metric"),
                value=metric,
            )
        return self

    @model_validator(mode="after")
    def _parts_agree(self) -> _Settings:
        strategies.check_config(self)
        return self

    # -- what the strategy name implies (trainer/strategies.py) ----------------------
    @property
    def uses_noise(self) -> bool:
        return strategies.uses_noise(self.strategy)

    @property
    def base_strategy(self) -> str:
        """The strategy without its modifiers ('noisytune' alone -> 'vanilla')."""
        return strategies.base_strategy(self.strategy)

    @property
    def teacher_k(self) -> int | Literal["all"] | None:
        """The resolved K, or None for strategies without a window (vanilla, NoisyTune,
        SDA's EMA teacher)."""
        if strategies.default_k(self.strategy) is None or self.distill.average == "ema":
            return None
        if self.distill.k is not None:
            return self.distill.k
        return strategies.default_k(self.strategy)  # type: ignore[return-value]


def _section_fields() -> dict[str, Any]:
    """A field per section a part owns (``trainer/catalog.py``): ``noise``,
    ``distill``, ``reinit`` always present; newer ones None where their part is absent."""
    fields: dict[str, Any] = {}
    for name, (model, optional) in strategies.sections().items():
        fields[name] = (model | None, None) if optional else (model, model())
    return fields


TrainConfig = create_model(
    "TrainConfig",
    __base__=_Settings,
    __doc__="Everything one trial needs. See ``examples/train-tiny.yaml`` for a full file.\n\n"
    "The sections of the strategies' parts (``noise``, ``distill``, ...) are declared with "
    "the parts in ``trainer/catalog.py``, so a new strategy adds its section there.",
    __module__=__name__,
    **_section_fields(),
)


def default_cache_dir() -> Path:
    """Where tokenized data and generated models go when ``cache_dir`` is unset:
    $STEADYTUNE_CACHE, else ~/.cache/steadytune."""
    return Path(os.environ.get("STEADYTUNE_CACHE", Path.home() / ".cache" / "steadytune"))


def setting_adapter(dotted: str) -> TypeAdapter:
    """A validator for the values of one trainer setting, by its dotted key as written
    (``optim.lr``, ``distill.lambda``): what a sweep's grid or search may set. A key that is
    no setting, or names a whole section, is a ``KeyError`` naming the known keys there."""
    model: type[BaseModel] = TrainConfig
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        fields = {(f.alias or name): f for name, f in model.model_fields.items()}
        if part not in fields:
            where = ".".join(parts[:i]) or "the config"
            close = difflib.get_close_matches(part, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise KeyError(f"{where} has no key {part!r}{hint}; it has {sorted(fields)}")
        field = fields[part]
        inner = model_in(field.annotation)
        if i == len(parts) - 1:
            if inner is not None:
                raise KeyError(f"{dotted!r} is a section, not a setting")
            constrained = (
                Annotated[(field.annotation, *field.metadata)]
                if field.metadata
                else field.annotation
            )
            return TypeAdapter(constrained)
        if inner is None:
            raise KeyError(f"{'.'.join(parts[: i + 1])!r} is a setting, not a section")
        model = inner
    raise KeyError(dotted)


def setting_kind(adapter: TypeAdapter) -> Literal["int", "float"] | None:
    """Whether a setting takes floats, ints or neither (from its JSON schema)."""
    schema = adapter.json_schema()
    types = {schema.get("type")} | {branch.get("type") for branch in schema.get("anyOf", [])}
    if "number" in types:
        return "float"
    return "int" if "integer" in types else None
