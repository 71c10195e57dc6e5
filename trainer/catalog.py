"""The catalog of strategy parts: each strategy's home.

Each :class:`Part` below declares everything about its strategy that is not the training
code itself: the knobs it reads (:class:`trainer.knobs.Knob`: dotted key, label, key tag),
the config section it owns and its defaults (a pydantic model beside it, added to
``TrainConfig`` by ``trainer/config.py``), its cross-field checks (run on every config),
its checks against the model's own config (run before the weights load), its K rules and
its cost, and the builder of the part the loop runs (``"module:function"``, imported only
when a run starts: see ``trainer/parts.py`` for the hooks). ``trainer/strategies.py`` makes
the names and the lookups from it. Torch-free, like everything the config reads.
docs/decisions.md, "Adding a strategy", lists the files a new one touches.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainValidator, field_validator

from trainer.errors import ConfigError
from trainer.fields import NonNegative, NotBoolean, Strict
from trainer.knobs import Knob
from trainer.messages import ParameterError, parameter_message

if TYPE_CHECKING:
    from trainer.config import TrainConfig

# -- sections: the settings each part owns ------------------------------------------


class NoiseConfig(Strict):
    """NoisyTune: W <- W + noise * lambda * std(W), before fine-tuning (Wu et al. 2022)."""

    lam: NonNegative = Field(default=0.15, alias="lambda")
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

    lam: NonNegative = Field(default=1.0, alias="lambda")
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


class RecAdamConfig(Strict):
    """RecAdam (Chen et al. 2020): the task step scaled by λ(t), annealed from 0 to w
    (``weight``), and a pull of (w − λ(t))·γ toward the weights training starts from
    (trainer/recadam.py).
    The defaults are the authors' (``run_glue_with_RecAdam.py``)."""

    gamma: NonNegative = Field(
        default=5000.0, description="γ: the quadratic penalty's coefficient (pretrain_cof)."
    )
    k: NonNegative = Field(
        default=0.5, description="The sigmoid's slope per optimizer step (the authors chose "
        "from 0.05–1)."
    )  # fmt: skip
    t0: Annotated[int, NotBoolean, Field(ge=0)] = Field(
        default=250, description="The optimizer step where λ(t) is ½ (sigmoid) or reaches 1 "
        "(linear); the authors chose from 100–1000."
    )  # fmt: skip
    anneal: Literal["sigmoid", "linear", "constant"] = Field(
        default="sigmoid", description="λ(t)'s shape; constant is λ ≡ w: with w = 1, plain AdamW."
    )
    weight: Annotated[float, NotBoolean, Field(gt=0, le=1, allow_inf_nan=False)] = Field(
        default=1.0, description="w, the anneal's scale (the authors' anneal_w): λ(t) rises to "
        "w, the task step is at most w of Adam's and the pull (w − λ(t))·γ."
    )  # fmt: skip


class MixoutConfig(Strict):
    """Mixout (Lee et al. 2020): dropout replaced by mixing each linear layer's input
    features, with probability p, toward the weights training starts from
    (trainer/mixout.py). 0 is off: the model keeps its dropout."""

    p: Annotated[float, NotBoolean, Field(ge=0, lt=1, allow_inf_nan=False)] = Field(
        default=0.9, description="The mix probability (the authors' examples: 0.9)."
    )


# -- knobs: the dotted keys the parts read ------------------------------------------

K = Knob(
    "distill.k", label="K", tag="k", headline=True, categorical=True,
    about="K (teacher size / averaging window, optimizer steps)",
    resolve=lambda config: config.teacher_k,
    refuses=lambda strategy, value: (
        None if value != "all" or BASES[split(strategy)[1]].k_all
        else "integer K values >= 1 (one forward pass per snapshot); 'all' is for "
        + " and ".join(b for b, part in BASES.items() if part.k_all)
    ),
    every_reader=True,
    applies=lambda point: point.get("distill.average") != "ema",  # an EMA has no window
)  # fmt: skip
DISTILL_LAMBDA = Knob("distill.lambda", label="dλ", tag="dl", headline=True,
                      about="distill λ (weight of the MSE to the teacher)")  # fmt: skip
