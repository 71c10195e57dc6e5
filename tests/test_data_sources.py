"""Reading every supported source into the same TextSplits, and the label/subset rules."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pandas as pd
import pytest

from trainer.data import load_splits
from trainer.data_config import DataConfig
from trainer.errors import ConfigError, DataError
from trainer.loading import load_config


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _csv(tmp_path: Path, train: str, dev: str, suffix: str = ".csv") -> dict[str, Path]:
    return {
        "train": _write(tmp_path / f"train{suffix}", train),
        "dev": _write(tmp_path / f"dev{suffix}", dev),
    }


def test_csv_keeps_na_like_text_as_text(tmp_path):
    files = _csv(
        tmp_path,
        'text,label\nNA,0\nnull,1\n"a, quoted ""comma""",1\n',
        "text,label\nN/A,1\nfine,0\n",
    )
    splits = load_splits(DataConfig(files=files))
    assert splits.train["text"].tolist() == ["NA", "null", 'a, quoted "comma"']
    assert splits.dev["text"].tolist() == ["N/A", "fine"]
    assert splits.train["label"].tolist() == [0, 1, 1]
    assert splits.train["label"].dtype == "int64"
    assert not splits.has_pair and splits.test is None


def test_tsv_reads_quote_characters_literally_and_drops_the_bom(tmp_path):
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
    rows = '1\t1\t2\tHe said "yes\t"Yes" he said.\n0\t3\t4\tA "quoted" word\tOther text\n'
    path = tmp_path / "train.tsv"
    path.write_bytes((header + rows).encode("utf-8"))
    data = DataConfig(
        files={"train": path, "dev": path},
        text="#1 String",
        text_pair="#2 String",
        label="Quality",
    )
    splits = load_splits(data)
    assert splits.has_pair
    assert splits.train["text"].tolist() == ['He said "yes', 'A "quoted" word']
    assert splits.train["text_pair"].tolist() == ['"Yes" he said.', "Other text"]
    assert splits.train["label"].tolist() == [1, 0]


def test_headerless_tsv_takes_column_names_from_config(tmp_path):
    rows = "gj04\t1\t\tThe sailors rode the breeze.\ngj04\t0\t*\tThe rope stretched the.\n"
    files = _csv(tmp_path, rows, rows, suffix=".tsv")
    data = DataConfig(
        files={**files, "header": False, "columns": ["source", "label", "mark", "sentence"]},
        text="sentence",
    )
    splits = load_splits(data)
    assert len(splits.train) == 2  # the first row is data, not a header
    assert splits.train["text"][1] == "The rope stretched the."
    assert splits.train["label"].tolist() == [1, 0]


def test_headerless_file_with_a_different_field_count_is_refused(tmp_path):
    files = _csv(tmp_path, "a\t1\tx\n", "a\t1\tx\n", suffix=".tsv")
    data = DataConfig(files={**files, "header": False, "columns": ["text", "label"]})
    with pytest.raises(DataError, match=r"train\.tsv, which has 3 a row\. Got \['text', 'label'\]"):
        load_splits(data)


def test_trailing_fields_some_rows_carry_are_named_but_not_one_name_too_many(tmp_path):
    """The STS Benchmark's test file: some rows carry two source fields more."""
    rows = "x\t1.5\tA man.\tA man.\nx\t4.0\tA cat.\tA dog.\tsrc1\tsrc2\n"
    files = _csv(tmp_path, rows, rows, suffix=".tsv")
    names = ["genre", "label", "text", "text_pair", "source1", "source2"]
    data = DataConfig(files={**files, "header": False, "columns": names}, text_pair="text_pair",
                      task="regression")  # fmt: skip
    splits = load_splits(data)
    assert splits.train["text_pair"].tolist() == ["A man.", "A dog."]
    too_many = DataConfig(files={**files, "header": False, "columns": [*names, "spare"]},
                          text_pair="text_pair", task="regression")  # fmt: skip
    with pytest.raises(DataError, match=r"train\.tsv must have 4 fields in every row"):
        load_splits(too_many)


def test_jsonl_and_json_extension(tmp_path):
    train = tmp_path / "train.jsonl"
    dev = tmp_path / "dev.json"
    train.write_text(
        "\n".join(json.dumps(r) for r in [{"t": "good", "y": 1}, {"t": "bad", "y": 0}])
    )
    dev.write_text(json.dumps({"t": "null", "y": 1.0}) + "\n")
    splits = load_splits(DataConfig(files={"train": train, "dev": dev}, text="t", label="y"))
    assert splits.train["text"].tolist() == ["good", "bad"]
    assert splits.label_names == ["0", "1"]
    assert splits.dev["label"].tolist() == [1]  # 1.0 is label "1"
    assert splits.dev["text"].tolist() == ["null"]


