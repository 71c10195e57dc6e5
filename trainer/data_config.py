"""Where a trial's examples come from: a built-in generated set, a Hub dataset or local
files, and which of their columns hold the text and the label (``data:`` of a config, a
dataset entry of a sweep spec)."""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from trainer.fields import Seed, Strict
from trainer.messages import NO_VALUE, ParameterError

# The name of an extra evaluation split (a language of a cross-lingual test: "de"). It
# becomes the prefix of result columns ("de_entity_f1"), so no underscore, and is none of
# the splits every dataset has.
_RESERVED_SPLITS = ("train", "dev", "test", "averaged")


def _split_name(value: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", value):
        raise ParameterError(
            "must name each extra evaluation split in lower-case letters, digits and "
            "hyphens, starting with a letter (it prefixes result columns: 'de_entity_f1')",
            value=value,
        )
    if value in _RESERVED_SPLITS:
        raise ParameterError(
            f"must not name an extra evaluation split {value!r}: {list(_RESERVED_SPLITS)} are "
            "every dataset's own",
            value=value,
        )
    return value


SplitName = Annotated[str, AfterValidator(_split_name)]


class HubSource(Strict):
    """A dataset on the Hugging Face Hub, read with ``datasets.load_dataset``."""

    path: str = Field(description="Dataset path, e.g. 'nyu-mll/glue' (or a builder: 'csv').")
    name: str | None = Field(default=None, description="Config name, e.g. 'sst2'.")
    data_files: dict[str, str] | None = None
    splits: dict[Literal["train", "dev", "test"], str] = Field(
        default_factory=lambda: {"train": "train", "dev": "validation"},
        description="Our split name -> the hub's split name.",
    )
    eval: dict[SplitName, str] | None = Field(
        default=None,
        description="Extra evaluation splits: our name -> the hub's split name, scored at "
        "the final evaluation (a cross-lingual test set per language). None: none (a "
        "setting added after 0.1.0 is None where unused, so older trials still match).",
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


class FileLayout(Strict):
    """How one split's file is laid out, when it differs from the other splits' files."""

    header: bool = True
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _columns_need_headerless(self) -> FileLayout:
        _check_layout(self.header, self.columns)
        return self


DEFAULT_ENCODING = "utf-8-sig"


class FileSource(Strict):
    """Local files, one per split (CSV, TSV, JSONL or Parquet, by extension or `format`).

    ``format: lines`` reads plain-text files with one value a line and one file per column
    (SentEval's SNLI): each path holds ``{column}``, replaced by every name in ``columns``.
    ``format: conll`` reads CoNLL-style files (a word a line, whitespace-separated fields
    named by ``columns``, a blank line between sentences) for token classification.
    A headerless CSV/TSV may name more ``columns`` than its first row has: rows may then
    carry those as optional trailing fields (the STS Benchmark's test file).
    """

    train: Path
    dev: Path
    test: Path | None = None
    eval: dict[SplitName, Path] | None = Field(
        default=None,
        description="Extra evaluation splits by name, read like dev and scored at the final "
        "evaluation: a cross-lingual test set per language ({de: de/test.txt, fr: …}). "
        "None: none.",
    )
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "lines", "conll"] = "auto"
    header: bool = Field(default=True, description="False for headerless CSV/TSV (give `columns`).")
    columns: list[str] | None = Field(
        default=None, description="Column names for headerless files, in file order."
    )
    per_split: dict[str, FileLayout] = Field(
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

    def paths(self) -> dict[str, Path]:
        """Every split's file by split name: train, dev, test where given, the extras."""
        given = {"train": self.train, "dev": self.dev, "test": self.test, **(self.eval or {})}
        return {split: path for split, path in given.items() if path is not None}

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
        splits = ["train", "dev", "test", *(self.eval or {})]
        for split in self.per_split:
            if split not in splits:
                raise ParameterError(
                    f"must name splits of these files: {splits}", key=("per_split",), value=split
                )
        if self.format == "conll":
            if not self.columns:
                raise ParameterError(
                    "must name the fields of a word's line when 'format' is 'conll' (e.g. "
                    "[token, pos, tag]; 'data.text' and 'data.label' then name two of them)",
                    key=("columns",),
                    value=NO_VALUE,
                )
        elif self.format == "lines":
            if not self.columns:
                raise ParameterError(
                    "must name the columns when 'format' is 'lines' (one file per column)",
                    key=("columns",),
                    value=NO_VALUE,
                )
            for split, path in self.paths().items():
                if "{column}" not in str(path):
                    raise ParameterError(
                        "must contain '{column}' when 'format' is 'lines': it reads one file "
                        "per column, named by replacing '{column}' with each of 'columns'",
                        key=(split,),
                        value=str(path),
                    )
        else:
            _check_layout(self.header, self.columns)
        return self


TASKS = ("classification", "regression", "token_classification")
# The built-in generated sets (trainer/data/synthetic.py makes them) and the task of
# those that are not classification.
SETS = ("synthetic-sentiment", "synthetic-pairs", "synthetic-similarity", "synthetic-ner")
TASK_OF_SET = {"synthetic-similarity": "regression", "synthetic-ner": "token_classification"}


class DataConfig(Strict):
    """Where the examples come from, which columns hold text and label, and the task.

    Exactly one of ``name`` (a built-in generated set), ``hub`` or ``files``.
    """

    name: Literal[SETS] | None = None  # type: ignore[valid-type]
    hub: HubSource | None = None
    files: FileSource | None = None
    task: Literal[TASKS] | None = Field(  # type: ignore[valid-type]
        default=None,
        description="classification (a label per example), regression (a number per "
        "example: STS-B) or token_classification (a list of words and a list of tags per "
        "example: CoNLL-2003). Default: what the source says (a built-in set's task, "
        "token_classification for format conll), else classification.",
    )
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
    test_from_train_after: Annotated[int, Field(ge=2)] | None = Field(
        default=None,
        description="Where in the permutation the held-out rows start: after this many rows "
        "(default: `train_size`, right after the subset). A learning curve sets it to its "
        "largest size, so every size is scored on the same held-out rows.",
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
        after = self.test_from_train_after
        if after is not None and (self.test_from_train is None or after < self.train_size):
            raise ParameterError(
                "must be left out unless 'test_from_train' is set, and be at least "
                "'train_size' (the held-out rows must follow the training subset)",
                key=("test_from_train_after",),
                value=after,
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

    @model_validator(mode="after")
    def _a_tagged_example_is_one_sentence(self) -> DataConfig:
        if self.text_pair is not None and self.resolved_task == "token_classification":
            raise ParameterError(
                "must be left out for token classification: a tagged example is one "
                "sentence of words",
                key=("text_pair",),
                value=self.text_pair,
            )
        return self

    @property
    def extra_splits(self) -> tuple[str, ...]:
        """The names of the extra evaluation splits (``files.eval`` or ``hub.eval``)."""
        source = self.files or self.hub
        return tuple(source.eval or ()) if source is not None else ()

    @property
    def resolved_task(self) -> str:
        """The task: as given, else as the source says, else classification."""
        if self.task is not None:
            return self.task
        if self.name in TASK_OF_SET:
            return TASK_OF_SET[self.name]
        if self.files is not None and self.files.format == "conll":
            return "token_classification"
        return "classification"

    @property
    def source_label(self) -> str:
        """A short human name for the data, used in reports and cache keys."""
        if self.name:
            return self.name
        if self.hub:
            return f"{self.hub.path}/{self.hub.name}" if self.hub.name else self.hub.path
        assert self.files is not None
        return Path(self.files.train).parent.name or "files"
