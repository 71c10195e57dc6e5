"""The trial configuration: one validated object that travels with the run.

Every knob a trial has lives here, with its constraint declared once, so that a bad
value is refused at the edge ("The 'distill.k' parameter must be ...") before a model
is loaded or a GPU is touched. The resolved config is written into every checkpoint
and into ``result.json``: a trial is a pure function of it.
"""

from __future__ import annotations

import codecs
import contextlib
import difflib
import os
import re
import types
from collections.abc import Mapping, Sequence
from numbers import Integral
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from trainer import strategies
from trainer.errors import ConfigError
from trainer.strategies import STRATEGIES

METRICS = ("accuracy", "macro_f1", "mcc")


# Sentinels of ParameterError.value: show the value pydantic was given / show no value.
_INPUT: Any = object()
NO_VALUE: Any = object()


class ParameterError(ValueError):
    """A validator's refusal that names the key it is about and what that key held.

    Pydantic reports a validator's ``ValueError`` at the validator's own place: a check of
    a whole section (a model validator) would be reported at the section, and the user would
    have to guess which key to fix. Raising this instead says which key (``key``, relative to
    the validated model or field) and what it held (``value``), so the message still reads
    "The '<key>' parameter must ... Got ... instead.". ``requirement`` starts with "must";
    without ``value`` (or ``got``, the value in words), the line shows what the validator
    was given.
    """

    def __init__(
        self,
        requirement: str,
        *,
        key: tuple[str | int, ...] = (),
        value: Any = _INPUT,
        got: str | None = None,
    ) -> None:
        super().__init__(requirement)
        self.requirement = requirement
        self.key = key
        self.value = value
        self.got = got  # words for the value ("none of them"), shown instead of its repr


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# A finite float: NaN passes no comparison and inf passes `gt`, and either would only
# surface as a NaN loss (or a crash inside torch) minutes into a run.
Finite = Annotated[float, Field(allow_inf_nan=False)]
# Seeds feed numpy (which refuses negatives) and torch (64 bits): keep them to 32 bits.
Seed = Annotated[int, Field(ge=0, lt=2**32)]


class HubSource(_Strict):
    """A dataset on the Hugging Face Hub, read with ``datasets.load_dataset``."""

    path: str = Field(description="Dataset path, e.g. 'nyu-mll/glue' (or a builder: 'csv').")
    name: str | None = Field(default=None, description="Config name, e.g. 'sst2'.")
    data_files: dict[str, str] | None = None
    splits: dict[Literal["train", "dev", "test"], str] = Field(
        default_factory=lambda: {"train": "train", "dev": "validation"},
        description="Our split name -> the hub's split name.",
    )
    revision: str | None = None


def _check_layout(header: bool, columns: list[str] | None) -> None:
    """``columns`` names the fields of headerless files, so it goes with ``header: false``."""
    if not header and not columns:
        raise ParameterError(
            "must name the columns, in file order, when 'header' is false",
            key=("columns",),
            value=NO_VALUE,
        )
    if header and columns:
        raise ParameterError(
            "must be left out unless 'header' is false: columns is only for headerless "
            "files (set header: false, or leave columns out to use the header line)",
            key=("columns",),
            value=columns,
        )


class FileLayout(_Strict):
    """How one split's file is laid out, when it differs from the other splits' files."""

    header: bool = True
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _columns_need_headerless(self) -> FileLayout:
        _check_layout(self.header, self.columns)
        return self


DEFAULT_ENCODING = "utf-8-sig"


