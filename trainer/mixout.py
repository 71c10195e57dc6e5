"""Mixout: the modifier ``mixout`` (Lee, Cho and Kang, ICLR 2020, *Mixout: Effective
Regularization to Finetune Large-scale Pretrained Language Models*).

Where dropout drops a linear layer's input features, mixout(p) swaps each of them, with
probability p, for the weights the run started from, and rescales so that the mixed
weights' expectation is the current weights W:

    W̃ = T + m ⊙ (W − T) / (1 − p),   m ~ Bernoulli(1 − p) per input feature (column),

with T the target: the layer's weights when training starts (the pretrained weights, or
NoisyTune's perturbed ones under ``noisytune+mixout``). E[W̃] = W; at evaluation no
mixing happens. In the pretrained encoder (``model.base_model``) every dropout is set to 0
and every ``nn.Linear`` mixes: mixout replaces dropout there, as the authors' Hugging Face
example does (``bloodwass/mixout``, ``example_huggingface.py``). The new classification
head keeps its dropout, as in the paper's GLUE runs: mixing a randomly initialised layer
toward its own initialisation holds it near noise (with p = 0.9, MiniLM's head then never
left the majority class in 120 steps on SST-2). ``mixout.p = 0`` is "off": the model keeps
its dropout and is the same run as without the modifier.

The mask is drawn from torch's global generator, like dropout's, so a checkpoint's RNG
state resumes it exactly. The gradient is that of the formula above (autograd: m/(1−p));
the authors' hand-written backward leaves out the 1/(1−p), a constant per layer that
Adam's normalisation all but cancels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from trainer.parts import StrategyPart

__all__ = ["MixoutLinear", "MixoutPart", "mixed_weight", "mixout"]


def mixed_weight(weight: torch.Tensor, target: torch.Tensor, p: float) -> torch.Tensor:
    """One draw of mixout(p) of ``weight`` toward ``target``: each input feature (column)
    keeps its current weights with probability 1 − p, rescaled so the mean is ``weight``."""
    keep = torch.empty(weight.shape[-1], dtype=weight.dtype, device=weight.device)
    keep.bernoulli_(1 - p)
    return target + (weight - target) * (keep / (1 - p))


class MixoutLinear(nn.Linear):
    """An ``nn.Linear`` that mixes its weight toward ``mixout_target`` while training.

    Made from an existing layer by :func:`to_mixout` (its class swapped, its parameters
    kept), so its parameters stay views into the model's flat buffer and its state dict
    keys stay ``weight`` and ``bias``; the target is a buffer the state dict leaves out
    (it is rebuilt from the starting weights whenever a run starts or resumes).
    """

    mixout_p: float
    mixout_target: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x, mixed_weight(self.weight, self.mixout_target, self.mixout_p), self.bias)


def to_mixout(linear: nn.Linear, p: float) -> None:
    """Make ``linear`` a :class:`MixoutLinear` toward its current weights, in place."""
    linear.__class__ = MixoutLinear
    linear.mixout_p = p
    linear.register_buffer("mixout_target", linear.weight.detach().clone(), persistent=False)


class MixoutPart(StrategyPart):
    """Replace dropout by mixout(p) in the encoder's linear layers, before training."""

    def __init__(self, p: float) -> None:
        self.p = p

    @torch.no_grad()
    def setup(self, model: nn.Module) -> None:
        if self.p == 0:
            return  # off: the model keeps its dropout
        for module in model.base_model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
            elif isinstance(module, nn.Linear):
                to_mixout(module, self.p)


def mixout(config: Any, device: torch.device) -> StrategyPart:
    return MixoutPart(config.mixout.p)
