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
from trainer.tokenized import IGNORED, TokenizedSplit

__all__ = ["evaluate_weights", "predict_logits", "target_arrays"]


def target_arrays(name: str, split: TokenizedSplit) -> dict[str, np.ndarray]:
    """A split's labels as ``logits.npz`` keeps them beside the outputs: ``<name>_labels``
    and, for token classification, the sentence boundaries ``<name>_offsets``."""
    arrays = {f"{name}_labels": split.targets}
    if split.target_offsets is not None:
        arrays[f"{name}_offsets"] = split.target_offsets
    return arrays


@torch.no_grad()
def predict_logits(
    model: nn.Module,
    split: TokenizedSplit,
    batch_size: int,
    pad_id: int,
    device: torch.device,
    autocast=nullcontext,
) -> np.ndarray:
    """float32 outputs of ``model`` for what ``split`` scores (``split.targets``), in the
    split's order: a row of logits (a score, for a regression) per example, or per scored
    word, sentences back to back."""
    was_training = model.training
    model.eval()
    rows: list[np.ndarray | None] = [None] * len(split)
    for indices, (inputs, labels) in eval_batches(split, batch_size, pad_id, device):
        with autocast():
            out = model(**inputs).logits.float().cpu().numpy()
        if split.per_token:  # each sentence's labelled tokens: its words' first sub-words
            scored = labels.cpu().numpy() != IGNORED
            out = [row[keep] for row, keep in zip(out, scored, strict=True)]
        for index, row in zip(indices, out, strict=True):
            rows[index] = row
    model.train(was_training)
    width = model.config.num_labels
    if split.per_token:
        return np.concatenate([*rows, np.zeros((0, width), np.float32)]).astype(np.float32)
    return np.stack(rows).astype(np.float32).reshape(len(split), width)


def evaluate_weights(
    config: TrainConfig, state_dict: dict[str, torch.Tensor], cache_dir: Path | None = None
) -> dict[str, np.ndarray]:
    """Logits and labels on dev (and test) of ``config``'s model holding ``state_dict``.

    The keys are those of a trial's ``logits.npz``: ``dev_logits``, ``dev_labels``,
    ``test_logits``, ``test_labels`` (and ``*_offsets`` for token classification). AVG
    seed ensembles evaluate their averaged parameters with this, through the same data
    pipeline as training.
    """
    prepared = prepare(config, cache_dir)
    model, splits = prepared.model, prepared.splits
    model.load_state_dict(state_dict)
    device = torch.device("cpu")
    out: dict[str, np.ndarray] = {}
    for name in prepared.text_splits.evaluated():
        out[f"{name}_logits"] = predict_logits(
            model, splits[name], config.eval.batch_size, prepared.pad_id, device
        )
        out.update(target_arrays(name, splits[name]))
    return out
