"""Every refusal names the file (or hub split), the column and the first bad row."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainer.data import load_splits
from trainer.data_config import DataConfig
from trainer.errors import DataError

GOOD_DEV = "text,label\nfine,0\nokay,1\n"
GOOD_TRAIN = "text,label\ngood,1\nbad,0\nnice,1\n"


def _load(tmp_path: Path, train: str = GOOD_TRAIN, dev: str = GOOD_DEV, **data) -> None:
    """Write the two CSV files and load them; the test expects a DataError."""
    (tmp_path / "train.csv").write_text(train)
    (tmp_path / "dev.csv").write_text(dev)
    files = {"train": tmp_path / "train.csv", "dev": tmp_path / "dev.csv"}
    load_splits(DataConfig(files={**files, **data.pop("files", {})}, **data))


def _refusal(tmp_path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        _load(tmp_path, **kwargs)
    return str(caught.value)


def test_good_files_load(tmp_path):
    _load(tmp_path)  # the baseline every other test breaks in one place


def test_missing_file(tmp_path):
    message = _refusal(tmp_path, files={"test": tmp_path / "nope" / "test.csv"})
    assert message == (
        f"The 'data.files.test' parameter must name a file that exists. Got "
        f"'{tmp_path}/nope/test.csv' instead."
    )


def test_missing_column_lists_the_columns_there_are(tmp_path):
    message = _refusal(tmp_path, text="sentence")
    assert re.search(r"'sentence' column \('data\.text'\) is missing from \S+train\.csv", message)
    assert "Its columns are: ['text', 'label']." in message
    assert "'data.files.header: false'" in message  # the likely fix for a headerless file


def test_missing_pair_column(tmp_path):
    message = _refusal(tmp_path, text_pair="hypothesis")
    assert "'hypothesis' column ('data.text_pair') is missing from" in message
    assert "train.csv" in message


@pytest.mark.parametrize(
    ("row", "got"),
    [
        ('""', "Got an empty string at data row 2"),
        ("   ", "Got the blank string '   ' at data row 2"),
        ("\t", "Got the blank string '\\t' at data row 2"),
    ],
)
def test_empty_or_blank_text(tmp_path, row, got):
    dev = f"text,label\nfine,0\nokay,1\n{row},1\nagain,0\n"
    message = _refusal(tmp_path, dev=dev)
    assert message.startswith("The 'text' column of ") and "dev.csv must hold non-empty" in message
    assert got in message
    assert "(counted from 0, header line not counted) instead." in message


def test_short_row_has_an_empty_text(tmp_path):
    (tmp_path / "dev.tsv").write_text("label\ttext\n0\tfine\n1\n")
    message = _refusal(tmp_path, files={"dev": tmp_path / "dev.tsv"})
    assert "'text' column of" in message and "dev.tsv must hold non-empty strings" in message
    assert "Got an empty string at data row 1" in message


def test_empty_text_pair(tmp_path):
    train = "a,b,label\nx,y,0\nx,,1\n"
    message = _refusal(tmp_path, train=train, dev=train, text="a", text_pair="b")
    assert "The 'b' column of" in message and "train.csv" in message
    assert "Got an empty string at data row 1" in message


def test_non_string_text_in_jsonl(tmp_path):
    rows = [{"text": "ok", "label": 0}, {"text": "fine", "label": 1}, {"text": 3.5, "label": 1}]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    message = _refusal(tmp_path, files={"train": tmp_path / "train.jsonl"})
    assert "'text' column of" in message and "train.jsonl" in message
    assert "Got 3.5 (a float, not a string) at data row 2" in message


@pytest.mark.parametrize("label", ["", "  "])
def test_missing_label(tmp_path, label):
    message = _refusal(tmp_path, dev=f"text,label\nfine,0\nokay,{label}\n")
    assert "The 'label' column of" in message and "dev.csv must hold a label" in message
    assert "at data row 1" in message


def test_null_label_in_jsonl(tmp_path):
    (tmp_path / "dev.jsonl").write_text('{"text": "a", "label": 1}\n{"text": "b", "label": null}\n')
    message = _refusal(tmp_path, files={"dev": tmp_path / "dev.jsonl"})
    assert "dev.jsonl must hold a label" in message
    assert "Got a missing value at data row 1" in message


def test_dev_label_unseen_in_train(tmp_path):
    message = _refusal(tmp_path, dev="text,label\nfine,0\nodd,2\n")
    assert "The 'label' column of" in message and "dev.csv must hold only labels" in message
    assert "train split (" in message and "train.csv): ['0', '1']" in message
    assert "Got '2' at data row 1" in message


def test_test_label_unseen_in_train(tmp_path):
    (tmp_path / "test.csv").write_text("text,label\na,1\nb,1\nc,neutral\n")
    message = _refusal(tmp_path, files={"test": tmp_path / "test.csv"})
    assert "test.csv must hold only labels" in message and "Got 'neutral' at data row 2" in message


def test_train_with_one_class(tmp_path):
    message = _refusal(tmp_path, train="text,label\na,1\nb,1\n")
    assert "train.csv must hold at least 2 distinct labels" in message
    assert "Got only ['1'] instead." in message


@pytest.mark.parametrize("content", ["text,label\n", ""])
def test_empty_split(tmp_path, content):
    message = _refusal(tmp_path, dev=content)
    assert (
        message.startswith("The dev split (") and "dev.csv) must hold at least one row" in message
    )


def _rows(n: int) -> str:
    return "text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(n))


def test_test_from_train_holds_out_rows_never_trained_on(tmp_path):
    """The held-out rows follow the training subset in its permutation: disjoint from it,
    and the training subset is the one the same config draws without them."""
    (tmp_path / "train.csv").write_text(_rows(50))
    (tmp_path / "dev.csv").write_text(GOOD_DEV)
    files = {"train": tmp_path / "train.csv", "dev": tmp_path / "dev.csv"}
    plain = load_splits(DataConfig(files=files, train_size=20, subset_seed=3))
    held = load_splits(DataConfig(files=files, train_size=20, subset_seed=3, test_from_train=12))
    assert plain.test is None and len(held.test) == 12
    assert list(held.train["text"]) == list(plain.train["text"])
    assert not set(held.test["text"]) & set(held.train["text"])
    assert held.fingerprint != plain.fingerprint  # another test split: another cache entry


def test_test_from_train_refusals(tmp_path):
    (tmp_path / "test.csv").write_text(GOOD_DEV)
    too_many = _refusal(tmp_path, train=_rows(10), train_size=6, test_from_train=5)
    assert (
        "The 'data.test_from_train' parameter must be at most the 4 train rows of" in too_many
        and "that the 'data.train_size' subset leaves. Got 5 instead." in too_many
    )
    beside = _refusal(tmp_path, train=_rows(10), train_size=6, test_from_train=2,
                      files={"test": tmp_path / "test.csv"})  # fmt: skip
    assert (
        "'data.test_from_train' parameter must be left out when the data has a test split" in beside
        and "test.csv" in beside
    )
    from trainer.errors import ConfigError
    from trainer.loading import load_config

    with pytest.raises(ConfigError, match=r"^config: The 'data.test_from_train' parameter needs "
                                        r"'train_size'.* Got 5 instead.$"):  # fmt: skip
        load_config({"model": "tiny-bert", "data": {"name": "synthetic-sentiment",
                                                    "test_from_train": 5}})  # fmt: skip
