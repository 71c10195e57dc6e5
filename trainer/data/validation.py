"""Refuse unusable data before any training, with a message that points at the fix.

Every message names the split's origin (a file, or a hub split), the column and the first
bad row, in the shape "The 'text' column of dev.tsv must ... Got ... at data row 17
instead." Rows are counted as data rows from 0 in source order, not counting a header
line: the index pandas gives a file, and the position in a hub split.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd

from trainer.data.sources import ROW, RawSplit
from trainer.errors import DataError
from trainer.messages import parameter_message


def check_split(
    raw: RawSplit,
    text: str,
    text_pair: str | None,
    label: str,
    split: str,
    task: str = "classification",
) -> pd.DataFrame:
    """Check one split and return it as columns ``text`` [, ``text_pair``], ``label``.

    Classification labels come back as stripped strings ("1", "entailment"), whatever
    their type in the source, so that labels of files, hub splits and JSON compare equal
    across splits; regression labels as floats; token classification's ``text`` and
    ``label`` as lists of words and of tags.
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
    if task == "token_classification":
        return _tagged_sentences(frame[text], frame[label], text, label, raw.origin)
    checked = {}
    for ours in ("text", "text_pair"):
        if ours in wanted:
            _check_text(frame[wanted[ours]], wanted[ours], raw.origin)
            checked[ours] = frame[wanted[ours]].astype(str).reset_index(drop=True)
    read = _label_numbers if task == "regression" else _label_strings
    checked["label"] = read(frame[label], label, raw.origin).reset_index(drop=True)
    return pd.DataFrame(checked)


def _at_least_two(values: list, label: str, origin: str, kind: str, model: str) -> None:
    """One message for every task: a target with one distinct value has nothing to learn."""
    if len(values) < 2:
        raise DataError(
            f"The {label!r} column of {origin} must hold at least 2 distinct {kind} to train "
            f"{model}. Got only {values} instead."
        )


def check_labels(
    frames: dict[str, pd.DataFrame], raws: dict[str, RawSplit], label: str, classes: list[str]
) -> None:
    """Train must have two classes or more, and dev/test no label that train lacks."""
    _at_least_two(classes, label, raws["train"].origin, "labels", "a classifier")
    for split, frame in frames.items():
        unseen = ~frame["label"].isin(classes)
        if split != "train" and unseen.any():
            row = int(unseen.to_numpy().argmax())
            raise DataError(
                f"The {label!r} column of {raws[split].origin} must hold only labels that "
                f"occur in the train split ({raws['train'].origin}): {classes}. Got "
                f"{frame['label'].iloc[row]!r} at {ROW.format(row)} instead."
            )


def check_scores(scores: pd.Series, label: str, origin: str) -> None:
    """A regression needs scores that vary: a constant target has nothing to learn."""
    _at_least_two(sorted(scores.unique().tolist()), label, origin, "scores", "a regression")


