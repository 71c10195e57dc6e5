"""Seeded batch order and dynamic padding.

The order of training examples is a pure function of (seed, epoch), so the batch of
any optimizer step can be rebuilt from the step number alone: resuming needs no
sampler state, and the same seed gives the same data order for every strategy (the
pairing the seed-paired statistics in ``analysis`` rely on). Each batch is padded
only to its own longest example; on short-sentence data padding is most of the work.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch

from trainer.tokenized import IGNORED, TokenizedSplit

__all__ = ["Batch", "TrainOrder", "collate", "eval_batches"]

Batch = tuple[dict[str, torch.Tensor], torch.Tensor]


def collate(split: TokenizedSplit, indices: np.ndarray, pad_id: int, device: torch.device) -> Batch:
    """Pad the chosen examples to their longest and move them to ``device``; the labels
    are one per example, or one per token (``split.per_token``), padded with IGNORED."""
    starts = split.offsets[indices]
    lengths = split.offsets[indices + 1] - starts
    width = int(lengths.max())
    ids = np.full((len(indices), width), pad_id, dtype=np.int64)
    types = np.zeros((len(indices), width), dtype=np.int64)
    mask = np.zeros((len(indices), width), dtype=np.int64)
    if split.per_token:  # a tag per token, IGNORED on the padding too
        per_token = np.full((len(indices), width), IGNORED, dtype=np.int64)
    for row, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        ids[row, :length] = split.input_ids[start : start + length]
        types[row, :length] = split.token_type_ids[start : start + length]
        mask[row, :length] = 1
        if split.per_token:
            per_token[row, :length] = split.labels[start : start + length]
    pin = device.type == "cuda"
    tensors = {
        "input_ids": torch.from_numpy(ids),
        "token_type_ids": torch.from_numpy(types),
        "attention_mask": torch.from_numpy(mask),
    }
    labels = torch.from_numpy(per_token if split.per_token else split.labels[indices])
    if pin:
        tensors = {k: v.pin_memory() for k, v in tensors.items()}
        labels = labels.pin_memory()
    moved = {k: v.to(device, non_blocking=pin) for k, v in tensors.items()}
    return moved, labels.to(device, non_blocking=pin)


class TrainOrder:
    """Which examples form the batch of optimizer step ``step``.

    Epoch ``e`` shuffles the examples with ``default_rng([seed, e])`` and cuts the
    permutation into batches of ``batch_size`` (the last one may be smaller).

    With ``lengths`` given (length-grouped batching, as HF's ``group_by_length``), the
    permutation is cut into mega-batches of ``GROUP_BATCHES`` batches, each sorted by
    length before it is cut, and the batches are then shuffled with the same
    generator: batches hold examples of similar length (little padding) yet every
    epoch's order is still random and a pure function of (seed, epoch).
    """

    GROUP_BATCHES = 50

    def __init__(
        self, n_examples: int, batch_size: int, seed: int, lengths: np.ndarray | None = None
    ) -> None:
        self.n_examples = n_examples
        self.batch_size = batch_size
        self.seed = seed
        self.lengths = lengths
        self.steps_per_epoch = math.ceil(n_examples / batch_size)
        self._epoch = -1
        self._batches: list[np.ndarray] = []

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.n_examples)
        size = self.batch_size
        if self.lengths is None:
            return [order[i : i + size] for i in range(0, self.n_examples, size)]
        batches = []
        for start in range(0, self.n_examples, size * self.GROUP_BATCHES):
            mega = order[start : start + size * self.GROUP_BATCHES]
            mega = mega[np.argsort(-self.lengths[mega], kind="stable")]
            batches.extend(mega[i : i + size] for i in range(0, len(mega), size))
        return [batches[i] for i in rng.permutation(len(batches))]

    def indices(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._batches = self._epoch_batches(epoch)
            self._epoch = epoch
        return self._batches[position]


def eval_batches(
    split: TokenizedSplit, batch_size: int, pad_id: int, device: torch.device
) -> Iterator[tuple[np.ndarray, Batch]]:
    """Batches in order of length (least padding); yields the indices to put results back."""
    order = np.argsort(split.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        yield indices, collate(split, indices, pad_id, device)
