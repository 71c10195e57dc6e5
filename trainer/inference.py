"""Logits of a model on tokenised splits; used by the loop and by seed ensembles (AVG)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainer.batches import eval_batches
from trainer.config import TrainConfig
from trainer.prepare import prepare
from trainer.tokenized import TokenizedSplit

__all__ = ["evaluate_weights", "predict_logits"]


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    split: TokenizedSplit,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    autocast=nullcontext,
) -> np.ndarray:
    """float32 logits of ``model`` on every example of ``split``, in the split's order."""
    was_training = model.training
    model.eval()
    logits = np.zeros((len(split), model.config.num_labels), dtype=np.float32)
    for indices, (inputs, _) in eval_batches(split, batch_size, pad_id, device):
        with autocast():
            out = model(**inputs).logits
        logits[indices] = out.float().cpu().numpy()
    model.train(was_training)
    return logits


def evaluate_weights(
    config: TrainConfig, state_dict: dict[str, torch.Tensor], cache_dir: Path | None = None
) -> dict[str, np.ndarray]:
    """Logits and labels on dev (and test) of ``config``'s model holding ``state_dict``.

    The keys are those of a trial's ``logits.npz``: ``dev_logits``, ``dev_labels``,
    ``test_logits``, ``test_labels``. AVG seed ensembles evaluate their averaged
    parameters with this, through the same data pipeline as training.
    """
    prepared = prepare(config, cache_dir)
    model, splits = prepared.model, prepared.splits
    model.load_state_dict(state_dict)
    device = torch.device("cpu")
    out: dict[str, np.ndarray] = {}
    for name in ("dev", "test"):
        if name in splits:
            out[f"{name}_logits"] = predict_logits(
                model, splits[name], config.eval.batch_size, prepared.pad_id, device
            )
            out[f"{name}_labels"] = splits[name].labels
    return out
