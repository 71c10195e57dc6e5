"""The strategies of Xu et al. (2020) as small parts of the one training loop.

A time step is one optimizer step; θ_t are the parameters step t starts from.

* :class:`AveragedTeacher` (SDA): the teacher's parameters are the mean of
  θ_{t-K} … θ_{t-1} (K = "all": θ_0 … θ_{t-1}); its logits are one forward pass.
* :class:`EmaTeacher` (SDA with ``distill.average: ema``): the teacher's parameters are an
  exponential moving average of θ_0 … θ_{t-1}.
* :class:`VotingTeacher` (SDV): the teacher's logits are the mean of the logits of the
  K snapshot models θ_{t-K} … θ_{t-1}: K forward passes per step.
* :class:`SelfEnsemble` (SE): the mean of the parameters after the last K steps
  (default: all), evaluated beside the student; it never touches the loss.

The loop calls ``teacher.record(flat)`` with θ_t after the backward pass and before
the optimizer step, so at step t the teacher only knows strictly earlier steps (at
step 0 it knows none, and the loss is plain cross-entropy). With K = 1 both teachers
are the single model θ_{t-1}, so SDA and SDV give identical runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from trainer.averaging import ParameterAverage, ShadowModel

__all__ = ["AveragedTeacher", "EmaTeacher", "SelfEnsemble", "VotingTeacher"]

TeacherK = int | Literal["all"]


class _Averaged:
    """A :class:`ParameterAverage` and a shadow model to evaluate it with."""

    def __init__(self, model: nn.Module, flat: torch.Tensor, k: TeacherK) -> None:
        self.shadow = ShadowModel(model)
        # the mean lives in the shadow's own parameters: the shadow *is* the average
        self.average = ParameterAverage(
            flat.numel(), k, flat.device, flat.dtype, out=self.shadow.flat
        )

    def record(self, flat: torch.Tensor) -> None:
        self.average.update(flat)

    def averaged_model(self) -> nn.Module | None:
        """The model holding the current mean, for evaluation (None before any step)."""
        if self.average.count == 0:
            return None
        self.average.mean_into(self.shadow.flat)
        return self.shadow.module

    def state_dict(self) -> dict[str, Any]:
        return self.average.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average.load_state_dict(state)


class AveragedTeacher(_Averaged):
    """SDA: distil from the model whose parameters average the last K steps."""

    @torch.no_grad()
    def logits(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        model = self.averaged_model()
        return None if model is None else model(**inputs).logits.float()


class EmaTeacher:
    """SDA with ``distill.average: ema``: the teacher's parameters are an exponential
    moving average of θ_0 … θ_{t-1}, the teacher most public re-implementations of Xu
    et al. use. θ̄ starts as θ_0; then θ̄ ← d·θ̄ + (1 − d)·θ with d = min(decay,
    (1 + n) / (10 + n)) after n recorded steps: the warm-up of TensorFlow's
    ``ExponentialMovingAverage``, so the first steps are not dominated by θ_0. The
    average is kept in float32 in the shadow model's own parameters."""

    def __init__(self, model: nn.Module, flat: torch.Tensor, decay: float) -> None:
        self.shadow = ShadowModel(model)
        self.decay = decay
        self.count = 0

    @torch.no_grad()
    def record(self, flat: torch.Tensor) -> None:
        if self.count == 0:
            self.shadow.flat.copy_(flat)
        else:
            d = min(self.decay, (1 + self.count) / (10 + self.count))
            self.shadow.flat.mul_(d).add_(flat, alpha=1 - d)
        self.count += 1

    def averaged_model(self) -> nn.Module | None:
        """The model holding the current average (None before any step)."""
        return None if self.count == 0 else self.shadow.module

    @torch.no_grad()
    def logits(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        model = self.averaged_model()
        return None if model is None else model(**inputs).logits.float()

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.shadow.flat.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.shadow.flat.copy_(state["average"])
        self.count = int(state["count"])


class VotingTeacher:
    """SDV: distil from the mean logits of the last K parameter snapshots."""

    def __init__(self, model: nn.Module, flat: torch.Tensor, k: int) -> None:
        if k == "all":
            raise ValueError("SDV needs an integer K: it runs one forward pass per snapshot")
        self.shadow = ShadowModel(model)
        self.snapshots = ParameterAverage(flat.numel(), k, flat.device, flat.dtype, keep_mean=False)

    def record(self, flat: torch.Tensor) -> None:
        self.snapshots.update(flat)

    @torch.no_grad()
    def logits(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        snapshots = self.snapshots.snapshots()
        if not snapshots:
            return None
        total = None
        for snapshot in snapshots:
            out = self.shadow.load(snapshot)(**inputs).logits.float()
            total = out if total is None else total.add_(out)
        return total.div_(len(snapshots))

    def averaged_model(self) -> None:
        """SDV keeps snapshots, not an averaged model to evaluate."""
        return None

    def state_dict(self) -> dict[str, Any]:
        return self.snapshots.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.snapshots.load_state_dict(state)


class SelfEnsemble(_Averaged):
    """SE: the mean of the parameters after each of the last K steps (recorded post-step)."""
