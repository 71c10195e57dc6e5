"""Fixable input ends in one line that names the place, never in a traceback (issue 12).

Config and spec problems read like scikit-learn's parameter checks: one line per key,
"<where>: The '<key>' parameter must <what>. Got <value> instead.", with the key as the
user wrote it. Unreadable data files name the file and the row.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from sweeps.grid import expand_grid
from sweeps.spec import load_spec
from trainer.data import load_splits
from trainer.data.sources import _parse_jsonl
from trainer.data_config import DataConfig
from trainer.errors import ConfigError, DataError
from trainer.loading import load_config, merge, parse_overrides, read_yaml_mapping

BASE = {"model": "tiny-bert", "data": {"name": "synthetic-sentiment"}}
SPEC = {
    "name": "t",
    "model": "tiny-bert",
    "datasets": [{"name": "synthetic-sentiment", "train_size": 64}],
    "strategies": ["vanilla", "se", "sda"],
    "seeds": 2,
}
LINE = re.compile(
    r"^(config|sweep spec|\S+\.yaml): The '[^']+' parameter(?:'s keys)? (must|is) .+\.$"
)


def config_error(**override) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(merge(BASE, override))
    return str(caught.value)


def spec_error(**override) -> str:
    with pytest.raises(ConfigError) as caught:
        load_spec({**SPEC, **override})
    return str(caught.value)


def assert_one_line(message: str) -> None:
    assert "\n" not in message, message
    for leak in ("Input should", "Value error", "constrained-", "literal[", ".0.", "_shape_"):
        assert leak not in message, (leak, message)


# -- one line per key, in scikit-learn's shape ---------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"distill": {"k": 0}},
         "config: The 'distill.k' parameter must be an int >= 1 or 'all'. Got 0 instead."),
        ({"distill": {"k": "some"}},
         "config: The 'distill.k' parameter must be an int >= 1 or 'all'. Got 'some' instead."),
        ({"distill": {"k": True}},
         "config: The 'distill.k' parameter must be a number, not a boolean. Got True instead."),
        ({"optim": {"lr": 0}}, "config: The 'optim.lr' parameter must be greater than 0. Got 0 "
         "instead."),
        ({"strategy": "sdv", "distill": {"k": "all"}},
         "config: The 'distill.k' parameter must be an int >= 1 for strategy 'sdv' (one forward "
         "pass per snapshot); 'all' is for se and sda. Got 'all' instead."),
        ({"data": {"name": "synthetic-sentiment", "hub": {"path": "x"}}},
         "config: The 'data' parameter must set exactly one of 'name' (a built-in set), 'hub' or "
         "'files'. Got ['name', 'hub'] instead."),
        ({"data": {"files": {"train": "a.csv", "dev": "b.csv", "header": False}}},
         "config: The 'data.files.columns' parameter must name the columns, in file order, when "
         "'header' is false."),
        ({"optim": {"betaz": [0.9, 0.99]}},
         "config: The 'optim.betaz' parameter is not a known key; did you mean 'betas'? The keys "
         "of 'optim' are 'group_by_length', 'epochs', 'max_steps', 'batch_size', 'lr', "
         "'head_lr', 'layer_decay', 'weight_decay', 'warmup_ratio', 'max_grad_norm', "
         "'betas', 'eps'."),
    ],
)  # fmt: skip
def test_config_problem_is_one_line_in_sklearn_shape(override, expected):
    message = config_error(**override)
    assert message == expected
    assert LINE.match(message) and "invalid configuration" not in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"datasets": [{"name": "synthetic-sentiment", "max_length": 4}]},
         "sweep spec: The 'datasets[0].max_length' parameter must be greater than or equal to "
         "8. Got 4 instead."),
        ({"strategies": ["se", "sdx"]},
         "sweep spec: The 'strategies[1]' parameter must be a base strategy ('vanilla', 'se', "
         "'sda', 'sdv'), after any modifiers in this order: noisytune + reinit + llrd + "
         "recadam + mixout, joined by '+' (e.g. 'noisytune+sda', 'reinit+sdv') (did you mean "
         "'sdv'?). Got 'sdx' instead."),
        ({"strategies": ["reinit+noisytune+sda"]},
         "sweep spec: The 'strategies[0]' parameter must be a base strategy ('vanilla', 'se', "
         "'sda', 'sdv'), after any modifiers in this order: noisytune + reinit + llrd + "
         "recadam + mixout, joined by '+' (e.g. 'noisytune+sda', 'reinit+sdv') (did you mean "
         "'noisytune+reinit+sda'?). Got "
         "'reinit+noisytune+sda' instead."),
        ({"grid": {"distill.k": [1, 0]}},
         "sweep spec: The 'grid.distill.k[1]' parameter must be an int >= 1 or 'all'. Got 0 "
         "instead."),
        ({"resources": {"gpu": "half"}},
         "sweep spec: The 'resources.gpu' parameter must be a valid number or 'auto'. Got "
         "'half' instead."),
        ({"seeds": 0},
         "sweep spec: The 'seeds' parameter must be a number of seeds from 1 to 1000 (seeds 0, "
         "1, ...) or a list of seeds. Got 0 instead."),
        ({"seeds": [0, -1]},
         "sweep spec: The 'seeds[1]' parameter must be greater than or equal to 0. Got -1 "
         "instead."),
        ({"datasets": [{"name": "synthetic-sentiment", "metrc": "mcc"}]},
         "sweep spec: The 'datasets[0].metrc' parameter is not a known key; did you mean "
         "'metric'? The keys of 'datasets[0]' are 'id', 'metric', 'k', 'epochs', 'train_size', "
         "'curve', 'name', 'hub', 'files', 'task', 'text', 'text_pair', 'label', 'max_length', "
         "'subset_seed', 'test_from_train', 'test_from_train_after'."),
        ({"datasets": [{}]},
         "sweep spec: The 'datasets[0]' parameter must set exactly one of 'name' (a built-in "
         "set), 'hub' or 'files'. Got none of them instead."),
        ({"grid": {"distill.k": {"sda": [1]}}},
         "sweep spec: The 'grid.distill.k' parameter must give a list for every strategy of "
         "this spec that reads 'distill.k' (its default differs by strategy); it gives none "
         "for ['se']. Got {'sda': [1]} instead."),
    ],
)  # fmt: skip
def test_spec_problem_is_one_line_with_the_key_as_written(override, expected):
    message = spec_error(**override)
    assert message == expected
    assert_one_line(message)


def test_an_explicit_data_section_keeps_its_level():
    message = spec_error(datasets=[{"data": {"name": "imdb"}, "metric": "mcc"}])
    assert message.startswith("sweep spec: The 'datasets[0].data.name' parameter must be ")


def test_several_problems_give_one_line_each_and_name_the_file(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({**BASE, "optim": {"lr": -1, "eps": 0}, "distill": {"k": 0}}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).split("\n")
    assert [line.split(" parameter")[0] for line in lines] == [
        f"{path}: The 'optim.lr'",
        f"{path}: The 'optim.eps'",
        f"{path}: The 'distill.k'",
    ]
    assert all(LINE.match(line) for line in lines), lines


def test_a_trial_names_itself_and_the_spec_defaults():
    spec = load_spec({**SPEC, "strategies": ["sda"], "seeds": 1, "defaults": {"optim": {"lr": 0}}})
    with pytest.raises(ConfigError) as caught:
        expand_grid(spec)
    assert str(caught.value) == (
        "trial (dataset 'synthetic-sentiment', strategy 'sda', seed 0) from spec 'defaults': "
        "The 'optim.lr' parameter must be greater than 0. Got 0 instead."
    )


# -- numeric and pattern holes --------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key", "what"),
    [
        ({"optim": {"betas": [1.5, 0.9]}}, "optim.betas[0]", "must be less than 1. Got 1.5"),
        ({"optim": {"betas": [0.9, 1.0]}}, "optim.betas[1]", "must be less than 1. Got 1.0"),
        ({"optim": {"betas": [-0.1, 0.9]}}, "optim.betas[0]", "greater than or equal to 0"),
        ({"optim": {"eps": 0}}, "optim.eps", "must be greater than 0. Got 0"),
        ({"optim": {"eps": float("inf")}}, "optim.eps", "must be a finite number. Got inf"),
        ({"optim": {"eps": float("nan")}}, "optim.eps", "must be a finite number. Got nan"),
        ({"optim": {"epochs": float("inf")}}, "optim.epochs", "must be a finite number"),
        ({"optim": {"max_grad_norm": float("inf")}}, "optim.max_grad_norm", "finite number"),
        ({"optim": {"warmup_ratio": float("nan")}}, "optim.warmup_ratio", "finite number"),
        ({"optim": {"head_lr": float("inf")}}, "optim.head_lr", "finite number"),
        ({"seed": -1}, "seed", "greater than or equal to 0. Got -1"),
        ({"data": {"name": "synthetic-sentiment", "subset_seed": -3}}, "data.subset_seed",
         "greater than or equal to 0"),
        ({"noise": {"exclude": ["classifier", "(bias"]}}, "noise.exclude[1]",
         "must be a regular expression (Python's re module): missing ), unterminated "
         "subpattern at position 0. Got '(bias' instead."),
        ({"threads": 0}, "threads", "must be greater than or equal to 1. Got 0"),
    ],
)  # fmt: skip
def test_values_torch_or_numpy_would_choke_on_are_refused(override, key, what):
    message = config_error(**override)
    assert message.startswith(f"config: The '{key}' parameter "), message
    assert what in message
    assert_one_line(message)


def test_exclude_given_as_one_pattern_and_threads_default():
    config = load_config(merge(BASE, {"noise": {"exclude": "classifier"}}))
    assert config.noise.exclude == ("classifier",)
    assert config.threads == 1
    assert load_config(merge(BASE, {"threads": 4})).threads == 4
    example = Path(__file__).resolve().parents[1] / "examples" / "train-tiny.yaml"
    assert "threads" in yaml.safe_load(example.read_text())


# -- YAML files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model: tiny-bert\noptim:\n  lr: 1.0e-3\ndata:\n  name: synthetic-sentiment\n"
         "optim:\n  epochs: 1\n", "line 6: duplicate key 'optim' (first given at line 2)"),
        ("data:\n  name: synthetic-sentiment\noptim:\n  lr: 1.0e-3\n  epochs: 1\n  lr: 2.0e-3\n",
         "line 6: duplicate key 'lr' (first given at line 4)"),
        ("optim: {lr: 1, lr: 2}\n", "line 1: duplicate key 'lr' (first given at line 1)"),
        ("model: [unclosed\n", "line 2, column 1: not valid YAML: expected ',' or ']', but got "
         "'<stream end>' (while parsing a flow sequence that starts at line 1, column 8)"),
        ("a: 1\n b: 2\n", "line 2, column 3: not valid YAML: mapping values are not allowed here"),
    ],
)  # fmt: skip
def test_yaml_mistakes_are_one_line_naming_file_and_line(tmp_path, text, expected):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_yaml_mapping(path, "config file")
    assert str(caught.value) == f"{path} {expected}"


def test_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &b {lr: 1, epochs: 2}\noptim:\n  <<: *b\n  lr: 3\n")
    assert read_yaml_mapping(path, "config file")["optim"] == {"lr": 3, "epochs": 2}


def test_unreadable_config_files(tmp_path):
    with pytest.raises(ConfigError, match=r"the config file path is a directory, not a file"):
        load_config(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("model: tiny-bert\ndata: {name: caf\u00e9}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(latin)
    assert str(caught.value) == (
        f"{latin} line 2: the config file must be UTF-8 text. Got byte 0xe9 at byte offset "
        "33 instead."
    )


def test_set_values_that_are_not_yaml():
    with pytest.raises(ConfigError, match=r"^--set optim\.betas=\[0\.9: the value is not valid"):
        parse_overrides(["optim.betas=[0.9"])
    with pytest.raises(ConfigError, match=r"duplicate key 'lr'"):
        parse_overrides(["optim={lr: 1, lr: 2}"])


# -- data files -----------------------------------------------------------------------

DEV = "text,label\nfine,0\nokay,1\n"


def _files(tmp_path: Path, train: bytes | str, name: str = "train.csv", **files) -> DataConfig:
    path = tmp_path / name
    path.write_bytes(train if isinstance(train, bytes) else train.encode())
    (tmp_path / "dev.csv").write_text(DEV)
    return DataConfig(files={"train": path, "dev": tmp_path / "dev.csv", **files})


def _refusal(data: DataConfig) -> str:
    with pytest.raises(DataError) as caught:
        load_splits(data)
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_directory_instead_of_a_file(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "dev.csv").write_text(DEV)
    data = DataConfig(files={"train": tmp_path / "folder.csv", "dev": tmp_path / "dev.csv"})
    assert _refusal(data) == (
        f"The 'data.files.train' parameter must name a file, not a directory. Got "
        f"'{tmp_path}/folder.csv' instead."
    )


LATIN = "text,label\ngood,1\nbad,0\ncafé au lait,1\n".encode("latin-1")


def test_latin1_csv_names_file_row_offset_and_the_fix(tmp_path):
    message = _refusal(_files(tmp_path, LATIN))
    assert message == (
        f"The file {tmp_path}/train.csv must be text in UTF-8 ('data.files.encoding'). Got "
        "byte 0xe9, which UTF-8 cannot decode, at byte offset 27 on line 4, data row 2 "
        "(counted from 0, header line not counted), instead. If the file is Latin-1 "
        "(ISO-8859-1), set 'data.files.encoding: latin-1'."
    )


def test_encoding_option_reads_the_file(tmp_path):
    splits = load_splits(_files(tmp_path, LATIN, encoding="latin-1"))
    assert splits.train["text"].tolist()[2] == "café au lait"
    data = _files(tmp_path, "text,label\na,0\nb,1\n".encode("utf-16"), encoding="utf-16")
    (tmp_path / "dev.csv").write_bytes(DEV.encode("utf-16"))  # one encoding for every file
    assert load_splits(data).train["text"].tolist() == ["a", "b"]


def test_encoding_is_checked_with_the_config():
    for bad in ("latin-9x", "base64"):
        with pytest.raises(ConfigError, match=r"^config: The 'data\.files\.encoding' parameter"):
            load_config({"data": {"files": {"train": "a.csv", "dev": "b.csv", "encoding": bad}}})


def test_windows_and_utf16_files_get_their_own_hint(tmp_path):
    message = _refusal(_files(tmp_path, "text,label\n\u201chi\u201d,1\n".encode("cp1252")))
    assert "data row 0" in message and "'data.files.encoding: cp1252'" in message
    message = _refusal(_files(tmp_path, "text,label\na,1\n".encode("utf-16")))
    assert "the header line" in message and "'data.files.encoding: utf-16'" in message


def test_bad_bytes_in_jsonl_and_lines_files_name_the_row(tmp_path):
    jsonl = b'{"text": "a", "label": 0}\n\n{"text": "caf\xe9", "label": 1}\n'
    message = _refusal(_files(tmp_path, jsonl, name="train.jsonl"))
    assert "on line 3, data row 1 (counted from 0" in message and "latin-1" in message
    (tmp_path / "s.train").write_bytes(b"one\ntwo\ncaf\xe9\n")
    (tmp_path / "l.train").write_text("0\n1\n1\n")
    data = DataConfig(
        files={"train": tmp_path / "{column}.train", "dev": tmp_path / "{column}.train",
               "format": "lines", "columns": ["s", "l"]},
        text="s", label="l",
    )  # fmt: skip
    message = _refusal(data)
    assert "s.train" in message and "byte offset 11 on line 3, data row 2 (" in message


@pytest.mark.parametrize(
    ("name", "train", "expected"),
    [
        # the first row one field longer: pandas took its first field as an index
        ("train.csv", "text,label\ngood,1,x\nbad,0\n",
         "must have 2 fields in every row, as its header line has. Got 3 fields at data row "
         "0 (counted from 0, header line not counted) instead."),
        ("train.tsv", "text\tlabel\ngood\t1\nbad\t0\textra\n",
         "Got 3 fields at data row 1 (counted from 0, header line not counted) instead. TSV "
         "files are read without quoting, so a field cannot hold a tab."),
        ("train.csv", 'text,label\ngood,1\n"bad,0\nnice,1\n',
         "must close every quoted field. Got a quote that is never closed at data row 1 "),
        ("train.csv", "text,text,label\na,b,1\n",
         "must name each column once. Got 'text' twice instead."),
        ("train.jsonl", '{"text": "a", "label": 0}\n{"text": "b" "label": 1}\n',
         "must hold one JSON object a line (JSON Lines). Got invalid JSON (Expecting ',' "
         "delimiter, column 14) at line 2, data row 1 (counted from 0, header line not "
         "counted), instead."),
        ("train.jsonl", '[{"text": "a", "label": 0}]\n', "Got a JSON list at line 1, data row 0"),
        ("train.parquet", "text,label\na,1\n",
         "must be a Parquet file, as its extension or 'data.files.format' says. Got a file "
         "pyarrow cannot read instead: Parquet magic bytes not found in footer."),
        ("train.parquet", "", "Parquet file size is 0 bytes."),
    ],
)  # fmt: skip
def test_unparseable_files_name_file_and_row(tmp_path, name, train, expected):
    message = _refusal(_files(tmp_path, train, name=name))
    assert message.startswith(f"The {'header line of ' if 'once' in expected else 'file '}")
    assert f"{tmp_path}/{name}" in message
    assert expected in message, message


def test_an_empty_headerless_file_is_an_empty_split(tmp_path):
    data = _files(tmp_path, "", header=False, columns=["text", "label"])
    assert (
        _refusal(data)
        == f"The train split ({tmp_path}/train.csv) must hold at least one row. Got none instead."
    )


def test_compressed_files_still_read_by_extension(tmp_path):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(b"text,label\na,0\nb,1\n"))
    (tmp_path / "dev.csv").write_text(DEV)
    data = DataConfig(files={"train": path, "dev": tmp_path / "dev.csv", "format": "csv"})
    assert load_splits(data).train["text"].tolist() == ["a", "b"]
    path.write_bytes(b"text,label\na,0\n")
    assert "must be gzip-compressed" in _refusal(data)


def test_jsonl_values_keep_their_types(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0.0}, {"text": "c", "label": "x"}]
    jsonl = "\n".join(json.dumps(r) for r in rows) + "\n\n"
    (tmp_path / "train.jsonl").write_text(jsonl)
    frame = _parse_jsonl(jsonl, tmp_path / "train.jsonl")
    expected = pd.read_json(tmp_path / "train.jsonl", lines=True, dtype=False)
    assert frame["label"].tolist() == expected["label"].tolist() == [1, 0.0, "x"]
    assert frame["text"].tolist() == ["a", "b", "c"]