class FileSource(_Strict):
    """Local files, one per split (CSV, TSV, JSONL or Parquet, by extension or `format`).

    ``format: lines`` reads plain-text files with one value a line and one file per column
    (SentEval's SNLI): each path holds ``{column}``, replaced by every name in ``columns``.
    """

    train: Path
    dev: Path
    test: Path | None = None
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "lines"] = "auto"
    header: bool = Field(default=True, description="False for headerless CSV/TSV (give `columns`).")
    columns: list[str] | None = Field(
        default=None, description="Column names for headerless files, in file order."
    )
    per_split: dict[Literal["train", "dev", "test"], FileLayout] = Field(
        default_factory=dict,
        description="`header`/`columns` for a split whose file is laid out differently "
        "(AG News: a train subset with a header, the official test without one).",
    )
    encoding: str = Field(
        default=DEFAULT_ENCODING,
        description="Text encoding of CSV/TSV/JSONL/lines files (any Python codec name, e.g. "
        "'latin-1', 'cp1252', 'utf-16'). The default is UTF-8 with an optional byte-order "
        "mark (MRPC's header starts with one). Parquet files carry their own encoding.",
    )

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        """A misspelt codec would only fail once the file is opened, after the config
        has been accepted; refuse it here, with the key. Codecs that map bytes to bytes
        (base64, zlib) are not text encodings and cannot read a text file either."""
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ParameterError(
                "must name a text encoding Python knows, e.g. 'utf-8', 'latin-1', 'cp1252' "
                "or 'utf-16'"
            ) from None
        if not getattr(info, "_is_text_encoding", True):
            raise ParameterError(f"must name a text encoding; {info.name!r} maps bytes to bytes")
        return value

    @model_validator(mode="after")
    def _layout(self) -> FileSource:
        if self.format == "lines":
            if not self.columns:
                raise ParameterError(
                    "must name the columns when 'format' is 'lines' (one file per column)",
                    key=("columns",),
                    value=NO_VALUE,
                )
            for split in ("train", "dev", "test"):
                path = getattr(self, split)
                if path is not None and "{column}" not in str(path):
                    raise ParameterError(
                        "must contain '{column}' when 'format' is 'lines': it reads one file "
                        "per column, named by replacing '{column}' with each of 'columns'",
                        key=(split,),
                        value=str(path),
                    )
        else:
            _check_layout(self.header, self.columns)
        return self


class DataConfig(_Strict):
    """Where the examples come from and which columns hold text and label.

    Exactly one of ``name`` (a built-in generated set), ``hub`` or ``files``.
    """

    name: Literal["synthetic-sentiment", "synthetic-pairs"] | None = None
    hub: HubSource | None = None
    files: FileSource | None = None
    text: str = "text"
    text_pair: str | None = None
    label: str = "label"
    max_length: Annotated[int, Field(ge=8, le=4096)] = 128
    train_size: Annotated[int, Field(ge=2)] | None = Field(
        default=None,
        description="Use a fixed random subset of this many training rows (drawn with "
        "`subset_seed`, the same for every trial).",
    )
    subset_seed: Seed = 0
    test_from_train: Annotated[int, Field(ge=1)] | None = Field(
        default=None,
        description="Score this many held-out training rows as the test split: the rows "
        "after the `train_size` subset in its permutation, so never trained on. For data "
        "whose own test split is unlabeled (GLUE): a split the selection is not made on.",
    )

    @model_validator(mode="after")
    def _test_from_train_needs_a_subset(self) -> DataConfig:
        if self.test_from_train is not None and self.train_size is None:
            raise ParameterError(
                "needs 'train_size': the held-out rows are the training rows after the "
                "training subset",
                key=("test_from_train",),
                value=self.test_from_train,
            )
        return self

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [k for k in ("name", "hub", "files") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ParameterError(
                "must set exactly one of 'name' (a built-in set), 'hub' or 'files'",
                value=given,
                got=None if given else "none of them",
            )
        return self

    @property
    def source_label(self) -> str:
        """A short human name for the data, used in reports and cache keys."""
        if self.name:
            return self.name
        if self.hub:
            return f"{self.hub.path}/{self.hub.name}" if self.hub.name else self.hub.path
        assert self.files is not None
        return Path(self.files.train).parent.name or "files"


class NoiseConfig(_Strict):
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


class ReinitConfig(_Strict):
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


class DistillConfig(_Strict):
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


# Adam's moment decay rates: 1 or more never forgets (torch refuses it only at the first step).
Beta = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]


class OptimConfig(_Strict):
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


class EvalConfig(_Strict):
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


class CheckpointConfig(_Strict):
    every_steps: Annotated[int, Field(ge=1)] | None = Field(
        default=200, description="Checkpoint every N optimizer steps (and at every evaluation)."
    )
    keep_final: bool = Field(
        default=False,
        description="Keep the last checkpoint (model, optimizer, teacher ring) once the run has "
        "finished. It only serves to resume an unfinished run and weighs 0.25-0.8 GB for "
        "MiniLM, so by default it is deleted after result.json is written.",
    )


class TrainConfig(_Strict):
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


