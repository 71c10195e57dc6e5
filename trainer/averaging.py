"""Parameter averaging over time steps, on one flat parameter buffer.

Self-ensemble (SE) evaluates the mean of the student's parameters over training
steps; SDA's teacher *is* such a mean over the last K steps, and SDV's teacher needs
the last K parameter snapshots themselves. All three rest on two pieces:

* :func:`flatten_parameters_` re-points a model's parameters at views of one
  contiguous vector, so reading or writing "the model" is one kernel, not one per
  tensor (as ``torch.optim.swa_utils`` does per tensor group, but flatter).
* :class:`ParameterAverage` keeps the last K vectors in a ring buffer with their
  running sum, so each update is O(params), not O(K * params). The sum is recomputed
  exactly from the ring once every K updates, which bounds the floating-point drift
  of add/subtract to K steps at amortised O(params) cost (and makes K = 1 exact).
  ``K = "all"`` keeps a running mean instead, like ``AveragedModel``.

Buffers are never averaged: BERT's int64 ``position_ids`` must stay integers.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import nn

__all__ = ["ParameterAverage", "ShadowModel", "flatten_parameters_"]


@torch.no_grad()
def flatten_parameters_(model: nn.Module) -> torch.Tensor:
    """Make every parameter of ``model`` a view into one new contiguous vector.

    Call after the model is on its final device and dtype and before the optimizer
    is built. Returns the vector; writing to it writes the model.
    """
    params = list(model.parameters())
    first = params[0]
    if any(p.device != first.device or p.dtype != first.dtype for p in params):
        raise ValueError("flatten_parameters_ needs all parameters on one device and dtype")
    flat = torch.empty(sum(p.numel() for p in params), device=first.device, dtype=first.dtype)
    offset = 0
    for param in params:
        view = flat[offset : offset + param.numel()].view_as(param)
        view.copy_(param)
        param.data = view
        offset += param.numel()
    return flat


class ParameterAverage:
    """The mean of the last ``k`` parameter vectors pushed with :meth:`update`.

    Parameters
    ----------
    numel, device, dtype
        Shape and placement of the flat parameter vector.
    k
        Window size K >= 1, or ``"all"`` for the mean of every vector pushed so far.
    """

    def __init__(
        self, numel: int, k: int | Literal["all"], device: torch.device, dtype: torch.dtype
    ) -> None:
        if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(
                f"The 'k' parameter of ParameterAverage must be >= 1 or 'all'. Got {k!r}."
            )
        self.k = k
        self.count = 0
        if k == "all":
            self.mean = torch.zeros(numel, device=device, dtype=dtype)
        else:
            self.ring = torch.zeros(k, numel, device=device, dtype=dtype)
            self.total = torch.zeros(numel, device=device, dtype=dtype)

    @property
    def size(self) -> int:
        """How many vectors the mean currently covers."""
        return self.count if self.k == "all" else min(self.count, self.k)

    @torch.no_grad()
    def update(self, flat: torch.Tensor) -> None:
        """Push one parameter vector (a copy is kept; ``flat`` may change afterwards)."""
        self.count += 1
        if self.k == "all":
            if self.count == 1:
                self.mean.copy_(flat)
            else:
                self.mean.lerp_(flat, 1.0 / self.count)
            return
        slot = (self.count - 1) % self.k
        if self.count > self.k:
            self.total.sub_(self.ring[slot])
        self.ring[slot].copy_(flat)
        if self.count % self.k == 0:
            torch.sum(self.ring, dim=0, out=self.total)
        else:
            self.total.add_(flat)

    @torch.no_grad()
    def mean_into(self, out: torch.Tensor) -> None:
        """Write the current mean into ``out`` (e.g. a shadow model's flat buffer)."""
        if self.count == 0:
            raise RuntimeError("ParameterAverage.mean_into called before any update")
        if self.k == "all":
            out.copy_(self.mean)
        else:
            torch.div(self.total, self.size, out=out)

    def snapshots(self) -> list[torch.Tensor]:
        """The vectors in the window, oldest first (``k`` must be an integer)."""
        if self.k == "all":
            raise ValueError("snapshots() needs an integer window K, not 'all'")
        n = self.size
        start = self.count - n
        return [self.ring[(start + i) % self.k] for i in range(n)]

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"k": self.k, "count": self.count}
        if self.k == "all":
            state["mean"] = self.mean
        else:
            state["ring"] = self.ring
            state["total"] = self.total
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["k"] != self.k:
            raise ValueError(f"checkpoint has K={state['k']!r}, this run K={self.k!r}")
        self.count = int(state["count"])
        if self.k == "all":
            self.mean.copy_(state["mean"])
        else:
            self.ring.copy_(state["ring"])
            self.total.copy_(state["total"])


class ShadowModel:
    """A frozen, eval-mode copy of a model whose parameters live in one flat vector.

    The teacher of SDA/SDV and the averaged model of SE are shadows: loading a
    parameter vector into one is a single copy. Buffers are the student's, copied
    once (they do not change during fine-tuning).
    """

    def __init__(self, model: nn.Module) -> None:
        self.module = copy.deepcopy(model)
        self.module.eval()
        self.module.requires_grad_(False)
        self.flat = flatten_parameters_(self.module)

    @torch.no_grad()
    def load(self, flat: torch.Tensor) -> nn.Module:
        self.flat.copy_(flat)
        return self.module
