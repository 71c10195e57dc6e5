"""Refuse unusable data before any training, with a message that points at the fix.

Every message names the split's origin (a file, or a hub split), the column and the first
bad row, in the shape "The 'text' column of dev.tsv must ... Got ... at data row 17
instead." Rows are counted as data rows from 0 in source order, not counting a header
line: the index pandas gives a file, and the position in a hub split.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import pandas as pd

from trainer.data.sources import ROW, RawSplit
from trainer.errors import DataError
from trainer.messages import parameter_message


def check_split(
    raw: RawSplit, text: str, text_pair: str | None, label: str, split: str
) -> pd.DataFrame:
    """Check one split and return it as columns ``text`` [, ``text_pair``], ``label``.

    Labels come back as stripped strings ("1", "entailment"), whatever their type in the
    source, so that labels of files, hub splits and JSON compare equal across splits.
    """
    frame = raw.frame
    if len(frame) == 0:
        raise DataError(
            f"The {split} split ({raw.origin}) must hold at least one row. Got none instead."
        )
    wanted = {"text": text, "text_pair": text_pair, "label": label}
    wanted = {ours: theirs for ours, theirs in wanted.items() if theirs is not None}
    for ours, theirs in wanted.items():
        if theirs not in frame.columns:
            raise DataError(
                f"The {theirs!r} column ('data.{ours}') is missing from {raw.origin}. "
                f"Its columns are: {[str(c) for c in frame.columns]}.{raw.hint}"
            )
    checked = {}
    for ours in ("text", "text_pair"):
        if ours in wanted:
            _check_text(frame[wanted[ours]], wanted[ours], raw.origin)
            checked[ours] = frame[wanted[ours]].astype(str).reset_index(drop=True)
    checked["label"] = _label_strings(frame[label], label, raw.origin).reset_index(drop=True)
    return pd.DataFrame(checked)


def check_labels(
    frames: dict[str, pd.DataFrame], raws: dict[str, RawSplit], label: str, classes: list[str]
) -> None:
    """Train must have two classes or more, and dev/test no label that train lacks."""
    if len(classes) < 2:
        raise DataError(
            f"The {label!r} column of {raws['train'].origin} must hold at least 2 distinct "
            f"labels to train a classifier. Got only {classes} instead."
        )
    for split, frame in frames.items():
        unseen = ~frame["label"].isin(classes)
        if split != "train" and unseen.any():
            row = int(unseen.to_numpy().argmax())
            raise DataError(
                f"The {label!r} column of {raws[split].origin} must hold only labels that "
                f"occur in the train split ({raws['train'].origin}): {classes}. Got "
                f"{frame['label'].iloc[row]!r} at {ROW.format(row)} instead."
            )


def check_subset(
    labels: pd.Series, classes: list[str], train_size: int, seed: int, origin: str
) -> None:
    """A ``train_size`` subset must still hold every class, or the head trains blind."""
    missing = [c for c in classes if c not in set(labels)]
    if missing:
        raise DataError(
            parameter_message(
                "data.train_size",
                f"must give a subset of {origin} (train_size={train_size}, subset_seed={seed}) "
                f"that holds every train label {classes}; it has no row of {missing}: raise "
                "train_size or change subset_seed",
            )
        )


def _check_text(values: pd.Series, column: str, origin: str) -> None:
    ok = values.map(lambda v: isinstance(v, str) and bool(v.strip())).to_numpy(dtype=bool)
    if not ok.all():
        row = int((~ok).argmax())
        raise DataError(
            f"The {column!r} column of {origin} must hold non-empty strings. Got "
            f"{_describe(values.iloc[row])} at {ROW.format(row)} instead."
        )


def _label_strings(values: pd.Series, column: str, origin: str) -> pd.Series:
    labels = values.map(_label_string, na_action=None)
    missing = labels.isna().to_numpy()
    if missing.any():
        row = int(missing.argmax())
        raise DataError(
            f"The {column!r} column of {origin} must hold a label (a string or a number) in "
            f"every row. Got {_describe(values.iloc[row])} at {ROW.format(row)} instead."
        )
    return labels.astype(str)


def _label_string(value: object) -> str | None:
    """The label as text: 1, 1.0, "1" and " 1 " are all "1"; None when there is none."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real) and not math.isnan(value):
        number = float(value)
        return str(int(number)) if number.is_integer() else str(number)
    return None


def _describe(value: object) -> str:
    if isinstance(value, str):
        return "an empty string" if not value else f"the blank string {value!r}"
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "a missing value"
    return f"{value!r} (a {type(value).__name__}, not a string)"
