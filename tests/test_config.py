"""Config validation: every bad value is refused with the key and what is allowed."""

from __future__ import annotations

import pytest

from trainer import ConfigError, load_config
from trainer.loading import merge, parse_overrides

BASE = {"model": "tiny-bert", "data": {"name": "synthetic-sentiment"}}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"distill": {"k": 0}}, "distill.k"),
        ({"distill": {"k": -2}}, "distill.k"),
        ({"distill": {"k": "some"}}, "distill.k"),
        ({"distill": {"k": True}}, "distill.k"),
        ({"distill": {"lambda": float("nan")}}, "distill.lambda"),
        ({"distill": {"lambda": -1.0}}, "distill.lambda"),
        ({"noise": {"lambda": float("inf")}}, "noise.lambda"),
        ({"noise": {"lambda": -0.1}}, "noise.lambda"),
        ({"noise": {"distribution": "laplace"}}, "noise.distribution"),
        ({"strategy": "sd"}, "strategy"),
        ({"optim": {"lr": 0}}, "optim.lr"),
        ({"eval": {"primary_metric": "f1"}}, "eval.primary_metric"),
        ({"optimizer": {"lr": 1e-3}}, "optimizer"),
        ({"data": {"name": "synthetic-sentiment", "files": {"train": "a", "dev": "b"}}}, "data"),
    ],
)
def test_invalid_values_name_their_key(override, key):
    with pytest.raises(ConfigError) as info:
        load_config(merge(BASE, override))
    assert f"'{key}" in str(info.value)


def test_sdv_with_k_all_is_refused_before_training():
    with pytest.raises(
        ConfigError, match=r"'distill\.k' parameter must be an int >= 1 for strategy 'sdv'"
    ):
        load_config(merge(BASE, {"strategy": "sdv", "distill": {"k": "all"}}))


def test_teacher_k_defaults_and_strategy_parts():
    assert load_config(merge(BASE, {"strategy": "sda"})).teacher_k == 1
    assert load_config(merge(BASE, {"strategy": "se"})).teacher_k == "all"
    assert load_config(merge(BASE, {"strategy": "noisytune"})).teacher_k is None
    combo = load_config(merge(BASE, {"strategy": "noisytune+sdv", "distill": {"k": 3}}))
    assert combo.uses_noise and combo.base_strategy == "sdv" and combo.teacher_k == 3


def test_overrides_parse_as_yaml_values(tmp_path):
    assert parse_overrides(["optim.lr=3e-5", "distill.k=all", "seed=4"]) == {
        "optim": {"lr": 3e-5},
        "distill": {"k": "all"},
        "seed": 4,
    }
    with pytest.raises(ConfigError, match=r"key\.sub=value"):
        parse_overrides(["optim.lr"])


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(wrong)


@pytest.mark.parametrize(
    "raw",
    [
        {"data": {"name": "synthetic-similarity"}, "strategy": "recadam"},
        {"data": {"name": "synthetic-ner"}, "strategy": "noisytune+mixout"},
        {"data": {"name": "synthetic-sentiment"}, "recadam": {"gamma": 1.0}},
    ],
)
def test_a_config_built_directly_fills_in_what_a_loaded_one_does(raw):
    """Defaults that depend on other fields (a part's section, the task's metric) are the
    same whether the config is loaded or built as ``TrainConfig(...)``."""
    from trainer.config import TrainConfig

    loaded = load_config(raw)
    assert TrainConfig(**raw) == loaded
    assert (loaded.recadam is None) == ("recadam" not in loaded.strategy)
