"""From a data config to checked, label-encoded splits: the trainer's only data entry.

The steps run in an order that keeps messages honest: validation sees every row as it is
in the source, so a row number points into the file; the ``train_size`` subset is drawn
only after that.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainer.data.sources import read_splits
from trainer.data.validation import (
    check_labels,
    check_scores,
    check_split,
    check_subset,
    check_tags,
)
from trainer.data_config import DataConfig
from trainer.errors import DataError
from trainer.messages import parameter_message

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class TextSplits:
    """Checked splits, columns ``text`` [, ``text_pair``], ``label`` (int64 ids), 0-based index.

    ``label_names[i]`` is the source's label for id ``i``. ``fingerprint`` is a sha256 over
    the contents of every split and the label names: equal fingerprints mean equal data,
    so it can key a tokenisation cache.
    """

    train: pd.DataFrame
    dev: pd.DataFrame
    test: pd.DataFrame | None
    label_names: list[str]
    has_pair: bool
    fingerprint: str
    task: str = "classification"
    # the extra evaluation splits by name (cross-lingual test sets), checked like dev
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)

    def evaluated(self) -> dict[str, pd.DataFrame]:
        """Every split a final evaluation scores: dev, test where there is one, the extras."""
        named = {"dev": self.dev, "test": self.test, **self.extra}
        return {name: frame for name, frame in named.items() if frame is not None}


def load_splits(data: DataConfig) -> TextSplits:
    """Read, check and encode the data a config names.

    Parameters
    ----------
    data : DataConfig
        The source and its column names; ``train_size``/``subset_seed`` pick a fixed
        training subset.

    Returns
    -------
    TextSplits

    Raises
    ------
    DataError
        When a file or column is missing, a text is empty or not a string, a label is
        missing or unseen in train, train has fewer than 2 classes, or a split is empty.
    """
    raws = read_splits(data)
    task = data.resolved_task
    # The built-in pair sets name their second column themselves.
    paired = ("synthetic-pairs", "synthetic-similarity")
    pair = data.text_pair or ("text_pair" if data.name in paired else None)
    frames = {
        split: check_split(raw, data.text, pair, data.label, split, task)
        for split, raw in raws.items()
    }
    if task == "regression":
        classes: list[str] = []
        check_scores(frames["train"]["label"], data.label, raws["train"].origin)
    elif task == "token_classification":
        classes = sorted({tag for tags in frames["train"]["label"] for tag in tags})
        check_tags(frames, raws, data.label, classes)
    else:
        classes = _label_order(frames["train"]["label"])
        if data.task is None:  # inferred, not asked for: scores must not pass as classes
            _refuse_scores_as_classes(classes, data.label, raws["train"].origin)
        check_labels(frames, raws, data.label, classes)
    if data.test_from_train is not None and "test" in frames:
        raise DataError(
            parameter_message(
                "data.test_from_train",
                f"must be left out when the data has a test split ({raws['test'].origin}): "
                "it would replace that split",
            )
        )
    if data.train_size is not None:
        every_row = frames["train"]
        frames["train"] = _subset(every_row, data, raws["train"].origin)
        if data.test_from_train is not None:
            frames["test"] = _subset(every_row, data, raws["train"].origin, held_out=True)
        if task == "classification":
            check_subset(
                frames["train"]["label"],
                classes,
                data.train_size,
                data.subset_seed,
                raws["train"].origin,
            )
    ids = {name: i for i, name in enumerate(classes)}
    for frame in frames.values():
        if task == "classification":
            frame["label"] = frame["label"].map(ids).astype("int64")
        elif task == "token_classification":
            frame["label"] = [[ids[tag] for tag in tags] for tags in frame["label"]]
    return TextSplits(
        train=frames["train"],
        dev=frames["dev"],
        test=frames.get("test"),
        extra={name: frames[name] for name in data.extra_splits},
        label_names=classes,
        has_pair=pair is not None,
        fingerprint=_fingerprint(frames, classes),
        task=task,
    )


def _refuse_scores_as_classes(classes: list[str], label: str, origin: str) -> None:
    """Labels that are numbers with fractions (STS-B's 3.8) read as classes would train a
    classifier of hundreds of classes: the task must be said."""
    fractions = [c for c in classes if _NUMBER.fullmatch(c) and not float(c).is_integer()]
    if fractions:
        raise DataError(
            parameter_message(
                "data.task",
                f"must be given for the {label!r} column of {origin}, which holds numbers "
                f"with fractions ({', '.join(fractions[:3])}, …): 'regression' predicts them "
                "as scores, 'classification' makes each value a class",
            )
        )


def _label_order(labels: pd.Series) -> list[str]:
    """The distinct labels in id order: numerically when all are numbers, else as text.

    So 0/1 stay 0/1, AG News' 1..4 become 0..3, and "10" sorts after "9".
    """
    distinct = sorted(set(labels))
    if all(_NUMBER.fullmatch(label) for label in distinct):
        return sorted(distinct, key=lambda label: (float(label), label))
    return distinct


def _subset(
    train: pd.DataFrame, data: DataConfig, origin: str, *, held_out: bool = False
) -> pd.DataFrame:
    """``train_size`` rows, the same for every trial; kept in source order.

    Rows are the first ``train_size`` of one permutation, so with one seed a smaller
    subset lies inside a larger one (learning curves compare like with like). With
    ``held_out``, the ``test_from_train`` rows that follow them in the same permutation
    (or follow its first ``test_from_train_after`` rows, a learning curve's largest size):
    disjoint from the training rows by construction.
    """
    assert data.train_size is not None
    start = (data.test_from_train_after or data.train_size) if held_out else 0
    wanted = start + (data.test_from_train or 0) if held_out else data.train_size
    if wanted > len(train):
        if held_out:
            left = len(train) - start
            after = ("the largest learning-curve size" if data.test_from_train_after
                     else "the 'data.train_size' subset")  # fmt: skip
            message = parameter_message(
                "data.test_from_train",
                f"must be at most the {max(left, 0)} train rows of {origin} that {after} leaves",
                data.test_from_train,
            )
        else:
            message = parameter_message(
                "data.train_size",
                f"must be at most the number of train rows in {origin} ({len(train)})",
                wanted,
            )
        raise DataError(message)
    order = np.random.default_rng(data.subset_seed).permutation(len(train))
    rows = np.sort(order[start:wanted])
    return train.iloc[rows].reset_index(drop=True)


def _fingerprint(frames: dict[str, pd.DataFrame], label_names: list[str]) -> str:
    content = {
        "label_names": label_names,
        "splits": {
            split: {column: frame[column].tolist() for column in frame.columns}
            for split, frame in sorted(frames.items())
        },
    }
    encoded = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()
