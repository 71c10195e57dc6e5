"""The strategy registry: one place for names, knobs, K rules and costs."""

from __future__ import annotations

import pytest

from trainer import strategies
from trainer.errors import ConfigError
from trainer.loading import load_config

# What the names meant before the registry (trainer/config.py, sweeps/spec.py), plus the
# EMA teacher's keys for SDA, the teachers' precision and NoisyTune's ablation keys (read
# by those parts, so a grid over them multiplies only those strategies): the registry must
# say the same, name by name.
NOISE = ("noise.lambda", "noise.distribution", "noise.scope")
SDA = ("distill.k", "distill.lambda", "distill.average", "distill.ema_decay",
       "distill.teacher_precision")  # fmt: skip
SDV = ("distill.k", "distill.lambda", "distill.teacher_precision")
BEFORE = {
    "vanilla": ("vanilla", False, ()),
    "se": ("se", False, ("distill.k",)),
    "sda": ("sda", False, SDA),
    "sdv": ("sdv", False, SDV),
    "noisytune": ("vanilla", True, NOISE),
    "noisytune+se": ("se", True, (*NOISE, "distill.k")),
    "noisytune+sda": ("sda", True, (*NOISE, *SDA)),
    "noisytune+sdv": ("sdv", True, (*NOISE, *SDV)),
}


def test_names_and_what_they_read():
    # the names before the registry keep their order, then come the re-init and
    # layer-wise-decay combinations, single modifiers first
    assert strategies.STRATEGIES[: len(BEFORE)] == tuple(BEFORE)
    assert strategies.STRATEGIES[len(BEFORE) : len(BEFORE) + 8] == (
        "reinit", "reinit+se", "reinit+sda", "reinit+sdv",
        "llrd", "llrd+se", "llrd+sda", "llrd+sdv",
    )  # fmt: skip
    assert "noisytune+reinit+sdv" in strategies.STRATEGIES
    assert len(strategies.STRATEGIES) == 4 * 2 ** len(strategies.MODIFIERS)  # every set × base
    assert strategies.knobs("noisytune+reinit+sdv") == (*NOISE, "reinit.layers", *SDV)
    assert strategies.knobs("reinit+llrd+sda")[:2] == ("reinit.layers", "optim.layer_decay")
    assert not strategies.knob_matters("optim.layer_decay", "vanilla")
    for name, (base, noise, knobs) in BEFORE.items():
        assert strategies.base_strategy(name) == base
        assert strategies.uses_noise(name) is noise
        assert strategies.knobs(name) == knobs
        for knob in ("noise.lambda", "distill.k", "distill.lambda"):
            assert strategies.knob_matters(knob, name) is (knob in knobs)
        assert strategies.knob_matters("optim.lr", name)  # every strategy reads it


@pytest.mark.parametrize(
    ("strategy", "k"),
    [("vanilla", None), ("noisytune", None), ("se", "all"), ("noisytune+se", "all"),
     ("sda", 1), ("sdv", 1), ("noisytune+sdv", 1)],
)  # fmt: skip
def test_default_k_reaches_the_config(tiny_config, strategy, k):
    config = load_config({**tiny_config, "strategy": strategy})
    assert config.teacher_k == k == strategies.default_k(strategy)


def test_k_all_is_refused_where_the_registry_says_so(tiny_config):
    for strategy in strategies.STRATEGIES:
        if strategies.default_k(strategy) is None:
            continue
        raw = {**tiny_config, "strategy": strategy, "distill": {"k": "all"}}
        if "llrd" in strategy:  # the llrd modifier needs a decay below 1
            raw["optim"] = {**tiny_config["optim"], "layer_decay": 0.9}
        if "recadam" in strategy:  # lr·γ at most 1 at tiny_config's lr
            raw["recadam"] = {"gamma": 100.0}
        if strategies.allows_k_all(strategy):
            assert load_config(raw).teacher_k == "all"
        else:
            with pytest.raises(ConfigError, match=r"'distill.k' parameter must be an int >= 1"):
                load_config(raw)


def test_only_the_self_ensembles_student_is_the_plain_run():
    plain = [s for s in strategies.STRATEGIES if strategies.student_is_plain(s)]
    assert plain == [s for s in strategies.STRATEGIES if s == "se" or s.endswith("+se")]
    assert len(plain) == 2 ** len(strategies.MODIFIERS)  # se after every set of modifiers
    assert plain[:4] == ["se", "noisytune+se", "reinit+se", "llrd+se"]