TEACHER = (
    Knob("distill.average"),
    Knob("distill.ema_decay"),
    Knob("distill.teacher_precision"),
)
NOISE = (
    Knob("noise.lambda", label="nλ", tag="nl", headline=True,
         about="noise λ (NoisyTune, × std of each matrix)"),
    Knob("noise.distribution"),
    Knob("noise.scope"),
)  # fmt: skip


RECADAM = (
    Knob("recadam.gamma", label="γ", about="γ (RecAdam's pull toward the starting weights)"),
    Knob("recadam.k", about="k (RecAdam's sigmoid slope, per optimizer step)"),
    Knob("recadam.t0", about="t0 (RecAdam's midpoint, optimizer steps)"),
    Knob("recadam.anneal"),
    Knob("recadam.weight", label="w", about="w (RecAdam's anneal scale)"),
)


# -- checks across settings and against the model ------------------------------------


def _check_distill(config: TrainConfig) -> None:
    """K = 'all' only where one average holds every step; the EMA teacher is SDA's."""
    if config.distill.k == "all" and not BASES[split(config.strategy)[1]].k_all:
        allowed = [b for b, part in BASES.items() if part.k_all]
        raise ParameterError(
            f"must be an int >= 1 for strategy {config.strategy!r} (one forward pass per "
            f"snapshot); 'all' is for {' and '.join(allowed)}",
            key=("distill", "k"),
            value="all",
        )
    if config.distill.average == "ema":
        if split(config.strategy)[1] != "sda":
            raise ParameterError(
                f"must be 'window' for strategy {config.strategy!r}: the EMA teacher is "
                "SDA's (sda, noisytune+sda)",
                key=("distill", "average"),
                value="ema",
            )
        if config.distill.k is not None:
            raise ParameterError(
                "must be left out when 'distill.average' is 'ema' (an EMA has no window; "
                "its horizon is set by distill.ema_decay)",
                key=("distill", "k"),
                value=config.distill.k,
            )


def _check_llrd(config: TrainConfig) -> None:
    """Layer-wise lr decay is the ``llrd`` modifier's: a strategy's name says how it
    trained, so 'vanilla' with decayed learning rates is refused, not relabelled."""
    modifiers, base = split(config.strategy)
    decay = config.optim.layer_decay
    if "llrd" in modifiers and decay == 1.0:
        raise ParameterError(
            f"must be below 1 for strategy {config.strategy!r} (its 'llrd' is layer-wise "
            "lr decay; 1.0 = off), e.g. 0.9",
            key=("optim", "layer_decay"),
            value=decay,
        )
    if "llrd" not in modifiers and decay != 1.0:
        named = "+".join(
            [m for m in MODIFIERS if m in modifiers or m == "llrd"]
            + ([base] if base != "vanilla" else [])
        )
        raise ParameterError(
            f"must be 1.0 for strategy {config.strategy!r}: layer-wise lr decay is the "
            f"'llrd' modifier (strategy {named!r}); in a sweep, give it under 'grid', "
            "which sets it only for the strategies that read it",
            key=("optim", "layer_decay"),
            value=decay,
        )


def _check_recadam(config: TrainConfig) -> None:
    """RecAdam's pull moves θ by lr·(w − λ(t))·γ ≤ lr·γ of its distance to the anchor each step:
    above 1 it overshoots the anchor (and above 2 diverges), which no setting means."""
    if config.recadam is not None and config.optim.lr * config.recadam.gamma > 1:
        raise ParameterError(
            f"must be at most 1 / optim.lr = {1 / config.optim.lr:g}: RecAdam's pull moves "
            "the weights by lr·γ of their distance to the anchor each step, and beyond 1 it "
            "overshoots the anchor (the authors: lr 2e-5, γ 5000, so 0.1)",
            key=("recadam", "gamma"),
            value=config.recadam.gamma,
        )


def _reinit_fits(config: TrainConfig, model_config: Any) -> None:
    """No more layers re-drawn than the encoder has."""
    depth = getattr(model_config, "num_hidden_layers", None)
    if depth is not None and config.reinit.layers > depth:
        raise ConfigError(
            parameter_message(
                "reinit.layers",
                f"must be at most the {depth} encoder layers of model {config.model!r}",
                config.reinit.layers,
            )
        )