def set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``tree[a][b] = value`` for ``dotted`` 'a.b', making the sections on the way."""
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: '{key}' is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``["optim.lr=3e-5", "strategy=sda"]`` into a nested dict (values parsed as YAML)."""
    tree: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key.sub=value, got {pair!r}")
        try:
            value = yaml.load(raw, Loader=_UniqueKeyLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            place, problem = _yaml_problem(exc)
            if isinstance(exc, DuplicateKeyError):
                raise ConfigError(f"--set {pair}: the value has a {problem}") from None
            raise ConfigError(f"--set {pair}: the value is {problem} (at {place})") from None
        if isinstance(value, str):  # YAML 1.1 reads "3e-5" as a string; users mean a number
            with contextlib.suppress(ValueError):
                value = float(value)
        set_dotted(tree, key.strip(), value)
    return tree


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
        inner = _model_in(field.annotation)
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


def requirement_of(err: ValidationError) -> str:
    """The words after "The 'x' parameter" for the first problem of ``err``."""
    return _requirement(err.errors(include_url=False)[0], (), None, None)


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# Tags of tagged unions start with this; they are not keys, so errors leave them out.
UNION_TAG_PREFIX = "_shape_"
# Without the input at hand, these loc parts are recognisably pydantic's names for union
# branches ('constrained-int', "literal['all']", 'list[int]', 'function-after[...]').
_BRANCH_NAME = re.compile(r"^(constrained-\w+|[\w-]+\[.*\]|int|float|str|bool|none)$")
_SHOULD = re.compile(r"^(?:Input|Value|String|List|Tuple|Set|Dictionary|Object|Data) should (.*)$")
_LONGEST_SHOWN = 100  # characters of a value's repr in "Got ... instead."


def format_validation_error(
    err: ValidationError,
    where: str,
    source: Mapping[str, Any] | None = None,
    model: type[BaseModel] | None = None,
) -> str:
    """The problems of ``err``, one line each: ``<where>: The '<key>' parameter must ...``.

    The shape is scikit-learn's ("The 'distill.k' parameter must be an int >= 1 or 'all'.
    Got 0 instead."), so every line names the key as the user wrote it, what is allowed and
    what was given. Pydantic's own locations and wording are rewritten to that end:

    - ``source``, the validated input, tells real keys from the parts pydantic adds to a
      location: a union branch's name (``constrained-int``) or a level a before-validator
      made up (a sweep's flat dataset entry is validated as ``{..., data: {...}}``, but the
      key the user knows is ``datasets[0].max_length``, not ``datasets.0.data.max_length``).
    - one line per key: the branches of a union that all failed are one problem, joined
      with "or" ("must be a valid number or 'auto'").
    - ``model`` lists the known keys of a section next to an unknown one.

    Parameters
    ----------
    err : ValidationError
        What pydantic refused.
    where : str
        Starts every line: the file, or "config" / "sweep spec" for a dict.
    source : Mapping, optional
        The input ``err`` is about.
    model : type of BaseModel, optional
        The model that was validated.

    Returns
    -------
    str
        One line per offending key, without a header line.
    """
    groups: dict[tuple[tuple[str | int, ...], bool], list[tuple[str, Any]]] = {}
    branch_only: dict[tuple[tuple[str | int, ...], bool], bool] = {}
    for problem in err.errors(include_url=False):
        loc = tuple(problem["loc"])
        if problem["type"] == "invalid_key":  # a mapping's key that is not a string
            loc += ("[key]",)
        value = problem.get("input", NO_VALUE)
        requirement = _requirement(problem, loc, source, model)
        error = (problem.get("ctx") or {}).get("error")
        extra: tuple[str | int, ...] = ()
        if isinstance(error, ParameterError):
            extra = error.key
            if error.value is not _INPUT:
                value = error.value
        if problem["type"] in ("missing", "extra_forbidden"):
            value = NO_VALUE  # the key is the problem, not a value
        if isinstance(error, ParameterError) and error.got is not None:
            value = _Shown(error.got)
        user_loc, is_key, added = _user_loc(loc, source, problem["type"])
        group = (user_loc + extra, is_key)
        groups.setdefault(group, []).append((requirement, value))
        branch_only[group] = branch_only.get(group, True) and added
    # A union's branch that failed on the value's type ("must be a valid integer") is noise
    # beside a branch that took the value and failed deeper ('seeds[1]' must be >= 0).
    deeper = [key for key, _ in groups]
    for group in list(groups):
        key = group[0]
        if branch_only[group] and any(len(d) > len(key) and d[: len(key)] == key for d in deeper):
            del groups[group]
    return "\n".join(
        f"{where}: {_problem_line(loc, is_key, problems)}"
        for (loc, is_key), problems in groups.items()
    )


class _Shown(str):
    """A value's description given in words (``got``), shown as is rather than as a repr."""

    def __repr__(self) -> str:
        return str(self)


def dotted_key(loc: Sequence[str | int]) -> str:
    """``('datasets', 0, 'max_length')`` -> ``datasets[0].max_length``, as in YAML paths."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem_line(loc: tuple[str | int, ...], is_key: bool, problems: list[tuple[str, Any]]) -> str:
    requirements = list(dict.fromkeys(r for r, _ in problems))
    for lead in ("must be ", "must "):  # a union's branches: "must be a number or 'auto'"
        if all(r.startswith(lead) for r in requirements):
            requirement = lead + " or ".join(r.removeprefix(lead) for r in requirements)
            break
    else:
        requirement = "; ".join(requirements)
    if is_key:  # the key itself is wrong: the line is about the mapping that holds it
        loc = loc[:-1]
    subject = f"The '{dotted_key(loc)}' parameter" if loc else "The top level"
    if is_key:
        subject += "'s keys"
    value = problems[0][1]
    return f"{subject} {requirement.rstrip('.')}.{_got(value)}"


def _got(value: Any) -> str:
    """`` Got <value!r> instead.``, or nothing where the value is none or a big mapping."""
    if value is NO_VALUE:
        return ""
    shown = repr(value)
    if isinstance(value, Mapping) and len(shown) > 60:
        return ""
    if len(shown) > _LONGEST_SHOWN:
        shown = shown[: _LONGEST_SHOWN - 3] + "..."
    return f" Got {shown} instead."


def _user_loc(
    loc: tuple[str | int, ...], source: Mapping[str, Any] | None, kind: str = ""
) -> tuple[tuple[str | int, ...], bool, bool]:
    """The key as the user wrote it, whether the problem is a mapping's key itself, and
    whether pydantic added parts to the location (a union branch's name, a made-up level).

    A part of pydantic's location is a real key when the input has it there, or when it is
    the key a mapping lacks or should not have (``kind`` "missing" / "extra_forbidden").
    Any other part was added by validation, not written by the user, and is left out.
    """
    is_key = bool(loc) and loc[-1] == "[key]"
    parts = loc[:-1] if is_key else loc
    if source is None:
        kept = tuple(
            p
            for p in parts
            if not (
                isinstance(p, str) and (p.startswith(UNION_TAG_PREFIX) or _BRANCH_NAME.match(p))
            )
        )
        return kept, is_key, len(kept) != len(parts)
    node: Any = source
    kept_parts: list[str | int] = []
    for i, part in enumerate(parts):
        if _holds(node, part):
            kept_parts.append(part)
            node = node[part]
        elif (
            i == len(parts) - 1
            and isinstance(node, Mapping)
            and kind in ("missing", "extra_forbidden")
        ):
            kept_parts.append(part)
    return tuple(kept_parts), is_key, len(kept_parts) != len(parts)


def _holds(node: Any, part: str | int) -> bool:
    """Whether the input ``node`` has ``part`` (a mapping's key, a list's index)."""
    if isinstance(node, Mapping):
        return part in node
    if isinstance(part, int) and isinstance(node, (list, tuple)):
        return -len(node) <= part < len(node)
    return False


def _requirement(
    problem: Any,
    loc: tuple[str | int, ...],
    source: Mapping[str, Any] | None,
    model: type[BaseModel] | None,
) -> str:
    """What pydantic's complaint asks for, as the words after "The 'x' parameter"."""
    kind, msg, ctx = problem["type"], str(problem["msg"]), problem.get("ctx") or {}
    error = ctx.get("error")
    if isinstance(error, ParameterError):
        return error.requirement
    if kind in ("value_error", "assertion_error"):
        text = re.sub(r"^(Value error|Assertion failed), ", "", msg)
        return text if text.startswith("must ") else f"is invalid: {text}"
    if kind == "missing":
        return "must be given (it has no default)"
    if kind == "extra_forbidden":
        return "is not a known key" + _known_keys(loc, source, model)
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a mapping of keys to values (a YAML section)"
    if kind in ("list_type", "tuple_type", "set_type"):  # YAML has lists, not tuples
        return "must be a list"
    if kind == "path_type":
        return "must be a path (a string)"
    if kind == "invalid_key":
        return "must be strings"
    if kind == "literal_error":
        return f"must be {ctx['expected']}"
    if kind == "too_short":
        n = ctx.get("min_length")
        return f"must have at least {n} item{'s' * (n != 1)}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"must have at most {n} item{'s' * (n != 1)}"
    if kind == "string_pattern_mismatch":
        return f"must match the regular expression {ctx.get('pattern')!r}"
    should = _SHOULD.match(msg)
    if should:
        # "a valid integer, unable to parse string as an integer": the value says the rest
        return "must " + re.sub(r", (unable to|got) .*$", "", should.group(1))
    return f"is invalid: {msg}"


def _known_keys(
    loc: tuple[str | int, ...], source: Mapping[str, Any] | None, model: type[BaseModel] | None
) -> str:
    """The keys an unknown key could have been, with the closest one ("did you mean 'lr'?"),
    found by walking ``model``'s types along the location: a typo is fixed from the message
    alone. Where the section is a level the user did not write (a flat dataset entry), the
    keys of the level above are the user's keys too."""
    if model is None or not loc:
        return ""
    chain: list[type[BaseModel] | None] = [model]
    annotation: Any = model
    for part in loc[:-1]:
        step = _step(annotation, part)
        if step is not None:  # else a union branch's name: not a level of the types
            annotation = step
        chain.append(_model_in(annotation))
    section = chain[-1]
    if section is None:
        return ""
    keys = _field_keys(section)
    user_parent = _user_loc(loc, source, "extra_forbidden")[0][:-1]
    if len(loc) >= 2 and len(chain) >= 2 and user_parent != tuple(loc[:-1]):
        above = chain[-2]
        if above is not None and loc[-2] in _field_keys(above):
            keys = [k for k in _field_keys(above) if k != loc[-2]] + keys
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    where = f"of '{dotted_key(user_parent)}'" if user_parent else "at the top level"
    listed = f"keys {where} are {', '.join(repr(k) for k in keys)}"
    return f"; did you mean {close[0]!r}? The {listed}" if close else f"; the {listed}"


def _field_keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def _step(annotation: Any, part: str | int) -> Any:
    """The type at ``part`` inside ``annotation`` (a model's field, a list's item, a dict's
    value), or None when ``part`` is not a level of it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _step(get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _step(arg, part)
            if found is not None:
                return found
        return None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    if origin in (list, tuple, set, frozenset) and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict:
        return get_args(annotation)[1]
    return None


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (``X | None``, ``Annotated[X, ...]``), if one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Annotated, Union, types.UnionType):
        for arg in get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


# -- YAML files ---------------------------------------------------------------------


class DuplicateKeyError(yaml.YAMLError):
    """A mapping gives one key twice; PyYAML would keep the last silently."""

    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first given at line {first_line})")
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping, at any depth.

    A duplicate is almost always an edit gone wrong (a second ``optim:`` section pasted
    below the first), and with PyYAML's default the first one's values vanish without a
    word. Keys brought in by a merge (``<<: *defaults``) may be overridden, as YAML says.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                break
            if first is not None:
                raise DuplicateKeyError(key, key_node.start_mark.line + 1, first + 1)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """PyYAML's multi-line report as one clause: (where: "line 2, column 1", what)."""
    if isinstance(exc, DuplicateKeyError):
        return (
            f"line {exc.line}",
            f"duplicate key {exc.key!r} (first given at line {exc.first_line})",
        )
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        text = f"not valid YAML: {exc.problem}"
        if exc.context:
            context = exc.context
            if exc.context_mark is not None:
                cm = exc.context_mark
                context += f" that starts at line {cm.line + 1}, column {cm.column + 1}"
            text += f" ({context})"
        return f"line {mark.line + 1}, column {mark.column + 1}", _one_line(text)
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character {exc.position + 1}", f"not valid YAML: {_one_line(exc.reason)}"
    return "", "not valid YAML: " + _one_line(str(exc))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping a YAML file holds; a missing file, bad YAML or a non-mapping is a
    one-line ``ConfigError`` naming the file (``what`` says what the file should be)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: the {what} path is a directory, not a file.")
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: the {what} could not be read: {exc.strerror}.") from None
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise ConfigError(
            f"{path} line {line}: the {what} must be UTF-8 text. Got byte "
            f"0x{data[offset]:02x} at byte offset {offset} instead."
        ) from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader) or {}  # a SafeLoader
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML gives no line
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"{path} line {line}: not valid YAML: {_one_line(exc.reason)}") from None
    except yaml.YAMLError as exc:
        place, problem = _yaml_problem(exc)
        raise ConfigError(f"{path} {place}: {problem}" if place else f"{path}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of {what} keys, not {type(raw).__name__}")
    return raw


def load_config(
    source: dict[str, Any] | str | Path, overrides: list[str] | None = None
) -> TrainConfig:
    """Validate a config given as a dict or a YAML file path, with ``--set`` overrides."""
    where = "config"
    if isinstance(source, (str, Path)):
        where = str(source)
        raw = read_yaml_mapping(source, "config file")
    else:
        raw = dict(source)
    if overrides:
        raw = merge(raw, parse_overrides(overrides))
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, where, raw, TrainConfig)) from None


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (aliases, so it loads back)."""
    return config.model_dump(mode="json", by_alias=True)