def test_parquet(tmp_path):
    frame = pd.DataFrame({"sentence": ["good one", "bad one", "fine"], "label": [1, 0, 1]})
    frame.to_parquet(tmp_path / "train.parquet")
    frame.to_parquet(tmp_path / "dev.parquet")
    files = {"train": tmp_path / "train.parquet", "dev": tmp_path / "dev.parquet"}
    splits = load_splits(DataConfig(files=files, text="sentence"))
    assert splits.train["text"].tolist() == ["good one", "bad one", "fine"]
    assert splits.train["label"].tolist() == [1, 0, 1]


def test_declared_format_overrides_the_extension(tmp_path):
    files = _csv(tmp_path, "text\tlabel\na\t0\nb\t1\n", "text\tlabel\nc\t1\n", suffix=".txt")
    with pytest.raises(DataError, match=r"extension '\.txt'.*'data\.files\.format'"):
        load_splits(DataConfig(files=files))
    splits = load_splits(DataConfig(files={**files, "format": "tsv"}))
    assert splits.train["text"].tolist() == ["a", "b"]


def test_per_split_layout_reads_a_headerless_dev_beside_a_headered_train(tmp_path):
    files = _csv(tmp_path, "label,content\n1,world news\n2,sports news\n", '"2","t","a game"\n')
    data = DataConfig(
        files={
            **files,
            "per_split": {"dev": {"header": False, "columns": ["label", "title", "content"]}},
        },
        text="content",
    )
    splits = load_splits(data)
    assert splits.dev["text"].tolist() == ["a game"]
    assert splits.dev["label"].tolist() == [1]


def test_lines_format_reads_one_file_per_column(tmp_path):
    for name, text in {
        "s1.dev": "A man sleeps .\nTwo dogs run .\n",
        "s2.dev": "A person sleeps . \nA cat runs .\n",
        "labels.dev": "entailment\ncontradiction\n",
        "s1.test": "NA\n",
        "s2.test": "null\n",
        "labels.test": "contradiction",  # no final newline
    }.items():
        _write(tmp_path / name, text)
    data = DataConfig(
        files={
            "train": tmp_path / "{column}.dev",
            "dev": tmp_path / "{column}.test",
            "format": "lines",
            "columns": ["s1", "s2", "labels"],
        },
        text="s1",
        text_pair="s2",
        label="labels",
    )
    splits = load_splits(data)
    assert splits.train["text_pair"].tolist() == ["A person sleeps . ", "A cat runs ."]
    assert splits.label_names == ["contradiction", "entailment"]
    assert splits.train["label"].tolist() == [1, 0]
    assert splits.dev.iloc[0].tolist() == ["NA", "null", 0]
    _write(tmp_path / "s2.test", "one\ntwo\n")
    with pytest.raises(DataError, match=r"one line per row.*s2\.test': 2"):
        load_splits(data)


@pytest.mark.parametrize(
    ("labels", "names"),
    [
        (["4", "1", "3", "2"], ["1", "2", "3", "4"]),  # AG News: 1..4 -> ids 0..3
        (["10", "9", "-1"], ["-1", "9", "10"]),  # numbers sort as numbers
        (["not_entailment", "entailment"], ["entailment", "not_entailment"]),
        (["b", "10", "9"], ["10", "9", "b"]),  # not all numbers: sorted as text
    ],
)
def test_label_ids_follow_sorted_train_labels(tmp_path, labels, names):
    train = "text,label\n" + "".join(f"row {i},{label}\n" for i, label in enumerate(labels))
    files = _csv(tmp_path, train, f"text,label\nx,{labels[0]}\n")
    splits = load_splits(DataConfig(files=files))
    assert splits.label_names == names
    assert [names[i] for i in splits.train["label"]] == labels
    assert splits.dev["label"].tolist() == [names.index(labels[0])]


def _numbered(tmp_path: Path, n: int) -> dict[str, Path]:
    train = "text,label\n" + "".join(f"row {i},{i % 2}\n" for i in range(n))
    return _csv(tmp_path, train, "text,label\nx,0\ny,1\n")


def test_train_size_draws_a_fixed_nested_subset(tmp_path):
    files = _numbered(tmp_path, 50)

    def subset(size: int, seed: int = 0) -> list[str]:
        data = DataConfig(files=files, train_size=size, subset_seed=seed)
        train = load_splits(data).train
        assert train.index.equals(pd.RangeIndex(size))
        return train["text"].tolist()

    assert subset(10) == subset(10)
    assert subset(10) != subset(10, seed=1)
    assert set(subset(10)) < set(subset(20))
    assert sorted(subset(10), key=lambda t: int(t.split()[1])) == subset(10)  # file order
    assert len(set(subset(50))) == 50