def check_tags(
    frames: dict[str, pd.DataFrame], raws: dict[str, RawSplit], label: str, tags: list[str]
) -> None:
    """Train must have two tags or more, and dev/test no tag that train lacks."""
    _at_least_two(tags, label, raws["train"].origin, "tags", "a tagger")
    known = set(tags)
    for split, frame in frames.items():
        if split == "train":
            continue
        for n, sentence in enumerate(frame["label"]):
            unseen = [tag for tag in sentence if tag not in known]
            if unseen:
                raise DataError(
                    f"The {label!r} column of {raws[split].origin} must hold only tags that "
                    f"occur in the train split ({raws['train'].origin}): {tags}. Got "
                    f"{unseen[0]!r} at {SENTENCE.format(n)} instead."
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


def _as_list(value: object) -> object:
    return value.tolist() if isinstance(value, np.ndarray) else value


# Where a token classification message points: sentences, as a reader yields them.
SENTENCE = "sentence {} (counted from 0)"


def _tagged_sentences(
    words: pd.Series, tags: pd.Series, text: str, label: str, origin: str
) -> pd.DataFrame:
    """Each row a sentence: a non-empty list of non-empty words and as many tags.
    (Parquet hands list columns back as NumPy arrays: read as the lists they are.)"""
    words, tags = words.map(_as_list), tags.map(_as_list)
    for n, (sentence, tagged) in enumerate(zip(words, tags, strict=True)):
        at = SENTENCE.format(n)
        if not isinstance(sentence, (list, tuple)) or not isinstance(tagged, (list, tuple)):
            bad, column = (sentence, text) if not isinstance(sentence, (list, tuple)) else (
                tagged, label)  # fmt: skip
            raise DataError(
                f"The {column!r} column of {origin} must hold a list (of words, or of tags) "
                f"per sentence for token classification. Got {_describe(bad)} at {at} instead."
            )
        if not sentence:
            raise DataError(
                f"The {text!r} column of {origin} must hold at least one word per sentence. "
                f"Got an empty sentence at {at} instead."
            )
        if len(sentence) != len(tagged):
            raise DataError(
                f"The {text!r} and {label!r} columns of {origin} must hold as many tags as "
                f"words in every sentence. Got {len(sentence)} words and {len(tagged)} tags "
                f"at {at} instead."
            )
        for word, tag in zip(sentence, tagged, strict=True):
            if not isinstance(word, str) or not word.strip():
                raise DataError(
                    f"The {text!r} column of {origin} must hold non-empty words. Got "
                    f"{_describe(word)} at {at} instead."
                )
            if not isinstance(tag, str) or not tag.strip():
                raise DataError(
                    f"The {label!r} column of {origin} must hold a tag (a string) for every "
                    f"word. Got {_describe(tag)} at {at} instead."
                )
    return pd.DataFrame(
        {
            "text": [[w.strip() for w in s] for s in words],
            "label": [[t.strip() for t in s] for s in tags],
        }
    )


def _read_labels(values: pd.Series, read, what: str, column: str, origin: str) -> pd.Series:
    """Each value ``read`` as a label (None: not one); the first that is not, refused."""
    labels = values.map(read, na_action=None)
    bad = labels.isna().to_numpy()
    if bad.any():
        row = int(bad.argmax())
        raise DataError(
            f"The {column!r} column of {origin} must hold {what} in every row. Got "
            f"{_describe_label(values.iloc[row])} at {ROW.format(row)} instead."
        )
    return labels


def _label_numbers(values: pd.Series, column: str, origin: str) -> pd.Series:
    """Regression targets: numbers, or text that reads as one ("3.8", " 4 ")."""
    what = "a number (task: regression)"
    return _read_labels(values, _label_number, what, column, origin).astype("float64")


def _label_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Real):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _describe_label(value: object) -> str:
    """A bad label as a message shows it: a word is quoted, not called a non-string."""
    if isinstance(value, str) and value.strip():
        return repr(value)
    return _describe(value)


# The longest text one row may hold: a model reads max_length (≤ 512-ish) tokens of it,
# and a multi-megabyte "sentence" (a file whose newlines were lost) sends the tokenizer
# into gigabytes of memory and a Rust abort mid-trial instead of an error here.
MAX_TEXT_CHARS = 100_000


def _check_text(values: pd.Series, column: str, origin: str) -> None:
    ok = values.map(lambda v: isinstance(v, str) and bool(v.strip())).to_numpy(dtype=bool)
    if not ok.all():
        row = int((~ok).argmax())
        raise DataError(
            f"The {column!r} column of {origin} must hold non-empty strings. Got "
            f"{_describe(values.iloc[row])} at {ROW.format(row)} instead."
        )
    long = values.str.len().to_numpy() > MAX_TEXT_CHARS
    if long.any():
        row = int(long.argmax())
        raise DataError(
            f"The {column!r} column of {origin} must hold texts of at most "
            f"{MAX_TEXT_CHARS:,} characters (a model reads a few hundred tokens of one). "
            f"Got {len(values.iloc[row]):,} characters at {ROW.format(row)} instead."
        )


def _label_strings(values: pd.Series, column: str, origin: str) -> pd.Series:
    what = "a label (a string or a number)"
    return _read_labels(values, _label_string, what, column, origin).astype(str)


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