# -- the registry -------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One base strategy or modifier: what it reads, owns, checks and costs."""

    name: str
    knobs: tuple[Knob, ...] = ()  # the dotted config keys it reads
    section: str | None = None  # the config section it owns (shared sections: same model)
    section_model: type[BaseModel] | None = None
    # the section is None (off) in a config whose strategy lacks the part: every section
    # added since 0.1.0, so that configs recorded before it read as 'off' (trainer/recorded.py)
    optional_section: bool = False
    check: Callable[[TrainConfig], None] | None = None  # across settings, on every config
    model_check: Callable[[TrainConfig, Any], None] | None = None  # against the model's config
    k_default: int | str | None = None  # its K when ``distill.k`` is unset (None: no K)
    k_all: bool = False  # whether K = 'all' is allowed
    cost: int = 0  # relative cost: the decision's tie-break (cheaper first)
    student_is_plain: bool = False  # its student is the run without it (SE: bit for bit)
    builder: str = ""  # "module:function" building its part; "" = no part (vanilla)
    about: str = ""


_DISTILL = {"section": "distill", "section_model": DistillConfig, "check": _check_distill}

BASES: dict[str, Part] = {
    p.name: p
    for p in (
        Part("vanilla", about="cross-entropy"),
        Part("se", knobs=(K,), k_default="all", k_all=True, cost=1, student_is_plain=True,
             builder="trainer.parts:se", about="evaluate the mean of the last K steps' "
             "parameters", **_DISTILL),
        Part("sda", knobs=(K, DISTILL_LAMBDA, *TEACHER), k_default=1, k_all=True, cost=2,
             builder="trainer.parts:sda", about="distil from the mean of the last K steps' "
             "parameters (or their EMA)", **_DISTILL),
        Part("sdv", knobs=(K, DISTILL_LAMBDA, TEACHER[2]), k_default=1, cost=3,
             builder="trainer.parts:sdv", about="distil from the mean logits of the last K "
             "step snapshots (one forward pass each, so K is finite)", **_DISTILL),
    )
}  # fmt: skip
MODIFIERS: dict[str, Part] = {
    p.name: p
    for p in (
        Part("noisytune", knobs=NOISE, section="noise", section_model=NoiseConfig, cost=1,
             builder="trainer.parts:noisytune",
             about="perturb every parameter matrix before training"),
        Part("reinit", knobs=(Knob("reinit.layers"),), section="reinit",
             section_model=ReinitConfig, model_check=_reinit_fits, cost=1,
             builder="trainer.reinit:reinit",
             about="re-initialise the top encoder layers and the pooler before training"),
        # no part: the optimizer reads optim.layer_decay (trainer/models.py:parameter_groups);
        # the name says so, so a 'vanilla' row never trained with decayed learning rates
        Part("llrd", knobs=(Knob("optim.layer_decay"),), check=_check_llrd, cost=1,
             about="layer-wise lr decay: lower encoder layers train at smaller rates"),
        Part("recadam", knobs=RECADAM, section="recadam", section_model=RecAdamConfig,
             optional_section=True, check=_check_recadam, cost=1,
             builder="trainer.recadam:recadam",
             about="anneal from recalling the starting weights to learning the task"),
        Part("mixout", knobs=(Knob("mixout.p", label="p", headline=True,
                                   about="p (Mixout's mix probability)"),),
             section="mixout", section_model=MixoutConfig, optional_section=True, cost=1,
             builder="trainer.mixout:mixout",
             about="mix each linear layer toward its starting weights instead of dropout"),
    )
}  # fmt: skip
PARTS: tuple[Part, ...] = (*BASES.values(), *MODIFIERS.values())


def split(strategy: str) -> tuple[tuple[str, ...], str]:
    """(modifiers, base) of a name: 'noisytune+sda' -> (('noisytune',), 'sda')."""
    parts = strategy.split("+")
    modifiers = tuple(p for p in parts if p in MODIFIERS)
    bases = [p for p in parts if p not in MODIFIERS]
    return modifiers, (bases[0] if bases else "vanilla")