def test_train_size_above_the_row_count_is_refused(tmp_path):
    data = DataConfig(files=_numbered(tmp_path, 5), train_size=6)
    with pytest.raises(DataError, match=r"'data\.train_size'.*train\.csv \(5\)\. Got 6"):
        load_splits(data)


def test_train_size_subset_missing_a_class_is_refused(tmp_path):
    train = "text,label\n" + "".join(f"row {i},{int(i == 0)}\n" for i in range(40))
    files = _csv(tmp_path, train, "text,label\nx,0\n")
    with pytest.raises(DataError, match=r"train_size=2, subset_seed=0.*no row of \['1'\]"):
        load_splits(DataConfig(files=files, train_size=2))


def test_fingerprint_follows_the_contents(tmp_path):
    files = _numbered(tmp_path, 6)
    first = load_splits(DataConfig(files=files)).fingerprint
    assert first == load_splits(DataConfig(files=files)).fingerprint
    assert len(first) == 64
    _write(files["dev"], "text,label\nx,0\nz,1\n")
    assert load_splits(DataConfig(files=files)).fingerprint != first
    assert load_splits(DataConfig(files=files, train_size=5)).fingerprint != first


# -- the hub path, exercised offline through the "csv" builder ------------------------


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """Keep the datasets cache inside the test, and never wait on the network."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def test_hub_source_maps_splits_and_columns(tmp_path, hub_cache):
    files = _csv(tmp_path, "sentence,y\ngood,pos\nbad,neg\n", "sentence,y\nok,pos\n")
    third = _write(tmp_path / "third.csv", "sentence,y\nmeh,neg\n")
    data = DataConfig(
        hub={
            "path": "csv",
            "data_files": {"train": str(files["train"]), "val": str(files["dev"]), "t": str(third)},
            "splits": {"train": "train", "dev": "val", "test": "t"},
        },
        text="sentence",
        label="y",
    )
    splits = load_splits(data)
    assert splits.label_names == ["neg", "pos"]
    assert splits.train["text"].tolist() == ["good", "bad"]
    assert splits.dev["label"].tolist() == [1]
    assert splits.test is not None and splits.test["text"].tolist() == ["meh"]


def test_hub_source_names_unknown_split(tmp_path, hub_cache):
    files = _csv(tmp_path, "text,label\na,0\nb,1\n", "text,label\nc,0\n")
    data_files = {"train": str(files["train"]), "test": str(files["dev"])}
    data = DataConfig(hub={"path": "csv", "data_files": data_files})
    with pytest.raises(DataError, match=r"'data\.hub\.splits\.dev'.*\['test', 'train'\]"):
        load_splits(data)


def test_hub_class_labels_become_their_names(monkeypatch):
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    loaded = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(
                {"sentence": ["bad", "good"], "label": [0, 1]}, features=features
            ),
            "validation": datasets.Dataset.from_dict(
                {"sentence": ["fine", "unlabelled"], "label": [1, -1]}, features=features
            ),
        }
    )
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: loaded)
    data = DataConfig(hub={"path": "org/set"}, text="sentence")
    # -1 is the hub's "no label": reported as missing, at its row.
    with pytest.raises(DataError, match=r"'validation' split of hub dataset 'org/set'.*row 1"):
        load_splits(data)
    loaded["validation"] = loaded["validation"].select([0])
    splits = load_splits(data)
    assert splits.label_names == ["neg", "pos"]
    assert splits.dev["label"].tolist() == [1]


@pytest.mark.parametrize("offline", ["1", ""])
def test_hub_failure_is_a_data_error_naming_the_dataset(hub_cache, monkeypatch, offline):
    """The advice fits the user: HF_HUB_OFFLINE=1 is suggested only where it is not set."""
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    data = DataConfig(hub={"path": "no-such-org/no-such-set", "name": "cfg"})
    with pytest.raises(DataError) as caught:
        load_splits(data)
    message = str(caught.value)
    assert "'no-such-org/no-such-set' (config 'cfg')" in message
    assert "data.files" in message
    assert ("set HF_HUB_OFFLINE=1" in message) is (offline == "")
    assert ("HF_HUB_OFFLINE is set" in message) is (offline == "1")


# -- file layout settings are checked with the config --------------------------------


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"header": False}, r"'data\.files\.columns' parameter must name the columns"),
        ({"columns": ["a", "b"]}, "columns is only for headerless files"),
        (
            {"per_split": {"dev": {"header": False}}},
            r"'data\.files\.per_split\.dev\.columns' parameter must name the columns",
        ),
        ({"format": "lines", "columns": ["s1"]}, r"'data\.files\.train' parameter must contain"),
    ],
)
def test_file_layout_mistakes_are_config_errors(files, match):
    raw = {"data": {"files": {"train": "a.tsv", "dev": "b.tsv", **files}}}
    with pytest.raises(ConfigError, match=match):
        load_config(raw)
