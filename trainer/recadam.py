"""RecAdam: the modifier ``recadam`` (Chen et al., EMNLP 2020, *Recall and Learn:
Fine-tuning Deep Pretrained Language Models with Less Forgetting*).

Fine-tuning with RecAdam optimizes λ(t)·Loss_task + (1 − λ(t))·γ/2·‖θ − θ*‖², with the
weights the run starts from θ* as the anchor and λ(t) annealed from 0 to w (1 unless
``recadam.weight`` says; the pull is then (w − λ(t))·γ), as the
authors' optimizer does it (``Sanyuan-Chen/RecAdam``, ``RecAdam.py``): not as a loss term
but inside the update, like AdamW's decoupled weight decay. For each encoder parameter,
at optimizer step t (1-based):

    θ ← θ_t − λ(t)·s·m̂/(√v̂ + ε)           Adam's step on the task gradient, scaled by λ(t)
    θ ← θ − lr·(w − λ(t))·γ·(θ − θ*)      the pull toward the anchor
    θ ← θ − lr·wd·θ                        decoupled weight decay, last

with λ(t) = w / (1 + exp(−k·(t − t0))) (``sigmoid``), w·min(1, t / t0) (``linear``) or w
(``constant``: no pull; with w = 1, exactly AdamW). Adam's moments see the task gradient alone. The
new head is not anchored (the authors give it ``anneal_w = 0``): it trains by plain AdamW.
The authors' defaults: sigmoid, k = 0.5, t0 = 250, γ = 5000, w = 1 (``recadam.*`` in
docs/sweeps.md). With k = 0.5 the switch from recall to learning takes about ten steps
around t0: for t ≪ t0 the encoder is held at θ* while the head trains.

The loop's optimizer stays torch's fused AdamW (the same optimizer state and the same
numbers as ``vanilla`` where λ(t) ≡ 1); this part then rewrites the encoder's step from
the step AdamW took: d = θ_AdamW − θ_t·(1 − lr·wd) is Adam's own step, recovered up to
rounding (bit-for-bit where nothing is rewritten: ``constant`` with w = 1), and the three
lines above are applied to it. Torch's Adam divides by √v̂ + ε where the authors' (the
Hugging Face AdamW of 2020) divide by √v + ε and fold √(1 − β₂ᵗ) into the step size: the
two differ only in how much ε weighs over the first steps. The anchor is taken when training starts,
after the modifiers before it in the name: ``noisytune+recadam`` anchors to the perturbed
weights (docs/decisions.md, "What RecAdam and Mixout anchor to").
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from trainer.parts import StrategyPart

__all__ = ["RecAdamPart", "anneal", "recadam"]


def anneal(function: str, step: int, k: float, t0: int, weight: float) -> float:
    """λ(t) of the authors' ``anneal_function``: how much of Adam's task step is taken at
    optimizer step ``step`` (1-based); the pull toward the anchor is ``weight − λ(t)``."""
    if function == "sigmoid":
        x = k * (step - t0)
        # 1 / (1 + e^(−x)) without overflow for very negative x
        share = 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))
        return share * weight
    if function == "linear":
        return min(1.0, step / t0) * weight if t0 > 0 else weight
    return weight  # constant


class RecAdamPart(StrategyPart):
    """Rewrites the encoder's AdamW step into RecAdam's, from the anchor it takes at the
    start of training."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        # per optimizer group (by index: loading a checkpoint replaces the group dicts),
        # its encoder parameters and their anchors
        self.groups: list[tuple[int, list[torch.Tensor], list[torch.Tensor]]] = []
        self.before: list[list[torch.Tensor]] = []

    def on_fit_start(
        self, model: nn.Module, flat: torch.Tensor, optimizer: torch.optim.Optimizer
    ) -> None:
        self.optimizer = optimizer
        encoder = {id(p) for p in model.base_model.parameters()}
        for i, group in enumerate(optimizer.param_groups):
            params = [p for p in group["params"] if id(p) in encoder]
            if params:
                self.groups.append((i, params, [p.detach().clone() for p in params]))

    def _lambda(self) -> float:
        s = self.settings
        return anneal(s.anneal, self.step, s.k, s.t0, s.weight)

    def _pulls(self) -> bool:
        """Whether this step differs from AdamW's: with the constant anneal at w = 1,
        RecAdam is AdamW and touches nothing."""
        return self.settings.anneal != "constant" or self.settings.weight != 1

    @torch.no_grad()
    def on_before_optimizer_step(self, flat: torch.Tensor) -> None:
        if self._pulls():
            self.before = [[p.detach().clone() for p in params] for _, params, _ in self.groups]

    @torch.no_grad()
    def on_train_batch_end(self, flat: torch.Tensor) -> None:
        self.step += 1
        if not self._pulls():
            return
        lam, s = self._lambda(), self.settings
        for (i, params, anchors), before in zip(self.groups, self.before, strict=True):
            group = self.optimizer.param_groups[i]  # this step's learning rate
            lr, decay = group["lr"], group["weight_decay"]
            kept = 1 - lr * decay
            # Adam's step as AdamW took it: its update less its decay of θ_t
            step = torch._foreach_sub(params, torch._foreach_mul(before, kept))
            torch._foreach_mul_(step, lam)
            torch._foreach_add_(before, step)  # θ_t + λ(t)·step
            pull = torch._foreach_sub(before, anchors)
            torch._foreach_add_(before, pull, alpha=-lr * (s.weight - lam) * s.gamma)
            if decay:
                torch._foreach_mul_(before, kept)
            torch._foreach_copy_(params, before)

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = state["step"]

    def result_fields(self) -> dict[str, Any]:
        return {"recadam_lambda_end": self._lambda()}


def recadam(config: Any, device: torch.device) -> StrategyPart:
    return RecAdamPart(config.recadam)
