"""Re-initialisation of the top layers (the ``reinit`` modifier, Zhang et al. 2021)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from trainer import train
from trainer.errors import ConfigError
from trainer.loading import load_config
from trainer.models import check_model_resolvable, load_classifier
from trainer.noisytune import perturb
from trainer.reinit import reinit_top_layers

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "train-tiny.yaml"


@pytest.fixture()
def load(cache_dir):
    path = check_model_resolvable("tiny-bert", cache_dir)
    return lambda: load_classifier(path, 2, 0)


def _params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _is_top(name: str, top: int) -> bool:
    return f".encoder.layer.{top}." in name or ".pooler." in name


def test_exactly_the_top_layers_and_pooler_are_redrawn_with_the_models_initializer(load):
    model = load()
    before = _params(model)
    top = model.config.num_hidden_layers - 1
    changed = set(reinit_top_layers(model, 1, seed=3))
    after = _params(model)
    assert changed == {n for n in before if _is_top(n, top)}
    for name in before:
        same = torch.equal(before[name], after[name])
        if name not in changed:
            assert same, name
        elif name.endswith("LayerNorm.weight"):
            assert torch.all(after[name] == 1), name
        elif name.endswith("bias"):
            assert torch.all(after[name] == 0), name
        else:  # a weight matrix, drawn from N(0, initializer_range)
            assert not same, name
            assert after[name].std().item() == pytest.approx(model.config.initializer_range, 0.2)


def test_a_model_shorter_than_its_config_is_refused_not_half_redrawn(load):
    model = load()
    layers = len(model.base_model.encoder.layer)
    before = _params(model)
    with pytest.raises(RuntimeError, match=f"has {layers} encoder layers"):
        reinit_top_layers(model, layers + 1, seed=0)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())


def test_seeded_and_leaves_the_global_stream_alone(load):
    a, b, c = load(), load(), load()
    torch.manual_seed(0)
    reinit_top_layers(a, 1, seed=1)
    after_a = torch.rand(3)
    torch.manual_seed(0)
    reinit_top_layers(b, 1, seed=1)
    reinit_top_layers(c, 1, seed=2)
    assert torch.equal(after_a, torch.rand(3))  # dropout's stream untouched
    pa, pb, pc = _params(a), _params(b), _params(c)
    assert all(torch.equal(pa[n], pb[n]) for n in pa)
    assert any(not torch.equal(pa[n], pc[n]) for n in pa)


def test_noise_lands_only_on_the_kept_layers(tiny_config, tmp_path, load):
    """noisytune+reinit: NoisyTune first, then the top layers are re-drawn, so the top
    layers are reinit's and the rest NoisyTune's."""
    from trainer.parts import build_parts

    config = load_config({**tiny_config, "strategy": "noisytune+reinit"})
    both = load()
    for part in build_parts(config, torch.device("cpu")).values():
        part.setup(both)
    only_reinit, only_noise = load(), load()
    reinit_top_layers(only_reinit, 1, seed=0)
    perturb(only_noise, 0.15, generator=torch.Generator().manual_seed(0x5EED))
    top = both.config.num_hidden_layers - 1
    reference = {
        n: (only_reinit if _is_top(n, top) else only_noise).get_parameter(n) for n, _ in
        both.named_parameters()
    }  # fmt: skip
    assert all(torch.equal(p, reference[n]) for n, p in both.named_parameters())


@pytest.mark.parametrize(
    ("strategy", "without"), [("reinit", "vanilla"), ("noisytune+reinit+sda", "noisytune+sda")]
)
def test_the_example_trains_with_it(strategy, without, tmp_path, cache_dir):
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw.update(strategy=strategy, cache_dir=str(cache_dir))
    raw["optim"].update(max_steps=6, epochs=1)
    raw["data"]["train_size"] = 96
    result = train(load_config(raw), tmp_path / "run")
    assert result["status"] == "finished"
    assert result["steps"] == 6
    assert result["config"]["reinit"] == {"layers": 1}
    plain = train(load_config({**raw, "strategy": without}), tmp_path / "plain")
    losses = [[h["train_loss"] for h in r["history"]] for r in (result, plain)]
    assert losses[0] != losses[1]  # the re-drawn layers changed the run


@pytest.mark.parametrize("value", [0, -1, 1.5, "two", None])
def test_bad_layer_counts_name_the_key(tiny_config, value):
    with pytest.raises(ConfigError, match=r"'reinit.layers' parameter"):
        load_config({**tiny_config, "strategy": "reinit", "reinit": {"layers": value}})


def test_more_layers_than_the_model_has_is_a_config_error(tiny_config, tmp_path):
    config = load_config({**tiny_config, "strategy": "reinit", "reinit": {"layers": 9}})
    with pytest.raises(ConfigError, match=r"'reinit.layers' parameter must be at most the 2 "
                       r"encoder layers of model 'tiny-bert'\. Got 9 instead"):  # fmt: skip
        train(config, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint").exists()  # refused before any training


def test_an_unknown_order_of_modifiers_is_refused(tiny_config):
    with pytest.raises(ConfigError, match="strategy"):
        load_config({**tiny_config, "strategy": "reinit+noisytune+sda"})
