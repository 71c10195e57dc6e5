"""Mixout (trainer/mixout.py): the mixed weight's expectation, no mixing at evaluation,
p = 0 as vanilla bit for bit, what it replaces, its anchor, and its settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from trainer import load_config, train
from trainer.errors import ConfigError
from trainer.loading import merge
from trainer.mixout import MixoutLinear, MixoutPart, mixed_weight
from trainer.parts import build_parts


def _tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32)  # fmt: skip
    return BertForSequenceClassification(config)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_the_mixed_weight_averages_to_the_current_weight(p):
    """E[W̃] = W: the mean of n draws is W within 5 standard errors of the mean, element
    by element (the draw's spread per element is |W − T|·√(p / (1 − p)))."""
    g = torch.Generator().manual_seed(0)
    weight, target = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    torch.manual_seed(1)
    n = 20_000
    mean = sum(mixed_weight(weight, target, p) for _ in range(n)) / n
    sem = (weight - target).abs() * (p / (1 - p)) ** 0.5 / n**0.5
    assert ((mean - weight).abs() <= 5 * sem + 1e-6).all()
    # and one draw is not the weight: each column is either W's (rescaled) or T's
    draw = mixed_weight(weight, target, p)
    kept = (draw - target).abs().sum(dim=0) > 0
    torch.testing.assert_close(
        draw[:, kept], target[:, kept] + (weight - target)[:, kept] / (1 - p)
    )
    torch.testing.assert_close(draw[:, ~kept], target[:, ~kept])


def test_mixout_replaces_dropout_mixes_in_training_only_and_keeps_the_state_dict():
    model = _tiny_bert()
    keys = list(model.state_dict())
    MixoutPart(0.5).setup(model)
    assert list(model.state_dict()) == keys  # checkpoints and saved weights as before
    linears = [m for m in model.bert.modules() if isinstance(m, nn.Linear)]
    assert linears and all(isinstance(m, MixoutLinear) for m in linears)
    assert all(m.p == 0 for m in model.bert.modules() if isinstance(m, nn.Dropout))
    # the new head is not pretrained: it keeps its plain layer and its dropout
    assert type(model.classifier) is nn.Linear and model.dropout.p == 0.1
    ids = torch.randint(0, 50, (3, 7), generator=torch.Generator().manual_seed(2))
    plain = _tiny_bert()
    model.eval(), plain.eval()
    torch.testing.assert_close(model(input_ids=ids).logits, plain(input_ids=ids).logits,
                               rtol=0, atol=0)  # fmt: skip
    model.train()
    with torch.no_grad():
        for m in linears:  # a step away from the start, so mixing changes the output
            m.weight.add_(0.5)
    torch.manual_seed(3)
    a = model(input_ids=ids).logits
    torch.manual_seed(4)
    b = model(input_ids=ids).logits
    assert not torch.equal(a, b)  # a fresh mask each forward pass, from torch's generator


def test_p_zero_is_off_and_trains_like_vanilla_bit_for_bit(tiny_config, tmp_path):
    vanilla = train(load_config(tiny_config), tmp_path / "vanilla")
    off = load_config(merge(tiny_config, {"strategy": "mixout", "mixout": {"p": 0.0}}))
    mixed_off = train(off, tmp_path / "off")
    assert mixed_off["history"] == vanilla["history"]
    with (
        np.load(tmp_path / "vanilla" / "logits.npz") as a,
        np.load(tmp_path / "off" / "logits.npz") as b,
    ):
        np.testing.assert_array_equal(a["dev_logits"], b["dev_logits"])
    on = train(load_config(merge(tiny_config, {"strategy": "mixout"})), tmp_path / "on")
    assert on["history"] != vanilla["history"] and on["config"]["mixout"] == {"p": 0.9}


def test_the_target_is_the_model_training_starts_from(tiny_config):
    """noisytune+mixout mixes toward NoisyTune's perturbed weights (docs/decisions.md,
    "What RecAdam and Mixout anchor to")."""
    config = load_config(merge(tiny_config, {"strategy": "noisytune+mixout"}))
    model, clean = _tiny_bert(), _tiny_bert()
    for part in build_parts(config, torch.device("cpu")).values():
        part.setup(model)
    changed = 0
    for module, original in zip(model.modules(), clean.modules(), strict=True):
        if isinstance(module, MixoutLinear):
            torch.testing.assert_close(module.mixout_target, module.weight, rtol=0, atol=0)
            changed += not torch.equal(module.mixout_target, original.weight)
    assert changed > 0


@pytest.mark.parametrize("p", [1.0, -0.1, True, float("nan"), "high"])
def test_bad_p_is_one_line_naming_the_key(tiny_config, p):
    with pytest.raises(ConfigError, match=r"'mixout\.p'") as err:
        load_config(merge(tiny_config, {"strategy": "mixout", "mixout": {"p": p}}))
    assert "\n" not in str(err.value)
