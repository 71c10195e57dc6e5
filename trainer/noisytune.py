"""NoisyTune: perturb a pretrained model before fine-tuning (Wu et al., ACL 2022).

Each parameter matrix W becomes ``W + (U(0,1) - 1/2) * lam * std(W)``: noise scaled to
the spread of that very matrix, so that layers of different scales are disturbed
alike. The paper found this matrix-wise uniform noise best (lam about 0.1-0.15 on
GLUE); a single global std and Gaussian noise were worse and are kept here as
ablations.

Noise is drawn on the CPU from a seeded generator and then moved to the parameter's
device, so the same seed gives the same perturbation on a laptop and on a GPU.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from trainer.messages import parameter_message

__all__ = ["perturb"]


def _unit_noise(
    shape: torch.Size, distribution: str, generator: torch.Generator | None
) -> torch.Tensor:
    """Zero-mean noise of unit scale: U(0,1) - 1/2 or N(0,1), in float32 on the CPU."""
    if distribution == "uniform":
        return torch.rand(shape, generator=generator, dtype=torch.float32) - 0.5
    return torch.randn(shape, generator=generator, dtype=torch.float32)


@torch.no_grad()
def perturb(
    model: nn.Module,
    lam: float,
    distribution: Literal["uniform", "gaussian"] = "uniform",
    scope: Literal["matrix", "global"] = "matrix",
    exclude: Iterable[str] = (),
    generator: torch.Generator | None = None,
) -> list[str]:
    """Add NoisyTune noise to ``model``'s parameters in place.

    Parameters
    ----------
    model
        The model to perturb. Only parameters are touched; buffers (BERT's integer
        ``position_ids``) never are.
    lam
        Noise intensity λ >= 0. λ = 0 leaves the model bit-for-bit unchanged.
    distribution
        ``"uniform"``: ``U(0,1) - 1/2`` (the paper's choice); ``"gaussian"``: ``N(0,1)``
        (an ablation; same λ gives a larger spread than uniform).
    scope
        ``"matrix"``: each tensor's own std (the paper); ``"global"``: one std over all
        perturbed parameters together (an ablation).
    exclude
        Regular expressions searched in parameter names; a match is left unchanged
        (e.g. ``"embeddings"``, or ``"classifier"`` for a fresh head).
    generator
        Seeded CPU generator; ``None`` uses torch's global RNG.

    Returns
    -------
    list[str]
        Names of the parameters that were perturbed. Tensors with a single element or
        a zero std are left unchanged: their std is undefined or there is no scale.
    """
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ValueError(parameter_message("lam", "must be a finite float >= 0", lam, of="perturb"))
    if distribution not in ("uniform", "gaussian"):
        raise ValueError(
            parameter_message(
                "distribution", "must be 'uniform' or 'gaussian'", distribution, of="perturb"
            )
        )
    if scope not in ("matrix", "global"):
        raise ValueError(
            parameter_message("scope", "must be 'matrix' or 'global'", scope, of="perturb")
        )
    patterns = [re.compile(p) for p in exclude]
    chosen = [
        (name, param)
        for name, param in model.named_parameters()
        if param.numel() > 1 and not any(p.search(name) for p in patterns)
    ]
    if lam == 0 or not chosen:
        return []

    if scope == "global":
        flat = torch.cat([param.detach().float().reshape(-1).cpu() for _, param in chosen])
        global_std = flat.std().item()
    perturbed = []
    for name, param in chosen:
        std = global_std if scope == "global" else param.detach().float().std().item()
        if std == 0 or not math.isfinite(std):
            continue
        noise = _unit_noise(param.shape, distribution, generator).mul_(lam * std)
        param.add_(noise.to(device=param.device, dtype=param.dtype))
        perturbed.append(name)
    return perturbed
