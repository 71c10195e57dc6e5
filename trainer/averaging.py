"""Parameter averaging over time steps, on one flat parameter buffer.

Self-ensemble (SE) evaluates the mean of the student's parameters over training
steps; SDA's teacher *is* such a mean over the last K steps, and SDV's teacher needs
the last K parameter snapshots themselves. All three rest on two pieces:

* :func:`flatten_parameters_` re-points a model's parameters at views of one
  contiguous vector, so reading or writing "the model" is one kernel, not one per
  tensor (as ``torch.optim.swa_utils`` does per tensor group, but flatter).
* :class:`ParameterAverage` keeps the last K vectors in a ring buffer and their
  running mean, so each update is three passes over the parameters, not O(K) of them:
  the newest vector replaces the oldest in the mean. The mean is recomputed exactly
  from the ring every 64 updates, which bounds the drift of add/subtract at almost no
  cost. K = 1 keeps just a copy (exact), ``K = "all"`` a running mean (``lerp``), as
  ``AveragedModel``. The mean can live in the teacher's own flat buffer, so the
  teacher *is* the average, with no copy per step.

Buffers are never averaged: BERT's int64 ``position_ids`` must stay integers.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

import torch
from torch import nn

from trainer.messages import parameter_message

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
    out
        Where to keep the mean (e.g. a shadow model's flat buffer, so the teacher *is*
        the mean with no copy); a new buffer if None.
    keep_mean
        False keeps only the window's members (SDV needs the snapshots, not their mean).
    """

    RESYNC_EVERY = 64  # updates between exact recomputations of a window's mean

    def __init__(
        self,
        numel: int,
        k: int | Literal["all"],
        device: torch.device,
        dtype: torch.dtype,
        out: torch.Tensor | None = None,
        keep_mean: bool = True,
    ) -> None:
        if k != "all" and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ValueError(
                parameter_message("k", "must be >= 1 or 'all'", k, of="ParameterAverage")
            )
        self.k = k
        self.count = 0
        self.mean: torch.Tensor | None = None
        if keep_mean:
            self.mean = out if out is not None else torch.zeros(numel, device=device, dtype=dtype)
        # A window keeps its members, to drop the oldest and for SDV's snapshots; with
        # K = 1 and a mean, the mean is the single member.
        self.ring: torch.Tensor | None = None
        if k != "all" and (k > 1 or self.mean is None):
            # empty, not zeros: a slot is always written before it is read (snapshots()
            # returns written slots only, the exact mean needs a full window), and
            # zero-filling K copies of the model is a pass the first steps would pay for
            self.ring = torch.empty(k, numel, device=device, dtype=dtype)

    @property
    def size(self) -> int:
        """How many vectors the mean currently covers."""
        return self.count if self.k == "all" else min(self.count, self.k)

    @torch.no_grad()
    def update(self, flat: torch.Tensor) -> None:
        """Push one parameter vector (a copy is kept; ``flat`` may change afterwards)."""
        self.count += 1
        mean, ring = self.mean, self.ring
        if ring is None:  # K = "all", or K = 1: the mean alone
            if self.k == 1 or self.count == 1:
                mean.copy_(flat)
            else:
                mean.lerp_(flat, 1.0 / self.count)
            return
        slot = (self.count - 1) % self.k
        if mean is not None:
            if self.count == 1:
                mean.copy_(flat)
            elif self.count <= self.k:  # filling the window: a running mean
                mean.lerp_(flat, 1.0 / self.count)
            else:  # full: the newest member replaces the oldest
                mean.add_(flat, alpha=1.0 / self.k).sub_(ring[slot], alpha=1.0 / self.k)
        ring[slot].copy_(flat)
        if mean is not None and self.count % self.RESYNC_EVERY == 0 and self.count >= self.k:
            # add/subtract rounding would drift without bound; recompute it exactly
            torch.mean(ring, dim=0, out=mean)

    @torch.no_grad()
    def mean_into(self, out: torch.Tensor) -> None:
        """Write the current mean into ``out`` (a no-op when ``out`` holds it already)."""
        if self.count == 0 or self.mean is None:
            raise RuntimeError("ParameterAverage has no mean: no update yet, or keep_mean=False")
        if out is not self.mean:
            out.copy_(self.mean)

    def snapshots(self) -> list[torch.Tensor]:
        """The vectors in the window, oldest first (``k`` must be an integer)."""
        if self.k == "all":
            raise ValueError("snapshots() needs an integer window K, not 'all'")
        if self.ring is None:  # K = 1 kept as its mean
            return [self.mean] if self.count else []
        n = self.size
        start = self.count - n
        return [self.ring[(start + i) % self.k] for i in range(n)]

    def state_dict(self) -> dict[str, Any]:
        return {"k": self.k, "count": self.count, "mean": self.mean, "ring": self.ring}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["k"] != self.k:
            raise ValueError(f"checkpoint has K={state['k']!r}, this run K={self.k!r}")
        self.count = int(state["count"])
        for name in ("mean", "ring"):
            mine = getattr(self, name)
            if mine is not None:
                mine.copy_(state[name])


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
