"""Layer-wise learning-rate decay (``optim.layer_decay``)."""

from __future__ import annotations

import json
import math

import pytest

from trainer import train
from trainer.errors import ConfigError
from trainer.loading import load_config
from trainer.models import check_model_resolvable, load_classifier, parameter_groups


@pytest.fixture()
def model(cache_dir):
    return load_classifier(check_model_resolvable("tiny-bert", cache_dir), 2, 0)


def _lr_of(groups) -> dict[int, float]:
    return {id(p): g["lr"] for g in groups for p in g["params"]}


def test_off_is_exactly_the_undecayed_groups(model):
    """1.0 must give the groups as before it existed: same params, order, lr, decay."""
    groups = parameter_groups(model, 1e-3, 1e-2, 0.01, layer_decay=1.0)
    assert len(groups) == 4
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [
        (1e-2, 0.0), (1e-2, 0.01), (1e-3, 0.0), (1e-3, 0.01)
    ]  # fmt: skip
    assert [p for g in groups for p in g["params"]] != []


def test_each_layer_gets_lr_times_decay_to_its_distance_from_the_top(model):
    top = model.config.num_hidden_layers
    lr_of = _lr_of(parameter_groups(model, 1e-3, 1e-2, 0.01, layer_decay=0.5))
    for name, param in model.named_parameters():
        if not name.startswith("bert."):
            expected = 1e-2  # the head
        elif ".embeddings." in f".{name}":
            expected = 1e-3 * 0.5**top
        elif ".encoder.layer." in name:
            layer = int(name.split(".encoder.layer.")[1].split(".")[0]) + 1
            expected = 1e-3 * 0.5 ** (top - layer)
        else:  # the pooler sits on top
            expected = 1e-3
        assert math.isclose(lr_of[id(param)], expected), name
    assert len(lr_of) == sum(1 for _ in model.parameters())


@pytest.mark.parametrize("value", [0, -0.5, 1.5, float("nan")])
def test_bad_values_name_the_key(tiny_config, value):
    with pytest.raises(ConfigError, match=r"'optim.layer_decay' parameter"):
        load_config({**tiny_config, "optim": {**tiny_config["optim"], "layer_decay": value}})


def test_it_trains_and_changes_the_run(tiny_config, tmp_path):
    plain = train(load_config(tiny_config), tmp_path / "plain")
    decayed_config = {
        **tiny_config,
        "strategy": "llrd",
        "optim": {**tiny_config["optim"], "layer_decay": 0.5},
    }
    decayed = train(load_config(decayed_config), tmp_path / "decayed")
    assert decayed["config"]["optim"]["layer_decay"] == 0.5
    loss = [h["train_loss"] for h in decayed["history"]]
    assert all(math.isfinite(v) for v in loss)
    assert json.dumps(plain["history"]) != json.dumps(decayed["history"])


@pytest.mark.parametrize(
    ("strategy", "decay", "message"),
    [
        ("vanilla", 0.9, r"must be 1.0 for strategy 'vanilla'.*strategy 'llrd'"),
        ("reinit+sda", 0.9, r"must be 1.0 for strategy 'reinit\+sda'.*'reinit\+llrd\+sda'"),
        ("llrd", 1.0, r"must be below 1 for strategy 'llrd'"),
    ],
)
def test_the_name_says_whether_it_decays(tiny_config, strategy, decay, message):
    """A 'vanilla' row never trained with decayed rates; 'llrd' always did."""
    with pytest.raises(ConfigError, match=message):
        load_config({**tiny_config, "strategy": strategy,
                     "optim": {**tiny_config["optim"], "layer_decay": decay}})  # fmt: skip


def test_a_grid_decays_only_the_llrd_strategies(tiny_config):
    """``grid: {optim.layer_decay: [0.9]}`` sets the llrd strategies' decay and leaves
    vanilla's at 1.0: one vanilla, so a race can pair every configuration with it."""
    from sweeps.grid import expand_grid
    from sweeps.spec import load_spec

    spec = load_spec({"name": "x", "model": "tiny-bert",
                      "datasets": [{"name": "synthetic-sentiment", "train_size": 64}],
                      "strategies": ["vanilla", "llrd", "reinit+llrd"],
                      "race": {"start": 2, "step": 1, "max": 3},
                      "grid": {"optim.layer_decay": [0.9]}})  # fmt: skip
    decay = {t.strategy: t.config["optim"]["layer_decay"] for t in expand_grid(spec)}
    assert decay == {"vanilla": 1.0, "llrd": 0.9, "reinit+llrd": 0.9}
