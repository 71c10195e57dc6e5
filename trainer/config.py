"""The trial configuration: one validated object that travels with the run.

Every knob a trial has lives here, with its constraint declared once, so that a bad
value is refused at the edge ("The 'distill.k' parameter must be ...") before a model
is loaded or a GPU is touched. The resolved config is written into every checkpoint
and into ``result.json``: a trial is a pure function of it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from trainer.errors import ConfigError

# Strategy names. NoisyTune composes with the others as "noisytune+<strategy>".
BASE_STRATEGIES = ("vanilla", "se", "sda", "sdv")
STRATEGIES = (*BASE_STRATEGIES, "noisytune", "noisytune+se", "noisytune+sda", "noisytune+sdv")
METRICS = ("accuracy", "macro_f1", "mcc")


class _Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


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
        raise ValueError("header: false needs columns, the column names in file order")
    if header and columns:
        raise ValueError(
            "columns is only for headerless files; set header: false, or leave columns out "
            "to use the header"
        )


class FileLayout(_Strict):
    """How one split's file is laid out, when it differs from the other splits' files."""

    header: bool = True
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _columns_need_headerless(self) -> FileLayout:
        _check_layout(self.header, self.columns)
        return self


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

    @model_validator(mode="after")
    def _layout(self) -> FileSource:
        if self.format == "lines":
            if not self.columns:
                raise ValueError("format: lines needs columns, one file per column")
            for split in ("train", "dev", "test"):
                path = getattr(self, split)
                if path is not None and "{column}" not in str(path):
                    raise ValueError(
                        f"format: lines reads one file per column, so {split} must contain "
                        f"'{{column}}'; got {str(path)!r}"
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
    subset_seed: int = 0

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        given = [k for k in ("name", "hub", "files") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "exactly one of 'data.name', 'data.hub' or 'data.files' must be set; "
                f"got {given or 'none'}"
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


TeacherSize = Annotated[int, Field(ge=1)] | Literal["all"]


class DistillConfig(_Strict):
    """Self-ensemble / self-distillation (Xu et al. 2020).

    ``k`` is the teacher size for SDA/SDV (the last K time steps; ``"all"`` = every
    previous step) and the averaging window for SE. ``None`` means the strategy's
    default: 1 for SDA/SDV, ``"all"`` for SE.
    """

    lam: Annotated[float, Field(alias="lambda", ge=0.0, allow_inf_nan=False)] = 1.0
    k: TeacherSize | None = None
    teacher_precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto",
        description="Precision of the teacher's forward passes, whatever the student's. "
        "auto: bf16 where the hardware computes it natively (CUDA, CPUs with "
        "AMX/AVX512-BF16), else fp32. "
        "Distillation targets need no fp32, and the teacher is most of SDA/SDV's cost.",
    )

    @field_validator("k", mode="before")
    @classmethod
    def _k_words(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("K must be an integer >= 1 or 'all'")
        return value


class OptimConfig(_Strict):
    group_by_length: bool = Field(
        default=True,
        description="Batch examples of similar length (random mega-batches sorted by length, "
        "batches shuffled): far less padding on short-sentence data.",
    )
    epochs: Annotated[float, Field(gt=0)] = 3
    max_steps: Annotated[int, Field(ge=1)] | None = None
    batch_size: Annotated[int, Field(ge=1)] = 32
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 2e-5
    head_lr: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.01
    warmup_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1
    max_grad_norm: Annotated[float, Field(gt=0)] | None = 1.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


class EvalConfig(_Strict):
    every_steps: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Evaluate every N optimizer steps; None = every epoch."
    )
    batch_size: Annotated[int, Field(ge=1)] = 128
    primary_metric: Literal["accuracy", "macro_f1", "mcc"] = "accuracy"


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
    strategy: Literal[STRATEGIES] = "vanilla"  # type: ignore[valid-type]
    seed: int = 0
    noise: NoiseConfig = NoiseConfig()
    distill: DistillConfig = DistillConfig()
    optim: OptimConfig = OptimConfig()
    eval: EvalConfig = EvalConfig()
    checkpoint: CheckpointConfig = CheckpointConfig()
    device: Literal["auto", "cpu", "cuda"] = "auto"
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
    def _sdv_needs_integer_k(self) -> TrainConfig:
        if self.base_strategy == "sdv" and self.distill.k == "all":
            raise ValueError(
                "'distill.k' must be an integer >= 1 for strategy 'sdv' (one forward pass "
                "per snapshot); 'all' is for se and sda"
            )
        return self

    # -- what the strategy name implies -------------------------------------------
    @property
    def uses_noise(self) -> bool:
        return self.strategy.startswith("noisytune")

    @property
    def base_strategy(self) -> str:
        """The strategy without its NoisyTune prefix ('noisytune' alone -> 'vanilla')."""
        base = self.strategy.removeprefix("noisytune").removeprefix("+")
        return base or "vanilla"

    @property
    def teacher_k(self) -> int | Literal["all"] | None:
        """The resolved K, or None for strategies without averaging."""
        if self.base_strategy == "vanilla":
            return None
        if self.distill.k is not None:
            return self.distill.k
        return "all" if self.base_strategy == "se" else 1


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
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
        value = yaml.safe_load(raw)
        if isinstance(value, str):  # YAML 1.1 reads "3e-5" as a string; users mean a number
            with contextlib.suppress(ValueError):
                value = float(value)
        _set_dotted(tree, key.strip(), value)
    return tree


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


def format_validation_error(err: ValidationError, where: str) -> str:
    """One line per problem: the dotted key, what is wrong, and the value given."""
    lines = [f"invalid configuration in {where}:"]
    for problem in err.errors():
        loc = [str(p) for p in problem["loc"] if not str(p).startswith(UNION_TAG_PREFIX)]
        key = ".".join(loc) or "(top level)"
        given = problem.get("input")
        shown = "" if isinstance(given, dict) else f" Got {given!r} instead."
        lines.append(f"  - '{key}': {problem['msg']}.{shown}")
    return "\n".join(lines)


def read_yaml_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """The mapping a YAML file holds; a missing file, bad YAML or a non-mapping is a
    ``ConfigError`` naming the file (``what`` says what the file should be)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
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
        raise ConfigError(format_validation_error(err, where)) from None


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """The resolved config as plain JSON-able data (aliases, so it loads back)."""
    return config.model_dump(mode="json", by_alias=True)
