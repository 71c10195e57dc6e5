"""The trial configuration: one validated object that travels with the run.

Every knob a trial has lives here, with its constraint declared once, so that a bad
value is refused at the edge ("The 'distill.k' parameter must be ...") before a model
is loaded or a GPU is touched. The resolved config is written into every checkpoint
and into ``result.json``: a trial is a pure function of it.
"""

from __future__ import annotations

import difflib
import os
import re
from numbers import Integral
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainValidator,
    TypeAdapter,
    field_validator,
    model_validator,
)

from trainer import strategies
from trainer.data_config import DataConfig
from trainer.fields import Beta, Finite, Seed, Strict
from trainer.messages import ParameterError, model_in
from trainer.strategies import STRATEGIES

METRICS = ("accuracy", "macro_f1", "mcc")


class NoiseConfig(Strict):
    """NoisyTune: W <- W + noise * lambda * std(W), before fine-tuning (Wu et al. 2022)."""

    lam: Annotated[float, Field(alias="lambda", ge=0.0, allow_inf_nan=False)] = 0.15
    distribution: Literal["uniform", "gaussian"] = "uniform"
    scope: Literal["matrix", "global"] = "matrix"
    exclude: tuple[str, ...] = Field(
        default=(),
        description="Regular expressions; parameters whose name matches any are left as they are.",
    )

    @field_validator("exclude", mode="before")
    @classmethod
    def _one_pattern_is_a_list(cls, value: Any) -> Any:
        """``exclude: classifier`` means the one pattern, not its letters."""
        return [value] if isinstance(value, str) else value

    @field_validator("exclude")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """The patterns are compiled only when the model is perturbed, after it is loaded;
        a typo in one should not wait for that, nor end in a ``re.error`` traceback."""
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ParameterError(
                    f"must be a regular expression (Python's re module): {exc}",
                    key=(i,),
                    value=pattern,
                ) from None
        return value


class ReinitConfig(Strict):
    """Re-initialisation of the top encoder layers and the pooler (Zhang et al. 2021)."""

    layers: Annotated[int, Field(ge=1)] = Field(
        default=1, description="How many of the top encoder layers to re-initialise."
    )


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


def _teacher_size(value: Any) -> int | str:
    """K as one rule, not a union: a union reports every branch that failed ("must be >= 1",
    "must be 'all'") as a separate problem, where the user made one mistake. Booleans are
    refused although Python counts them as ints: ``k: yes`` is not a teacher size."""
    if isinstance(value, str) and value == "all":
        return "all"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, Integral) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ParameterError("must be an int >= 1 or 'all'")


TeacherSize = Annotated[
    int | Literal["all"],
    PlainValidator(_teacher_size, json_schema_input_type=int | Literal["all"]),
]


class DistillConfig(Strict):
    """Self-ensemble / self-distillation (Xu et al. 2020).

    ``k`` is the teacher size for SDA/SDV (the last K time steps; ``"all"`` = every
    previous step) and the averaging window for SE. ``None`` means the strategy's
    default: 1 for SDA/SDV, ``"all"`` for SE.
    """

    lam: Annotated[float, Field(alias="lambda", ge=0.0, allow_inf_nan=False)] = 1.0
    k: TeacherSize | None = None
    average: Literal["window", "ema"] = Field(
        default="window",
        description="SDA's teacher: 'window' = the mean of the last K steps (the paper), "
        "'ema' = an exponential moving average with ema_decay (K unused).",
    )
    ema_decay: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)] = Field(
        default=0.99,
        description="The EMA teacher's decay d (horizon about 1/(1−d) steps), warmed up as "
        "min(d, (1+n)/(10+n)) after n steps.",
    )
    teacher_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="Precision of the teacher's forward passes, whatever the student's. "
        "auto: bf16 where the hardware computes it natively (CUDA, CPUs with "
        "AMX/AVX512-BF16), else fp32. "
        "Distillation targets need no fp32, and the teacher is most of SDA/SDV's cost.",
    )


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
    primary_metric: Literal["accuracy", "macro_f1", "mcc"] = "accuracy"
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


class TrainConfig(Strict):
    """Everything one trial needs. See ``examples/train-tiny.yaml`` for a full file."""

    model: str = Field(
        default="minilm-l6",
        description="An alias ('minilm-l6', 'tiny-bert'), a local directory or a hub id.",
    )
    data: DataConfig
    strategy: StrategyName = "vanilla"
    seed: Seed = 0
    noise: NoiseConfig = NoiseConfig()
    distill: DistillConfig = DistillConfig()
    reinit: ReinitConfig = ReinitConfig()
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
    def _k_all_only_where_allowed(self) -> TrainConfig:
        if self.distill.k == "all" and not strategies.allows_k_all(self.strategy):
            allowed = [b for b, part in strategies.BASES.items() if part.k_all]
            raise ParameterError(
                f"must be an int >= 1 for strategy {self.strategy!r} (one forward pass per "
                f"snapshot); 'all' is for {' and '.join(allowed)}",
                key=("distill", "k"),
                value="all",
            )
        return self

    @model_validator(mode="after")
    def _layer_decay_only_for_llrd(self) -> TrainConfig:
        """Layer-wise lr decay is the ``llrd`` modifier's: a strategy's name says how it
        trained, so 'vanilla' with decayed learning rates is refused, not relabelled."""
        has_llrd = "llrd" in strategies.split(self.strategy)[0]
        decay = self.optim.layer_decay
        if has_llrd and decay == 1.0:
            raise ParameterError(
                f"must be below 1 for strategy {self.strategy!r} (its 'llrd' is layer-wise "
                "lr decay; 1.0 = off), e.g. 0.9",
                key=("optim", "layer_decay"),
                value=decay,
            )
        if not has_llrd and decay != 1.0:
            named = "+".join(
                [
                    *strategies.split(self.strategy)[0],
                    "llrd",
                    *([self.base_strategy] if self.base_strategy != "vanilla" else []),
                ]
            )
            raise ParameterError(
                f"must be 1.0 for strategy {self.strategy!r}: layer-wise lr decay is the "
                f"'llrd' modifier (strategy {named!r}); in a sweep, give it under 'grid', "
                "which sets it only for the strategies that read it",
                key=("optim", "layer_decay"),
                value=decay,
            )
        return self

    @model_validator(mode="after")
    def _ema_only_for_sda(self) -> TrainConfig:
        if self.distill.average == "ema":
            if self.base_strategy != "sda":
                raise ParameterError(
                    f"must be 'window' for strategy {self.strategy!r}: the EMA teacher is "
                    "SDA's (sda, noisytune+sda)",
                    key=("distill", "average"),
                    value="ema",
                )
            if self.distill.k is not None:
                raise ParameterError(
                    "must be left out when 'distill.average' is 'ema' (an EMA has no window; "
                    "its horizon is set by distill.ema_decay)",
                    key=("distill", "k"),
                    value=self.distill.k,
                )
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
