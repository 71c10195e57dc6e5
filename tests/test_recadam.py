"""RecAdam (trainer/recadam.py): its step against a brute-force reference of the authors'
update, λ(t) ≡ 1 as plain AdamW bit for bit, its anchor, and its settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from trainer import load_config, train
from trainer.averaging import flatten_parameters_
from trainer.errors import ConfigError
from trainer.loading import merge
from trainer.models import parameter_groups
from trainer.parts import build_parts
from trainer.recadam import RecAdamPart, anneal

# lr·γ at most 1 (trainer.strategies refuses more): tiny_config trains at lr 2e-3
RECADAM = {"gamma": 100.0, "k": 1.0, "t0": 6}


def _tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=32)  # fmt: skip
    return BertForSequenceClassification(config).eval()  # no dropout: the same gradients


def _loss(model: torch.nn.Module, step: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(100 + step)
    ids = torch.randint(0, 50, (4, 7), generator=g)
    labels = torch.randint(0, 2, (4,), generator=g)
    return torch.nn.functional.cross_entropy(model(input_ids=ids).logits, labels)


def _reference(model, steps, settings, lr, head_lr, wd, betas=(0.9, 0.999), eps=1e-8):
    """The authors' update (RecAdam.py), one parameter at a time, with torch's AdamW
    denominator (eps after the bias correction): the one part of it that is Adam's, not
    RecAdam's. The head (not the encoder) trains by plain AdamW (the authors' anneal_w 0)."""
    encoder = {id(p) for p in model.base_model.parameters()}
    names = dict(model.named_parameters())
    anchor = {n: p.detach().clone() for n, p in names.items()}
    state = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in names.items()}
    for t in range(1, steps + 1):
        model.zero_grad()
        _loss(model, t).backward()
        w = settings["weight"]
        lam = anneal(settings["anneal"], t, settings["k"], settings["t0"], w)
        with torch.no_grad():
            for name, p in names.items():
                m, v = state[name]
                m.mul_(betas[0]).add_(p.grad, alpha=1 - betas[0])
                v.mul_(betas[1]).addcmul_(p.grad, p.grad, value=1 - betas[1])
                rate = lr if id(p) in encoder else head_lr
                decay = wd if p.ndim >= 2 else 0.0
                denom = (v / (1 - betas[1] ** t)).sqrt() + eps
                adam = rate * (m / (1 - betas[0] ** t)) / denom
                if id(p) in encoder:
                    p.sub_(lam * adam)
                    p.sub_(rate * (w - lam) * settings["gamma"] * (p - anchor[name]))
                    p.mul_(1 - rate * decay)
                else:
                    p.mul_(1 - rate * decay).sub_(adam)


@pytest.mark.parametrize(
    "settings",
    [{"gamma": 200.0, "k": 1.0, "t0": 2, "anneal": "sigmoid", "weight": 1.0},
     {"gamma": 200.0, "k": 1.0, "t0": 2, "anneal": "linear", "weight": 0.8},
     {"gamma": 200.0, "k": 1.0, "t0": 2, "anneal": "constant", "weight": 0.5}],
)  # fmt: skip
def test_the_step_matches_the_authors_update_brute_force(settings):
    lr, head_lr, wd = 1e-3, 2e-3, 0.01
    ours, theirs = _tiny_bert(), _tiny_bert()
    flat = flatten_parameters_(ours)
    optimizer = torch.optim.AdamW(parameter_groups(ours, lr, head_lr, wd), fused=True)
    part = RecAdamPart(type("S", (), settings)())
    part.on_fit_start(ours, flat, optimizer)
    for t in range(1, 4):
        optimizer.zero_grad()
        _loss(ours, t).backward()
        part.on_before_optimizer_step(flat)
        optimizer.step()
        part.on_train_batch_end(flat)
    _reference(theirs, 3, settings, lr, head_lr, wd)
    moved = 0.0
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(a.detach(), b.detach(), rtol=1e-5, atol=2e-7, err_msg=name)
        moved = max(moved, (b.detach() - _tiny_bert().state_dict()[name]).abs().max().item())
    assert moved > 1e-4  # three real steps, not a model that stayed put


def test_anneal_functions_are_the_authors():
    assert anneal("sigmoid", 250, 0.5, 250, 1.0) == 0.5
    assert anneal("sigmoid", 1, 0.5, 250, 1.0) == pytest.approx(1 / (1 + math.exp(124.5)))
    assert anneal("sigmoid", 10**6, 10.0, 0, 1.0) == 1.0  # no overflow either way
    assert anneal("sigmoid", 0, 10.0, 10**6, 1.0) == 0.0
    assert anneal("linear", 50, 0.5, 200, 1.0) == 0.25
    assert anneal("linear", 500, 0.5, 200, 1.0) == 1.0
    assert anneal("constant", 1, 0.5, 250, 1.0) == 1.0
    assert anneal("sigmoid", 250, 0.5, 250, 0.8) == 0.4  # the authors' anneal_w scales it


def _run(config: dict, out, **overrides):
    result = train(load_config(merge(config, overrides)), out)
    with np.load(out / "logits.npz") as logits:
        return result, dict(logits)


def test_constant_anneal_is_adamw_bit_for_bit(tiny_config, tmp_path):
    """λ(t) ≡ 1: no pull, the task step whole: exactly vanilla's run."""
    vanilla, v_logits = _run(tiny_config, tmp_path / "vanilla")
    constant = {**RECADAM, "anneal": "constant"}
    rec, r_logits = _run(tiny_config, tmp_path / "rec", strategy="recadam", recadam=constant)
    assert [h["dev"] for h in rec["history"]] == [h["dev"] for h in vanilla["history"]]
    assert [h["train_loss"] for h in rec["history"]] == [
        h["train_loss"] for h in vanilla["history"]
    ]
    np.testing.assert_array_equal(v_logits["dev_logits"], r_logits["dev_logits"])
    # annealed, it trains another model; its result says where λ(t) ended
    annealed, a_logits = _run(tiny_config, tmp_path / "annealed", strategy="recadam",
                              recadam=RECADAM)  # fmt: skip
    assert not np.array_equal(v_logits["dev_logits"], a_logits["dev_logits"])
    assert annealed["recadam_lambda_end"] == pytest.approx(1 / (1 + math.exp(-1.0 * (12 - 6))))
    assert annealed["config"]["recadam"] == {**RECADAM, "anneal": "sigmoid", "weight": 1.0}
    assert vanilla["config"]["recadam"] is None


