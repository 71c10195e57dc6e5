"""Re-initialisation: the modifier ``reinit`` (Zhang et al., ICLR 2021, *Revisiting
Few-sample BERT Fine-tuning*).

The top encoder layers of a pretrained BERT are the most specific to its pre-training
task and transfer worst; re-initialising the top ``reinit.layers`` layers and the pooler
before fine-tuning made small-data runs markedly steadier in that paper. They are
re-drawn with the model's own initializer (``_init_weights``: N(0, initializer_range)
weights, zero biases, unit LayerNorms), from a generator seeded by the trial's seed and
separate from the head's and the dropout's streams.

With NoisyTune (``noisytune+reinit+…``) the noise is added first and the top layers are
then re-drawn, so the noise lands only on the pretrained weights that are kept: noise
scaled to the spread of a fresh random matrix would be noise on noise.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.config import TrainConfig
from trainer.errors import ConfigError
from trainer.messages import parameter_message
from trainer.parts import StrategyPart

__all__ = ["ReinitPart", "reinit_top_layers"]

_REINIT_SEED_OFFSET = 0x1217  # its own stream: not the head's, the noise's or dropout's


def _encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's stack of layers (``encoder.layer`` in the BERT family)."""
    for name, module in model.base_model.named_modules():
        if isinstance(module, nn.ModuleList) and name.split(".")[-1] in ("layer", "layers"):
            return module
    raise ConfigError(
        parameter_message(
            "strategy",
            f"must not re-initialise layers of a {type(model).__name__}: reinit needs an "
            "encoder with a stack of layers, and it has none it recognises",
            "reinit",
        )
    )


@torch.no_grad()
def reinit_top_layers(model: nn.Module, layers: int, seed: int) -> list[str]:
    """Re-draw the top ``layers`` encoder layers and the pooler of ``model`` in place with
    its own initializer; returns the names of the re-drawn parameters."""
    stack = _encoder_layers(model)
    if layers > len(stack):  # the catalog checked `layers` against the model's config
        raise RuntimeError(
            f"{type(model).__name__} has {len(stack)} encoder layers where its config "
            f"says at least {layers}: re-initialising the top {layers} would miss"
        )
    modules = list(stack[len(stack) - layers :])
    pooler = getattr(model.base_model, "pooler", None)
    if pooler is not None:
        modules.append(pooler)
    chosen = {id(p) for m in modules for p in m.parameters()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + _REINIT_SEED_OFFSET)
        for top in modules:
            for tensor in [*top.parameters(), *top.buffers()]:
                # transformers >= 5 skips tensors it has marked as loaded
                if hasattr(tensor, "_is_hf_initialized"):
                    del tensor._is_hf_initialized
            for module in top.modules():
                model._init_weights(module)
    return [name for name, p in model.named_parameters() if id(p) in chosen]


class ReinitPart(StrategyPart):
    """Re-initialise the top layers once, before the model is flattened and trained."""

    def __init__(self, config: TrainConfig) -> None:
        self.layers = config.reinit.layers
        self.seed = config.seed

    def setup(self, model: nn.Module) -> None:
        reinit_top_layers(model, self.layers, self.seed)


def reinit(config: TrainConfig, device: torch.device) -> StrategyPart:
    return ReinitPart(config)
