"""The strategies of Xu et al. (2020) as small parts of the one training loop.

A time step is one optimizer step; θ_t are the parameters step t starts from.

* :class:`AveragedTeacher` (SDA): the teacher's parameters are the mean of
  θ_{t-K} … θ_{t-1} (K = "all": θ_0 … θ_{t-1}); its logits are one forward pass.
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

__all__ = ["AveragedTeacher", "SelfEnsemble", "VotingTeacher"]

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