def test_the_anchor_is_the_model_training_starts_from(tiny_config):
    """noisytune+recadam anchors to NoisyTune's perturbed weights (docs/decisions.md,
    "What RecAdam and Mixout anchor to"); the new head is not anchored."""
    config = load_config(merge(tiny_config, {"strategy": "noisytune+recadam", "recadam": RECADAM}))
    model = _tiny_bert()
    clean = {n: p.detach().clone() for n, p in model.base_model.named_parameters()}
    parts = build_parts(config, torch.device("cpu"))
    for part in parts.values():
        part.setup(model)
    flat = flatten_parameters_(model)
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3, 1e-3, 0.01))
    parts["recadam"].on_fit_start(model, flat, optimizer)
    anchors = [a for _, _, group in parts["recadam"].groups for a in group]
    encoder = list(model.base_model.parameters())
    assert len(anchors) == len(encoder) < len(list(model.parameters()))
    perturbed = {n: p.detach() for n, p in model.base_model.named_parameters()}
    by_id = {id(p): a for (_, params, group) in parts["recadam"].groups
             for p, a in zip(params, group, strict=True)}  # fmt: skip
    for name, p in model.base_model.named_parameters():
        torch.testing.assert_close(by_id[id(p)], perturbed[name], rtol=0, atol=0)
    assert any(not torch.equal(clean[n], perturbed[n]) for n in clean)


@pytest.mark.parametrize(
    ("settings", "key"),
    [({"gamma": -1.0}, "'recadam.gamma'"), ({"k": -0.5}, "'recadam.k'"),
     ({"anneal": "cosine"}, "'recadam.anneal'"), ({"t0": -1}, "'recadam.t0'"),
     ({"gamma": True}, "'recadam.gamma'"), ({"gamma": 5000.0}, "at most 1 / optim.lr"),
     ({"weight": 0.0}, "'recadam.weight'"), ({"weight": 1.5}, "'recadam.weight'")],
)  # fmt: skip
def test_bad_settings_are_one_line_naming_the_key(tiny_config, settings, key):
    with pytest.raises(ConfigError, match=key) as err:
        load_config(merge(tiny_config, {"strategy": "recadam", "recadam": settings}))
    assert "\n" not in str(err.value)
